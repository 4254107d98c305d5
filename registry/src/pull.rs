//! Resolving an image: manifest (through an index for the wanted platform) and config, each
//! verified against its digest before it is returned.

use bytes::Bytes;
use oci_spec::image::{ImageConfiguration, ImageManifest};
use pyslip_digest::Digest;
use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderValue};

use crate::auth::Scope;
use crate::client::Client;
use crate::error::RegistryError;
use crate::manifest::{self, Descriptor, Kind, MANIFEST_ACCEPT, verify};
use crate::platform::{self, Platform};
use crate::reference::{Reference, RepoRef};
use crate::transport::body::{MAX_MANIFEST_BYTES, ReqBody, read_limited};
use crate::transport::{Request, Target};

/// An image resolved for one platform: verified manifest and config, layers not downloaded.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The repository it came from.
    pub repo: RepoRef,
    /// The reference that was asked for.
    pub reference: Reference,
    /// Digest of the platform manifest (not of the index).
    pub digest: Digest,
    /// Digest of the index the manifest was chosen from, if the reference named an index.
    pub index_digest: Option<Digest>,
    /// The manifest, byte for byte.
    pub manifest_bytes: Bytes,
    /// The manifest's media type (OCI or Docker schema 2).
    pub manifest_media_type: String,
    /// The parsed manifest.
    pub manifest: ImageManifest,
    /// The config descriptor.
    pub config_descriptor: Descriptor,
    /// Layer descriptors, base first.
    pub layers: Vec<Descriptor>,
    /// The config, byte for byte.
    pub config_bytes: Bytes,
    /// The parsed config (Env, Cmd, diff_ids, history…).
    pub config: ImageConfiguration,
}

/// A manifest or index body, verified.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// Digest of the body.
    pub digest: Digest,
    /// Media type (from the body, else Content-Type).
    pub media_type: String,
    /// The body.
    pub bytes: Bytes,
    kind: Kind,
}

impl FetchedManifest {
    /// Whether this is an index / manifest list.
    pub fn is_index(&self) -> bool {
        self.kind == Kind::Index
    }
}

impl Client {
    /// Resolve `reference` for `platform`: index → platform manifest → config.
    pub async fn pull_image(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<PulledImage, RegistryError> {
        let repo = reference.repo();
        let top = self.fetch_manifest(reference).await?;
        let host = repo.api_host();
        let shown = reference.to_string();
        let (manifest, index_digest) = if top.is_index() {
            let index = manifest::parse_index(&top.bytes, host, &shown)?;
            let chosen = platform::select(&index, platform).map_err(|available| {
                RegistryError::NoMatchingPlatform {
                    reference: shown.clone(),
                    wanted: platform.to_string(),
                    available,
                }
            })?;
            let entry = index
                .manifests()
                .get(chosen)
                .ok_or_else(|| RegistryError::Protocol {
                    registry: reference.registry().to_owned(),
                    problem: "index entry vanished".into(),
                })?;
            let entry = Descriptor::from_oci(entry, &format!("index {shown}"))?;
            let child = self
                .fetch_manifest_by(
                    repo,
                    &entry.digest.to_string(),
                    Some((&entry.digest, Some(entry.size))),
                    &shown,
                )
                .await?;
            if child.is_index() {
                return Err(RegistryError::UnsupportedMediaType {
                    media_type: format!("{} (nested index)", child.media_type),
                    reference: shown,
                });
            }
            (child, Some(top.digest))
        } else {
            (top, None)
        };
        let (parsed, config_descriptor, layers) =
            manifest::parse_manifest(&manifest.bytes, host, &shown)?;
        let config_bytes = self
            .fetch_small_blob(repo, &config_descriptor, &format!("config of {shown}"))
            .await?;
        let config: ImageConfiguration =
            serde_json::from_slice(&config_bytes).map_err(|source| RegistryError::InvalidJson {
                what: format!("config of {shown}"),
                host: host.to_owned(),
                source,
            })?;
        Ok(PulledImage {
            repo: repo.clone(),
            reference: reference.clone(),
            digest: manifest.digest,
            index_digest,
            manifest_bytes: manifest.bytes,
            manifest_media_type: manifest.media_type,
            manifest: parsed,
            config_descriptor,
            layers,
            config_bytes,
            config,
        })
    }

    /// The Linux platforms `reference` offers (for `--platform all`): an index's entries in its
    /// order without attestation entries (`unknown/unknown`), or the one platform of a plain
    /// manifest's config.
    pub async fn list_platforms(
        &self,
        reference: &Reference,
    ) -> Result<Vec<Platform>, RegistryError> {
        let top = self.fetch_manifest(reference).await?;
        if top.is_index() {
            let index = manifest::parse_index(
                &top.bytes,
                reference.repo().api_host(),
                &reference.to_string(),
            )?;
            return Ok(platform::linux_platforms(&index));
        }
        let image = self.pull_image(reference, &Platform::host()).await?;
        let config = &image.config;
        let platform = Platform {
            os: config.os().to_string(),
            architecture: config.architecture().to_string(),
            variant: config.variant().clone(),
        };
        Ok(if platform.os == "linux" {
            vec![platform]
        } else {
            Vec::new()
        })
    }

    /// GET the manifest or index `reference` names (by digest when it has one), verified.
    pub async fn fetch_manifest(
        &self,
        reference: &Reference,
    ) -> Result<FetchedManifest, RegistryError> {
        let expected = reference.digest().map(|d| (d, None));
        self.fetch_manifest_by(
            reference.repo(),
            &reference.manifest_ref(),
            expected,
            &reference.to_string(),
        )
        .await
    }

    /// Fetch a manifest. `send` retries the request; here a body that breaks off (reset, EOF)
    /// is fetched again.
    async fn fetch_manifest_by(
        &self,
        repo: &RepoRef,
        tag_or_digest: &str,
        expected: Option<(&Digest, Option<u64>)>,
        shown: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let by_digest = expected.filter(|(d, _)| d.to_string() == tag_or_digest);
        if let (Some(cache), Some((digest, size))) = (&self.small_cache, by_digest)
            && let Some(bytes) = cache.read(digest).map(Bytes::from)
            && size.is_none_or(|s| s == bytes.len() as u64)
        {
            let (kind, media_type) = manifest::classify(&bytes, None, repo.api_host(), shown)?;
            return Ok(FetchedManifest {
                digest: digest.clone(),
                media_type,
                bytes,
                kind,
            });
        }
        let mut accept = HeaderMap::new();
        accept.insert(header::ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let scope = Scope::pull(repo.repository());
        let object = if tag_or_digest.starts_with("sha256:") {
            format!("manifest {repo}@{tag_or_digest}")
        } else {
            format!("manifest {repo}:{tag_or_digest}")
        };
        let mut delays = self.transport.retry.delays();
        let (headers, bytes) = loop {
            let sent = self
                .transport
                .send(Request {
                    method: Method::GET,
                    registry: repo.registry(),
                    repository: repo.repository(),
                    target: Target::Path(format!(
                        "/v2/{}/manifests/{tag_or_digest}",
                        repo.repository()
                    )),
                    headers: accept.clone(),
                    body: ReqBody::Empty,
                    scope: &scope,
                    what: &object,
                })
                .await?;
            if sent.response.status() == reqwest::StatusCode::NOT_FOUND {
                return Err(RegistryError::ManifestUnknown {
                    reference: shown.to_owned(),
                });
            }
            let headers = sent.response.headers().clone();
            match read_limited(
                sent.response,
                MAX_MANIFEST_BYTES,
                "manifest",
                repo.api_host(),
            )
            .await
            {
                Ok(bytes) => break (headers, bytes),
                Err(err @ RegistryError::Transport { .. }) => match delays.next() {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => return Err(err),
                },
                Err(err) => return Err(err),
            }
        };
        let actual = Digest::of(&bytes);
        check_digest_header(&headers, &actual, &object)?;
        if let Some((digest, size)) = expected {
            verify(&object, &bytes, digest, size)?;
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let (kind, media_type) = manifest::classify(&bytes, content_type, repo.api_host(), shown)?;
        if let Some(cache) = &self.small_cache {
            // An optimisation: failing to store it never fails the pull.
            let _ = cache.write(&bytes);
        }
        Ok(FetchedManifest {
            digest: actual,
            media_type,
            bytes,
            kind,
        })
    }

    /// GET a config-sized blob (≤ 4 MiB) and verify digest and size.
    pub async fn fetch_small_blob(
        &self,
        repo: &RepoRef,
        descriptor: &Descriptor,
        what: &str,
    ) -> Result<Bytes, RegistryError> {
        if descriptor.size > MAX_MANIFEST_BYTES {
            return Err(RegistryError::TooLarge {
                what: what.to_owned(),
                host: repo.api_host().to_owned(),
                limit: MAX_MANIFEST_BYTES,
            });
        }
        if let Some(bytes) = self
            .small_cache
            .as_ref()
            .and_then(|c| c.read(&descriptor.digest))
            .map(Bytes::from)
            && bytes.len() as u64 == descriptor.size
        {
            return Ok(bytes);
        }
        // `send` retries the request; here a body that breaks off is fetched again.
        let mut delays = self.transport.retry.delays();
        loop {
            let sent = self
                .blob_get(repo, &descriptor.digest, HeaderMap::new(), what)
                .await?;
            match read_limited(sent.response, MAX_MANIFEST_BYTES, what, repo.api_host()).await {
                Ok(bytes) => {
                    verify(what, &bytes, &descriptor.digest, Some(descriptor.size))?;
                    if let Some(cache) = &self.small_cache {
                        let _ = cache.write(&bytes);
                    }
                    return Ok(bytes);
                }
                Err(err @ RegistryError::Transport { .. }) => match delays.next() {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => return Err(err),
                },
                Err(err) => return Err(err),
            }
        }
    }

    /// GET `/v2/<repo>/blobs/<digest>` (redirects followed without credentials); 404 → error.
    pub(crate) async fn blob_get(
        &self,
        repo: &RepoRef,
        digest: &Digest,
        headers: HeaderMap,
        what: &str,
    ) -> Result<crate::transport::Sent, RegistryError> {
        let scope = Scope::pull(repo.repository());
        let sent = self
            .transport
            .send(Request {
                method: Method::GET,
                registry: repo.registry(),
                repository: repo.repository(),
                target: Target::Path(format!("/v2/{}/blobs/{digest}", repo.repository())),
                headers,
                body: ReqBody::Empty,
                scope: &scope,
                what,
            })
            .await?;
        if sent.response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(RegistryError::BlobUnknown {
                repository: repo.to_string(),
                digest: digest.clone(),
            });
        }
        Ok(sent)
    }
}

/// A `Docker-Content-Digest` header that disagrees with the body is an error; a malformed sha256
/// one too. Other algorithms are ignored (the body is verified against our own digest anyway).
pub(crate) fn check_digest_header(
    headers: &HeaderMap,
    actual: &Digest,
    object: &str,
) -> Result<(), RegistryError> {
    let Some(value) = headers
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    if !value.starts_with("sha256:") {
        return Ok(());
    }
    let announced = Digest::parse(value).map_err(|source| RegistryError::InvalidDigest {
        context: format!("Docker-Content-Digest header of {object}"),
        source,
    })?;
    if &announced != actual {
        return Err(RegistryError::DigestMismatch {
            object: format!("{object} (Docker-Content-Digest header)"),
            expected: announced,
            actual: actual.clone(),
        });
    }
    Ok(())
}
