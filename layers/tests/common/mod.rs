//! Helpers shared by the integration tests: tree snapshots for comparing directories.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What a path in a tree is, for comparison (mtimes left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32 },
    File { mode: u32, content: Vec<u8> },
    Symlink { target: String },
}

/// Every path below `root` (relative, `/`-separated) with its [`Node`]; `skip(rel)` prunes.
pub fn snapshot(root: &Path, skip: &dyn Fn(&str) -> bool) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_owned(), String::new())];
    while let Some((dir, rel_dir)) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if rel_dir.is_empty() {
                name
            } else {
                format!("{rel_dir}/{name}")
            };
            if skip(&rel) {
                continue;
            }
            let meta = fs::symlink_metadata(e.path()).unwrap();
            let mode = meta.mode() & 0o7777;
            let node = if meta.is_dir() {
                stack.push((e.path(), rel.clone()));
                Node::Dir { mode }
            } else if meta.is_symlink() {
                let target = fs::read_link(e.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                Node::Symlink { target }
            } else {
                Node::File {
                    mode,
                    content: fs::read(e.path()).unwrap(),
                }
            };
            out.insert(rel, node);
        }
    }
    out
}
