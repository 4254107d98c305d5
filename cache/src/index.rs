//! The layer index: cache key → the layer pyslip made for it, one small JSON record per key in a
//! folder per kind (`deps-v1/<key>.json`, `project-v1/`, `static-v1/`), pointing into the blob
//! store.
//!
//! A record is trusted only together with its blob: a lookup checks the blob's size and sha256
//! against the record, and anything that does not match is a miss (the layer is made or fetched
//! anew, and its new record replaces the old one). Records are written like blobs (temp file,
//! fsync, rename), so two builds recording the same key at once both succeed and the survivor is
//! a whole record.

use std::path::PathBuf;

use layers::{Digest, LayerEntry, LayerOptions, WrittenLayer};
use pyslip_lifecycle::folders;
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic_with;
use crate::blobs::hash;
use crate::error::CacheError;
use crate::root::Cache;

/// Which of pyslip's cached layers: each has an index of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// Third-party dependencies.
    Deps,
    /// The project's own package.
    Project,
    /// Django's collected static files.
    Static,
}

impl LayerKind {
    /// Its name in tags, annotations and reports (`deps`, `project`, `static`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Deps => "deps",
            Self::Project => "project",
            Self::Static => "static",
        }
    }

    /// Its index folder under the cache root.
    pub fn index_dir(self) -> &'static str {
        match self {
            Self::Deps => folders::DEPS_INDEX,
            Self::Project => folders::PROJECT_INDEX,
            Self::Static => folders::STATIC_INDEX,
        }
    }
}

/// A layer found in the index, its blob verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedLayer {
    /// Digest, diff_id and sizes.
    pub layer: WrittenLayer,
    /// The gzip'd layer in the blob store.
    pub blob_path: PathBuf,
    /// The history line recorded with it.
    pub created_by: String,
}

/// One index record, as stored (field order and names are the on-disk format).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    digest: String,
    diff_id: String,
    size: u64,
    uncompressed_size: u64,
    created_by: String,
}

/// Keys are hex digests: checked before one becomes a file name.
fn check_key(key: &str) -> Result<(), CacheError> {
    if key.is_empty() || !key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(CacheError::InvalidKey {
            key: key.chars().take(100).collect(),
        });
    }
    Ok(())
}

impl Cache {
    fn record_path(&self, kind: LayerKind, key: &str) -> PathBuf {
        self.root()
            .join(kind.index_dir())
            .join(format!("{key}.json"))
    }

    /// The layer recorded under `key` in the `kind` index, when the record parses and its blob
    /// is in the store with the recorded size and digest. Anything else is a miss; a blob that
    /// does not hash to its name is removed.
    pub fn lookup_layer(&self, kind: LayerKind, key: &str) -> Option<CachedLayer> {
        check_key(key).ok()?;
        let text = fs_err::read(self.record_path(kind, key)).ok()?;
        let record: Record = serde_json::from_slice(&text).ok()?;
        let digest = Digest::parse(&record.digest).ok()?;
        let diff_id = Digest::parse(&record.diff_id).ok()?;
        let blob_path = self.blob_path(&digest);
        let file = fs_err::File::open(&blob_path).ok()?;
        if file.metadata().ok()?.len() != record.size {
            return None;
        }
        // Verify on reuse: hashing a dependency layer costs milliseconds.
        if hash(file).ok()? != digest {
            let _ = fs_err::remove_file(&blob_path);
            return None;
        }
        Some(CachedLayer {
            layer: WrittenLayer {
                digest,
                diff_id,
                size: record.size,
                uncompressed_size: record.uncompressed_size,
            },
            blob_path,
            created_by: record.created_by,
        })
    }

    /// Record `layer`, whose blob is in the store (written by [`Cache::write_layer`], or
    /// downloaded from a registry-backed cache and verified), as the result for `key` in the
    /// `kind` index.
    pub fn record_layer(
        &self,
        kind: LayerKind,
        key: &str,
        layer: &WrittenLayer,
        created_by: &str,
    ) -> Result<(), CacheError> {
        check_key(key)?;
        let record = Record {
            digest: layer.digest.to_string(),
            diff_id: layer.diff_id.to_string(),
            size: layer.size,
            uncompressed_size: layer.uncompressed_size,
            created_by: created_by.to_owned(),
        };
        let json = serde_json::to_vec_pretty(&record).map_err(std::io::Error::from)?;
        let dir = self.dir(kind.index_dir())?;
        // The temp file beside the records (a hidden name the sweep recognises).
        write_atomic_with(&dir, ".tmp-record-", &self.record_path(kind, key), |file| {
            std::io::Write::write_all(file, &json)
        })?;
        Ok(())
    }

    /// Write `entries` as a layer into the blob store (see [`crate::BlobStore::write_layer`]).
    pub fn write_layer(
        &self,
        entries: Vec<LayerEntry>,
        options: &LayerOptions,
    ) -> Result<(WrittenLayer, PathBuf), CacheError> {
        self.blobs().write_layer(entries, options)
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
