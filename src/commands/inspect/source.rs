//! The image being inspected, from a registry: manifest, config, layers in the blob cache,
//! referrers.

use std::path::PathBuf;

use anyhow::{Context, Result};
use layers::Digest;
use pyslip_registry::{Client, Platform, Reference, ReferrersVia};
use pyslip_sbom::LayerInfo;
use serde_json::{Value, json};

use super::{INPUTS_ANNOTATION, ORIGIN_ANNOTATION, digest_of, origin_of};
use crate::cache::Cache;

/// One layer and where its blob is.
pub struct InspectedLayer {
    /// What the manifest and history say about it.
    pub info: LayerInfo,
    /// The blob on disk.
    pub path: PathBuf,
    /// The cache-key inputs recorded for it.
    pub inputs: Option<Value>,
}

/// An image ready to be scanned.
pub struct Inspected {
    /// The reference or layout it came from.
    pub source: String,
    /// Manifest digest.
    pub digest: Digest,
    /// `os/arch` from the config.
    pub platform: String,
    /// Layers, bottom first.
    pub layers: Vec<InspectedLayer>,
    /// Referrers: `{digest, artifact_type, via}`.
    pub referrers: Vec<Value>,
}

/// Layers from the manifest and config; `path_of` says where each blob is.
pub fn layers_from(
    manifest: &Value,
    config: &Value,
    path_of: impl Fn(&Digest) -> PathBuf,
) -> Result<Vec<InspectedLayer>> {
    let descriptors = manifest["layers"].as_array().map_or(&[][..], Vec::as_slice);
    let history: Vec<&Value> = config["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["empty_layer"] != true)
        .collect();
    // History that does not line up with the layers says nothing reliable about them.
    let history = (history.len() == descriptors.len()).then_some(history);
    descriptors
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let digest = digest_of(&d["digest"], &format!("layer {i} of the manifest"))?;
            let entry = history.as_ref().and_then(|h| h.get(i));
            let created_by = entry.and_then(|h| h["created_by"].as_str());
            let comment = entry.and_then(|h| h["comment"].as_str());
            let annotations = &d["annotations"];
            let origin = origin_of(annotations[ORIGIN_ANNOTATION].as_str(), created_by, comment);
            let inputs = annotations[INPUTS_ANNOTATION]
                .as_str()
                .and_then(|s| serde_json::from_str(s).ok());
            Ok(InspectedLayer {
                info: LayerInfo {
                    digest: digest.clone(),
                    media_type: d["mediaType"].as_str().unwrap_or_default().to_owned(),
                    size: d["size"].as_u64().unwrap_or(0),
                    origin,
                    created_by: created_by.map(str::to_owned),
                },
                path: path_of(&digest),
                inputs,
            })
        })
        .collect()
}

/// `os/arch[/variant]` of a config.
pub fn platform_of(config: &Value) -> String {
    let mut p = format!(
        "{}/{}",
        config["os"].as_str().unwrap_or("?"),
        config["architecture"].as_str().unwrap_or("?")
    );
    if let Some(v) = config["variant"].as_str() {
        p.push('/');
        p.push_str(v);
    }
    p
}

/// Resolve `reference` for `platform`, download its layers into the cache (verified; those
/// already there are not fetched again) and list its referrers.
pub async fn from_registry(
    client: &Client,
    cache: &Cache,
    reference: &Reference,
    platform: &Platform,
) -> Result<Inspected> {
    let pulled = client
        .pull_image(reference, platform)
        .await
        .with_context(|| format!("resolving {reference}"))?;
    crate::commands::base::fetch_layers(client, cache, &pulled).await?;
    let manifest: Value = serde_json::from_slice(&pulled.manifest_bytes)?;
    let config: Value = serde_json::from_slice(&pulled.config_bytes)?;
    let layers = layers_from(&manifest, &config, |d| cache.blob_path(d))?;
    let listed = client
        .referrers(reference.repo(), &pulled.digest)
        .await
        .with_context(|| format!("listing the referrers of {reference}"))?;
    let via = match listed.via {
        ReferrersVia::Api => "referrers-api",
        ReferrersVia::TagSchema => "fallback-tag",
    };
    let referrers = listed
        .manifests
        .iter()
        .map(|m| json!({"digest": m.digest.to_string(), "artifact_type": m.artifact_type, "via": via}))
        .collect();
    Ok(Inspected {
        source: reference.to_string(),
        digest: pulled.digest.clone(),
        platform: platform_of(&config),
        layers,
        referrers,
    })
}
