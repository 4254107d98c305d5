//! Where a finished image goes: a registry push, an OCI image layout directory, or a tarball.
//!
//! Sources of blob bytes (the cache, a registry) and these sinks are separate modules, as in
//! go-containerregistry; the sinks read every blob from the cache.

pub mod layout;
pub mod tarball;

use crate::image::ImageParts;
use layers::Digest;

/// Every blob of an image in the order a sink writes them: layers, config, then the manifest.
pub fn blob_digests(image: &ImageParts) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::new();
    for layer in &image.layers {
        if !out.contains(&layer.blob.digest) {
            out.push(layer.blob.digest.clone());
        }
    }
    out.push(image.config_blob.digest.clone());
    out.push(image.manifest_digest.clone());
    out
}

/// The tag part of a reference string (`host:5000/repo:tag` → `tag`, no tag → `latest`).
pub fn tag_of(reference: &str) -> &str {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag,
        _ => "latest",
    }
}

#[cfg(test)]
mod tests {
    use super::tag_of;

    #[test]
    fn tag_of_ignores_registry_ports() {
        assert_eq!(tag_of("127.0.0.1:5000/t/stdlib:1"), "1");
        assert_eq!(tag_of("127.0.0.1:5000/t/stdlib"), "latest");
        assert_eq!(tag_of("app"), "latest");
        assert_eq!(tag_of("app:v2@sha256:abc"), "v2");
    }
}
