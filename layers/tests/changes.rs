//! The canonical diff: an overlay upper dir and a copied-and-modified tree that reach the same
//! final state give the same entries; unchanged rewrites, special bits and opaque dirs.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use layers::{Changes, EntryKind, Lowers, changes_from_tree, changes_from_upper};

fn write(path: &Path, content: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mkdir(path: &Path, mode: u32) {
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// An overlay whiteout as rootless overlay mounts may write it (empty file, xattr).
fn whiteout(path: &Path) -> bool {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b"").unwrap();
    rustix::fs::lsetxattr(
        path,
        "user.overlay.whiteout",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .is_ok()
}

fn opaque(path: &Path) -> bool {
    rustix::fs::lsetxattr(
        path,
        "user.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .is_ok()
}

/// `(path, kind, mode)` sorted, with file sources replaced by their content.
fn summary(changes: &Changes) -> Vec<(String, String, u32)> {
    let mut out: Vec<_> = changes
        .entries
        .iter()
        .map(|e| {
            let kind = match &e.kind {
                EntryKind::File(layers::FileSource::Path(p)) => {
                    format!("file:{}", std::fs::read_to_string(p).unwrap())
                }
                EntryKind::File(layers::FileSource::Bytes(b)) => {
                    format!("file:{}", String::from_utf8_lossy(b))
                }
                EntryKind::Dir => "dir".into(),
                EntryKind::Symlink(t) => format!("symlink:{t}"),
                EntryKind::Hardlink(t) => format!("hardlink:{t}"),
                EntryKind::Whiteout => "whiteout".into(),
                EntryKind::OpaqueWhiteout => "opaque".into(),
            };
            assert_eq!((e.uid, e.gid), (0, 0), "{} not owned by 0:0", e.path);
            (e.path.clone(), kind, e.mode)
        })
        .collect();
    out.sort();
    out
}

/// A base root: `usr/` 0755, `root/` 0700, `usr/lib/site/{keep.py,old.py}`, `usr/lib/site/pkg/{a,b}`.
fn base(dir: &Path) {
    mkdir(&dir.join("usr/lib/site/pkg"), 0o755);
    mkdir(&dir.join("root"), 0o700);
    write(&dir.join("usr/lib/site/keep.py"), "keep", 0o644);
    write(&dir.join("usr/lib/site/old.py"), "old", 0o644);
    write(&dir.join("usr/lib/site/pkg/a"), "a", 0o644);
    write(&dir.join("usr/lib/site/pkg/b"), "b", 0o644);
}

fn all(_: &str) -> bool {
    true
}

#[test]
fn upper_and_tree_with_the_same_result_give_the_same_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("lower");
    base(&lower);
    let lowers = Lowers::new(vec![lower.clone()]);

    // The overlay way: new files (one 0600 from a umask 077 step), keep.py rewritten with its own
    // bytes, old.py deleted, pkg/ removed and re-created with `a` (same) and `c` (new).
    let upper = tmp.path().join("upper");
    write(&upper.join("usr/lib/site/new.py"), "new", 0o600);
    write(&upper.join("usr/lib/site/keep.py"), "keep", 0o600);
    write(&upper.join("root/.hidden"), "h", 0o600);
    write(&upper.join("usr/lib/site/pkg/a"), "a", 0o644);
    write(&upper.join("usr/lib/site/pkg/c"), "c", 0o755);
    if !whiteout(&upper.join("usr/lib/site/old.py")) || !opaque(&upper.join("usr/lib/site/pkg")) {
        eprintln!("skipped: the file system has no user xattrs");
        return;
    }
    let from_upper = changes_from_upper(&upper, &lowers, &all).unwrap();

    // The copy way: copy usr/lib/site and root, then change them the same way.
    let tree = tmp.path().join("tree");
    base(&tree);
    write(&tree.join("usr/lib/site/new.py"), "new", 0o600);
    write(&tree.join("usr/lib/site/keep.py"), "keep", 0o600);
    write(&tree.join("root/.hidden"), "h", 0o600);
    std::fs::remove_file(tree.join("usr/lib/site/old.py")).unwrap();
    std::fs::remove_dir_all(tree.join("usr/lib/site/pkg")).unwrap();
    write(&tree.join("usr/lib/site/pkg/a"), "a", 0o644);
    write(&tree.join("usr/lib/site/pkg/c"), "c", 0o755);
    let roots = vec!["usr/lib/site".to_owned(), "root".to_owned()];
    let from_tree = changes_from_tree(&tree, &roots, &lowers, &all, &|_| false).unwrap();

    let expected: Vec<(String, String, u32)> = vec![
        ("root".into(), "dir".into(), 0o700),
        ("root/.hidden".into(), "file:h".into(), 0o644),
        ("usr".into(), "dir".into(), 0o755),
        ("usr/lib".into(), "dir".into(), 0o755),
        ("usr/lib/site".into(), "dir".into(), 0o755),
        ("usr/lib/site/new.py".into(), "file:new".into(), 0o644),
        ("usr/lib/site/old.py".into(), "whiteout".into(), 0o644),
        ("usr/lib/site/pkg".into(), "dir".into(), 0o755),
        ("usr/lib/site/pkg/b".into(), "whiteout".into(), 0o644),
        ("usr/lib/site/pkg/c".into(), "file:c".into(), 0o755),
    ];
    assert_eq!(summary(&from_upper), expected);
    assert_eq!(summary(&from_tree), expected);
}

#[test]
fn special_bits_and_world_write_are_dropped_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("lower");
    base(&lower);
    let upper = tmp.path().join("upper");
    write(&upper.join("usr/bin/su-ish"), "x", 0o6755);
    write(&upper.join("usr/lib/site/open"), "y", 0o666);
    mkdir(&upper.join("usr/share/drop"), 0o1777);
    let changes = changes_from_upper(&upper, &Lowers::new(vec![lower]), &all).unwrap();
    let modes: Vec<(String, u32)> = summary(&changes)
        .into_iter()
        .map(|(p, _, m)| (p, m))
        .collect();
    assert!(
        modes.contains(&("usr/bin/su-ish".into(), 0o755)),
        "{modes:?}"
    );
    assert!(
        modes.contains(&("usr/lib/site/open".into(), 0o644)),
        "{modes:?}"
    );
    assert!(
        modes.contains(&("usr/share/drop".into(), 0o755)),
        "{modes:?}"
    );
    let mut special = changes.special_bits.clone();
    special.sort();
    assert_eq!(
        special,
        ["usr/bin/su-ish", "usr/lib/site/open", "usr/share/drop"]
    );
}

#[test]
fn stand_in_symlinks_and_declared_paths_are_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("lower");
    base(&lower);
    let lowers = Lowers::new(vec![lower.clone()]);
    let tree = tmp.path().join("tree");
    mkdir(&tree.join("usr/lib/site"), 0o755);
    // Stand-ins for what was not copied, and a replaced interpreter.
    for name in ["keep.py", "old.py", "pkg"] {
        std::os::unix::fs::symlink(
            lower.join("usr/lib/site").join(name),
            tree.join("usr/lib/site").join(name),
        )
        .unwrap();
    }
    write(&tree.join("usr/lib/site/python"), "#!/bin/sh\n", 0o755);
    let roots = vec!["usr/lib/site".to_owned()];
    let unchanged = |p: &str| p == "usr/lib/site/python";
    let changes = changes_from_tree(&tree, &roots, &lowers, &all, &unchanged).unwrap();
    assert!(changes.entries.is_empty(), "{:?}", summary(&changes));

    // A lower layer above the base counts as the lower state too.
    let upper_lower = tmp.path().join("deps");
    write(&upper_lower.join("usr/lib/site/dep.py"), "dep", 0o644);
    let stacked = Lowers::new(vec![upper_lower.clone(), lower.clone()]);
    std::os::unix::fs::symlink(
        upper_lower.join("usr/lib/site/dep.py"),
        tree.join("usr/lib/site/dep.py"),
    )
    .unwrap();
    let changes = changes_from_tree(&tree, &roots, &stacked, &all, &unchanged).unwrap();
    assert!(changes.entries.is_empty(), "{:?}", summary(&changes));
    std::fs::remove_file(tree.join("usr/lib/site/dep.py")).unwrap();
    let changes = changes_from_tree(&tree, &roots, &stacked, &all, &unchanged).unwrap();
    assert_eq!(
        summary(&changes),
        vec![
            ("usr".into(), "dir".into(), 0o755),
            ("usr/lib".into(), "dir".into(), 0o755),
            ("usr/lib/site".into(), "dir".into(), 0o755),
            ("usr/lib/site/dep.py".into(), "whiteout".into(), 0o644),
        ]
    );
}
