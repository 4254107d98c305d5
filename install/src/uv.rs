//! The pinned, hash-verified static uv that runs inside the sandbox.
//!
//! pyslip never relies on a uv on the host: it downloads uv's musllinux wheel of a pinned version
//! from PyPI, checks its sha256 against the value pinned here, and extracts the static `uv`
//! binary into `<cache>/tools-v1/uv-<version>-<arch>/uv` atomically. The binary is bind-mounted
//! read-only into the sandbox and never lands in a layer.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

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

/// Returns the path of the pinned uv for `platform` (`linux/amd64`, `linux/arm64`), downloading
/// and verifying it into `<cache_dir>/tools-v1` when it is not there yet. `host_env` supplies
/// `SSL_CERT_FILE` and `HTTPS_PROXY` for the download.
pub fn ensure_uv(
    cache_dir: &Path,
    platform: &str,
    host_env: &[(String, String)],
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
    let tmp_dir = cache_dir.join("tmp");
    fs_err::create_dir_all(&tmp_dir).map_err(cache_err)?;

    let mut wheel =
        pyslip_lifecycle::scratch::temp_file_in(&tmp_dir, ".uv-wheel-").map_err(cache_err)?;
    let actual = download(pinned.url, host_env, wheel.as_file_mut())?;
    if actual != pinned.sha256 {
        return Err(InstallError::UvChecksum {
            url: pinned.url,
            expected: pinned.sha256,
            actual,
        });
    }
    let mut archive =
        zip::ZipArchive::new(wheel.reopen().map_err(cache_err)?).map_err(InstallError::UvWheel)?;
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

/// Downloads `url` into `out`, returning the hex sha256 of what was written.
fn download(
    url: &'static str,
    host_env: &[(String, String)],
    out: &mut std::fs::File,
) -> Result<String, InstallError> {
    let get = |name: &str| {
        host_env
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let http_err = |e: ureq::Error| InstallError::UvDownload {
        version: UV_VERSION,
        url,
        source: Box::new(e),
    };
    let ca_file =
        get("SSL_CERT_FILE").unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".to_owned());
    let roots = match fs_err::read(&ca_file) {
        Ok(pem) => {
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                ureq::tls::RootCerts::WebPki
            } else {
                ureq::tls::RootCerts::new_with_certs(&certs)
            }
        }
        Err(_) => ureq::tls::RootCerts::WebPki,
    };
    let proxy = get("HTTPS_PROXY")
        .or_else(|| get("ALL_PROXY"))
        .map(|p| ureq::Proxy::new(&p))
        .transpose()
        .map_err(http_err)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        .proxy(proxy)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(http_err)?;
    let mut reader = response.body_mut().with_config().limit(MAX_WHEEL).reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| http_err(ureq::Error::Io(e)))?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        out.write_all(chunk).map_err(cache_err)?;
    }
    out.flush().map_err(cache_err)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
