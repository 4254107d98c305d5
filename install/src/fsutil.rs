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

/// A scratch directory removed (with [`remove_tree`]) when dropped, on a thread of its own: an
/// install's upper dir holds thousands of files (0.5 s to delete), and nothing waits for it but
/// the end of the process ([`finish_cleanup`]).
pub(crate) struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let path = std::mem::take(&mut self.0);
        let spawned = std::thread::Builder::new()
            .name("pyslip-cleanup".into())
            .spawn({
                let path = path.clone();
                move || remove_tree(&path)
            });
        match spawned {
            Ok(handle) => pending().push(handle),
            Err(_) => remove_tree(&path),
        }
    }
}

/// Removals still running.
fn pending() -> std::sync::MutexGuard<'static, Vec<std::thread::JoinHandle<()>>> {
    static PENDING: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> =
        std::sync::Mutex::new(Vec::new());
    PENDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits until every scratch directory dropped so far is removed. Call it before the process
/// exits; a removal cut short by an exit leaves only a stray folder in `<cache>/tmp`.
pub fn finish_cleanup() {
    let handles = std::mem::take(&mut *pending());
    for handle in handles {
        let _ = handle.join();
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn dropped_scratch_is_gone_after_finish_cleanup() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = (0..3).map(|i| tmp.path().join(format!("s{i}"))).collect();
        for dir in &dirs {
            let locked = dir.join("work/work");
            std::fs::create_dir_all(&locked).unwrap();
            std::fs::write(locked.join("f"), b"x").unwrap();
            std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
            std::fs::set_permissions(dir.join("work"), std::fs::Permissions::from_mode(0o500))
                .unwrap();
            drop(Scratch(dir.clone()));
        }
        finish_cleanup();
        for dir in &dirs {
            assert!(!dir.exists(), "{} was not removed", dir.display());
        }
    }
}
