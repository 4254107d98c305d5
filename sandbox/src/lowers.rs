//! Overlay lower-dir lists the kernel accepts, however long their paths.
//!
//! Overlay's `lowerdir` is one `fsconfig` string, and the kernel copies at most 256 bytes of it
//! (NUL included): three or four cache paths with 64-hex names exceed that (EINVAL). Until the
//! sandbox can pass lower dirs one by one (`lowerdir+`, Linux 6.8), a list that is too long is
//! replaced by short symlinks (`<tmp>/pyslip-l.XXXX/0`, `1`, …) that overlayfs resolves when it
//! mounts.

use std::path::PathBuf;

use crate::error::SandboxError;

/// Bytes of one `fsconfig` string value the kernel copies, NUL included.
pub const LOWERDIR_MAX: usize = 256;

/// Lower dirs as a sandbox can mount them, and the guard that keeps their aliases alive: keep it
/// until the sandbox has mounted its root (for [`crate::Sandbox::run`], until it returns).
#[derive(Debug)]
pub struct ShortLowers {
    /// Holds the symlinks when the list had to be shortened; removed on drop.
    _links: Option<tempfile::TempDir>,
    /// The lower dirs to put in [`crate::Sandbox::lower`], topmost first.
    pub dirs: Vec<PathBuf>,
}

/// The length of `dirs` as the `lowerdir` option (':' and '\' escaped, separators counted).
fn option_len(dirs: &[PathBuf]) -> usize {
    dirs.iter()
        .map(|d| {
            let bytes = d.as_os_str().as_encoded_bytes();
            bytes.len() + bytes.iter().filter(|&&c| c == b':' || c == b'\\').count() + 1
        })
        .sum()
}

/// `dirs` unchanged when they fit in [`LOWERDIR_MAX`], else short symlinks to them in a fresh
/// private directory under the system temp dir.
pub fn short_lowers(dirs: Vec<PathBuf>) -> Result<ShortLowers, SandboxError> {
    if option_len(&dirs) < LOWERDIR_MAX {
        return Ok(ShortLowers { _links: None, dirs });
    }
    let links = tempfile::Builder::new()
        .prefix("pyslip-l.")
        .tempdir()
        .map_err(SandboxError::Io)?;
    let mut short = Vec::with_capacity(dirs.len());
    for (i, dir) in dirs.iter().enumerate() {
        let link = links.path().join(i.to_string());
        fs_err::os::unix::fs::symlink(dir, &link).map_err(SandboxError::Io)?;
        short.push(link);
    }
    Ok(ShortLowers {
        _links: Some(links),
        dirs: short,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lists_stay_and_long_ones_get_aliases() {
        let short = vec![PathBuf::from("/c/a"), PathBuf::from("/c/b")];
        assert_eq!(short_lowers(short.clone()).unwrap().dirs, short);

        let real = tempfile::tempdir().unwrap();
        let long: Vec<PathBuf> = (0..4)
            .map(|i| {
                let d = real.path().join(format!("{i}{}", "x".repeat(80)));
                fs_err::create_dir(&d).unwrap();
                d
            })
            .collect();
        assert!(option_len(&long) >= LOWERDIR_MAX);
        let aliased = short_lowers(long.clone()).unwrap();
        assert!(option_len(&aliased.dirs) < LOWERDIR_MAX);
        for (alias, dir) in aliased.dirs.iter().zip(&long) {
            assert_eq!(
                fs_err::canonicalize(alias).unwrap(),
                fs_err::canonicalize(dir).unwrap()
            );
        }
        let links = aliased.dirs[0].parent().unwrap().to_owned();
        drop(aliased);
        assert!(!links.exists(), "aliases outlived their guard");
    }
}
