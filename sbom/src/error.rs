//! Errors of the SBOM crate.

use std::path::PathBuf;

/// Something the SBOM could not be made from.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// A file could not be read or written (the path is in the source's message).
    #[error("sbom i/o failed")]
    Io(#[source] std::io::Error),
    /// A layer blob is not a readable (gzip'd) tar.
    #[error("layer {path} is not a readable tar archive")]
    Layer {
        /// The blob.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A lock file could not be parsed.
    #[error("{path}: {reason}")]
    Lock {
        /// The lock.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An OCI document (manifest, index) is not what it should be.
    #[error("{what} is not a valid OCI document: {reason}")]
    Oci {
        /// Which document.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl SbomError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Io(_) => None,
            Self::Layer { .. } => {
                Some("the cached layer may be damaged: run the build again with --no-cache".into())
            }
            Self::Lock { .. } => {
                Some("regenerate the lock with its tool (uv lock, poetry lock, pipenv lock)".into())
            }
            Self::Oci { .. } => {
                Some("the image or layout was changed by another tool; rebuild it".into())
            }
        }
    }
}
