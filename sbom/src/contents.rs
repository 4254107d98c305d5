//! What an image holds, read from its layer blobs: per-layer counts and the packages of the final
//! filesystem, each with the layer that put it there.

use std::path::PathBuf;

use layers::Digest;

use crate::dpkg::{self, DebPackage, Distro};
use crate::error::SbomError;
use crate::python::{self, PythonDist};
use crate::scan::{self, LayerScan};
use crate::view::MergedView;

/// Who made a layer: `base` for the base image's, else the pyslip step (`deps`, `project`,
/// `static`, `app`, or whatever a later pyslip adds).
pub const BASE_ORIGIN: &str = "base";

/// One layer of the image, as the manifest and config describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// The blob digest (what the manifest lists).
    pub digest: Digest,
    /// The blob's media type.
    pub media_type: String,
    /// The blob's size in bytes (compressed).
    pub size: u64,
    /// `base`, `deps`, `project`, `static`, `app`.
    pub origin: String,
    /// The history line that made it, when known.
    pub created_by: Option<String>,
}

impl LayerInfo {
    /// Whether the base image brought it.
    pub fn is_base(&self) -> bool {
        self.origin == BASE_ORIGIN
    }
}

/// Counts of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerCounts {
    /// Files, links and other non-directory entries (whiteouts not counted).
    pub files: u64,
    /// Bytes of file content, uncompressed.
    pub content_bytes: u64,
    /// Whiteouts (deletions of lower-layer paths).
    pub whiteouts: u64,
}

/// What the image holds.
#[derive(Debug, Clone, Default)]
pub struct ImageContents {
    /// Every layer, bottom first, with its counts.
    pub layers: Vec<(LayerInfo, LayerCounts)>,
    /// Python distributions of the final filesystem (metadata parsed), sorted.
    pub python: Vec<PythonDist>,
    /// Debian packages of the final filesystem, sorted.
    pub debs: Vec<DebPackage>,
    /// The distribution, from `os-release`.
    pub distro: Option<Distro>,
}

impl ImageContents {
    /// Scan every layer blob (two at a time) and merge them.
    pub fn read(layers: Vec<(LayerInfo, PathBuf)>) -> Result<Self, SbomError> {
        let mut scans: Vec<Option<Result<LayerScan, SbomError>>> =
            (0..layers.len()).map(|_| None).collect();
        let workers = 2.min(layers.len().max(1));
        std::thread::scope(|scope| {
            let chunks: Vec<Vec<(usize, &PathBuf)>> = (0..workers)
                .map(|w| {
                    layers
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % workers == w)
                        .map(|(i, (_, p))| (i, p))
                        .collect()
                })
                .collect();
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .into_iter()
                            .map(|(i, path)| (i, scan::scan_layer_file(path)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for handle in handles {
                for (i, result) in handle.join().unwrap_or_default() {
                    if let Some(slot) = scans.get_mut(i) {
                        *slot = Some(result);
                    }
                }
            }
        });
        let mut scanned = Vec::with_capacity(layers.len());
        for ((info, path), scan) in layers.into_iter().zip(scans) {
            let scan = scan.unwrap_or_else(|| {
                Err(SbomError::Layer {
                    path,
                    source: std::io::Error::other("the scan thread panicked"),
                })
            })?;
            scanned.push((info, scan));
        }
        Ok(Self::from_scans(scanned))
    }

    /// Merge scanned layers (bottom first).
    pub fn from_scans(layers: Vec<(LayerInfo, LayerScan)>) -> Self {
        let view = MergedView::new(layers.iter().map(|(_, s)| s));
        Self {
            python: python::distributions(&view),
            debs: dpkg::packages(&view),
            distro: dpkg::distro(&view),
            layers: layers
                .into_iter()
                .map(|(info, scan)| {
                    let counts = LayerCounts {
                        files: scan.files,
                        content_bytes: scan.content_bytes,
                        whiteouts: (scan.whiteouts.len() + scan.opaque_dirs.len()) as u64,
                    };
                    (info, counts)
                })
                .collect(),
        }
    }

    /// The layer with this index.
    pub fn layer(&self, index: usize) -> Option<&LayerInfo> {
        self.layers.get(index).map(|(l, _)| l)
    }

    /// Python distributions that belong in the SBOM as Python packages: those in pyslip's layers,
    /// and those of base layers outside Debian's own Python directories (dpkg lists those).
    pub fn python_packages(&self) -> impl Iterator<Item = &PythonDist> {
        self.python.iter().filter(|d| match self.layer(d.layer) {
            Some(layer) if layer.is_base() => !debian_managed(&d.location),
            Some(_) => true,
            None => false,
        })
    }
}

/// `/usr/lib/python3/dist-packages/…` and `/usr/lib/python3.N/…` belong to Debian packages.
fn debian_managed(location: &str) -> bool {
    location
        .strip_prefix("/usr/lib/python3")
        .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{TarBuilder, gzip};

    fn info(origin: &str, n: u8) -> LayerInfo {
        LayerInfo {
            digest: Digest::of(&[n]),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            size: 1,
            origin: origin.into(),
            created_by: None,
        }
    }

    fn meta(name: &str, version: &str) -> Vec<u8> {
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n").into_bytes()
    }

    #[test]
    fn reads_blobs_and_keeps_base_debian_python_out() {
        let dir = tempfile::tempdir().unwrap();
        let base = TarBuilder::new()
            .file(
                "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
                &meta("six", "1.16.0"),
            )
            .file(
                "usr/local/lib/python3.13/site-packages/pip-25.0.dist-info/METADATA",
                &meta("pip", "25.0"),
            )
            .file(
                "var/lib/dpkg/status",
                b"Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2\n",
            )
            .finish();
        let deps = TarBuilder::new()
            .file(
                "usr/local/lib/python3.13/site-packages/flask-3.1.3.dist-info/METADATA",
                &meta("Flask", "3.1.3"),
            )
            .finish();
        let paths = [("base", base), ("deps", deps)].map(|(name, tar)| {
            let p = dir.path().join(name);
            fs_err::write(&p, gzip(&tar)).unwrap();
            p
        });
        let contents = ImageContents::read(vec![
            (info("base", 0), paths[0].clone()),
            (info("deps", 1), paths[1].clone()),
        ])
        .unwrap();
        let names: Vec<&str> = contents
            .python_packages()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(names, vec!["Flask", "pip"]);
        assert_eq!(contents.python.len(), 3);
        assert_eq!(contents.debs.len(), 1);
        assert_eq!(contents.layers[0].1.files, 3);
        let missing = ImageContents::read(vec![(info("base", 0), dir.path().join("nope"))]);
        assert!(missing.is_err());
    }
}
