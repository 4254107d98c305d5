//! Pushing to registries: one image as a plain manifest, several as an index (each image's
//! manifest by digest, the index under the tags). Tags are grouped by repository: one push per
//! repository, the other tags of it put as extra tags.

use std::collections::BTreeMap;

use bytes::Bytes;
use pyslip_registry::{
    BlobReport, Client, IndexPushReport, IndexedImage, ManifestToPush, PushReport, Reference,
    RegistryError, RepoRef,
};

use crate::model::Artifact;
use crate::source::{LocalBlobs, push_blobs};

/// What one push did.
#[derive(Debug, Clone)]
pub enum Pushed {
    /// A single image.
    Image(PushReport),
    /// An index and its images.
    Index(IndexPushReport),
}

impl Pushed {
    /// Every reference pushed, as text.
    pub fn refs(&self) -> Vec<String> {
        let refs = match self {
            Self::Image(r) => &r.refs,
            Self::Index(r) => &r.refs,
        };
        refs.iter().map(ToString::to_string).collect()
    }

    /// Every blob report, image by image (a blob shared by images appears once per image).
    pub fn blobs(&self) -> Vec<&BlobReport> {
        match self {
            Self::Image(r) => r.blobs.iter().collect(),
            Self::Index(r) => r.images.iter().flat_map(|i| &i.blobs).collect(),
        }
    }
}

/// Tags grouped by repository, in the order first given: the first reference of each
/// repository and its other tags.
pub fn group_by_repository(tags: &[Reference]) -> Vec<(Reference, Vec<String>)> {
    let mut groups: BTreeMap<String, (Reference, Vec<String>)> = BTreeMap::new();
    let mut order = Vec::new();
    for tag in tags {
        let key = format!("{}/{}", tag.registry(), tag.repository());
        match groups.get_mut(&key) {
            Some((_, rest)) => rest.push(tag.tag().unwrap_or("latest").to_owned()),
            None => {
                order.push(key.clone());
                groups.insert(key, (tag.clone(), Vec::new()));
            }
        }
    }
    order
        .into_iter()
        .filter_map(|k| groups.remove(&k))
        .collect()
}

/// Push `artifact` to `target` and its repository's `extra_tags`. Base layers come from `base`
/// (mounted or streamed), the rest from `local` or memory.
pub async fn push(
    client: &Client,
    artifact: &Artifact,
    local: &LocalBlobs,
    base: &RepoRef,
    target: &Reference,
    extra_tags: &[String],
) -> Result<Pushed, RegistryError> {
    match artifact {
        Artifact::Image(image) => {
            let blobs = push_blobs(image, local, base, target.repo());
            let manifest = ManifestToPush {
                media_type: artifact.media_type().to_string(),
                bytes: Bytes::from(image.manifest.clone()),
            };
            let report = client.push(target, extra_tags, blobs, manifest).await?;
            Ok(Pushed::Image(report))
        }
        Artifact::Index(multi) => {
            let images = multi
                .images
                .iter()
                .map(|image| IndexedImage {
                    blobs: push_blobs(image, local, base, target.repo()),
                    manifest: ManifestToPush {
                        media_type: oci_spec::image::MediaType::ImageManifest.to_string(),
                        bytes: Bytes::from(image.manifest.clone()),
                    },
                })
                .collect();
            let index = ManifestToPush {
                media_type: artifact.media_type().to_string(),
                bytes: Bytes::from(multi.index.clone()),
            };
            let report = client.push_index(target, extra_tags, images, index).await?;
            Ok(Pushed::Index(report))
        }
    }
}
