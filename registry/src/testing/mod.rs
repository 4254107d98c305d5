//! Test support (feature `testing`): [`FaultServer`], an in-process HTTP registry on
//! `127.0.0.1:0` that misbehaves on demand. It either serves an in-memory registry or proxies a
//! real one, and can corrupt bodies, fail with statuses, reset connections mid-body, send
//! oversized bodies, demand expiring Bearer tokens, and redirect blob GETs to a second host.
//!
//! ```no_run
//! # async fn demo() {
//! use pyslip_registry::testing::{FaultServer, Route};
//! let server = FaultServer::builder().fail_with_status(Route::Manifests, 429, Some(1), 1).build().await;
//! let registry = server.registry(); // "127.0.0.1:<port>"
//! # }
//! ```

mod memory;
mod referrers;
mod server;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use layers::Digest;

use memory::Memory;

/// Which requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET/HEAD/PUT /v2/<name>/manifests/<ref>`.
    Manifests,
    /// `GET /v2/<name>/blobs/<digest>` (not HEAD, not uploads).
    BlobGets,
    /// `HEAD /v2/<name>/blobs/<digest>`.
    BlobHeads,
    /// `POST/PUT /v2/<name>/blobs/uploads/…`.
    Uploads,
    /// The token endpoint (`/token`, only with [`FaultServerBuilder::bearer_auth`]).
    Token,
    /// Every request.
    Any,
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this status (and `Retry-After` seconds) and an error body.
    Status {
        /// HTTP status.
        status: u16,
        /// `Retry-After` value in seconds.
        retry_after: Option<u64>,
    },
    /// Send the headers and half the body, then drop the connection.
    ResetMidBody,
    /// Flip one byte of the body, keeping every header (including `Docker-Content-Digest`).
    Corrupt,
    /// Answer 200 with an endless chunked body (stops after 64 MiB).
    Oversized,
    /// Never answer: hold the request until the client goes away (a registry that hangs). The
    /// request is recorded first, so a test can wait for it in [`FaultServer::requests`].
    Stall,
}

#[derive(Debug)]
struct Fault {
    route: Route,
    kind: FaultKind,
    remaining: AtomicUsize,
}

/// One request the server (or its CDN) saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The `Range` header, if any.
    pub range: Option<String>,
}

/// Builds a [`FaultServer`].
#[derive(Debug, Default)]
pub struct FaultServerBuilder {
    upstream: Option<String>,
    faults: Vec<Fault>,
    bearer_uses: Option<usize>,
    bearer_credentials: Option<(String, String)>,
    redirect_blobs: bool,
    refuse_mounts: bool,
    referrers_api: bool,
}

impl FaultServerBuilder {
    /// Proxy every request to the real registry at `host:port` (plain HTTP) instead of serving
    /// the in-memory one.
    pub fn upstream(mut self, host_port: &str) -> Self {
        self.upstream = Some(host_port.to_owned());
        self
    }

    /// Apply `kind` to the next `times` requests on `route` (`usize::MAX`: always).
    pub fn fault(mut self, route: Route, kind: FaultKind, times: usize) -> Self {
        self.faults.push(Fault {
            route,
            kind,
            remaining: AtomicUsize::new(times),
        });
        self
    }

    /// Answer the next `times` requests on `route` with `status` (and `Retry-After`).
    pub fn fail_with_status(
        self,
        route: Route,
        status: u16,
        retry_after: Option<u64>,
        times: usize,
    ) -> Self {
        self.fault(
            route,
            FaultKind::Status {
                status,
                retry_after,
            },
            times,
        )
    }

    /// Reset the connection half-way through the body of the next `times` responses on `route`.
    pub fn reset_mid_body(self, route: Route, times: usize) -> Self {
        self.fault(route, FaultKind::ResetMidBody, times)
    }

    /// Corrupt one byte of every response body on `route`.
    pub fn corrupt(self, route: Route) -> Self {
        self.fault(route, FaultKind::Corrupt, usize::MAX)
    }

    /// Answer every request on `route` with an endless body.
    pub fn oversized(self, route: Route) -> Self {
        self.fault(route, FaultKind::Oversized, usize::MAX)
    }

    /// Never answer any request on `route` (see [`FaultKind::Stall`]).
    pub fn stall(self, route: Route) -> Self {
        self.fault(route, FaultKind::Stall, usize::MAX)
    }

    /// Demand Bearer tokens from `/token` on this server; each token is accepted for
    /// `uses_per_token` requests, then answered 401 (an expired token).
    pub fn bearer_auth(mut self, uses_per_token: usize) -> Self {
        self.bearer_uses = Some(uses_per_token.max(1));
        self
    }

    /// The token endpoint only issues tokens to these Basic credentials.
    pub fn token_credentials(mut self, username: &str, password: &str) -> Self {
        self.bearer_credentials = Some((username.to_owned(), password.to_owned()));
        self
    }

    /// Answer cross-repository mount requests with 202 (an upload session) instead of mounting.
    pub fn refuse_mounts(mut self) -> Self {
        self.refuse_mounts = true;
        self
    }

    /// Serve the OCI 1.1 referrers API (`GET /v2/<name>/referrers/<digest>`, `OCI-Subject` on
    /// manifest puts); without it the registry answers 404 there, like distribution 2.x.
    pub fn referrers_api(mut self) -> Self {
        self.referrers_api = true;
        self
    }

    /// Redirect blob GETs (307) to a second listener (another origin) that serves the blob and
    /// records whether an `Authorization` header reached it.
    pub fn redirect_blobs(mut self) -> Self {
        self.redirect_blobs = true;
        self
    }

    /// Start listening on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If no loopback port can be bound (test support only).
    pub async fn build(self) -> FaultServer {
        let shared = Arc::new(server::Shared {
            memory: Memory::new(self.refuse_mounts, self.referrers_api),
            upstream: self.upstream,
            faults: self.faults,
            bearer_uses: self.bearer_uses,
            bearer_credentials: self.bearer_credentials,
            tokens: Mutex::default(),
            token_requests: AtomicUsize::new(0),
            requests: Mutex::default(),
            cdn_requests: Mutex::default(),
            addr: Mutex::default(),
            cdn_addr: Mutex::default(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        });
        #[allow(clippy::expect_used)]
        let addr = server::listen(shared.clone(), false)
            .await
            .expect("bind 127.0.0.1:0");
        if let Ok(mut a) = shared.addr.lock() {
            *a = Some(addr);
        }
        if self.redirect_blobs {
            #[allow(clippy::expect_used)]
            let cdn = server::listen(shared.clone(), true)
                .await
                .expect("bind 127.0.0.1:0");
            if let Ok(mut a) = shared.cdn_addr.lock() {
                *a = Some(cdn);
            }
        }
        FaultServer { addr, shared }
    }
}

/// An in-process registry that misbehaves on demand. Stops when dropped (its tasks end with
/// the test's runtime).
pub struct FaultServer {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
}

impl FaultServer {
    /// Start building a server.
    pub fn builder() -> FaultServerBuilder {
        FaultServerBuilder::default()
    }

    /// `127.0.0.1:<port>`, usable as the registry part of a reference.
    pub fn registry(&self) -> String {
        self.addr.to_string()
    }

    /// Every request the registry listener saw, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Requests that reached the redirect target (the "CDN").
    pub fn cdn_requests(&self) -> Vec<Recorded> {
        self.shared
            .cdn_requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// How many tokens the token endpoint handed out or refused.
    pub fn token_requests(&self) -> usize {
        self.shared.token_requests.load(Ordering::Relaxed)
    }

    /// Count recorded requests with this method whose path contains `fragment`.
    pub fn count(&self, method: &str, fragment: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.contains(fragment))
            .count()
    }

    /// Seed a blob into `repo` of the in-memory registry.
    pub fn put_blob(&self, repo: &str, bytes: impl Into<Bytes>) -> Digest {
        self.shared.memory.put_blob(repo, bytes.into())
    }

    /// Seed a manifest under `reference` (tag or digest) of the in-memory registry.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: impl Into<Bytes>,
    ) -> Digest {
        self.shared
            .memory
            .put_manifest(repo, reference, media_type, bytes.into())
    }

    /// Whether the in-memory registry holds the blob in `repo`.
    pub fn has_blob(&self, repo: &str, digest: &Digest) -> bool {
        self.shared.memory.has_blob(repo, digest)
    }
}

impl std::fmt::Debug for FaultServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}
