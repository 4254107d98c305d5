//! The registry-backed layer cache (`--cache-repo REPO`): a second tier below the local cache
//! for CI runners that start with an empty disk.
//!
//! One entry is one small OCI artifact manifest in REPO, tagged `<kind>-<key>` (`deps-…`,
//! `project-…`, `static-…`; the key is the local cache's hex sha256), whose only layer is the
//! layer blob and whose annotations say what a fresh runner needs without downloading it: the
//! diff_id (for the image config), sizes, origin, history line, pyslip's layer format and the
//! key's inputs. A hit is mounted into the target repository by the push; it is downloaded only
//! when a local output, a later build step or the boot check needs its bytes, and then its
//! diff_id is verified before use.
//!
//! It is a second tier of the one local store (`pyslip_cache`), not a store of its own: a hit's
//! blob is downloaded into the local blob store and recorded in the local layer index, so the
//! next build on this runner finds it there.
//!
//! The cache is an optimisation: the first failure to reach or use REPO (network, auth,
//! server error) prints one warning line and the build goes on without it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use layers::{Digest, WrittenLayer};
use pyslip_cache::LayerKind;
use pyslip_install::DepsLayer;
use pyslip_registry::{BlobSource, ClientConfig, RetryPolicy};
use pyslip_registry::{
    Client, Descriptor, ManifestToPush, PushBlob, RegistryError, RepoRef, media_types,
};
use serde_json::{Value, json};

use crate::cache::Cache;
use crate::commands::UserError;
use crate::commands::report::Printer;

/// `artifactType` of a cache entry.
pub const ENTRY_ARTIFACT_TYPE: &str = "application/vnd.pyslip.layer-cache.v1";
/// The empty config every entry carries (OCI 1.1's empty descriptor).
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_CONFIG: &[u8] = b"{}";

/// Annotation names of an entry, as data: (field, annotation).
mod annotation {
    pub const KEY: &str = "dev.pyslip.cache.key";
    pub const ORIGIN: &str = "dev.pyslip.cache.origin";
    pub const LAYER_FORMAT: &str = "dev.pyslip.cache.layer-format";
    pub const DIGEST: &str = "dev.pyslip.cache.digest";
    pub const DIFF_ID: &str = "dev.pyslip.cache.diff-id";
    pub const SIZE: &str = "dev.pyslip.cache.size";
    pub const UNCOMPRESSED_SIZE: &str = "dev.pyslip.cache.uncompressed-size";
    pub const CREATED_BY: &str = "dev.pyslip.cache.created-by";
    pub const INPUTS: &str = "dev.pyslip.cache.inputs";
}

/// Where a layer of this build came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Made by this build.
    Built,
    /// Taken from the local cache.
    Local,
    /// Taken from the cache repository.
    CacheRepo,
}

impl Reuse {
    /// From the install crate's `reused` flag (it knows only the local cache).
    pub fn local(reused: bool) -> Self {
        if reused { Self::Local } else { Self::Built }
    }
}

/// A cache repository in use by one build.
pub struct CacheRepo {
    repo: RepoRef,
    readonly: bool,
    /// A client with few retries: a cache that does not answer must not hold the build up.
    client: Client,
    /// Set on the first failure; the cache is then left alone for the rest of the build.
    broken: AtomicBool,
}

impl CacheRepo {
    /// The cache repository of this build: `--cache-repo` / `PYSLIP_CACHE_REPO`, else the
    /// configuration's `cache-repo`; `None` when neither is set.
    pub fn from_settings(
        flag: Option<&str>,
        config: Option<&pyslip_plan::Decision<String>>,
        readonly: bool,
        base_config: ClientConfig,
    ) -> Result<Option<Self>> {
        let (value, source) = match (flag, config) {
            (Some(value), _) => (value.to_owned(), "--cache-repo".to_owned()),
            (None, Some(decision)) => (
                decision.value.clone(),
                match &decision.source {
                    pyslip_plan::Source::Config { file, key } => format!("{key} in {file}"),
                    _ => "cache-repo".to_owned(),
                },
            ),
            (None, None) => {
                if readonly {
                    return Err(UserError::new(
                        "--cache-repo-readonly needs a cache repository",
                        "add --cache-repo REGISTRY/REPOSITORY (or set PYSLIP_CACHE_REPO)",
                    )
                    .into());
                }
                return Ok(None);
            }
        };
        let repo = RepoRef::parse(&value).map_err(|err| {
            UserError::new(
                format!("{source} {value:?} is not a repository: {err}"),
                "give REGISTRY/REPOSITORY without a tag, e.g. --cache-repo ghcr.io/acme/app-cache",
            )
        })?;
        let client = Client::new(ClientConfig {
            retry: RetryPolicy {
                max_retries: 1,
                ..RetryPolicy::default()
            },
            ..base_config
        })?;
        Ok(Some(Self {
            repo,
            readonly,
            client,
            broken: AtomicBool::new(false),
        }))
    }

    /// The repository.
    pub fn repo(&self) -> &RepoRef {
        &self.repo
    }

    /// `(count, bytes)` of blobs this cache's client downloaded.
    pub fn blobs_received(&self) -> (u64, u64) {
        self.client.blobs_received()
    }

    fn usable(&self) -> bool {
        !self.broken.load(Ordering::Relaxed)
    }

    /// The first failure: one warning, then the cache is left alone.
    fn fail(&self, printer: &Printer, what: &str, err: &dyn std::fmt::Display) {
        if !self.broken.swap(true, Ordering::Relaxed) {
            printer.warn(&format!(
                "cache repo {}: {what} failed ({err}); building without it",
                self.repo
            ));
        }
    }

    fn tag(kind: LayerKind, key: &str) -> String {
        format!("{}-{key}", kind.name())
    }

    /// Look `key` up; a hit is a [`DepsLayer`] whose blob may not be in the local store yet
    /// (see [`CacheRepo::download`]). A missing entry is a quiet miss; an entry that does not
    /// describe a layer this pyslip would write is a miss with a warning.
    pub async fn lookup(
        &self,
        kind: LayerKind,
        key: &str,
        cache: &Cache,
        printer: &Printer,
    ) -> Option<DepsLayer> {
        if !self.usable() {
            return None;
        }
        let tag = Self::tag(kind, key);
        let reference = self.repo.tag(&tag).ok()?;
        let fetched = match self.client.fetch_manifest(&reference).await {
            Ok(fetched) => fetched,
            Err(RegistryError::ManifestUnknown { .. }) => return None,
            Err(err) => {
                self.fail(printer, "lookup", &err);
                return None;
            }
        };
        match parse_entry(&fetched.bytes, kind, key) {
            Ok((layer, created_by)) => Some(DepsLayer {
                blob_path: cache.blob_path(&layer.digest),
                layer,
                reused: true,
                created_by,
                key: key.to_owned(),
                log: String::new(),
                special_bits: Vec::new(),
            }),
            Err(err) => {
                printer.warn(&format!(
                    "cache repo entry {reference} is not usable ({err:#}); not using it"
                ));
                None
            }
        }
    }

    /// Download a hit's blob into the local store (digest and size verified on the way), verify
    /// its diff_id against the entry, and record it in the local index. On failure the layer
    /// must not be used (a wrong blob stays out of every index).
    pub async fn download(&self, kind: LayerKind, layer: &DepsLayer, cache: &Cache) -> Result<()> {
        let descriptor = Descriptor {
            media_type: media_types::OCI_LAYER_GZIP.to_owned(),
            digest: layer.layer.digest.clone(),
            size: layer.layer.size,
        };
        let dest = cache.blob_path(&descriptor.digest);
        if !dest.is_file() {
            self.client
                .fetch_blob(&self.repo, &descriptor, &dest)
                .await
                .with_context(|| format!("downloading {} from {}", descriptor.digest, self.repo))?;
        }
        let path = dest.clone();
        let (diff_id, _) =
            tokio::task::spawn_blocking(move || layers::diff_id_of(fs_err::File::open(&path)?))
                .await
                .context("diff_id task failed")?
                .with_context(|| format!("reading {}", dest.display()))?;
        if diff_id != layer.layer.diff_id {
            bail!(
                "blob {} of {} has diff_id {diff_id}, not the {} its entry states",
                descriptor.digest,
                self.repo,
                layer.layer.diff_id
            );
        }
        cache.record_layer(kind, &layer.key, &layer.layer, &layer.created_by)?;
        Ok(())
    }

    /// Publish `layer` under its key (unless read-only, broken, or already there with this
    /// layer). Two runners publishing one key at once both succeed: the blob and the manifest
    /// bytes are the same, and a registry takes a repeated put of identical content.
    pub async fn publish(
        &self,
        kind: LayerKind,
        layer: &DepsLayer,
        inputs: Option<&str>,
        printer: &Printer,
    ) {
        if self.readonly || !self.usable() {
            return;
        }
        let tag = Self::tag(kind, &layer.key);
        let Ok(reference) = self.repo.tag(&tag) else {
            return;
        };
        if let Ok(fetched) = self.client.fetch_manifest(&reference).await
            && parse_entry(&fetched.bytes, kind, &layer.key).is_ok_and(|(l, _)| l == layer.layer)
        {
            return;
        }
        let manifest = entry_manifest(kind, layer, inputs);
        let blobs = vec![
            PushBlob {
                digest: layer.layer.digest.clone(),
                size: layer.layer.size,
                media_type: media_types::OCI_LAYER_GZIP.to_owned(),
                source: BlobSource::File(layer.blob_path.clone()),
            },
            PushBlob {
                digest: Digest::of(EMPTY_CONFIG),
                size: EMPTY_CONFIG.len() as u64,
                media_type: EMPTY_MEDIA_TYPE.to_owned(),
                source: BlobSource::Bytes(Bytes::from_static(EMPTY_CONFIG)),
            },
        ];
        let body = ManifestToPush {
            media_type: media_types::OCI_MANIFEST.to_owned(),
            bytes: Bytes::from(manifest.to_string()),
        };
        if let Err(err) = self.client.push(&reference, &[], blobs, body).await {
            self.fail(printer, "publishing", &err);
        }
    }
}

/// One of pyslip's layers of this build, for publishing.
pub struct Made<'a> {
    /// Which layer.
    pub kind: LayerKind,
    /// The layer.
    pub layer: &'a DepsLayer,
    /// Where it came from (cache-repo hits are not published again).
    pub reuse: Reuse,
}

/// Publish every layer of `made` that did not come from `repo`, with the key inputs recorded
/// in the image's layer annotations (`new_layers`, matched by digest). Sequential: at most
/// three small pushes, run while the image itself is pushed.
pub async fn publish_all(
    repo: Option<&CacheRepo>,
    made: &[Made<'_>],
    new_layers: &[pyslip_image::NewLayer],
    printer: &Printer,
) {
    let Some(repo) = repo else { return };
    for m in made.iter().filter(|m| m.reuse != Reuse::CacheRepo) {
        let inputs = new_layers
            .iter()
            .find(|n| n.blob.digest == m.layer.layer.digest)
            .and_then(|n| {
                n.annotations
                    .get(crate::commands::inspect::INPUTS_ANNOTATION)
            });
        repo.publish(m.kind, m.layer, inputs.map(String::as_str), printer)
            .await;
    }
}

/// Layer blobs this build received, `(count, bytes)`: downloads by `client` and by the cache
/// repository's client, and layers a push streamed from another registry.
pub fn received(
    client: &Client,
    repo: Option<&CacheRepo>,
    pushes: &[pyslip_image::sink::remote::Pushed],
) -> (u64, u64) {
    let (mut count, mut bytes) = client.blobs_received();
    if let Some(repo) = repo {
        let (c, b) = repo.blobs_received();
        count += c;
        bytes += b;
    }
    for blob in pushes.iter().flat_map(|p| p.blobs()) {
        if blob.outcome == pyslip_registry::BlobOutcome::CopiedFromRegistry {
            count += 1;
            bytes += blob.size;
        }
    }
    (count, bytes)
}

/// The entry manifest of `layer`.
fn entry_manifest(kind: LayerKind, layer: &DepsLayer, inputs: Option<&str>) -> Value {
    let l = &layer.layer;
    let mut annotations: BTreeMap<&str, String> = BTreeMap::from([
        (annotation::KEY, layer.key.clone()),
        (annotation::ORIGIN, kind.name().to_owned()),
        (annotation::LAYER_FORMAT, layers::LAYER_FORMAT.to_owned()),
        (annotation::DIGEST, l.digest.to_string()),
        (annotation::DIFF_ID, l.diff_id.to_string()),
        (annotation::SIZE, l.size.to_string()),
        (
            annotation::UNCOMPRESSED_SIZE,
            l.uncompressed_size.to_string(),
        ),
        (annotation::CREATED_BY, layer.created_by.clone()),
    ]);
    if let Some(inputs) = inputs {
        annotations.insert(annotation::INPUTS, inputs.to_owned());
    }
    json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "artifactType": ENTRY_ARTIFACT_TYPE,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": Digest::of(EMPTY_CONFIG).to_string(),
            "size": EMPTY_CONFIG.len(),
        },
        "layers": [{
            "mediaType": media_types::OCI_LAYER_GZIP,
            "digest": l.digest.to_string(),
            "size": l.size,
        }],
        "annotations": annotations,
    })
}

/// The layer an entry describes, and its history line, when the entry is for `kind`/`key`,
/// in this pyslip's layer format, and its one layer is the blob its annotations name.
fn parse_entry(bytes: &[u8], kind: LayerKind, key: &str) -> Result<(WrittenLayer, String)> {
    let v: Value = serde_json::from_slice(bytes).context("not JSON")?;
    if v["artifactType"] != ENTRY_ARTIFACT_TYPE {
        bail!("artifactType is not {ENTRY_ARTIFACT_TYPE}");
    }
    let a = |name: &str| -> Result<String> {
        v["annotations"][name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("annotation {name} missing"))
    };
    let expect = |name: &str, want: &str| -> Result<()> {
        let got = a(name)?;
        if got != want {
            bail!("annotation {name} is {got:?}, expected {want:?}");
        }
        Ok(())
    };
    expect(annotation::KEY, key)?;
    expect(annotation::ORIGIN, kind.name())?;
    expect(annotation::LAYER_FORMAT, layers::LAYER_FORMAT)?;
    let number = |name: &str| -> Result<u64> {
        a(name)?
            .parse()
            .with_context(|| format!("annotation {name} is not a number"))
    };
    let layer = WrittenLayer {
        digest: Digest::parse(&a(annotation::DIGEST)?).context("layer digest")?,
        diff_id: Digest::parse(&a(annotation::DIFF_ID)?).context("diff_id")?,
        size: number(annotation::SIZE)?,
        uncompressed_size: number(annotation::UNCOMPRESSED_SIZE)?,
    };
    let blobs = v["layers"].as_array().context("no layers")?;
    let [only] = blobs.as_slice() else {
        bail!("{} layers, expected one", blobs.len());
    };
    if only["digest"] != layer.digest.to_string() || only["size"] != layer.size {
        bail!(
            "its layer {} is not the blob its annotations name ({})",
            only["digest"],
            layer.digest
        );
    }
    if only["mediaType"] != media_types::OCI_LAYER_GZIP {
        bail!("its layer is not a gzip'd OCI layer");
    }
    Ok((layer, a(annotation::CREATED_BY)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer() -> DepsLayer {
        DepsLayer {
            layer: WrittenLayer {
                digest: Digest::of(b"gz"),
                diff_id: Digest::of(b"tar"),
                size: 2,
                uncompressed_size: 3,
            },
            blob_path: "/nowhere".into(),
            reused: false,
            created_by: "pyslip: install".into(),
            key: "ab".repeat(32),
            log: String::new(),
            special_bits: Vec::new(),
        }
    }

    #[test]
    fn an_entry_reads_back_as_the_layer_it_was_made_from() {
        let l = layer();
        let bytes = entry_manifest(LayerKind::Deps, &l, Some("{}")).to_string();
        let (parsed, created_by) =
            parse_entry(bytes.as_bytes(), LayerKind::Deps, &l.key).expect("parses");
        assert_eq!(parsed, l.layer);
        assert_eq!(created_by, l.created_by);
        assert!(CacheRepo::tag(LayerKind::Static, &l.key).len() <= 128);
    }

    #[test]
    fn entries_for_another_key_kind_or_blob_are_refused() {
        let l = layer();
        let v = entry_manifest(LayerKind::Deps, &l, None);
        let bytes = v.to_string();
        assert!(parse_entry(bytes.as_bytes(), LayerKind::Project, &l.key).is_err());
        assert!(parse_entry(bytes.as_bytes(), LayerKind::Deps, &"cd".repeat(32)).is_err());
        let mut swapped = v.clone();
        swapped["layers"][0]["digest"] = json!(Digest::of(b"other").to_string());
        let bytes = swapped.to_string();
        let err = parse_entry(bytes.as_bytes(), LayerKind::Deps, &l.key).expect_err("refused");
        assert!(err.to_string().contains("not the blob"), "{err}");
    }
}
