//! Retries for every request kind a push or pull sends (HEAD, POST, PATCH, PUT, manifest PUT,
//! GET), on 408/429/5xx and dropped connections, honouring `Retry-After` in seconds and as an
//! HTTP-date; uploads whose session state is unknown start a fresh session; a server that
//! ignores `Range` gets a restarted download.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{open_client, small_image};
use pyslip_registry::testing::{FaultServer, Route};
use pyslip_registry::{BlobOutcome, Descriptor, Reference, RegistryError, RepoRef, media_types};

fn target(server: &FaultServer) -> Reference {
    Reference::parse(&format!("{}/app:v1", server.registry())).unwrap()
}

/// Push a small image (config + two layers); every blob must end up in the registry.
async fn push_ok(server: &FaultServer, label: &str) -> pyslip_registry::PushReport {
    let (blobs, manifest) = small_image(label);
    let report = open_client()
        .push(&target(server), &[], blobs.clone(), manifest.clone())
        .await
        .unwrap();
    for b in &blobs {
        assert!(server.has_blob("app", &b.digest), "{} missing", b.digest);
    }
    assert_eq!(report.manifest_digest, manifest.digest());
    report
}

#[tokio::test]
async fn head_is_retried_after_503() {
    let server = FaultServer::builder()
        .fail_with_status(Route::BlobHeads, 503, None, 1)
        .build()
        .await;
    push_ok(&server, "head").await;
    assert_eq!(
        server.count("HEAD", "/blobs/"),
        3 + 1,
        "one HEAD was retried"
    );
}

#[tokio::test]
async fn head_is_retried_after_a_dropped_connection() {
    let server = FaultServer::builder()
        .drop_connection(Route::BlobHeads, 1)
        .build()
        .await;
    push_ok(&server, "head-drop").await;
    assert_eq!(server.count("HEAD", "/blobs/"), 3 + 1);
}

#[tokio::test]
async fn post_is_retried_after_429_and_waits_retry_after_seconds() {
    let server = FaultServer::builder()
        .fail_with_status(Route::UploadStarts, 429, Some(1), 1)
        .build()
        .await;
    let started = Instant::now();
    push_ok(&server, "post").await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not waited for"
    );
    assert_eq!(server.count("POST", "/blobs/uploads/"), 3 + 1);
}

#[tokio::test]
async fn patch_is_retried_after_500_and_after_a_dropped_connection() {
    let server = FaultServer::builder()
        .fail_with_status(Route::UploadChunks, 500, None, 1)
        .drop_connection(Route::UploadChunks, 1)
        .build()
        .await;
    push_ok(&server, "patch").await;
    assert_eq!(server.count("PATCH", "/blobs/uploads/"), 3 + 2);
    // Neither failure touched the session, so no new session was needed.
    assert_eq!(server.count("POST", "/blobs/uploads/"), 3);
    let patches: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert!(
        patches.iter().all(|r| r
            .content_range
            .as_deref()
            .is_some_and(|c| c.starts_with("0-"))),
        "every chunk names its range: {patches:?}"
    );
}

#[tokio::test]
async fn patch_taken_but_reply_lost_restarts_in_a_fresh_session() {
    // The registry stored the chunk, then the answer was lost: the retried PATCH is refused
    // (416, the range no longer starts where the session ends), so a new session is opened
    // instead of appending the bytes twice.
    let server = FaultServer::builder()
        .lose_reply(Route::UploadChunks, 502, 1)
        .build()
        .await;
    push_ok(&server, "patch-lost").await;
    assert_eq!(
        server.count("POST", "/blobs/uploads/"),
        3 + 1,
        "one new session"
    );
    assert_eq!(server.count("PATCH", "/blobs/uploads/"), 3 + 2);
}

#[tokio::test]
async fn upload_put_is_retried_after_408() {
    let server = FaultServer::builder()
        .fail_with_status(Route::UploadFinishes, 408, None, 1)
        .build()
        .await;
    push_ok(&server, "put").await;
    assert_eq!(server.count("PUT", "/blobs/uploads/"), 3 + 1);
}

#[tokio::test]
async fn upload_put_whose_reply_was_lost_checks_the_blob_instead_of_failing() {
    // The blob was committed; the retried PUT finds the session gone (404) and a HEAD shows the
    // blob is there.
    let server = FaultServer::builder()
        .lose_reply(Route::UploadFinishes, 504, 1)
        .build()
        .await;
    let report = push_ok(&server, "put-lost").await;
    assert!(
        report
            .blobs
            .iter()
            .all(|b| b.outcome == BlobOutcome::Uploaded)
    );
    assert_eq!(server.count("POST", "/blobs/uploads/"), 3, "no new session");
    assert_eq!(server.count("HEAD", "/blobs/"), 3 + 1);
}

#[tokio::test]
async fn manifest_put_is_retried_with_retry_after_as_an_http_date() {
    let server = FaultServer::builder()
        .fail_with_retry_after_date(Route::ManifestPuts, 503, 2, 1)
        .build()
        .await;
    let started = Instant::now();
    push_ok(&server, "manifest").await;
    // An HTTP-date has whole seconds: "2 s ahead" is between 1 and 2 s away.
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "the HTTP-date Retry-After was not waited for: {:?}",
        started.elapsed()
    );
    assert_eq!(server.count("PUT", "/manifests/"), 2);
}

#[tokio::test]
async fn manifest_get_is_retried_with_retry_after_as_an_http_date() {
    let server = FaultServer::builder()
        .fail_with_retry_after_date(Route::Manifests, 429, 2, 1)
        .build()
        .await;
    let (_, manifest) = small_image("get");
    server.put_manifest("app", "v1", &manifest.media_type, manifest.bytes.clone());
    let started = Instant::now();
    let fetched = open_client()
        .fetch_manifest(&target(&server))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1000));
    assert_eq!(fetched.digest, manifest.digest());
    assert_eq!(server.count("GET", "/manifests/"), 2);
}

#[tokio::test]
async fn patch_retries_are_bounded_and_the_error_names_the_status() {
    let server = FaultServer::builder()
        .fail_with_status(Route::UploadChunks, 503, None, usize::MAX)
        .build()
        .await;
    let (blobs, manifest) = small_image("bounded");
    let err = open_client()
        .push(&target(&server), &[], blobs[..1].to_vec(), manifest)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Status { status: 503, .. }),
        "{err:?}"
    );
    // fast_retry: 1 try + 3 retries.
    assert_eq!(server.count("PATCH", "/blobs/uploads/"), 4);
    assert_eq!(server.count("PUT", "/manifests/"), 0);
}

#[tokio::test]
async fn download_from_a_server_that_ignores_range_restarts_and_verifies() {
    let server = FaultServer::builder()
        .reset_mid_body(Route::BlobGets, 1)
        .ignore_range()
        .build()
        .await;
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
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
    assert_eq!(gets[1].range.as_deref(), Some("bytes=150000-"));
    assert_eq!(
        fs_err::read_dir(dir.path()).unwrap().count(),
        1,
        "only the blob, no temp file"
    );
}
