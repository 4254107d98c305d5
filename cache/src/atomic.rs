//! Atomic file writes: a temp file (locked while written, see
//! `pyslip_lifecycle::scratch::temp_file_in`) filled, flushed to disk and renamed into place, so
//! a reader sees the old file or the whole new one, and a killed writer leaves only a temp file
//! that the next sweep removes.

use std::io::{self, Write as _};
use std::path::Path;

use pyslip_lifecycle::scratch::temp_file_in;
use tempfile::NamedTempFile;

/// Prefix of the temp files [`write_atomic_in`] writes (hidden, so that a sweep of a folder that
/// holds finished entries too can tell them apart).
pub const TEMP_PREFIX: &str = ".tmp-";

/// Write `dest` through a temp file `<tmp_dir>/<prefix>…` (on the file system of `dest`: the
/// folder of `dest` itself, or the cache's `tmp/`), filled by `fill`, fsynced and renamed into
/// place. Errors name the path.
pub fn write_atomic_with(
    tmp_dir: &Path,
    prefix: &str,
    dest: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> io::Result<()>,
) -> io::Result<()> {
    let mut file = temp_file_in(tmp_dir, prefix)?;
    fill(file.as_file_mut()).map_err(|e| named(e, "writing", dest))?;
    publish(file, dest)
}

/// Write `bytes` to `dest` through a temp file in `tmp_dir`, fsynced and renamed into place.
pub fn write_atomic_in(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(tmp_dir, TEMP_PREFIX, dest, |file| file.write_all(bytes))
}

/// Flush `file` to disk and rename it to `dest`. Renaming over an existing `dest` replaces it
/// atomically: two writers publishing the same content both succeed.
pub(crate) fn publish(file: NamedTempFile, dest: &Path) -> io::Result<()> {
    file.as_file()
        .sync_all()
        .map_err(|e| named(e, "flushing", dest))?;
    file.persist(dest)
        .map_err(|e| named(e.error, "publishing", dest))?;
    Ok(())
}

fn named(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_the_whole_file_and_leave_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("f");
        write_atomic_in(dir.path(), &dest, b"first").expect("write");
        write_atomic_in(dir.path(), &dest, b"second").expect("rewrite");
        assert_eq!(fs_err::read(&dest).expect("read"), b"second");
        let names: Vec<_> = fs_err::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["f"], "a temp file was left behind");
    }

    #[test]
    fn a_failed_fill_leaves_the_old_file_and_names_the_destination() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("f");
        write_atomic_in(dir.path(), &dest, b"old").expect("write");
        let err = write_atomic_with(dir.path(), ".x-", &dest, |_| {
            Err(io::Error::other("no more bytes"))
        })
        .expect_err("fails");
        assert!(err.to_string().contains(&*dest.to_string_lossy()), "{err}");
        assert_eq!(fs_err::read(&dest).expect("read"), b"old");
        assert_eq!(fs_err::read_dir(dir.path()).expect("list").count(), 1);
    }
}
