//! Removing what killed builds left: scratch dirs and temp files nobody holds a lock on.
//!
//! Every scratch dir and temp file pyslip creates in its cache is locked by its owner for as
//! long as it is in use ([`crate::scratch`]); the kernel drops the lock when the owner exits,
//! however it exits. A sweep takes the lock of each candidate itself: when it gets it, the owner
//! is gone and the entry is garbage (moved into the trash and deleted there); when it does not,
//! a concurrent build is using it and it is left alone.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::scratch::{TRASH, lock, remove_tree};

/// Which entries of a folder are temporary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Every entry (a folder that holds only scratch space, like `<cache>/tmp`), except the
    /// trash folder itself.
    All,
    /// Entries whose name starts with `.` (temp names beside finished entries, like
    /// `roots-v1/.tmp-root-*` beside `roots-v1/<hex>`).
    Hidden,
}

/// A folder to sweep.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The folder (missing is fine).
    pub dir: PathBuf,
    /// Its temporary entries.
    pub pick: Pick,
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Dead scratch dirs moved to the trash.
    pub dirs: usize,
    /// Dead temp files deleted.
    pub files: usize,
}

/// Removes the dead temporary entries `rules` name: files are deleted, directories moved into
/// `trash` (on the same file system) and the trash emptied. Entries locked by a live process
/// are kept. Best effort: an entry that cannot be removed is left for the next sweep.
pub fn sweep(rules: &[Rule], trash: &Path) -> Swept {
    let mut swept = Swept::default();
    for rule in rules {
        let Ok(entries) = std::fs::read_dir(&rule.dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !picked(rule.pick, &name) {
                continue;
            }
            match remove_if_dead(&entry.path(), trash) {
                Some(true) => swept.dirs += 1,
                Some(false) => swept.files += 1,
                None => {}
            }
        }
    }
    empty_trash(trash);
    swept
}

fn picked(pick: Pick, name: &OsStr) -> bool {
    match pick {
        Pick::All => name != TRASH,
        Pick::Hidden => name.as_encoded_bytes().starts_with(b"."),
    }
}

/// Removes `path` when nobody holds its lock: `Some(true)` for a directory, `Some(false)` for a
/// file, `None` when it is live, already gone or could not be removed.
fn remove_if_dead(path: &Path, trash: &Path) -> Option<bool> {
    let fd = match lock::open(path) {
        Ok(fd) => fd,
        // A symlink is never one of ours in use: remove it.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return std::fs::remove_file(path).ok().map(|()| false);
        }
        Err(_) => return None,
    };
    if !lock::try_lock(&fd).ok()? || !lock::names(path, lock::identity(&fd).ok()?) {
        return None;
    }
    // Holding the lock: the owner is gone and no creator can claim it any more.
    if std::fs::symlink_metadata(path).ok()?.is_dir() {
        let to = trash_name(path, trash)?;
        std::fs::rename(path, to).ok().map(|()| true)
    } else {
        std::fs::remove_file(path).ok().map(|()| false)
    }
}

/// A free name in `trash` for `path` (created if needed).
fn trash_name(path: &Path, trash: &Path) -> Option<PathBuf> {
    let _ = std::fs::create_dir(trash);
    let name = path.file_name()?.to_string_lossy().into_owned();
    (0..100)
        .map(|n| match n {
            0 => trash.join(&name),
            n => trash.join(format!("{name}.{n}")),
        })
        .find(|p| std::fs::symlink_metadata(p).is_err())
}

/// Deletes everything in `trash` (every entry there is dead: only dead dirs are moved in).
pub fn empty_trash(trash: &Path) {
    if let Ok(entries) = std::fs::read_dir(trash) {
        for entry in entries.flatten() {
            remove_tree(&entry.path());
        }
    }
}

/// [`empty_trash`] on a background thread the process does not wait for; what is left when it
/// exits is deleted by a later sweep.
pub fn empty_trash_in_background(trash: &Path) {
    let trash = trash.to_owned();
    let spawned = std::thread::Builder::new()
        .name("pyslip-trash".into())
        .spawn(move || empty_trash(&trash));
    drop(spawned);
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::process::Command;

    use super::*;
    use crate::scratch::{ScratchDir, temp_file_in};

    /// Creates a locked scratch dir and temp file in a child process that is then killed with
    /// SIGKILL (its locks die with it), printing their paths.
    fn leftovers_of_a_killed_process(tmp: &Path, roots: &Path) -> Vec<PathBuf> {
        let script = format!(
            "mkdir {tmp}/deps-dead {tmp}/deps-dead/work {tmp}/deps-dead/work/work && \
             chmod 0 {tmp}/deps-dead/work/work && \
             mkdir {roots}/.tmp-root-dead && \
             exec 8<{tmp}/deps-dead 9<{roots}/.tmp-root-dead && \
             flock -x 8 && flock -x 9 && echo > {tmp}/.blob-dead && kill -9 $$",
            tmp = tmp.display(),
            roots = roots.display()
        );
        let status = Command::new("/bin/sh")
            .args(["-c", &script])
            .status()
            .unwrap();
        assert!(!status.success());
        vec![
            tmp.join("deps-dead"),
            roots.join(".tmp-root-dead"),
            tmp.join(".blob-dead"),
        ]
    }

    #[test]
    fn sweeps_dead_entries_and_keeps_live_and_finished_ones() {
        let cache = tempfile::tempdir().unwrap();
        let (tmp, roots) = (cache.path().join("tmp"), cache.path().join("roots-v1"));
        fs_err::create_dir_all(&tmp).unwrap();
        fs_err::create_dir_all(roots.join("finished")).unwrap();
        let dead = leftovers_of_a_killed_process(&tmp, &roots);
        let live_dir = ScratchDir::new_in(&tmp, "deps-").unwrap();
        let live_root = ScratchDir::new_in(&roots, ".tmp-root-").unwrap();
        let live_file = temp_file_in(&tmp, ".blob-").unwrap();
        fs_err::os::unix::fs::symlink("/etc", tmp.join("planted")).unwrap();

        let trash = tmp.join(TRASH);
        let swept = sweep(
            &[
                Rule {
                    dir: tmp.clone(),
                    pick: Pick::All,
                },
                Rule {
                    dir: roots.clone(),
                    pick: Pick::Hidden,
                },
            ],
            &trash,
        );
        assert_eq!(
            swept,
            Swept { dirs: 2, files: 2 },
            "two dead dirs, a dead file and a symlink"
        );
        for path in &dead {
            assert!(!path.exists(), "{} survived", path.display());
        }
        assert!(live_dir.exists() && live_root.exists() && live_file.path().exists());
        assert!(roots.join("finished").exists());
        assert!(std::fs::symlink_metadata(tmp.join("planted")).is_err());
        assert_eq!(std::fs::read_dir(&trash).unwrap().count(), 0);
        assert!(std::path::Path::new("/etc").exists());
    }

    #[test]
    fn trash_is_emptied_even_with_unwritable_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let trash = tmp.path().join(TRASH);
        fs_err::create_dir_all(trash.join("old/a/b")).unwrap();
        fs_err::set_permissions(trash.join("old/a"), std::fs::Permissions::from_mode(0o500))
            .unwrap();
        empty_trash(&trash);
        assert_eq!(std::fs::read_dir(&trash).unwrap().count(), 0);
    }
}
