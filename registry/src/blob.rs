//! Downloading blobs (and plain URLs) to files through [`crate::download`], and checking
//! whether a blob exists.

use std::path::Path;

use pyslip_digest::Digest;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};

use crate::auth::Scope;
use crate::client::Client;
use crate::download::{Getter, SizeRule, Wanted, download};
use crate::error::RegistryError;
use crate::manifest::{Descriptor, MANIFEST_ACCEPT};
use crate::reference::RepoRef;
use crate::transport::body::ReqBody;
use crate::transport::{Request, Target};

impl Client {
    /// Download a blob to `dest`: streamed to a temp file next to it, resumed with `Range`
    /// after an interruption (or restarted if the registry ignores ranges), size and sha256
    /// verified, then renamed into place. Nothing is left at `dest` on failure.
    pub async fn fetch_blob(
        &self,
        repo: &RepoRef,
        descriptor: &Descriptor,
        dest: &Path,
    ) -> Result<(), RegistryError> {
        let what = format!("blob {} of {repo}", descriptor.digest);
        let wanted = Wanted {
            digest: &descriptor.digest,
            size: SizeRule::Exact(descriptor.size),
            what: &what,
            host: repo.api_host(),
        };
        let get: Getter<'_> = Box::new(|headers| {
            Box::pin(async {
                let sent = self
                    .blob_get(repo, &descriptor.digest, headers, &what)
                    .await?;
                Ok(sent.response)
            })
        });
        let bytes = download(dest, &wanted, &self.transport.retry, get).await?;
        self.received.add(bytes);
        Ok(())
    }

    /// Download a plain URL (not a registry's: a file on a package index) to `dest`, through
    /// the same HTTP stack as registry requests: proxies (`HTTP(S)_PROXY`, `NO_PROXY`), CA roots,
    /// retries of 408/429/5xx and broken connections with `Retry-After`, redirects, and `Range`
    /// resumption. No credentials are ever sent. The body may have at most `max_bytes` bytes and
    /// must hash to `expected`; otherwise nothing is left at `dest`. Returns the size.
    pub async fn fetch_url_verified(
        &self,
        url: &url::Url,
        dest: &Path,
        expected: &Digest,
        max_bytes: u64,
    ) -> Result<u64, RegistryError> {
        let host = crate::transport::host_port(url);
        let what = format!("download of {url}");
        let wanted = Wanted {
            digest: expected,
            size: SizeRule::AtMost(max_bytes),
            what: &what,
            host: &host,
        };
        let scope = Scope::none();
        let get: Getter<'_> = Box::new(|headers| {
            Box::pin(async {
                let sent = self
                    .transport
                    .send_plain(Request {
                        method: Method::GET,
                        registry: &host,
                        repository: "",
                        target: Target::Url(url.clone()),
                        headers,
                        body: ReqBody::Empty,
                        scope: &scope,
                        what: &what,
                    })
                    .await?;
                if sent.response.status() == StatusCode::NOT_FOUND {
                    return Err(RegistryError::Status {
                        registry: host.clone(),
                        method: "GET".into(),
                        path: sent.url.path().to_owned(),
                        status: 404,
                        detail: None,
                    });
                }
                Ok(sent.response)
            })
        });
        download(dest, &wanted, &self.transport.retry, get).await
    }

    /// Whether `repo` has the blob (HEAD).
    pub async fn blob_exists(
        &self,
        repo: &RepoRef,
        digest: &Digest,
        scope: &Scope,
    ) -> Result<bool, RegistryError> {
        self.exists(repo, "blobs", digest, scope).await
    }

    /// Whether `repo` has the manifest `digest` (HEAD).
    pub async fn manifest_exists(
        &self,
        repo: &RepoRef,
        digest: &Digest,
        scope: &Scope,
    ) -> Result<bool, RegistryError> {
        self.exists(repo, "manifests", digest, scope).await
    }

    /// HEAD `/v2/<repo>/<kind>/<digest>`.
    async fn exists(
        &self,
        repo: &RepoRef,
        kind: &str,
        digest: &Digest,
        scope: &Scope,
    ) -> Result<bool, RegistryError> {
        let mut headers = HeaderMap::new();
        if kind == "manifests" {
            headers.insert(header::ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        }
        let what = format!("{kind} check");
        let sent = self
            .transport
            .send(Request {
                method: Method::HEAD,
                registry: repo.registry(),
                repository: repo.repository(),
                target: Target::Path(format!("/v2/{}/{kind}/{digest}", repo.repository())),
                headers,
                body: ReqBody::Empty,
                scope,
                what: &what,
            })
            .await?;
        Ok(sent.response.status().is_success())
    }
}
