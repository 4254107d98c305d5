//! The SBOM as an OCI 1.1 artifact: an image manifest with `artifactType`, the empty config, the
//! document as its one layer and the image as its `subject` — what `oras attach` pushes — and its
//! entry in an OCI layout's `index.json`.

use std::collections::BTreeMap;

use layers::Digest;
use serde::Serialize;
use serde_json::Value;

use crate::error::SbomError;
use crate::inventory::ImageSubject;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The empty descriptor's media type (config of artifacts without one).
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty config's bytes.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// Annotation naming the document file (`oras pull` writes it under this name).
pub const TITLE: &str = "org.opencontainers.image.title";
/// Annotation with the creation time.
pub const CREATED: &str = "org.opencontainers.image.created";

/// A descriptor as manifests and indexes write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type.
    pub media_type: String,
    /// Digest.
    pub digest: Digest,
    /// Size.
    pub size: u64,
    /// Artifact type (referrer entries in indexes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactManifest<'a> {
    schema_version: u32,
    media_type: &'static str,
    artifact_type: &'a str,
    config: Descriptor,
    layers: Vec<Descriptor>,
    subject: Descriptor,
    annotations: BTreeMap<String, String>,
}

/// The SBOM artifact: its manifest and the blobs it references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The manifest bytes.
    pub manifest: Vec<u8>,
    /// The manifest's descriptor, with `artifactType` and the manifest's annotations: exactly
    /// what a referrers list holds for it.
    pub descriptor: Descriptor,
    /// The document (the manifest's one layer).
    pub document: Vec<u8>,
    /// The document's descriptor.
    pub document_descriptor: Descriptor,
    /// The empty config's descriptor.
    pub config_descriptor: Descriptor,
}

impl Artifact {
    /// The artifact for `document` (of media type `artifact_type`, shown as `filename`) that
    /// refers to `subject`. Deterministic: the same inputs give the same manifest digest.
    pub fn new(
        subject: &ImageSubject,
        artifact_type: &str,
        document: Vec<u8>,
        filename: &str,
        created: &str,
    ) -> Self {
        let config_descriptor = Descriptor {
            media_type: EMPTY_MEDIA_TYPE.to_owned(),
            digest: Digest::of(EMPTY_CONFIG),
            size: EMPTY_CONFIG.len() as u64,
            artifact_type: None,
            annotations: BTreeMap::new(),
        };
        let document_descriptor = Descriptor {
            media_type: artifact_type.to_owned(),
            digest: Digest::of(&document),
            size: document.len() as u64,
            artifact_type: None,
            annotations: BTreeMap::from([(TITLE.to_owned(), filename.to_owned())]),
        };
        let annotations = BTreeMap::from([(CREATED.to_owned(), created.to_owned())]);
        let manifest = serde_json::to_vec(&ArtifactManifest {
            schema_version: 2,
            media_type: OCI_MANIFEST,
            artifact_type,
            config: config_descriptor.clone(),
            layers: vec![document_descriptor.clone()],
            subject: Descriptor {
                media_type: subject.media_type.clone(),
                digest: subject.digest.clone(),
                size: subject.size,
                artifact_type: None,
                annotations: BTreeMap::new(),
            },
            annotations: annotations.clone(),
        })
        .unwrap_or_default();
        let descriptor = Descriptor {
            media_type: OCI_MANIFEST.to_owned(),
            digest: Digest::of(&manifest),
            size: manifest.len() as u64,
            artifact_type: Some(artifact_type.to_owned()),
            annotations,
        };
        Self {
            manifest,
            descriptor,
            document,
            document_descriptor,
            config_descriptor,
        }
    }

    /// The blobs to store with the manifest: (descriptor, bytes), config first.
    pub fn blobs(&self) -> [(&Descriptor, &[u8]); 2] {
        [
            (&self.config_descriptor, EMPTY_CONFIG),
            (&self.document_descriptor, &self.document),
        ]
    }
}

/// `index.json` of an OCI layout with the artifact's entry added (referrers in a layout are found
/// by walking its index, as `oras discover --oci-layout` does). `None` when the entry is already
/// there, so a second build changes nothing.
pub fn add_to_layout_index(
    index_json: &[u8],
    artifact: &Artifact,
) -> Result<Option<Vec<u8>>, SbomError> {
    let invalid = |reason: String| SbomError::Oci {
        what: "index.json".to_owned(),
        reason,
    };
    let mut index: Value =
        serde_json::from_slice(index_json).map_err(|e| invalid(e.to_string()))?;
    let manifests = index
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| invalid("it has no manifests list".to_owned()))?;
    let digest = artifact.descriptor.digest.to_string();
    if manifests
        .iter()
        .any(|m| m["digest"].as_str() == Some(digest.as_str()))
    {
        return Ok(None);
    }
    manifests.push(serde_json::to_value(&artifact.descriptor).map_err(|e| invalid(e.to_string()))?);
    serde_json::to_vec(&index)
        .map(Some)
        .map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> ImageSubject {
        ImageSubject {
            digest: Digest::of(b"image"),
            size: 5,
            media_type: OCI_MANIFEST.into(),
            platform: "linux/amd64".into(),
        }
    }

    #[test]
    fn artifact_manifest_shape() {
        let a = Artifact::new(
            &subject(),
            "application/spdx+json",
            b"{}\n".to_vec(),
            "sbom.spdx.json",
            "1970-01-01T00:00:00Z",
        );
        let v: Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(v["artifactType"], "application/spdx+json");
        assert_eq!(v["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(v["config"]["digest"], Digest::of(b"{}").to_string());
        assert_eq!(v["subject"]["digest"], Digest::of(b"image").to_string());
        assert_eq!(v["layers"][0]["annotations"][TITLE], "sbom.spdx.json");
        let again = Artifact::new(
            &subject(),
            "application/spdx+json",
            b"{}\n".to_vec(),
            "sbom.spdx.json",
            "1970-01-01T00:00:00Z",
        );
        assert_eq!(a, again);
    }

    #[test]
    fn layout_index_gets_one_entry() {
        let a = Artifact::new(&subject(), "application/spdx+json", b"x".to_vec(), "s", "t");
        let index = br#"{"schemaVersion":2,"manifests":[{"digest":"sha256:00"}]}"#;
        let once = add_to_layout_index(index, &a).unwrap().unwrap();
        let v: Value = serde_json::from_slice(&once).unwrap();
        assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
        assert_eq!(v["manifests"][1]["artifactType"], "application/spdx+json");
        assert!(add_to_layout_index(&once, &a).unwrap().is_none());
        assert!(add_to_layout_index(b"{}", &a).is_err());
    }
}
