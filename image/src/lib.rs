//! Image assembly and output for pyslip, in go-containerregistry's shape: the image model
//! ([`model`]: a config and a manifest over layer descriptors; several images under an index),
//! how it is made ([`assemble`]: append layers to a base; [`config`]; [`index`]), where blob
//! bytes come from ([`source`]) and where images go ([`sink`]: registry push, OCI layout,
//! tarball).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod assemble;
pub mod config;
pub mod error;
pub mod index;
mod json;
pub mod model;
pub mod sink;
pub mod source;

pub use assemble::{assemble, config_platform, oci_layer_media_type};
pub use config::{ImageSettings, build_config, created_timestamp};
pub use error::ImageError;
pub use index::index;
pub use model::{Artifact, BlobRef, Image, ImageLayer, LayerOrigin, MultiImage, NewLayer};
pub use source::LocalBlobs;
