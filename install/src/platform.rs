//! Installing for another CPU than the host's, without emulation: the installer runs (in the
//! sandbox or for the root from the host) with the host's interpreter of the same Python
//! version and *selects* the target's wheels (`uv pip install --python-platform`); bytecode does
//! not depend on the CPU. What cannot be selected — an sdist with a C extension — would be
//! compiled for the host, so every ELF file of a foreign layer is checked against the target.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;

use goblin::elf::header::{EM_AARCH64, EM_X86_64};
use layers::{EntryKind, FileSource, LayerEntry};

use crate::error::InstallError;

/// A platform the layer is installed for when it is not the host's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Foreign {
    /// `linux/arm64`.
    pub platform: String,
    /// The CPU's name in wheel and uv platform tags (`aarch64`, `x86_64`).
    pub arch: &'static str,
    /// ELF `e_machine` of the target.
    pub machine: u16,
}

/// `(uv/wheel arch, ELF machine)` of an OCI architecture.
fn arch_of(oci_arch: &str) -> Option<(&'static str, u16)> {
    match oci_arch {
        "amd64" | "x86_64" => Some(("x86_64", EM_X86_64)),
        "arm64" | "aarch64" => Some(("aarch64", EM_AARCH64)),
        _ => None,
    }
}

/// The host's OCI architecture name.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `Some` when `platform` (`linux/arm64`, `linux/arm64/v8`) is not the host's.
pub(crate) fn foreign(platform: &str) -> Result<Option<Foreign>, InstallError> {
    let arch = platform.split('/').nth(1).unwrap_or(platform);
    if arch == host_arch() {
        return Ok(None);
    }
    let (name, machine) = arch_of(arch).ok_or_else(|| InstallError::ForeignPlatform {
        platform: platform.to_owned(),
        reason: "pyslip installs for linux/amd64 and linux/arm64 only".into(),
    })?;
    Ok(Some(Foreign {
        platform: platform.to_owned(),
        arch: name,
        machine,
    }))
}

impl Foreign {
    /// uv's `--python-platform` for this target on a base whose C library is `libc`: glibc
    /// `(2, 41)` gives `aarch64-manylinux_2_40` (uv knows up to 2.40), musl the musl target.
    pub fn uv_platform(&self, libc: Libc) -> String {
        match libc {
            Libc::Glibc(2, minor) if minor >= 17 => {
                format!("{}-manylinux_2_{}", self.arch, minor.min(40))
            }
            Libc::Musl => format!("{}-unknown-linux-musl", self.arch),
            _ => format!("{}-manylinux_2_17", self.arch),
        }
    }
}

/// The C library of a base root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Libc {
    /// glibc (major, minor).
    Glibc(u32, u32),
    /// musl.
    Musl,
}

/// The C library of `root`: musl when it has a musl loader, else glibc's version as its loader
/// reports it (the loader is the host's architecture: it is the root the install runs in).
pub(crate) fn libc_of(root: &Path, loader: &Path) -> Libc {
    let musl = ["lib", "usr/lib"].iter().any(|d| {
        fs_err::read_dir(root.join(d)).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("ld-musl-"))
        })
    });
    if musl {
        return Libc::Musl;
    }
    let out = std::process::Command::new(loader)
        .arg("--version")
        .env_clear()
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    // "ld.so (Debian GLIBC 2.41-12) stable release version 2.41."
    let version = text
        .split("release version ")
        .nth(1)
        .and_then(|v| v.split(|c: char| c != '.' && !c.is_ascii_digit()).next())
        .map(|v| v.trim_end_matches('.'))
        .unwrap_or("");
    let mut parts = version.split('.').filter_map(|p| p.parse::<u32>().ok());
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => Libc::Glibc(major, minor),
        _ => Libc::Glibc(2, 17),
    }
}

/// Fails when an ELF file among `entries` is for another machine than `target` (a package
/// built from source for the host), naming the package (from its `RECORD`) and the file.
pub(crate) fn check_elf(entries: &[LayerEntry], target: &Foreign) -> Result<(), InstallError> {
    let owners = record_owners(entries);
    for e in entries {
        let EntryKind::File(FileSource::Path(host)) = &e.kind else {
            continue;
        };
        let Some(machine) = elf_machine(host) else {
            continue;
        };
        if machine != target.machine {
            return Err(InstallError::ForeignElf {
                package: owners.get(&e.path).cloned(),
                file: format!("/{}", e.path),
                platform: target.platform.clone(),
                found: machine_name(machine),
            });
        }
    }
    Ok(())
}

/// The ELF machine of the file at `path`, or `None` when it is not an ELF file.
fn elf_machine(path: &Path) -> Option<u16> {
    let mut head = [0u8; 64];
    let mut file = fs_err::File::open(path).ok()?;
    let n = file.read(&mut head).ok()?;
    let head = head.get(..n)?;
    if !head.starts_with(b"\x7fELF") {
        return None;
    }
    // e_machine is the 2 bytes at offset 18 of every ELF header, in the byte order that
    // e_ident[EI_DATA] (offset 5) names.
    let machine = [*head.get(18)?, *head.get(19)?];
    match head.get(5)? {
        1 => Some(u16::from_le_bytes(machine)),
        2 => Some(u16::from_be_bytes(machine)),
        _ => None,
    }
}

fn machine_name(machine: u16) -> String {
    match machine {
        EM_X86_64 => "x86_64".into(),
        EM_AARCH64 => "aarch64".into(),
        other => format!("ELF machine {other}"),
    }
}

/// Root-relative path → distribution name, from every `RECORD` among `entries`.
fn record_owners(entries: &[LayerEntry]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for e in entries {
        let EntryKind::File(FileSource::Path(host)) = &e.kind else {
            continue;
        };
        let Some(dist_info) = e.path.strip_suffix("/RECORD") else {
            continue;
        };
        let Some((site, dir)) = dist_info.rsplit_once('/') else {
            continue;
        };
        let Some(name) = dir
            .strip_suffix(".dist-info")
            .and_then(|d| d.rsplit_once('-'))
            .map(|(n, _)| n.to_owned())
        else {
            continue;
        };
        let Ok(text) = fs_err::read_to_string(host) else {
            continue;
        };
        for line in text.lines() {
            let Some(path) = line.rsplitn(3, ',').nth(2) else {
                continue;
            };
            let joined = format!("{site}/{}", path.trim_matches('"'));
            let mut parts: Vec<&str> = Vec::new();
            for c in joined.split('/') {
                match c {
                    "" | "." => {}
                    ".." => {
                        parts.pop();
                    }
                    c => parts.push(c),
                }
            }
            out.insert(parts.join("/"), name.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uv_platforms_follow_the_base_libc() {
        let arm = foreign("linux/arm64").unwrap();
        let arm = arm.filter(|_| host_arch() == "amd64").unwrap_or(Foreign {
            platform: "linux/arm64".into(),
            arch: "aarch64",
            machine: EM_AARCH64,
        });
        assert_eq!(
            arm.uv_platform(Libc::Glibc(2, 36)),
            "aarch64-manylinux_2_36"
        );
        assert_eq!(
            arm.uv_platform(Libc::Glibc(2, 41)),
            "aarch64-manylinux_2_40"
        );
        assert_eq!(arm.uv_platform(Libc::Musl), "aarch64-unknown-linux-musl");
        assert!(
            foreign(&format!("linux/{}", host_arch()))
                .unwrap()
                .is_none()
        );
        assert!(foreign("linux/s390x").is_err());
    }

    /// A minimal 64-bit ELF header for `machine`.
    fn elf(machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2; // 64-bit
        h[5] = 1; // little endian
        h[6] = 1; // version
        h[16] = 3; // ET_DYN
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h[20] = 1;
        h[52] = 64; // e_ehsize
        h
    }

    #[test]
    fn host_elf_files_in_a_foreign_layer_name_their_package() {
        let dir = tempfile::tempdir().unwrap();
        let site = "usr/local/lib/python3.13/site-packages";
        let write = |rel: &str, bytes: &[u8]| {
            let p = dir.path().join(rel);
            fs_err::create_dir_all(p.parent().unwrap()).unwrap();
            fs_err::write(&p, bytes).unwrap();
            LayerEntry {
                path: rel.into(),
                kind: EntryKind::File(FileSource::Path(p)),
                mode: 0o644,
                uid: 0,
                gid: 0,
            }
        };
        let target = Foreign {
            platform: "linux/arm64".into(),
            arch: "aarch64",
            machine: EM_AARCH64,
        };
        let good = vec![
            write(&format!("{site}/ok/_speed.so"), &elf(EM_AARCH64)),
            write(&format!("{site}/ok/__init__.py"), b"x = 1\n"),
        ];
        check_elf(&good, &target).unwrap();
        let mut bad = good.clone();
        bad.push(write(
            &format!("{site}/ujson.cpython-313-x86_64-linux-gnu.so"),
            &elf(EM_X86_64),
        ));
        bad.push(write(
            &format!("{site}/ujson-1.35.dist-info/RECORD"),
            b"ujson.cpython-313-x86_64-linux-gnu.so,sha256=x,64\nujson-1.35.dist-info/RECORD,,\n",
        ));
        let err = check_elf(&bad, &target).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("ujson") && text.contains("x86_64") && text.contains("linux/arm64"),
            "{text}"
        );
    }
}
