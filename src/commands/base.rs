//! The base image's bytes, fetched only when something needs them: its layers in the blob store
//! (for local outputs), and its unpacked root filesystem (for the sandboxed install).

use std::path::PathBuf;

use anyhow::{Context, Result};
use layers::UnpackLimits;
use pyslip_registry::{Client, PulledImage};

use crate::cache::{Cache, CacheError};

/// Versioned folder of unpacked base roots, one per platform manifest digest.
use pyslip_lifecycle::folders::ROOTS as ROOTS_DIR;

/// Download the base layers the cache lacks (or holds corrupt), in parallel, verified.
pub async fn fetch_layers(client: &Client, cache: &Cache, base: &PulledImage) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for descriptor in &base.layers {
        match cache.verify_blob(&descriptor.digest) {
            Ok(true) => continue,
            Ok(false) => {}
            // A corrupt cached copy was removed: fetch it anew.
            Err(CacheError::Corrupt { .. }) => {}
            Err(err) => return Err(err.into()),
        }
        let (client, cache, repo, descriptor) = (
            client.clone(),
            cache.clone(),
            base.repo.clone(),
            descriptor.clone(),
        );
        tasks.spawn(async move {
            let dest = cache.blob_path(&descriptor.digest);
            client
                .fetch_blob(&repo, &descriptor, &dest)
                .await
                .with_context(|| format!("downloading base layer {}", descriptor.digest))
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.context("download task failed")??;
    }
    Ok(())
}

/// Where the base image's unpacked root lives (whether or not it is there yet).
pub fn root_path(cache: &Cache, base: &PulledImage) -> Result<PathBuf> {
    Ok(cache.dir(ROOTS_DIR)?.join(base.digest.hex()))
}

/// The base image's root filesystem, unpacked safely (base layers are untrusted input) into
/// `roots-v1/<manifest hex>`; reused when already there.
///
/// The root is unpacked into a temp dir and renamed into place only when every layer succeeded,
/// so an existing root is always complete. Two builds unpacking at once both succeed: the loser
/// of the rename uses the winner's root.
pub async fn root(client: &Client, cache: &Cache, base: &PulledImage) -> Result<PathBuf> {
    let root = root_path(cache, base)?;
    if root.is_dir() {
        return Ok(root);
    }
    let _step = pyslip_lifecycle::interrupt::enter_step(&format!(
        "unpacking the base image {}",
        base.reference
    ));
    fetch_layers(client, cache, base).await?;
    let paths: Vec<PathBuf> = base
        .layers
        .iter()
        .map(|d| cache.blob_path(&d.digest))
        .collect();
    let dest = root.clone();
    let shown = base.reference.to_string();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let files = paths
            .iter()
            .map(fs_err::File::open)
            .collect::<Result<Vec<_>, _>>()?;
        // A signal stops the unpack at its next read.
        let readers = files
            .into_iter()
            .map(|f| pyslip_lifecycle::interrupt::Reader(std::io::BufReader::new(f)));
        match layers::unpack_layers_into(&dest, readers, &UnpackLimits::default()) {
            Ok(_) => Ok(()),
            Err(_) if dest.is_dir() => Ok(()),
            Err(err) => Err(err).with_context(|| format!("unpacking base image {shown}")),
        }
    })
    .await
    .context("unpack task failed")??;
    Ok(root)
}
