//! docs/reliability.md, cases 12–19, against the in-process fault server.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{env_or_fail, image, open_client, small_image};
use layers::Digest;
use pyslip_registry::testing::{FaultServer, Route};
use pyslip_registry::{
    BlobOutcome, BlobSource, Descriptor, ManifestToPush, Platform, PushBlob, Reference,
    RegistryError, RepoRef, media_types,
};

/// Seed a two-layer image as `repo:tag` into the server; returns its manifest and blobs.
fn seed(server: &FaultServer, repo: &str, tag: &str) -> (ManifestToPush, Vec<PushBlob>) {
    let (blobs, manifest) = small_image(tag);
    for b in &blobs {
        let BlobSource::Bytes(bytes) = &b.source else {
            unreachable!()
        };
        server.put_blob(repo, bytes.clone());
    }
    server.put_manifest(repo, tag, &manifest.media_type, manifest.bytes.clone());
    (manifest, blobs)
}

fn reference(server: &FaultServer, rest: &str) -> Reference {
    Reference::parse(&format!("{}/{rest}", server.registry())).unwrap()
}

fn amd64() -> Platform {
    Platform::parse("linux/amd64").unwrap()
}

fn descriptor(b: &PushBlob) -> Descriptor {
    Descriptor {
        media_type: b.media_type.clone(),
        digest: b.digest.clone(),
        size: b.size,
    }
}

#[tokio::test]
async fn case12_corrupted_blob_from_proxied_real_registry_is_rejected_and_not_cached() {
    let upstream = env_or_fail("PYSLIP_TEST_REGISTRY");
    let server = FaultServer::builder()
        .upstream(&upstream)
        .corrupt(Route::BlobGets)
        .build()
        .await;
    let client = open_client();
    let base = reference(&server, "library/python:3.11-slim");
    // The config is a blob too: corrupted, so resolving the image fails on its digest.
    let err = client
        .pull_image(&base, &Platform::host())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
    assert!(err.hint().unwrap().contains("nothing was cached"));
    // A layer download fails the same way and leaves nothing behind.
    let real = open_client()
        .pull_image(
            &Reference::parse(&format!("{upstream}/library/python:3.11-slim")).unwrap(),
            &Platform::host(),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer");
    let err = client
        .fetch_blob(base.repo(), real.layers.first().unwrap(), &dest)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&real.layers[0].digest.to_string()), "{text}");
    assert_eq!(
        fs_err::read_dir(dir.path()).unwrap().count(),
        0,
        "no file and no temp file left"
    );
}

#[tokio::test]
async fn case12_corrupted_manifest_with_original_digest_header_is_rejected() {
    let upstream = env_or_fail("PYSLIP_TEST_REGISTRY");
    let server = FaultServer::builder()
        .upstream(&upstream)
        .corrupt(Route::Manifests)
        .build()
        .await;
    let err = open_client()
        .pull_image(
            &reference(&server, "library/python:3.11-slim"),
            &Platform::host(),
        )
        .await
        .unwrap_err();
    let RegistryError::DigestMismatch {
        object,
        expected,
        actual,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(object.contains("Docker-Content-Digest"), "{object}");
    assert_ne!(expected, actual);
}

#[tokio::test]
async fn case12_cross_registry_copy_verifies_the_source_bytes() {
    let source = FaultServer::builder()
        .corrupt(Route::BlobGets)
        .build()
        .await;
    let (_, base_blobs) = seed(&source, "library/base", "v1");
    let target = FaultServer::builder().build().await;
    let src_repo = RepoRef::parse(&format!("{}/library/base", source.registry())).unwrap();
    let layers = base_blobs[1..]
        .iter()
        .map(|b| PushBlob {
            source: BlobSource::Remote(src_repo.clone()),
            ..b.clone()
        })
        .collect();
    let (blobs, manifest) = image(layers, "copy");
    let err = open_client()
        .push(&reference(&target, "app:v1"), &[], blobs, manifest)
        .await;
    assert!(err.is_err(), "corrupted source bytes were accepted");
    assert_eq!(
        target.count("PUT", "/manifests/"),
        0,
        "no manifest after a failed blob"
    );
}

#[tokio::test]
async fn case13_malformed_digests_are_rejected_before_use_in_a_url() {
    let server = FaultServer::builder().build().await;
    for bad in [
        "sha256:../../../etc/passwd",
        &format!("sha256:{}", "A".repeat(64)),
        "sha256:abc",
    ] {
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{bad}","size":2}},"layers":[]}}"#,
            media_types::OCI_MANIFEST,
            media_types::OCI_CONFIG
        );
        server.put_manifest("app", "bad", media_types::OCI_MANIFEST, manifest);
        let err = open_client()
            .pull_image(&reference(&server, "app:bad"), &amd64())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                RegistryError::InvalidDigest { .. } | RegistryError::InvalidJson { .. }
            ),
            "{bad}: {err:?}"
        );
    }
    assert_eq!(
        server.count("GET", "/blobs/"),
        0,
        "no blob was requested with a bad digest"
    );
    assert!(Reference::parse("app@sha256:../x").is_err());
}

#[tokio::test]
async fn case14_oversized_manifest_is_rejected_without_reading_it_all() {
    let server = FaultServer::builder()
        .oversized(Route::Manifests)
        .build()
        .await;
    let started = Instant::now();
    let err = open_client()
        .pull_image(&reference(&server, "app:v1"), &amd64())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::TooLarge { limit, .. } if limit == 4 * 1024 * 1024),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn case14_oversized_token_body_is_rejected() {
    let server = FaultServer::builder()
        .bearer_auth(100)
        .oversized(Route::Token)
        .build()
        .await;
    seed(&server, "app", "v1");
    let err = open_client()
        .pull_image(&reference(&server, "app:v1"), &amd64())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::TooLarge { limit, .. } if limit == 1024 * 1024),
        "{err:?}"
    );
}

#[tokio::test]
async fn case15_429_with_retry_after_is_honoured_then_succeeds() {
    let server = FaultServer::builder()
        .fail_with_status(Route::Manifests, 429, Some(1), 1)
        .build()
        .await;
    let (manifest, _) = seed(&server, "app", "v1");
    let started = Instant::now();
    let image = open_client()
        .pull_image(&reference(&server, "app:v1"), &amd64())
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not waited for"
    );
    assert_eq!(image.manifest_bytes, manifest.bytes);
    assert_eq!(server.count("GET", "/manifests/"), 2);
}

#[tokio::test]
async fn case15_5xx_and_408_then_success() {
    let server = FaultServer::builder()
        .fail_with_status(Route::Manifests, 503, None, 1)
        .fail_with_status(Route::BlobGets, 408, None, 1)
        .fail_with_status(Route::BlobGets, 500, None, 1)
        .build()
        .await;
    seed(&server, "app", "v1");
    open_client()
        .pull_image(&reference(&server, "app:v1"), &amd64())
        .await
        .unwrap();
    assert_eq!(server.count("GET", "/blobs/"), 3);
}

#[tokio::test]
async fn case15_connection_reset_mid_body_is_retried() {
    let server = FaultServer::builder()
        .reset_mid_body(Route::Manifests, 1)
        .reset_mid_body(Route::BlobGets, 1)
        .build()
        .await;
    seed(&server, "app", "v1");
    open_client()
        .pull_image(&reference(&server, "app:v1"), &amd64())
        .await
        .unwrap();
    assert_eq!(server.count("GET", "/manifests/"), 2);
}

#[tokio::test]
async fn case15_retries_are_bounded() {
    let server = FaultServer::builder()
        .fail_with_status(Route::Manifests, 502, None, usize::MAX)
        .build()
        .await;
    let err = open_client()
        .pull_image(&reference(&server, "app:v1"), &amd64())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Status { status: 502, .. }),
        "{err:?}"
    );
    // fast_retry allows 3 retries per request.
    assert_eq!(server.count("GET", "/manifests/"), 4);
}

#[tokio::test]
async fn case15_other_4xx_is_not_retried_and_carries_the_registry_code() {
    let server = FaultServer::builder()
        .fail_with_status(Route::Manifests, 400, None, 1)
        .build()
        .await;
    seed(&server, "app", "v1");
    let err = open_client()
        .pull_image(&reference(&server, "app:v1"), &amd64())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("400") && text.contains("FAULT") && text.contains("injected failure"),
        "{text}"
    );
    assert_eq!(server.count("GET", "/manifests/"), 1);
}

#[tokio::test]
async fn case16_interrupted_blob_download_resumes_with_range() {
    let server = FaultServer::builder()
        .reset_mid_body(Route::BlobGets, 1)
        .build()
        .await;
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let digest = server.put_blob("app", content.clone());
    let desc = Descriptor {
        media_type: media_types::OCI_LAYER_GZIP.into(),
        digest,
        size: content.len() as u64,
    };
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("blob");
    let repo = RepoRef::parse(&format!("{}/app", server.registry())).unwrap();
    open_client().fetch_blob(&repo, &desc, &dest).await.unwrap();
    assert_eq!(fs_err::read(&dest).unwrap(), content);
    let gets: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].range, None);
    assert_eq!(
        gets[1].range.as_deref(),
        Some("bytes=100000-"),
        "resumed where it broke off"
    );
}

#[tokio::test]
async fn case16_blob_of_wrong_size_is_rejected_and_not_kept() {
    let server = FaultServer::builder().build().await;
    let digest = server.put_blob("app", Bytes::from_static(b"twelve bytes"));
    let desc = Descriptor {
        media_type: media_types::OCI_LAYER_GZIP.into(),
        digest,
        size: 5,
    };
    let dir = tempfile::tempdir().unwrap();
    let repo = RepoRef::parse(&format!("{}/app", server.registry())).unwrap();
    let err = open_client()
        .fetch_blob(&repo, &desc, &dir.path().join("b"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{err:?}");
    assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn case17_token_expiry_mid_push_reauthenticates_and_retries() {
    // Each token is good for 3 requests; a push needs more than that.
    let server = FaultServer::builder().bearer_auth(3).build().await;
    let (blobs, manifest) = small_image("expiry");
    let report = open_client()
        .push(&reference(&server, "app:v1"), &[], blobs, manifest)
        .await
        .unwrap();
    assert!(
        report
            .blobs
            .iter()
            .all(|b| b.outcome == BlobOutcome::Uploaded)
    );
    assert!(
        server.token_requests() >= 3,
        "tokens fetched: {}",
        server.token_requests()
    );
    assert!(server.requests().iter().any(|r| {
        r.authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer "))
    }));
}

#[tokio::test]
async fn case17_wrong_token_credentials_are_unauthorized() {
    let server = FaultServer::builder()
        .bearer_auth(100)
        .token_credentials("u", "p")
        .build()
        .await;
    seed(&server, "app", "v1");
    let err = open_client()
        .pull_image(&reference(&server, "app:v1"), &amd64())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unauthorized") && err.to_string().contains(&server.registry()),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("login"));
}

#[tokio::test]
async fn case17_redirected_blob_get_carries_no_authorization() {
    let server = FaultServer::builder()
        .bearer_auth(100)
        .redirect_blobs()
        .build()
        .await;
    seed(&server, "app", "v1");
    let image = open_client()
        .pull_image(&reference(&server, "app:v1"), &amd64())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    open_client()
        .fetch_blob(&image.repo, &image.layers[0], &dir.path().join("l"))
        .await
        .unwrap();
    let cdn = server.cdn_requests();
    assert!(
        cdn.len() >= 2,
        "config and layer came from the cdn: {cdn:?}"
    );
    assert!(
        cdn.iter().all(|r| r.authorization.is_none()),
        "credentials leaked: {cdn:?}"
    );
    let redirected = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.contains("/blobs/"));
    assert!(redirected.clone().count() >= 2);
    assert!(
        redirected.clone().any(|r| r.authorization.is_some()),
        "the registry itself got the token"
    );
}

#[tokio::test]
async fn case18_push_heads_first_mounts_same_registry_and_puts_manifest_last() {
    let server = FaultServer::builder().build().await;
    let (_, base_blobs) = seed(&server, "library/base", "v1");
    let base_repo = RepoRef::parse(&format!("{}/library/base", server.registry())).unwrap();
    let mut layers: Vec<PushBlob> = base_blobs[1..]
        .iter()
        .map(|b| PushBlob {
            source: BlobSource::Remote(base_repo.clone()),
            ..b.clone()
        })
        .collect();
    layers.push(common::bytes_blob(
        b"new layer",
        media_types::OCI_LAYER_GZIP,
    ));
    let (blobs, manifest) = image(layers, "mount");
    let target = reference(&server, "app:v1");
    let report = open_client()
        .push(
            &target,
            &["v1.0".into(), "stable".into()],
            blobs.clone(),
            manifest.clone(),
        )
        .await
        .unwrap();
    let outcomes: Vec<_> = report.blobs.iter().map(|b| b.outcome).collect();
    assert_eq!(
        outcomes,
        [
            BlobOutcome::Uploaded,
            BlobOutcome::Mounted,
            BlobOutcome::Mounted,
            BlobOutcome::Uploaded
        ]
    );
    let log = server.requests();
    let first_manifest_put = log
        .iter()
        .position(|r| r.method == "PUT" && r.path.contains("/manifests/"))
        .unwrap();
    let last_blob_op = log
        .iter()
        .rposition(|r| r.path.contains("/blobs/"))
        .unwrap();
    assert!(
        last_blob_op < first_manifest_put,
        "manifest before blobs: {log:?}"
    );
    assert_eq!(server.count("HEAD", "/blobs/"), 4, "one HEAD per blob");
    assert_eq!(
        server.count("PUT", "/manifests/"),
        3,
        "target and two extra tags"
    );
    assert!(
        log.iter()
            .any(|r| r.path.contains("mount=") && r.path.contains("from=library/base"))
    );
    for b in &blobs {
        assert!(server.has_blob("app", &b.digest));
    }
    // Again: everything is present, only manifests are sent.
    let again = open_client()
        .push(&target, &[], blobs, manifest.clone())
        .await
        .unwrap();
    assert!(
        again
            .blobs
            .iter()
            .all(|b| b.outcome == BlobOutcome::AlreadyPresent)
    );
    assert_eq!(again.bytes_sent, manifest.bytes.len() as u64);
}

#[tokio::test]
async fn case18_refused_mount_falls_back_to_upload_in_the_offered_session() {
    let server = FaultServer::builder().refuse_mounts().build().await;
    let (_, base_blobs) = seed(&server, "library/base", "v1");
    let base_repo = RepoRef::parse(&format!("{}/library/base", server.registry())).unwrap();
    let layers = base_blobs[1..]
        .iter()
        .map(|b| PushBlob {
            source: BlobSource::Remote(base_repo.clone()),
            ..b.clone()
        })
        .collect();
    let (blobs, manifest) = image(layers, "refused");
    let report = open_client()
        .push(&reference(&server, "app:v1"), &[], blobs.clone(), manifest)
        .await
        .unwrap();
    assert!(
        report
            .blobs
            .iter()
            .all(|b| b.outcome == BlobOutcome::Uploaded),
        "{report:?}"
    );
    assert_eq!(
        server.count("POST", "/blobs/uploads/"),
        3,
        "mount attempts and one plain POST"
    );
    assert_eq!(server.count("PUT", "/blobs/uploads/"), 3);
}

#[tokio::test]
async fn case18_upload_from_file_with_relative_location_and_query() {
    let server = FaultServer::builder().build().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer.tar.gz");
    fs_err::write(&path, b"file layer").unwrap();
    let layer = PushBlob {
        digest: Digest::of(b"file layer"),
        size: 10,
        media_type: media_types::OCI_LAYER_GZIP.into(),
        source: BlobSource::File(path),
    };
    let (blobs, manifest) = image(vec![layer.clone()], "file");
    open_client()
        .push(&reference(&server, "app:v1"), &[], blobs, manifest)
        .await
        .unwrap();
    assert!(server.has_blob("app", &layer.digest));
    let put = server
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT" && r.path.contains("/uploads/"))
        .unwrap();
    assert!(
        put.path.contains("_state=") && put.path.contains("&digest=sha256"),
        "{}",
        put.path
    );
}

#[tokio::test]
async fn case19_docker_list_and_manifest_without_media_type_use_content_type_and_skip_attestations()
{
    let server = FaultServer::builder().build().await;
    let (manifest, blobs) = seed(&server, "app", "inner");
    // Re-serve the manifest as Docker schema 2 without a mediaType field.
    let mut value: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    value.as_object_mut().unwrap().remove("mediaType");
    let docker_manifest = serde_json::to_vec(&value).unwrap();
    let digest = server.put_manifest(
        "app",
        "docker",
        media_types::DOCKER_MANIFEST,
        docker_manifest.clone(),
    );
    let attestation = server.put_manifest("app", "att", media_types::OCI_MANIFEST, b"{}".to_vec());
    let list = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": media_types::OCI_MANIFEST, "digest": attestation, "size": 2,
             "platform": {"os": "unknown", "architecture": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
            {"mediaType": media_types::DOCKER_MANIFEST, "digest": digest, "size": docker_manifest.len(),
             "platform": {"os": "linux", "architecture": "amd64"}},
        ]
    });
    server.put_manifest(
        "app",
        "list",
        media_types::DOCKER_LIST,
        serde_json::to_vec(&list).unwrap(),
    );
    let image = open_client()
        .pull_image(&reference(&server, "app:list"), &amd64())
        .await
        .unwrap();
    assert_eq!(image.manifest_media_type, media_types::DOCKER_MANIFEST);
    assert_eq!(image.digest, digest);
    assert_eq!(
        image.layers,
        blobs[1..].iter().map(descriptor).collect::<Vec<_>>()
    );
    assert_eq!(
        server.count("GET", &attestation.to_string()),
        0,
        "attestation never fetched"
    );
}

#[tokio::test]
async fn index_entry_whose_manifest_does_not_match_its_digest_is_rejected() {
    let server = FaultServer::builder().build().await;
    let (manifest, _) = seed(&server, "app", "inner");
    let real = manifest.digest();
    // The index claims another digest; serve the real manifest under it.
    let claimed = Digest::of(b"something else");
    server.put_manifest(
        "app",
        &claimed.to_string(),
        media_types::OCI_MANIFEST,
        manifest.bytes.clone(),
    );
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": media_types::OCI_INDEX,
        "manifests": [{"mediaType": media_types::OCI_MANIFEST, "digest": claimed, "size": manifest.bytes.len(),
                       "platform": {"os": "linux", "architecture": "amd64"}}]
    });
    server.put_manifest(
        "app",
        "idx",
        media_types::OCI_INDEX,
        serde_json::to_vec(&index).unwrap(),
    );
    let err = open_client()
        .pull_image(&reference(&server, "app:idx"), &amd64())
        .await
        .unwrap_err();
    let RegistryError::DigestMismatch {
        expected, actual, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((expected, actual), (&claimed, &real));
}

#[tokio::test]
async fn unreachable_registry_names_host_and_hints() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = open_client()
        .pull_image(
            &Reference::parse(&format!("{addr}/app:v1")).unwrap(),
            &amd64(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&addr.to_string()));
    assert!(err.hint().unwrap().contains("--insecure-registry"));
}

#[tokio::test]
async fn platform_missing_from_index_lists_available_platforms() {
    let server = FaultServer::builder().build().await;
    let (manifest, _) = seed(&server, "app", "inner");
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": media_types::OCI_INDEX,
        "manifests": [{"mediaType": media_types::OCI_MANIFEST, "digest": manifest.digest(), "size": manifest.bytes.len(),
                       "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}]
    });
    server.put_manifest(
        "app",
        "idx",
        media_types::OCI_INDEX,
        serde_json::to_vec(&index).unwrap(),
    );
    let err = open_client()
        .pull_image(&reference(&server, "app:idx"), &amd64())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("linux/arm64/v8") && err.to_string().contains("linux/amd64"),
        "{err}"
    );
}

#[tokio::test]
async fn bearer_token_is_fetched_once_and_reused_per_scope() {
    let server = FaultServer::builder().bearer_auth(100).build().await;
    seed(&server, "app", "v1");
    let client = open_client();
    client
        .pull_image(&reference(&server, "app:v1"), &amd64())
        .await
        .unwrap();
    client
        .pull_image(&reference(&server, "app:v1"), &amd64())
        .await
        .unwrap();
    assert_eq!(
        server.token_requests(),
        1,
        "one token for (registry, repository:app:pull)"
    );
    // First pull: 401, token, manifest, config; second pull: manifest, config.
    assert_eq!(server.requests().len(), 6, "{:?}", server.requests());
}
