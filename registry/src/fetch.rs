//! Plain GETs of small documents that are not registry objects (a Python package index's JSON
//! pages), over the client's own transport: its proxy and CA handling, retry policy and
//! connection pool, so pyslip has one HTTP stack.

use std::time::Duration;

use reqwest::StatusCode;
use url::Url;

use crate::client::Client;
use crate::error::RegistryError;
use crate::transport::body::read_limited;
use crate::transport::retry::{parse_retry_after, retryable_status};
use crate::transport::{classify, host_port};

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;
/// Time allowed for one request.
const TIMEOUT: Duration = Duration::from_secs(60);

impl Client {
    /// GETs `url` with `Accept: accept` and returns its body (at most `limit` bytes), or
    /// `None` when the server answers 404. Transient failures (timeouts, resets, 408/429/5xx)
    /// are retried with the client's policy; redirects are followed, and credentials in the URL
    /// (`https://user:token@index/simple/`) are sent only to the URL's own origin.
    pub async fn get_document(
        &self,
        url: &Url,
        accept: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let mut delays = self.transport.retry.delays();
        loop {
            match self.get_once(url, accept, limit).await {
                Err(Retry::Again(err, after)) => match delays.next() {
                    Some(backoff) => {
                        tokio::time::sleep(self.transport.retry.wait(backoff, after)).await;
                    }
                    None => return Err(err),
                },
                Err(Retry::Final(err)) => return Err(err),
                Ok(body) => return Ok(body),
            }
        }
    }

    async fn get_once(
        &self,
        url: &Url,
        accept: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, Retry> {
        let origin = url.origin();
        let mut current = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let host = host_port(&current);
            let mut target = current.clone();
            let credentials = (target.origin() == origin && !url.username().is_empty())
                .then(|| (url.username().to_owned(), url.password().map(str::to_owned)));
            let _ = target.set_username("");
            let _ = target.set_password(None);
            let mut request = self
                .transport
                .client_for(&target)
                .get(target.clone())
                .header(reqwest::header::ACCEPT, accept)
                .timeout(TIMEOUT);
            if let Some((user, password)) = credentials {
                request = request.basic_auth(user, password);
            }
            let response = request.send().await.map_err(|e| {
                let err = classify(e, &host, "index request");
                match err {
                    RegistryError::Transport { .. } => Retry::Again(err, None),
                    other => Retry::Final(other),
                }
            })?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| current.join(l).ok())
                    .ok_or_else(|| {
                        Retry::Final(RegistryError::Protocol {
                            registry: host.clone(),
                            problem: format!("redirect {status} without a usable Location"),
                        })
                    })?;
                current = location;
                continue;
            }
            if status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !status.is_success() {
                let after = parse_retry_after(response.headers().get(reqwest::header::RETRY_AFTER));
                let err = RegistryError::Status {
                    registry: host,
                    method: "GET".to_owned(),
                    path: target.path().to_owned(),
                    status: status.as_u16(),
                    detail: None,
                };
                return Err(if retryable_status(status.as_u16()) {
                    Retry::Again(err, after)
                } else {
                    Retry::Final(err)
                });
            }
            return read_limited(response, limit, "index page", &host)
                .await
                .map(|b| Some(b.to_vec()))
                .map_err(|err| match err {
                    RegistryError::Transport { .. } => Retry::Again(err, None),
                    other => Retry::Final(other),
                });
        }
        Err(Retry::Final(RegistryError::Protocol {
            registry: host_port(url),
            problem: format!("more than {MAX_REDIRECTS} redirects"),
        }))
    }
}

/// Whether a failed attempt is worth another.
enum Retry {
    Again(RegistryError, Option<Duration>),
    Final(RegistryError),
}
