//! What the caller asks for and what it gets back.

use std::path::{Path, PathBuf};

use layers::{Digest, WrittenLayer};
use pyslip_cache::{Cache, LayerKind};
use pyslip_plan::BuildPlan;

use crate::error::InstallError;
use crate::runner::Isolation;

/// One dependency-layer build.
#[derive(Debug, Clone)]
pub struct DepsRequest<'a> {
    /// The project directory (the plan was made from it).
    pub project_dir: &'a Path,
    /// The build plan; its `install` says what to install.
    pub plan: &'a BuildPlan,
    /// The unpacked base image root filesystem, used read-only as the sandbox's lower dir.
    pub base_root: &'a Path,
    /// The base image's manifest digest (part of the cache key).
    pub base_digest: &'a Digest,
    /// Target platform, `linux/amd64` or `linux/arm64` (part of the cache key; picks uv's build).
    pub platform: &'a str,
    /// pyslip's cache root (`${XDG_CACHE_HOME:-~/.cache}/pyslip`).
    pub cache_dir: &'a Path,
    /// `--uv PATH`: a static uv to use instead of the pinned download.
    pub uv_override: Option<&'a Path>,
    /// Rebuild even when the cache has the layer.
    pub no_cache: bool,
    /// mtime of every layer entry and `SOURCE_DATE_EPOCH` of the install.
    pub mtime: u64,
    /// The build's environment; `PIP_*`, `UV_*`, proxy and CA settings are taken from it.
    pub host_env: Vec<(String, String)>,
    /// Downloads the pinned uv when it is not in the cache yet.
    pub fetch: &'a dyn crate::uv::Fetch,
    /// Whether the installer runs in the namespace sandbox or for the root from the host (the
    /// layer's bytes are the same either way).
    pub isolation: Isolation,
}

/// The dependency layer, in the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepsLayer {
    /// Digest, diff_id and sizes.
    pub layer: WrittenLayer,
    /// The gzip'd layer: `<cache>/blobs-v1/sha256/<hex>`.
    pub blob_path: PathBuf,
    /// True when the layer came from the cache (no sandbox run, no tar, no gzip).
    pub reused: bool,
    /// History line for the image config (no secrets).
    pub created_by: String,
    /// The cache key (hex sha256).
    pub key: String,
    /// Tail of the installer's output, credentials redacted (empty on reuse).
    pub log: String,
    /// Paths whose setuid/setgid/sticky or world-write bits the layer dropped (empty on reuse).
    pub special_bits: Vec<String>,
}

/// The project layer (the project's own package, installed without its dependencies): the same
/// shape as the dependency layer.
pub type ProjectLayer = DepsLayer;

/// pyslip's cache at `dir`, opened (created and checked) at its canonical path: the sandbox
/// bind-mounts folders of it, and bind sources must be free of symlinks.
pub(crate) fn open_cache(dir: &Path) -> Result<Cache, InstallError> {
    fs_err::create_dir_all(dir).map_err(InstallError::Cache)?;
    let dir = fs_err::canonicalize(dir).map_err(InstallError::Cache)?;
    Ok(Cache::open(dir)?)
}

impl DepsLayer {
    /// The layer recorded under `key` in the `kind` index of the cache at `cache_dir`, reused;
    /// `None` when absent or when its blob no longer verifies.
    pub(crate) fn cached(
        cache_dir: &Path,
        kind: LayerKind,
        key: String,
    ) -> Result<Option<DepsLayer>, InstallError> {
        let cache = open_cache(cache_dir)?;
        Ok(cache.lookup_layer(kind, &key).map(|hit| DepsLayer {
            layer: hit.layer,
            blob_path: hit.blob_path,
            reused: true,
            created_by: hit.created_by,
            key,
            log: String::new(),
            special_bits: Vec::new(),
        }))
    }
}
