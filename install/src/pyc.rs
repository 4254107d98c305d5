//! The bytecode cache (`<cache>/pyc-v1/`): the `.pyc` files an interpreter wrote for one group
//! of sources (a top-level package of a site directory, see [`crate::compile`]), so that an
//! install whose packages were compiled before (a dependency bump on a runner whose package
//! cache is warm) compiles only the packages that are new.
//!
//! An entry's key is the SHA-256 of the interpreter's program and `libpython` files, the compile
//! mode (checked-hash, no optimisation) and each source of the group: its image path (the
//! `.pyc` records it) and bytes. A group is compiled in a process of its own that compiled
//! nothing before, so that is everything its `.pyc` bytes depend on. Entries hold each file's
//! `.pyc` (or nothing, for a source that does not compile) behind their own SHA-256, checked on
//! every restore, so a torn or corrupt entry is a miss, never a wrong file. Writes are not
//! fsynced: the checksum makes a half-written entry harmless.
//!
//! Restored files are what the compiler writes (`__pycache__/<stem>.<cache tag>.pyc`), so the
//! layer is byte-identical to a compile from scratch. The cache is shared by every build of the
//! user, like the installers' package caches next to it, and trusted as they are.

use std::io::Write;
use std::path::{Path, PathBuf};

use pyslip_lifecycle::{folders, scratch::temp_file_in};
use sha2::{Digest as _, Sha256};

use crate::error::InstallError;
use crate::interp::{Interpreter, resolve};

/// Bump when the compile script or mode changes what is written.
const SCHEME: &str = "pyslip-pyc-v1 checked-hash opt-0 fresh-process-per-group";

fn cache_err(e: std::io::Error) -> InstallError {
    InstallError::Cache(e)
}

/// The bytecode cache for one interpreter.
pub(crate) struct PycCache {
    dir: PathBuf,
    tmp: PathBuf,
    /// Hash of the interpreter's files (hex).
    interp: String,
}

/// The groups of one compile that the cache missed, with their keys.
pub(crate) struct Pending {
    keys: Vec<(Vec<String>, String)>,
}

impl PycCache {
    /// The cache under `cache_dir` for the interpreter of `root`; `None` when the interpreter
    /// cannot be identified (no `python3` on the image PATH, a `libpython` that is not there):
    /// then everything is compiled.
    pub fn open(cache_dir: &Path, root: &Path) -> Result<Option<Self>, InstallError> {
        let Some(interp) = interpreter_id(root) else {
            return Ok(None);
        };
        let dir = cache_dir.join(folders::PYC);
        let tmp = cache_dir.join(folders::TMP);
        for d in [&dir, &tmp] {
            fs_err::create_dir_all(d).map_err(cache_err)?;
        }
        Ok(Some(Self { dir, tmp, interp }))
    }

    fn tag_path(&self) -> PathBuf {
        self.dir.join(format!("tag-{}", self.interp))
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        let (prefix, _) = key.split_at(2);
        self.dir.join(prefix).join(key)
    }

    /// The key of a group: its files' image paths and sources (`host` maps an image path to
    /// where the file lies on this host).
    fn key(
        &self,
        group: &[String],
        host: &dyn Fn(&str) -> PathBuf,
    ) -> Result<String, InstallError> {
        let mut h = Sha256::new();
        let mut part = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        part(SCHEME.as_bytes());
        part(self.interp.as_bytes());
        for file in group {
            part(file.as_bytes());
            part(&fs_err::read(host(file)).map_err(cache_err)?);
        }
        Ok(format!("{:x}", h.finalize()))
    }

    /// Puts the cached `.pyc` files of every group it has in place and returns the groups
    /// still to compile, with their keys for [`PycCache::store`]. With `reuse` false nothing is
    /// restored (all are to compile).
    pub fn restore(
        &self,
        groups: &[Vec<String>],
        host: &dyn Fn(&str) -> PathBuf,
        reuse: bool,
    ) -> Result<(Vec<Vec<String>>, Pending), InstallError> {
        let tag = match reuse {
            true => fs_err::read_to_string(self.tag_path()).ok(),
            false => None,
        };
        let tag = tag.as_deref().map(str::trim).filter(|t| valid_tag(t));
        let mut misses = Vec::new();
        let mut keys = Vec::new();
        for group in groups {
            let key = self.key(group, host)?;
            let pycs = tag.and_then(|tag| Some((tag, self.read_entry(&key, group)?)));
            match pycs {
                Some((tag, pycs)) => {
                    for (file, pyc) in group.iter().zip(pycs) {
                        if !pyc.is_empty() {
                            write_pyc(&pyc_path(&host(file), tag), &pyc)?;
                        }
                    }
                }
                None => {
                    misses.push(group.clone());
                    keys.push((group.clone(), key));
                }
            }
        }
        Ok((misses, Pending { keys }))
    }

    /// Records what the compiler wrote for the groups [`PycCache::restore`] missed; `tag` is
    /// the interpreter's `sys.implementation.cache_tag` (from the compile's output).
    pub fn store(
        &self,
        pending: Pending,
        tag: &str,
        host: &dyn Fn(&str) -> PathBuf,
    ) -> Result<(), InstallError> {
        if !valid_tag(tag) {
            return Ok(());
        }
        if fs_err::read_to_string(self.tag_path()).ok().as_deref() != Some(tag) {
            self.write_entry_file(&self.tag_path(), tag.as_bytes())?;
        }
        for (group, key) in pending.keys {
            let mut payload = Vec::new();
            for file in &group {
                let pyc = match fs_err::read(pyc_path(&host(file), tag)) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(e) => return Err(cache_err(e)),
                };
                payload.extend_from_slice(&(file.len() as u64).to_le_bytes());
                payload.extend_from_slice(file.as_bytes());
                payload.extend_from_slice(&(pyc.len() as u64).to_le_bytes());
                payload.extend_from_slice(&pyc);
            }
            let mut entry = Sha256::digest(&payload).to_vec();
            entry.extend_from_slice(&payload);
            let path = self.entry_path(&key);
            if let Some(parent) = path.parent() {
                fs_err::create_dir_all(parent).map_err(cache_err)?;
            }
            self.write_entry_file(&path, &entry)?;
        }
        Ok(())
    }

    /// An entry's `.pyc` bytes, one per file of `group` (empty: none), when it is there, its
    /// checksum holds and it names exactly the group's files.
    fn read_entry(&self, key: &str, group: &[String]) -> Option<Vec<Vec<u8>>> {
        let bytes = fs_err::read(self.entry_path(key)).ok()?;
        let (sum, mut rest) = bytes.split_at_checked(32)?;
        if Sha256::digest(rest).as_slice() != sum {
            return None;
        }
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = rest.split_at_checked(n)?;
            rest = tail;
            Some(head)
        };
        let mut out = Vec::with_capacity(group.len());
        for file in group {
            let len = usize::try_from(u64::from_le_bytes(take(8)?.try_into().ok()?)).ok()?;
            if take(len)? != file.as_bytes() {
                return None;
            }
            let len = usize::try_from(u64::from_le_bytes(take(8)?.try_into().ok()?)).ok()?;
            out.push(take(len)?.to_vec());
        }
        rest.is_empty().then_some(out)
    }

    /// A temp file in the cache's tmp dir renamed into place (no fsync: see the module doc).
    fn write_entry_file(&self, dest: &Path, bytes: &[u8]) -> Result<(), InstallError> {
        let mut temp = temp_file_in(&self.tmp, ".tmp-pyc-").map_err(cache_err)?;
        temp.write_all(bytes).map_err(cache_err)?;
        temp.persist(dest).map_err(|e| cache_err(e.error))?;
        Ok(())
    }
}

/// A cache tag is one path component without dots (`cpython-313`); anything else (`None` on
/// an implementation without bytecode caching) disables the cache.
fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Where the compiler writes the `.pyc` of `source` (`importlib.util.cache_from_source`).
fn pyc_path(source: &Path, tag: &str) -> PathBuf {
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = source.parent().unwrap_or(Path::new("/"));
    dir.join("__pycache__").join(format!("{stem}.{tag}.pyc"))
}

fn write_pyc(dest: &Path, bytes: &[u8]) -> Result<(), InstallError> {
    if let Some(parent) = dest.parent() {
        fs_err::create_dir_all(parent).map_err(cache_err)?;
    }
    fs_err::write(dest, bytes).map_err(cache_err)
}

/// SHA-256 (hex) of the interpreter's program and of the `libpython` it loads, which hold
/// the compiler; `None` when one of them cannot be read.
fn interpreter_id(root: &Path) -> Option<String> {
    let interp = Interpreter::find(root).ok()?;
    let program = fs_err::read(&interp.elf).ok()?;
    let elf = goblin::elf::Elf::parse(&program).ok()?;
    let mut h = Sha256::new();
    h.update(&program);
    for lib in elf.libraries.iter().filter(|l| l.starts_with("libpython")) {
        let found = interp.libs.iter().find_map(|dir| {
            let rel = dir.strip_prefix(root).ok()?.join(lib);
            let path = resolve(root, rel.to_str()?).ok()?;
            path.is_file().then_some(path)
        })?;
        h.update(lib.as_bytes());
        h.update(fs_err::read(found).ok()?);
    }
    Some(format!("{:x}", h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(dir: &Path) -> PycCache {
        PycCache {
            dir: dir.join("pyc"),
            tmp: dir.join("tmp"),
            interp: "i".repeat(64),
        }
    }

    #[test]
    fn stored_groups_are_restored_and_a_corrupt_entry_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["pyc", "tmp", "t/pkg/__pycache__"] {
            fs_err::create_dir_all(dir.path().join(d)).unwrap();
        }
        let c = cache(dir.path());
        let tree = dir.path().join("t");
        let host = |p: &str| tree.join(p.trim_start_matches('/'));
        fs_err::write(tree.join("pkg/a.py"), "x = 1\n").unwrap();
        fs_err::write(tree.join("pkg/bad.py"), "def (\n").unwrap();
        let groups = vec![vec!["/pkg/a.py".to_owned(), "/pkg/bad.py".to_owned()]];

        let (misses, pending) = c.restore(&groups, &host, true).unwrap();
        assert_eq!(misses, groups, "an empty cache misses everything");
        // What the compiler would leave: a .pyc for a.py, none for bad.py.
        fs_err::write(tree.join("pkg/__pycache__/a.cpython-313.pyc"), b"PYC").unwrap();
        c.store(pending, "cpython-313", &host).unwrap();

        fs_err::remove_dir_all(tree.join("pkg/__pycache__")).unwrap();
        let (misses, _) = c.restore(&groups, &host, true).unwrap();
        assert!(misses.is_empty(), "the group is known now: {misses:?}");
        assert_eq!(
            fs_err::read(tree.join("pkg/__pycache__/a.cpython-313.pyc")).unwrap(),
            b"PYC"
        );
        assert!(!tree.join("pkg/__pycache__/bad.cpython-313.pyc").exists());
        let (misses, _) = c.restore(&groups, &host, false).unwrap();
        assert_eq!(misses, groups, "reuse off restores nothing");

        // Another source in the group is another key.
        fs_err::write(tree.join("pkg/a.py"), "x = 2\n").unwrap();
        let (misses, _) = c.restore(&groups, &host, true).unwrap();
        assert_eq!(misses, groups);

        // A torn entry is a miss, not a wrong file.
        fs_err::write(tree.join("pkg/a.py"), "x = 1\n").unwrap();
        let entry = c.entry_path(&c.key(&groups[0], &host).unwrap());
        let mut bytes = fs_err::read(&entry).unwrap();
        bytes.truncate(bytes.len() - 1);
        fs_err::write(&entry, bytes).unwrap();
        let (misses, _) = c.restore(&groups, &host, true).unwrap();
        assert_eq!(misses, groups);
    }

    #[test]
    fn the_pyc_goes_where_the_compiler_puts_it() {
        assert_eq!(
            pyc_path(Path::new("/r/site-packages/pkg/mod.py"), "cpython-313"),
            Path::new("/r/site-packages/pkg/__pycache__/mod.cpython-313.pyc")
        );
        assert!(valid_tag("cpython-313"));
        assert!(!valid_tag("None.x") && !valid_tag(""));
    }
}
