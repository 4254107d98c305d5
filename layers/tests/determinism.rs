//! docs/reliability.md, case 26, for layers: same inputs → same layer digests across runs, umask,
//! clock and file creation order; and a written layer unpacks back to the same tree.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use layers::{
    EntryKind, FileSource, LayerEntry, LayerOptions, UnpackLimits, WrittenLayer, tree_entries,
    unpack_layer, write_layer,
};
use rustix::fs::Mode;

const FILES: &[(&str, &str, bool)] = &[
    (
        "app.py",
        "from flask import Flask\napp = Flask(__name__)\n",
        false,
    ),
    ("pkg/__init__.py", "", false),
    ("pkg/mod.py", "X = 1\n", false),
    ("bin/run", "#!/bin/sh\nexec python app.py\n", true),
    ("static/css/site.css", "body { margin: 0 }\n", false),
    (
        "very/long/directory/name/that/goes/on/and/on/beyond/the/hundred/byte/ustar/limit/of/names/file.txt",
        "long\n",
        false,
    ),
];

/// Create the sample project in `dir`, in forward or reverse order, with the given mtime.
fn make_tree(dir: &Path, reverse: bool, mtime: Option<SystemTime>) {
    let mut files: Vec<_> = FILES.to_vec();
    if reverse {
        files.reverse();
    }
    if !reverse {
        fs::create_dir_all(dir.join("data")).unwrap();
    }
    for (path, content, exec) in files {
        let p = dir.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        if exec {
            let mode = fs::metadata(&p).unwrap().permissions().mode() | 0o111;
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        }
        if let Some(t) = mtime {
            fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
    }
    if reverse {
        fs::create_dir_all(dir.join("data")).unwrap();
    }
    std::os::unix::fs::symlink("app.py", dir.join("link")).unwrap();
}

fn write(entries: Vec<LayerEntry>, mtime: u64) -> (WrittenLayer, Vec<u8>) {
    let mut out = Vec::new();
    let layer = write_layer(entries, &LayerOptions { mtime }, &mut out).unwrap();
    (layer, out)
}

#[test]
fn same_tree_gives_same_digest_across_umask_mtime_and_creation_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    // The umask is process-wide: this is the only test in this binary that changes it.
    let old = rustix::process::umask(Mode::from_raw_mode(0o022));
    make_tree(
        &a,
        false,
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)),
    );
    rustix::process::umask(Mode::from_raw_mode(0o077));
    make_tree(&b, true, None);
    rustix::process::umask(old);
    assert_ne!(
        fs::metadata(a.join("app.py")).unwrap().permissions().mode(),
        fs::metadata(b.join("app.py")).unwrap().permissions().mode(),
        "the two trees should differ on disk"
    );

    let all = |_: &str| true;
    let (la, bytes_a) = write(tree_entries(&a, "app", 1000, 1000, &all).unwrap(), 0);
    let (lb, _) = write(tree_entries(&b, "app", 1000, 1000, &all).unwrap(), 0);
    assert_eq!(la, lb);
    // Entry order given by the caller does not matter either.
    let mut reversed = tree_entries(&b, "app", 1000, 1000, &all).unwrap();
    reversed.reverse();
    assert_eq!(write(reversed, 0).0, la);
    // ...but the requested mtime does (so the equality above is not vacuous).
    assert_ne!(
        write(tree_entries(&a, "app", 1000, 1000, &all).unwrap(), 1)
            .0
            .digest,
        la.digest
    );

    // The output holds exactly what was asked: paths, modes, owner, mtime.
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(bytes_a.as_slice())
        .read_to_end(&mut tar_bytes)
        .unwrap();
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut seen = Vec::new();
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        assert_eq!(
            (h.uid().unwrap(), h.gid().unwrap(), h.mtime().unwrap()),
            (1000, 1000, 0),
            "{path}"
        );
        seen.push((path, h.mode().unwrap()));
    }
    let mode_of = |p: &str| seen.iter().find(|(n, _)| n == p).map(|(_, m)| *m);
    assert_eq!(mode_of("app/"), Some(0o755));
    assert_eq!(mode_of("app/app.py"), Some(0o644));
    assert_eq!(mode_of("app/bin/run"), Some(0o755));
    assert_eq!(mode_of("app/data/"), Some(0o755));
    assert_eq!(mode_of("app/link"), Some(0o777));
    assert!(seen.iter().all(|(p, _)| p.starts_with("app/")), "{seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "entries are not in path order");

    // Round trip: unpacking the layer gives back the tree (made with umask 022, so its modes
    // are the normalised ones).
    let root = tmp.path().join("root");
    fs::create_dir(&root).unwrap();
    unpack_layer(&root, bytes_a.as_slice(), &UnpackLimits::default()).unwrap();
    let none = |_: &str| false;
    assert_eq!(
        common::snapshot(&root.join("app"), &none),
        common::snapshot(&a, &none)
    );
}

/// Guards the pinned gzip backend (zlib-rs), level (6) and block size (1 MiB): if any of them
/// changes, every digest pyslip ever produced changes and caches/registries stop matching. Update
/// these values only on purpose, together with `layers::LAYER_FORMAT`.
#[test]
fn golden_digest_of_a_fixed_layer_is_stable() {
    let entries = vec![
        LayerEntry {
            path: "app/main.py".into(),
            kind: EntryKind::File(FileSource::Bytes(b"print('hello')\n".repeat(100))),
            mode: 0o644,
            uid: 0,
            gid: 0,
        },
        LayerEntry {
            path: "app/bin".into(),
            kind: EntryKind::Symlink("/usr/local/bin".into()),
            mode: 0o777,
            uid: 0,
            gid: 0,
        },
    ];
    let (layer, _) = write(entries, 0);
    assert_eq!(
        (layer.digest.to_string(), layer.diff_id.to_string()),
        (GOLDEN_DIGEST.to_owned(), GOLDEN_DIFF_ID.to_owned())
    );
}

/// Like the test above for a layer of several compression blocks (`layers::gzip::BLOCK`): guards
/// the block size and the block-wise stream format as well.
#[test]
fn golden_digest_of_a_multi_block_layer_is_stable() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut text = Vec::new();
    while text.len() < 3 * layers::gzip::BLOCK + 12_345 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        text.extend_from_slice(format!("line {} value {}\n", seed % 1000, seed >> 50).as_bytes());
    }
    let entries = vec![LayerEntry {
        path: "usr/local/lib/data.txt".into(),
        kind: EntryKind::File(FileSource::Bytes(text)),
        mode: 0o644,
        uid: 0,
        gid: 0,
    }];
    let (layer, _) = write(entries, 0);
    assert_eq!(
        (layer.digest.to_string(), layer.diff_id.to_string()),
        (
            GOLDEN_MULTI_DIGEST.to_owned(),
            GOLDEN_MULTI_DIFF_ID.to_owned()
        )
    );
}

const GOLDEN_MULTI_DIGEST: &str =
    "sha256:29eaeaf5d5854e5823ef8acb95d9ba686b6bafd8b4f1e7e7823d16513b11b6ed";
const GOLDEN_MULTI_DIFF_ID: &str =
    "sha256:308970b52c66af52bcc40f1d694637f2fb05dad529f09cd82d34a7e6b9421c9e";

const GOLDEN_DIGEST: &str =
    "sha256:2d1da44e330c45b4e666d12be596da2d6ff268de62291cb895935c1b78c16634";
const GOLDEN_DIFF_ID: &str =
    "sha256:af59589670f8718feb60b78e38397d65c497d2cffcb0c3b09f5cec016d4e25b3";
