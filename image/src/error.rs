//! The image crate's error type, with one-line hints for the errors a user can act on.

use std::path::PathBuf;

/// Everything that can go wrong assembling an image or writing it out.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The base image's config is not what an image config must be.
    #[error("the base image config {problem}")]
    BaseConfig {
        /// What is wrong with it.
        problem: String,
    },

    /// `SOURCE_DATE_EPOCH` is not a usable time.
    #[error("SOURCE_DATE_EPOCH={value:?} is not a whole number of seconds since 1970")]
    SourceDateEpoch {
        /// The value given.
        value: String,
    },

    /// oci-spec refused a value (a digest, a media type, a missing field).
    #[error("cannot build the {what}")]
    Spec {
        /// What was being built.
        what: String,
        /// oci-spec's reason.
        #[source]
        source: oci_spec::OciSpecError,
    },

    /// A manifest, index or config could not be serialised.
    #[error("cannot serialise json")]
    Serialize(#[source] serde_json::Error),

    /// An index needs at least one image, each for another platform.
    #[error("an image index {problem}")]
    Index {
        /// What is wrong.
        problem: String,
    },

    /// The `--oci-layout` directory is neither empty nor an OCI layout.
    #[error(
        "{}: the directory exists, is not empty and is not an OCI layout (no oci-layout file)",
        .dir.display()
    )]
    LayoutNotEmpty {
        /// The directory.
        dir: PathBuf,
    },

    /// The layout's `oci-layout` or `index.json` cannot be used.
    #[error("{}: {problem}", .path.display())]
    LayoutFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },

    /// A blob the output needs is not in the local blob store.
    #[error("blob {digest} is missing from {}", .dir.display())]
    MissingBlob {
        /// The blob.
        digest: layers::Digest,
        /// Where it was looked for.
        dir: PathBuf,
    },

    /// Local file I/O failed (fs-err errors name the path).
    #[error("file i/o failed")]
    Io(#[from] std::io::Error),
}

impl ImageError {
    /// A one-line suggestion for the user, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::SourceDateEpoch { .. } => Some(
                "set SOURCE_DATE_EPOCH to seconds since 1970 (e.g. `git log -1 --format=%ct`), or unset it"
                    .to_owned(),
            ),
            Self::LayoutNotEmpty { .. } => Some(
                "give --oci-layout a new or empty directory, or an existing OCI image layout"
                    .to_owned(),
            ),
            Self::LayoutFile { .. } => Some(
                "the layout was changed by hand or by another tool; write to a fresh directory"
                    .to_owned(),
            ),
            Self::MissingBlob { .. } => {
                Some("the cache lost a blob while building; run the build again".to_owned())
            }
            _ => None,
        }
    }
}
