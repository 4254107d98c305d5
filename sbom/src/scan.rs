//! Reading one layer blob as a stream of tar entries (never extracted, never executed): how many
//! files it holds and how big they are, its whiteouts, and the few files the SBOM needs
//! (Python distribution metadata, the dpkg database, `os-release`), captured in memory.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use layers::entry::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX};

use crate::error::SbomError;

/// The largest file captured; a bigger one is skipped (a METADATA or dpkg status this big is
/// not a real one).
const MAX_CAPTURED: u64 = 16 << 20;

/// A file the SBOM reads, as the layer holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Captured {
    /// A regular file's bytes.
    File(Vec<u8>),
    /// A symbolic link's target (`os-release` is usually one).
    Symlink(String),
    /// Present, content not kept (dpkg's per-package `info/<name>.list`, which says which layer
    /// installed a package).
    Marker,
}

/// What one layer holds.
#[derive(Debug, Clone, Default)]
pub struct LayerScan {
    /// Entries that are not directories or whiteouts (files, links, devices).
    pub files: u64,
    /// Bytes of regular-file content.
    pub content_bytes: u64,
    /// Paths (relative, no leading `/` or `./`) this layer deletes from the layers below.
    pub whiteouts: Vec<String>,
    /// Directories whose lower-layer content this layer hides (opaque whiteouts).
    pub opaque_dirs: Vec<String>,
    /// The captured files, by path, in tar order.
    pub captured: Vec<(String, Captured)>,
}

/// Why a path is kept.
fn wanted(path: &str) -> Option<bool> {
    let file = path.rsplit('/').next().unwrap_or(path);
    let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
    let dist_dir = parent.ends_with(".dist-info");
    if dist_dir && matches!(file, "METADATA" | "WHEEL" | "direct_url.json") {
        return Some(true);
    }
    if parent.ends_with(".egg-info") && file == "PKG-INFO" {
        return Some(true);
    }
    if matches!(
        path,
        "var/lib/dpkg/status" | "etc/os-release" | "usr/lib/os-release"
    ) {
        return Some(true);
    }
    if parent == "var/lib/dpkg/status.d" && !file.starts_with('.') {
        return Some(true);
    }
    if parent == "var/lib/dpkg/info" && file.ends_with(".list") {
        return Some(false);
    }
    None
}

/// `./usr/bin/x`, `/usr/bin/x`, `usr/bin/x/` → `usr/bin/x`.
pub fn clean_path(raw: &str) -> String {
    let trimmed = raw.trim_start_matches("./").trim_start_matches('/');
    trimmed.trim_end_matches('/').to_owned()
}

/// Scan a layer blob: gzip'd or plain tar (sniffed from its first bytes).
pub fn scan_layer_file(path: &Path) -> Result<LayerScan, SbomError> {
    let file = fs_err::File::open(path).map_err(SbomError::Io)?;
    scan_layer(BufReader::with_capacity(1 << 20, file)).map_err(|source| SbomError::Layer {
        path: path.to_owned(),
        source,
    })
}

/// Scan a layer from a reader (gzip'd or plain tar).
pub fn scan_layer<R: BufRead>(mut reader: R) -> std::io::Result<LayerScan> {
    let head = reader.fill_buf()?;
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "zstd-compressed layers are not supported",
        ));
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        scan_tar(flate2::bufread::MultiGzDecoder::new(reader))
    } else {
        scan_tar(reader)
    }
}

fn scan_tar<R: Read>(reader: R) -> std::io::Result<LayerScan> {
    let mut archive = tar::Archive::new(reader);
    let mut scan = LayerScan::default();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = clean_path(&raw);
        if path.is_empty() {
            continue;
        }
        let (dir, name) = match path.rsplit_once('/') {
            Some((dir, name)) => (dir.to_owned(), name.to_owned()),
            None => (String::new(), path.clone()),
        };
        if name == OPAQUE_WHITEOUT {
            scan.opaque_dirs.push(dir);
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            scan.whiteouts.push(join(&dir, hidden));
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        scan.files += 1;
        let size = entry.header().size().unwrap_or(0);
        if kind.is_file() {
            scan.content_bytes += size;
        }
        let Some(keep_bytes) = wanted(&path) else {
            continue;
        };
        let captured = if kind.is_symlink() {
            let target = entry
                .link_name()?
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            Captured::Symlink(target)
        } else if !keep_bytes {
            Captured::Marker
        } else if kind.is_file() && size <= MAX_CAPTURED {
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            entry.read_to_end(&mut bytes)?;
            Captured::File(bytes)
        } else {
            continue;
        };
        scan.captured.push((path, captured));
    }
    Ok(scan)
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{TarBuilder, gzip};

    #[test]
    fn captures_metadata_dpkg_and_whiteouts() {
        let tar = TarBuilder::new()
            .dir("usr/lib/python3/")
            .file("./usr/lib/x.dist-info/METADATA", b"Name: x\n")
            .file("usr/lib/x.dist-info/RECORD", b"ignored")
            .file("var/lib/dpkg/status", b"Package: a\n")
            .file("var/lib/dpkg/info/a.list", b"/bin/a\n")
            .symlink("etc/os-release", "../usr/lib/os-release")
            .file("app/.wh.gone", b"")
            .file("opt/.wh..wh..opq", b"")
            .finish();
        let scan = scan_layer(&gzip(&tar)[..]).unwrap();
        assert_eq!(scan.files, 5, "{scan:?}");
        assert_eq!(scan.whiteouts, vec!["app/gone"]);
        assert_eq!(scan.opaque_dirs, vec!["opt"]);
        let paths: Vec<&str> = scan.captured.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "usr/lib/x.dist-info/METADATA",
                "var/lib/dpkg/status",
                "var/lib/dpkg/info/a.list",
                "etc/os-release"
            ]
        );
        assert_eq!(scan.captured[2].1, Captured::Marker);
        assert_eq!(
            scan.captured[3].1,
            Captured::Symlink("../usr/lib/os-release".into())
        );
        // The same bytes uncompressed read the same.
        assert_eq!(scan_layer(&tar[..]).unwrap().files, 5);
    }

    #[test]
    fn truncated_layer_is_an_error() {
        let tar = TarBuilder::new().file("a", &[7u8; 4000]).finish();
        let gz = gzip(&tar);
        assert!(scan_layer(&gz[..gz.len() / 2]).is_err());
    }
}
