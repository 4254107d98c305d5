//! `--oci-layout` shared by builds running at once, and layout blobs that are copies of the
//! cache's, never the same inodes.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt as _;

use crate::support::{Work, host};

fn names(layout: &std::path::Path) -> BTreeSet<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
            .expect("json");
    index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_owned)
        .collect()
}

/// Four real builds write one new layout at once, each under its own tag: every tag is kept
/// (the index is changed under a lock), umoci reads the result, and no blob of the layout is a
/// hard link to the cache.
#[test]
fn concurrent_builds_into_one_layout_keep_every_tag_and_share_no_inode() {
    let work = Work::new();
    let app = work.app("stdlib");
    let python = ["--python", "3.13"];
    // Warm the cache first, so the builds below race on the layout and not on the download.
    let warm = work.path().join("warm.tar");
    work.build(
        &app,
        &[&python[..], &["--tar", warm.to_str().expect("utf-8")]].concat(),
    )
    .ok();
    let layout = work.path().join("layout");
    let layout_arg = layout.to_str().expect("utf-8");
    let tags: Vec<String> = (1..=4)
        .map(|n| format!("127.0.0.1:5000/t/concurrent:{n}"))
        .collect();
    std::thread::scope(|s| {
        for tag in &tags {
            let (work, app) = (&work, &app);
            s.spawn(move || {
                work.build(
                    app,
                    &[&python[..], &["-t", tag, "--oci-layout", layout_arg]].concat(),
                )
                .ok();
            });
        }
    });
    let want: BTreeSet<String> = (1..=4).map(|n| n.to_string()).collect();
    assert_eq!(names(&layout), want, "a tag was lost");
    let listed: BTreeSet<String> = host("umoci", &["ls", "--layout", layout_arg])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, want);

    let cache_blobs = work.cache().join("pyslip/blobs-v1/sha256");
    let mut compared = 0;
    for entry in std::fs::read_dir(layout.join("blobs/sha256")).expect("layout blobs") {
        let entry = entry.expect("entry");
        let cached = cache_blobs.join(entry.file_name());
        let Ok(cached) = std::fs::metadata(&cached) else {
            continue;
        };
        let written = entry.metadata().expect("metadata");
        assert_ne!(
            (written.dev(), written.ino()),
            (cached.dev(), cached.ino()),
            "{:?} is the cache's inode",
            entry.file_name()
        );
        assert_eq!(written.nlink(), 1, "{:?} is hard-linked", entry.file_name());
        compared += 1;
    }
    assert!(
        compared >= 3,
        "layers, config and manifest are in both: {compared}"
    );
}
