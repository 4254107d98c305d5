//! Python distributions: the `*.dist-info` (and legacy `*.egg-info`) directories of the final
//! filesystem, read from their core metadata.

use std::collections::BTreeSet;

use mailparse::MailHeaderMap as _;

use crate::license::{self, DeclaredLicense};
use crate::scan::Captured;
use crate::view::MergedView;

/// One installed Python distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonDist {
    /// `Name` as the metadata spells it.
    pub name: String,
    /// PEP 503-normalised name (what the purl uses).
    pub normalized: String,
    /// `Version`, exactly.
    pub version: String,
    /// The license the metadata declares, as an SPDX expression when one can be given.
    pub license: DeclaredLicense,
    /// Index of the layer holding its metadata.
    pub layer: usize,
    /// The `.dist-info` / `.egg-info` directory (absolute path in the image).
    pub location: String,
    /// Tags of the wheel it was installed from (`WHEEL`'s `Tag:` lines), e.g. `py3-none-any`.
    pub wheel_tags: BTreeSet<String>,
    /// `direct_url.json`'s `url` (a local or URL install, not from an index).
    pub direct_url: Option<String>,
}

/// PEP 503 normalisation (`Flask_Cors` → `flask-cors`), by `pep508_rs` as everywhere in pyslip; a
/// name it rejects is only lowercased (metadata of an installed distribution is not ours to fix).
pub fn normalize(name: &str) -> String {
    use std::str::FromStr as _;
    pep508_rs::PackageName::from_str(name.trim())
        .map(|n| n.to_string())
        .unwrap_or_else(|_| name.trim().to_lowercase())
}

/// Core metadata fields pyslip reads.
#[derive(Debug, Default)]
struct CoreMetadata {
    name: Option<String>,
    version: Option<String>,
    license_expression: Option<String>,
    license: Option<String>,
    classifiers: Vec<String>,
}

/// Parse the RFC 822-style header block of `METADATA` / `PKG-INFO`.
fn parse_metadata(bytes: &[u8]) -> Option<CoreMetadata> {
    let (headers, _) = mailparse::parse_headers(bytes).ok()?;
    let first = |key: &str| {
        headers
            .get_first_header(key)
            .and_then(|h| h.get_value_utf8().ok())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty() && v != "UNKNOWN")
    };
    Some(CoreMetadata {
        name: first("Name"),
        version: first("Version"),
        license_expression: first("License-Expression"),
        license: first("License"),
        classifiers: headers
            .get_all_headers("Classifier")
            .iter()
            .filter_map(|h| h.get_value_utf8().ok())
            .map(|v| v.trim().to_owned())
            .collect(),
    })
}

/// The wheel tags of a `WHEEL` file.
fn wheel_tags(bytes: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| l.strip_prefix("Tag:"))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

fn file_of<'a>(view: &'a MergedView, path: &str) -> Option<&'a [u8]> {
    match &view.get(path)?.content {
        Captured::File(bytes) => Some(bytes),
        _ => None,
    }
}

/// Every distribution of the final filesystem whose metadata names it and its version, sorted
/// by normalised name, version and location.
pub fn distributions(view: &MergedView) -> Vec<PythonDist> {
    let mut dists = Vec::new();
    for (path, placed) in view.iter() {
        let Some((dir, file)) = path.rsplit_once('/') else {
            continue;
        };
        let is_dist_info = dir.ends_with(".dist-info") && file == "METADATA";
        let is_egg_info = dir.ends_with(".egg-info") && file == "PKG-INFO";
        if !is_dist_info && !is_egg_info {
            continue;
        }
        let Captured::File(bytes) = &placed.content else {
            continue;
        };
        let Some(meta) = parse_metadata(bytes) else {
            continue;
        };
        let (Some(name), Some(version)) = (meta.name, meta.version) else {
            continue;
        };
        let direct_url = file_of(view, &format!("{dir}/direct_url.json"))
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
            .and_then(|v| v["url"].as_str().map(str::to_owned));
        dists.push(PythonDist {
            normalized: normalize(&name),
            name,
            version,
            license: license::declared(
                meta.license_expression.as_deref(),
                meta.license.as_deref(),
                &meta.classifiers,
            ),
            layer: placed.layer,
            location: format!("/{dir}"),
            wheel_tags: file_of(view, &format!("{dir}/WHEEL"))
                .map(wheel_tags)
                .unwrap_or_default(),
            direct_url,
        });
    }
    dists.sort_by(|a, b| {
        (&a.normalized, &a.version, &a.location).cmp(&(&b.normalized, &b.version, &b.location))
    });
    dists
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::LayerScan;

    const METADATA: &str = "Metadata-Version: 2.4\nName: Flask_SQLAlchemy\nVersion: 3.1.1\n\
License-Expression: BSD-3-Clause\nClassifier: Framework :: Flask\n\
Description-Content-Type: text/markdown\n\n# Flask-SQLAlchemy\n\nLicense: not a header\n";

    #[test]
    fn pep503() {
        assert_eq!(normalize("Flask_SQLAlchemy"), "flask-sqlalchemy");
        assert_eq!(normalize("zope.interface"), "zope-interface");
        assert_eq!(normalize("A--b__C"), "a-b-c");
    }

    #[test]
    fn reads_dist_info_with_wheel_tags_and_skips_broken_ones() {
        let dir = "usr/local/lib/python3.13/site-packages/flask_sqlalchemy-3.1.1.dist-info";
        let layer = LayerScan {
            captured: vec![
                (
                    format!("{dir}/METADATA"),
                    Captured::File(METADATA.as_bytes().to_vec()),
                ),
                (
                    format!("{dir}/WHEEL"),
                    Captured::File(b"Wheel-Version: 1.0\nTag: py3-none-any\n".to_vec()),
                ),
                (
                    "x/broken.dist-info/METADATA".into(),
                    Captured::File(b"Metadata-Version: 2.1\n".to_vec()),
                ),
            ],
            ..LayerScan::default()
        };
        let dists = distributions(&MergedView::new([&layer]));
        assert_eq!(dists.len(), 1);
        let d = &dists[0];
        assert_eq!(
            (d.normalized.as_str(), d.version.as_str()),
            ("flask-sqlalchemy", "3.1.1")
        );
        assert_eq!(d.license.expression.as_deref(), Some("BSD-3-Clause"));
        assert!(d.wheel_tags.contains("py3-none-any"));
        assert_eq!(d.location, format!("/{dir}"));
    }
}
