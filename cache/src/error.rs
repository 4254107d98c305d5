//! Errors of the cache, with hints for the ones a user can act on.

use std::io;
use std::path::{Path, PathBuf};

use pyslip_digest::Digest;

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
    /// A layer index key that is not a file name (keys are hex digests).
    #[error("cache key {key:?} is not a lowercase hex string")]
    InvalidKey {
        /// The refused key.
        key: String,
    },
    /// Writing a layer into the blob store failed (reading its files, or storing it).
    #[cfg(feature = "layers")]
    #[error("could not write the layer into the cache")]
    Layer(#[source] layers::LayerError),
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
            Self::Io(_) | Self::InvalidKey { .. } => None,
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
            #[cfg(feature = "layers")]
            Self::Layer(err) => err.hint(),
        }
    }

    /// Explains why writing under `root` failed with `source`: a read-only file system, a
    /// directory of another user, missing permissions, or a full disk.
    pub(crate) fn unusable(root: &Path, source: io::Error) -> CacheError {
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

fn is_no_space(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

impl From<io::Error> for CacheError {
    fn from(err: io::Error) -> Self {
        Self::Io(err)
    }
}
