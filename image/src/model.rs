//! The image model, as in go-containerregistry: an image is a config and a manifest plus layer
//! descriptors (the bytes stay wherever they are: the local blob store, or the base image's
//! registry); an index is several images, one per platform.

use std::collections::BTreeMap;

use layers::Digest;
use pyslip_registry::Platform;
use serde::Serialize;

/// A blob as a manifest names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobRef {
    /// Media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Content digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
}

/// Where a layer of the output image comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerOrigin {
    /// A layer of the base image.
    Base,
    /// The dependency layer.
    Deps,
    /// The project's own package, installed like a dependency.
    Project,
    /// Django's collected static files.
    Static,
    /// The application layer.
    App,
}

impl LayerOrigin {
    /// The name shown to users and in `--json` (`base`, `deps`, `project`, `static`, `app`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::Deps => "deps",
            Self::Project => "project",
            Self::Static => "static",
            Self::App => "app",
        }
    }
}

/// A layer pyslip made, with what the config needs to know about it.
#[derive(Debug, Clone)]
pub struct NewLayer {
    /// The compressed blob.
    pub blob: BlobRef,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// History line.
    pub created_by: String,
    /// Which kind of layer.
    pub origin: LayerOrigin,
    /// Taken from the cache rather than made by this build.
    pub reused: bool,
    /// Annotations of its manifest descriptor (which step made it, from which inputs).
    pub annotations: BTreeMap<String, String>,
}

/// A layer of the finished image.
#[derive(Debug, Clone)]
pub struct ImageLayer {
    /// The blob.
    pub blob: BlobRef,
    /// Which kind of layer.
    pub origin: LayerOrigin,
    /// Not made by this build: a base layer, or a layer taken from the cache.
    pub reused: bool,
}

/// A finished image for one platform: config and manifest bytes with their digests, and every
/// layer in order.
#[derive(Debug, Clone)]
pub struct Image {
    /// The platform, as the config states it.
    pub platform: Platform,
    /// Config bytes.
    pub config: Vec<u8>,
    /// Config descriptor.
    pub config_blob: BlobRef,
    /// Manifest bytes.
    pub manifest: Vec<u8>,
    /// Manifest digest (the image's identity).
    pub manifest_digest: Digest,
    /// Every layer, base first.
    pub layers: Vec<ImageLayer>,
}

impl Image {
    /// Every blob the image references, each once, in the order sinks write them: layers, then
    /// the config (the manifest is not included).
    pub fn blob_refs(&self) -> Vec<&BlobRef> {
        let mut out: Vec<&BlobRef> = Vec::new();
        for layer in &self.layers {
            if !out.iter().any(|b| b.digest == layer.blob.digest) {
                out.push(&layer.blob);
            }
        }
        out.push(&self.config_blob);
        out
    }
}

/// Several images of one build, one per platform, under one image index.
#[derive(Debug, Clone)]
pub struct MultiImage {
    /// The images, in the order the index lists them.
    pub images: Vec<Image>,
    /// The index bytes.
    pub index: Vec<u8>,
    /// The index digest (the identity of the whole).
    pub index_digest: Digest,
}

/// What a build writes: one image (a plain manifest) or several (an index over manifests).
#[derive(Debug, Clone)]
pub enum Artifact {
    /// One platform: a manifest, exactly as single-platform builds always wrote.
    Image(Image),
    /// Several platforms: an OCI image index.
    Index(MultiImage),
}

impl Artifact {
    /// The digest that names the artifact (the manifest's, or the index's).
    pub fn digest(&self) -> &Digest {
        match self {
            Self::Image(image) => &image.manifest_digest,
            Self::Index(multi) => &multi.index_digest,
        }
    }

    /// The top-level bytes (manifest or index).
    pub fn top_bytes(&self) -> &[u8] {
        match self {
            Self::Image(image) => &image.manifest,
            Self::Index(multi) => &multi.index,
        }
    }

    /// The top-level media type.
    pub fn media_type(&self) -> oci_spec::image::MediaType {
        match self {
            Self::Image(_) => oci_spec::image::MediaType::ImageManifest,
            Self::Index(_) => oci_spec::image::MediaType::ImageIndex,
        }
    }

    /// The images, one or several.
    pub fn images(&self) -> &[Image] {
        match self {
            Self::Image(image) => std::slice::from_ref(image),
            Self::Index(multi) => &multi.images,
        }
    }

    /// Every blob digest a local sink writes, each once: per image its layers and config, then
    /// its manifest; last the index, if any.
    pub fn blob_digests(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = Vec::new();
        let mut add = |d: &Digest| {
            if !out.contains(d) {
                out.push(d.clone());
            }
        };
        for image in self.images() {
            for blob in image.blob_refs() {
                add(&blob.digest);
            }
            add(&image.manifest_digest);
        }
        if let Self::Index(multi) = self {
            add(&multi.index_digest);
        }
        out
    }
}
