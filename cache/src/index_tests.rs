use std::sync::Barrier;

use layers::{EntryKind, FileSource};

use super::*;

fn cache() -> (tempfile::TempDir, Cache) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Cache::open(dir.path().join("pyslip")).expect("open");
    (dir, cache)
}

fn entries(content: &[u8]) -> Vec<LayerEntry> {
    vec![LayerEntry {
        path: "usr/lib/python3/site-packages/pkg.py".into(),
        kind: EntryKind::File(FileSource::Bytes(content.to_vec())),
        mode: 0o644,
        uid: 0,
        gid: 0,
    }]
}

const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Writes a layer and records it under [`KEY`].
fn publish(cache: &Cache, kind: LayerKind) -> (WrittenLayer, PathBuf) {
    let (layer, path) = cache
        .write_layer(entries(b"x = 1\n"), &LayerOptions { mtime: 0 })
        .expect("write layer");
    cache
        .record_layer(kind, KEY, &layer, "pyslip dependencies: uv pip install")
        .expect("record");
    (layer, path)
}

#[test]
fn a_recorded_layer_is_found_with_its_verified_blob() {
    let (_dir, cache) = cache();
    let (layer, path) = publish(&cache, LayerKind::Deps);
    assert_eq!(path, cache.blob_path(&layer.digest));
    let hit = cache.lookup_layer(LayerKind::Deps, KEY).expect("hit");
    assert_eq!(
        hit,
        CachedLayer {
            layer,
            blob_path: path,
            created_by: "pyslip dependencies: uv pip install".into(),
        }
    );
    assert!(cache.lookup_layer(LayerKind::Project, KEY).is_none());
    assert!(
        cache
            .lookup_layer(LayerKind::Deps, &"f".repeat(64))
            .is_none()
    );
}

#[test]
fn the_record_format_is_what_existing_caches_hold() {
    let (_dir, cache) = cache();
    let layer = WrittenLayer {
        digest: Digest::of(b"gz"),
        diff_id: Digest::of(b"tar"),
        size: 2,
        uncompressed_size: 3,
    };
    cache
        .record_layer(LayerKind::Static, KEY, &layer, "pyslip collectstatic")
        .expect("record");
    let path = cache.root().join("static-v1").join(format!("{KEY}.json"));
    let text = fs_err::read_to_string(path).expect("record file");
    let expected = format!(
        "{{\n  \"digest\": \"{}\",\n  \"diff_id\": \"{}\",\n  \"size\": 2,\n  \"uncompressed_size\": 3,\n  \"created_by\": \"pyslip collectstatic\"\n}}",
        layer.digest, layer.diff_id
    );
    assert_eq!(text, expected);
}

#[test]
fn a_record_whose_blob_was_tampered_with_is_a_miss() {
    let (_dir, cache) = cache();
    let (layer, path) = publish(&cache, LayerKind::Deps);
    // Same size, different bytes: only the hash can tell.
    let mut bytes = fs_err::read(&path).expect("blob");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs_err::write(&path, &bytes).expect("tamper");
    assert_eq!(fs_err::metadata(&path).expect("meta").len(), layer.size);
    assert!(cache.lookup_layer(LayerKind::Deps, KEY).is_none());
    assert!(!path.exists(), "the corrupt blob was kept");
    // Made again, it is found again.
    publish(&cache, LayerKind::Deps);
    assert!(cache.lookup_layer(LayerKind::Deps, KEY).is_some());
}

#[test]
fn a_record_whose_blob_is_missing_or_of_another_size_is_a_miss() {
    let (_dir, cache) = cache();
    let (_, path) = publish(&cache, LayerKind::Project);
    let bytes = fs_err::read(&path).expect("blob");
    fs_err::write(&path, &bytes[..bytes.len() - 1]).expect("truncate");
    assert!(cache.lookup_layer(LayerKind::Project, KEY).is_none());
    fs_err::remove_file(&path).expect("remove blob");
    assert!(cache.lookup_layer(LayerKind::Project, KEY).is_none());
}

#[test]
fn a_record_that_does_not_parse_is_a_miss() {
    let (_dir, cache) = cache();
    publish(&cache, LayerKind::Deps);
    let record = cache.root().join("deps-v1").join(format!("{KEY}.json"));
    fs_err::write(&record, b"{\"digest\": \"sha256:").expect("truncate record");
    assert!(cache.lookup_layer(LayerKind::Deps, KEY).is_none());
}

#[test]
fn keys_that_are_not_hex_are_refused() {
    let (_dir, cache) = cache();
    let (layer, _) = publish(&cache, LayerKind::Deps);
    for key in ["", "../escape", "ABC", "a/b"] {
        assert!(matches!(
            cache.record_layer(LayerKind::Deps, key, &layer, "x"),
            Err(CacheError::InvalidKey { .. })
        ));
        assert!(cache.lookup_layer(LayerKind::Deps, key).is_none());
    }
}

/// Runners sharing a cache (or publishing the same key from a registry-backed cache) may
/// write the same layer and record the same key at the same moment: every one succeeds, and
/// the result is one whole record whose blob verifies.
#[test]
fn writers_publishing_the_same_key_at_once_all_succeed() {
    const WRITERS: usize = 8;
    let (dir, _) = cache();
    let root = dir.path().join("pyslip");
    let start = Barrier::new(WRITERS);
    let results: Vec<Result<WrittenLayer, CacheError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|_| {
                scope.spawn(|| {
                    // A handle of its own, as a separate build would open it.
                    let cache = Cache::open(root.clone())?;
                    start.wait();
                    let (layer, _) =
                        cache.write_layer(entries(b"x = 1\n"), &LayerOptions { mtime: 0 })?;
                    cache.record_layer(LayerKind::Deps, KEY, &layer, "pyslip dependencies")?;
                    Ok(layer)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("writer panicked"))
            .collect()
    });
    let layers: Vec<WrittenLayer> = results
        .into_iter()
        .map(|r| r.expect("a writer failed"))
        .collect();
    assert!(layers.windows(2).all(|w| w[0] == w[1]), "{layers:?}");
    let cache = Cache::open(root).expect("open");
    let hit = cache.lookup_layer(LayerKind::Deps, KEY).expect("hit");
    assert_eq!(hit.layer, layers[0]);
    assert!(cache.verify_blob(&hit.layer.digest).expect("verify"));
    let leftovers: Vec<_> = [cache.blobs_dir(), cache.root().join("deps-v1")]
        .iter()
        .flat_map(|d| fs_err::read_dir(d).expect("list"))
        .map(|e| e.expect("entry").file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}
