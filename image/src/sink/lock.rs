//! An advisory lock on an OCI layout directory: `flock` on `<dir>/index.json.lock`, held while
//! `index.json` is read, changed and renamed into place, so builds writing one layout at once
//! keep each other's entries. The lock is released when the file is closed, also when the
//! process dies, so a killed build never leaves the layout locked.

use std::path::Path;

use rustix::fs::{FlockOperation, flock};

use crate::error::ImageError;

/// The lock file's name inside the layout.
pub const LOCK_FILE: &str = "index.json.lock";

/// Held while alive.
pub(crate) struct LayoutLock {
    _file: fs_err::File,
}

impl LayoutLock {
    /// Wait for and take the exclusive lock of the layout at `dir` (which must exist).
    pub(crate) fn acquire(dir: &Path) -> Result<Self, ImageError> {
        let path = dir.join(LOCK_FILE);
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        flock(file.file(), FlockOperation::LockExclusive).map_err(|errno| {
            ImageError::Io(std::io::Error::new(
                std::io::Error::from(errno).kind(),
                format!("locking {}: {errno}", path.display()),
            ))
        })?;
        Ok(Self { _file: file })
    }
}
