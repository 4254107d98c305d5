//! pyslip's cache directory: content-addressed blobs and small JSON indexes.
//!
//! Layout under `${XDG_CACHE_HOME:-~/.cache}/pyslip` (every folder carries a version, so a format
//! change never reads old bytes as new):
//! - `blobs-v1/sha256/<hex>`: layers, configs and manifests, named by their digest;
//! - `tmp/`: temp files, on the same file system so that publishing is a rename.
//!
//! Every temp file and scratch dir is locked by its owner while in use; each build starts by
//! sweeping those nobody holds any more (left by killed builds), see [`Cache::sweep_in_background`].
//!
//! Every write goes to a temp file, is flushed to disk and renamed into place, so a killed build
//! never leaves a half-written file under a name a later build trusts. Two builds sharing the cache
//! may write the same blob at once: both renames carry identical bytes.

mod store;
mod sweep;

pub use store::{Cache, CacheError, write_atomic_in};
