//! A host directory (the project) → layer entries under a destination prefix, with normalised
//! modes, so the app layer does not depend on the umask or the checkout's permission bits.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::entry::{EntryKind, FileSource, LayerEntry, normalise_path};
use crate::error::LayerError;

/// Mode of directories and non-executable files in a [`tree_entries`] layer.
pub const TREE_DIR_MODE: u32 = 0o755;
/// Mode of files with no execute bit set on the host.
pub const TREE_FILE_MODE: u32 = 0o644;
/// Mode of files with any execute bit set on the host.
pub const TREE_EXEC_MODE: u32 = 0o755;

/// Entries for everything below `src`, placed under `dest` (e.g. `app`; itself included as a
/// directory), owned by `uid:gid`.
///
/// Modes are normalised (directories 0755, files 0755 if any execute bit is set on the host,
/// else 0644), so two checkouts that differ only in umask, mtimes or creation order give the same
/// layer. Symlinks are kept verbatim; other file types are left out. `filter` gets the path
/// relative to `src` and returns `false` to leave it out (a directory with everything below it).
pub fn tree_entries(
    src: &Path,
    dest: &str,
    uid: u32,
    gid: u32,
    filter: &dyn Fn(&str) -> bool,
) -> Result<Vec<LayerEntry>, LayerError> {
    let dest = normalise_path(dest)?;
    let mut entries = vec![LayerEntry {
        path: dest.clone(),
        kind: EntryKind::Dir,
        mode: TREE_DIR_MODE,
        uid,
        gid,
    }];
    let mut stack: Vec<(PathBuf, String)> = vec![(src.to_owned(), String::new())];
    while let Some((dir, rel_dir)) = stack.pop() {
        for child in fs_err::read_dir(&dir).map_err(LayerError::Read)? {
            let child = child.map_err(LayerError::Read)?;
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
            let (kind, mode) = if ft.is_dir() {
                stack.push((host_path, rel.clone()));
                (EntryKind::Dir, TREE_DIR_MODE)
            } else if ft.is_file() {
                let mode = if meta.mode() & 0o111 != 0 {
                    TREE_EXEC_MODE
                } else {
                    TREE_FILE_MODE
                };
                (EntryKind::File(FileSource::Path(host_path)), mode)
            } else if ft.is_symlink() {
                let target = fs_err::read_link(&host_path).map_err(LayerError::Read)?;
                let Some(target) = target.to_str() else {
                    return Err(LayerError::InvalidPath {
                        path: rel,
                        reason: "symlink target is not UTF-8",
                    });
                };
                (EntryKind::Symlink(target.to_owned()), 0o777)
            } else {
                continue;
            };
            entries.push(LayerEntry {
                path: format!("{dest}/{rel}"),
                kind,
                mode,
                uid,
                gid,
            });
        }
    }
    Ok(entries)
}
