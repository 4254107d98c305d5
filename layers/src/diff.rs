//! Overlay upper directory → layer entries (the dependency layer is the diff an install left).

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::changes::{OPAQUE_XATTRS, WHITEOUT_XATTRS, has_xattr};
use crate::entry::{EntryKind, FileSource, LayerEntry};
use crate::error::LayerError;

/// Turn an overlayfs upper directory into layer entries.
///
/// - overlay whiteouts (character device 0/0, or an empty file with an `*.overlay.whiteout`
///   xattr) become [`EntryKind::Whiteout`];
/// - opaque directories (`trusted.overlay.opaque=y` or `user.overlay.opaque=y`) become the
///   directory plus [`EntryKind::OpaqueWhiteout`];
/// - files with several links inside the upper dir (same device and inode) become one file and
///   hardlinks to it;
/// - no xattrs are carried over (overlay's own `*.overlay.*` ones least of all); other device
///   nodes, fifos and sockets are left out;
/// - ownership: the invoking user (who owns everything a rootless sandbox wrote) is recorded as
///   0:0, since the install ran as root inside; any other owner is kept as is.
///
/// `filter` gets each relative path (`tmp`, `root/.cache`, `usr/lib/x.py`) and returns `false`
/// to leave it out; a directory left out is left out with everything below it.
pub fn diff_entries(
    upper: &Path,
    filter: &dyn Fn(&str) -> bool,
) -> Result<Vec<LayerEntry>, LayerError> {
    let euid = rustix::process::geteuid().as_raw();
    let egid = rustix::process::getegid().as_raw();
    let map_uid = |uid: u32| if uid == euid { 0 } else { uid };
    let map_gid = |gid: u32| if gid == egid { 0 } else { gid };

    let mut entries = Vec::new();
    // (dev, ino) -> first path seen with that inode
    let mut inodes: HashMap<(u64, u64), String> = HashMap::new();
    let mut stack: Vec<(PathBuf, String)> = vec![(upper.to_owned(), String::new())];
    while let Some((dir, rel_dir)) = stack.pop() {
        let mut children: Vec<_> = fs_err::read_dir(&dir)
            .map_err(LayerError::Read)?
            .collect::<Result<_, _>>()
            .map_err(LayerError::Read)?;
        children.sort_by_key(|c| c.file_name());
        for child in children {
            let host_path = child.path();
            let name = child.file_name();
            let Some(name) = name.to_str() else {
                return Err(LayerError::InvalidPath {
                    path: host_path.to_string_lossy().into_owned(),
                    reason: "file name is not UTF-8",
                });
            };
            let rel = if rel_dir.is_empty() {
                name.to_owned()
            } else {
                format!("{rel_dir}/{name}")
            };
            if !filter(&rel) {
                continue;
            }
            let meta = fs_err::symlink_metadata(&host_path).map_err(LayerError::Read)?;
            let ft = meta.file_type();
            let entry = |kind| LayerEntry {
                path: rel.clone(),
                kind,
                mode: meta.mode() & 0o7777,
                uid: map_uid(meta.uid()),
                gid: map_gid(meta.gid()),
            };
            if ft.is_char_device() && meta.rdev() == 0 {
                entries.push(entry(EntryKind::Whiteout));
            } else if ft.is_dir() {
                entries.push(entry(EntryKind::Dir));
                if has_xattr(&host_path, &OPAQUE_XATTRS)? {
                    entries.push(entry(EntryKind::OpaqueWhiteout));
                }
                stack.push((host_path, rel));
            } else if ft.is_symlink() {
                let target = fs_err::read_link(&host_path).map_err(LayerError::Read)?;
                let Some(target) = target.to_str() else {
                    return Err(LayerError::InvalidPath {
                        path: rel,
                        reason: "symlink target is not UTF-8",
                    });
                };
                entries.push(entry(EntryKind::Symlink(target.to_owned())));
            } else if ft.is_file() {
                if meta.len() == 0 && has_xattr(&host_path, &WHITEOUT_XATTRS)? {
                    entries.push(entry(EntryKind::Whiteout));
                    continue;
                }
                let kind = if meta.nlink() > 1 {
                    match inodes.get(&(meta.dev(), meta.ino())) {
                        Some(first) => EntryKind::Hardlink(first.clone()),
                        None => {
                            inodes.insert((meta.dev(), meta.ino()), rel.clone());
                            EntryKind::File(FileSource::Path(host_path.clone()))
                        }
                    }
                } else {
                    EntryKind::File(FileSource::Path(host_path.clone()))
                };
                entries.push(entry(kind));
            }
            // Other devices, fifos, sockets: not layer content for a rootless build.
        }
    }
    Ok(entries)
}
