//! Mutation is "append layers to base" (as in go-containerregistry): base layers are referenced,
//! never rewritten; the new layers and the edited config are the only new blobs.

use std::collections::{BTreeMap, HashMap};

use layers::Digest;
use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageManifestBuilder, MediaType, ToDockerV2S2 as _,
};
use pyslip_registry::Platform;

use crate::config::{ImageSettings, build_config};
use crate::error::ImageError;
use crate::model::{BlobRef, Image, ImageLayer, LayerOrigin, NewLayer};

/// Docker's media type for a non-distributable ("foreign") gzip layer, which oci-spec does not
/// map.
const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// The OCI media type for a base layer: Docker's layer types are the same bytes as OCI's.
pub fn oci_layer_media_type(media_type: &str) -> String {
    let gzip = MediaType::ImageLayerGzip;
    if gzip
        .to_docker_v2s2()
        .is_ok_and(|docker| docker == media_type)
    {
        gzip.to_string()
    } else if media_type == DOCKER_FOREIGN_LAYER {
        MediaType::ImageLayerNonDistributableGzip.to_string()
    } else {
        media_type.to_owned()
    }
}

/// A descriptor for a blob.
pub(crate) fn descriptor(blob: &BlobRef, what: &str) -> Result<Descriptor, ImageError> {
    let spec = |source| ImageError::Spec {
        what: what.to_owned(),
        source,
    };
    let digest = blob
        .digest
        .to_string()
        .parse::<oci_spec::image::Digest>()
        .map_err(spec)?;
    DescriptorBuilder::default()
        .media_type(MediaType::from(blob.media_type.as_str()))
        .digest(digest)
        .size(blob.size)
        .build()
        .map_err(spec)
}

/// The platform a config declares (`os`, `architecture`, `variant`).
pub fn config_platform(config: &[u8]) -> Result<Platform, ImageError> {
    #[derive(serde::Deserialize)]
    struct Fields {
        os: Option<String>,
        architecture: Option<String>,
        variant: Option<String>,
    }
    let fields: Fields = serde_json::from_slice(config).map_err(|_| ImageError::BaseConfig {
        problem: "is not valid JSON".into(),
    })?;
    let text = [fields.os, fields.architecture, fields.variant]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("/");
    Platform::parse(&text).map_err(|_| ImageError::BaseConfig {
        problem: format!("names no usable platform ({text:?})"),
    })
}

/// The manifest's layer descriptors: base layers as they are, pyslip's with their annotations.
fn layer_descriptors(
    layers: &[ImageLayer],
    new_layers: &[NewLayer],
) -> Result<Vec<Descriptor>, ImageError> {
    let base_count = layers.len() - new_layers.len();
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut d = descriptor(&l.blob, "layer descriptor")?;
            let annotations = i
                .checked_sub(base_count)
                .and_then(|n| new_layers.get(n))
                .map(|n| &n.annotations)
                .filter(|a| !a.is_empty());
            if let Some(annotations) = annotations {
                d.set_annotations(Some(annotations.clone().into_iter().collect()));
            }
            Ok(d)
        })
        .collect()
}

/// Append the new layers to the base and produce config and manifest.
pub fn assemble(
    base_config: &[u8],
    base_layers: &[BlobRef],
    new_layers: &[NewLayer],
    settings: &ImageSettings,
    annotations: BTreeMap<String, String>,
) -> Result<Image, ImageError> {
    let history: Vec<(Digest, String)> = new_layers
        .iter()
        .map(|l| (l.diff_id.clone(), l.created_by.clone()))
        .collect();
    let config = build_config(base_config, settings, &history)?;
    let config_blob = BlobRef {
        media_type: MediaType::ImageConfig.to_string(),
        digest: Digest::of(&config),
        size: config.len() as u64,
    };
    let mut layers: Vec<ImageLayer> = base_layers
        .iter()
        .map(|b| ImageLayer {
            blob: BlobRef {
                media_type: oci_layer_media_type(&b.media_type),
                ..b.clone()
            },
            origin: LayerOrigin::Base,
            reused: true,
        })
        .collect();
    layers.extend(new_layers.iter().map(|l| ImageLayer {
        blob: l.blob.clone(),
        origin: l.origin,
        reused: l.reused,
    }));
    let mut builder = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(&config_blob, "config descriptor")?)
        .layers(layer_descriptors(&layers, new_layers)?);
    if !annotations.is_empty() {
        builder = builder.annotations(annotations.into_iter().collect::<HashMap<_, _>>());
    }
    let manifest = builder.build().map_err(|source| ImageError::Spec {
        what: "image manifest".into(),
        source,
    })?;
    let manifest = crate::json::manifest_bytes(&manifest)?;
    Ok(Image {
        platform: config_platform(&config)?,
        manifest_digest: Digest::of(&manifest),
        config,
        config_blob,
        manifest,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ImageSettings {
        ImageSettings {
            env: vec![("PORT".into(), "8000".into()), ("LANG".into(), "C".into())],
            port: Some(8000),
            cmd: vec!["python".into(), "main.py".into()],
            workdir: "/app".into(),
            user: "1000:1000".into(),
            labels: BTreeMap::from([
                (
                    "org.opencontainers.image.created".into(),
                    "1970-01-01T00:00:00Z".into(),
                ),
                ("a".into(), "b".into()),
            ]),
            created: "1970-01-01T00:00:00Z".into(),
        }
    }

    const BASE: &[u8] = br#"{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","config":{"Env":["PATH=/usr/bin","LANG=C.UTF-8"],"Cmd":["python3"],"Entrypoint":["tini"],"ExposedPorts":{"1/tcp":{}}},"rootfs":{"type":"layers","diff_ids":["sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]},"history":[{"created_by":"base"}],"x-unknown":{"kept":[1,2]}}"#;

    fn golden_layers() -> Vec<NewLayer> {
        let gzip = MediaType::ImageLayerGzip.to_string();
        [
            ("deps", 20, LayerOrigin::Deps),
            ("app", 30, LayerOrigin::App),
        ]
        .map(|(name, size, origin)| NewLayer {
            blob: BlobRef {
                media_type: gzip.clone(),
                digest: Digest::of(name.as_bytes()),
                size,
            },
            diff_id: Digest::of(format!("{name}-tar").as_bytes()),
            created_by: name.into(),
            origin,
            reused: false,
            annotations: BTreeMap::new(),
        })
        .to_vec()
    }

    fn golden() -> Image {
        let base_layers = vec![BlobRef {
            media_type: "application/vnd.docker.image.rootfs.diff.tar.gzip".into(),
            digest: Digest::of(b"base"),
            size: 10,
        }];
        let new_layers = golden_layers();
        let annotations = BTreeMap::from([
            (
                "org.opencontainers.image.base.name".to_owned(),
                "x/python:3".to_owned(),
            ),
            (
                "org.opencontainers.image.base.digest".to_owned(),
                Digest::of(b"m").to_string(),
            ),
        ]);
        assemble(BASE, &base_layers, &new_layers, &settings(), annotations).expect("assemble")
    }

    /// Pins the bytes pyslip has always produced for these inputs: a change here changes the
    /// digest of every image users have built.
    #[test]
    fn manifest_and_config_bytes_are_pinned() {
        let image = golden();
        assert_eq!(
            (
                image.manifest_digest.to_string(),
                image.config_blob.digest.to_string()
            ),
            (GOLDEN_MANIFEST.to_owned(), GOLDEN_CONFIG.to_owned()),
            "{}",
            String::from_utf8_lossy(&image.manifest)
        );
        assert_eq!(image.platform.to_string(), "linux/amd64");
        assert_eq!(
            image.layers[0].blob.media_type,
            MediaType::ImageLayerGzip.to_string(),
            "docker layer type rewritten to OCI"
        );
    }

    #[test]
    fn same_inputs_same_bytes() {
        // Annotations pass through a HashMap: the bytes must not depend on its order.
        let first = golden();
        for _ in 0..20 {
            assert_eq!(golden().manifest, first.manifest);
        }
    }

    #[test]
    fn layer_annotations_of_new_layers_are_written_sorted_after_the_size() {
        let mut new = golden_layers();
        new[1].annotations = BTreeMap::from([
            ("z.last".to_owned(), "2".to_owned()),
            ("a.first".to_owned(), "1".to_owned()),
        ]);
        let image = assemble(BASE, &[], &new, &settings(), BTreeMap::new()).expect("assemble");
        let text = String::from_utf8(image.manifest).expect("utf-8");
        assert!(
            text.contains(r#","size":30,"annotations":{"a.first":"1","z.last":"2"}}]"#),
            "{text}"
        );
        assert_eq!(text.matches("annotations").count(), 1, "{text}");
    }

    #[test]
    fn docker_layer_types_become_oci_types() {
        for (docker, oci) in [
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            ),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+zstd",
                "application/vnd.oci.image.layer.v1.tar+zstd",
            ),
        ] {
            assert_eq!(oci_layer_media_type(docker), oci);
        }
    }

    #[test]
    fn platform_comes_from_the_config() {
        let p = config_platform(br#"{"os":"linux","architecture":"arm64","variant":"v8"}"#)
            .expect("platform");
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(config_platform(br#"{"os":"linux"}"#).is_err());
    }

    const GOLDEN_MANIFEST: &str =
        "sha256:11d8b6321d8f69c087b355cd6f268a367050008638d8800a3a41711b9ca8a4f9";
    const GOLDEN_CONFIG: &str =
        "sha256:76bf273bacfc44907a91ccf345cb4feaa92c044bd78486be19ea73450dff9672";
}
