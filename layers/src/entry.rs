//! What goes into a layer: entries as callers describe them, and their normalisation into the
//! canonical archive order (sorted, parents first, hardlink targets before their links).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use crate::error::LayerError;

/// Prefix of an OCI whiteout file name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the OCI opaque-directory marker.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// Mode given to parent directories the caller did not list.
pub const IMPLICIT_DIR_MODE: u32 = 0o755;

/// One thing in a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    /// Relative, `/`-separated path with no leading `/` and no `.`/`..`/empty components
    /// (a trailing `/` is tolerated). For [`EntryKind::Whiteout`] it is the path being deleted;
    /// for [`EntryKind::OpaqueWhiteout`] the directory whose lower content is hidden.
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission bits (`0o7777` incl. setuid/setgid/sticky); other bits are dropped.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
}

/// The kind of a [`LayerEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file.
    File(FileSource),
    /// A symbolic link with this target (stored verbatim).
    Symlink(String),
    /// A hardlink to another regular file of the same layer (a path like [`LayerEntry::path`]).
    Hardlink(String),
    /// Delete `path` from lower layers (written as `<parent>/.wh.<name>`).
    Whiteout,
    /// Hide lower-layer content of directory `path` (written as `<path>/.wh..wh..opq`).
    OpaqueWhiteout,
}

/// Where a regular file's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// Streamed from a host file; its size must not change while it is read.
    Path(PathBuf),
    /// In-memory content.
    Bytes(Vec<u8>),
}

/// An entry ready to be written: its name in the archive and its (normalised) description.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// Name written into the tar header.
    pub name: String,
    /// The entry, with `path` normalised and hardlinks rewritten.
    pub entry: LayerEntry,
}

/// Validate a caller path and return it without trailing slashes.
pub(crate) fn normalise_path(path: &str) -> Result<String, LayerError> {
    let invalid = |reason| LayerError::InvalidPath {
        path: path.to_owned(),
        reason,
    };
    if path.starts_with('/') {
        return Err(invalid("must be relative"));
    }
    if path.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(invalid("is empty"));
    }
    for component in trimmed.split('/') {
        match component {
            "" => return Err(invalid("has an empty component")),
            "." | ".." => return Err(invalid("has a . or .. component")),
            c if c.starts_with(WHITEOUT_PREFIX) => {
                return Err(invalid(
                    "names starting with .wh. are reserved for whiteouts",
                ));
            }
            _ => {}
        }
    }
    Ok(trimmed.to_owned())
}

fn parent_of(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(parent, _)| parent)
}

/// Name of the entry in the archive and its sort key. The opaque marker of `d` sorts right after
/// `d` itself (before every child), so extractors see it before this layer's content of `d`.
fn archive_name(path: &str, kind: &EntryKind) -> (String, String) {
    match kind {
        EntryKind::Whiteout => {
            let name = match path.rsplit_once('/') {
                Some((parent, base)) => format!("{parent}/{WHITEOUT_PREFIX}{base}"),
                None => format!("{WHITEOUT_PREFIX}{path}"),
            };
            (name.clone(), name)
        }
        EntryKind::OpaqueWhiteout => (format!("{path}/{OPAQUE_WHITEOUT}"), format!("{path}/\0")),
        _ => (path.to_owned(), path.to_owned()),
    }
}

/// Normalise, complete and order entries for writing.
pub(crate) fn prepare(entries: Vec<LayerEntry>) -> Result<Vec<Prepared>, LayerError> {
    // key (sort order) -> (archive name, entry)
    let mut by_key: BTreeMap<String, (String, LayerEntry)> = BTreeMap::new();
    // real path -> is it a directory (whiteouts are not real paths)
    let mut kinds: HashMap<String, bool> = HashMap::new();
    for mut entry in entries {
        entry.path = normalise_path(&entry.path)?;
        entry.mode &= 0o7777;
        if let EntryKind::Hardlink(target) = &entry.kind {
            entry.kind = EntryKind::Hardlink(normalise_path(target)?);
        }
        let (name, key) = archive_name(&entry.path, &entry.kind);
        match entry.kind {
            EntryKind::Whiteout | EntryKind::OpaqueWhiteout => {}
            ref kind => {
                if kinds
                    .insert(entry.path.clone(), matches!(kind, EntryKind::Dir))
                    .is_some()
                {
                    return Err(LayerError::DuplicatePath { path: entry.path });
                }
            }
        }
        if by_key.contains_key(&key) {
            return Err(LayerError::DuplicatePath { path: entry.path });
        }
        by_key.insert(key, (name, entry));
    }

    // Every entry's parent (and an opaque directory itself) must be a directory in the archive.
    let mut missing: Vec<String> = Vec::new();
    for (_, entry) in by_key.values() {
        let mut dir = if matches!(entry.kind, EntryKind::OpaqueWhiteout) {
            Some(entry.path.as_str())
        } else {
            parent_of(&entry.path)
        };
        while let Some(d) = dir {
            match kinds.get(d) {
                Some(true) => break,
                Some(false) => return Err(LayerError::ParentNotDirectory { path: d.to_owned() }),
                None => {
                    kinds.insert(d.to_owned(), true);
                    missing.push(d.to_owned());
                }
            }
            dir = parent_of(d);
        }
    }
    for path in missing {
        by_key.insert(
            path.clone(),
            (
                path.clone(),
                LayerEntry {
                    path,
                    kind: EntryKind::Dir,
                    mode: IMPLICIT_DIR_MODE,
                    uid: 0,
                    gid: 0,
                },
            ),
        );
    }

    rewrite_hardlinks(&mut by_key)?;
    Ok(by_key
        .into_values()
        .map(|(name, entry)| Prepared { name, entry })
        .collect())
}

/// Make the first member (in archive order) of every hardlink group the regular file and every
/// other member a link to it, so extractors always see the target before its links.
fn rewrite_hardlinks(
    by_key: &mut BTreeMap<String, (String, LayerEntry)>,
) -> Result<(), LayerError> {
    // target file path -> paths of its links
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, entry) in by_key.values() {
        if let EntryKind::Hardlink(target) = &entry.kind {
            let is_file = by_key
                .get(target)
                .is_some_and(|(_, t)| matches!(t.kind, EntryKind::File(_)));
            if !is_file {
                return Err(LayerError::HardlinkTarget {
                    path: entry.path.clone(),
                    target: target.clone(),
                });
            }
            groups
                .entry(target.clone())
                .or_default()
                .push(entry.path.clone());
        }
    }
    for (target, links) in groups {
        let first = links
            .iter()
            .min()
            .map_or(target.clone(), |l| l.min(&target).clone());
        if first != target {
            // Move the file (content and metadata) to `first`; `target` becomes a link.
            let Some((_, file)) = by_key.get(&target).cloned() else {
                continue;
            };
            if let Some((_, slot)) = by_key.get_mut(&first) {
                slot.kind = file.kind;
                slot.mode = file.mode;
                slot.uid = file.uid;
                slot.gid = file.gid;
            }
            if let Some((_, slot)) = by_key.get_mut(&target) {
                slot.kind = EntryKind::Hardlink(first.clone());
            }
        }
        for link in links.iter().filter(|l| **l != first) {
            if let Some((_, slot)) = by_key.get_mut(link) {
                slot.kind = EntryKind::Hardlink(first.clone());
            }
        }
    }
    Ok(())
}
