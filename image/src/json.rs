//! The exact bytes of the manifests, indexes and descriptors pyslip writes.
//!
//! They are built as oci-spec values, but oci-spec keeps annotations in a `HashMap`, whose
//! iteration order changes from run to run; serialising its structs directly would give a
//! different digest each time. These adapters write the same fields in the image spec's order
//! (which is also the order of oci-spec's structs and of every earlier pyslip release, so digests
//! do not change) with annotations sorted by key.

use std::collections::BTreeMap;
use std::collections::HashMap;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::error::ImageError;

/// Canonical bytes of an image manifest.
pub fn manifest_bytes(manifest: &ImageManifest) -> Result<Vec<u8>, ImageError> {
    serde_json::to_vec(&ManifestJson(manifest)).map_err(ImageError::Serialize)
}

/// Canonical bytes of an image index (also the layout's `index.json`).
pub fn index_bytes(index: &ImageIndex) -> Result<Vec<u8>, ImageError> {
    serde_json::to_vec(&IndexJson(index)).map_err(ImageError::Serialize)
}

fn sorted(map: &Option<HashMap<String, String>>) -> Option<BTreeMap<&String, &String>> {
    map.as_ref()
        .filter(|m| !m.is_empty())
        .map(|m| m.iter().collect())
}

struct ManifestJson<'a>(&'a ImageManifest);

impl Serialize for ManifestJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let mut out = s.serialize_struct("ImageManifest", 7)?;
        out.serialize_field("schemaVersion", &m.schema_version())?;
        if let Some(media_type) = m.media_type() {
            out.serialize_field("mediaType", media_type)?;
        }
        if let Some(artifact_type) = m.artifact_type() {
            out.serialize_field("artifactType", artifact_type)?;
        }
        out.serialize_field("config", &DescriptorJson(m.config()))?;
        let layers: Vec<_> = m.layers().iter().map(DescriptorJson).collect();
        out.serialize_field("layers", &layers)?;
        if let Some(subject) = m.subject() {
            out.serialize_field("subject", &DescriptorJson(subject))?;
        }
        if let Some(annotations) = sorted(m.annotations()) {
            out.serialize_field("annotations", &annotations)?;
        }
        out.end()
    }
}

struct IndexJson<'a>(&'a ImageIndex);

impl Serialize for IndexJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let i = self.0;
        let mut out = s.serialize_struct("ImageIndex", 6)?;
        out.serialize_field("schemaVersion", &i.schema_version())?;
        if let Some(media_type) = i.media_type() {
            out.serialize_field("mediaType", media_type)?;
        }
        if let Some(artifact_type) = i.artifact_type() {
            out.serialize_field("artifactType", artifact_type)?;
        }
        let manifests: Vec<_> = i.manifests().iter().map(DescriptorJson).collect();
        out.serialize_field("manifests", &manifests)?;
        if let Some(subject) = i.subject() {
            out.serialize_field("subject", &DescriptorJson(subject))?;
        }
        if let Some(annotations) = sorted(i.annotations()) {
            out.serialize_field("annotations", &annotations)?;
        }
        out.end()
    }
}

struct DescriptorJson<'a>(&'a Descriptor);

impl Serialize for DescriptorJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        let mut out = s.serialize_struct("Descriptor", 8)?;
        out.serialize_field("mediaType", d.media_type())?;
        out.serialize_field("digest", d.digest())?;
        out.serialize_field("size", &d.size())?;
        if let Some(urls) = d.urls() {
            out.serialize_field("urls", urls)?;
        }
        if let Some(annotations) = sorted(d.annotations()) {
            out.serialize_field("annotations", &annotations)?;
        }
        // oci-spec's platform has no maps: its own order is the spec's.
        if let Some(platform) = d.platform() {
            out.serialize_field("platform", platform)?;
        }
        if let Some(artifact_type) = d.artifact_type() {
            out.serialize_field("artifactType", artifact_type)?;
        }
        if let Some(data) = d.data() {
            out.serialize_field("data", data)?;
        }
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{
        DescriptorBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType, PlatformBuilder,
    };

    fn descriptor(n: u8, annotations: Option<HashMap<String, String>>) -> Descriptor {
        let mut d = DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .digest(
                format!("sha256:{}", format!("{n:02x}").repeat(32))
                    .parse::<oci_spec::image::Digest>()
                    .unwrap(),
            )
            .size(7u64)
            .build()
            .unwrap();
        d.set_annotations(annotations);
        d
    }

    #[test]
    fn annotations_are_sorted_whatever_the_hash_order() {
        let many: HashMap<String, String> = (0..20)
            .map(|i| (format!("k{i:02}"), i.to_string()))
            .collect();
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(vec![descriptor(1, Some(many.clone()))])
            .annotations(many)
            .build()
            .unwrap();
        let text = String::from_utf8(index_bytes(&index).unwrap()).unwrap();
        let keys: Vec<usize> = (0..20)
            .map(|i| text.rfind(&format!("\"k{i:02}\"")).unwrap())
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(text.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"#));
    }

    #[test]
    fn fields_follow_the_spec_order_and_match_serde_without_maps() {
        let platform = PlatformBuilder::default()
            .architecture(oci_spec::image::Arch::ARM64)
            .os(oci_spec::image::Os::Linux)
            .variant("v8")
            .build()
            .unwrap();
        let mut entry = descriptor(2, None);
        entry.set_platform(Some(platform));
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(vec![entry])
            .build()
            .unwrap();
        // Without annotations, oci-spec's own serialisation is deterministic: ours must agree.
        assert_eq!(
            index_bytes(&index).unwrap(),
            serde_json::to_vec(&index).unwrap()
        );
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(descriptor(3, None))
            .layers(vec![descriptor(4, None)])
            .build()
            .unwrap();
        assert_eq!(
            manifest_bytes(&manifest).unwrap(),
            serde_json::to_vec(&manifest).unwrap()
        );
    }
}
