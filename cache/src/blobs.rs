//! The content-addressed blob store: `<dir>/<hex>`, every file named by the sha256 of its bytes.
//!
//! A blob appears under its name only whole (temp file, fsync, rename), so a file there that does
//! not hash to its name is corruption or tampering: readers that verify remove it, and the blob is
//! fetched or made anew. Two writers of the same blob both succeed: the second rename replaces
//! identical bytes.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use pyslip_digest::Digest;
use pyslip_lifecycle::scratch::temp_file_in;
use sha2::{Digest as _, Sha256};

use crate::atomic::{publish, write_atomic_in};
use crate::error::CacheError;

/// A directory of blobs named by their digest's hex.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
    /// Where temp files go (same file system as `dir`).
    tmp: PathBuf,
}

impl BlobStore {
    /// The store at `dir`, whose temp files go to `tmp` (on the same file system). Folders are
    /// created on first write.
    pub fn new(dir: PathBuf, tmp: PathBuf) -> Self {
        Self { dir, tmp }
    }

    /// The store at `dir` with its temp files in `dir` itself (hidden `.tmp-…` names, which a
    /// sweep of the folder recognises).
    pub fn in_dir(dir: PathBuf) -> Self {
        Self {
            tmp: dir.clone(),
            dir,
        }
    }

    /// The directory of the blobs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob with this digest lives (whether or not it is there).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// Whether the blob is stored and hashes to its name; a corrupt one is removed (and
    /// reported), so the caller fetches it anew.
    pub fn verify(&self, digest: &Digest) -> Result<bool, CacheError> {
        let path = self.path(digest);
        let file = match fs_err::File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(err.into()),
        };
        let actual = hash(file)?;
        if &actual != digest {
            let _ = fs_err::remove_file(&path);
            return Err(CacheError::Corrupt {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(true)
    }

    /// The bytes of a stored blob, verified; `None` when it is not stored, cannot be read, or
    /// does not hash to its name (then it is removed). For small blobs: manifests, configs.
    pub fn read(&self, digest: &Digest) -> Option<Vec<u8>> {
        let path = self.path(digest);
        let bytes = std::fs::read(&path).ok()?;
        if &Digest::of(&bytes) != digest {
            let _ = fs_err::remove_file(&path);
            return None;
        }
        Some(bytes)
    }

    /// Store bytes as a blob (unless it is there already) and return their digest.
    pub fn write(&self, bytes: &[u8]) -> Result<Digest, CacheError> {
        let digest = Digest::of(bytes);
        let path = self.path(&digest);
        if !path.exists() {
            self.create_dirs()?;
            write_atomic_in(&self.tmp, &path, bytes)?;
        }
        Ok(digest)
    }

    /// Start writing a blob whose digest is known only at the end.
    pub fn pending(&self) -> Result<PendingBlob, CacheError> {
        self.create_dirs()?;
        let file = temp_file_in(&self.tmp, ".blob-")?;
        Ok(PendingBlob {
            file,
            hasher: Sha256::new(),
            size: 0,
            store: self.clone(),
        })
    }

    /// Write `entries` as a gzip'd tar layer into the store, streamed (tar, gzip and both
    /// digests in one pass; nothing is hashed twice), and return it with its path.
    #[cfg(feature = "layers")]
    pub fn write_layer(
        &self,
        entries: Vec<layers::LayerEntry>,
        options: &layers::LayerOptions,
    ) -> Result<(layers::WrittenLayer, PathBuf), CacheError> {
        fs_err::create_dir_all(&self.dir)?;
        layers::write_layer_to_dir(entries, options, &self.dir).map_err(CacheError::Layer)
    }

    fn create_dirs(&self) -> io::Result<()> {
        fs_err::create_dir_all(&self.dir)?;
        fs_err::create_dir_all(&self.tmp)
    }
}

/// The sha256 of everything `reader` yields.
pub(crate) fn hash(mut reader: impl io::Read) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    io::copy(&mut reader, &mut hasher)?;
    Ok(Digest::from_sha256(hasher.finalize().into()))
}

/// A blob being written to the store: hashed as it is written, published by
/// [`PendingBlob::commit`].
///
/// Dropping it without committing deletes the temp file.
pub struct PendingBlob {
    file: tempfile::NamedTempFile,
    hasher: Sha256,
    size: u64,
    store: BlobStore,
}

impl Write for PendingBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl PendingBlob {
    /// Flush to disk and publish under the content's digest; when `expected` is given and the
    /// content hashes differently, nothing is published and the digests are reported.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<(Digest, u64), CacheError> {
        self.file.flush()?;
        let digest = Digest::from_sha256(self.hasher.finalize().into());
        if let Some(expected) = expected
            && expected != &digest
        {
            return Err(CacheError::Corrupt {
                expected: expected.clone(),
                actual: digest,
            });
        }
        publish(self.file, &self.store.path(&digest))?;
        Ok((digest, self.size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::new(dir.path().join("blobs"), dir.path().join("tmp"));
        (dir, store)
    }

    #[test]
    fn blobs_round_trip_under_their_digest() {
        let (_dir, store) = store();
        let digest = store.write(b"hello").expect("write");
        assert_eq!(digest, Digest::of(b"hello"));
        assert!(store.verify(&digest).expect("verify"));
        assert!(!store.verify(&Digest::of(b"absent")).expect("verify"));
        assert_eq!(store.read(&digest).as_deref(), Some(&b"hello"[..]));
        assert_eq!(
            fs_err::metadata(store.path(&digest)).map(|m| m.len()).ok(),
            Some(5)
        );
    }

    #[test]
    fn corrupt_blob_is_reported_and_removed() {
        let (_dir, store) = store();
        let digest = store.write(b"hello").expect("write");
        fs_err::write(store.path(&digest), b"jello").expect("corrupt it");
        assert!(matches!(
            store.verify(&digest),
            Err(CacheError::Corrupt { .. })
        ));
        assert!(!store.path(&digest).exists());
    }

    #[test]
    fn a_corrupt_blob_is_never_read_and_is_removed() {
        let (_dir, store) = store();
        let digest = store.write(b"config").expect("write");
        fs_err::write(store.path(&digest), b"tampered").expect("corrupt it");
        assert!(store.read(&digest).is_none(), "tampered content was served");
        assert!(!store.path(&digest).exists());
    }

    #[test]
    fn pending_blob_with_wrong_expected_digest_publishes_nothing() {
        let (dir, store) = store();
        let mut pending = store.pending().expect("pending");
        pending.write_all(b"data").expect("write");
        let wrong = Digest::of(b"other");
        assert!(pending.commit(Some(&wrong)).is_err());
        assert!(!store.path(&Digest::of(b"data")).exists());
        assert!(!store.path(&wrong).exists());
        let leftovers = fs_err::read_dir(dir.path().join("tmp"))
            .expect("tmp")
            .count();
        assert_eq!(leftovers, 0, "temp file left behind");
    }

    #[test]
    fn a_pending_blob_is_published_under_its_digest() {
        let (_dir, store) = store();
        let mut pending = store.pending().expect("pending");
        pending.write_all(b"streamed").expect("write");
        let (digest, size) = pending.commit(None).expect("commit");
        assert_eq!((digest.clone(), size), (Digest::of(b"streamed"), 8));
        assert!(store.verify(&digest).expect("verify"));
    }
}
