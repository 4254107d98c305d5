//! The OCI image manifest: config descriptor plus base and new layer descriptors.

use std::collections::BTreeMap;

use anyhow::Result;
use layers::Digest;
use serde::Serialize;

use super::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, config::ImageSettings};

/// A blob as a manifest names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobRef {
    /// Media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Content digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
}

/// Where a layer of the output image comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerOrigin {
    /// A layer of the base image.
    Base,
    /// The dependency layer.
    Deps,
    /// The project's own package, installed like a dependency.
    Project,
    /// Django's collected static files.
    Static,
    /// The application layer.
    App,
}

/// A layer pyslip made, with what the config needs to know about it.
#[derive(Debug, Clone)]
pub struct NewLayer {
    /// The compressed blob.
    pub blob: BlobRef,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// History line.
    pub created_by: String,
    /// Which kind of layer.
    pub origin: LayerOrigin,
    /// Taken from the cache rather than made by this build.
    pub reused: bool,
    /// Annotations of its manifest descriptor (which step made it, from which inputs).
    pub annotations: BTreeMap<String, String>,
}

/// A layer of the finished image.
#[derive(Debug, Clone)]
pub struct ImageLayer {
    /// The blob.
    pub blob: BlobRef,
    /// Which kind of layer.
    pub origin: LayerOrigin,
    /// Not made by this build: a base layer, or a layer taken from the cache.
    pub reused: bool,
}

/// The finished image: config and manifest bytes with their digests, and every layer in order.
#[derive(Debug, Clone)]
pub struct ImageParts {
    /// Config bytes.
    pub config: Vec<u8>,
    /// Config descriptor.
    pub config_blob: BlobRef,
    /// Manifest bytes.
    pub manifest: Vec<u8>,
    /// Manifest digest (the image's identity).
    pub manifest_digest: Digest,
    /// Every layer, base first.
    pub layers: Vec<ImageLayer>,
}

/// A layer descriptor: the blob and, for pyslip's layers, its annotations.
#[derive(Serialize)]
struct LayerDescriptor<'a> {
    #[serde(flatten)]
    blob: &'a BlobRef,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Manifest<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    config: &'a BlobRef,
    layers: Vec<LayerDescriptor<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

/// The OCI media type for a base layer: Docker's gzip layer type is the same bytes as OCI's.
pub fn oci_layer_media_type(media_type: &str) -> String {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => OCI_LAYER_GZIP.to_owned(),
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip".to_owned()
        }
        other => other.to_owned(),
    }
}

/// Append the new layers to the base and produce config and manifest.
pub fn assemble(
    base_config: &[u8],
    base_layers: &[BlobRef],
    new_layers: &[NewLayer],
    settings: &ImageSettings,
    annotations: BTreeMap<String, String>,
) -> Result<ImageParts> {
    let history: Vec<(Digest, String)> = new_layers
        .iter()
        .map(|l| (l.diff_id.clone(), l.created_by.clone()))
        .collect();
    let config = super::build_config(base_config, settings, &history)?;
    let config_blob = BlobRef {
        media_type: OCI_CONFIG.to_owned(),
        digest: Digest::of(&config),
        size: config.len() as u64,
    };
    let mut layers: Vec<ImageLayer> = base_layers
        .iter()
        .map(|b| ImageLayer {
            blob: BlobRef {
                media_type: oci_layer_media_type(&b.media_type),
                ..b.clone()
            },
            origin: LayerOrigin::Base,
            reused: true,
        })
        .collect();
    layers.extend(new_layers.iter().map(|l| ImageLayer {
        blob: l.blob.clone(),
        origin: l.origin,
        reused: l.reused,
    }));
    let none = BTreeMap::new();
    let base_count = layers.len() - new_layers.len();
    let descriptors = layers
        .iter()
        .enumerate()
        .map(|(i, l)| LayerDescriptor {
            blob: &l.blob,
            annotations: i
                .checked_sub(base_count)
                .and_then(|n| new_layers.get(n))
                .map_or(&none, |n| &n.annotations),
        })
        .collect();
    let manifest = serde_json::to_vec(&Manifest {
        schema_version: 2,
        media_type: OCI_MANIFEST,
        config: &config_blob,
        layers: descriptors,
        annotations,
    })?;
    Ok(ImageParts {
        manifest_digest: Digest::of(&manifest),
        config,
        config_blob,
        manifest,
        layers,
    })
}
