//! The cache root: where it is, opening it (refusing one that cannot be written), its folders.

use std::path::{Path, PathBuf};

use pyslip_digest::Digest;
use pyslip_lifecycle::folders;
use pyslip_lifecycle::scratch::temp_file_in;

use crate::atomic::write_atomic_in;
use crate::blobs::{BlobStore, PendingBlob};
use crate::error::CacheError;

/// The `CACHEDIR.TAG` written into the root, so backup tools skip the cache.
const CACHEDIR_TAG: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55\n# pyslip's cache; see https://bford.info/cachedir/\n";

/// A handle on the cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    blobs: BlobStore,
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
        let cache = Self::at(root);
        let unusable = |e| CacheError::unusable(&cache.root, e);
        for dir in [cache.blobs_dir(), cache.tmp_dir()] {
            fs_err::create_dir_all(dir).map_err(unusable)?;
        }
        // Existing folders may still be unwritable: try a write where every build writes.
        drop(temp_file_in(&cache.tmp_dir(), ".probe-").map_err(unusable)?);
        let tag = cache.root.join("CACHEDIR.TAG");
        if !tag.exists() {
            write_atomic_in(&cache.tmp_dir(), &tag, CACHEDIR_TAG)?;
        }
        Ok(cache)
    }

    /// A handle on the cache at `root` without opening it: nothing is checked or created until
    /// something is written.
    fn at(root: PathBuf) -> Self {
        let blobs = BlobStore::new(
            root.join(folders::BLOBS).join("sha256"),
            root.join(folders::TMP),
        );
        Self { root, blobs }
    }

    /// A folder for temp files on the cache's file system.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join(folders::TMP)
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

    /// The content-addressed blob store (`blobs-v1/sha256/<hex>`).
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// The content-addressed blob directory (`<hex>` files).
    pub fn blobs_dir(&self) -> PathBuf {
        self.blobs.dir().to_owned()
    }

    /// Where the blob with this digest lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs.path(digest)
    }

    /// Whether the blob is in the cache and hashes to its name; a corrupt one is removed (and
    /// reported), so the caller fetches it anew.
    pub fn verify_blob(&self, digest: &Digest) -> Result<bool, CacheError> {
        self.blobs.verify(digest)
    }

    /// Store bytes as a blob and return their digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest, CacheError> {
        self.blobs.write(bytes)
    }

    /// Start writing a blob whose digest is known only at the end.
    pub fn pending_blob(&self) -> Result<PendingBlob, CacheError> {
        self.blobs.pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_creates_the_folders_and_the_cachedir_tag() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(dir.path().join("pyslip")).expect("open");
        assert!(cache.blobs_dir().is_dir());
        assert!(cache.tmp_dir().is_dir());
        let tag = fs_err::read(cache.root().join("CACHEDIR.TAG")).expect("tag");
        assert!(tag.starts_with(b"Signature: 8a477f597d28d172789f06886806bc55"));
        assert_eq!(
            fs_err::read_dir(cache.tmp_dir()).expect("tmp").count(),
            0,
            "the probe was left behind"
        );
    }
}
