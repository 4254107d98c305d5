//! The dependency layer: run the installer (uv or pip, with pipenv / poetry / uv.lock
//! semantics) in the rootless sandbox on top of the unpacked base image, and capture exactly what
//! the install added as one cached, reproducible layer. See [`dependency_layer`]. A project that
//! is itself a package gets a second, small layer with just that package ([`project_layer`]),
//! so that an app-code change does not re-run the dependency install.
//!
//! Django's `collectstatic` runs the same way over the dependency layer and the shipped files,
//! its output cached as a layer of its own: see [`collectstatic_layer`].
//!
//! Sync code only. Cache folders owned here (under pyslip's cache root): `uv-v1`, `pip-v1` (the
//! installers' package caches, mounted into the sandbox), `tools-v1` (the pinned uv), `pyc-v1`
//! (bytecode by source, see the `pyc` module), `layer-roots-v1` (layers unpacked as sandbox
//! lower dirs). Layers are written into the blob store and recorded in the layer index
//! (`deps-v1`, `project-v1`, `static-v1`) through `pyslip_cache`, the one cache module the
//! binary uses too.

// Tests may unwrap: a panic is the failure report there.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod build;
mod collectstatic;
mod compile;
mod env;
mod error;
mod failure;
mod fixup;
mod fsutil;
mod interp;
mod key;
mod locks;
mod platform;
mod prefetch;
mod pyc;
mod request;
mod roots;
mod runner;
mod shadow;
mod steps;
mod uv;

pub use build::{
    dependency_layer, dependency_layer_prefetched, has_project_layer, lookup, lookup_project,
    project_layer,
};
pub use collectstatic::{
    STATIC_KEY_SCHEME, StaticLayer, StaticRequest, collectstatic_layer, lookup_static,
    runs_collectstatic, runtime_owner, static_key,
};
pub use env::strip_credentials;
pub use error::{FailureContext, FailureKind, InstallError, WheelAdvice};
pub use key::{KEY_SCHEME, PROJECT_KEY_SCHEME, cache_key, project_key};
pub use locks::pipfile_hash;
pub use prefetch::{Prefetched, prefetch, prefetch_applies};
pub use pyslip_cache::LayerKind;
pub use request::{DepsLayer, DepsRequest, ProjectLayer};
pub use roots::layer_root;
pub use runner::Isolation;
pub use uv::{Fetch, UV_VERSION, ensure_uv};
