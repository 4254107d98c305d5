//! Layers of this crate unpacked as directories (`<cache>/layer-roots-v1/<digest hex>`), so a
//! later sandbox (the project install, collectstatic) can stack them as overlay lower dirs.

use std::path::{Path, PathBuf};

use layers::UnpackLimits;

use crate::error::InstallError;
use crate::request::DepsLayer;

/// Cache folder of unpacked layers.
pub(crate) use pyslip_lifecycle::folders::LAYER_ROOTS as ROOTS;

/// The directory holding `layer`'s content, unpacked from its blob on first use and reused by
/// later builds. The unpack goes to a temp dir beside the target and is renamed into place, so
/// a killed build leaves no half-unpacked root that a later build trusts; when two builds race,
/// the first rename wins and the loser's copy is dropped.
pub fn layer_root(cache_dir: &Path, layer: &DepsLayer) -> Result<PathBuf, InstallError> {
    let dir = cache_dir.join(ROOTS);
    fs_err::create_dir_all(&dir).map_err(InstallError::Cache)?;
    let dir = fs_err::canonicalize(&dir).map_err(InstallError::Cache)?;
    let root = dir.join(layer.layer.digest.hex());
    if root.is_dir() {
        return Ok(root);
    }
    let blob = fs_err::File::open(&layer.blob_path).map_err(InstallError::Cache)?;
    match layers::unpack_layers_into(&root, [blob], &UnpackLimits::default()) {
        Ok(_) => Ok(root),
        // Another build renamed its copy into place first: that one is as good.
        Err(_) if root.is_dir() => Ok(root),
        Err(e) => Err(InstallError::Unpack(e)),
    }
}

/// The kernel copies one `fsconfig` string value (the overlay's `lowerdir` list) with at most
/// this many bytes, NUL included.
const FSCONFIG_STRING_MAX: usize = 256;

/// Lower dirs for a sandbox, with a guard that keeps their short aliases alive.
pub(crate) struct Lowers {
    /// Holds the symlinks of `dirs` when they had to be shortened; removed on drop.
    _links: Option<tempfile::TempDir>,
    /// The lower dirs, topmost first.
    pub dirs: Vec<PathBuf>,
}

/// `dirs` as the sandbox can mount them. Overlay's `lowerdir` is one string value, and the
/// kernel refuses one longer than 255 bytes (EINVAL), which a cache path with two or three
/// 64-hex layer roots exceeds. Until the sandbox passes lower dirs one by one (`lowerdir+`,
/// Linux 6.8), a list that is too long is replaced by short symlinks (`<tmp>/pyslip-l.XXXX/0`,
/// `1`, …) in a fresh private temp dir: overlayfs resolves them when it mounts.
pub(crate) fn short_lowers(dirs: Vec<PathBuf>) -> Result<Lowers, InstallError> {
    let len = |dirs: &[PathBuf]| -> usize {
        dirs.iter()
            .map(|d| {
                let b = d.as_os_str().as_encoded_bytes();
                b.len() + b.iter().filter(|&&c| c == b':' || c == b'\\').count() + 1
            })
            .sum()
    };
    if len(&dirs) < FSCONFIG_STRING_MAX {
        return Ok(Lowers { _links: None, dirs });
    }
    let links = tempfile::Builder::new()
        .prefix("pyslip-l.")
        .tempdir()
        .map_err(InstallError::Cache)?;
    let mut short = Vec::with_capacity(dirs.len());
    for (i, dir) in dirs.iter().enumerate() {
        let link = links.path().join(i.to_string());
        fs_err::os::unix::fs::symlink(dir, &link).map_err(InstallError::Cache)?;
        short.push(link);
    }
    Ok(Lowers {
        _links: Some(links),
        dirs: short,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lower_lists_get_short_aliases() {
        let short = vec![PathBuf::from("/c/a"), PathBuf::from("/c/b")];
        let kept = short_lowers(short.clone()).unwrap();
        assert_eq!(kept.dirs, short);

        let real = tempfile::tempdir().unwrap();
        let long: Vec<PathBuf> = (0..3)
            .map(|i| {
                let d = real.path().join(format!("{i}{}", "x".repeat(100)));
                fs_err::create_dir(&d).unwrap();
                d
            })
            .collect();
        let aliased = short_lowers(long.clone()).unwrap();
        assert_eq!(aliased.dirs.len(), 3);
        for (alias, dir) in aliased.dirs.iter().zip(&long) {
            assert_eq!(
                &fs_err::canonicalize(alias).unwrap(),
                &fs_err::canonicalize(dir).unwrap()
            );
        }
        let total: usize = aliased.dirs.iter().map(|d| d.as_os_str().len() + 1).sum();
        assert!(total < FSCONFIG_STRING_MAX);
    }
}
