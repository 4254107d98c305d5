//! Sandbox scratch directories: locked while in use, deleted in the background when done.

use std::io;
use std::ops::Deref;
use std::path::Path;

use pyslip_lifecycle::scratch::{ScratchDir, TRASH};

/// A scratch directory (`<cache>/tmp/<prefix>…`) deleted when dropped, without making the build
/// wait: it is renamed into `trash/` beside it (instant) and deleted there on a background thread.
/// An install's upper dir holds thousands of files (0.5 s to delete); the build goes on pushing
/// meanwhile. When the process exits first, the rest of the trash is deleted by a later build.
///
/// While in use the directory is locked (see `pyslip_lifecycle::scratch`): a build killed with it
/// in place leaves it unlocked, and the next build's sweep removes it; a live scratch dir of a
/// concurrent build is never touched. An interrupted build removes its own before it exits.
pub(crate) struct Scratch(Option<ScratchDir>);

impl Scratch {
    /// Creates `<parent>/<prefix><random>`, locked.
    pub(crate) fn new_in(parent: &Path, prefix: &str) -> io::Result<Scratch> {
        ScratchDir::new_in(parent, prefix).map(|dir| Scratch(Some(dir)))
    }
}

impl Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.as_ref().map_or(Path::new(""), |d| d.path())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let trash = dir.parent().map(|p| p.join(TRASH));
            match trash {
                Some(trash) => dir.discard_in_background(&trash),
                None => drop(dir),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn dropped_scratch_leaves_at_once_and_is_deleted_in_the_background() {
        let tmp = tempfile::tempdir().unwrap();
        // Trash an earlier build left behind is deleted too.
        let old = tmp.path().join(TRASH).join("deps-old");
        std::fs::create_dir_all(old.join("a/b")).unwrap();
        for _ in 0..3 {
            let scratch = Scratch::new_in(tmp.path(), "deps-").unwrap();
            let dir: PathBuf = scratch.to_path_buf();
            let locked = dir.join("work/work");
            std::fs::create_dir_all(&locked).unwrap();
            std::fs::write(locked.join("f"), b"x").unwrap();
            std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
            std::fs::set_permissions(dir.join("work"), std::fs::Permissions::from_mode(0o500))
                .unwrap();
            drop(scratch);
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
