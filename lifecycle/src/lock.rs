//! The owner lock of a scratch dir or temp file: an exclusive `flock` on an open descriptor,
//! released by the kernel when the owner exits (also on `kill -9`).

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
