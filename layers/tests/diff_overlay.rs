//! `diff_entries` on a real overlayfs upper directory: a mount in a private mount namespace
//! (`unshare -m` as root; `unshare -Urm` with `userxattr` otherwise, as the rootless sandbox does).
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use layers::{
    EntryKind, LayerEntry, LayerOptions, UnpackLimits, diff_entries, unpack_layer, write_layer,
};

fn layer_bytes(entries: Vec<LayerEntry>) -> Vec<u8> {
    let mut out = Vec::new();
    write_layer(entries, &LayerOptions::default(), &mut out).unwrap();
    out
}

/// Make lower content, mount an overlay, change things through it, copy the merged view out.
fn run_install_in_overlay(base: &Path) {
    let lower = base.join("lower");
    for d in ["d", "keep", "usr/bin", "usr/lib"] {
        fs::create_dir_all(lower.join(d)).unwrap();
    }
    fs::write(lower.join("a"), "a\n").unwrap();
    fs::write(lower.join("d/x"), "x\n").unwrap();
    fs::write(lower.join("keep/k"), "k\n").unwrap();
    fs::write(lower.join("usr/lib/lib.so"), "so\n").unwrap();
    fs::write(lower.join("usr/bin/tool"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(
        lower.join("usr/bin/tool"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    for d in ["upper", "work", "merged", "expected"] {
        fs::create_dir(base.join(d)).unwrap();
    }
    let rootless = !rustix::process::geteuid().is_root();
    let b = base.display();
    let extra = if rootless { ",userxattr" } else { "" };
    let script = format!(
        "set -e
        mount -t overlay overlay -o lowerdir={b}/lower,upperdir={b}/upper,workdir={b}/work{extra} {b}/merged
        cd {b}/merged
        rm a
        rm -r d && mkdir d && echo n > d/n
        echo new > newfile && ln newfile newlink
        mkdir -p tmp/cache && echo junk > tmp/cache/j
        ln -s /usr/bin/python3 py
        echo mod >> keep/k
        chmod 4755 usr/bin/tool
        cp -a {b}/merged/. {b}/expected/"
    );
    let ns = if rootless { "-Urm" } else { "-m" };
    let out = Command::new("unshare")
        .args([ns, "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "overlay mount/install failed (needs overlayfs and mount namespaces): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn overlay_upper_dir_becomes_whiteouts_opaque_dirs_hardlinks_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    run_install_in_overlay(base);
    let upper = base.join("upper");
    let not_tmp = |p: &str| p != "tmp" && !p.starts_with("tmp/");
    let entries = diff_entries(&upper, &not_tmp).unwrap();
    let find =
        |path: &str| -> Vec<&LayerEntry> { entries.iter().filter(|e| e.path == path).collect() };

    assert!(
        matches!(find("a").as_slice(), [e] if e.kind == EntryKind::Whiteout),
        "{entries:#?}"
    );
    let d: Vec<_> = find("d").iter().map(|e| e.kind.clone()).collect();
    assert!(
        d.contains(&EntryKind::Dir) && d.contains(&EntryKind::OpaqueWhiteout),
        "{d:?}"
    );
    assert!(matches!(find("d/n")[0].kind, EntryKind::File(_)));
    assert!(find("d/x").is_empty());
    let links: Vec<_> = ["newfile", "newlink"]
        .iter()
        .map(|p| find(p)[0].kind.clone())
        .collect();
    assert!(
        links
            .iter()
            .filter(|k| matches!(k, EntryKind::File(_)))
            .count()
            == 1
            && links
                .iter()
                .filter(|k| matches!(k, EntryKind::Hardlink(_)))
                .count()
                == 1,
        "{links:?}"
    );
    assert_eq!(
        find("py")[0].kind,
        EntryKind::Symlink("/usr/bin/python3".into())
    );
    assert_eq!(find("usr/bin/tool")[0].mode, 0o4755);
    assert!(
        find("usr/lib/lib.so").is_empty(),
        "unchanged lower file in the diff"
    );
    assert!(
        entries.iter().all(|e| not_tmp(&e.path)),
        "filtered path in the diff"
    );
    assert!(
        entries.iter().all(|e| e.uid == 0 && e.gid == 0),
        "owner not mapped to root"
    );

    // Lower layer + diff layer, unpacked, must equal the merged overlay view.
    let root = base.join("root");
    fs::create_dir(&root).unwrap();
    let all = |_: &str| true;
    let lower_layer = layer_bytes(diff_entries(&base.join("lower"), &all).unwrap());
    let diff_layer = layer_bytes(entries);
    unpack_layer(&root, lower_layer.as_slice(), &UnpackLimits::default()).unwrap();
    unpack_layer(&root, diff_layer.as_slice(), &UnpackLimits::default()).unwrap();
    let skip_tmp = |p: &str| !not_tmp(p);
    assert_eq!(
        common::snapshot(&root, &skip_tmp),
        common::snapshot(&base.join("expected"), &skip_tmp)
    );
    let ino = |p: &str| fs::metadata(root.join(p)).unwrap().ino();
    assert_eq!(ino("newfile"), ino("newlink"));
}
