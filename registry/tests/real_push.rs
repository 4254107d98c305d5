//! Pushing to the real registries of the test environment (`scripts/test-env.sh`).
#![allow(clippy::unwrap_used)]

mod common;

use common::{client_with, env_or_fail, image, open_client, small_image, unique_repo};
use pyslip_registry::{
    BlobOutcome, BlobSource, CredentialSources, Platform, PushBlob, Reference, RegistryError,
    RepoRef,
};

#[tokio::test]
async fn push_small_image_then_again_uploads_nothing() {
    let registry = env_or_fail("PYSLIP_TEST_REGISTRY");
    let client = open_client();
    let target = Reference::parse(&format!("{registry}/{}:v1", unique_repo("small"))).unwrap();
    let (blobs, manifest) = small_image("push-twice");
    let first = client
        .push(
            &target,
            &["extra".to_owned()],
            blobs.clone(),
            manifest.clone(),
        )
        .await
        .unwrap();
    assert!(
        first
            .blobs
            .iter()
            .all(|b| b.outcome == BlobOutcome::Uploaded),
        "{first:?}"
    );
    assert_eq!(first.manifest_digest, manifest.digest());
    assert_eq!(first.refs.len(), 2);
    // The pushed image reads back under both tags, byte for byte.
    for r in &first.refs {
        let got = client.fetch_manifest(r).await.unwrap();
        assert_eq!(got.bytes, manifest.bytes, "{r}");
    }
    let second = client
        .push(&target, &[], blobs, manifest.clone())
        .await
        .unwrap();
    assert!(
        second
            .blobs
            .iter()
            .all(|b| b.outcome == BlobOutcome::AlreadyPresent),
        "{second:?}"
    );
    assert_eq!(
        second.bytes_sent,
        manifest.bytes.len() as u64,
        "only the manifest is sent again"
    );
}

#[tokio::test]
async fn push_with_base_layers_mounts_them_from_library_python() {
    let registry = env_or_fail("PYSLIP_TEST_REGISTRY");
    let client = open_client();
    let base_ref = Reference::parse(&format!("{registry}/library/python:3.11-slim")).unwrap();
    let base = client
        .pull_image(&base_ref, &Platform::host())
        .await
        .unwrap();
    let mut layers: Vec<PushBlob> = base
        .layers
        .iter()
        .map(|l| PushBlob {
            digest: l.digest.clone(),
            size: l.size,
            media_type: l.media_type.clone(),
            source: BlobSource::Remote(base.repo.clone()),
        })
        .collect();
    let app = common::bytes_blob(
        b"app layer for mount test",
        pyslip_registry::media_types::OCI_LAYER_GZIP,
    );
    layers.push(app.clone());
    let (blobs, manifest) = image(layers, "mount");
    let target = Reference::parse(&format!("{registry}/{}:latest", unique_repo("mount"))).unwrap();
    let report = client.push(&target, &[], blobs, manifest).await.unwrap();
    let base_size: u64 = base.layers.iter().map(|l| l.size).sum();
    for b in &report.blobs {
        let expected = if base.layers.iter().any(|l| l.digest == b.digest) {
            BlobOutcome::Mounted
        } else {
            BlobOutcome::Uploaded
        };
        assert_eq!(b.outcome, expected, "{b:?}");
    }
    assert!(
        report.bytes_sent < base_size,
        "base layers were not sent: {report:?}"
    );
}

fn auth_sources(dir: &std::path::Path, with_login: bool) -> CredentialSources {
    let file = dir.join("auth.json");
    if with_login {
        let registry = env_or_fail("PYSLIP_TEST_AUTH_REGISTRY");
        let user = env_or_fail("PYSLIP_TEST_AUTH_USER");
        let password = env_or_fail("PYSLIP_TEST_AUTH_PASSWORD");
        let auth = base64_encode(&format!("{user}:{password}"));
        fs_err::write(
            &file,
            format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
    }
    CredentialSources {
        registry_auth_file: Some(file),
        xdg_runtime_dir: Some(dir.join("run")),
        docker_config_dir: Some(dir.join("docker")),
        helper_path: Some(dir.join("bin").into_os_string()),
    }
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn push_to_htpasswd_registry_with_auth_file_works() {
    let registry = env_or_fail("PYSLIP_TEST_AUTH_REGISTRY");
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(auth_sources(dir.path(), true));
    let target = Reference::parse(&format!("{registry}/{}:v1", unique_repo("auth"))).unwrap();
    let (blobs, manifest) = small_image("auth");
    let report = client
        .push(&target, &[], blobs, manifest.clone())
        .await
        .unwrap();
    assert_eq!(report.manifest_digest, manifest.digest());
    assert_eq!(
        client.fetch_manifest(&target).await.unwrap().bytes,
        manifest.bytes
    );
}

#[tokio::test]
async fn push_to_htpasswd_registry_without_credentials_is_unauthorized_with_hint() {
    let registry = env_or_fail("PYSLIP_TEST_AUTH_REGISTRY");
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(auth_sources(dir.path(), false));
    let target = Reference::parse(&format!("{registry}/{}:v1", unique_repo("noauth"))).unwrap();
    let (blobs, manifest) = small_image("noauth");
    let err = client
        .push(&target, &[], blobs, manifest)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&registry) && text.contains("unauthorized"),
        "{text}"
    );
    let hint = err.hint().unwrap();
    assert!(
        hint.contains(&format!("podman login {registry}")) && hint.contains("auth.json"),
        "{hint}"
    );
}

#[tokio::test]
async fn cross_registry_push_streams_base_layers_from_source() {
    let open = env_or_fail("PYSLIP_TEST_REGISTRY");
    let auth = env_or_fail("PYSLIP_TEST_AUTH_REGISTRY");
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(auth_sources(dir.path(), true));
    let source = RepoRef::parse(&format!("{open}/library/python")).unwrap();
    let base = client
        .pull_image(&source.tag("3.11-slim").unwrap(), &Platform::host())
        .await
        .unwrap();
    let layers = base
        .layers
        .iter()
        .map(|l| PushBlob {
            digest: l.digest.clone(),
            size: l.size,
            media_type: l.media_type.clone(),
            source: BlobSource::Remote(source.clone()),
        })
        .collect();
    let (blobs, manifest) = image(layers, "cross");
    let target = Reference::parse(&format!("{auth}/{}:v1", unique_repo("cross"))).unwrap();
    let report = client.push(&target, &[], blobs, manifest).await.unwrap();
    let copied = report
        .blobs
        .iter()
        .filter(|b| b.outcome == BlobOutcome::CopiedFromRegistry)
        .count();
    assert_eq!(copied, base.layers.len(), "{report:?}");
    let pulled = client
        .pull_image(&target, &Platform::parse("linux/amd64").unwrap())
        .await
        .unwrap();
    assert_eq!(pulled.layers, base.layers);
}
