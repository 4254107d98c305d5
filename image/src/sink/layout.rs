//! OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`).
//!
//! Adding an image keeps what is there: entries of `index.json` with another name stay, an entry
//! with the same `org.opencontainers.image.ref.name` is replaced, blobs already present are kept.
//! Several builds may write one layout at once: `index.json` is changed under a lock
//! ([`super::lock`]) and renamed into place, and blobs appear by rename.

use std::collections::HashMap;
use std::path::Path;

use oci_spec::image::{
    ANNOTATION_REF_NAME, Descriptor, ImageIndex, ImageIndexBuilder, MediaType, OciLayout,
    OciLayoutBuilder,
};

use super::lock::{LOCK_FILE, LayoutLock};
use super::{copy_atomic, tag_of, write_atomic};
use crate::assemble::descriptor;
use crate::error::ImageError;
use crate::model::{Artifact, BlobRef};
use crate::source::{BlobBytes, LocalBlobs, local_bytes};

/// containerd's (and Docker 25+'s) annotation carrying the full image name.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The layout version pyslip writes and reads.
const LAYOUT_VERSION: &str = "1.0.0";

/// Write `artifact` into the layout at `dir` (created when missing) under each of `refs` (or
/// as one unnamed entry when there are none).
pub fn write(
    dir: &Path,
    artifact: &Artifact,
    local: &LocalBlobs,
    refs: &[String],
) -> Result<(), ImageError> {
    refuse_foreign_dir(dir)?;
    fs_err::create_dir_all(dir)?;
    {
        let _lock = LayoutLock::acquire(dir)?;
        prepare(dir)?;
    }
    let blobs = dir.join("blobs").join("sha256");
    fs_err::create_dir_all(&blobs)?;
    for digest in artifact.blob_digests() {
        let dest = blobs.join(digest.hex());
        if dest.exists() {
            continue;
        }
        match local_bytes(artifact, local, &digest)? {
            BlobBytes::Memory(bytes) => write_atomic(&dest, bytes)?,
            BlobBytes::File(src) => copy_atomic(&src, &dest)?,
        }
    }
    let _lock = LayoutLock::acquire(dir)?;
    let index_path = dir.join("index.json");
    let mut manifests = read_index(&index_path)?;
    for entry in index_entries(artifact, refs)? {
        let name = ref_name(&entry).map(str::to_owned);
        manifests.retain(|m| match &name {
            Some(name) => ref_name(m) != Some(name),
            None => m.digest() != entry.digest() || m.annotations().is_some(),
        });
        manifests.push(entry);
    }
    write_atomic(
        &index_path,
        &crate::json::index_bytes(&layout_index(manifests)?)?,
    )
}

/// Run `f` while holding the layout's lock: for other writers of its `index.json` (a referrer
/// added next to an image) so that they and concurrent builds keep each other's entries.
pub fn locked<T>(dir: &Path, f: impl FnOnce() -> T) -> Result<T, ImageError> {
    let _lock = LayoutLock::acquire(dir)?;
    Ok(f())
}

fn ref_name(entry: &Descriptor) -> Option<&str> {
    entry
        .annotations()
        .as_ref()?
        .get(ANNOTATION_REF_NAME)
        .map(String::as_str)
}

/// The layout's `index.json` entries for an artifact: one per reference (named by its tag,
/// with the full name for containerd), or one unnamed entry.
pub fn index_entries(artifact: &Artifact, refs: &[String]) -> Result<Vec<Descriptor>, ImageError> {
    let top = BlobRef {
        media_type: artifact.media_type().to_string(),
        digest: artifact.digest().clone(),
        size: artifact.top_bytes().len() as u64,
    };
    let base = descriptor(&top, "layout index entry")?;
    if refs.is_empty() {
        return Ok(vec![base]);
    }
    Ok(refs
        .iter()
        .map(|r| {
            let mut entry = base.clone();
            entry.set_annotations(Some(HashMap::from([
                (ANNOTATION_REF_NAME.to_owned(), tag_of(r).to_owned()),
                (CONTAINERD_NAME.to_owned(), r.clone()),
            ])));
            entry
        })
        .collect())
}

/// An `index.json` over `manifests`.
pub(crate) fn layout_index(manifests: Vec<Descriptor>) -> Result<ImageIndex, ImageError> {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .map_err(|source| ImageError::Spec {
            what: "layout index".into(),
            source,
        })
}

/// The `oci-layout` file's bytes.
pub(crate) fn layout_file() -> Result<Vec<u8>, ImageError> {
    let layout: OciLayout = OciLayoutBuilder::default()
        .image_layout_version(LAYOUT_VERSION)
        .build()
        .map_err(|source| ImageError::Spec {
            what: "oci-layout file".into(),
            source,
        })?;
    serde_json::to_vec(&layout).map_err(ImageError::Serialize)
}

/// Refuse a directory that has files but is no layout, before creating anything in it. A lock
/// file means another build is making it a layout: [`prepare`] decides under the lock.
fn refuse_foreign_dir(dir: &Path) -> Result<(), ImageError> {
    if !dir.exists() || dir.join("oci-layout").exists() || dir.join(LOCK_FILE).exists() {
        return Ok(());
    }
    refuse_unless_empty(dir)
}

/// Refuse a directory with anything in it but the lock file and pyslip's temp files.
fn refuse_unless_empty(dir: &Path) -> Result<(), ImageError> {
    let ours = |name: &std::ffi::OsStr| {
        name == LOCK_FILE || name.to_string_lossy().starts_with(super::TEMP_PREFIX)
    };
    for entry in fs_err::read_dir(dir)? {
        if !ours(&entry?.file_name()) {
            return Err(ImageError::LayoutNotEmpty {
                dir: dir.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Check the `oci-layout` file, or write it into a new layout (under the lock).
fn prepare(dir: &Path) -> Result<(), ImageError> {
    let marker = dir.join("oci-layout");
    if marker.exists() {
        let bad = |problem: &str| ImageError::LayoutFile {
            path: marker.clone(),
            problem: problem.to_owned(),
        };
        let layout: OciLayout = serde_json::from_slice(&fs_err::read(&marker)?)
            .map_err(|_| bad("is not a valid oci-layout file"))?;
        if layout.image_layout_version() != LAYOUT_VERSION {
            return Err(bad("names an unsupported layout version"));
        }
        return Ok(());
    }
    refuse_unless_empty(dir)?;
    write_atomic(&marker, &layout_file()?)
}

fn read_index(path: &Path) -> Result<Vec<Descriptor>, ImageError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let index: ImageIndex =
        serde_json::from_slice(&fs_err::read(path)?).map_err(|e| ImageError::LayoutFile {
            path: path.to_path_buf(),
            problem: format!("is not a valid image index ({e})"),
        })?;
    Ok(index.manifests().clone())
}
