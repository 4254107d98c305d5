//! Errors from unpacking an untrusted layer.

use std::io;

/// Why a layer could not be applied to a root. The root must be discarded after any of these.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The compressed stream could not be read or decompressed (includes truncated gzip).
    #[error("could not read the layer stream")]
    Stream(#[source] io::Error),
    /// The tar structure is malformed (bad checksum, bad number, unexpected end).
    #[error("malformed tar archive")]
    Tar(#[source] io::Error),
    /// The layer expands to more than the allowed number of bytes (a gzip bomb, or a huge layer).
    #[error("layer expands beyond the limit of {limit} uncompressed bytes")]
    TooLarge {
        /// The configured limit.
        limit: u64,
    },
    /// A GNU long name/link or PAX header is larger than allowed.
    #[error("tar metadata record of {size} bytes exceeds the limit of {limit} bytes")]
    MetadataTooLarge {
        /// Declared size of the record.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// More entries than allowed.
    #[error("layer has more than {limit} entries")]
    TooManyEntries {
        /// The configured limit.
        limit: u64,
    },
    /// The archive ended inside an entry's data.
    #[error("archive is truncated inside {path}")]
    Truncated {
        /// The entry being read.
        path: String,
    },
    /// A whiteout file with no usable name (`.wh.`, `.wh..`, `.wh...`).
    #[error("malformed whiteout entry {path}")]
    MalformedWhiteout {
        /// The entry name.
        path: String,
    },
    /// A non-directory entry for the root itself (`.`, `/`, empty name).
    #[error("entry {path:?} would replace the root directory")]
    RootEntry {
        /// The entry name as found in the archive.
        path: String,
    },
    /// An entry type this unpacker does not handle (sparse files, tape volumes, unknown types).
    #[error("entry {path} has unsupported type {kind:?}")]
    Unsupported {
        /// The entry.
        path: String,
        /// Its tar type byte.
        kind: char,
    },
    /// A parent of the entry exists but is not a directory (or is a dangling symlink).
    #[error("cannot create {path}: a parent is not a directory")]
    ParentNotDirectory {
        /// The entry.
        path: String,
    },
    /// A filesystem operation inside the root failed.
    #[error("could not {op} {path} in the root")]
    Fs {
        /// What was being done.
        op: &'static str,
        /// Root-relative path.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The root directory itself could not be opened or prepared.
    #[error("could not prepare root directory {path}")]
    Root {
        /// The root path on the host.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The kernel has no `openat2` (Linux < 5.6) or a seccomp filter blocks it.
    #[error("openat2 is not available")]
    Openat2Unavailable(#[source] io::Error),
}

impl UnpackError {
    /// Advice the user can act on, if there is any.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::TooLarge { .. } => Some(
                "the base image layer is larger than pyslip allows; use a smaller base image"
                    .to_owned(),
            ),
            Self::Openat2Unavailable(_) => Some(
                "pyslip needs Linux 5.6 or newer to unpack base images safely; if running in a \
                 container, allow the openat2 syscall in its seccomp profile"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}
