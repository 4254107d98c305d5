//! Manifest media types, descriptors, and reading index/manifest bodies (OCI and Docker v2).

use bytes::Bytes;
use oci_spec::image::{ImageIndex, ImageManifest};
use pyslip_digest::Digest;
use serde::{Deserialize, Serialize};

use crate::error::RegistryError;

/// Media types pyslip reads and writes.
pub mod media_types {
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// Docker manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// OCI gzip layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// Docker gzip layer.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
}

/// The `Accept` header for manifest requests: every index and manifest type we read.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// A content descriptor with a validated digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Digest of the content.
    pub digest: Digest,
    /// Size of the content in bytes.
    pub size: u64,
}

impl Descriptor {
    /// Convert an oci-spec descriptor, validating its digest with pyslip's stricter rules.
    pub fn from_oci(d: &oci_spec::image::Descriptor, context: &str) -> Result<Self, RegistryError> {
        let digest =
            Digest::parse(d.digest().as_ref()).map_err(|source| RegistryError::InvalidDigest {
                context: context.to_owned(),
                source,
            })?;
        Ok(Self {
            media_type: d.media_type().to_string(),
            digest,
            size: d.size(),
        })
    }
}

/// Whether a manifest body is an index (multi-platform) or a single image manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Index,
    Image,
}

/// The fields needed to tell manifest kinds apart.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u32>,
    manifests: Option<serde_json::Value>,
    layers: Option<serde_json::Value>,
}

/// Decide the media type and kind of a manifest body: its `mediaType` field, else the
/// Content-Type header, else its shape (`manifests` → index, `layers` → manifest).
pub(crate) fn classify(
    body: &[u8],
    content_type: Option<&str>,
    host: &str,
    reference: &str,
) -> Result<(Kind, String), RegistryError> {
    let probe: Probe =
        serde_json::from_slice(body).map_err(|source| RegistryError::InvalidJson {
            what: format!("manifest {reference}"),
            host: host.to_owned(),
            source,
        })?;
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or_default().trim().to_owned())
        .filter(|c| !c.is_empty() && c != "application/json" && c != "text/plain");
    let media_type = probe.media_type.or(header);
    let unsupported = |media_type: String| RegistryError::UnsupportedMediaType {
        media_type,
        reference: reference.to_owned(),
    };
    match media_type.as_deref() {
        Some(media_types::OCI_INDEX | media_types::DOCKER_LIST) => {
            Ok((Kind::Index, media_type.unwrap_or_default()))
        }
        Some(media_types::OCI_MANIFEST | media_types::DOCKER_MANIFEST) => {
            Ok((Kind::Image, media_type.unwrap_or_default()))
        }
        Some(other) => Err(unsupported(other.to_owned())),
        None if probe.schema_version == Some(2) && probe.manifests.is_some() => {
            Ok((Kind::Index, media_types::OCI_INDEX.to_owned()))
        }
        None if probe.schema_version == Some(2) && probe.layers.is_some() => {
            Ok((Kind::Image, media_types::OCI_MANIFEST.to_owned()))
        }
        None => Err(unsupported("(none)".to_owned())),
    }
}

/// Parse an index body.
pub(crate) fn parse_index(
    body: &[u8],
    host: &str,
    reference: &str,
) -> Result<ImageIndex, RegistryError> {
    serde_json::from_slice(body).map_err(|source| RegistryError::InvalidJson {
        what: format!("image index {reference}"),
        host: host.to_owned(),
        source,
    })
}

/// Parse an image manifest body and its descriptors (config first, then layers).
pub(crate) fn parse_manifest(
    body: &[u8],
    host: &str,
    reference: &str,
) -> Result<(ImageManifest, Descriptor, Vec<Descriptor>), RegistryError> {
    let manifest: ImageManifest =
        serde_json::from_slice(body).map_err(|source| RegistryError::InvalidJson {
            what: format!("image manifest {reference}"),
            host: host.to_owned(),
            source,
        })?;
    let config = Descriptor::from_oci(manifest.config(), &format!("config of {reference}"))?;
    let layers = manifest
        .layers()
        .iter()
        .map(|l| Descriptor::from_oci(l, &format!("layers of {reference}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((manifest, config, layers))
}

/// A manifest to push: its exact bytes and media type (the digest is computed from the bytes).
#[derive(Debug, Clone)]
pub struct ManifestToPush {
    /// Media type sent as Content-Type (`application/vnd.oci.image.manifest.v1+json`…).
    pub media_type: String,
    /// The serialized manifest, byte for byte.
    pub bytes: Bytes,
}

impl ManifestToPush {
    /// The digest the registry will store the manifest under.
    pub fn digest(&self) -> Digest {
        Digest::of(&self.bytes)
    }
}

/// Check `bytes` against `expected` (and optionally a size).
pub(crate) fn verify(
    object: &str,
    bytes: &[u8],
    expected: &Digest,
    size: Option<u64>,
) -> Result<(), RegistryError> {
    let actual = Digest::of(bytes);
    if &actual != expected {
        return Err(RegistryError::DigestMismatch {
            object: object.to_owned(),
            expected: expected.clone(),
            actual,
        });
    }
    if let Some(size) = size
        && size != bytes.len() as u64
    {
        return Err(RegistryError::SizeMismatch {
            object: object.to_owned(),
            expected: size,
            actual: bytes.len() as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_uses_body_then_content_type_then_shape() {
        let index_body = br#"{"schemaVersion":2,"manifests":[]}"#;
        let docker_list = classify(index_body, Some(media_types::DOCKER_LIST), "h", "r").unwrap();
        assert_eq!(
            docker_list,
            (Kind::Index, media_types::DOCKER_LIST.to_owned())
        );
        let shape = classify(index_body, Some("application/json"), "h", "r").unwrap();
        assert_eq!(shape.0, Kind::Index);
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{}},"layers":[]}}"#,
            media_types::DOCKER_MANIFEST
        );
        let (kind, mt) = classify(body.as_bytes(), Some(media_types::OCI_INDEX), "h", "r").unwrap();
        assert_eq!(
            (kind, mt.as_str()),
            (Kind::Image, media_types::DOCKER_MANIFEST)
        );
        let schema1 = classify(
            br#"{"schemaVersion":1}"#,
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
            "h",
            "r",
        );
        assert!(matches!(
            schema1,
            Err(RegistryError::UnsupportedMediaType { .. })
        ));
    }

    #[test]
    fn verify_reports_both_digests() {
        let expected = Digest::of(b"good");
        let err = verify("manifest x", b"bad", &expected, None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&expected.to_string()) && text.contains(&Digest::of(b"bad").to_string())
        );
        assert!(err.hint().is_some_and(|h| h.contains("nothing was cached")));
        assert!(verify("x", b"good", &expected, Some(3)).is_err());
        assert!(verify("x", b"good", &expected, Some(4)).is_ok());
    }

    #[test]
    fn malformed_layer_digest_is_rejected() {
        let body = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","size":2},"layers":[]}"#;
        assert!(parse_manifest(body.as_bytes(), "h", "r").is_err());
    }
}
