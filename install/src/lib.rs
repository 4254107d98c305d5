//! The dependency layer: run the installer (uv or pip, with pipenv / poetry / uv.lock
//! semantics) in the rootless sandbox on top of the unpacked base image, and capture exactly what
//! the install added as one cached, reproducible layer. See [`dependency_layer`].
//!
//! Sync code only. Cache folders owned here (under pyslip's cache root): `uv-v1`, `pip-v1` (the
//! installers' package caches, mounted into the sandbox), `tools-v1` (the pinned uv), `deps-v1`
//! (the dependency-layer index); blobs go to `blobs-v1/sha256/<hex>`.

// Tests may unwrap: a panic is the failure report there.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod build;
mod env;
mod error;
mod failure;
mod fsutil;
mod key;
mod locks;
mod request;
mod steps;
mod store;
mod uv;

pub use build::{dependency_layer, lookup};
pub use env::strip_credentials;
pub use error::InstallError;
pub use key::{KEY_SCHEME, cache_key};
pub use locks::pipfile_hash;
pub use request::{DepsLayer, DepsRequest};
pub use uv::{UV_VERSION, ensure_uv};
