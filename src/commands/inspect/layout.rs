//! The image being inspected, from an OCI image layout directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use pyslip_registry::Platform;
use serde_json::{Value, json};

use super::source::{Inspected, layers_from, platform_of};
use super::{digest_of, read_blob};
use crate::commands::UserError;

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// `DIR` or `DIR:NAME` when `DIR` is an OCI layout; `None` for anything else.
pub fn split_target(target: &str) -> Option<(PathBuf, Option<String>)> {
    let is_layout = |dir: &Path| dir.join("oci-layout").is_file();
    if is_layout(Path::new(target)) {
        return Some((PathBuf::from(target), None));
    }
    let (dir, name) = target.rsplit_once(':')?;
    is_layout(Path::new(dir)).then(|| (PathBuf::from(dir), Some(name.to_owned())))
}

fn blob_path(dir: &Path, digest: &layers::Digest) -> PathBuf {
    dir.join("blobs")
        .join(digest.algorithm())
        .join(digest.hex())
}

fn read_json(dir: &Path, entry: &Value, what: &str) -> Result<(layers::Digest, Value)> {
    let digest = digest_of(&entry["digest"], what)?;
    let bytes = read_blob(&blob_path(dir, &digest), &digest)?;
    let value = serde_json::from_slice(&bytes).with_context(|| format!("{what} is not JSON"))?;
    Ok((digest, value))
}

/// The image entry of `index.json` named `name` (or the only image).
fn choose<'a>(index: &'a Value, dir: &Path, name: Option<&str>) -> Result<&'a Value> {
    // Referrers (SBOMs) are listed in index.json too; they carry an artifactType.
    let images: Vec<&Value> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m.get("artifactType").is_none())
        .filter(|m| name.is_none_or(|n| m["annotations"][REF_NAME].as_str() == Some(n)))
        .collect();
    let mut digests: Vec<&str> = images.iter().filter_map(|m| m["digest"].as_str()).collect();
    digests.dedup();
    match (images.first(), digests.len()) {
        (Some(first), 1) => Ok(first),
        (None, _) => bail!(UserError::new(
            format!(
                "{}: the OCI layout holds no image{}",
                dir.display(),
                name.map(|n| format!(" named {n:?}")).unwrap_or_default()
            ),
            "list its names with: jq '.manifests[].annotations' index.json",
        )),
        _ => {
            let names: Vec<&str> = images
                .iter()
                .filter_map(|m| m["annotations"][REF_NAME].as_str())
                .collect();
            bail!(UserError::new(
                format!("{}: the OCI layout holds several images", dir.display()),
                format!("name one as DIR:NAME; names: {}", names.join(", ")),
            ))
        }
    }
}

/// Read the image (for `platform` when the entry is an index) and its referrers.
pub fn read(dir: &Path, name: Option<&str>, platform: &Platform) -> Result<Inspected> {
    let index_path = dir.join("index.json");
    let index: Value = serde_json::from_slice(&fs_err::read(&index_path)?)
        .with_context(|| format!("{} is not JSON", index_path.display()))?;
    let mut entry = choose(&index, dir, name)?.clone();
    if INDEX_TYPES.contains(&entry["mediaType"].as_str().unwrap_or_default()) {
        let (_, nested) = read_json(dir, &entry, "image index")?;
        let wanted = platform.to_string();
        entry = nested["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| {
                let p = &m["platform"];
                format!(
                    "{}/{}",
                    p["os"].as_str().unwrap_or(""),
                    p["architecture"].as_str().unwrap_or("")
                ) == wanted.split('/').take(2).collect::<Vec<_>>().join("/")
            })
            .cloned()
            .with_context(|| format!("the image index has no {wanted} image"))?;
    }
    let (digest, manifest) = read_json(dir, &entry, "image manifest")?;
    let (_, config) = read_json(dir, &manifest["config"], "image config")?;
    let layers = layers_from(&manifest, &config, |d| blob_path(dir, d))?;
    let mut referrers = Vec::new();
    for m in index["manifests"].as_array().into_iter().flatten() {
        if m.get("artifactType").is_none() {
            continue;
        }
        let Ok((referrer, body)) = read_json(dir, m, "referrer manifest") else {
            continue;
        };
        if body["subject"]["digest"].as_str() == Some(digest.to_string().as_str()) {
            referrers.push(json!({
                "digest": referrer.to_string(),
                "artifact_type": m["artifactType"],
                "via": "oci-layout",
            }));
        }
    }
    Ok(Inspected {
        source: dir.display().to_string(),
        digest,
        platform: platform_of(&config),
        layers,
        referrers,
    })
}
