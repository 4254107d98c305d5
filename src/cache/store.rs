//! The cache store: locating the cache directory, blob paths, atomic writes.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use layers::Digest;
use pyslip_lifecycle::scratch::temp_file_in;
use sha2::{Digest as _, Sha256};

/// Version of the on-disk blob layout; bump it to invalidate every cached blob.
use pyslip_lifecycle::folders::BLOBS as BLOBS_DIR;

/// Errors from the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Neither `XDG_CACHE_HOME` nor `HOME` is set.
    #[error("cannot locate the cache directory: neither XDG_CACHE_HOME nor HOME is set")]
    NoHome,
    /// An I/O error (the path is in the source's message).
    #[error("cache i/o failed")]
    Io(#[source] io::Error),
    /// The cache directory cannot be written (read-only, another user's, full).
    #[error("cannot use the cache directory {}: {problem}", root.display())]
    Unusable {
        /// The cache root (`…/pyslip`).
        root: PathBuf,
        /// What is wrong, in words.
        problem: String,
        /// The failed write.
        #[source]
        source: io::Error,
    },
    /// A cached file does not hash to its name (disk corruption or tampering); it was removed.
    #[error("cached blob {expected} was corrupt (hashed to {actual}) and has been removed")]
    Corrupt {
        /// The digest the file is named after.
        expected: Digest,
        /// What it actually hashes to.
        actual: Digest,
    },
}

impl CacheError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NoHome => Some("set XDG_CACHE_HOME to a writable directory".into()),
            Self::Io(err) if is_no_space(err) => {
                Some("the disk holding the cache is full; free space or set XDG_CACHE_HOME".into())
            }
            Self::Io(err) if err.kind() == io::ErrorKind::PermissionDenied => Some(
                "the cache directory is not writable; fix its permissions or set XDG_CACHE_HOME"
                    .into(),
            ),
            Self::Io(_) => None,
            Self::Unusable { source, .. } if is_no_space(source) => Some(
                "free space on that file system, or set XDG_CACHE_HOME to a directory on a larger one"
                    .into(),
            ),
            Self::Unusable { .. } => Some(
                "set XDG_CACHE_HOME to a directory you can write to (pyslip keeps its cache in XDG_CACHE_HOME/pyslip), or fix the ownership or permissions of this one"
                    .into(),
            ),
            Self::Corrupt { .. } => {
                Some("run the build again; the entry will be fetched anew".into())
            }
        }
    }
}

fn is_no_space(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

impl CacheError {
    /// Explains why writing under `root` failed with `source`: a read-only file system, a
    /// directory of another user, missing permissions, or a full disk.
    fn unusable(root: &Path, source: io::Error) -> CacheError {
        use std::os::unix::fs::MetadataExt as _;
        let problem = match source.kind() {
            io::ErrorKind::ReadOnlyFilesystem => "it is on a read-only file system".to_owned(),
            _ if is_no_space(&source) => "the file system holding it is full".to_owned(),
            io::ErrorKind::PermissionDenied => {
                // The nearest folder that exists is the one we could not write into.
                let me = rustix::process::geteuid().as_raw();
                let owner = root
                    .ancestors()
                    .find_map(|p| fs_err::metadata(p).ok().map(|m| (p.to_owned(), m.uid())));
                match owner {
                    Some((dir, uid)) if uid != me => format!(
                        "{} belongs to another user (uid {uid}; you are uid {me})",
                        dir.display()
                    ),
                    _ => "it is not writable by you".to_owned(),
                }
            }
            _ => return CacheError::Io(source),
        };
        CacheError::Unusable {
            root: root.to_owned(),
            problem,
            source,
        }
    }
}

impl From<io::Error> for CacheError {
    fn from(err: io::Error) -> Self {
        Self::Io(err)
    }
}

/// A handle on the cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// Open (creating if needed) the cache at `${XDG_CACHE_HOME:-~/.cache}/pyslip`.
    pub fn open_default() -> Result<Self, CacheError> {
        Self::open(Self::default_root()?)
    }

    /// `${XDG_CACHE_HOME:-~/.cache}/pyslip`, whether or not it exists.
    pub fn default_root() -> Result<PathBuf, CacheError> {
        let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => {
                let home = std::env::var_os("HOME").filter(|v| !v.is_empty());
                PathBuf::from(home.ok_or(CacheError::NoHome)?).join(".cache")
            }
        };
        Ok(base.join("pyslip"))
    }

    /// Open (creating if needed) a cache rooted at `root`.
    ///
    /// A cache that cannot be written (read-only, another user's, full) is refused here, before
    /// any work, with [`CacheError::Unusable`].
    pub fn open(root: PathBuf) -> Result<Self, CacheError> {
        let unusable = |e| CacheError::unusable(&root, e);
        for dir in [root.join(BLOBS_DIR).join("sha256"), root.join("tmp")] {
            fs_err::create_dir_all(dir).map_err(unusable)?;
        }
        // Existing folders may still be unwritable: try a write where every build writes.
        drop(temp_file_in(&root.join("tmp"), ".probe-").map_err(unusable)?);
        let tag = root.join("CACHEDIR.TAG");
        if !tag.exists() {
            write_atomic_in(
                &root.join("tmp"),
                &tag,
                b"Signature: 8a477f597d28d172789f06886806bc55\n# pyslip's cache; see https://bford.info/cachedir/\n",
            )?;
        }
        Ok(Self { root })
    }

    /// A folder for temp files on the cache's file system.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A versioned sub-folder of the cache (e.g. `roots-v1`), created if needed.
    pub fn dir(&self, name: &str) -> Result<PathBuf, CacheError> {
        let dir = self.root.join(name);
        fs_err::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// The cache's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The content-addressed blob directory (`<hex>` files).
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join(BLOBS_DIR).join("sha256")
    }

    /// Where the blob with this digest lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// Whether the blob is in the cache and hashes to its name; a corrupt one is removed (and
    /// reported), so the caller fetches it anew.
    pub fn verify_blob(&self, digest: &Digest) -> Result<bool, CacheError> {
        let path = self.blob_path(digest);
        let mut file = match fs_err::File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(err.into()),
        };
        let mut hasher = Sha256::new();
        io::copy(&mut file, &mut hasher)?;
        let actual = Digest::from_sha256(hasher.finalize().into());
        if &actual != digest {
            let _ = fs_err::remove_file(&path);
            return Err(CacheError::Corrupt {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(true)
    }

    /// Store bytes as a blob and return their digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest, CacheError> {
        let digest = Digest::of(bytes);
        let path = self.blob_path(&digest);
        if !path.exists() {
            write_atomic_in(&self.tmp_dir(), &path, bytes)?;
        }
        Ok(digest)
    }

    /// Start writing a blob whose digest is known only at the end.
    pub fn pending_blob(&self) -> Result<PendingBlob, CacheError> {
        let file = temp_file_in(&self.tmp_dir(), ".blob-")?;
        Ok(PendingBlob {
            file,
            hasher: Sha256::new(),
            size: 0,
            cache: self.clone(),
        })
    }
}

/// A blob being written to the cache: hashed as it is written, published by [`PendingBlob::commit`].
///
/// Dropping it without committing deletes the temp file.
pub struct PendingBlob {
    file: tempfile::NamedTempFile,
    hasher: Sha256,
    size: u64,
    cache: Cache,
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
        self.file.as_file().sync_all()?;
        let path = self.cache.blob_path(&digest);
        self.file.persist(&path).map_err(|err| {
            io::Error::new(
                err.error.kind(),
                format!("publishing {}: {}", path.display(), err.error),
            )
        })?;
        Ok((digest, self.size))
    }
}

/// Write `bytes` to `dest` through a temp file in `tmp_dir`, fsynced and renamed into place.
pub fn write_atomic_in(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let mut file = temp_file_in(tmp_dir, ".tmp-")?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(dest).map_err(|err| {
        io::Error::new(
            err.error.kind(),
            format!("publishing {}: {}", dest.display(), err.error),
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(dir.path().join("pyslip")).expect("open");
        (dir, cache)
    }

    #[test]
    fn blobs_round_trip_under_their_digest() {
        let (_dir, cache) = cache();
        let digest = cache.write_blob(b"hello").expect("write");
        assert_eq!(digest, Digest::of(b"hello"));
        assert!(cache.verify_blob(&digest).expect("verify"));
        assert!(!cache.verify_blob(&Digest::of(b"absent")).expect("verify"));
        assert_eq!(
            fs_err::metadata(cache.blob_path(&digest))
                .map(|m| m.len())
                .ok(),
            Some(5)
        );
    }

    #[test]
    fn corrupt_blob_is_reported_and_removed() {
        let (_dir, cache) = cache();
        let digest = cache.write_blob(b"hello").expect("write");
        fs_err::write(cache.blob_path(&digest), b"jello").expect("corrupt it");
        assert!(matches!(
            cache.verify_blob(&digest),
            Err(CacheError::Corrupt { .. })
        ));
        assert!(!cache.blob_path(&digest).exists());
    }

    #[test]
    fn pending_blob_with_wrong_expected_digest_publishes_nothing() {
        let (_dir, cache) = cache();
        let mut pending = cache.pending_blob().expect("pending");
        pending.write_all(b"data").expect("write");
        let wrong = Digest::of(b"other");
        assert!(pending.commit(Some(&wrong)).is_err());
        assert!(!cache.blob_path(&Digest::of(b"data")).exists());
        assert!(!cache.blob_path(&wrong).exists());
        let leftovers = fs_err::read_dir(cache.tmp_dir()).expect("tmp").count();
        assert_eq!(leftovers, 0, "temp file left behind");
    }
}
