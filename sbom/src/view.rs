//! The captured files as the running container sees them: layers applied in order, whiteouts
//! and opaque directories hiding what lower layers put there.

use std::collections::BTreeMap;

use crate::scan::{Captured, LayerScan};

/// A captured file of the final filesystem and the layer (index) that put it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Index of the layer in the manifest (0 = bottom).
    pub layer: usize,
    /// What the layer holds at that path.
    pub content: Captured,
}

/// Captured paths of the final filesystem.
#[derive(Debug, Clone, Default)]
pub struct MergedView {
    files: BTreeMap<String, Placed>,
}

fn under(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl MergedView {
    /// Apply the layers bottom first.
    pub fn new<'a>(scans: impl IntoIterator<Item = &'a LayerScan>) -> Self {
        let mut files: BTreeMap<String, Placed> = BTreeMap::new();
        for (index, scan) in scans.into_iter().enumerate() {
            // Whiteouts hide lower layers only: apply them before this layer's own entries.
            for gone in &scan.whiteouts {
                files.retain(|path, _| path != gone && !under(path, gone));
            }
            for dir in &scan.opaque_dirs {
                files.retain(|path, _| !under(path, dir));
            }
            for (path, content) in &scan.captured {
                files.insert(
                    path.clone(),
                    Placed {
                        layer: index,
                        content: content.clone(),
                    },
                );
            }
        }
        Self { files }
    }

    /// The entry at `path`, if the final filesystem has it.
    pub fn get(&self, path: &str) -> Option<&Placed> {
        self.files.get(path)
    }

    /// A regular file's bytes, following up to 8 symlinks (relative or absolute targets).
    pub fn read(&self, path: &str) -> Option<(&[u8], usize)> {
        let mut current = path.to_owned();
        for _ in 0..8 {
            match &self.files.get(&current)?.content {
                Captured::File(bytes) => return Some((bytes, self.files.get(&current)?.layer)),
                Captured::Symlink(target) => current = resolve(&current, target),
                Captured::Marker => return None,
            }
        }
        None
    }

    /// Every captured path with its entry, sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Placed)> {
        self.files.iter().map(|(p, e)| (p.as_str(), e))
    }
}

/// A symlink target resolved against the link's directory, without leaving the root.
fn resolve(link: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        link.split('/').collect()
    };
    if !target.starts_with('/') {
        parts.pop();
    }
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(captured: &[(&str, &[u8])], whiteouts: &[&str], opaque: &[&str]) -> LayerScan {
        LayerScan {
            captured: captured
                .iter()
                .map(|(p, b)| ((*p).to_owned(), Captured::File(b.to_vec())))
                .collect(),
            whiteouts: whiteouts.iter().map(|s| (*s).to_owned()).collect(),
            opaque_dirs: opaque.iter().map(|s| (*s).to_owned()).collect(),
            ..LayerScan::default()
        }
    }

    #[test]
    fn upper_layers_replace_and_hide() {
        let bottom = scan(
            &[
                ("a/x.dist-info/METADATA", b"1"),
                ("b/y.dist-info/METADATA", b"2"),
                ("c/z", b"3"),
                ("var/lib/dpkg/status", b"old"),
            ],
            &[],
            &[],
        );
        let top = scan(
            &[("var/lib/dpkg/status", b"new")],
            &["a/x.dist-info"],
            &["c"],
        );
        let view = MergedView::new([&bottom, &top]);
        assert!(view.get("a/x.dist-info/METADATA").is_none());
        assert!(view.get("c/z").is_none());
        assert_eq!(view.get("b/y.dist-info/METADATA").map(|e| e.layer), Some(0));
        assert_eq!(view.read("var/lib/dpkg/status"), Some((&b"new"[..], 1)));
    }

    #[test]
    fn opaque_dir_hides_only_lower_layers() {
        let bottom = scan(&[("c/old", b"1")], &[], &[]);
        let top = scan(&[("c/new", b"2")], &[], &["c"]);
        let view = MergedView::new([&bottom, &top]);
        assert!(view.get("c/old").is_none());
        assert!(view.get("c/new").is_some());
    }

    #[test]
    fn symlinks_are_followed_inside_the_root() {
        let mut layer = scan(&[("usr/lib/os-release", b"ID=debian\n")], &[], &[]);
        layer.captured.push((
            "etc/os-release".into(),
            Captured::Symlink("../usr/lib/os-release".into()),
        ));
        let view = MergedView::new([&layer]);
        assert_eq!(
            view.read("etc/os-release").map(|r| r.0),
            Some(&b"ID=debian\n"[..])
        );
        assert_eq!(
            resolve("etc/os-release", "/usr/lib/os-release"),
            "usr/lib/os-release"
        );
        assert_eq!(resolve("etc/a", "../../../x"), "x");
    }
}
