//! Pushing an image: blobs in parallel (HEAD → skip, same-registry → cross-repo mount, other
//! registry → streamed copy, else upload), then the manifest under every tag.

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::future::{BoxFuture, try_join_all};
use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use layers::Digest;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};

use crate::auth::Scope;
use crate::client::Client;
use crate::error::RegistryError;
use crate::manifest::ManifestToPush;
use crate::pull::check_digest_header;
use crate::reference::{Reference, RepoRef};
use crate::transport::body::ReqBody;
use crate::transport::{Request, Sent, Target, location};

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

fn display_all<S: serde::Serializer>(refs: &[Reference], s: S) -> Result<S::Ok, S::Error> {
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
        let mount_sources = blobs.iter().filter_map(|b| match &b.source {
            BlobSource::Remote(src) if src.registry() == repo.registry() => Some(src.repository()),
            _ => None,
        });
        let scope = Scope::push(repo.repository(), mount_sources);
        let reports: Vec<BlobReport> = stream::iter(blobs)
            .map(|blob| self.push_blob(repo, &scope, blob))
            .buffered(self.max_concurrent_transfers)
            .try_collect()
            .await?;
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
        let body = match &blob.source {
            BlobSource::File(path) => ReqBody::File(path.clone()),
            BlobSource::Bytes(bytes) => ReqBody::Bytes(bytes.clone()),
            BlobSource::Remote(src) => {
                ReqBody::Stream(self.copy_stream(src.clone(), blob.digest.clone(), blob.size))
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.size));
        let what = format!("upload of blob {}", blob.digest);
        let sent = self
            .transport
            .send(Request {
                method: Method::PUT,
                registry: repo.registry(),
                repository: repo.repository(),
                target: Target::Url(location::with_digest(upload, &blob.digest)),
                headers,
                body,
                scope,
                what: &what,
            })
            .await?;
        expect_created(repo, &sent, &what)?;
        Ok(report(outcome, blob.size))
    }

    /// `POST …/blobs/uploads/?mount=<digest>&from=<repo>`: `None` when mounted, else the
    /// upload session the registry opened instead.
    async fn mount(
        &self,
        repo: &RepoRef,
        scope: &Scope,
        digest: &Digest,
        from: &RepoRef,
    ) -> Result<Option<url::Url>, RegistryError> {
        let query = format!("?mount={digest}&from={}", from.repository());
        let sent = self.post_upload(repo, scope, &query).await?;
        if sent.response.status() == StatusCode::CREATED {
            return Ok(None);
        }
        upload_location(repo, &sent).map(Some)
    }

    /// Open an upload session; returns its URL.
    async fn start_upload(
        &self,
        repo: &RepoRef,
        scope: &Scope,
        query: &str,
    ) -> Result<url::Url, RegistryError> {
        let sent = self.post_upload(repo, scope, query).await?;
        upload_location(repo, &sent)
    }

    async fn post_upload(
        &self,
        repo: &RepoRef,
        scope: &Scope,
        query: &str,
    ) -> Result<Sent, RegistryError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0u64));
        let sent = self
            .transport
            .send(Request {
                method: Method::POST,
                registry: repo.registry(),
                repository: repo.repository(),
                target: Target::Path(format!("/v2/{}/blobs/uploads/{query}", repo.repository())),
                headers,
                body: ReqBody::Empty,
                scope,
                what: "upload start",
            })
            .await?;
        let status = sent.response.status();
        if status != StatusCode::ACCEPTED && status != StatusCode::CREATED {
            return Err(unexpected(repo, "POST", &sent));
        }
        Ok(sent)
    }

    /// A body factory that GETs the blob from `src` and checks size and digest as it streams.
    fn copy_stream(
        &self,
        src: RepoRef,
        digest: Digest,
        size: u64,
    ) -> crate::transport::body::StreamFactory {
        let client = self.clone();
        Box::new(
            move || -> BoxFuture<'static, Result<reqwest::Body, RegistryError>> {
                let (client, src, digest) = (client.clone(), src.clone(), digest.clone());
                Box::pin(async move {
                    let what = format!("blob {digest} of {src}");
                    let sent = client
                        .blob_get(&src, &digest, HeaderMap::new(), &what)
                        .await?;
                    Ok(reqwest::Body::wrap_stream(verifying(
                        sent.response.bytes_stream(),
                        digest,
                        size,
                    )))
                })
            },
        )
    }

    async fn put_manifest(
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
        expect_created(repo, &sent, &what)?;
        check_digest_header(sent.response.headers(), digest, &what)
    }
}

/// Wrap a byte stream so it fails at the end if the bytes do not match `digest` and `size`
/// (and as soon as there are too many), aborting the upload it feeds.
fn verifying(
    inner: impl futures_util::Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
    digest: Digest,
    size: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    struct State<S> {
        inner: S,
        hasher: Sha256,
        seen: u64,
        done: bool,
    }
    let state = State {
        inner: Box::pin(inner),
        hasher: Sha256::new(),
        seen: 0,
        done: false,
    };
    stream::unfold(state, move |mut st| {
        let digest = digest.clone();
        async move {
            if st.done {
                return None;
            }
            let bad = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
            match st.inner.next().await {
                Some(Ok(chunk)) => {
                    st.seen += chunk.len() as u64;
                    if st.seen > size {
                        st.done = true;
                        return Some((
                            Err(bad(format!(
                                "source blob {digest} is longer than {size} bytes"
                            ))),
                            st,
                        ));
                    }
                    st.hasher.update(&chunk);
                    Some((Ok(chunk), st))
                }
                Some(Err(e)) => {
                    st.done = true;
                    Some((Err(std::io::Error::other(e)), st))
                }
                None => {
                    st.done = true;
                    let actual =
                        Digest::from_sha256(std::mem::take(&mut st.hasher).finalize().into());
                    if st.seen != size || actual != digest {
                        return Some((
                            Err(bad(format!(
                                "source blob {digest} arrived as {actual} ({} bytes)",
                                st.seen
                            ))),
                            st,
                        ));
                    }
                    None
                }
            }
        }
    })
}

fn upload_location(repo: &RepoRef, sent: &Sent) -> Result<url::Url, RegistryError> {
    let value = sent
        .response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Protocol {
            registry: repo.registry().to_owned(),
            problem: "upload started without a Location header".into(),
        })?;
    location::resolve(&sent.url, value).map_err(|e| RegistryError::Protocol {
        registry: repo.registry().to_owned(),
        problem: format!("bad upload location {value:?}: {e}"),
    })
}

fn expect_created(repo: &RepoRef, sent: &Sent, what: &str) -> Result<(), RegistryError> {
    if sent.response.status().is_success() {
        Ok(())
    } else {
        Err(unexpected(repo, what, sent))
    }
}

fn unexpected(repo: &RepoRef, method: &str, sent: &Sent) -> RegistryError {
    RegistryError::Status {
        registry: repo.registry().to_owned(),
        method: method.to_owned(),
        path: sent.url.path().to_owned(),
        status: sent.response.status().as_u16(),
        detail: None,
    }
}
