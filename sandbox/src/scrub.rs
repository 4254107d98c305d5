//! Removing the mountpoints the sandbox created in the overlay upper dir.
//!
//! Bind targets and system mountpoints missing from the lower root (`/etc/resolv.conf` in most
//! base images) must exist to be mounted on, so the sandbox creates them through the overlay
//! and they land in `upper`. They are reported in [`crate::Output::created_mountpoints`]; the
//! command cannot change them (all mounts are locked by a nested user namespace, and a
//! mountpoint cannot be removed while mounted), so removing the pristine entries afterwards
//! restores exactly the command's changes.

use std::io;
use std::path::Path;

use crate::error::SandboxError;

/// Removes each reported mountpoint from `upper` if it is still what the sandbox created (an
/// empty regular file or an empty directory), children first; anything else is left alone
/// (e.g. a created parent directory into which the command wrote other files).
pub fn remove_mountpoints(upper: &Path, created: &[String]) -> Result<(), SandboxError> {
    for relative in created.iter().rev() {
        if relative
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            continue;
        }
        let path = upper.join(relative);
        let meta = match fs_err::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(SandboxError::Io(e)),
        };
        let result = if meta.is_file() && meta.len() == 0 {
            fs_err::remove_file(&path)
        } else if meta.is_dir() {
            match fs_err::remove_dir(&path) {
                Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => Ok(()),
                other => other,
            }
        } else {
            Ok(())
        };
        result.map_err(SandboxError::Io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_pristine_mountpoints_and_keeps_real_changes() {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path();
        fs_err::create_dir_all(upper.join("etc")).unwrap();
        fs_err::write(upper.join("etc/resolv.conf"), b"").unwrap();
        fs_err::create_dir_all(upper.join("root/.cache/uv")).unwrap();
        fs_err::create_dir_all(upper.join("root/.cache/pip")).unwrap();
        fs_err::write(upper.join("root/.cache/pip/kept"), b"x").unwrap();
        fs_err::create_dir_all(upper.join("work")).unwrap();
        fs_err::write(upper.join("work/data"), b"not empty").unwrap();
        let created: Vec<String> = [
            "etc/resolv.conf",
            "root/.cache",
            "root/.cache/uv",
            "work/data",
            "../x",
        ]
        .map(String::from)
        .to_vec();
        remove_mountpoints(upper, &created).unwrap();
        assert!(!upper.join("etc/resolv.conf").exists());
        assert!(upper.join("etc").is_dir(), "not reported, so kept");
        assert!(!upper.join("root/.cache/uv").exists());
        assert!(
            upper.join("root/.cache/pip/kept").exists(),
            "non-empty dir is kept"
        );
        assert!(upper.join("work/data").exists(), "non-empty file is kept");
    }
}
