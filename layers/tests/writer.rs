//! Tests of the deterministic layer writer: hashes, gzip header, ordering, headers, long names.
#![allow(clippy::unwrap_used)]

use std::io::Read;

use flate2::read::GzDecoder;
use layers::{
    Digest, EntryKind, FileSource, LayerEntry, LayerError, LayerOptions, write_layer,
    write_layer_to_dir,
};

fn entry(path: &str, kind: EntryKind, mode: u32) -> LayerEntry {
    LayerEntry {
        path: path.to_owned(),
        kind,
        mode,
        uid: 0,
        gid: 0,
    }
}

fn bytes(content: &str) -> EntryKind {
    EntryKind::File(FileSource::Bytes(content.as_bytes().to_vec()))
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(data).read_to_end(&mut out).unwrap();
    out
}

/// (name, type byte, mode, uid, gid, mtime, uname, gname, link, content) of every raw tar header
/// after GNU long-name resolution.
#[derive(Debug, PartialEq)]
struct Seen {
    name: String,
    kind: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    uname: Vec<u8>,
    gname: Vec<u8>,
    link: Option<String>,
    content: Vec<u8>,
}

fn list(tar_bytes: &[u8]) -> Vec<Seen> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut content = Vec::new();
        e.read_to_end(&mut content).unwrap();
        out.push(Seen {
            name: String::from_utf8(e.path_bytes().into_owned()).unwrap(),
            kind: h.entry_type().as_byte(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            uname: h.username_bytes().unwrap_or_default().to_vec(),
            gname: h.groupname_bytes().unwrap_or_default().to_vec(),
            link: e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap()),
            content,
        });
    }
    out
}

#[test]
fn hashes_sizes_and_gzip_header_describe_the_output() {
    let mut out = Vec::new();
    let layer = write_layer(
        vec![entry("app/main.py", bytes("print('hi')\n"), 0o644)],
        &LayerOptions {
            mtime: 1_700_000_000,
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(layer.digest, Digest::of(&out));
    assert_eq!(layer.size, out.len() as u64);
    let tar_bytes = gunzip(&out);
    assert_eq!(layer.diff_id, Digest::of(&tar_bytes));
    assert_eq!(layer.uncompressed_size, tar_bytes.len() as u64);
    assert_eq!(tar_bytes.len() % 512, 0);
    // gzip header: magic, deflate, no flags (no name/comment/extra), mtime 0, OS 255.
    assert_eq!(&out[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&out[4..8], &[0, 0, 0, 0]);
    assert_eq!(out[9], 255);
}

#[test]
fn entries_are_sorted_with_implicit_parents_and_normalised_headers() {
    let entries = vec![
        entry("usr/lib/z.txt", bytes("z"), 0o100644),
        LayerEntry {
            uid: 1000,
            gid: 1001,
            ..entry("app/run", bytes("#!/bin/sh\n"), 0o104755)
        },
        entry("usr/lib/a-b", bytes("ab"), 0o600),
        entry("usr/lib/a", EntryKind::Dir, 0o41777),
        entry("usr/bin/py", EntryKind::Symlink("../lib/a-b".into()), 0o777),
        entry("etc/gone", EntryKind::Whiteout, 0o644),
        entry("var/cache", EntryKind::OpaqueWhiteout, 0),
        entry("var/cache/new", bytes("n"), 0o644),
        entry("var/cache/-first", bytes("f"), 0o644),
    ];
    let mut out = Vec::new();
    write_layer(entries, &LayerOptions { mtime: 42 }, &mut out).unwrap();
    let seen = list(&gunzip(&out));
    let names: Vec<(&str, u32)> = seen.iter().map(|s| (s.name.as_str(), s.mode)).collect();
    assert_eq!(
        names,
        vec![
            ("app/", 0o755),
            ("app/run", 0o4755),
            ("etc/", 0o755),
            ("etc/.wh.gone", 0o644),
            ("usr/", 0o755),
            ("usr/bin/", 0o755),
            ("usr/bin/py", 0o777),
            ("usr/lib/", 0o755),
            ("usr/lib/a/", 0o1777),
            ("usr/lib/a-b", 0o600),
            ("usr/lib/z.txt", 0o644),
            ("var/", 0o755),
            ("var/cache/", 0o755),
            ("var/cache/.wh..wh..opq", 0),
            ("var/cache/-first", 0o644),
            ("var/cache/new", 0o644),
        ]
    );
    for s in &seen {
        assert_eq!(s.mtime, 42, "{}", s.name);
        assert!(s.uname.is_empty() && s.gname.is_empty(), "{}", s.name);
    }
    let run = seen.iter().find(|s| s.name == "app/run").unwrap();
    assert_eq!((run.uid, run.gid, run.kind), (1000, 1001, b'0'));
    assert_eq!(run.content, b"#!/bin/sh\n");
    let py = seen.iter().find(|s| s.name == "usr/bin/py").unwrap();
    assert_eq!((py.kind, py.link.as_deref()), (b'2', Some("../lib/a-b")));
}

#[test]
fn long_names_and_long_link_targets_survive() {
    let deep = format!("{}/{}", "d".repeat(120), "f".repeat(150));
    let target = format!("/{}", "t".repeat(300));
    let entries = vec![
        entry(&deep, bytes("x"), 0o644),
        entry("link", EntryKind::Symlink(target.clone()), 0o777),
    ];
    let mut out = Vec::new();
    write_layer(entries, &LayerOptions::default(), &mut out).unwrap();
    let seen = list(&gunzip(&out));
    assert!(
        seen.iter()
            .any(|s| s.name == format!("{}/", "d".repeat(120)))
    );
    assert!(seen.iter().any(|s| s.name == deep && s.content == b"x"));
    let link = seen.iter().find(|s| s.name == "link").unwrap();
    assert_eq!(link.link.as_deref(), Some(target.as_str()));
}

#[test]
fn hardlink_target_is_written_before_its_links() {
    // The file sorts after its link, so the writer must swap roles.
    let entries = vec![
        entry("z/file", bytes("shared"), 0o644),
        entry("a/link", EntryKind::Hardlink("z/file".into()), 0o644),
        entry("m/link2", EntryKind::Hardlink("z/file".into()), 0o644),
    ];
    let mut out = Vec::new();
    write_layer(entries, &LayerOptions::default(), &mut out).unwrap();
    let seen = list(&gunzip(&out));
    let get = |n: &str| seen.iter().find(|s| s.name == n).unwrap();
    assert_eq!(
        (get("a/link").kind, get("a/link").content.as_slice()),
        (b'0', &b"shared"[..])
    );
    assert_eq!(
        (get("m/link2").kind, get("m/link2").link.as_deref()),
        (b'1', Some("a/link"))
    );
    assert_eq!(
        (get("z/file").kind, get("z/file").link.as_deref()),
        (b'1', Some("a/link"))
    );
}

#[test]
fn invalid_entries_are_rejected() {
    let cases: Vec<Vec<LayerEntry>> = vec![
        vec![entry("/abs", bytes(""), 0o644)],
        vec![entry("a/../b", bytes(""), 0o644)],
        vec![entry("a/./b", bytes(""), 0o644)],
        vec![entry("", EntryKind::Dir, 0o755)],
        vec![entry("a/.wh.b", bytes(""), 0o644)],
        vec![
            entry("a", bytes(""), 0o644),
            entry("a/", EntryKind::Dir, 0o755),
        ],
        vec![entry("f", bytes(""), 0o644), entry("f/x", bytes(""), 0o644)],
        vec![entry("l", EntryKind::Hardlink("missing".into()), 0o644)],
        vec![entry("l", EntryKind::Symlink(String::new()), 0o777)],
    ];
    for entries in cases {
        let desc = format!("{entries:?}");
        let result = write_layer(entries, &LayerOptions::default(), Vec::new());
        assert!(
            matches!(
                result,
                Err(LayerError::InvalidPath { .. }
                    | LayerError::DuplicatePath { .. }
                    | LayerError::ParentNotDirectory { .. }
                    | LayerError::HardlinkTarget { .. })
            ),
            "{desc}: {result:?}"
        );
    }
}

#[test]
fn file_whose_size_differs_from_stat_is_an_error() {
    // /proc files stat as size 0 but have content: the same situation as a file that grew.
    let result = write_layer(
        vec![entry(
            "status",
            EntryKind::File(FileSource::Path("/proc/self/status".into())),
            0o644,
        )],
        &LayerOptions::default(),
        Vec::new(),
    );
    assert!(
        matches!(result, Err(LayerError::FileChanged { .. })),
        "{result:?}"
    );
}

#[test]
fn missing_source_file_is_a_read_error_naming_the_path() {
    let result = write_layer(
        vec![entry(
            "x",
            EntryKind::File(FileSource::Path("/nonexistent/pyslip-file".into())),
            0o644,
        )],
        &LayerOptions::default(),
        Vec::new(),
    );
    let Err(err @ LayerError::Read(_)) = result else {
        panic!("expected read error, got {result:?}");
    };
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("/nonexistent/pyslip-file"), "{source}");
}

#[test]
fn write_layer_to_dir_stores_the_blob_under_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.txt");
    std::fs::write(&src, vec![7u8; 300_000]).unwrap();
    let blobs = dir.path().join("blobs");
    std::fs::create_dir(&blobs).unwrap();
    let (layer, path) = write_layer_to_dir(
        vec![entry("big", EntryKind::File(FileSource::Path(src)), 0o644)],
        &LayerOptions::default(),
        &blobs,
    )
    .unwrap();
    assert_eq!(path, blobs.join(layer.digest.hex()));
    let stored = std::fs::read(&path).unwrap();
    assert_eq!(Digest::of(&stored), layer.digest);
    assert_eq!(stored.len() as u64, layer.size);
    let names: Vec<_> = std::fs::read_dir(&blobs).unwrap().collect();
    assert_eq!(names.len(), 1, "temp files left behind");
    let seen = list(&gunzip(&stored));
    assert_eq!(seen[0].content, vec![7u8; 300_000]);
}
