//! A tarball that both `docker load` and `podman load` accept: an OCI image layout plus Docker's
//! `manifest.json` in one archive (the shape Docker 25+ itself writes with `docker save`).

use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use crate::cache::Cache;
use crate::image::ImageParts;

/// Write the archive to `dest` atomically (temp file beside it, then rename).
pub fn write(dest: &Path, image: &ImageParts, cache: &Cache, refs: &[String]) -> Result<()> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let tmp = tempfile::NamedTempFile::new_in(&parent)
        .with_context(|| format!("creating a temp file in {}", parent.display()))?;
    {
        let mut builder = tar::Builder::new(BufWriter::with_capacity(1 << 20, tmp.as_file()));
        append_bytes(
            &mut builder,
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        let index = json!({
            "schemaVersion": 2,
            "mediaType": crate::image::OCI_INDEX,
            "manifests": super::layout::index_entries(image, refs),
        });
        append_bytes(&mut builder, "index.json", &serde_json::to_vec(&index)?)?;
        let docker_manifest = json!([{
            "Config": format!("blobs/sha256/{}", image.config_blob.digest.hex()),
            "RepoTags": refs,
            "Layers": image.layers.iter()
                .map(|l| format!("blobs/sha256/{}", l.blob.digest.hex()))
                .collect::<Vec<_>>(),
        }]);
        append_bytes(
            &mut builder,
            "manifest.json",
            &serde_json::to_vec(&docker_manifest)?,
        )?;
        append_dir(&mut builder, "blobs/")?;
        append_dir(&mut builder, "blobs/sha256/")?;
        for digest in super::blob_digests(image) {
            let path = cache.blob_path(&digest);
            let mut file = fs_err::File::open(&path)?;
            let size = file.metadata()?.len();
            let mut header = header(size, 0o644, tar::EntryType::Regular);
            builder.append_data(
                &mut header,
                format!("blobs/sha256/{}", digest.hex()),
                &mut file,
            )?;
        }
        let mut out = builder.into_inner()?;
        out.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(dest)
        .with_context(|| format!("writing {}", dest.display()))?;
    Ok(())
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
