//! Request bodies that can be re-sent on retry, and response bodies read under a size limit.

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;

use crate::error::{RegistryError, RegistryErrorDetail};

/// Largest manifest or config accepted (docs/reliability.md, case 14).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Largest error or token body accepted.
pub const MAX_SMALL_BODY_BYTES: u64 = 1024 * 1024;

/// Makes a fresh streaming body for each attempt.
pub(crate) type StreamFactory =
    Box<dyn Fn() -> BoxFuture<'static, Result<reqwest::Body, RegistryError>> + Send + Sync>;

/// A request body that can be produced again for a retry.
pub(crate) enum ReqBody {
    /// No body.
    Empty,
    /// In memory.
    Bytes(Bytes),
    /// Streamed from a local file.
    File(PathBuf),
    /// Streamed from elsewhere (another registry).
    Stream(StreamFactory),
}

impl ReqBody {
    /// A body for one attempt.
    pub(crate) async fn make(&self) -> Result<Option<reqwest::Body>, RegistryError> {
        Ok(match self {
            Self::Empty => None,
            Self::Bytes(b) => Some(reqwest::Body::from(b.clone())),
            Self::File(path) => {
                let file = fs_err::tokio::File::open(path).await?;
                Some(reqwest::Body::wrap_stream(
                    tokio_util::io::ReaderStream::new(file),
                ))
            }
            Self::Stream(factory) => Some(factory().await?),
        })
    }
}

/// Read a whole body, failing as soon as it exceeds `limit` (without reading the rest).
pub(crate) async fn read_limited(
    response: reqwest::Response,
    limit: u64,
    what: &str,
    host: &str,
) -> Result<Bytes, RegistryError> {
    let too_large = || RegistryError::TooLarge {
        what: what.to_owned(),
        host: host.to_owned(),
        limit,
    };
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let mut buf = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| RegistryError::Transport {
            host: host.to_owned(),
            what: what.to_owned(),
            source,
        })?;
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The first `errors[]` entry of a registry error body, if it has one.
pub(crate) fn error_detail(body: &[u8]) -> Option<RegistryErrorDetail> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<RegistryErrorDetail>,
    }
    serde_json::from_slice::<Body>(body)
        .ok()?
        .errors
        .into_iter()
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_detail_takes_first_entry() {
        let d =
            error_detail(br#"{"errors":[{"code":"DENIED","message":"no","detail":{}}]}"#).unwrap();
        assert_eq!((d.code.as_str(), d.message.as_str()), ("DENIED", "no"));
        assert!(error_detail(b"<html>").is_none());
        assert!(error_detail(br#"{"errors":[]}"#).is_none());
    }
}
