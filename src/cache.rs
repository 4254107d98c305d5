//! pyslip's cache directory: the `pyslip-cache` crate, which the install crate and the registry
//! client share (root and checks, blob store, atomic writes, layer index, sweeping).

pub use pyslip_cache::{Cache, CacheError, write_atomic_in};
