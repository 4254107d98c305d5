//! The canonical difference between a read-only root (stacked lower directories) and what a
//! build step left, as layer entries.
//!
//! Two sources describe "what the step left": an overlayfs upper directory (the rootless
//! sandbox), and a host tree whose chosen subtrees were copied from the lowers and then modified
//! in place (the namespace-free install, see the `install` crate). Both go through the same
//! comparison, so the same final state gives the same entries whichever way it was produced:
//!
//! - a path is emitted when it is new, changed type, content or symlink target, or changed its
//!   (normalised) mode — a file rewritten with the bytes it had is *not* a change;
//! - a directory is emitted when it is new or changed mode, and as the parent of anything emitted
//!   (with the lower's mode then);
//! - deletions are explicit whiteouts, never opaque markers (an overlay opaque directory is
//!   expanded into a whiteout per lower entry it hides);
//! - modes are normalised (directories 0755, files 0755 with any execute bit, else 0644,
//!   symlinks 0777): no setuid, setgid, sticky or world-writable bit survives, whatever the
//!   step's umask or `chmod`s were; paths whose special bits were dropped are reported;
//! - every owner is 0:0 (the step ran as root in the image, or for it).

use std::collections::{BTreeMap, HashMap};
use std::fs::Metadata;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::entry::{EntryKind, FileSource, LayerEntry};
use crate::error::LayerError;

/// xattrs that mark an overlay directory opaque (`trusted.` as root, `user.` with `userxattr`).
pub(crate) const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];
/// xattrs that mark a regular file as a whiteout (kernel ≥ 6.7 "xattr whiteouts").
pub(crate) const WHITEOUT_XATTRS: [&str; 2] = ["trusted.overlay.whiteout", "user.overlay.whiteout"];

/// The mode a changed entry gets in a layer: 0755 for directories and files with any execute
/// bit, 0644 for other files, 0777 for symlinks.
pub fn normalised_mode(kind: &EntryKind, mode: u32) -> u32 {
    match kind {
        EntryKind::Dir => 0o755,
        EntryKind::Symlink(_) => 0o777,
        _ if mode & 0o111 != 0 => 0o755,
        _ => 0o644,
    }
}

/// What a build step changed, canonically.
#[derive(Debug, Default)]
pub struct Changes {
    /// Layer entries (owners 0:0, normalised modes), in no particular order.
    pub entries: Vec<LayerEntry>,
    /// Paths that had setuid, setgid or sticky bits, or were world-writable, before
    /// normalisation dropped them (for a warning).
    pub special_bits: Vec<String>,
}

/// A read-only root made of directories stacked like overlay lower dirs (topmost first).
pub struct Lowers {
    dirs: Vec<PathBuf>,
    /// (lower index, relative dir) → what that path is in that lower.
    dir_states: std::cell::RefCell<HashMap<(usize, String), DirState>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DirState {
    Dir,
    Missing,
    /// Something that is not a directory: it hides the lowers below it.
    NotDir,
}

fn parent(rel: &str) -> Option<&str> {
    rel.rsplit_once('/').map(|(p, _)| p)
}

fn join(rel_dir: &str, name: &str) -> String {
    if rel_dir.is_empty() {
        name.to_owned()
    } else {
        format!("{rel_dir}/{name}")
    }
}

impl Lowers {
    /// The stack of `dirs`, topmost first.
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        Self {
            dirs,
            dir_states: Default::default(),
        }
    }

    /// What `rel_dir` is in lower `i`, walking component by component so that no symlink of the
    /// lower is ever followed on the host.
    fn dir_state(&self, i: usize, rel_dir: &str) -> DirState {
        if rel_dir.is_empty() {
            return DirState::Dir;
        }
        if let Some(state) = self.dir_states.borrow().get(&(i, rel_dir.to_owned())) {
            return *state;
        }
        let state = match self.dir_state(i, parent(rel_dir).unwrap_or("")) {
            DirState::Dir => match self.dirs.get(i).map(|d| d.join(rel_dir)) {
                Some(path) => match std::fs::symlink_metadata(path) {
                    Ok(m) if m.is_dir() => DirState::Dir,
                    Ok(_) => DirState::NotDir,
                    Err(_) => DirState::Missing,
                },
                None => DirState::Missing,
            },
            other => other,
        };
        self.dir_states
            .borrow_mut()
            .insert((i, rel_dir.to_owned()), state);
        state
    }

    /// The topmost entry at `rel` and where it is on the host.
    pub fn lookup(&self, rel: &str) -> Option<(PathBuf, Metadata)> {
        let parent_rel = parent(rel).unwrap_or("");
        for (i, dir) in self.dirs.iter().enumerate() {
            match self.dir_state(i, parent_rel) {
                DirState::Dir => {}
                DirState::Missing => continue,
                DirState::NotDir => return None,
            }
            let path = dir.join(rel);
            if let Ok(meta) = std::fs::symlink_metadata(&path) {
                return Some((path, meta));
            }
        }
        None
    }

    /// The names in directory `rel_dir` of the merged root (sorted).
    pub fn children(&self, rel_dir: &str) -> Vec<String> {
        let mut names = std::collections::BTreeSet::new();
        for (i, dir) in self.dirs.iter().enumerate() {
            match self.dir_state(i, rel_dir) {
                DirState::Dir => {}
                DirState::Missing => continue,
                DirState::NotDir => break,
            }
            if let Ok(entries) = std::fs::read_dir(dir.join(rel_dir)) {
                for entry in entries.flatten() {
                    if let Some(name) = entry.file_name().to_str() {
                        names.insert(name.to_owned());
                    }
                }
            }
        }
        names.into_iter().collect()
    }
}

/// Where a walk reads the step's result from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// An overlay upper dir: entries not in it are unchanged unless the dir is opaque.
    Upper,
    /// A tree copied from the lowers and modified: every real directory lists its full content.
    Tree,
}

struct Walk<'a> {
    lowers: &'a Lowers,
    filter: &'a dyn Fn(&str) -> bool,
    /// Paths to report unchanged whatever they hold (the namespace-free path's interpreter
    /// stand-ins).
    unchanged: &'a dyn Fn(&str) -> bool,
    source: Source,
    out: Changes,
    /// (dev, ino) → path of the first emitted file with that inode.
    inodes: HashMap<(u64, u64), String>,
}

/// The changes an overlayfs `upper` directory holds over `lowers`. `filter` gets each relative
/// path and returns `false` to leave it (and everything below it) out.
pub fn changes_from_upper(
    upper: &Path,
    lowers: &Lowers,
    filter: &dyn Fn(&str) -> bool,
) -> Result<Changes, LayerError> {
    let mut walk = Walk {
        lowers,
        filter,
        unchanged: &|_| false,
        source: Source::Upper,
        out: Changes::default(),
        inodes: HashMap::new(),
    };
    walk.dir(upper, "", false)?;
    Ok(walk.out)
}

/// The changes of the subtrees `roots` (relative paths, e.g. `usr/local/lib/python3.13/site-packages`)
/// of `tree`, a directory where they were copied from `lowers` and then modified. An entry of
/// the tree that is a symlink to the lowers' own copy of the same path (a stand-in for something
/// that was not copied) is unchanged, and so is every path for which `unchanged` says so.
pub fn changes_from_tree(
    tree: &Path,
    roots: &[String],
    lowers: &Lowers,
    filter: &dyn Fn(&str) -> bool,
    unchanged: &dyn Fn(&str) -> bool,
) -> Result<Changes, LayerError> {
    let mut walk = Walk {
        lowers,
        filter,
        unchanged,
        source: Source::Tree,
        out: Changes::default(),
        inodes: HashMap::new(),
    };
    let mut emitted_any = BTreeMap::new();
    for root in roots {
        let host = tree.join(root);
        let meta = match fs_err::symlink_metadata(&host) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if lowers.lookup(root).is_some() {
                    walk.push_whiteout(root);
                    emitted_any.insert(root.clone(), true);
                }
                continue;
            }
            Err(e) => return Err(LayerError::Read(e)),
        };
        let emitted = walk.entry(&host, root, &meta, true)?;
        emitted_any.insert(root.clone(), emitted);
    }
    // Parents of the roots that hold changes.
    for (root, emitted) in emitted_any {
        if emitted {
            let mut p = parent(&root);
            while let Some(dir) = p {
                walk.push_parent(dir);
                p = parent(dir);
            }
        }
    }
    walk.out.entries.sort_by(|a, b| a.path.cmp(&b.path));
    walk.out
        .entries
        .dedup_by(|a, b| a.path == b.path && a.kind == b.kind);
    Ok(walk.out)
}

impl Walk<'_> {
    /// Walks directory `host` (relative path `rel`); returns whether anything below was emitted.
    /// `authoritative`: the directory lists its whole content (lower entries it lacks are
    /// deleted).
    fn dir(&mut self, host: &Path, rel: &str, authoritative: bool) -> Result<bool, LayerError> {
        let mut names: Vec<String> = Vec::new();
        for child in fs_err::read_dir(host).map_err(LayerError::Read)? {
            let child = child.map_err(LayerError::Read)?;
            let name = child.file_name();
            let Some(name) = name.to_str() else {
                return Err(LayerError::InvalidPath {
                    path: child.path().to_string_lossy().into_owned(),
                    reason: "file name is not UTF-8",
                });
            };
            names.push(name.to_owned());
        }
        names.sort();
        let mut emitted = false;
        for name in &names {
            let child_rel = join(rel, name);
            if !(self.filter)(&child_rel) {
                continue;
            }
            let child_host = host.join(name);
            let meta = fs_err::symlink_metadata(&child_host).map_err(LayerError::Read)?;
            emitted |= self.entry(&child_host, &child_rel, &meta, authoritative)?;
        }
        if authoritative {
            for name in self.lowers.children(rel) {
                let child_rel = join(rel, &name);
                if names.binary_search(&name).is_err() && (self.filter)(&child_rel) {
                    self.push_whiteout(&child_rel);
                    emitted = true;
                }
            }
        }
        Ok(emitted)
    }

    /// Handles one entry of the source; returns whether it (or anything below it) was emitted.
    fn entry(
        &mut self,
        host: &Path,
        rel: &str,
        meta: &Metadata,
        parent_authoritative: bool,
    ) -> Result<bool, LayerError> {
        if (self.unchanged)(rel) {
            return Ok(false);
        }
        let ft = meta.file_type();
        let lower = self.lowers.lookup(rel);
        if self.source == Source::Upper && is_whiteout(host, meta)? {
            if lower.is_some() {
                self.push_whiteout(rel);
                return Ok(true);
            }
            return Ok(false);
        }
        if ft.is_dir() {
            let opaque = self.source == Source::Upper && has_xattr(host, &OPAQUE_XATTRS)?;
            let lower_dir = lower.as_ref().filter(|(_, m)| m.is_dir());
            // Below a directory that replaced a non-directory, nothing of the lowers shows.
            let authoritative = match self.source {
                Source::Tree => true,
                Source::Upper => opaque || parent_authoritative,
            };
            let below = if lower_dir.is_some() || self.source == Source::Upper {
                self.dir(host, rel, authoritative && lower_dir.is_some())?
            } else {
                self.dir(host, rel, false)?
            };
            let changed = match lower_dir {
                Some((_, lm)) => {
                    normalised_mode(&EntryKind::Dir, meta.mode())
                        != normalised_mode(&EntryKind::Dir, lm.mode())
                }
                None => true,
            };
            if changed {
                self.push(rel, EntryKind::Dir, meta.mode());
            } else if below {
                self.push_parent(rel);
            }
            return Ok(changed || below);
        }
        if ft.is_symlink() {
            let target = fs_err::read_link(host).map_err(LayerError::Read)?;
            let Some(target) = target.to_str() else {
                return Err(LayerError::InvalidPath {
                    path: rel.to_owned(),
                    reason: "symlink target is not UTF-8",
                });
            };
            if let Some((lower_path, lm)) = &lower {
                // A stand-in for an entry that was not copied.
                if self.source == Source::Tree && Path::new(target) == lower_path {
                    return Ok(false);
                }
                if lm.file_type().is_symlink()
                    && fs_err::read_link(lower_path).map_err(LayerError::Read)? == Path::new(target)
                {
                    return Ok(false);
                }
            }
            self.push(rel, EntryKind::Symlink(target.to_owned()), 0o777);
            return Ok(true);
        }
        if ft.is_file() {
            let kind = EntryKind::File(FileSource::Path(host.to_owned()));
            if let Some((lower_path, lm)) = &lower
                && lm.is_file()
                && normalised_mode(&kind, lm.mode()) == normalised_mode(&kind, meta.mode())
                && same_content(host, meta, lower_path, lm)?
            {
                return Ok(false);
            }
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.inodes.get(&key) {
                    let first = first.clone();
                    self.push(rel, EntryKind::Hardlink(first), meta.mode());
                    return Ok(true);
                }
                self.inodes.insert(key, rel.to_owned());
            }
            self.push(rel, kind, meta.mode());
            return Ok(true);
        }
        // Devices, fifos, sockets: not layer content of a rootless build.
        Ok(false)
    }

    fn push(&mut self, rel: &str, kind: EntryKind, mode: u32) {
        if mode & 0o7000 != 0 || (mode & 0o002 != 0 && !kind_is_symlink(&kind)) {
            self.out.special_bits.push(rel.to_owned());
        }
        let mode = normalised_mode(&kind, mode);
        self.out.entries.push(LayerEntry {
            path: rel.to_owned(),
            kind,
            mode,
            uid: 0,
            gid: 0,
        });
    }

    /// A directory emitted only as the parent of a change: it keeps the lower's permission bits
    /// (minus special and world-write bits), so `root/` stays 0700.
    fn push_parent(&mut self, rel: &str) {
        let mode = match self.lowers.lookup(rel) {
            Some((_, m)) if m.is_dir() => m.mode() & 0o755,
            _ => 0o755,
        };
        self.out.entries.push(LayerEntry {
            path: rel.to_owned(),
            kind: EntryKind::Dir,
            mode,
            uid: 0,
            gid: 0,
        });
    }

    fn push_whiteout(&mut self, rel: &str) {
        self.out.entries.push(LayerEntry {
            path: rel.to_owned(),
            kind: EntryKind::Whiteout,
            mode: 0o644,
            uid: 0,
            gid: 0,
        });
    }
}

fn kind_is_symlink(kind: &EntryKind) -> bool {
    matches!(kind, EntryKind::Symlink(_))
}

/// Whether two regular files hold the same bytes (same inode, or same size and content).
fn same_content(a: &Path, am: &Metadata, b: &Path, bm: &Metadata) -> Result<bool, LayerError> {
    if am.len() != bm.len() {
        return Ok(false);
    }
    if (am.dev(), am.ino()) == (bm.dev(), bm.ino()) {
        return Ok(true);
    }
    let mut fa = fs_err::File::open(a).map_err(LayerError::Read)?;
    let mut fb = fs_err::File::open(b).map_err(LayerError::Read)?;
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba.get(..n) != bb.get(..m) {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(file: &mut fs_err::File, buf: &mut [u8]) -> Result<usize, LayerError> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(rest) = buf.get_mut(filled..) else {
            break;
        };
        match file.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(LayerError::Read(e)),
        }
    }
    Ok(filled)
}

/// An overlay whiteout: a character device 0/0, or an empty file with a whiteout xattr.
fn is_whiteout(path: &Path, meta: &Metadata) -> Result<bool, LayerError> {
    let ft = meta.file_type();
    if ft.is_char_device() && meta.rdev() == 0 {
        return Ok(true);
    }
    Ok(ft.is_file() && meta.len() == 0 && has_xattr(path, &WHITEOUT_XATTRS)?)
}

/// Whether any of `names` is set on `path` (to `y` for the opaque markers).
pub(crate) fn has_xattr(path: &Path, names: &[&str]) -> Result<bool, LayerError> {
    for name in names {
        let mut value = [0u8; 8];
        match rustix::fs::lgetxattr(path, *name, &mut value) {
            Ok(n) => {
                if name.contains("whiteout") || value.get(..n) == Some(b"y") {
                    return Ok(true);
                }
            }
            Err(
                rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP | rustix::io::Errno::RANGE,
            ) => {}
            Err(e) => {
                return Err(LayerError::Xattr {
                    path: path.to_owned(),
                    name: (*name).to_owned(),
                    source: io::Error::from(e),
                });
            }
        }
    }
    Ok(false)
}
