//! The base image's Python seen from outside its root: which file `python3` is on the image's
//! PATH, the dynamic loader and library path that run it straight from the unpacked root (no
//! namespace, no chroot), and the install layout it reports (prefix, site-packages, scripts).
//!
//! Every path inside the root is resolved as the image would resolve it: symlinks are followed
//! component by component with the root as `/`, so an absolute symlink in a base image can never
//! point pyslip at a file of the host.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::env::SANDBOX_PATH;
use crate::error::InstallError;

/// Most symlinks followed while resolving one path (the kernel's limit).
const MAX_LINKS: usize = 40;

/// The interpreter of a base root and how to run it from the host.
#[derive(Debug, Clone)]
pub(crate) struct Interpreter {
    /// The unpacked root (host path).
    pub root: PathBuf,
    /// `python3` as the image finds it on its PATH (`usr/local/bin/python3`, root-relative).
    pub exe: String,
    /// Other names in the same directory for the same program (`python`, `python3.13`).
    pub aliases: Vec<String>,
    /// The ELF file behind `exe`, resolved inside the root (host path).
    pub elf: PathBuf,
    /// The same, root-relative (`usr/local/bin/python3.13`).
    pub elf_rel: String,
    /// Its dynamic loader (`PT_INTERP`), resolved inside the root (host path).
    pub loader: PathBuf,
    /// Library directories of the root, in the order its `ld.so.conf` and defaults give.
    pub libs: Vec<PathBuf>,
    /// ELF machine (`EM_X86_64`, `EM_AARCH64`).
    pub machine: u16,
}

/// What the interpreter reports about its installation layout (root-relative paths).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Layout {
    /// `sys.version_info[:3]`.
    pub version: (u32, u32, u32),
    /// `sysconfig.get_paths()`: `stdlib`, `platstdlib`, `purelib`, `platlib`, `include`,
    /// `platinclude`, `scripts`, `data`.
    pub paths: std::collections::BTreeMap<String, String>,
    /// Site directories on `sys.path` (`site.getsitepackages()` and other `sys.path` entries
    /// outside the standard library).
    pub site: Vec<String>,
}

/// The layout query, run with `-I`; prints one JSON object with host paths.
const QUERY: &str = r#"import json, os, site, sys, sysconfig
std = {os.path.realpath(sysconfig.get_path(k)) for k in ("stdlib", "platstdlib")}
def extra(p):
    r = os.path.realpath(p)
    return os.path.isdir(p) and r not in std and not any(r.startswith(s + os.sep) for s in std)
site_dirs = [p for p in site.getsitepackages() + sys.path if p and extra(p)]
print(json.dumps({"version": list(sys.version_info[:3]), "paths": sysconfig.get_paths(), "site": site_dirs}))
"#;

impl Interpreter {
    /// Finds `python3` on the image PATH inside `root` and how to run it.
    pub fn find(root: &Path) -> Result<Self, InstallError> {
        let unusable = |reason: String| InstallError::Interpreter {
            root: root.to_owned(),
            reason,
        };
        let exe = SANDBOX_PATH
            .split(':')
            .map(|dir| format!("{}/python3", dir.trim_start_matches('/')))
            .find(|rel| resolve(root, rel).is_ok_and(|p| p.is_file()))
            .ok_or_else(|| unusable(format!("no python3 on the image PATH ({SANDBOX_PATH})")))?;
        let elf = resolve(root, &exe).map_err(|e| unusable(e.to_string()))?;
        let elf_rel = elf
            .strip_prefix(root)
            .ok()
            .and_then(|p| p.to_str())
            .map(str::to_owned)
            .unwrap_or_default();
        let bytes = fs_err::read(&elf).map_err(|e| unusable(e.to_string()))?;
        let parsed = goblin::elf::Elf::parse(&bytes)
            .map_err(|e| unusable(format!("{} is not an ELF program: {e}", elf.display())))?;
        let interp = parsed.interpreter.ok_or_else(|| {
            unusable(format!(
                "{} has no dynamic loader (a static interpreter cannot be run for its root)",
                elf.display()
            ))
        })?;
        let loader = resolve(root, interp).map_err(|e| unusable(e.to_string()))?;
        let machine = parsed.header.e_machine;
        let dir = exe.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let aliases = alias_names(root, dir, &elf, &exe);
        Ok(Self {
            root: root.to_owned(),
            exe,
            aliases,
            elf,
            elf_rel,
            loader,
            libs: library_dirs(root),
            machine,
        })
    }

    /// A command that runs the interpreter with `argv0` as its `sys.executable` (its prefix is
    /// found from that path, so a staging tree that mirrors the image becomes its prefix).
    pub fn command(&self, argv0: &Path) -> Command {
        let mut cmd = Command::new(&self.loader);
        cmd.arg("--library-path")
            .arg(self.library_path())
            .arg("--argv0")
            .arg(argv0)
            .arg(&self.elf);
        cmd
    }

    /// The library directories joined with `:` (for the loader's `--library-path`).
    pub fn library_path(&self) -> std::ffi::OsString {
        let mut out = std::ffi::OsString::new();
        for (i, dir) in self.libs.iter().enumerate() {
            if i > 0 {
                out.push(":");
            }
            out.push(dir);
        }
        out
    }

    /// Asks the interpreter (run for its own root) for its install layout, as root-relative
    /// paths.
    pub fn layout(&self) -> Result<Layout, InstallError> {
        let out = self
            // As in the image, the prefix is found from the program itself, not a symlink to it.
            .command(&self.elf)
            .args(["-I", "-c", QUERY])
            .env_clear()
            .env("LANG", "C.UTF-8")
            .output()
            .map_err(|e| InstallError::Interpreter {
                root: self.root.clone(),
                reason: format!("cannot run {}: {e}", self.loader.display()),
            })?;
        if !out.status.success() {
            return Err(InstallError::Interpreter {
                root: self.root.clone(),
                reason: format!(
                    "the interpreter failed to report its layout: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        let mut layout: Layout =
            serde_json::from_slice(&out.stdout).map_err(|e| InstallError::Interpreter {
                root: self.root.clone(),
                reason: format!("unreadable layout report: {e}"),
            })?;
        let relative = |p: &str| -> Result<String, InstallError> {
            Path::new(p)
                .strip_prefix(&self.root)
                .ok()
                .and_then(|r| r.to_str())
                .map(str::to_owned)
                .ok_or_else(|| InstallError::Interpreter {
                    root: self.root.clone(),
                    reason: format!("it reports the path {p} outside its root"),
                })
        };
        for value in layout.paths.values_mut() {
            *value = relative(value)?;
        }
        let mut site = Vec::new();
        for dir in &layout.site {
            let rel = relative(dir)?;
            if !site.contains(&rel) {
                site.push(rel);
            }
        }
        layout.site = site;
        Ok(layout)
    }
}

impl Layout {
    /// A scheme path (`purelib`, `scripts`, …), root-relative; empty when missing.
    pub fn path(&self, key: &str) -> &str {
        self.paths.get(key).map(String::as_str).unwrap_or("")
    }
}

/// `rel` (root-relative, `/`-separated) resolved inside `root` the way the image would resolve
/// it: every symlink is followed with `root` as `/`, and `..` never leaves the root.
pub(crate) fn resolve(root: &Path, rel: &str) -> Result<PathBuf, std::io::Error> {
    let mut pending: Vec<String> = components(rel);
    pending.reverse();
    let mut current: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        match name.as_str() {
            "." => continue,
            ".." => {
                current.pop();
                continue;
            }
            _ => {}
        }
        let mut candidate: PathBuf = root.to_owned();
        candidate.extend(&current);
        candidate.push(&name);
        let meta = fs_err::symlink_metadata(&candidate)?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(std::io::Error::other(format!(
                    "too many symlinks resolving /{rel} in {}",
                    root.display()
                )));
            }
            let target = fs_err::read_link(&candidate)?;
            let target = target.to_string_lossy();
            if target.starts_with('/') {
                current.clear();
            }
            for c in components(&target).into_iter().rev() {
                pending.push(c);
            }
        } else {
            current.push(name);
        }
    }
    let mut out = root.to_owned();
    out.extend(&current);
    Ok(out)
}

fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_owned()),
            _ => None,
        })
        .collect()
}

/// Names in `dir` (root-relative) other than `exe` that resolve to the same file as `elf`.
fn alias_names(root: &Path, dir: &str, elf: &Path, exe: &str) -> Vec<String> {
    let Ok(entries) = fs_err::read_dir(root.join(dir)) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n == "python" || n.starts_with("python3"))
        .map(|n| format!("{dir}/{n}"))
        .filter(|rel| rel != exe && resolve(root, rel).is_ok_and(|p| p == elf))
        .collect();
    out.sort();
    out
}

/// The root's library directories: what its `/etc/ld.so.conf` (with `include`s) lists, then the
/// loader's defaults and Debian's multiarch directories; only those that exist.
fn library_dirs(root: &Path) -> Vec<PathBuf> {
    let mut listed = Vec::new();
    read_ld_conf(root, "etc/ld.so.conf", &mut listed, 0);
    for d in [
        "lib/x86_64-linux-gnu",
        "usr/lib/x86_64-linux-gnu",
        "lib/aarch64-linux-gnu",
        "usr/lib/aarch64-linux-gnu",
        "lib64",
        "usr/lib64",
        "lib",
        "usr/lib",
    ] {
        listed.push(d.to_owned());
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for rel in listed {
        if let Ok(dir) = resolve(root, &rel)
            && dir.is_dir()
            && !out.contains(&dir)
        {
            out.push(dir);
        }
    }
    out
}

/// Appends the directories of the ld.so configuration file `rel` (root-relative) to `out`.
fn read_ld_conf(root: &Path, rel: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 8 {
        return;
    }
    let Ok(text) = resolve(root, rel).and_then(fs_err::read_to_string) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include ") {
            for file in glob_in_root(root, pattern.trim()) {
                read_ld_conf(root, &file, out, depth + 1);
            }
        } else if !line.is_empty() {
            out.push(line.trim_start_matches('/').to_owned());
        }
    }
}

/// Files matching `pattern` (an absolute pattern whose last component may hold `*`) in `root`,
/// root-relative and sorted (the order ldconfig reads them in).
fn glob_in_root(root: &Path, pattern: &str) -> Vec<String> {
    let pattern = pattern.trim_start_matches('/');
    let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    let Ok(host_dir) = resolve(root, dir) else {
        return Vec::new();
    };
    let (prefix, suffix) = name.split_once('*').unwrap_or((name, ""));
    let exact = !name.contains('*');
    let Ok(entries) = fs_err::read_dir(host_dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| {
            if exact {
                n == name
            } else {
                n.len() >= prefix.len() + suffix.len()
                    && n.starts_with(prefix)
                    && n.ends_with(suffix)
            }
        })
        .map(|n| format!("{dir}/{n}"))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs_err::create_dir_all(root.join("usr/bin")).unwrap();
        fs_err::create_dir_all(root.join("usr/local/bin")).unwrap();
        fs_err::create_dir_all(root.join("etc")).unwrap();
        fs_err::write(root.join("usr/bin/python3.13"), b"elf").unwrap();
        std::os::unix::fs::symlink("python3.13", root.join("usr/bin/python3")).unwrap();
        // Absolute, as base images have them: must stay in the root.
        std::os::unix::fs::symlink("/usr/bin/python3", root.join("usr/local/bin/python3")).unwrap();
        std::os::unix::fs::symlink("../../../../../etc", root.join("usr/local/bin/up")).unwrap();
        assert_eq!(
            resolve(root, "usr/local/bin/python3").unwrap(),
            root.join("usr/bin/python3.13")
        );
        assert_eq!(resolve(root, "usr/local/bin/up").unwrap(), root.join("etc"));
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert!(resolve(root, "loop").is_err());
    }

    #[test]
    fn ld_conf_includes_are_followed_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs_err::create_dir_all(root.join("etc/ld.so.conf.d")).unwrap();
        for d in ["usr/local/lib", "opt/x/lib", "usr/lib/x86_64-linux-gnu"] {
            fs_err::create_dir_all(root.join(d)).unwrap();
        }
        fs_err::write(
            root.join("etc/ld.so.conf"),
            "include /etc/ld.so.conf.d/*.conf\n",
        )
        .unwrap();
        fs_err::write(root.join("etc/ld.so.conf.d/b.conf"), "/opt/x/lib # x\n").unwrap();
        fs_err::write(root.join("etc/ld.so.conf.d/a.conf"), "/usr/local/lib\n").unwrap();
        fs_err::write(root.join("etc/ld.so.conf.d/c.txt"), "/nope\n").unwrap();
        assert_eq!(
            library_dirs(root),
            [
                root.join("usr/local/lib"),
                root.join("opt/x/lib"),
                root.join("usr/lib/x86_64-linux-gnu"),
                root.join("usr/lib")
            ]
        );
    }
}
