//! Removing build scratch trees that contain unwritable directories (overlay's `work/work` is
//! mode 0000; installs may leave read-only dirs).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Removes `path` recursively, first making every directory in it writable. Best effort: a
/// scratch tree that cannot be removed is left for the next cache cleanup.
pub(crate) fn remove_tree(path: &Path) {
    if std::fs::remove_dir_all(path).is_ok() {
        return;
    }
    fn open_up(dir: &Path) {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    open_up(&entry.path());
                }
            }
        }
    }
    open_up(path);
    let _ = std::fs::remove_dir_all(path);
}

/// A scratch directory removed (with [`remove_tree`]) when dropped.
pub(crate) struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        remove_tree(&self.0);
    }
}
