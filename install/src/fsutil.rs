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

/// Folder (beside the scratch dirs) that holds scratch dirs waiting to be deleted.
const TRASH: &str = "trash";

/// A scratch directory deleted when dropped, without making the build wait: it is renamed into
/// `trash/` beside it (instant) and deleted there on a background thread. An install's upper dir
/// holds thousands of files (0.5 s to delete); the build goes on pushing meanwhile. When the
/// process exits first, the rest of the trash is deleted by a later build. Only `trash/` is
/// swept, never a live scratch dir of a concurrent build.
pub(crate) struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let path = std::mem::take(&mut self.0);
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return remove_tree(&path);
        };
        let trash = parent.join(TRASH);
        let _ = std::fs::create_dir(&trash);
        match std::fs::rename(&path, trash.join(name)) {
            Ok(()) => sweep_trash(parent),
            Err(_) => remove_tree(&path),
        }
    }
}

/// Deletes, on a background thread, whatever is in `<tmp>/trash/` (left by this build or by
/// earlier ones that exited before their deletion ended). Best effort: two builds sweeping at
/// once, or an exit mid-way, only leave work for the next sweep.
pub(crate) fn sweep_trash(tmp: &Path) {
    let trash = tmp.join(TRASH);
    let sweep = move || {
        if let Ok(entries) = std::fs::read_dir(&trash) {
            for entry in entries.flatten() {
                remove_tree(&entry.path());
            }
        }
    };
    let spawned = std::thread::Builder::new()
        .name("pyslip-trash".into())
        .spawn(sweep);
    drop(spawned);
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn dropped_scratch_leaves_at_once_and_is_deleted_in_the_background() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = (0..3)
            .map(|i| tmp.path().join(format!("deps-{i}")))
            .collect();
        // Trash an earlier build left behind is swept too.
        let old = tmp.path().join(TRASH).join("deps-old");
        std::fs::create_dir_all(old.join("a/b")).unwrap();
        for dir in &dirs {
            let locked = dir.join("work/work");
            std::fs::create_dir_all(&locked).unwrap();
            std::fs::write(locked.join("f"), b"x").unwrap();
            std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
            std::fs::set_permissions(dir.join("work"), std::fs::Permissions::from_mode(0o500))
                .unwrap();
            drop(Scratch(dir.clone()));
            assert!(
                !dir.exists(),
                "{} is still in place after the drop",
                dir.display()
            );
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let trash = tmp.path().join(TRASH);
        while std::fs::read_dir(&trash).unwrap().next().is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "trash was not emptied"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
