//! OCI 1.1 referrers: attaching an artifact to an image and discovering it, through the referrers
//! API (the in-process registry with its API on) and through the fallback tag (the same registry
//! with the API off, and the real distribution registry of the test environment, which has none).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::{bytes_blob, env_or_fail, open_client, small_image, unique_repo};
use layers::Digest;
use pyslip_registry::testing::FaultServer;
use pyslip_registry::{
    Client, ManifestToPush, PushBlob, ReferrerDescriptor, ReferrersVia, RepoRef, fallback_tag,
    media_types,
};

const SPDX: &str = "application/spdx+json";

/// An artifact manifest (empty config, one document layer) whose subject is `subject`.
fn artifact(
    subject: &ManifestToPush,
    text: &str,
) -> (Vec<PushBlob>, ManifestToPush, ReferrerDescriptor) {
    let config = bytes_blob(b"{}", "application/vnd.oci.empty.v1+json");
    let doc = bytes_blob(text.as_bytes(), SPDX);
    let descriptor = |b: &PushBlob| serde_json::json!({"mediaType": b.media_type, "digest": b.digest.to_string(), "size": b.size});
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "artifactType": SPDX,
        "config": descriptor(&config),
        "layers": [descriptor(&doc)],
        "subject": {
            "mediaType": media_types::OCI_MANIFEST,
            "digest": subject.digest().to_string(),
            "size": subject.bytes.len(),
        },
        "annotations": {"org.opencontainers.image.created": "1970-01-01T00:00:00Z"},
    });
    let manifest = ManifestToPush {
        media_type: media_types::OCI_MANIFEST.to_owned(),
        bytes: Bytes::from(serde_json::to_vec(&manifest).unwrap()),
    };
    let entry = ReferrerDescriptor {
        media_type: media_types::OCI_MANIFEST.to_owned(),
        digest: manifest.digest(),
        size: manifest.bytes.len() as u64,
        artifact_type: Some(SPDX.to_owned()),
        annotations: BTreeMap::from([(
            "org.opencontainers.image.created".to_owned(),
            "1970-01-01T00:00:00Z".to_owned(),
        )]),
    };
    (vec![config, doc], manifest, entry)
}

/// Push a small image to `registry`; returns its repository and manifest.
async fn pushed_image(client: &Client, registry: &str, label: &str) -> (RepoRef, ManifestToPush) {
    let repo = RepoRef::parse(&format!("{registry}/{}", unique_repo(label))).unwrap();
    let (blobs, manifest) = small_image(label);
    client
        .push(&repo.tag("v1").unwrap(), &[], blobs, manifest.clone())
        .await
        .unwrap();
    (repo, manifest)
}

/// Attach `n` different artifacts at once; then each one is listed exactly once.
async fn attach_concurrently(client: &Client, repo: &RepoRef, image: &ManifestToPush, n: usize) {
    let subject = image.digest();
    let mut tasks = tokio::task::JoinSet::new();
    let mut expected = Vec::new();
    for i in 0..n {
        let (blobs, manifest, entry) = artifact(image, &format!("{{\"n\": {i}}}"));
        expected.push(entry.digest.clone());
        let (client, repo, subject) = (client.clone(), repo.clone(), subject.clone());
        tasks.spawn(async move {
            client
                .attach_referrer(&repo, &subject, blobs, manifest, entry)
                .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    let listed = client.referrers(repo, &subject).await.unwrap();
    for digest in &expected {
        let count = listed
            .manifests
            .iter()
            .filter(|m| &m.digest == digest)
            .count();
        assert_eq!(count, 1, "{digest} listed {count} times: {listed:?}");
    }
}

#[tokio::test]
async fn referrers_api_registry_indexes_the_artifact_itself() {
    let server = FaultServer::builder().referrers_api().build().await;
    let client = open_client();
    let (repo, image) = pushed_image(&client, &server.registry(), "api").await;
    let subject = image.digest();
    let (blobs, manifest, entry) = artifact(&image, "{\"spdxVersion\": \"SPDX-2.3\"}");
    for _ in 0..2 {
        let report = client
            .attach_referrer(
                &repo,
                &subject,
                blobs.clone(),
                manifest.clone(),
                entry.clone(),
            )
            .await
            .unwrap();
        assert_eq!(report.via, ReferrersVia::Api);
    }
    let listed = client.referrers(&repo, &subject).await.unwrap();
    assert_eq!(listed.via, ReferrersVia::Api);
    assert_eq!(listed.manifests, vec![entry]);
    // No fallback tag was written: the registry lists referrers itself.
    assert_eq!(server.count("PUT", &fallback_tag(&subject)), 0);
    assert_eq!(server.count("GET", &format!("/referrers/{subject}")), 3);
}

#[tokio::test]
async fn without_the_api_the_fallback_tag_is_kept_without_duplicates() {
    let server = FaultServer::builder().build().await;
    let client = open_client();
    let (repo, image) = pushed_image(&client, &server.registry(), "tags").await;
    let subject = image.digest();
    let (blobs, manifest, entry) = artifact(&image, "{\"spdxVersion\": \"SPDX-2.3\"}");
    let first = client
        .attach_referrer(
            &repo,
            &subject,
            blobs.clone(),
            manifest.clone(),
            entry.clone(),
        )
        .await
        .unwrap();
    assert_eq!(
        (first.via, first.index_updated),
        (ReferrersVia::TagSchema, true)
    );
    let second = client
        .attach_referrer(&repo, &subject, blobs, manifest, entry.clone())
        .await
        .unwrap();
    assert!(
        !second.index_updated,
        "a second attach changes nothing: {second:?}"
    );
    let listed = client.referrers(&repo, &subject).await.unwrap();
    assert_eq!(listed.via, ReferrersVia::TagSchema);
    assert_eq!(listed.manifests, vec![entry]);
    assert_eq!(server.count("PUT", &fallback_tag(&subject)), 1);
    attach_concurrently(&client, &repo, &image, 6).await;
}

#[tokio::test]
async fn real_registry_without_the_api_uses_the_fallback_tag() {
    let registry = env_or_fail("PYSLIP_TEST_REGISTRY");
    let client = open_client();
    let (repo, image) = pushed_image(&client, &registry, "referrers").await;
    let subject = image.digest();
    let (blobs, manifest, entry) = artifact(&image, "{\"spdxVersion\": \"SPDX-2.3\"}");
    for _ in 0..2 {
        let report = client
            .attach_referrer(
                &repo,
                &subject,
                blobs.clone(),
                manifest.clone(),
                entry.clone(),
            )
            .await
            .unwrap();
        assert_eq!(report.via, ReferrersVia::TagSchema);
    }
    let listed = client.referrers(&repo, &subject).await.unwrap();
    assert_eq!(listed.manifests, vec![entry.clone()]);
    // The artifact itself reads back by digest, with its subject.
    let fetched = client
        .fetch_manifest(&repo.digest(entry.digest.clone()))
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&fetched.bytes).unwrap();
    assert_eq!(body["subject"]["digest"], subject.to_string());
    attach_concurrently(&client, &repo, &image, 5).await;
    let all = client.referrers(&repo, &subject).await.unwrap();
    assert_eq!(all.manifests.len(), 6, "{all:?}");
    let unique: std::collections::BTreeSet<&Digest> =
        all.manifests.iter().map(|m| &m.digest).collect();
    assert_eq!(unique.len(), 6);
}
