//! Pushing an image: blobs in parallel (HEAD → skip, same-registry → cross-repo mount, other
//! registry → streamed copy, else upload; see [`crate::upload`]), then the manifest under every
//! tag.

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::future::try_join_all;
use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use pyslip_digest::Digest;
use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderValue};

use crate::auth::Scope;
use crate::client::Client;
use crate::error::RegistryError;
use crate::manifest::ManifestToPush;
use crate::pull::check_digest_header;
use crate::reference::{Reference, RepoRef};
use crate::transport::body::ReqBody;
use crate::transport::{Request, Target};
use crate::upload::expect_success;

/// Where a blob's bytes come from.
#[derive(Debug, Clone)]
pub enum BlobSource {
    /// A local file (a cached layer).
    File(PathBuf),
    /// Bytes in memory (a config).
    Bytes(Bytes),
    /// A repository that has the blob: mounted when it is on the target's registry, else
    /// streamed from it straight into the upload (no temp copy; digest verified on the way).
    Remote(RepoRef),
}

/// One blob the pushed manifest references.
#[derive(Debug, Clone)]
pub struct PushBlob {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type (for reports).
    pub media_type: String,
    /// Where to get it if the registry lacks it.
    pub source: BlobSource,
}

/// What happened to a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlobOutcome {
    /// Sent from local bytes.
    Uploaded,
    /// The target repository already had it.
    AlreadyPresent,
    /// Mounted from another repository on the same registry.
    Mounted,
    /// Streamed from another registry.
    CopiedFromRegistry,
}

/// Per-blob result of a push.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BlobReport {
    /// The blob.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
    /// What happened.
    pub outcome: BlobOutcome,
    /// Bytes sent to the target registry for it.
    pub bytes_sent: u64,
}

/// Result of a push.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PushReport {
    /// Digest of the pushed manifest.
    pub manifest_digest: Digest,
    /// Every reference the manifest was put under (target first, then extra tags).
    #[serde(serialize_with = "display_all")]
    pub refs: Vec<Reference>,
    /// Per blob, in the order given.
    pub blobs: Vec<BlobReport>,
    /// Total bytes sent (blobs and manifests).
    pub bytes_sent: u64,
}

/// Push access to `repo` plus pull access to the repositories blobs are mounted from.
pub(crate) fn push_scope(repo: &RepoRef, blobs: &[PushBlob]) -> Scope {
    let mount_sources = blobs.iter().filter_map(|b| match &b.source {
        BlobSource::Remote(src) if src.registry() == repo.registry() => Some(src.repository()),
        _ => None,
    });
    Scope::push(repo.repository(), mount_sources)
}

pub(crate) fn display_all<S: serde::Serializer>(
    refs: &[Reference],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(refs.iter().map(ToString::to_string))
}

impl Client {
    /// Push `blobs` then `manifest` to `target`, and the manifest again under each extra tag.
    ///
    /// Blobs go in parallel (bounded by the client's `max_concurrent_transfers`); the manifest
    /// is put only after every blob is in place.
    pub async fn push(
        &self,
        target: &Reference,
        extra_tags: &[String],
        blobs: Vec<PushBlob>,
        manifest: ManifestToPush,
    ) -> Result<PushReport, RegistryError> {
        let repo = target.repo();
        let mut refs = vec![target.clone()];
        for tag in extra_tags {
            refs.push(target.with_tag(tag)?);
        }
        let manifest_digest = manifest.digest();
        if let Some(pinned) = target.digest()
            && pinned != &manifest_digest
        {
            return Err(RegistryError::DigestMismatch {
                object: format!("manifest to push to {target}"),
                expected: pinned.clone(),
                actual: manifest_digest,
            });
        }
        let scope = push_scope(repo, &blobs);
        let reports = self.push_blobs(repo, &scope, blobs).await?;
        let puts = refs
            .iter()
            .map(|r| self.put_manifest(repo, &scope, r, &manifest, &manifest_digest));
        try_join_all(puts).await?;
        let bytes_sent = reports.iter().map(|r| r.bytes_sent).sum::<u64>()
            + manifest.bytes.len() as u64 * refs.len() as u64;
        Ok(PushReport {
            manifest_digest,
            refs,
            blobs: reports,
            bytes_sent,
        })
    }

    /// Every blob in place in `repo`, in parallel (bounded by `max_concurrent_transfers`).
    pub(crate) async fn push_blobs(
        &self,
        repo: &RepoRef,
        scope: &Scope,
        blobs: Vec<PushBlob>,
    ) -> Result<Vec<BlobReport>, RegistryError> {
        stream::iter(blobs)
            .map(|blob| self.push_blob(repo, scope, blob))
            .buffered(self.max_concurrent_transfers)
            .try_collect()
            .await
    }

    async fn push_blob(
        &self,
        repo: &RepoRef,
        scope: &Scope,
        blob: PushBlob,
    ) -> Result<BlobReport, RegistryError> {
        let report = |outcome, bytes_sent| BlobReport {
            digest: blob.digest.clone(),
            size: blob.size,
            media_type: blob.media_type.clone(),
            outcome,
            bytes_sent,
        };
        if self.blob_exists(repo, &blob.digest, scope).await? {
            return Ok(report(BlobOutcome::AlreadyPresent, 0));
        }
        let (upload, outcome) = match &blob.source {
            BlobSource::Remote(src) if src.registry() == repo.registry() && src != repo => {
                match self.mount(repo, scope, &blob.digest, src).await? {
                    None => return Ok(report(BlobOutcome::Mounted, 0)),
                    Some(upload) => (upload, BlobOutcome::Uploaded),
                }
            }
            BlobSource::Remote(src) if src.registry() != repo.registry() => (
                self.start_upload(repo, scope, "").await?,
                BlobOutcome::CopiedFromRegistry,
            ),
            _ => (
                self.start_upload(repo, scope, "").await?,
                BlobOutcome::Uploaded,
            ),
        };
        self.upload_blob(repo, scope, upload, &blob).await?;
        Ok(report(outcome, blob.size))
    }

    pub(crate) async fn put_manifest(
        &self,
        repo: &RepoRef,
        scope: &Scope,
        reference: &Reference,
        manifest: &ManifestToPush,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        let mut headers = HeaderMap::new();
        let content_type = HeaderValue::from_str(&manifest.media_type).map_err(|_| {
            RegistryError::UnsupportedMediaType {
                media_type: manifest.media_type.clone(),
                reference: reference.to_string(),
            }
        })?;
        headers.insert(header::CONTENT_TYPE, content_type);
        let tag_or_digest = match reference.tag() {
            Some(tag) => tag.to_owned(),
            None => digest.to_string(),
        };
        let what = format!("manifest {reference}");
        let sent = self
            .transport
            .send(Request {
                method: Method::PUT,
                registry: repo.registry(),
                repository: repo.repository(),
                target: Target::Path(format!(
                    "/v2/{}/manifests/{tag_or_digest}",
                    repo.repository()
                )),
                headers,
                body: ReqBody::Bytes(manifest.bytes.clone()),
                scope,
                what: &what,
            })
            .await?;
        expect_success(repo, &what, &sent)?;
        check_digest_header(sent.response.headers(), digest, &what)
    }
}
