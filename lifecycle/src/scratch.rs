//! Scratch directories and temp files owned by this process: each is `flock`ed while in use (so
//! [`crate::sweep`] never removes a live one of a concurrent build) and listed in a process-wide
//! registry (so an interrupted build removes its own with [`discard_live`] before it exits).
//!
//! Creation is race-free against a sweeper: the entry is created, locked, and then checked to
//! still be under its name; a sweeper that got to it first holds the lock or has moved it away,
//! and a new name is tried.

use std::io;
use std::ops::Deref;
use std::os::fd::{AsFd as _, OwnedFd};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Names tried before giving up (each lost only to a sweeper in a microsecond window).
const ATTEMPTS: usize = 16;

/// Name of the folder (beside scratch dirs) that holds dead scratch dirs until they are deleted.
pub const TRASH: &str = "trash";

/// One live entry of this process.
#[derive(Debug)]
struct Live {
    id: u64,
    path: PathBuf,
    identity: (u64, u64),
    dir: bool,
}

static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());
/// Trash folders this process moved scratch dirs into (emptied by [`discard_live`] too).
static TRASHES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn live() -> MutexGuard<'static, Vec<Live>> {
    LIVE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn register(path: &Path, identity: (u64, u64), dir: bool) -> u64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut live = live();
    if !dir && live.len() > 64 {
        // Temp files are never unregistered (they leave by rename or drop inside `tempfile`):
        // forget those whose name is gone.
        live.retain(|l| l.dir || lock::names(&l.path, l.identity));
    }
    live.push(Live {
        id,
        path: path.to_owned(),
        identity,
        dir,
    });
    id
}

fn remember_trash(trash: &Path) {
    let mut trashes = TRASHES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !trashes.iter().any(|t| t == trash) {
        trashes.push(trash.to_owned());
    }
}

fn unregister(id: u64) {
    live().retain(|l| l.id != id);
}

/// A scratch directory, locked by this process while it exists, removed when dropped.
///
/// Dereferences to its path.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
    /// Holds the lock; `None` once persisted or discarded.
    lock: Option<OwnedFd>,
    id: u64,
}

impl ScratchDir {
    /// Creates `<parent>/<prefix><random>` (mode 0700), locked and registered.
    pub fn new_in(parent: &Path, prefix: &str) -> io::Result<ScratchDir> {
        for _ in 0..ATTEMPTS {
            let path = tempfile::Builder::new()
                .prefix(prefix)
                .tempdir_in(parent)
                .map_err(|e| named(e, "creating a scratch directory in", parent))?
                .keep();
            let fd = lock::open(&path).map_err(|e| named(e, "opening", &path))?;
            if lock::claim(&fd, &path)? {
                let id = register(&path, lock::identity(&fd)?, true);
                return Ok(ScratchDir {
                    path,
                    lock: Some(fd),
                    id,
                });
            }
        }
        Err(io::Error::other(format!(
            "could not create a scratch directory in {} that stayed ours",
            parent.display()
        )))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the directory to `dest` (same file system) and gives up ownership: `dest` is a
    /// finished entry now. On error the directory stays a scratch dir (removed on drop).
    pub fn persist(mut self, dest: &Path) -> io::Result<()> {
        fs_err::rename(&self.path, dest)?;
        self.release();
        Ok(())
    }

    /// Moves the directory into `trash` (instant) and deletes it there on a background thread,
    /// so the caller does not wait for a large tree to be deleted. What the process does not
    /// finish deleting before it exits is deleted by a later [`crate::sweep::sweep`].
    pub fn discard_in_background(mut self, trash: &Path) {
        if crate::interrupt::interrupted().is_some() {
            // The process is about to exit: the drop removes it in place, and [`discard_live`]
            // waits for that.
            return;
        }
        remember_trash(trash);
        let _ = fs_err::create_dir(trash);
        let moved = self
            .path
            .file_name()
            .map(|name| trash.join(name))
            .filter(|to| std::fs::rename(&self.path, to).is_ok());
        if moved.is_some() {
            self.release();
            crate::sweep::empty_trash_in_background(trash);
        }
        // Otherwise the drop removes it in place.
    }

    fn release(&mut self) {
        unregister(self.id);
        self.lock = None;
    }
}

impl Deref for ScratchDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if self.lock.is_some() {
            remove_tree(&self.path);
            self.release();
        }
    }
}

/// Creates a temp file `<dir>/<prefix><random>`, locked (through its own descriptor, so the
/// lock lasts as long as the file is open) and registered. Publish it with
/// [`tempfile::NamedTempFile::persist`] as usual; dropping it deletes it.
pub fn temp_file_in(dir: &Path, prefix: &str) -> io::Result<tempfile::NamedTempFile> {
    for _ in 0..ATTEMPTS {
        let file = tempfile::Builder::new()
            .prefix(prefix)
            .tempfile_in(dir)
            .map_err(|e| named(e, "creating a temp file in", dir))?;
        if lock::claim(file.as_file().as_fd(), file.path())? {
            register(file.path(), lock::identity(file.as_file())?, false);
            return Ok(file);
        }
        // A sweeper took it: forget the name without deleting whatever is there now.
        drop(file.into_temp_path().keep());
    }
    Err(io::Error::other(format!(
        "could not create a temp file in {} that stayed ours",
        dir.display()
    )))
}

fn named(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Removes this process's live scratch dirs and temp files, and empties the trash folders it
/// used (called once pyslip was interrupted and its children killed). Writers may still be
/// finishing, so a directory is retried until `deadline`; what remains is swept by the next
/// build.
pub fn discard_live(deadline: Instant) {
    discard_where(deadline, |_| true);
    let trashes = TRASHES.lock().map(|t| t.clone()).unwrap_or_default();
    for trash in trashes {
        loop {
            crate::sweep::empty_trash(&trash);
            let empty = std::fs::read_dir(&trash).map_or(true, |mut d| d.next().is_none());
            if empty || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn discard_where(deadline: Instant, pick: impl Fn(&Path) -> bool) {
    let entries: Vec<Live> = {
        let mut live = live();
        let (picked, kept): (Vec<Live>, Vec<Live>) = std::mem::take(&mut *live)
            .into_iter()
            .partition(|l| pick(&l.path));
        *live = kept;
        picked
    };
    for entry in &entries {
        if !entry.dir && lock::names(&entry.path, entry.identity) {
            let _ = std::fs::remove_file(&entry.path);
        }
    }
    for entry in entries.iter().filter(|e| e.dir) {
        while lock::names(&entry.path, entry.identity) {
            remove_tree(&entry.path);
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Removes `path` recursively, first making every directory in it writable (overlayfs leaves a
/// mode-0000 `work/work`; installs and base images have read-only directories). Best effort: what
/// cannot be removed is left for a later sweep.
pub fn remove_tree(path: &Path) {
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
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        open_up(path);
        let _ = std::fs::remove_dir_all(path);
    } else {
        let _ = std::fs::remove_file(path);
    }
}

/// The owner lock of a scratch dir or temp file: an exclusive `flock` on an open descriptor,
/// released by the kernel when the owner exits (also on `kill -9`).
pub(crate) mod lock {
    use std::io;
    use std::os::fd::{AsFd, OwnedFd};
    use std::path::Path;

    use rustix::fs::{FlockOperation, Mode, OFlags};

    /// Takes the exclusive lock without blocking: `Ok(false)` when someone else holds it.
    pub(crate) fn try_lock(fd: impl AsFd) -> io::Result<bool> {
        match rustix::fs::flock(fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens `path` itself (never a symlink's target, never blocking on a FIFO) for locking.
    pub(crate) fn open(path: &Path) -> io::Result<OwnedFd> {
        Ok(rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }

    /// Device and inode of an open file.
    pub(crate) fn identity(fd: impl AsFd) -> io::Result<(u64, u64)> {
        let stat = rustix::fs::fstat(fd)?;
        Ok((stat.st_dev, stat.st_ino))
    }

    /// Whether `path` still names the file `identity` describes (not renamed or removed since).
    pub(crate) fn names(path: &Path, identity: (u64, u64)) -> bool {
        rustix::fs::lstat(path).is_ok_and(|s| (s.st_dev, s.st_ino) == identity)
    }

    /// Locks `fd`, which was just created at `path`: `Ok(true)` when the lock is ours and `path`
    /// still names the file, i.e. no sweeper took it in between (it would hold the lock or have
    /// removed the name; the caller then creates another).
    pub(crate) fn claim(fd: impl AsFd, path: &Path) -> io::Result<bool> {
        let fd = fd.as_fd();
        Ok(try_lock(fd)? && names(path, identity(fd)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locked_by_someone(path: &Path) -> bool {
        let fd = lock::open(path).unwrap();
        !lock::try_lock(&fd).unwrap()
    }

    #[test]
    fn a_scratch_dir_is_locked_while_alive_and_removed_on_drop() {
        let parent = tempfile::tempdir().unwrap();
        let dir = ScratchDir::new_in(parent.path(), "deps-").unwrap();
        let path = dir.path().to_owned();
        fs_err::create_dir_all(path.join("work/work")).unwrap();
        fs_err::set_permissions(
            path.join("work/work"),
            std::fs::Permissions::from_mode(0o000),
        )
        .unwrap();
        assert!(locked_by_someone(&path));
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn a_persisted_dir_is_no_longer_locked_or_removed() {
        let parent = tempfile::tempdir().unwrap();
        let dir = ScratchDir::new_in(parent.path(), ".tmp-root-").unwrap();
        let dest = parent.path().join("root");
        dir.persist(&dest).unwrap();
        assert!(dest.is_dir());
        assert!(!locked_by_someone(&dest));
    }

    #[test]
    fn a_temp_file_is_locked_until_closed() {
        let dir = tempfile::tempdir().unwrap();
        let file = temp_file_in(dir.path(), ".blob-").unwrap();
        assert!(locked_by_someone(file.path()));
        let dest = dir.path().join("blob");
        let persisted = file.persist(&dest).unwrap();
        drop(persisted);
        assert!(!locked_by_someone(&dest));
    }

    #[test]
    fn discard_live_removes_only_what_is_still_ours() {
        let parent = tempfile::tempdir().unwrap();
        let dir = ScratchDir::new_in(parent.path(), "static-").unwrap();
        fs_err::write(dir.join("f"), b"x").unwrap();
        let file = temp_file_in(parent.path(), ".tmp-").unwrap();
        let kept = parent.path().join("kept");
        let published = temp_file_in(parent.path(), ".tmp-").unwrap();
        published.persist(&kept).unwrap();
        let (dir_path, file_path) = (dir.path().to_owned(), file.path().to_owned());
        // Only this test's entries: other tests of this binary run at the same time.
        discard_where(Instant::now() + Duration::from_secs(2), |p| {
            p.starts_with(parent.path())
        });
        assert!(!dir_path.exists());
        assert!(!file_path.exists());
        assert!(kept.exists(), "a published file was removed");
        // The owners' drops find nothing left to remove.
        drop((dir, file));
    }
}
