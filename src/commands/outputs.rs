//! Sending the finished image to every requested output: registries, tarball, OCI layout.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use bytes::Bytes;
use pyslip_registry::{
    BlobSource, Client, ManifestToPush, PulledImage, PushBlob, PushReport, Reference,
};

use crate::cache::Cache;
use crate::commands::build::Requested;
use crate::commands::report::Printer;
use crate::image::{ImageParts, LayerOrigin, OCI_MANIFEST};
use crate::output::{layout, tarball};

/// What was written.
#[derive(Debug, Default)]
pub struct Written {
    /// One push report per target repository, with the references pushed there.
    pub pushes: Vec<(Vec<String>, PushReport)>,
    /// The tarball written.
    pub tar: Option<std::path::PathBuf>,
    /// The OCI layout written.
    pub layout: Option<std::path::PathBuf>,
    /// The `sbom` object of `--json` (file, format, referrers), when `--sbom` was given.
    pub sbom: Option<serde_json::Value>,
}

/// Write every requested output; an error in any of them fails the build.
pub async fn write_all(
    client: &Client,
    cache: &Cache,
    requested: &Requested,
    image: &ImageParts,
    base: &PulledImage,
    printer: &Printer,
) -> Result<Written> {
    let mut written = Written::default();
    let refs: Vec<String> = requested.tags.iter().map(ToString::to_string).collect();
    if requested.push {
        for (first, rest) in group_by_repository(&requested.tags) {
            let _step = pyslip_lifecycle::interrupt::enter_step(&format!("pushing {first}"));
            let report = push(client, cache, image, base, &first, &rest).await?;
            let mut pushed = vec![first.to_string()];
            for tag in &rest {
                pushed.push(first.with_tag(tag)?.to_string());
            }
            printer.pushed(&pushed, &report);
            written.pushes.push((pushed, report));
        }
    }
    if requested.tar.is_some() || requested.layout.is_some() {
        super::base::fetch_layers(client, cache, base).await?;
    }
    if let Some(dest) = &requested.tar {
        let (dest, image, cache, refs) = (dest.clone(), image.clone(), cache.clone(), refs.clone());
        let path = dest.clone();
        tokio::task::spawn_blocking(move || tarball::write(&dest, &image, &cache, &refs))
            .await
            .context("tarball task failed")?
            .with_context(|| format!("writing --tar {}", path.display()))?;
        printer.wrote("tarball", &path);
        written.tar = Some(path);
    }
    if let Some(dir) = &requested.layout {
        let (dir, image, cache, refs) = (dir.clone(), image.clone(), cache.clone(), refs.clone());
        let path = dir.clone();
        tokio::task::spawn_blocking(move || layout::write(&dir, &image, &cache, &refs))
            .await
            .context("OCI layout task failed")?
            .with_context(|| format!("writing --oci-layout {}", path.display()))?;
        printer.wrote("OCI layout", &path);
        written.layout = Some(path);
    }
    Ok(written)
}

/// Tags grouped by repository: the first reference of each repository and the other tags.
fn group_by_repository(tags: &[Reference]) -> Vec<(Reference, Vec<String>)> {
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

async fn push(
    client: &Client,
    cache: &Cache,
    image: &ImageParts,
    base: &PulledImage,
    target: &Reference,
    extra_tags: &[String],
) -> Result<PushReport> {
    let mut blobs = Vec::new();
    for layer in &image.layers {
        let (blob, origin) = (&layer.blob, layer.origin);
        // Base layers are mounted (same registry) or streamed from the base's registry; a copy
        // in the cache (left by a local output) saves that download when the registries differ.
        let cached = cache.blob_size(&blob.digest) == Some(blob.size);
        let source = match origin {
            LayerOrigin::Base if !cached || target.registry() == base.repo.registry() => {
                BlobSource::Remote(base.repo.clone())
            }
            _ => BlobSource::File(cache.blob_path(&blob.digest)),
        };
        blobs.push(PushBlob {
            digest: blob.digest.clone(),
            size: blob.size,
            media_type: blob.media_type.clone(),
            source,
        });
    }
    blobs.push(PushBlob {
        digest: image.config_blob.digest.clone(),
        size: image.config_blob.size,
        media_type: image.config_blob.media_type.clone(),
        source: BlobSource::Bytes(Bytes::from(image.config.clone())),
    });
    let manifest = ManifestToPush {
        media_type: OCI_MANIFEST.to_owned(),
        bytes: Bytes::from(image.manifest.clone()),
    };
    client
        .push(target, extra_tags, blobs, manifest)
        .await
        .with_context(|| format!("pushing to {target}"))
}
