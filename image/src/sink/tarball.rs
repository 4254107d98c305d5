//! A tarball that both `docker load` and `podman load` accept: an OCI image layout plus Docker's
//! `manifest.json` in one archive (the shape Docker 25+ itself writes with `docker save`).
//!
//! For several platforms the layout holds the index, and `manifest.json` names one image only
//! (Docker's format has no platforms): the one for the platform asked for, normally the host's,
//! so `docker load` on engines that read only `manifest.json` (Docker 20.10) loads the image that
//! runs there.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use pyslip_registry::Platform;
use serde::Serialize;

use super::write_atomic_with;
use crate::error::ImageError;
use crate::model::{Artifact, Image};
use crate::source::{BlobBytes, LocalBlobs, local_bytes};

/// One entry of Docker's `manifest.json` (fields in the order earlier releases wrote them).
#[derive(Serialize)]
struct DockerEntry<'a> {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
    #[serde(rename = "RepoTags")]
    repo_tags: &'a [String],
}

/// The image `manifest.json` names: the one for `platform`, else the first.
pub fn docker_image<'a>(artifact: &'a Artifact, platform: &Platform) -> &'a Image {
    let images = artifact.images();
    images
        .iter()
        .find(|i| {
            platform.matches(
                &i.platform.os,
                &i.platform.architecture,
                i.platform.variant.as_deref(),
            )
        })
        .unwrap_or(&images[0])
}

fn blob_path(digest: &layers::Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// Write the archive to `dest` atomically (temp file beside it, then rename). `manifest.json`
/// names the image for `docker_platform` (see [`docker_image`]).
pub fn write(
    dest: &Path,
    artifact: &Artifact,
    local: &LocalBlobs,
    refs: &[String],
    docker_platform: &Platform,
) -> Result<(), ImageError> {
    let index = crate::json::index_bytes(&super::layout::layout_index(
        super::layout::index_entries(artifact, refs)?,
    )?)?;
    let docker = docker_image(artifact, docker_platform);
    let docker_manifest = serde_json::to_vec(&[DockerEntry {
        config: blob_path(&docker.config_blob.digest),
        layers: docker
            .layers
            .iter()
            .map(|l| blob_path(&l.blob.digest))
            .collect(),
        repo_tags: refs,
    }])
    .map_err(ImageError::Serialize)?;
    let layout_file = super::layout::layout_file()?;
    // Resolve every blob first, so a missing one fails before anything is written.
    let blobs = artifact
        .blob_digests()
        .into_iter()
        .map(|d| local_bytes(artifact, local, &d).map(|b| (d, b)))
        .collect::<Result<Vec<_>, _>>()?;
    write_atomic_with(dest, |file| {
        let mut builder = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
        append_bytes(&mut builder, "oci-layout", &layout_file)?;
        append_bytes(&mut builder, "index.json", &index)?;
        append_bytes(&mut builder, "manifest.json", &docker_manifest)?;
        append_dir(&mut builder, "blobs/")?;
        append_dir(&mut builder, "blobs/sha256/")?;
        for (digest, bytes) in &blobs {
            let name = blob_path(digest);
            match bytes {
                BlobBytes::Memory(bytes) => append_bytes(&mut builder, &name, bytes)?,
                BlobBytes::File(path) => {
                    let mut file = fs_err::File::open(path)?;
                    let size = file.metadata()?.len();
                    let mut header = header(size, 0o644, tar::EntryType::Regular);
                    builder.append_data(&mut header, &name, &mut file)?;
                }
            }
        }
        builder.into_inner()?.flush()
    })
}

fn header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(mode);
    header.set_entry_type(kind);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append_bytes<W: Write>(
    builder: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> io::Result<()> {
    let mut header = header(bytes.len() as u64, 0o644, tar::EntryType::Regular);
    builder.append_data(&mut header, name, bytes)
}

fn append_dir<W: Write>(builder: &mut tar::Builder<W>, name: &str) -> io::Result<()> {
    let mut header = header(0, 0o755, tar::EntryType::Directory);
    builder.append_data(&mut header, name, io::empty())
}
