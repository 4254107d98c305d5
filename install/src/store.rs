//! The layer indexes (`<cache>/deps-v1/<key>.json`, `project-v1/`, `static-v1/`) and the blob
//! store (`<cache>/blobs-v1/sha256/<hex>`). Every write is a temp file in `<cache>/tmp` (or the
//! target dir) renamed into place, so a killed build leaves nothing a later build trusts; temp
//! files are locked while written (`pyslip_lifecycle::scratch::temp_file_in`), so the next build
//! sweeps those a killed build left and never one a concurrent build is writing.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use layers::{Digest, LayerEntry, LayerOptions, WrittenLayer};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::InstallError;
use crate::request::DepsLayer;

/// One index record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    digest: String,
    diff_id: String,
    size: u64,
    uncompressed_size: u64,
    created_by: String,
}

/// pyslip's cache root, as this crate uses it.
pub(crate) struct Store {
    root: PathBuf,
    /// Index folder name under the root (`deps-v1`, `project-v1`, `static-v1`).
    index: &'static str,
}

fn cache_err(e: std::io::Error) -> InstallError {
    InstallError::Cache(e)
}

/// Index folder of the third-party dependency layers.
pub use pyslip_lifecycle::folders::DEPS_INDEX;
/// Index folder of the project layers.
pub use pyslip_lifecycle::folders::PROJECT_INDEX;
/// Index folder of the collectstatic layers.
pub use pyslip_lifecycle::folders::STATIC_INDEX;

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
    /// The index folder under the cache root.
    fn index(self) -> &'static str {
        match self {
            Self::Deps => DEPS_INDEX,
            Self::Project => PROJECT_INDEX,
            Self::Static => STATIC_INDEX,
        }
    }
}

/// Record `layer` (whose blob is already in the blob store at `cache_dir`, e.g. downloaded from
/// a registry-backed cache and verified) under its key in the `kind` index, so later lookups of
/// this cache find it.
pub fn record_layer(
    cache_dir: &Path,
    kind: LayerKind,
    layer: &DepsLayer,
) -> Result<(), InstallError> {
    Store::with_index(cache_dir, kind.index()).record(&layer.key, &layer.layer, &layer.created_by)
}

impl Store {
    /// The dependency-layer store under `root` (directories are created on first write).
    pub fn new(root: &Path) -> Self {
        Self::with_index(root, DEPS_INDEX)
    }

    /// The store under `root` whose records live in `<root>/<index>/`.
    pub fn with_index(root: &Path, index: &'static str) -> Self {
        Store {
            root: root.to_owned(),
            index,
        }
    }

    /// The layer recorded under `key` in the `index` store of the cache at `cache_dir`, as a
    /// reused [`DepsLayer`]; `None` when absent or when its blob no longer verifies.
    pub fn cached_layer(
        cache_dir: &Path,
        index: &'static str,
        key: String,
    ) -> Result<Option<DepsLayer>, InstallError> {
        fs_err::create_dir_all(cache_dir).map_err(cache_err)?;
        let cache_dir = fs_err::canonicalize(cache_dir).map_err(cache_err)?;
        Ok(Store::with_index(&cache_dir, index).lookup(&key).map(
            |(layer, blob_path, created_by)| DepsLayer {
                layer,
                blob_path,
                reused: true,
                created_by,
                key,
                log: String::new(),
                special_bits: Vec::new(),
            },
        ))
    }

    /// `<cache>/tmp`, created.
    pub fn tmp(&self) -> Result<PathBuf, InstallError> {
        let dir = self.root.join("tmp");
        fs_err::create_dir_all(&dir).map_err(cache_err)?;
        Ok(dir)
    }

    fn blob_dir(&self) -> PathBuf {
        self.root
            .join(pyslip_lifecycle::folders::BLOBS)
            .join("sha256")
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.root.join(self.index).join(format!("{key}.json"))
    }

    /// The layer recorded for `key`, when the record parses and its blob exists with the
    /// recorded size and digest. Anything else is a miss (and is rebuilt).
    pub fn lookup(&self, key: &str) -> Option<(WrittenLayer, PathBuf, String)> {
        let text = fs_err::read(self.record_path(key)).ok()?;
        let record: Record = serde_json::from_slice(&text).ok()?;
        let digest = Digest::parse(&record.digest).ok()?;
        let diff_id = Digest::parse(&record.diff_id).ok()?;
        let blob = self.blob_dir().join(digest.hex());
        let mut file = fs_err::File::open(&blob).ok()?;
        if file.metadata().ok()?.len() != record.size {
            return None;
        }
        // Verify on reuse: hashing a dependency layer costs milliseconds.
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            hasher.update(buf.get(..n)?);
        }
        if Digest::from_sha256(hasher.finalize().into()) != digest {
            return None;
        }
        let layer = WrittenLayer {
            digest,
            diff_id,
            size: record.size,
            uncompressed_size: record.uncompressed_size,
        };
        Some((layer, blob, record.created_by))
    }

    /// Writes `entries` as a layer into the blob store.
    pub fn write_blob(
        &self,
        entries: Vec<LayerEntry>,
        mtime: u64,
    ) -> Result<(WrittenLayer, PathBuf), InstallError> {
        let dir = self.blob_dir();
        fs_err::create_dir_all(&dir).map_err(cache_err)?;
        let temp = pyslip_lifecycle::scratch::temp_file_in(&self.tmp()?, ".tmp-deps-layer-")
            .map_err(cache_err)?;
        let mut out = BufWriter::with_capacity(256 * 1024, temp.as_file());
        let layer = layers::write_layer(entries, &LayerOptions { mtime }, &mut out)
            .map_err(InstallError::Layer)?;
        out.flush().map_err(cache_err)?;
        drop(out);
        temp.as_file().sync_all().map_err(cache_err)?;
        let dest = dir.join(layer.digest.hex());
        temp.persist(&dest).map_err(|e| cache_err(e.error))?;
        Ok((layer, dest))
    }

    /// Records `layer` as the result for `key`.
    pub fn record(
        &self,
        key: &str,
        layer: &WrittenLayer,
        created_by: &str,
    ) -> Result<(), InstallError> {
        let path = self.record_path(key);
        let dir = self.root.join(self.index);
        fs_err::create_dir_all(&dir).map_err(cache_err)?;
        let record = Record {
            digest: layer.digest.to_string(),
            diff_id: layer.diff_id.to_string(),
            size: layer.size,
            uncompressed_size: layer.uncompressed_size,
            created_by: created_by.to_owned(),
        };
        let json = serde_json::to_vec_pretty(&record).map_err(|e| cache_err(e.into()))?;
        let mut temp =
            pyslip_lifecycle::scratch::temp_file_in(&dir, ".tmp-record-").map_err(cache_err)?;
        temp.write_all(&json).map_err(cache_err)?;
        temp.as_file().sync_all().map_err(cache_err)?;
        temp.persist(&path).map_err(|e| cache_err(e.error))?;
        Ok(())
    }
}
