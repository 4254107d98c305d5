//! The referrers API of the in-memory registry (enabled with
//! [`FaultServerBuilder::referrers_api`](super::FaultServerBuilder::referrers_api)): manifests
//! pushed with a `subject` are indexed and listed by `GET /v2/<name>/referrers/<digest>`.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use layers::Digest;
use serde_json::{Value, json};

use super::memory::Reply;

/// Referrer descriptors per (repository, subject digest), in push order.
#[derive(Default)]
pub(crate) struct ReferrersIndex(Mutex<HashMap<(String, String), Vec<Value>>>);

impl ReferrersIndex {
    /// Index a pushed manifest if it has a subject; returns the subject digest.
    pub(crate) fn record(&self, repo: &str, media_type: &str, body: &Bytes) -> Option<String> {
        let manifest: Value = serde_json::from_slice(body).ok()?;
        let subject = manifest["subject"]["digest"].as_str()?.to_owned();
        let artifact_type = manifest["artifactType"]
            .as_str()
            .or_else(|| manifest["config"]["mediaType"].as_str())
            .unwrap_or_default();
        let mut entry = json!({
            "mediaType": media_type,
            "digest": Digest::of(body).to_string(),
            "size": body.len(),
            "artifactType": artifact_type,
        });
        if let Some(annotations) = manifest.get("annotations") {
            entry["annotations"] = annotations.clone();
        }
        let mut all = self.0.lock().ok()?;
        let list = all.entry((repo.to_owned(), subject.clone())).or_default();
        if !list.iter().any(|e| e["digest"] == entry["digest"]) {
            list.push(entry);
        }
        Some(subject)
    }

    /// `GET /v2/<repo>/referrers/<digest>[?artifactType=…]`.
    pub(crate) fn list(&self, repo: &str, subject: &str, artifact_type: Option<&String>) -> Reply {
        if Digest::parse(subject).is_err() {
            return Reply::error(400, "DIGEST_INVALID", "bad digest");
        }
        let manifests: Vec<Value> = self
            .0
            .lock()
            .ok()
            .and_then(|all| all.get(&(repo.to_owned(), subject.to_owned())).cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|e| artifact_type.is_none_or(|t| e["artifactType"] == t.as_str()))
            .collect();
        let body = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        let mut reply = Reply::new(200)
            .header("content-type", "application/vnd.oci.image.index.v1+json")
            .body(serde_json::to_vec(&body).unwrap_or_default());
        if artifact_type.is_some() {
            reply = reply.header("oci-filters-applied", "artifactType");
        }
        reply
    }
}
