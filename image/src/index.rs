//! An OCI image index over several images of one build, one per platform.

use layers::Digest;
use oci_spec::image::{Arch, ImageIndexBuilder, MediaType, Os, PlatformBuilder};
use pyslip_registry::Platform;

use crate::assemble::descriptor;
use crate::error::ImageError;
use crate::model::{BlobRef, Image, MultiImage};

/// The oci-spec platform of an index entry.
pub(crate) fn oci_platform(p: &Platform) -> Result<oci_spec::image::Platform, ImageError> {
    let mut builder = PlatformBuilder::default()
        .os(Os::from(p.os.as_str()))
        .architecture(Arch::from(p.architecture.as_str()));
    if let Some(variant) = &p.variant {
        builder = builder.variant(variant.clone());
    }
    builder.build().map_err(|source| ImageError::Spec {
        what: format!("platform {p}"),
        source,
    })
}

/// Put `images` under one index, in the order given. Each must be for another platform.
pub fn index(images: Vec<Image>) -> Result<MultiImage, ImageError> {
    if images.is_empty() {
        return Err(ImageError::Index {
            problem: "needs at least one image".into(),
        });
    }
    for (i, image) in images.iter().enumerate() {
        if images[..i].iter().any(|o| o.platform == image.platform) {
            return Err(ImageError::Index {
                problem: format!("has two images for {}", image.platform),
            });
        }
    }
    let manifests = images
        .iter()
        .map(|image| {
            let blob = BlobRef {
                media_type: MediaType::ImageManifest.to_string(),
                digest: image.manifest_digest.clone(),
                size: image.manifest.len() as u64,
            };
            let mut entry = descriptor(&blob, "index entry")?;
            entry.set_platform(Some(oci_platform(&image.platform)?));
            Ok(entry)
        })
        .collect::<Result<Vec<_>, ImageError>>()?;
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .map_err(|source| ImageError::Spec {
            what: "image index".into(),
            source,
        })?;
    let bytes = crate::json::index_bytes(&index)?;
    Ok(MultiImage {
        index_digest: Digest::of(&bytes),
        index: bytes,
        images,
    })
}
