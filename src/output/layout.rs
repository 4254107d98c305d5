//! OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`).
//!
//! Adding an image keeps what is there: entries of `index.json` with another name stay, an entry
//! with the same `org.opencontainers.image.ref.name` is replaced, blobs already present are kept.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cache::Cache;
use crate::image::{ImageParts, OCI_INDEX, OCI_MANIFEST};

/// The annotation naming an image in a layout (what `skopeo copy oci:DIR:NAME` selects by).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and Docker 25+'s) annotation carrying the full image name.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
const LAYOUT_FILE: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// Write `image` into the layout at `dir` (created when missing) under each of `refs`.
pub fn write(dir: &Path, image: &ImageParts, cache: &Cache, refs: &[String]) -> Result<()> {
    prepare_dir(dir)?;
    let blobs = dir.join("blobs").join("sha256");
    fs_err::create_dir_all(&blobs)?;
    for digest in super::blob_digests(image) {
        let dest = blobs.join(digest.hex());
        if dest.exists() {
            continue;
        }
        let src = cache.blob_path(&digest);
        // A hard link is instant when the layout is on the cache's file system; copy otherwise.
        if fs_err::hard_link(&src, &dest).is_err() {
            let tmp = tempfile::NamedTempFile::new_in(&blobs)?;
            fs_err::copy(&src, tmp.path())?;
            tmp.as_file().sync_all()?;
            tmp.persist(&dest)
                .with_context(|| format!("writing {}", dest.display()))?;
        }
    }
    let index_path = dir.join("index.json");
    let mut index = read_index(&index_path)?;
    let manifests = index
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .with_context(|| format!("{} has no manifests list", index_path.display()))?;
    for entry in index_entries(image, refs) {
        let name = entry["annotations"][REF_NAME].as_str().map(str::to_owned);
        manifests.retain(|m| match &name {
            Some(name) => m["annotations"][REF_NAME].as_str() != Some(name),
            None => m["digest"] != entry["digest"] || m.get("annotations").is_some(),
        });
        manifests.push(entry);
    }
    let bytes = serde_json::to_vec(&index)?;
    write_file_atomic(dir, &index_path, &bytes)?;
    Ok(())
}

/// The `index.json` entries for an image: one per reference, or one unnamed entry.
pub fn index_entries(image: &ImageParts, refs: &[String]) -> Vec<Value> {
    let base = json!({
        "mediaType": OCI_MANIFEST,
        "digest": image.manifest_digest.to_string(),
        "size": image.manifest.len(),
    });
    if refs.is_empty() {
        return vec![base];
    }
    refs.iter()
        .map(|r| {
            let mut entry = base.clone();
            entry["annotations"] = json!({
                REF_NAME: super::tag_of(r),
                CONTAINERD_NAME: r,
            });
            entry
        })
        .collect()
}

fn prepare_dir(dir: &Path) -> Result<()> {
    let marker = dir.join("oci-layout");
    if marker.exists() {
        let text = fs_err::read_to_string(&marker)?;
        let version: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", marker.display()))?;
        if version["imageLayoutVersion"] != "1.0.0" {
            bail!("{} names an unsupported layout version", marker.display());
        }
        return Ok(());
    }
    if dir.exists() && fs_err::read_dir(dir)?.next().is_some() {
        bail!(
            "--oci-layout {}: the directory exists, is not empty and is not an OCI layout (no oci-layout file); refusing to write into it",
            dir.display()
        );
    }
    fs_err::create_dir_all(dir)?;
    write_file_atomic(dir, &marker, LAYOUT_FILE.as_bytes())
}

fn read_index(path: &Path) -> Result<Value> {
    if !path.exists() {
        return Ok(json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}));
    }
    let bytes = fs_err::read(path)?;
    let index: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    if !index["manifests"].is_array() {
        bail!("{} has no manifests list", path.display());
    }
    Ok(index)
}

fn write_file_atomic(dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(dest)
        .with_context(|| format!("writing {}", dest.display()))?;
    Ok(())
}
