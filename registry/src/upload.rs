//! Blob upload sessions: `POST` opens one (or mounts), `PATCH` sends the bytes as one chunk with
//! `Content-Range`, `PUT ?digest=` closes it. This is the flow Docker, containerd and
//! go-containerregistry use, so every registry takes it.
//!
//! Every request is retried by the transport. A chunk carries its `Content-Range`, so a retried
//! `PATCH` that the registry had already (partly) taken is refused with 416 instead of appended
//! twice; then, or when the session is gone (404), the caller opens a fresh session. A `PUT`
//! whose reply was lost finds its session gone on the retry: a `HEAD` tells whether the blob
//! arrived.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{StreamExt as _, stream};
use pyslip_digest::Digest;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};

use crate::auth::Scope;
use crate::client::Client;
use crate::error::RegistryError;
use crate::push::{BlobSource, PushBlob};
use crate::reference::RepoRef;
use crate::transport::body::ReqBody;
use crate::transport::{Request, Sent, Target, location};

/// How one upload session ended.
enum SessionEnd {
    /// The blob is in the repository.
    Done,
    /// The session is unusable (gone, or in an unknown state); start another.
    Lost(RegistryError),
}

impl Client {
    /// Upload `blob` through the session at `session`; when that session is lost, through fresh
    /// ones (as many times as the retry policy allows).
    pub(crate) async fn upload_blob(
        &self,
        repo: &RepoRef,
        scope: &Scope,
        mut session: url::Url,
        blob: &PushBlob,
    ) -> Result<(), RegistryError> {
        let mut restarts = self.transport.retry.delays();
        loop {
            match self.send_blob(repo, scope, session, blob).await? {
                SessionEnd::Done => return Ok(()),
                SessionEnd::Lost(err) => match restarts.next() {
                    // The session's state is unknown (a chunk half-taken, a reply lost): begin
                    // a fresh one rather than guess.
                    Some(delay) => {
                        tokio::time::sleep(delay).await;
                        session = self.start_upload(repo, scope, "").await?;
                    }
                    None => return Err(err),
                },
            }
        }
    }

    /// Send `blob` through the upload session at `session`: one `PATCH`, then the closing `PUT`.
    async fn send_blob(
        &self,
        repo: &RepoRef,
        scope: &Scope,
        session: url::Url,
        blob: &PushBlob,
    ) -> Result<SessionEnd, RegistryError> {
        let what = format!("upload of blob {}", blob.digest);
        let mut finish_at = session;
        if blob.size > 0 {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.size));
            let range = HeaderValue::from_str(&format!("0-{}", blob.size - 1))
                .map_err(|e| protocol(repo, e.to_string()))?;
            headers.insert(header::CONTENT_RANGE, range);
            let sent = self
                .upload_request(repo, scope, Method::PATCH, finish_at.clone(), headers)
                .body(self.blob_body(blob))
                .send(&what)
                .await?;
            let status = sent.response.status();
            if status == StatusCode::NOT_FOUND || status == StatusCode::RANGE_NOT_SATISFIABLE {
                return Ok(SessionEnd::Lost(unexpected(repo, "PATCH", &sent)));
            }
            expect_success(repo, "PATCH", &sent)?;
            if let Some(next) = location_of(repo, &sent)? {
                finish_at = next;
            }
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0u64));
        let sent = self
            .upload_request(
                repo,
                scope,
                Method::PUT,
                location::with_digest(finish_at, &blob.digest),
                headers,
            )
            .send(&what)
            .await?;
        if sent.response.status() == StatusCode::NOT_FOUND {
            if self.blob_exists(repo, &blob.digest, scope).await? {
                return Ok(SessionEnd::Done);
            }
            return Ok(SessionEnd::Lost(unexpected(repo, "PUT", &sent)));
        }
        expect_success(repo, "PUT", &sent)?;
        Ok(SessionEnd::Done)
    }

    fn upload_request<'a>(
        &'a self,
        repo: &'a RepoRef,
        scope: &'a Scope,
        method: Method,
        url: url::Url,
        headers: HeaderMap,
    ) -> UploadRequest<'a> {
        UploadRequest {
            client: self,
            repo,
            scope,
            method,
            url,
            headers,
            body: ReqBody::Empty,
        }
    }

    fn blob_body(&self, blob: &PushBlob) -> ReqBody {
        match &blob.source {
            BlobSource::File(path) => ReqBody::File(path.clone()),
            BlobSource::Bytes(bytes) => ReqBody::Bytes(bytes.clone()),
            BlobSource::Remote(src) => {
                ReqBody::Stream(self.copy_stream(src.clone(), blob.digest.clone(), blob.size))
            }
        }
    }

    /// `POST …/blobs/uploads/?mount=<digest>&from=<repo>`: `None` when mounted, else the
    /// upload session the registry opened instead.
    pub(crate) async fn mount(
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
    pub(crate) async fn start_upload(
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
}

/// One request to an upload session URL.
struct UploadRequest<'a> {
    client: &'a Client,
    repo: &'a RepoRef,
    scope: &'a Scope,
    method: Method,
    url: url::Url,
    headers: HeaderMap,
    body: ReqBody,
}

impl UploadRequest<'_> {
    fn body(mut self, body: ReqBody) -> Self {
        self.body = body;
        self
    }

    async fn send(self, what: &str) -> Result<Sent, RegistryError> {
        self.client
            .transport
            .send(Request {
                method: self.method,
                registry: self.repo.registry(),
                repository: self.repo.repository(),
                target: Target::Url(self.url),
                headers: self.headers,
                body: self.body,
                scope: self.scope,
                what,
            })
            .await
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
    location_of(repo, sent)?
        .ok_or_else(|| protocol(repo, "upload started without a Location header".into()))
}

/// The `Location` of a response, resolved against its URL; `None` when there is none.
fn location_of(repo: &RepoRef, sent: &Sent) -> Result<Option<url::Url>, RegistryError> {
    let Some(value) = sent
        .response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    location::resolve(&sent.url, value)
        .map(Some)
        .map_err(|e| protocol(repo, format!("bad upload location {value:?}: {e}")))
}

fn protocol(repo: &RepoRef, problem: String) -> RegistryError {
    RegistryError::Protocol {
        registry: repo.registry().to_owned(),
        problem,
    }
}

pub(crate) fn expect_success(
    repo: &RepoRef,
    method: &str,
    sent: &Sent,
) -> Result<(), RegistryError> {
    if sent.response.status().is_success() {
        Ok(())
    } else {
        Err(unexpected(repo, method, sent))
    }
}

pub(crate) fn unexpected(repo: &RepoRef, method: &str, sent: &Sent) -> RegistryError {
    RegistryError::Status {
        registry: repo.registry().to_owned(),
        method: method.to_owned(),
        path: sent.url.path().to_owned(),
        status: sent.response.status().as_u16(),
        detail: None,
    }
}
