//! Public description of one sandbox run and its result.

use std::path::PathBuf;

/// One command run in a rootless sandbox whose root is an overlay of `lower` with `upper` on top.
///
/// The invoking user is mapped to root (`0 <uid> 1`, `setgroups deny`); the host network is shared.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// Read-only lower roots, topmost first (e.g. a dependency root, then the base root). They are
    /// never modified and may be shared by concurrent sandboxes.
    pub lower: Vec<PathBuf>,
    /// Fresh, empty overlay upper directory: after the run it holds exactly the changed files
    /// (deletions as char 0/0 whiteouts, opaque dirs as `user.overlay.opaque`).
    pub upper: PathBuf,
    /// Fresh, empty overlay work directory on the same filesystem as `upper`. The kernel leaves a
    /// mode-0000 `work/work` directory in it: `chmod` it before removing.
    pub work: PathBuf,
    /// Extra bind mounts, applied in order after the system mounts.
    pub mounts: Vec<BindMount>,
    /// The complete environment of the command (nothing from the caller's env is inherited).
    pub env: Vec<(String, String)>,
    /// Absolute working directory inside the sandbox.
    pub cwd: String,
    /// Host name inside the sandbox's UTS namespace (empty keeps the host's).
    pub hostname: String,
}

/// A host path mounted into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Host path. No component may be a symlink (it is opened with `RESOLVE_NO_SYMLINKS`), so a
    /// symlink planted in a cache directory cannot redirect the mount to another host path;
    /// canonicalize trusted host paths (e.g. the CA bundle) before passing them.
    pub source: PathBuf,
    /// Absolute path inside the sandbox; created (and reported in
    /// [`Output::created_mountpoints`]) when missing. Its parent components must not be symlinks.
    pub target: String,
    /// Whether the sandbox may write through the mount (package caches) or not (project files).
    pub writable: bool,
}

/// Where the command's stdout and stderr go (stdin is always `/dev/null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// Share the caller's stdout/stderr.
    Inherit,
    /// Capture each stream, keeping at most the last `limit` bytes of each.
    Capture {
        /// Bytes kept per stream (the tail: an installer's error is at the end).
        limit: usize,
    },
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl ExitStatus {
    /// True for `Code(0)`.
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

/// The result of [`Sandbox::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How the command ended.
    pub status: ExitStatus,
    /// Captured stdout tail (empty with [`Stdio::Inherit`]).
    pub stdout: Vec<u8>,
    /// Captured stderr tail (empty with [`Stdio::Inherit`]).
    pub stderr: Vec<u8>,
    /// Bytes of stdout dropped because of the capture limit.
    pub stdout_dropped: u64,
    /// Bytes of stderr dropped because of the capture limit.
    pub stderr_dropped: u64,
    /// Paths (relative to the root, parents before children) that the sandbox created in the
    /// overlay as mountpoints. They are in `upper` but are not the command's work: remove them
    /// with [`crate::remove_mountpoints`] before turning `upper` into a layer.
    pub created_mountpoints: Vec<String>,
}
