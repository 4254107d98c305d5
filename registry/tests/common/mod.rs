//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use pyslip_registry::{Client, ClientConfig, CredentialSources, RetryPolicy};

/// Read a test-environment variable or fail with how to get it.
pub fn env_or_fail(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/test-env.sh and source /var/lib/pyslip-test/env")
    })
}

/// Fast retries so fault tests do not sleep long.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(2),
    }
}

/// A client with no credentials and fast retries.
pub fn open_client() -> Client {
    client_with(CredentialSources::none())
}

/// A client with the given credential sources and fast retries.
pub fn client_with(credentials: CredentialSources) -> Client {
    Client::new(ClientConfig {
        credentials,
        retry: fast_retry(),
        ..ClientConfig::default()
    })
    .unwrap()
}

use bytes::Bytes;
use pyslip_digest::Digest;
use pyslip_registry::{BlobSource, Descriptor, ManifestToPush, PushBlob, media_types};

/// A repository name no earlier run used.
pub fn unique_repo(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("pyslip-test/{prefix}-{nanos}-{}", std::process::id())
}

/// A blob held in memory.
pub fn bytes_blob(content: &[u8], media_type: &str) -> PushBlob {
    PushBlob {
        digest: Digest::of(content),
        size: content.len() as u64,
        media_type: media_type.to_owned(),
        source: BlobSource::Bytes(Bytes::copy_from_slice(content)),
    }
}

/// A config and OCI manifest over `layers` (config first in the returned blobs).
pub fn image(layers: Vec<PushBlob>, label: &str) -> (Vec<PushBlob>, ManifestToPush) {
    image_for("amd64", layers, label)
}

/// [`image`] for a linux architecture other than amd64.
pub fn image_for(
    architecture: &str,
    layers: Vec<PushBlob>,
    label: &str,
) -> (Vec<PushBlob>, ManifestToPush) {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.to_string()).collect();
    let config = serde_json::json!({
        "architecture": architecture,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin"], "Labels": {"test": label}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = bytes_blob(
        &serde_json::to_vec(&config).unwrap(),
        media_types::OCI_CONFIG,
    );
    let descriptor = |b: &PushBlob| Descriptor {
        media_type: b.media_type.clone(),
        digest: b.digest.clone(),
        size: b.size,
    };
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": descriptor(&config),
        "layers": layers.iter().map(descriptor).collect::<Vec<_>>(),
    });
    let manifest = ManifestToPush {
        media_type: media_types::OCI_MANIFEST.to_owned(),
        bytes: Bytes::from(serde_json::to_vec(&manifest).unwrap()),
    };
    let mut blobs = vec![config];
    blobs.extend(layers);
    (blobs, manifest)
}

/// A small two-layer image with content unique to `label`.
pub fn small_image(label: &str) -> (Vec<PushBlob>, ManifestToPush) {
    let a = bytes_blob(
        format!("layer-a {label}").as_bytes(),
        media_types::OCI_LAYER_GZIP,
    );
    let b = bytes_blob(
        format!("layer-b {label}").as_bytes(),
        media_types::OCI_LAYER_GZIP,
    );
    image(vec![a, b], label)
}
