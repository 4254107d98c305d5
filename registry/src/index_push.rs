//! Pushing several images under one index (a multi-platform image): every image's blobs and its
//! manifest by digest first, the index last under every tag, so no tag ever names an index whose
//! parts are missing. A manifest the registry already has is neither sent again nor are its blobs
//! checked (a registry only accepts a manifest whose blobs it holds): a re-push of an unchanged
//! build sends one HEAD per image and the index.

use std::collections::{HashMap, HashSet};

use futures_util::future::try_join_all;
use pyslip_digest::Digest;

use crate::auth::Scope;
use crate::client::Client;
use crate::error::RegistryError;
use crate::manifest::ManifestToPush;
use crate::push::{BlobOutcome, BlobReport, PushBlob, display_all, push_scope};
use crate::reference::{Reference, RepoRef};

/// One image of an index push: its blobs (config and layers) and its manifest.
#[derive(Debug, Clone)]
pub struct IndexedImage {
    /// Every blob the manifest references.
    pub blobs: Vec<PushBlob>,
    /// The manifest.
    pub manifest: ManifestToPush,
}

/// What happened to one image of an index push.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImagePushReport {
    /// Its manifest's digest.
    pub manifest_digest: Digest,
    /// Whether the manifest was sent (false: the registry had it already).
    pub manifest_put: bool,
    /// Per blob, in the order given (all `AlreadyPresent` when the manifest was there).
    pub blobs: Vec<BlobReport>,
}

/// Result of an index push.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IndexPushReport {
    /// Digest of the index.
    pub index_digest: Digest,
    /// Every reference the index was put under (target first, then extra tags).
    #[serde(serialize_with = "display_all")]
    pub refs: Vec<Reference>,
    /// Per image, in the order given.
    pub images: Vec<ImagePushReport>,
    /// Total bytes sent (blobs, manifests and the index).
    pub bytes_sent: u64,
}

impl Client {
    /// Push `images` by digest, then `index` to `target` and under each extra tag.
    ///
    /// Images go one after another, each with its blobs in parallel; a blob shared by several
    /// images (the app layer) is sent once.
    pub async fn push_index(
        &self,
        target: &Reference,
        extra_tags: &[String],
        images: Vec<IndexedImage>,
        index: ManifestToPush,
    ) -> Result<IndexPushReport, RegistryError> {
        let repo = target.repo();
        let mut refs = vec![target.clone()];
        for tag in extra_tags {
            refs.push(target.with_tag(tag)?);
        }
        let all_blobs: Vec<PushBlob> = images.iter().flat_map(|i| i.blobs.clone()).collect();
        let scope = push_scope(repo, &all_blobs);
        let mut in_place: HashSet<Digest> = HashSet::new();
        let mut reports = Vec::new();
        let mut bytes_sent = 0;
        for image in images {
            let report = self
                .push_indexed(repo, &scope, image, &mut in_place)
                .await?;
            bytes_sent += report.1;
            reports.push(report.0);
        }
        let index_digest = index.digest();
        let puts = refs
            .iter()
            .map(|r| self.put_manifest(repo, &scope, r, &index, &index_digest));
        try_join_all(puts).await?;
        bytes_sent += index.bytes.len() as u64 * refs.len() as u64;
        Ok(IndexPushReport {
            index_digest,
            refs,
            images: reports,
            bytes_sent,
        })
    }

    /// One image of an index: skipped when its manifest is there, else blobs then manifest.
    async fn push_indexed(
        &self,
        repo: &RepoRef,
        scope: &Scope,
        image: IndexedImage,
        in_place: &mut HashSet<Digest>,
    ) -> Result<(ImagePushReport, u64), RegistryError> {
        let digest = image.manifest.digest();
        let present = |b: &PushBlob| BlobReport {
            digest: b.digest.clone(),
            size: b.size,
            media_type: b.media_type.clone(),
            outcome: BlobOutcome::AlreadyPresent,
            bytes_sent: 0,
        };
        if self.manifest_exists(repo, &digest, scope).await? {
            in_place.extend(image.blobs.iter().map(|b| b.digest.clone()));
            let report = ImagePushReport {
                manifest_digest: digest,
                manifest_put: false,
                blobs: image.blobs.iter().map(present).collect(),
            };
            return Ok((report, 0));
        }
        let mut fresh = Vec::new();
        let mut chosen = HashSet::new();
        for b in &image.blobs {
            if !in_place.contains(&b.digest) && chosen.insert(b.digest.clone()) {
                fresh.push(b.clone());
            }
        }
        let mut pushed: HashMap<Digest, BlobReport> = self
            .push_blobs(repo, scope, fresh)
            .await?
            .into_iter()
            .map(|r| (r.digest.clone(), r))
            .collect();
        let blobs: Vec<BlobReport> = image
            .blobs
            .iter()
            .map(|b| pushed.remove(&b.digest).unwrap_or_else(|| present(b)))
            .collect();
        in_place.extend(image.blobs.iter().map(|b| b.digest.clone()));
        self.put_manifest(
            repo,
            scope,
            &repo.digest(digest.clone()),
            &image.manifest,
            &digest,
        )
        .await?;
        let sent =
            blobs.iter().map(|b| b.bytes_sent).sum::<u64>() + image.manifest.bytes.len() as u64;
        let report = ImagePushReport {
            manifest_digest: digest,
            manifest_put: true,
            blobs,
        };
        Ok((report, sent))
    }
}
