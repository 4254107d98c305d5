//! Where the bytes of an image's blobs come from: the local blob store (pyslip's cache: the
//! layers pyslip made, and base layers a local output needed), the image itself (config,
//! manifest and index bytes are held in memory), or the base image's repository (base layers
//! are mounted from it, or streamed from it to another registry, never downloaded to push).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use layers::Digest;
use pyslip_registry::{BlobSource, PushBlob, RepoRef};

use crate::error::ImageError;
use crate::model::{Artifact, BlobRef, Image, LayerOrigin};

/// A directory of blobs named by their hex digest (`<dir>/<hex>`).
#[derive(Debug, Clone)]
pub struct LocalBlobs {
    dir: PathBuf,
    /// Layers pyslip did not make here and the store may lack: the repository that has each
    /// (a registry-backed layer cache). A push mounts or streams them from there.
    remote: BTreeMap<Digest, RepoRef>,
}

impl LocalBlobs {
    /// The store at `dir` (pyslip's cache: `blobs-v1/sha256`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            remote: BTreeMap::new(),
        }
    }

    /// Say that `repo` has the blob `digest`: pushed from there when the store lacks it.
    pub fn add_remote(&mut self, digest: Digest, repo: RepoRef) {
        self.remote.insert(digest, repo);
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a blob is (whether or not it is there).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// The size of a stored blob, or `None` when it is not stored.
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        fs_err::metadata(self.path(digest)).ok().map(|m| m.len())
    }
}

/// The bytes of one blob a local sink writes.
#[derive(Debug)]
pub enum BlobBytes<'a> {
    /// Held in memory (config, manifest, index).
    Memory(&'a [u8]),
    /// A file in the local store.
    File(PathBuf),
}

/// Find the bytes of `digest`: in memory when the artifact holds them, else in `local`.
pub fn local_bytes<'a>(
    artifact: &'a Artifact,
    local: &LocalBlobs,
    digest: &Digest,
) -> Result<BlobBytes<'a>, ImageError> {
    if let Artifact::Index(multi) = artifact
        && &multi.index_digest == digest
    {
        return Ok(BlobBytes::Memory(&multi.index));
    }
    for image in artifact.images() {
        if &image.manifest_digest == digest {
            return Ok(BlobBytes::Memory(&image.manifest));
        }
        if &image.config_blob.digest == digest {
            return Ok(BlobBytes::Memory(&image.config));
        }
    }
    let path = local.path(digest);
    if !path.is_file() {
        return Err(ImageError::MissingBlob {
            digest: digest.clone(),
            dir: local.dir.clone(),
        });
    }
    Ok(BlobBytes::File(path))
}

/// Where each blob of `image` comes from when it is pushed to `target`: base layers from the
/// base repository (mounted on the same registry, else streamed from it) unless the local store
/// has them and the target is another registry; pyslip's layers from the local store, or,
/// when it lacks them, from the repository [`LocalBlobs::add_remote`] named; the config from
/// memory.
pub fn push_blobs(
    image: &Image,
    local: &LocalBlobs,
    base: &RepoRef,
    target: &RepoRef,
) -> Vec<PushBlob> {
    let blob = |b: &BlobRef, source| PushBlob {
        digest: b.digest.clone(),
        size: b.size,
        media_type: b.media_type.clone(),
        source,
    };
    let mut blobs: Vec<PushBlob> = image
        .layers
        .iter()
        .map(|layer| {
            let cached = local.size(&layer.blob.digest) == Some(layer.blob.size);
            let remote = (!cached).then(|| local.remote.get(&layer.blob.digest));
            let source = match (layer.origin, remote.flatten()) {
                (LayerOrigin::Base, _) if !cached || target.registry() == base.registry() => {
                    BlobSource::Remote(base.clone())
                }
                (LayerOrigin::Base, _) | (_, None) => {
                    BlobSource::File(local.path(&layer.blob.digest))
                }
                (_, Some(repo)) => BlobSource::Remote(repo.clone()),
            };
            blob(&layer.blob, source)
        })
        .collect();
    blobs.push(blob(
        &image.config_blob,
        BlobSource::Bytes(Bytes::from(image.config.clone())),
    ));
    blobs
}
