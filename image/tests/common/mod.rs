//! A real two-platform image for the sink tests: the test environment's
//! `library/python:3.13-slim` (an index with linux/amd64 and a linux/arm64 placeholder) plus one
//! app layer, assembled for each platform with the base layers in a local blob store.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;

use layers::{EntryKind, FileSource, LayerEntry, LayerOptions};
use pyslip_image::{
    Artifact, BlobRef, Image, ImageSettings, LayerOrigin, LocalBlobs, NewLayer, assemble,
};
use pyslip_registry::{Client, ClientConfig, CredentialSources, Platform, Reference, RepoRef};

/// What the message the image prints when run.
pub const GREETING: &str = "hello from pyslip-image";

/// The test environment's open registry.
pub fn registry() -> String {
    std::env::var("PYSLIP_TEST_REGISTRY").unwrap_or_else(|_| {
        panic!("PYSLIP_TEST_REGISTRY is not set: run scripts/test-env.sh and source /var/lib/pyslip-test/env")
    })
}

/// A client without credentials.
pub fn client() -> Client {
    Client::new(ClientConfig {
        credentials: CredentialSources::none(),
        ..ClientConfig::default()
    })
    .unwrap()
}

/// The images, their blob store and the base repository.
pub struct Fixture {
    /// Holds the blob store.
    pub dir: tempfile::TempDir,
    /// Base layers and the app layer.
    pub local: LocalBlobs,
    /// `<registry>/library/python`.
    pub base: RepoRef,
    /// linux/amd64 (the host's), then linux/arm64.
    pub images: Vec<Image>,
}

impl Fixture {
    /// The index over both images.
    pub fn index(&self) -> Artifact {
        Artifact::Index(pyslip_image::index(self.images.clone()).unwrap())
    }
}

fn settings() -> ImageSettings {
    ImageSettings {
        env: vec![("PYTHONUNBUFFERED".into(), "1".into())],
        port: None,
        cmd: vec![
            "python3".into(),
            "-c".into(),
            format!("print({GREETING:?})"),
        ],
        workdir: "/app".into(),
        user: "1000:1000".into(),
        labels: BTreeMap::new(),
        created: "1970-01-01T00:00:00Z".into(),
    }
}

/// Resolve the base for both platforms, download its layers, write the app layer, assemble.
pub async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("blobs");
    fs_err::create_dir_all(&store).unwrap();
    let local = LocalBlobs::new(&store);
    let entry = |path: &str, kind| LayerEntry {
        path: path.into(),
        kind,
        mode: 0o755,
        uid: 1000,
        gid: 1000,
    };
    let (app, _) = layers::write_layer_to_dir(
        vec![
            entry("app", EntryKind::Dir),
            entry(
                "app/hello.txt",
                EntryKind::File(FileSource::Bytes(GREETING.as_bytes().to_vec())),
            ),
        ],
        &LayerOptions { mtime: 0 },
        &store,
    )
    .unwrap();
    let app = NewLayer {
        blob: BlobRef {
            media_type: pyslip_registry::media_types::OCI_LAYER_GZIP.into(),
            digest: app.digest,
            size: app.size,
        },
        diff_id: app.diff_id,
        created_by: "app".into(),
        origin: LayerOrigin::App,
        reused: false,
        annotations: BTreeMap::new(),
    };
    let client = client();
    let base = Reference::parse(&format!("{}/library/python:3.13-slim", registry())).unwrap();
    let mut images = Vec::new();
    for platform in ["linux/amd64", "linux/arm64"] {
        let pulled = client
            .pull_image(&base, &Platform::parse(platform).unwrap())
            .await
            .unwrap();
        let mut base_layers = Vec::new();
        for layer in &pulled.layers {
            let dest = local.path(&layer.digest);
            if !dest.exists() {
                client.fetch_blob(&pulled.repo, layer, &dest).await.unwrap();
            }
            base_layers.push(BlobRef {
                media_type: layer.media_type.clone(),
                digest: layer.digest.clone(),
                size: layer.size,
            });
        }
        let image = assemble(
            &pulled.config_bytes,
            &base_layers,
            std::slice::from_ref(&app),
            &settings(),
            BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(image.platform.architecture, platform[6..]);
        images.push(image);
    }
    Fixture {
        dir,
        local,
        base: base.repo().clone(),
        images,
    }
}

/// Run a host tool; its stdout, or a panic with its stderr.
pub fn host(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A name no other run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}
