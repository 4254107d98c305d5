//! Against the real registries of the test environment (`scripts/test-env.sh`).
#![allow(clippy::unwrap_used)]

mod common;

use common::{env_or_fail, open_client};
use pyslip_registry::{Platform, Reference, media_types};

#[tokio::test]
async fn pull_oci_index_picks_platform_and_skips_attestation() {
    let registry = env_or_fail("PYSLIP_TEST_REGISTRY");
    let client = open_client();
    let reference = Reference::parse(&format!("{registry}/library/python:3.11-slim")).unwrap();
    for arch in ["amd64", "arm64"] {
        let platform = Platform::parse(&format!("linux/{arch}")).unwrap();
        let image = client.pull_image(&reference, &platform).await.unwrap();
        assert!(image.index_digest.is_some(), "3.11-slim is an index");
        assert_eq!(image.manifest_media_type, media_types::OCI_MANIFEST);
        assert_eq!(image.config.architecture().to_string(), arch);
        assert_eq!(image.config.rootfs().diff_ids().len(), image.layers.len());
        assert_eq!(
            pyslip_digest::Digest::of(&image.manifest_bytes),
            image.digest
        );
        assert_eq!(
            pyslip_digest::Digest::of(&image.config_bytes),
            image.config_descriptor.digest
        );
    }
    let err = client
        .pull_image(&reference, &Platform::parse("linux/s390x").unwrap())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("linux/amd64") && !text.contains("unknown/unknown"),
        "{text}"
    );
}

#[tokio::test]
async fn pull_docker_v2_manifest_list() {
    let registry = env_or_fail("PYSLIP_TEST_REGISTRY");
    let client = open_client();
    let reference = Reference::parse(&format!("{registry}/dockerv2/python:3.11-slim")).unwrap();
    let image = client
        .pull_image(&reference, &Platform::host())
        .await
        .unwrap();
    assert_eq!(image.manifest_media_type, media_types::DOCKER_MANIFEST);
    let env = image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.env().clone())
        .unwrap_or_default();
    assert!(env.iter().any(|e| e.starts_with("PATH=")), "{env:?}");
    // Pulling by the resolved digest gives the same manifest.
    let pinned = reference.with_digest(image.digest.clone());
    let again = client.pull_image(&pinned, &Platform::host()).await.unwrap();
    assert_eq!(again.manifest_bytes, image.manifest_bytes);
}

#[tokio::test]
async fn fetch_blob_writes_verified_layer() {
    let registry = env_or_fail("PYSLIP_TEST_REGISTRY");
    let client = open_client();
    let reference = Reference::parse(&format!("{registry}/library/python:3.11-slim")).unwrap();
    let image = client
        .pull_image(&reference, &Platform::host())
        .await
        .unwrap();
    let layer = image.layers.first().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer.tar.gz");
    client.fetch_blob(&image.repo, layer, &dest).await.unwrap();
    let bytes = fs_err::read(&dest).unwrap();
    assert_eq!(pyslip_digest::Digest::of(&bytes), layer.digest);
    assert_eq!(
        fs_err::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp files left"
    );
}

#[tokio::test]
async fn unknown_tag_is_manifest_unknown_with_hint() {
    let registry = env_or_fail("PYSLIP_TEST_REGISTRY");
    let client = open_client();
    let reference = Reference::parse(&format!("{registry}/library/python:no-such-tag")).unwrap();
    let err = client
        .pull_image(&reference, &Platform::host())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no-such-tag"), "{err}");
    assert!(err.hint().unwrap().contains("--python"), "{err}");
}
