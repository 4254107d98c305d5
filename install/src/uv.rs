//! The pinned, hash-verified static uv that runs inside the sandbox.
//!
//! pyslip never relies on a uv on the host: it downloads uv's musllinux wheel of a pinned version
//! from PyPI, checks its sha256 against the value pinned here, and extracts the static `uv`
//! binary into `<cache>/tools-v1/uv-<version>-<arch>/uv` atomically. The binary is bind-mounted
//! read-only into the sandbox and never lands in a layer.

use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::InstallError;

/// The pinned uv version.
pub const UV_VERSION: &str = "0.13.9";

/// One pinned wheel.
struct Pinned {
    arch: &'static str,
    url: &'static str,
    sha256: &'static str,
}

const WHEELS: &[Pinned] = &[
    Pinned {
        arch: "amd64",
        url: "https://files.pythonhosted.org/packages/fe/fe/794884de0efd3ac77a427cab21aa72c0483e100c55a42cd5cbb02c141b84/uv-0.13.9-py3-none-musllinux_1_1_x86_64.whl",
        sha256: "2c45530751517d6c3bbc69a19473f6effe47cce047bede01ffd8af7ea7b36b25",
    },
    Pinned {
        arch: "arm64",
        url: "https://files.pythonhosted.org/packages/57/15/94b6cd62ac3ff6550288328e8035288875197cbc183f51554b266a69877b/uv-0.13.9-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
        sha256: "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
    },
];

/// Largest wheel accepted (the real ones are ~20 MB).
const MAX_WHEEL: u64 = 128 << 20;
/// Largest binary accepted from the wheel (the real one is ~45 MB).
const MAX_BINARY: u64 = 256 << 20;

fn cache_err(e: io::Error) -> InstallError {
    InstallError::Cache(e)
}

/// Downloads a URL into a file, through the program's one HTTP stack (the registry client's
/// proxies, CA roots and retries). The body must hash to `sha256` and be at most `max_bytes`
/// long; otherwise the call fails and leaves nothing at `dest`.
pub trait Fetch: Sync + std::fmt::Debug {
    /// Fetch `url` into `dest`.
    fn fetch(
        &self,
        url: &str,
        dest: &Path,
        sha256: &str,
        max_bytes: u64,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// The uv a build of `req` runs on this host, whatever platform it installs for: `--uv PATH`
/// (canonical), else the pinned one in the cache at `cache_dir` (downloaded when missing).
pub(crate) fn uv_for(
    req: &crate::request::DepsRequest,
    cache_dir: &Path,
) -> Result<PathBuf, InstallError> {
    match req.uv_override {
        Some(path) => fs_err::canonicalize(path).map_err(InstallError::Cache),
        None => ensure_uv(
            cache_dir,
            &format!("linux/{}", crate::platform::host_arch()),
            req.fetch,
        ),
    }
}

/// Returns the path of the pinned uv for `platform` (`linux/amd64`, `linux/arm64`), downloading
/// it with `fetch` (which verifies the pinned sha256) and extracting it into
/// `<cache_dir>/tools-v1` when it is not there yet.
pub fn ensure_uv(
    cache_dir: &Path,
    platform: &str,
    fetch: &dyn Fetch,
) -> Result<PathBuf, InstallError> {
    let arch = platform.rsplit('/').next().unwrap_or(platform);
    let arch = match arch {
        "amd64" | "x86_64" => "amd64",
        "arm64" | "aarch64" => "arm64",
        _ => return Err(InstallError::UvPlatform(platform.to_owned())),
    };
    let pinned = WHEELS
        .iter()
        .find(|w| w.arch == arch)
        .ok_or_else(|| InstallError::UvPlatform(platform.to_owned()))?;
    let dir = cache_dir
        .join(pyslip_lifecycle::folders::TOOLS)
        .join(format!("uv-{UV_VERSION}-{arch}"));
    let binary = dir.join("uv");
    if binary.is_file() {
        return Ok(binary);
    }
    fs_err::create_dir_all(&dir).map_err(cache_err)?;
    let tmp_dir = cache_dir.join(pyslip_lifecycle::folders::TMP);
    fs_err::create_dir_all(&tmp_dir).map_err(cache_err)?;

    let wheel =
        pyslip_lifecycle::scratch::temp_file_in(&tmp_dir, ".uv-wheel-").map_err(cache_err)?;
    fetch
        .fetch(pinned.url, wheel.path(), pinned.sha256, MAX_WHEEL)
        .map_err(|source| InstallError::UvDownload {
            version: UV_VERSION,
            url: pinned.url,
            source,
        })?;
    let mut archive =
        // By path: the fetch replaces the file (temp + rename), so `reopen` would refuse it.
        zip::ZipArchive::new(fs_err::File::open(wheel.path()).map_err(cache_err)?)
            .map_err(InstallError::UvWheel)?;
    let name = format!("uv-{UV_VERSION}.data/scripts/uv");
    let mut entry = archive.by_name(&name).map_err(InstallError::UvWheel)?;
    let mut out = tempfile::Builder::new()
        .prefix(".uv-")
        .tempfile_in(&dir)
        .map_err(cache_err)?;
    let copied =
        io::copy(&mut (&mut entry).take(MAX_BINARY + 1), out.as_file_mut()).map_err(cache_err)?;
    if copied > MAX_BINARY {
        return Err(InstallError::UvWheel(
            zip::result::ZipError::InvalidArchive("uv binary too large".into()),
        ));
    }
    out.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o755))
        .map_err(cache_err)?;
    out.as_file().sync_all().map_err(cache_err)?;
    // Close the write descriptor BEFORE the rename: a concurrent build sharing the cache may
    // exec `uv` the moment it appears, and exec fails with ETXTBSY while any writer is open.
    out.into_temp_path()
        .persist(&binary)
        .map_err(|e| cache_err(e.error))?;
    Ok(binary)
}
