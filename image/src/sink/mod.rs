//! Where a finished image goes: a registry ([`remote`]), an OCI image layout directory
//! ([`layout`]), or a tarball that `docker load` and `podman load` accept ([`tarball`]).
//!
//! Sinks read blob bytes through [`crate::source`]; every file they write appears atomically
//! (temp file, fsync, rename), and nothing they write shares an inode with the local store.

pub mod layout;
mod lock;
pub mod remote;
pub mod tarball;

use std::io::Write as _;
use std::path::Path;

use crate::error::ImageError;

/// Prefix of the temp files sinks write before renaming them into place.
pub(crate) const TEMP_PREFIX: &str = ".pyslip-";

/// The tag part of a reference string (`host:5000/repo:tag` → `tag`, no tag → `latest`).
pub fn tag_of(reference: &str) -> &str {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag,
        _ => "latest",
    }
}

/// The directory a file is written in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Write `dest` atomically: a temp file beside it, written by `fill`, fsynced, renamed (the
/// cache's helper: the temp file is locked while written and removed if the build is
/// interrupted).
pub(crate) fn write_atomic_with(
    dest: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), ImageError> {
    pyslip_cache::write_atomic_with(parent_dir(dest), TEMP_PREFIX, dest, fill)?;
    Ok(())
}

/// Write `bytes` to `dest` atomically.
pub(crate) fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    write_atomic_with(dest, |file| file.write_all(bytes))
}

/// Copy `src` to `dest` atomically without sharing its inode: a reflink where the file system
/// supports it (btrfs, XFS: instant, and the blocks are copied on write), else a plain copy.
///
/// Never a hard link: a layout or tarball is the user's to edit, and an edit through a shared
/// inode would corrupt the cache. `reflink-copy` (maintained by the cargo-binstall team, used by
/// uv) does the FICLONE ioctl and the fallback.
pub(crate) fn copy_atomic(src: &Path, dest: &Path) -> Result<(), ImageError> {
    let dir = parent_dir(dest);
    let tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .make_in(dir, |path| {
            // `make_in` only owns (and removes) the file once this returns Ok: a copy that
            // fails half-way (a full disk) removes its own partial file.
            reflink_copy::reflink_or_copy(src, path)
                .map(|_| ())
                .inspect_err(|_| {
                    let _ = std::fs::remove_file(path);
                })
        })
        .map_err(|e| in_dir(e, &format!("copying {} to", src.display()), dest))?;
    fs_err::File::open(tmp.path())?.sync_all()?;
    tmp.persist(dest)
        .map_err(|e| in_dir(e.error, "renaming into", dest))?;
    Ok(())
}

fn in_dir(e: std::io::Error, what: &str, path: &Path) -> ImageError {
    ImageError::Io(std::io::Error::new(
        e.kind(),
        format!("{what} {}: {e}", path.display()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_of_ignores_registry_ports() {
        assert_eq!(tag_of("127.0.0.1:5000/t/stdlib:1"), "1");
        assert_eq!(tag_of("127.0.0.1:5000/t/stdlib"), "latest");
        assert_eq!(tag_of("app"), "latest");
        assert_eq!(tag_of("app:v2@sha256:abc"), "v2");
    }

    #[test]
    fn copies_never_share_the_inode() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("src");
        fs_err::write(&src, b"blob bytes").expect("write");
        let dest = dir.path().join("dest");
        copy_atomic(&src, &dest).expect("copy");
        assert_eq!(fs_err::read(&dest).expect("read"), b"blob bytes");
        let (a, b) = (
            fs_err::metadata(&src).expect("meta"),
            fs_err::metadata(&dest).expect("meta"),
        );
        assert_ne!(a.ino(), b.ino());
        assert_eq!(a.nlink(), 1);
        fs_err::write(&dest, b"edited").expect("edit");
        assert_eq!(fs_err::read(&src).expect("read"), b"blob bytes");
    }
}
