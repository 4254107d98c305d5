//! Errors from making a layer.

use std::io;
use std::path::PathBuf;

/// Why a layer could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// An entry path is absolute, empty, or has `.`/`..`/empty components.
    #[error("invalid layer entry path {path:?}: {reason}")]
    InvalidPath {
        /// The rejected path.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two entries have the same path.
    #[error("two layer entries have the path {path:?}")]
    DuplicatePath {
        /// The duplicated path.
        path: String,
    },
    /// An entry has a parent that is listed as something other than a directory.
    #[error("{path:?} is listed as a non-directory but other entries are inside it")]
    ParentNotDirectory {
        /// The offending parent path.
        path: String,
    },
    /// A hardlink points at something that is not a regular file of the same layer.
    #[error("hardlink {path:?} points to {target:?}, which is not a regular file in this layer")]
    HardlinkTarget {
        /// The hardlink's path.
        path: String,
        /// Its target.
        target: String,
    },
    /// A file's size changed between `stat` and the end of reading it.
    #[error("{path} changed size while it was added to the layer")]
    FileChanged {
        /// The file on the host.
        path: PathBuf,
    },
    /// A host file or directory could not be read.
    #[error("could not read a file for the layer")]
    Read(#[source] io::Error),
    /// An extended attribute of an overlay upper file could not be read.
    #[error("could not read xattr {name} of {path}")]
    Xattr {
        /// The file.
        path: PathBuf,
        /// The attribute.
        name: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing the archive (tar, gzip or the sink) failed.
    #[error("could not write the layer")]
    Write(#[source] io::Error),
    /// The finished layer could not be stored in its directory.
    #[error("could not store the layer in {dir}")]
    Store {
        /// The destination directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl LayerError {
    /// Advice the user can act on, if there is any.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::FileChanged { .. } => Some(
                "something modified the file during the build; stop it (or exclude the file) and build again"
                    .to_owned(),
            ),
            Self::Store { .. } => {
                Some("check that the cache directory is writable and the disk is not full".to_owned())
            }
            _ => None,
        }
    }
}
