//! Downloading blobs to files (streamed, hashed on the way, resumed with `Range`, renamed into
//! place only after the digest checks out) and checking whether a blob exists.

use std::path::Path;

use futures_util::StreamExt as _;
use layers::Digest;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _};

use crate::auth::Scope;
use crate::client::Client;
use crate::error::RegistryError;
use crate::manifest::Descriptor;
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
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs_err::tokio::create_dir_all(dir).await?;
        // Locked while written, so a sweep of the folder never removes it under us.
        let temp = pyslip_lifecycle::scratch::temp_file_in(dir, ".pyslip-blob-")?;
        let mut file = tokio::fs::File::from_std(temp.as_file().try_clone()?);
        let what = format!("blob {} of {repo}", descriptor.digest);
        let mut hasher = Sha256::new();
        let mut written: u64 = 0;
        let mut delays = self.transport.retry.delays();
        loop {
            let mut headers = HeaderMap::new();
            if written > 0 {
                let range = HeaderValue::from_str(&format!("bytes={written}-")).map_err(|e| {
                    RegistryError::Protocol {
                        registry: repo.registry().to_owned(),
                        problem: e.to_string(),
                    }
                })?;
                headers.insert(header::RANGE, range);
            }
            let sent = self
                .blob_get(repo, &descriptor.digest, headers, &what)
                .await?;
            let status = sent.response.status();
            let resumed = status == StatusCode::PARTIAL_CONTENT
                && range_start(sent.response.headers()) == Some(written);
            if written > 0 && !resumed {
                // The registry ignored the range (or answered another one): start over.
                file.set_len(0).await?;
                file.seek(std::io::SeekFrom::Start(0)).await?;
                hasher = Sha256::new();
                written = 0;
                if status == StatusCode::RANGE_NOT_SATISFIABLE {
                    continue;
                }
            }
            let mut stream = sent.response.bytes_stream();
            let mut interrupted = None;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(chunk) => {
                        written += chunk.len() as u64;
                        if written > descriptor.size {
                            return Err(RegistryError::SizeMismatch {
                                object: what,
                                expected: descriptor.size,
                                actual: written,
                            });
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
                            host: repo.api_host().to_owned(),
                            what,
                            source,
                        });
                    }
                },
            }
        }
        if written != descriptor.size {
            return Err(RegistryError::SizeMismatch {
                object: what,
                expected: descriptor.size,
                actual: written,
            });
        }
        let actual = Digest::from_sha256(hasher.finalize().into());
        if actual != descriptor.digest {
            return Err(RegistryError::DigestMismatch {
                object: what,
                expected: descriptor.digest.clone(),
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
        Ok(())
    }

    /// Whether `repo` has the blob (HEAD).
    pub async fn blob_exists(
        &self,
        repo: &RepoRef,
        digest: &Digest,
        scope: &Scope,
    ) -> Result<bool, RegistryError> {
        let sent = self
            .transport
            .send(Request {
                method: Method::HEAD,
                registry: repo.registry(),
                repository: repo.repository(),
                target: Target::Path(format!("/v2/{}/blobs/{digest}", repo.repository())),
                headers: HeaderMap::new(),
                body: ReqBody::Empty,
                scope,
                what: "blob check",
            })
            .await?;
        Ok(sent.response.status().is_success())
    }
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
