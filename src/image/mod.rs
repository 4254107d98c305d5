//! The image being built: base config + pyslip's settings → config blob, then the OCI manifest.
//!
//! Mutation is "append layers to base" (as in go-containerregistry): base layers are referenced,
//! never rewritten; the new layers and the edited config are the only new blobs.

mod config;
mod manifest;

pub use config::{ImageSettings, build_config, created_timestamp};
pub use manifest::{BlobRef, ImageParts, LayerOrigin, NewLayer, assemble};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer media type.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
