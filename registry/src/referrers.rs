//! OCI 1.1 referrers: attaching an artifact manifest (one with a `subject`) to an image, and
//! listing what refers to an image, the way `oras attach` / `oras discover` do.
//!
//! A registry with the referrers API (`GET /v2/<name>/referrers/<digest>` answers 200) indexes
//! pushed artifacts itself. On one without it, the client keeps the tag schema's fallback index
//! `<alg>-<hex>` up to date: read it, add the artifact's descriptor, put it back. Registries have
//! no conditional writes for this, so two writers can overwrite each other; each writer therefore
//! re-reads after its write (and once more after a pause) and merges again until its entry stays.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use layers::Digest;
use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::auth::Scope;
use crate::client::Client;
use crate::error::RegistryError;
use crate::manifest::{ManifestToPush, media_types};
use crate::push::PushBlob;
use crate::reference::RepoRef;
use crate::transport::body::{MAX_MANIFEST_BYTES, ReqBody, read_limited};
use crate::transport::{Request, Target};

/// Rounds of read–merge–write–verify before giving up on a contended fallback index.
const MAX_ROUNDS: u32 = 12;

/// A referrer as an index lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrerDescriptor {
    /// The referrer manifest's media type.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its `artifactType` (or its config's media type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Its annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// How a registry lists referrers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferrersVia {
    /// `GET /v2/<name>/referrers/<digest>`.
    Api,
    /// The fallback tag `<alg>-<hex>` (an image index).
    TagSchema,
}

/// What refers to a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrers {
    /// Where the list came from.
    pub via: ReferrersVia,
    /// The referrers.
    pub manifests: Vec<ReferrerDescriptor>,
}

/// Result of attaching a referrer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachReport {
    /// How the registry will list it.
    pub via: ReferrersVia,
    /// The fallback index was changed (false: the entry was already there, or the API is used).
    pub index_updated: bool,
    /// Rounds the fallback index took (0 with the API).
    pub rounds: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<ReferrerDescriptor>,
}

/// The fallback tag for `subject`: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm(), subject.hex())
}

fn parse_index(
    bytes: &[u8],
    what: &str,
    host: &str,
) -> Result<Vec<ReferrerDescriptor>, RegistryError> {
    let index: Index =
        serde_json::from_slice(bytes).map_err(|source| RegistryError::InvalidJson {
            what: what.to_owned(),
            host: host.to_owned(),
            source,
        })?;
    Ok(index.manifests)
}

/// The fallback index body for `manifests`.
fn index_bytes(manifests: Vec<ReferrerDescriptor>) -> Bytes {
    let index = Index {
        schema_version: 2,
        media_type: Some(media_types::OCI_INDEX.to_owned()),
        manifests,
    };
    Bytes::from(serde_json::to_vec(&index).unwrap_or_default())
}

/// A pause that differs between writers (from the artifact digest) and grows with the round.
fn backoff(digest: &Digest, round: u32) -> Duration {
    let seed = u64::from_str_radix(digest.hex().get(..4).unwrap_or("0"), 16).unwrap_or(0);
    Duration::from_millis(20 * u64::from(round) + seed % 40)
}

impl Client {
    /// `GET /v2/<name>/referrers/<digest>`: `None` when the registry has no referrers API.
    pub async fn referrers_api(
        &self,
        repo: &RepoRef,
        subject: &Digest,
    ) -> Result<Option<Vec<ReferrerDescriptor>>, RegistryError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(media_types::OCI_INDEX),
        );
        let what = format!("referrers of {repo}@{subject}");
        let sent = self
            .transport
            .send(Request {
                method: Method::GET,
                registry: repo.registry(),
                repository: repo.repository(),
                target: Target::Path(format!("/v2/{}/referrers/{subject}", repo.repository())),
                headers,
                body: ReqBody::Empty,
                scope: &Scope::pull(repo.repository()),
                what: &what,
            })
            .await;
        let sent = match sent {
            Ok(sent) => sent,
            // Some registries answer an unknown endpoint with 400, 405 or 501.
            Err(RegistryError::Status {
                status: 400 | 405 | 501,
                ..
            }) => return Ok(None),
            Err(err) => return Err(err),
        };
        if sent.response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let is_index = sent
            .response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with(media_types::OCI_INDEX));
        let bytes = read_limited(sent.response, MAX_MANIFEST_BYTES, &what, repo.api_host()).await?;
        if !is_index {
            // A 200 that is not an index (a catch-all page) is no referrers API either.
            return Ok(None);
        }
        parse_index(&bytes, &what, repo.api_host()).map(Some)
    }

    /// The fallback index's entries (empty when the tag does not exist).
    async fn fallback_entries(
        &self,
        repo: &RepoRef,
        subject: &Digest,
    ) -> Result<Vec<ReferrerDescriptor>, RegistryError> {
        let tag = repo.tag(&fallback_tag(subject))?;
        match self.fetch_manifest(&tag).await {
            Ok(fetched) => parse_index(
                &fetched.bytes,
                &format!("referrers index {tag}"),
                repo.api_host(),
            ),
            Err(RegistryError::ManifestUnknown { .. }) => Ok(Vec::new()),
            Err(err) => Err(err),
        }
    }

    /// What refers to `subject`: from the referrers API when the registry has it, else from the
    /// fallback tag (what `oras discover` does).
    pub async fn referrers(
        &self,
        repo: &RepoRef,
        subject: &Digest,
    ) -> Result<Referrers, RegistryError> {
        if let Some(manifests) = self.referrers_api(repo, subject).await? {
            return Ok(Referrers {
                via: ReferrersVia::Api,
                manifests,
            });
        }
        Ok(Referrers {
            via: ReferrersVia::TagSchema,
            manifests: self.fallback_entries(repo, subject).await?,
        })
    }

    /// Push an artifact manifest whose `subject` is `subject` (its blobs first) into `repo`, and
    /// make it discoverable: nothing more on a registry with the referrers API, else its
    /// descriptor is merged into the fallback index (once; a second attach of the same artifact
    /// changes nothing).
    pub async fn attach_referrer(
        &self,
        repo: &RepoRef,
        subject: &Digest,
        blobs: Vec<PushBlob>,
        manifest: ManifestToPush,
        descriptor: ReferrerDescriptor,
    ) -> Result<AttachReport, RegistryError> {
        let target = repo.digest(manifest.digest());
        self.push(&target, &[], blobs, manifest).await?;
        if self.referrers_api(repo, subject).await?.is_some() {
            return Ok(AttachReport {
                via: ReferrersVia::Api,
                index_updated: false,
                rounds: 0,
            });
        }
        let tag = repo.tag(&fallback_tag(subject))?;
        let mut updated = false;
        let mut settled = false;
        for round in 1..=MAX_ROUNDS {
            let mut entries = self.fallback_entries(repo, subject).await?;
            if entries.iter().any(|e| e.digest == descriptor.digest) {
                if settled {
                    return Ok(AttachReport {
                        via: ReferrersVia::TagSchema,
                        index_updated: updated,
                        rounds: round,
                    });
                }
                // Our entry is there; look once more after a pause, in case a writer that read
                // the index before our write puts back its older copy.
                settled = true;
                tokio::time::sleep(backoff(&descriptor.digest, round)).await;
                continue;
            }
            settled = false;
            entries.push(descriptor.clone());
            let body = ManifestToPush {
                media_type: media_types::OCI_INDEX.to_owned(),
                bytes: index_bytes(entries),
            };
            self.push(&tag, &[], Vec::new(), body).await?;
            updated = true;
            tokio::time::sleep(backoff(&descriptor.digest, round)).await;
        }
        Err(RegistryError::Protocol {
            registry: repo.registry().to_owned(),
            problem: format!(
                "the referrers index {tag} kept changing under {MAX_ROUNDS} rounds of updates (other writers)"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_tag_and_index_shape() {
        let d = Digest::of(b"x");
        assert_eq!(fallback_tag(&d), format!("sha256-{}", d.hex()));
        let entry = ReferrerDescriptor {
            media_type: media_types::OCI_MANIFEST.into(),
            digest: d,
            size: 3,
            artifact_type: Some("application/spdx+json".into()),
            annotations: BTreeMap::new(),
        };
        let bytes = index_bytes(vec![entry.clone()]);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["mediaType"], media_types::OCI_INDEX);
        assert_eq!(v["manifests"][0]["artifactType"], "application/spdx+json");
        assert_eq!(parse_index(&bytes, "x", "h").unwrap(), vec![entry]);
    }
}
