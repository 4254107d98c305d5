//! Credentials go only to the origin that issued them: an upload `Location` on another origin
//! (the storage service of an S3- or CDN-backed registry) and redirects to another origin never
//! receive the registry's `Authorization` header.
#![allow(clippy::unwrap_used)]

mod common;

use common::{open_client, small_image};
use pyslip_registry::testing::FaultServer;
use pyslip_registry::{BlobOutcome, Reference};

#[tokio::test]
async fn upload_location_on_another_origin_gets_no_authorization() {
    let server = FaultServer::builder()
        .bearer_auth(100)
        .foreign_uploads()
        .build()
        .await;
    let (blobs, manifest) = small_image("foreign");
    let target = Reference::parse(&format!("{}/app:v1", server.registry())).unwrap();
    let report = open_client()
        .push(&target, &[], blobs.clone(), manifest)
        .await
        .unwrap();
    assert!(
        report
            .blobs
            .iter()
            .all(|b| b.outcome == BlobOutcome::Uploaded)
    );
    for b in &blobs {
        assert!(server.has_blob("app", &b.digest), "{} not stored", b.digest);
    }
    let foreign = server.cdn_requests();
    let uploads: Vec<_> = foreign
        .iter()
        .filter(|r| r.path.contains("/blobs/uploads/"))
        .collect();
    assert!(
        uploads.len() >= blobs.len(),
        "every upload went to the second origin: {foreign:?}"
    );
    assert!(
        foreign.iter().all(|r| r.authorization.is_none()),
        "credentials leaked to another origin: {foreign:?}"
    );
    // The registry itself still got the token, on every request after the challenge.
    let own = server.requests();
    let starts: Vec<_> = own
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("/blobs/uploads/"))
        .collect();
    assert!(!starts.is_empty(), "{own:?}");
    assert!(
        starts.iter().all(|r| r
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer "))),
        "{starts:?}"
    );
    assert!(
        own.iter()
            .filter(|r| r.method == "PUT" && r.path.contains("/manifests/"))
            .all(|r| r.authorization.is_some())
    );
}

#[tokio::test]
async fn same_origin_upload_location_keeps_authorization() {
    // Guards the other side: the origin check must not drop credentials the registry needs.
    let server = FaultServer::builder().bearer_auth(100).build().await;
    let (blobs, manifest) = small_image("same-origin");
    let target = Reference::parse(&format!("{}/app:v1", server.registry())).unwrap();
    open_client()
        .push(&target, &[], blobs, manifest)
        .await
        .unwrap();
    let puts: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/blobs/uploads/"))
        .collect();
    assert!(!puts.is_empty());
    assert!(puts.iter().all(|r| r.authorization.is_some()), "{puts:?}");
}
