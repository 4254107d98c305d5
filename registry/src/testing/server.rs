//! The HTTP side of the fault server: hyper listeners, bearer-token gate, fault injection, and
//! the backend (in-memory registry or a proxied real one).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use reqwest::header::HeaderMap;

use super::memory::{Memory, Reply, split_path};
use super::{Fault, FaultKind, Recorded, Route};

type Body = BoxBody<Bytes, std::io::Error>;

/// State shared by the listeners of one fault server.
pub(crate) struct Shared {
    pub memory: Memory,
    pub upstream: Option<String>,
    pub faults: Vec<Fault>,
    pub bearer_uses: Option<usize>,
    pub bearer_credentials: Option<(String, String)>,
    /// Issued token → uses left.
    pub tokens: Mutex<HashMap<String, usize>>,
    pub token_requests: AtomicUsize,
    pub requests: Mutex<Vec<Recorded>>,
    pub cdn_requests: Mutex<Vec<Recorded>>,
    pub addr: Mutex<Option<SocketAddr>>,
    pub cdn_addr: Mutex<Option<SocketAddr>>,
    pub http: reqwest::Client,
}

/// Accept connections on a fresh loopback port; `cdn` marks the redirect-target listener.
pub(crate) async fn listen(shared: Arc<Shared>, cdn: bool) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(shared.handle(req, cdn).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

fn route_of(method: &str, path: &str) -> Option<Route> {
    if path == "/token" {
        Some(Route::Token)
    } else if path.contains("/manifests/") {
        Some(Route::Manifests)
    } else if path.contains("/blobs/uploads") {
        Some(Route::Uploads)
    } else if path.contains("/blobs/") {
        match method {
            "GET" => Some(Route::BlobGets),
            "HEAD" => Some(Route::BlobHeads),
            _ => None,
        }
    } else {
        None
    }
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

impl Shared {
    fn addr(&self) -> String {
        self.addr
            .lock()
            .ok()
            .and_then(|a| *a)
            .map(|a| a.to_string())
            .unwrap_or_default()
    }

    fn take_fault(&self, route: Option<Route>) -> Option<FaultKind> {
        self.faults.iter().find_map(|f| {
            let applies = f.route == Route::Any || Some(f.route) == route;
            let taken = applies
                && f.remaining
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                        0 => None,
                        usize::MAX => Some(usize::MAX),
                        n => Some(n - 1),
                    })
                    .is_ok();
            taken.then(|| f.kind.clone())
        })
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>, cdn: bool) -> Response<Body> {
        let method = req.method().to_string();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or_default().to_owned();
        let headers: HeaderMap = req.headers().clone();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let authorization = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let record = Recorded {
            method: method.clone(),
            path: if query.is_empty() {
                path.clone()
            } else {
                format!("{path}?{query}")
            },
            authorization: authorization.clone(),
            range: headers
                .get("range")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        };
        let log = if cdn {
            &self.cdn_requests
        } else {
            &self.requests
        };
        if let Ok(mut log) = log.lock() {
            log.push(record);
        }
        if cdn {
            let reply = self.backend(&method, &path, &query, &headers, body).await;
            return respond(reply, &method);
        }
        let route = route_of(&method, &path);
        if route == Some(Route::Token) {
            self.token_requests.fetch_add(1, Ordering::Relaxed);
        }
        match self.take_fault(route) {
            Some(FaultKind::Status {
                status,
                retry_after,
            }) => {
                let mut reply = Reply::error(status, "FAULT", "injected failure");
                if let Some(secs) = retry_after {
                    reply = reply.header("retry-after", secs.to_string());
                }
                return respond(reply, &method);
            }
            Some(FaultKind::Oversized) => return endless(),
            Some(FaultKind::Stall) => return std::future::pending().await,
            Some(kind) => {
                return self
                    .serve(
                        &method,
                        &path,
                        &query,
                        &headers,
                        body,
                        authorization,
                        Some(kind),
                    )
                    .await;
            }
            None => {}
        }
        self.serve(&method, &path, &query, &headers, body, authorization, None)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn serve(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        body: Bytes,
        authorization: Option<String>,
        fault: Option<FaultKind>,
    ) -> Response<Body> {
        if path == "/token" {
            return respond(self.issue_token(authorization.as_deref()), method);
        }
        if let Some(uses) = self.bearer_uses
            && !self.accept_token(authorization.as_deref(), uses)
        {
            let name = split_path(path, "blobs")
                .or_else(|| split_path(path, "manifests"))
                .map_or("", |(name, _)| name);
            let challenge = format!(
                r#"Bearer realm="http://{}/token",service="fault-registry",scope="repository:{name}:pull""#,
                self.addr()
            );
            let reply = Reply::error(401, "UNAUTHORIZED", "authentication required")
                .header("www-authenticate", challenge);
            return respond(reply, method);
        }
        let cdn = self.cdn_addr.lock().ok().and_then(|a| *a);
        if let Some(cdn) = cdn
            && route_of(method, path) == Some(Route::BlobGets)
        {
            return respond(
                Reply::new(307).header("location", format!("http://{cdn}{path}")),
                method,
            );
        }
        let mut reply = self.backend(method, path, query, headers, body).await;
        match fault {
            Some(FaultKind::Corrupt) if !reply.body.is_empty() => {
                let mut bytes = reply.body.to_vec();
                let middle = bytes.len() / 2;
                if let Some(b) = bytes.get_mut(middle) {
                    *b ^= 0x01;
                }
                reply.body = bytes.into();
                respond(reply, method)
            }
            Some(FaultKind::ResetMidBody) => reset_mid_body(reply),
            _ => respond(reply, method),
        }
    }

    fn issue_token(&self, authorization: Option<&str>) -> Reply {
        if let Some((user, password)) = &self.bearer_credentials {
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            );
            if authorization != Some(expected.as_str()) {
                return Reply::error(401, "UNAUTHORIZED", "bad credentials");
            }
        }
        let n = self.token_requests.load(Ordering::Relaxed);
        let token = format!("tok-{n}");
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(token.clone(), self.bearer_uses.unwrap_or(usize::MAX));
        }
        let body = serde_json::json!({"token": token, "expires_in": 300});
        Reply::new(200)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap_or_default())
    }

    /// Whether the request carries a live token (and use it up once).
    fn accept_token(&self, authorization: Option<&str>, _uses: usize) -> bool {
        let Some(token) = authorization.and_then(|a| a.strip_prefix("Bearer ")) else {
            return false;
        };
        let Ok(mut tokens) = self.tokens.lock() else {
            return false;
        };
        match tokens.get_mut(token) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }

    async fn backend(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Reply {
        let Some(upstream) = &self.upstream else {
            return self.memory.handle(method, path, query, headers, body);
        };
        let url = if query.is_empty() {
            format!("http://{upstream}{path}")
        } else {
            format!("http://{upstream}{path}?{query}")
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut forwarded = headers.clone();
        for name in ["host", "content-length", "transfer-encoding", "connection"] {
            forwarded.remove(name);
        }
        let response = match self
            .http
            .request(method, url)
            .headers(forwarded)
            .body(body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Reply::error(502, "UPSTREAM", &e.to_string()),
        };
        let mut reply = Reply::new(response.status().as_u16());
        let own = format!("http://{}", self.addr());
        for (name, value) in response.headers() {
            let Ok(value) = value.to_str() else { continue };
            if matches!(name.as_str(), "transfer-encoding" | "connection") {
                continue;
            }
            let value = value.replace(&format!("http://{upstream}"), &own);
            reply = reply.header(name.as_str(), value);
        }
        reply.body(response.bytes().await.unwrap_or_default())
    }
}

/// Turn a reply into a hyper response; non-HEAD bodies get their own Content-Length.
fn respond(reply: Reply, method: &str) -> Response<Body> {
    let mut builder = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        if name.eq_ignore_ascii_case("content-length") && method != "HEAD" {
            continue;
        }
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(full(reply.body))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// Announce the full length, send half, then fail the stream so hyper drops the connection.
fn reset_mid_body(reply: Reply) -> Response<Body> {
    let len = reply.body.len();
    let half = reply.body.slice(..len / 2);
    // Pause before failing so the first half is flushed to the client, not dropped with the
    // connection.
    let frames = futures_util::stream::unfold(0u8, move |step| {
        let half = half.clone();
        async move {
            match step {
                0 => Some((Ok(Frame::data(half)), 1)),
                1 => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    let reset =
                        std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected reset");
                    Some((Err(reset), 2))
                }
                _ => None,
            }
        }
    });
    let mut builder = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        if !name.eq_ignore_ascii_case("content-length") {
            builder = builder.header(name.as_str(), value.as_str());
        }
    }
    builder
        .header("content-length", len.to_string())
        .body(StreamBody::new(frames).boxed())
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// 200 with a chunked body of up to 64 MiB.
fn endless() -> Response<Body> {
    let chunk = Bytes::from(vec![b' '; 1024 * 1024]);
    let frames = futures_util::stream::iter((0..64).map(move |_| Ok(Frame::data(chunk.clone()))));
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(StreamBody::new(frames).boxed())
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}
