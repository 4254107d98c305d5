//! Layer making and unpacking: deterministic tar writer, gzip and sha256 in one streaming pass,
//! overlay upper dir to OCI layer with whiteouts, and safe extraction of untrusted layers.
//!
//! Sync code only; no registry or sandbox code lives here.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod changes;
pub mod diff;
pub mod entry;
pub mod error;
pub mod gzip;
pub mod hashing;
pub mod tree;
pub mod unpack;
pub mod writer;

pub use changes::{Changes, Lowers, changes_from_tree, changes_from_upper, normalised_mode};
pub use diff::diff_entries;
pub use entry::{EntryKind, FileSource, LayerEntry};
pub use error::LayerError;
pub use gzip::{GZIP_LEVEL, LAYER_FORMAT};
pub use hashing::{HashingWriter, diff_id_of};
pub use pyslip_digest::{Digest, DigestError};
pub use tree::tree_entries;
pub use unpack::{
    OwnerRecord, UnpackError, UnpackLimits, UnpackStats, unpack_layer, unpack_layers_into,
};
pub use writer::{LayerOptions, WrittenLayer, write_layer, write_layer_to_dir};
