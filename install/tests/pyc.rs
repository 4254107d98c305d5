//! The bytecode cache: a rebuild whose sources were compiled before restores their `.pyc`
//! files instead of compiling them, and the layer is byte-identical to one compiled from
//! scratch; an entry that does not verify is compiled anew. Both install paths, as the
//! unprivileged test user.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use common::{Build, copy_app, tar_bytes, tempdir};
use pyslip_install::Isolation;
use sha2::{Digest as _, Sha256};

/// The fixture bases are Debian-built: site modules go to `dist-packages`.
const FLASK_PYC: &str =
    "usr/local/lib/python3.13/dist-packages/flask/__pycache__/app.cpython-313.pyc";

/// The bytes of `path` in the layer blob at `blob`.
fn file_in_layer(blob: &Path, path: &str) -> Vec<u8> {
    let tar = tar_bytes(blob);
    let mut archive = tar::Archive::new(tar.as_slice());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some(path) {
            let mut out = Vec::new();
            entry.read_to_end(&mut out).unwrap();
            return out;
        }
    }
    panic!(
        "{path} is not in {}:\n{}",
        blob.display(),
        common::listing(blob)
            .lines()
            .filter(|l| l.contains("flask/"))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Every entry file of the bytecode cache.
fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for shard in fs_err::read_dir(cache.join("pyc-v1")).unwrap() {
        let shard = shard.unwrap().path();
        if shard.is_dir() {
            out.extend(fs_err::read_dir(&shard).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out
}

/// The entry whose payload (after its 32-byte checksum) is `pyc`.
fn entry_holding(cache: &Path, pyc: &[u8]) -> PathBuf {
    entries(cache)
        .into_iter()
        .find(|e| fs_err::read(e).unwrap().get(32..) == Some(pyc))
        .expect("no bytecode cache entry holds the layer's .pyc")
}

/// Rebuilds the dependency layer (the layer index removed, the bytecode cache kept).
fn rebuild(build: &Build) -> pyslip_install::DepsLayer {
    fs_err::remove_dir_all(build.cache.join("deps-v1")).unwrap();
    build.run().unwrap()
}

fn restores_what_it_compiled(isolation: Isolation) {
    let dir = tempdir();
    let project = copy_app("flask-requirements", dir.path());
    let mut build = Build::on_base(&project, &dir.path().join("cache"), "3.13");
    build.isolation = isolation;
    let first = build.run().unwrap();
    assert!(!first.reused);
    let compiled = file_in_layer(&first.blob_path, FLASK_PYC);
    assert!(
        entries(&build.cache).len() > 50,
        "the compiled modules were not recorded"
    );

    // A verified entry is used as it is: a payload changed behind a valid checksum shows up
    // in the layer (which proves the restore; nothing else writes those bytes).
    let entry = entry_holding(&build.cache, &compiled);
    let mut planted = compiled.clone();
    planted.push(b'\n');
    let mut bytes = Sha256::digest(&planted).to_vec();
    bytes.extend_from_slice(&planted);
    fs_err::write(&entry, &bytes).unwrap();
    let poisoned = rebuild(&build);
    assert_eq!(file_in_layer(&poisoned.blob_path, FLASK_PYC), planted);

    // An entry whose checksum does not hold is compiled anew: the layer is the first one.
    bytes.truncate(bytes.len() - 2);
    fs_err::write(&entry, &bytes).unwrap();
    let again = rebuild(&build);
    assert_eq!(again.layer.digest, first.layer.digest);

    // Restored from the cache (the entry was rewritten by the last build): the same bytes
    // as the compile from scratch.
    let restored = rebuild(&build);
    assert_eq!(restored.layer.digest, first.layer.digest);
    assert_eq!(fs_err::read(&entry).unwrap().get(32..), Some(&compiled[..]));

    // `--no-cache` compiles everything, and the result is the same layer.
    build.no_cache = true;
    let fresh = build.run().unwrap();
    assert_eq!(fresh.layer.digest, first.layer.digest);
}

rootless_test! {
    /// In the namespace sandbox (the cache restores into the overlay's upper dir).
    fn sandbox_restores_what_it_compiled() {
        restores_what_it_compiled(Isolation::Namespaces);
    }
}

rootless_test! {
    /// Without namespaces (the cache restores into the staging tree).
    fn namespace_free_restores_what_it_compiled() {
        restores_what_it_compiled(Isolation::None);
    }
}
