//! An optional content-addressed store (`<dir>/<hex>`) for manifests and configs, so a tag that
//! still points at the same manifest costs one request instead of three.
//!
//! Only content named by its digest is stored and served, and it is verified again when read: a
//! file that no longer hashes to its name is removed and fetched anew. Writes go through a temp
//! file in the same directory and a rename. The store is an optimisation: failing to write it
//! never fails a pull.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use layers::Digest;

/// A directory of blobs named by the hex of their sha256.
#[derive(Debug, Clone)]
pub(crate) struct SmallCache {
    dir: PathBuf,
}

impl SmallCache {
    /// A store in `dir` (created on first write).
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// The verified bytes for `digest`, if stored.
    pub(crate) fn get(&self, digest: &Digest) -> Option<Bytes> {
        let path = self.path(digest);
        let bytes = std::fs::read(&path).ok()?;
        if &Digest::of(&bytes) != digest {
            let _ = std::fs::remove_file(&path);
            return None;
        }
        Some(Bytes::from(bytes))
    }

    /// Store `bytes`, which the caller has verified hash to `digest`.
    pub(crate) fn put(&self, digest: &Digest, bytes: &[u8]) {
        let path = self.path(digest);
        if path.exists() {
            return;
        }
        let _ = write_atomic(&self.dir, &path, bytes);
    }
}

fn write_atomic(dir: &Path, dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut temp = pyslip_lifecycle::scratch::temp_file_in(dir, ".tmp-small-")?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_only_verified_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = SmallCache::new(dir.path().join("blobs"));
        let digest = Digest::of(b"config");
        assert!(cache.get(&digest).is_none());
        cache.put(&digest, b"config");
        assert_eq!(cache.get(&digest).as_deref(), Some(&b"config"[..]));
        std::fs::write(dir.path().join("blobs").join(digest.hex()), b"tampered").expect("write");
        assert!(cache.get(&digest).is_none(), "tampered content was served");
        assert!(!dir.path().join("blobs").join(digest.hex()).exists());
    }
}
