//! A minimal in-memory OCI registry: blobs (with `Range`), monolithic uploads, cross-repo mounts,
//! manifests by tag and digest. Enough for the client's own tests; not a conformance target.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use layers::Digest;

/// A response before faults are applied.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Reply {
    pub(crate) fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub(crate) fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// A distribution-spec error body.
    pub(crate) fn error(status: u16, code: &str, message: &str) -> Self {
        let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
        Self::new(status)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap_or_default())
    }
}

#[derive(Default)]
struct Store {
    blobs: HashMap<Digest, Bytes>,
    /// Which repositories hold which blobs (mounts need the source to have it).
    repo_blobs: HashMap<String, HashSet<Digest>>,
    /// (repository, tag or digest) → (media type, body).
    manifests: HashMap<(String, String), (String, Bytes)>,
}

/// The in-memory registry.
#[derive(Default)]
pub(crate) struct Memory {
    store: Mutex<Store>,
    next_upload: AtomicU64,
    refuse_mounts: bool,
    /// The referrers API, when enabled.
    referrers: Option<super::referrers::ReferrersIndex>,
}

/// Split `/v2/<name>/<kind>/<rest>` at the last `/blobs/` or `/manifests/`.
pub(crate) fn split_path<'a>(path: &'a str, kind: &str) -> Option<(&'a str, &'a str)> {
    let rest = path.strip_prefix("/v2/")?;
    let marker = format!("/{kind}/");
    let at = rest.rfind(&marker)?;
    Some((rest.get(..at)?, rest.get(at + marker.len()..)?))
}

impl Memory {
    pub(crate) fn new(refuse_mounts: bool, referrers_api: bool) -> Self {
        Self {
            refuse_mounts,
            referrers: referrers_api.then(super::referrers::ReferrersIndex::default),
            ..Self::default()
        }
    }

    /// Store a blob in `repo`.
    pub(crate) fn put_blob(&self, repo: &str, bytes: Bytes) -> Digest {
        let digest = Digest::of(&bytes);
        if let Ok(mut s) = self.store.lock() {
            s.blobs.insert(digest.clone(), bytes);
            s.repo_blobs
                .entry(repo.to_owned())
                .or_default()
                .insert(digest.clone());
        }
        digest
    }

    /// Store a manifest under `reference` and under its digest.
    pub(crate) fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Digest {
        let digest = Digest::of(&bytes);
        if let Ok(mut s) = self.store.lock() {
            for key in [reference.to_owned(), digest.to_string()] {
                s.manifests.insert(
                    (repo.to_owned(), key),
                    (media_type.to_owned(), bytes.clone()),
                );
            }
        }
        digest
    }

    /// Whether `repo` holds the blob.
    pub(crate) fn has_blob(&self, repo: &str, digest: &Digest) -> bool {
        self.store
            .lock()
            .map(|s| {
                s.repo_blobs
                    .get(repo)
                    .is_some_and(|set| set.contains(digest))
            })
            .unwrap_or(false)
    }

    /// The bytes of a blob, from any repository.
    pub(crate) fn blob(&self, digest: &Digest) -> Option<Bytes> {
        self.store.lock().ok()?.blobs.get(digest).cloned()
    }

    /// Answer one request.
    pub(crate) fn handle(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &reqwest::header::HeaderMap,
        body: Bytes,
    ) -> Reply {
        if path == "/v2/" || path == "/v2" {
            return Reply::new(200).body("{}");
        }
        let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        if let Some((repo, rest)) = split_path(path, "blobs") {
            if let Some(id) = rest.strip_prefix("uploads/") {
                return self.upload(method, repo, id, &params, body);
            }
            let Ok(digest) = Digest::parse(rest) else {
                return Reply::error(400, "DIGEST_INVALID", "bad digest");
            };
            return self.get_blob(method, repo, &digest, headers);
        }
        if let Some((repo, reference)) = split_path(path, "manifests") {
            return self.manifest(method, repo, reference, headers, body);
        }
        if let (Some(index), Some((repo, subject)), "GET") =
            (&self.referrers, split_path(path, "referrers"), method)
        {
            return index.list(repo, subject, params.get("artifactType"));
        }
        Reply::error(404, "NAME_UNKNOWN", "unknown path")
    }

    fn get_blob(
        &self,
        method: &str,
        repo: &str,
        digest: &Digest,
        headers: &reqwest::header::HeaderMap,
    ) -> Reply {
        if !self.has_blob(repo, digest) {
            return Reply::error(404, "BLOB_UNKNOWN", "blob unknown");
        }
        let Some(bytes) = self.blob(digest) else {
            return Reply::error(404, "BLOB_UNKNOWN", "blob unknown");
        };
        let base = Reply::new(200)
            .header("docker-content-digest", digest.to_string())
            .header("content-type", "application/octet-stream");
        if method == "HEAD" {
            return base.header("content-length", bytes.len().to_string());
        }
        let start = headers
            .get("range")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes="))
            .and_then(|v| v.split('-').next())
            .and_then(|v| v.parse::<usize>().ok());
        match start {
            Some(start) if start < bytes.len() => {
                let mut reply = base.header(
                    "content-range",
                    format!("bytes {start}-{}/{}", bytes.len() - 1, bytes.len()),
                );
                reply.status = 206;
                reply.body(bytes.slice(start..))
            }
            Some(_) => Reply::new(416),
            None => base.body(bytes),
        }
    }

    fn upload(
        &self,
        method: &str,
        repo: &str,
        id: &str,
        params: &HashMap<String, String>,
        body: Bytes,
    ) -> Reply {
        match (method, id) {
            ("POST", "") => {
                if let (Some(mount), Some(from)) = (params.get("mount"), params.get("from"))
                    && let Ok(digest) = Digest::parse(mount)
                    && !self.refuse_mounts
                    && self.has_blob(from, &digest)
                    && let Ok(mut s) = self.store.lock()
                {
                    s.repo_blobs
                        .entry(repo.to_owned())
                        .or_default()
                        .insert(digest.clone());
                    return Reply::new(201)
                        .header("location", format!("/v2/{repo}/blobs/{digest}"))
                        .header("docker-content-digest", digest.to_string());
                }
                let n = self.next_upload.fetch_add(1, Ordering::Relaxed);
                // A relative Location that already has a query, like distribution's `_state`.
                Reply::new(202).header(
                    "location",
                    format!("/v2/{repo}/blobs/uploads/u{n}?_state=s{n}"),
                )
            }
            ("PUT", id) if !id.is_empty() => {
                let Some(digest) = params.get("digest").and_then(|d| Digest::parse(d).ok()) else {
                    return Reply::error(400, "DIGEST_INVALID", "missing digest");
                };
                if Digest::of(&body) != digest {
                    return Reply::error(400, "DIGEST_INVALID", "digest does not match content");
                }
                self.put_blob(repo, body);
                Reply::new(201)
                    .header("location", format!("/v2/{repo}/blobs/{digest}"))
                    .header("docker-content-digest", digest.to_string())
            }
            _ => Reply::error(405, "UNSUPPORTED", "unsupported upload operation"),
        }
    }

    fn manifest(
        &self,
        method: &str,
        repo: &str,
        reference: &str,
        headers: &reqwest::header::HeaderMap,
        body: Bytes,
    ) -> Reply {
        match method {
            "PUT" => {
                let media_type = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let subject = self
                    .referrers
                    .as_ref()
                    .and_then(|index| index.record(repo, &media_type, &body));
                let digest = self.put_manifest(repo, reference, &media_type, body);
                let reply = Reply::new(201).header("docker-content-digest", digest.to_string());
                match subject {
                    Some(subject) => reply.header("oci-subject", subject),
                    None => reply,
                }
            }
            "GET" | "HEAD" => {
                let found = self.store.lock().ok().and_then(|s| {
                    s.manifests
                        .get(&(repo.to_owned(), reference.to_owned()))
                        .cloned()
                });
                match found {
                    Some((media_type, bytes)) => {
                        let reply = Reply::new(200)
                            .header("content-type", media_type)
                            .header("docker-content-digest", Digest::of(&bytes).to_string());
                        if method == "HEAD" {
                            reply
                        } else {
                            reply.body(bytes)
                        }
                    }
                    None => Reply::error(404, "MANIFEST_UNKNOWN", "manifest unknown"),
                }
            }
            _ => Reply::error(405, "UNSUPPORTED", "unsupported manifest operation"),
        }
    }
}
