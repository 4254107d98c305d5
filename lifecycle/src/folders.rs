//! The folder names of pyslip's cache directory, spelled once for the binary and the install
//! crate. Every folder that holds a format carries a version: bump it when the format changes,
//! so that no build reads old bytes as new.

/// Content-addressed blobs (`<BLOBS>/sha256/<hex>`): layers, configs, manifests.
pub const BLOBS: &str = "blobs-v1";
/// Base images unpacked as sandbox roots, one per platform manifest digest.
pub const ROOTS: &str = "roots-v1";
/// pyslip's own layers unpacked as lower dirs of later sandboxed steps.
pub const LAYER_ROOTS: &str = "layer-roots-v1";
/// Cache key → dependency layer records.
pub const DEPS_INDEX: &str = "deps-v1";
/// Cache key → project layer records.
pub const PROJECT_INDEX: &str = "project-v1";
/// Cache key → collectstatic layer records.
pub const STATIC_INDEX: &str = "static-v1";
/// uv's package cache (mounted into the sandbox).
pub const UV_CACHE: &str = "uv-v1";
/// pip's package cache (mounted into the sandbox).
pub const PIP_CACHE: &str = "pip-v1";
/// Bytecode by interpreter, image path and source (see the install crate's `pyc` module).
pub const PYC: &str = "pyc-v1";
/// The pinned uv.
pub const TOOLS: &str = "tools-v1";
/// Passed boot checks.
pub const CHECKS: &str = "checks-v1";
/// Which Python the exact pins have wheels for.
pub const PYTHON: &str = "python-v1";
/// Temp files and sandbox scratch dirs.
pub const TMP: &str = "tmp";
/// Logs of failed installs.
pub const LOGS: &str = "logs";
