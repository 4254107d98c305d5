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

/// The entry (one per package) holding `pyc`, and where in it.
fn entry_holding(cache: &Path, pyc: &[u8]) -> (PathBuf, usize) {
    entries(cache)
        .into_iter()
        .find_map(|e| {
            let bytes = fs_err::read(&e).unwrap();
            let at = bytes.windows(pyc.len()).position(|w| w == pyc)?;
            Some((e, at))
        })
        .expect("no bytecode cache entry holds the layer's .pyc")
}

/// Rewrites the entry at `path` with `change` applied to its payload; `valid` keeps its
/// checksum right.
fn rewrite(path: &Path, change: impl FnOnce(&mut Vec<u8>), valid: bool) {
    let bytes = fs_err::read(path).unwrap();
    let mut payload = bytes[32..].to_vec();
    change(&mut payload);
    let mut out = match valid {
        true => Sha256::digest(&payload).to_vec(),
        false => bytes[..32].to_vec(),
    };
    out.extend_from_slice(&payload);
    fs_err::write(path, out).unwrap();
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
        entries(&build.cache).len() > 3,
        "the compiled packages were not recorded"
    );

    // A verified entry is used as it is: a `.pyc` changed behind a valid checksum shows up in
    // the layer (which proves the restore; nothing else writes those bytes).
    let (entry, at) = entry_holding(&build.cache, &compiled);
    let last = at + compiled.len() - 1;
    let mut planted = compiled.clone();
    *planted.last_mut().unwrap() ^= 0xff;
    rewrite(&entry, |p| p[last - 32] ^= 0xff, true);
    let poisoned = rebuild(&build);
    assert_eq!(file_in_layer(&poisoned.blob_path, FLASK_PYC), planted);

    // An entry whose checksum does not hold is compiled anew: the layer is the first one.
    rewrite(&entry, |p| p[last - 32] ^= 0x0f, false);
    let again = rebuild(&build);
    assert_eq!(again.layer.digest, first.layer.digest);

    // Restored from the cache (the entry was rewritten by the last build): the same bytes
    // as the compile from scratch.
    let restored = rebuild(&build);
    assert_eq!(restored.layer.digest, first.layer.digest);
    assert_eq!(entry_holding(&build.cache, &compiled).0, entry);

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

rootless_test! {
    /// What the compiler writes for a package does not depend on which other packages were
    /// compiled in the same run (each package is compiled in a fresh process): with part of
    /// the packages restored and the rest compiled, the layer is the one compiled from scratch.
    /// Python 3.14's marshal output does depend on what its process compiled before.
    fn a_partly_restored_layer_is_the_one_compiled_from_scratch() {
        let dir = tempdir();
        let project = copy_app("flask-requirements", dir.path());
        let build = Build::on_base(&project, &dir.path().join("cache"), "3.14");
        let first = build.run().unwrap();
        let all = entries(&build.cache);
        assert!(all.len() > 3, "{all:?}");
        for (i, entry) in all.iter().enumerate() {
            if i % 2 == 0 {
                fs_err::remove_file(entry).unwrap();
            }
        }
        let mixed = rebuild(&build);
        assert_eq!(mixed.layer.digest, first.layer.digest);
    }
}
