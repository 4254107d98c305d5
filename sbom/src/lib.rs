//! What an image holds, read from its layer blobs, and the documents that say so.
//!
//! - [`ImageContents::read`] scans layer blobs (gzip'd tars, read as data: nothing is extracted or
//!   executed) and merges them as the container sees them: Python distributions (from their
//!   `*.dist-info/METADATA`), Debian packages (the dpkg database) and the distribution
//!   (`os-release`), each with the layer that holds it, plus per-layer file counts and sizes.
//! - [`LockedFiles::read`] reads which file (and sha256) the project's lock pins per package.
//! - [`Inventory::new`] joins both with the image and project; [`render`] writes it as SPDX 2.3
//!   or CycloneDX 1.6 JSON, byte-identical for the same inputs.
//! - [`Artifact`] wraps a document as an OCI 1.1 referrer of the image.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod contents;
pub mod cyclonedx;
pub mod dpkg;
pub mod error;
pub mod inventory;
pub mod license;
pub mod locks;
pub mod project;
pub mod python;
pub mod referrer;
pub mod scan;
pub mod spdx;
#[cfg(test)]
mod testutil;
pub mod view;

pub use contents::{ImageContents, LayerCounts, LayerInfo};
pub use error::SbomError;
pub use inventory::{ImageSubject, Inventory, Package, PackageKind, ProjectInfo, SbomInput};
pub use locks::{LockSource, LockedFiles};
pub use project::project_info;
pub use referrer::Artifact;

/// A document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.6 JSON.
    CycloneDx,
}

impl Format {
    /// The media type (also the referrer's `artifactType`).
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Spdx => spdx::MEDIA_TYPE,
            Self::CycloneDx => cyclonedx::MEDIA_TYPE,
        }
    }

    /// The file name the referrer gives the document.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Spdx => "sbom.spdx.json",
            Self::CycloneDx => "sbom.cdx.json",
        }
    }
}

/// The document for `inventory` in `format`.
pub fn render(inventory: &Inventory, format: Format) -> Vec<u8> {
    match format {
        Format::Spdx => spdx::to_json(inventory),
        Format::CycloneDx => cyclonedx::to_json(inventory),
    }
}
