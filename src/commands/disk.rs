//! The hint for a full disk or a read-only file system, wherever in the error chain it shows:
//! a cache write, a layer unpack, the installer's own output, a `--tar`/`--oci-layout` output.

use std::io;

use crate::cache::{Cache, CacheError};

/// What went wrong with the file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    Full,
    ReadOnly,
}

/// Words the kernel's messages use, for causes that carry only text (an installer's output).
const MESSAGES: &[(&str, Problem)] = &[
    ("No space left on device", Problem::Full),
    ("Disk quota exceeded", Problem::Full),
    ("Read-only file system", Problem::ReadOnly),
];

fn problem(err: &anyhow::Error) -> Option<Problem> {
    let by_kind = err
        .chain()
        .find_map(|cause| match cause.downcast_ref::<io::Error>()?.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => Some(Problem::Full),
            io::ErrorKind::ReadOnlyFilesystem => Some(Problem::ReadOnly),
            _ => None,
        });
    by_kind.or_else(|| {
        let text = format!("{err:#}");
        MESSAGES
            .iter()
            .find(|(m, _)| text.contains(m))
            .map(|&(_, p)| p)
    })
}

/// Where the failed write went.
fn place(err: &anyhow::Error) -> String {
    let text = format!("{err:#}");
    if let Some(flag) = ["--tar", "--oci-layout"].iter().find(|f| text.contains(*f)) {
        return format!("the file system the {flag} output goes to");
    }
    match Cache::default_root() {
        Ok(root) if text.contains(&*root.to_string_lossy()) || in_cache(err) => {
            format!("the file system holding the cache ({})", root.display())
        }
        _ => "a file system pyslip writes to".to_owned(),
    }
}

/// Whether the failed write was one into the cache: its own errors, the install crate's cache
/// errors, and unpacking (pyslip unpacks only into the cache's roots).
fn in_cache(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.is::<CacheError>()
            || c.is::<layers::UnpackError>()
            || matches!(
                c.downcast_ref::<pyslip_install::InstallError>(),
                Some(
                    pyslip_install::InstallError::Cache(_) | pyslip_install::InstallError::Store(_)
                )
            )
    })
}

/// The hint when `err` comes from a full or read-only file system; nothing half-written was
/// kept (every write is a temp file renamed into place), so the same build can simply be run
/// again once there is room.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    let problem = problem(err)?;
    let place = place(err);
    let cache_tip = if place.contains("cache") {
        ", or set XDG_CACHE_HOME to a directory on another one"
    } else {
        ""
    };
    Some(match problem {
        Problem::Full => format!(
            "{place} is full: free space on it{cache_tip}, then build again (nothing half-written was kept)"
        ),
        Problem::ReadOnly => format!("{place} is read-only: make it writable{cache_tip}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_output_disk_names_the_output_flag() {
        let err = anyhow::Error::new(io::Error::from(io::ErrorKind::StorageFull))
            .context("writing --tar /out/image.tar");
        let hint = hint(&err).expect("hint");
        assert!(hint.contains("--tar output"), "{hint}");
        assert!(hint.contains("is full"), "{hint}");
    }

    #[test]
    fn an_installer_message_about_a_full_disk_is_recognised() {
        let err =
            anyhow::anyhow!("uv pip install failed: error: No space left on device (os error 28)");
        assert!(hint(&err).is_some_and(|h| h.contains("is full")));
        assert!(hint(&anyhow::anyhow!("some other failure")).is_none());
    }
}
