//! HTTP transport to registries: scheme choice (loopback/insecure), authentication with token
//! caching, bounded retries, and redirects that never carry credentials to another host.

pub mod body;
pub mod location;
pub mod retry;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::auth::{
    AuthState, Challenge, Credential, CredentialSources, Scope, basic_header, parse_challenge,
};
use crate::error::RegistryError;
use crate::reference::{api_host, is_loopback};
use body::{MAX_SMALL_BODY_BYTES, ReqBody, error_detail, read_limited};
use retry::{RetryPolicy, parse_retry_after, retryable_status};

/// Redirects followed for one GET/HEAD.
const MAX_REDIRECTS: usize = 5;

/// One request to a registry.
pub(crate) struct Request<'a> {
    pub method: Method,
    /// Registry as written in references (`docker.io`, `127.0.0.1:5000`).
    pub registry: &'a str,
    /// Repository, for error messages.
    pub repository: &'a str,
    /// Path below the registry root (`/v2/...`) or an absolute URL (upload locations).
    pub target: Target,
    pub headers: HeaderMap,
    pub body: ReqBody,
    pub scope: &'a Scope,
    /// What is being transferred, for error messages.
    pub what: &'a str,
}

/// Where a request goes.
pub(crate) enum Target {
    Path(String),
    Url(Url),
}

/// A response and the URL that produced it (after redirects).
pub(crate) struct Sent {
    pub response: reqwest::Response,
    pub url: Url,
}

/// Shared HTTP state of a client.
pub(crate) struct Transport {
    secure: reqwest::Client,
    insecure: reqwest::Client,
    insecure_registries: Vec<String>,
    pub(crate) retry: RetryPolicy,
    pub(crate) credentials: CredentialSources,
    auth: AuthState,
    bases: Mutex<HashMap<String, Url>>,
}

impl Transport {
    pub(crate) fn new(
        insecure_registries: Vec<String>,
        retry: RetryPolicy,
        credentials: CredentialSources,
        user_agent: &str,
    ) -> Result<Self, RegistryError> {
        let builder = || {
            reqwest::Client::builder()
                .use_rustls_tls()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(user_agent)
                .connect_timeout(Duration::from_secs(15))
        };
        Ok(Self {
            secure: builder().build().map_err(RegistryError::ClientSetup)?,
            // Like podman's `--tls-verify=false` and crane's `--insecure`: HTTPS without
            // certificate verification, falling back to plain HTTP (see `base`).
            insecure: builder()
                .danger_accept_invalid_certs(true)
                .build()
                .map_err(RegistryError::ClientSetup)?,
            insecure_registries,
            retry,
            credentials,
            auth: AuthState::default(),
            bases: Mutex::new(HashMap::new()),
        })
    }

    fn is_insecure(&self, host_port: &str) -> bool {
        self.insecure_registries
            .iter()
            .any(|r| r == host_port || api_host(r) == host_port)
    }

    pub(crate) fn client_for(&self, url: &Url) -> &reqwest::Client {
        let host = host_port(url);
        if self.is_insecure(&host) {
            &self.insecure
        } else {
            &self.secure
        }
    }

    /// `scheme://host[:port]/` for a registry. Loopback → HTTP; insecure → HTTPS without
    /// verification if it answers, else HTTP; anything else → HTTPS.
    pub(crate) async fn base(&self, registry: &str) -> Result<Url, RegistryError> {
        if let Some(url) = self
            .bases
            .lock()
            .ok()
            .and_then(|m| m.get(registry).cloned())
        {
            return Ok(url);
        }
        let host = api_host(registry);
        let parse = |scheme: &str| {
            Url::parse(&format!("{scheme}://{host}/")).map_err(|e| RegistryError::Protocol {
                registry: registry.to_owned(),
                problem: format!("cannot form a url from the host: {e}"),
            })
        };
        let url = if is_loopback(registry) {
            parse("http")?
        } else if self.is_insecure(registry) {
            let https = parse("https")?;
            let probe = self
                .insecure
                .get(https.join("v2/").unwrap_or_else(|_| https.clone()))
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            if probe.is_ok() { https } else { parse("http")? }
        } else {
            parse("https")?
        };
        if let Ok(mut map) = self.bases.lock() {
            map.insert(registry.to_owned(), url.clone());
        }
        Ok(url)
    }

    /// Send with auth, retries and redirects. Returns responses below 400, and 404/416 (the
    /// caller decides what absence means); every other status becomes an error.
    pub(crate) async fn send(&self, req: Request<'_>) -> Result<Sent, RegistryError> {
        let url = match &req.target {
            Target::Url(url) => url.clone(),
            Target::Path(path) => {
                let base = self.base(req.registry).await?;
                base.join(path.trim_start_matches('/'))
                    .map_err(|e| RegistryError::Protocol {
                        registry: req.registry.to_owned(),
                        problem: format!("cannot form a request url: {e}"),
                    })?
            }
        };
        let mut delays = self.retry.delays();
        let mut reauthenticated = false;
        loop {
            let auth = self.authorization(req.registry, req.scope).await?;
            let (response, final_url) = match self.attempt(&req, url.clone(), auth.as_deref()).await
            {
                Ok(sent) => sent,
                Err(err) if err.is_retryable() => match delays.next() {
                    Some(delay) => {
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    None => return Err(err),
                },
                Err(err) => return Err(err),
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED {
                let challenge = response
                    .headers()
                    .get_all(header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(parse_challenge);
                let has_credentials = self
                    .auth
                    .credential(&self.credentials, req.registry)
                    .await?
                    .is_some();
                let hopeless = reauthenticated
                    || challenge.is_none()
                    || (challenge == Some(Challenge::Basic) && !has_credentials);
                if hopeless {
                    return Err(self
                        .unauthorized(&req, response, auth.is_some() || has_credentials)
                        .await);
                }
                if let Some(challenge) = challenge {
                    self.auth.set_challenge(req.registry, challenge);
                }
                if let Some(used) = &auth {
                    self.auth.invalidate(req.registry, req.scope, used);
                }
                reauthenticated = true;
                continue;
            }
            if retryable_status(status.as_u16())
                && let Some(delay) = delays.next()
            {
                let after = parse_retry_after(response.headers().get(header::RETRY_AFTER));
                tokio::time::sleep(self.retry.wait(delay, after)).await;
                continue;
            }
            if status.as_u16() < 400
                || status == StatusCode::NOT_FOUND
                || status == StatusCode::RANGE_NOT_SATISFIABLE
            {
                return Ok(Sent {
                    response,
                    url: final_url,
                });
            }
            return Err(self.status_error(&req, &final_url, response).await);
        }
    }

    /// One attempt, following redirects for GET/HEAD; Authorization only goes to the origin.
    async fn attempt(
        &self,
        req: &Request<'_>,
        mut url: Url,
        mut auth: Option<&str>,
    ) -> Result<(reqwest::Response, Url), RegistryError> {
        let origin = url.origin();
        let follows = req.method == Method::GET || req.method == Method::HEAD;
        for _ in 0..=MAX_REDIRECTS {
            let mut builder = self
                .client_for(&url)
                .request(req.method.clone(), url.clone())
                .headers(req.headers.clone());
            if let Some(auth) = auth {
                builder = builder.header(header::AUTHORIZATION, auth);
            }
            if let Some(body) = req.body.make().await? {
                builder = builder.body(body);
            }
            let host = host_port(&url);
            let response = builder
                .send()
                .await
                .map_err(|e| classify(e, &host, req.what))?;
            if follows && response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| RegistryError::Protocol {
                        registry: req.registry.to_owned(),
                        problem: format!("redirect without location for {}", req.what),
                    })?;
                url = url.join(location).map_err(|e| RegistryError::Protocol {
                    registry: req.registry.to_owned(),
                    problem: format!("bad redirect location {location:?}: {e}"),
                })?;
                if url.origin() != origin {
                    auth = None;
                }
                continue;
            }
            return Ok((response, url));
        }
        Err(RegistryError::Protocol {
            registry: req.registry.to_owned(),
            problem: format!("more than {MAX_REDIRECTS} redirects for {}", req.what),
        })
    }

    /// The Authorization value for (registry, scope), fetching a token when the registry is
    /// known to want one.
    async fn authorization(
        &self,
        registry: &str,
        scope: &Scope,
    ) -> Result<Option<String>, RegistryError> {
        match self.auth.challenge(registry) {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(
                match self.auth.credential(&self.credentials, registry).await? {
                    Some(Credential::Basic { username, password }) => {
                        Some(basic_header(&username, &password))
                    }
                    _ => None,
                },
            ),
            Some(Challenge::Bearer { realm, service, .. }) => {
                if let Some(token) = self.auth.token(registry, scope) {
                    return Ok(Some(token));
                }
                let _guard = self.auth.fetch_lock.lock().await;
                if let Some(token) = self.auth.token(registry, scope) {
                    return Ok(Some(token));
                }
                let (token, lifetime) = self
                    .fetch_token(registry, &realm, service.as_deref(), scope)
                    .await?;
                self.auth.store_token(registry, scope, &token, lifetime);
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Ask the realm for a token (Basic credentials, or an OAuth2 refresh token, or anonymous).
    async fn fetch_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
    ) -> Result<(String, Duration), RegistryError> {
        let bad_realm = |problem: String| RegistryError::Protocol {
            registry: registry.to_owned(),
            problem,
        };
        let realm_url =
            Url::parse(realm).map_err(|e| bad_realm(format!("bad token realm {realm:?}: {e}")))?;
        let credential = self.auth.credential(&self.credentials, registry).await?;
        let mut headers = HeaderMap::new();
        let (method, url, body) = match &credential {
            Some(Credential::IdentityToken(refresh)) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", refresh)
                    .append_pair("client_id", "pyslip");
                if let Some(service) = service {
                    form.append_pair("service", service);
                }
                form.append_pair("scope", &scope.to_string());
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                (
                    Method::POST,
                    realm_url,
                    ReqBody::Bytes(form.finish().into()),
                )
            }
            other => {
                let mut url = realm_url;
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = service {
                        query.append_pair("service", service);
                    }
                    for item in scope.items() {
                        query.append_pair("scope", item);
                    }
                }
                if let Some(Credential::Basic { username, password }) = other {
                    let value =
                        HeaderValue::from_str(&basic_header(username, password)).map_err(|_| {
                            bad_realm(
                                "credentials contain characters not allowed in a header".into(),
                            )
                        })?;
                    headers.insert(header::AUTHORIZATION, value);
                }
                (Method::GET, url, ReqBody::Empty)
            }
        };
        let host = host_port(&url);
        let mut delays = self.retry.delays();
        let response = loop {
            let mut builder = self
                .client_for(&url)
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = body.make().await? {
                builder = builder.body(body);
            }
            match builder
                .send()
                .await
                .map_err(|e| classify(e, &host, "token request"))
            {
                Ok(r) if retryable_status(r.status().as_u16()) => match delays.next() {
                    Some(d) => {
                        tokio::time::sleep(
                            self.retry
                                .wait(d, parse_retry_after(r.headers().get(header::RETRY_AFTER))),
                        )
                        .await
                    }
                    None => break r,
                },
                Ok(r) => break r,
                Err(e) if e.is_retryable() => match delays.next() {
                    Some(d) => tokio::time::sleep(d).await,
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        };
        let status = response.status();
        let body = read_limited(response, MAX_SMALL_BODY_BYTES, "token response", &host).await?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized {
                registry: registry.to_owned(),
                scope: scope.to_string(),
                consulted: self.credentials.files(),
                had_credentials: credential.is_some(),
                detail: error_detail(&body),
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Status {
                registry: host,
                method: method.to_string(),
                path: url.path().to_owned(),
                status: status.as_u16(),
                detail: error_detail(&body),
            });
        }
        let parsed: crate::auth::TokenResponse =
            serde_json::from_slice(&body).map_err(|source| RegistryError::InvalidJson {
                what: "token response".into(),
                host: host.clone(),
                source,
            })?;
        parsed.into_token().ok_or_else(|| RegistryError::Protocol {
            registry: registry.to_owned(),
            problem: "token response has neither token nor access_token".into(),
        })
    }

    async fn unauthorized(
        &self,
        req: &Request<'_>,
        response: reqwest::Response,
        had_credentials: bool,
    ) -> RegistryError {
        let host = host_port(response.url());
        let detail = match read_limited(response, MAX_SMALL_BODY_BYTES, "error body", &host).await {
            Ok(body) => error_detail(&body),
            Err(e) => return e,
        };
        RegistryError::Unauthorized {
            registry: req.registry.to_owned(),
            scope: req.scope.to_string(),
            consulted: self.credentials.files(),
            had_credentials,
            detail,
        }
    }

    async fn status_error(
        &self,
        req: &Request<'_>,
        url: &Url,
        response: reqwest::Response,
    ) -> RegistryError {
        let status = response.status().as_u16();
        let detail = match read_limited(
            response,
            MAX_SMALL_BODY_BYTES,
            "error body",
            &host_port(url),
        )
        .await
        {
            Ok(body) => error_detail(&body),
            Err(e) => return e,
        };
        if status == 403 {
            return RegistryError::Denied {
                registry: req.registry.to_owned(),
                repository: req.repository.to_owned(),
                detail,
            };
        }
        RegistryError::Status {
            registry: req.registry.to_owned(),
            method: req.method.to_string(),
            path: url.path().to_owned(),
            status,
            detail,
        }
    }
}

/// `host[:port]` of a URL.
pub(crate) fn host_port(url: &Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// Map a transport error: TLS failures and refused connections are final, the rest (reset,
/// EOF, timeouts) retryable.
pub(crate) fn classify(err: reqwest::Error, host: &str, what: &str) -> RegistryError {
    if is_tls_error(&err) {
        RegistryError::Tls {
            host: host.to_owned(),
            source: err,
        }
    } else if err.is_connect() {
        RegistryError::Unreachable {
            host: host.to_owned(),
            source: err,
        }
    } else {
        RegistryError::Transport {
            host: host.to_owned(),
            what: what.to_owned(),
            source: err,
        }
    }
}

fn is_tls_error(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        source = e.source();
    }
    false
}
