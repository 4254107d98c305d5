//! Streaming downloads into a file, shared by registry blobs and plain URLs: hashed on the way,
//! resumed with `Range` after an interruption (restarted from zero when the server ignores the
//! range), size and sha256 checked, and renamed into place only when both check out. Nothing is
//! left at the destination on failure.

use std::path::Path;

use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use pyslip_digest::Digest;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _};

use crate::error::RegistryError;
use crate::transport::retry::RetryPolicy;

/// How many bytes the download may have.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SizeRule {
    /// Exactly this many (a descriptor's size).
    Exact(u64),
    /// At most this many.
    AtMost(u64),
}

/// What a download must turn out to be.
pub(crate) struct Wanted<'a> {
    /// The sha256 the bytes must have.
    pub digest: &'a Digest,
    /// Their size.
    pub size: SizeRule,
    /// What is downloaded, for errors.
    pub what: &'a str,
    /// The server, for errors.
    pub host: &'a str,
}

impl Wanted<'_> {
    fn too_many(&self, received: u64) -> RegistryError {
        match self.size {
            SizeRule::Exact(expected) => RegistryError::SizeMismatch {
                object: self.what.to_owned(),
                expected,
                actual: received,
            },
            SizeRule::AtMost(limit) => RegistryError::TooLarge {
                what: self.what.to_owned(),
                host: self.host.to_owned(),
                limit,
            },
        }
    }

    fn limit(&self) -> u64 {
        match self.size {
            SizeRule::Exact(n) | SizeRule::AtMost(n) => n,
        }
    }
}

/// A function that sends the GET (with the given extra headers, e.g. `Range`) and returns the
/// response; the transport has already retried statuses and connection failures.
pub(crate) type Getter<'a> = Box<
    dyn FnMut(HeaderMap) -> BoxFuture<'a, Result<reqwest::Response, RegistryError>> + Send + 'a,
>;

/// Download to `dest` (its directory is created); returns the number of bytes.
pub(crate) async fn download(
    dest: &Path,
    wanted: &Wanted<'_>,
    retry: &RetryPolicy,
    mut get: Getter<'_>,
) -> Result<u64, RegistryError> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs_err::tokio::create_dir_all(dir).await?;
    // Locked while written, so a sweep of the folder never removes it under us.
    let temp = pyslip_lifecycle::scratch::temp_file_in(dir, ".pyslip-blob-")?;
    let mut file = tokio::fs::File::from_std(temp.as_file().try_clone()?);
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    let mut delays = retry.delays();
    loop {
        let mut headers = HeaderMap::new();
        if written > 0 {
            let range = HeaderValue::from_str(&format!("bytes={written}-")).map_err(|e| {
                RegistryError::Protocol {
                    registry: wanted.host.to_owned(),
                    problem: e.to_string(),
                }
            })?;
            headers.insert(header::RANGE, range);
        }
        let response = get(headers).await?;
        let status = response.status();
        let resumed = status == StatusCode::PARTIAL_CONTENT
            && range_start(response.headers()) == Some(written);
        if written > 0 && !resumed {
            // The server ignored the range (or answered another one): start over.
            file.set_len(0).await?;
            file.seek(std::io::SeekFrom::Start(0)).await?;
            hasher = Sha256::new();
            written = 0;
            if status == StatusCode::RANGE_NOT_SATISFIABLE {
                continue;
            }
        }
        if response
            .content_length()
            .is_some_and(|len| written + len > wanted.limit())
        {
            return Err(wanted.too_many(written + response.content_length().unwrap_or(0)));
        }
        let mut stream = response.bytes_stream();
        let mut interrupted = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => {
                    written += chunk.len() as u64;
                    if written > wanted.limit() {
                        return Err(wanted.too_many(written));
                    }
                    hasher.update(&chunk);
                    file.write_all(&chunk).await?;
                }
                Err(e) => {
                    interrupted = Some(e);
                    break;
                }
            }
        }
        match interrupted {
            None => break,
            Some(source) => match delays.next() {
                Some(delay) => tokio::time::sleep(delay).await,
                None => {
                    return Err(RegistryError::Transport {
                        host: wanted.host.to_owned(),
                        what: wanted.what.to_owned(),
                        source,
                    });
                }
            },
        }
    }
    if let SizeRule::Exact(expected) = wanted.size
        && written != expected
    {
        return Err(RegistryError::SizeMismatch {
            object: wanted.what.to_owned(),
            expected,
            actual: written,
        });
    }
    let actual = Digest::from_sha256(hasher.finalize().into());
    if &actual != wanted.digest {
        return Err(RegistryError::DigestMismatch {
            object: wanted.what.to_owned(),
            expected: wanted.digest.clone(),
            actual,
        });
    }
    file.flush().await?;
    file.sync_all().await?;
    drop(file);
    temp.persist(dest).map_err(|e| {
        std::io::Error::new(
            e.error.kind(),
            format!("renaming into {}: {}", dest.display(), e.error),
        )
    })?;
    Ok(written)
}

/// The first byte position of a `Content-Range: bytes a-b/n` header.
fn range_start(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let range = value.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_start() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_static("bytes 100-199/200"),
        );
        assert_eq!(range_start(&h), Some(100));
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_static("items 1-2/3"),
        );
        assert_eq!(range_start(&h), None);
    }
}
