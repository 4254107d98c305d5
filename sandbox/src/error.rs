//! Errors of the sandbox, with hints for the ones a user can act on.

use std::io;
use std::path::PathBuf;

/// What keeps unprivileged user namespaces or rootless overlayfs from working on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocker {
    /// Debian/older Ubuntu sysctl `kernel.unprivileged_userns_clone=0`.
    UnprivilegedUsernsClone,
    /// `user.max_user_namespaces=0` (or the per-user limit is exhausted).
    MaxUserNamespaces,
    /// Ubuntu ≥ 23.10 AppArmor restriction `kernel.apparmor_restrict_unprivileged_userns=1`.
    AppArmorRestriction,
    /// A seccomp filter (e.g. Docker's default profile) or a container runtime denies `unshare`/`clone`.
    Seccomp,
    /// Overlayfs in a user namespace is refused (kernel < 5.11 without `userxattr`, or the upper
    /// directory's filesystem has no user xattrs).
    RootlessOverlay,
}

impl Blocker {
    /// The blocking setting, as named in the error message.
    pub fn setting(self) -> &'static str {
        match self {
            Blocker::UnprivilegedUsernsClone => "sysctl kernel.unprivileged_userns_clone=0",
            Blocker::MaxUserNamespaces => "sysctl user.max_user_namespaces=0",
            Blocker::AppArmorRestriction => "sysctl kernel.apparmor_restrict_unprivileged_userns=1",
            Blocker::Seccomp => "a seccomp filter or container runtime that denies unshare",
            Blocker::RootlessOverlay => "overlayfs refuses to mount in a user namespace",
        }
    }

    /// How to lift the block.
    pub fn fix(self) -> &'static str {
        match self {
            Blocker::UnprivilegedUsernsClone => {
                "run `sudo sysctl -w kernel.unprivileged_userns_clone=1` (persist it in /etc/sysctl.d/)"
            }
            Blocker::MaxUserNamespaces => {
                "run `sudo sysctl -w user.max_user_namespaces=15000` (persist it in /etc/sysctl.d/)"
            }
            Blocker::AppArmorRestriction => {
                "run `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, or add an AppArmor profile granting `userns` to pyslip"
            }
            Blocker::Seccomp => {
                "run the job's container with `--security-opt seccomp=unconfined` (a Kubernetes pod: `securityContext.seccompProfile.type: Unconfined`), or a profile allowing unshare/clone with namespace flags"
            }
            Blocker::RootlessOverlay => {
                "keep pyslip's cache (`XDG_CACHE_HOME`) on a file system with user xattrs (ext4, xfs, btrfs; tmpfs needs Linux 6.6) — not on an overlay file system such as a container's own root: use a volume (a pod's emptyDir) — on Linux 5.12 or newer"
            }
        }
    }
}

/// Everything that can go wrong while preparing or running a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// User namespaces or rootless overlayfs are not available on this host.
    #[error("rootless sandbox unavailable: {}", blocker.setting())]
    Unavailable {
        /// The setting that blocks it.
        blocker: Blocker,
        /// The failing system call's error.
        #[source]
        source: io::Error,
    },
    /// A caller-supplied value cannot be used (NUL byte, relative path, `..` component …).
    #[error("invalid sandbox {what} {value:?}: {reason}")]
    Invalid {
        /// Which input (`argv`, `env`, `cwd`, `bind target` …).
        what: &'static str,
        /// The offending value.
        value: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A bind mount source could not be opened safely (missing, or a symlink in its path).
    #[error("cannot open bind mount source {}", path.display())]
    BindSource {
        /// The host path.
        path: PathBuf,
        /// The error from `openat2` (ELOOP when a component is a symlink).
        #[source]
        source: io::Error,
    },
    /// A step of the namespace/mount setup failed inside the sandbox.
    #[error("sandbox setup failed: {step}")]
    Setup {
        /// Description of the failing step.
        step: String,
        /// The system call's error.
        #[source]
        source: io::Error,
    },
    /// The command could not be executed inside the sandbox.
    #[error("cannot execute {program:?} in the sandbox")]
    Exec {
        /// `argv[0]`.
        program: String,
        /// The error of the last `execve` attempt.
        #[source]
        source: io::Error,
    },
    /// Creating pipes, sockets or the sandbox process itself failed.
    #[error("cannot start the sandbox process")]
    Spawn(#[source] io::Error),
    /// The sandbox's PID 1 went away without reporting the command's status.
    #[error("sandbox init exited unexpectedly ({0})")]
    Lost(String),
    /// File system work outside the sandbox (probe scratch space, mountpoint cleanup).
    #[error("sandbox file operation failed")]
    Io(#[source] io::Error),
}

impl SandboxError {
    /// What to change so the sandbox works here (for a host that blocks it), without the
    /// alternative of building without namespaces.
    pub fn remedy(&self) -> Option<String> {
        match self {
            SandboxError::Unavailable { blocker, .. } => Some(blocker.fix().to_owned()),
            _ => self.hint(),
        }
    }

    /// An actionable hint for the user, printed by the binary as a `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            SandboxError::Unavailable { blocker, .. } => Some(format!(
                "{}; or build without namespaces: --sandbox none (--sandbox auto picks it by itself)",
                blocker.fix()
            )),
            SandboxError::BindSource { source, .. } if source.raw_os_error() == Some(libc::ELOOP) => {
                Some("bind mount sources must not contain symlinks; canonicalize trusted host paths first, and clear the cache directory if a build planted a symlink there".to_owned())
            }
            SandboxError::Exec { source, .. } if source.kind() == io::ErrorKind::NotFound => Some(
                "the program is not in the root filesystem or not on the PATH passed to the sandbox"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}
