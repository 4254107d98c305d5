//! pyslip's cache directory, one module for the binary, the install crate and the registry
//! client: the root and its checks ([`Cache`]), the content-addressed blob store
//! ([`BlobStore`]), atomic writes ([`write_atomic_in`], [`write_atomic_with`]), the layer index
//! ([`Cache::lookup_layer`], [`Cache::record_layer`]) and sweeping what killed builds left
//! ([`Cache::sweep_in_background`]). A registry-backed layer cache is a second tier of this one
//! store: its hits are downloaded into the blob store and recorded in the index.
//!
//! Layout under `${XDG_CACHE_HOME:-~/.cache}/pyslip` (folder names are in
//! `pyslip_lifecycle::folders`; every folder that holds a format carries a version, so a format
//! change never reads old bytes as new):
//! - `blobs-v1/sha256/<hex>`: layers, configs and manifests, named by their digest;
//! - `deps-v1/<key>.json`, `project-v1/`, `static-v1/`: cache key → layer record;
//! - `tmp/`: temp files, on the same file system so that publishing is a rename.
//!
//! Every write goes to a temp file, is flushed to disk and renamed into place, so a killed build
//! never leaves a half-written file under a name a later build trusts. Two builds sharing the
//! cache may write the same blob or record at once: both renames carry whole, equivalent bytes.
//! Every temp file and scratch dir is locked by its owner while in use; each build starts by
//! sweeping those nobody holds any more.
//!
//! Sync code only. The `layers` feature (on by default) adds writing layers and the layer index;
//! without it the crate needs no tar or gzip code.

// Tests may unwrap: a panic is the failure report there.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod atomic;
mod blobs;
mod error;
#[cfg(feature = "layers")]
mod index;
mod root;
mod sweep;

pub use atomic::{TEMP_PREFIX, write_atomic_in, write_atomic_with};
pub use blobs::{BlobStore, PendingBlob};
pub use error::CacheError;
#[cfg(feature = "layers")]
pub use index::{CachedLayer, LayerKind};
pub use root::Cache;
pub use sweep::Sweeping;
