//! The bytecode cache (`<cache>/pyc-v1/`): the `.pyc` an interpreter wrote for one source file
//! at one image path, so that an install whose packages were compiled before (a dependency bump
//! on a runner whose package cache is warm) compiles only what is new.
//!
//! An entry's key is the SHA-256 of the interpreter's program and `libpython` files, the image
//! path the `.pyc` records (`co_filename`), the source bytes and the compile mode (checked-hash,
//! no optimisation): everything the compiler's output depends on. Entries hold the `.pyc` bytes
//! behind their own SHA-256 (checked on every restore, so a torn or corrupt entry is a miss,
//! never a wrong file); an empty payload records a source that does not compile, which is
//! skipped again without running the compiler. Writes are not fsynced: the checksum makes a
//! half-written entry harmless.
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
const SCHEME: &str = "pyslip-pyc-v1 checked-hash opt-0";

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

/// Sources of one compile: their cache keys, by target.
pub(crate) struct Pending {
    keys: Vec<(String, String)>,
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

    fn key(&self, image_path: &str, source: &[u8]) -> String {
        let mut h = Sha256::new();
        for part in [
            SCHEME.as_bytes(),
            self.interp.as_bytes(),
            image_path.as_bytes(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update(source);
        hex(&h.finalize())
    }

    /// Puts the cached `.pyc` of every target it has in place (`host` maps an image path to
    /// where the file lies on this host) and returns the targets still to compile, with their
    /// keys for [`PycCache::store`]. With `reuse` false nothing is restored (all are to compile).
    pub fn restore(
        &self,
        targets: &[String],
        host: &dyn Fn(&str) -> PathBuf,
        reuse: bool,
    ) -> Result<(Vec<String>, Pending), InstallError> {
        let tag = match reuse {
            true => fs_err::read_to_string(self.tag_path()).ok(),
            false => None,
        };
        let tag = tag.as_deref().map(str::trim).filter(|t| valid_tag(t));
        let mut misses = Vec::new();
        let mut keys = Vec::new();
        for target in targets {
            let source = fs_err::read(host(target)).map_err(cache_err)?;
            let key = self.key(target, &source);
            let hit = tag.and_then(|tag| self.read_entry(&key).map(|pyc| (tag, pyc)));
            match hit {
                Some((_, pyc)) if pyc.is_empty() => {}
                Some((tag, pyc)) => write_pyc(&pyc_path(&host(target), tag), &pyc)?,
                None => {
                    misses.push(target.clone());
                    keys.push((target.clone(), key));
                }
            }
        }
        Ok((misses, Pending { keys }))
    }

    /// Records what the compiler wrote for the targets [`PycCache::restore`] missed; `tag` is
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
        for (target, key) in pending.keys {
            let pyc = match fs_err::read(pyc_path(&host(&target), tag)) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(cache_err(e)),
            };
            let mut entry = Sha256::digest(&pyc).to_vec();
            entry.extend_from_slice(&pyc);
            let path = self.entry_path(&key);
            if let Some(parent) = path.parent() {
                fs_err::create_dir_all(parent).map_err(cache_err)?;
            }
            self.write_entry_file(&path, &entry)?;
        }
        Ok(())
    }

    /// An entry's `.pyc` bytes, when it is there and its checksum holds.
    fn read_entry(&self, key: &str) -> Option<Vec<u8>> {
        let bytes = fs_err::read(self.entry_path(key)).ok()?;
        let (sum, pyc) = bytes.split_at_checked(32)?;
        (Sha256::digest(pyc).as_slice() == sum).then(|| pyc.to_vec())
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
    Some(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    fn stored_pycs_are_restored_and_a_corrupt_entry_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["pyc", "tmp", "t/pkg/__pycache__"] {
            fs_err::create_dir_all(dir.path().join(d)).unwrap();
        }
        let c = cache(dir.path());
        let tree = dir.path().join("t");
        let host = |p: &str| tree.join(p.trim_start_matches('/'));
        fs_err::write(tree.join("pkg/a.py"), "x = 1\n").unwrap();
        fs_err::write(tree.join("pkg/bad.py"), "def (\n").unwrap();
        let targets = vec!["/pkg/a.py".to_owned(), "/pkg/bad.py".to_owned()];

        let (misses, pending) = c.restore(&targets, &host, true).unwrap();
        assert_eq!(misses, targets, "an empty cache misses everything");
        // What the compiler would leave: a .pyc for a.py, none for bad.py.
        fs_err::write(tree.join("pkg/__pycache__/a.cpython-313.pyc"), b"PYC").unwrap();
        c.store(pending, "cpython-313", &host).unwrap();

        fs_err::remove_dir_all(tree.join("pkg/__pycache__")).unwrap();
        let (misses, _) = c.restore(&targets, &host, true).unwrap();
        assert!(misses.is_empty(), "both are known now: {misses:?}");
        assert_eq!(
            fs_err::read(tree.join("pkg/__pycache__/a.cpython-313.pyc")).unwrap(),
            b"PYC"
        );
        assert!(!tree.join("pkg/__pycache__/bad.cpython-313.pyc").exists());

        // Another source at the same path is another key.
        fs_err::write(tree.join("pkg/a.py"), "x = 2\n").unwrap();
        let (misses, _) = c.restore(&targets[..1], &host, true).unwrap();
        assert_eq!(misses, ["/pkg/a.py"]);

        // A torn entry is a miss, not a wrong file.
        fs_err::write(tree.join("pkg/a.py"), "x = 1\n").unwrap();
        let key = c.key("/pkg/a.py", b"x = 1\n");
        let entry = c.entry_path(&key);
        let mut bytes = fs_err::read(&entry).unwrap();
        bytes.truncate(bytes.len() - 1);
        fs_err::write(&entry, bytes).unwrap();
        let (misses, _) = c.restore(&targets[..1], &host, true).unwrap();
        assert_eq!(misses, ["/pkg/a.py"]);
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
