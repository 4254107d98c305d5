//! Multi-platform pushes (`Client::push_index`) and listing a base's platforms
//! (`Client::list_platforms`), against the fault server and the real registry.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::{bytes_blob, env_or_fail, image_for, open_client, unique_repo};
use pyslip_registry::testing::FaultServer;
use pyslip_registry::{
    BlobOutcome, IndexedImage, ManifestToPush, Platform, Reference, media_types,
};

/// Two images sharing their last ("app") layer, and an index over them.
fn two_platforms(label: &str) -> (Vec<IndexedImage>, ManifestToPush) {
    let app = bytes_blob(
        format!("app {label}").as_bytes(),
        media_types::OCI_LAYER_GZIP,
    );
    let images: Vec<IndexedImage> = ["amd64", "arm64"]
        .iter()
        .map(|arch| {
            let deps = bytes_blob(
                format!("deps {label} {arch}").as_bytes(),
                media_types::OCI_LAYER_GZIP,
            );
            let (blobs, manifest) = image_for(arch, vec![deps, app.clone()], label);
            IndexedImage { blobs, manifest }
        })
        .collect();
    let entries: Vec<serde_json::Value> = images
        .iter()
        .zip(["amd64", "arm64"])
        .map(|(i, arch)| {
            serde_json::json!({
                "mediaType": media_types::OCI_MANIFEST,
                "digest": i.manifest.digest(),
                "size": i.manifest.bytes.len(),
                "platform": {"architecture": arch, "os": "linux"},
            })
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": media_types::OCI_INDEX, "manifests": entries,
    });
    let index = ManifestToPush {
        media_type: media_types::OCI_INDEX.to_owned(),
        bytes: Bytes::from(serde_json::to_vec(&index).unwrap()),
    };
    (images, index)
}

#[tokio::test]
async fn manifests_by_digest_first_index_last_shared_blob_once_and_noop_repush() {
    let server = FaultServer::builder().build().await;
    let (images, index) = two_platforms("order");
    let target = Reference::parse(&format!("{}/app:v1", server.registry())).unwrap();
    let client = open_client();
    let report = client
        .push_index(&target, &["latest".into()], images.clone(), index.clone())
        .await
        .unwrap();
    assert_eq!(report.index_digest, index.digest());
    assert_eq!(report.refs.len(), 2);
    assert!(report.images.iter().all(|i| i.manifest_put));
    // The shared app layer was sent once: by the first image.
    let shared = &images[0].blobs[2].digest;
    let outcomes: Vec<_> = report
        .images
        .iter()
        .map(|i| {
            i.blobs
                .iter()
                .find(|b| &b.digest == shared)
                .unwrap()
                .outcome
        })
        .collect();
    assert_eq!(
        outcomes,
        [BlobOutcome::Uploaded, BlobOutcome::AlreadyPresent]
    );
    assert_eq!(server.count("PATCH", "/blobs/uploads/"), 3 + 2);

    let puts: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/manifests/"))
        .map(|r| r.path)
        .collect();
    assert_eq!(puts.len(), 4, "{puts:?}");
    for (put, image) in puts.iter().zip(&images) {
        assert!(put.ends_with(&image.manifest.digest().to_string()), "{put}");
    }
    assert!(
        puts[2].ends_with("/v1") || puts[2].ends_with("/latest"),
        "{puts:?}"
    );
    let last_blob = server
        .requests()
        .iter()
        .rposition(|r| r.path.contains("/blobs/"))
        .unwrap();
    let first_index_put = server
        .requests()
        .iter()
        .position(|r| r.method == "PUT" && (r.path.ends_with("/v1") || r.path.ends_with("/latest")))
        .unwrap();
    assert!(last_blob < first_index_put);

    // Unchanged: one HEAD per image, no blob request, only the index is put again.
    let before = server.requests().len();
    let again = client
        .push_index(&target, &["latest".into()], images, index.clone())
        .await
        .unwrap();
    let after: Vec<_> = server.requests().into_iter().skip(before).collect();
    assert!(again.images.iter().all(|i| !i.manifest_put));
    assert!(
        after.iter().all(|r| !r.path.contains("/blobs/")),
        "no blob request: {after:?}"
    );
    assert_eq!(
        after
            .iter()
            .filter(|r| r.method == "HEAD" && r.path.contains("/manifests/sha256:"))
            .count(),
        2
    );
    assert_eq!(
        after.iter().filter(|r| r.method == "PUT").count(),
        2,
        "index under both tags"
    );
    assert_eq!(again.bytes_sent, index.bytes.len() as u64 * 2);
}

#[tokio::test]
async fn real_registry_serves_the_pushed_index() {
    let registry = env_or_fail("PYSLIP_TEST_REGISTRY");
    let (images, index) = two_platforms("real");
    let target = Reference::parse(&format!("{registry}/{}:multi", unique_repo("index"))).unwrap();
    let client = open_client();
    client
        .push_index(&target, &[], images.clone(), index.clone())
        .await
        .unwrap();
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{target}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout,
        index.bytes.to_vec(),
        "skopeo reads the index back"
    );
    let got = client
        .pull_image(&target, &Platform::parse("linux/arm64").unwrap())
        .await
        .unwrap();
    assert_eq!(got.digest, images[1].manifest.digest());
    assert_eq!(
        client.list_platforms(&target).await.unwrap(),
        [
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("linux/arm64").unwrap()
        ]
    );
}

#[tokio::test]
async fn platforms_of_the_fixture_base_skip_the_attestation() {
    let registry = env_or_fail("PYSLIP_TEST_REGISTRY");
    let base = Reference::parse(&format!("{registry}/library/python:3.13-slim")).unwrap();
    let listed: Vec<String> = open_client()
        .list_platforms(&base)
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(listed, ["linux/amd64", "linux/arm64/v8"]);
}

#[tokio::test]
async fn platforms_of_a_single_manifest_come_from_its_config() {
    let server = FaultServer::builder().build().await;
    let (images, _) = two_platforms("single");
    let target = Reference::parse(&format!("{}/app:arm", server.registry())).unwrap();
    let image = images[1].clone();
    open_client()
        .push(&target, &[], image.blobs, image.manifest)
        .await
        .unwrap();
    assert_eq!(
        open_client().list_platforms(&target).await.unwrap(),
        [Platform::parse("linux/arm64").unwrap()]
    );
}
