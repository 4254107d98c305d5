//! [`probe`]: can this host run rootless sandboxes? If not, which setting blocks it.

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::channel::{Message, channel};
use crate::error::{Blocker, SandboxError};
use crate::plan::{Plan, Stage, Step, overlay_options, user_namespace_steps};
use crate::run::{clone_error, setup_error};
use crate::spawn::{Action, ChildFds, spawn};

/// The sysctls that can disable unprivileged user namespaces (`None` when absent on this kernel).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sysctls {
    /// `kernel.unprivileged_userns_clone` (Debian and older Ubuntu kernels only).
    pub unprivileged_userns_clone: Option<i64>,
    /// `user.max_user_namespaces`.
    pub max_user_namespaces: Option<i64>,
    /// `kernel.apparmor_restrict_unprivileged_userns` (Ubuntu ≥ 23.10).
    pub apparmor_restrict: Option<i64>,
}

impl Sysctls {
    /// Reads them from `/proc/sys`.
    pub fn read() -> Sysctls {
        let read = |path: &str| {
            fs_err::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse().ok())
        };
        Sysctls {
            unprivileged_userns_clone: read("/proc/sys/kernel/unprivileged_userns_clone"),
            max_user_namespaces: read("/proc/sys/user/max_user_namespaces"),
            apparmor_restrict: read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
        }
    }
}

/// Names the blocker behind a failure at `stage`, or `None` for an ordinary error.
pub(crate) fn diagnose(stage: Stage, error: &io::Error, sysctls: &Sysctls) -> Option<Blocker> {
    let errno = error.raw_os_error()?;
    let denied = matches!(errno, libc::EPERM | libc::EACCES);
    match stage {
        Stage::UserNamespace => {
            if sysctls.unprivileged_userns_clone == Some(0) {
                Some(Blocker::UnprivilegedUsernsClone)
            } else if sysctls.max_user_namespaces == Some(0) || errno == libc::ENOSPC {
                Some(Blocker::MaxUserNamespaces)
            } else if sysctls.apparmor_restrict == Some(1) && denied {
                Some(Blocker::AppArmorRestriction)
            } else if denied || errno == libc::ENOSYS || errno == libc::EINVAL {
                // The sysctls allow it, yet the kernel says no: a seccomp filter (Docker's
                // default profile returns EPERM for unshare/clone with namespace flags).
                Some(Blocker::Seccomp)
            } else {
                None
            }
        }
        Stage::Overlay => {
            if sysctls.apparmor_restrict == Some(1) && denied {
                Some(Blocker::AppArmorRestriction)
            } else if denied
                || matches!(
                    errno,
                    libc::EINVAL | libc::EOPNOTSUPP | libc::ENODEV | libc::ENOSYS
                )
            {
                Some(Blocker::RootlessOverlay)
            } else {
                None
            }
        }
        Stage::Mount => None,
    }
}

/// Checks that user namespaces and rootless overlayfs work, using the system temp directory for
/// the overlay's upper dir. The error names the blocking setting and its fix ([`SandboxError::hint`]).
pub fn probe() -> Result<(), SandboxError> {
    probe_in(&std::env::temp_dir())
}

/// Like [`probe`], with the overlay upper/work dirs under `scratch` (use the directory where
/// builds will keep their upper dirs: user xattr support is per filesystem).
pub fn probe_in(scratch: &Path) -> Result<(), SandboxError> {
    let dir = Scratch::new(scratch)?;
    let (lower, upper, work) = (dir.0.join("lower"), dir.0.join("upper"), dir.0.join("work"));
    for d in [&lower, &upper, &work] {
        fs_err::create_dir(d).map_err(SandboxError::Io)?;
    }
    fs_err::write(lower.join("probe"), b"probe").map_err(SandboxError::Io)?;
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let mut steps = user_namespace_steps(uid, gid);
    steps.push(Step::MakePrivate);
    steps.push(Step::MountRoot {
        options: overlay_options(&[&lower], &upper, &work)?,
    });
    run_probe(&Plan { steps, slots: 0 })
}

/// Sets up a complete sandbox — every namespace, the overlay root under `scratch`, a fresh
/// `/proc`, `/dev`, the host name, `no_new_privs` — around an empty root, and exits instead of
/// running a command: whether [`crate::Sandbox::run`] can work here, and if not, the error it
/// would give (naming the blocking setting). Costs a few milliseconds.
pub fn probe_sandbox(scratch: &Path) -> Result<(), SandboxError> {
    let dir = Scratch::new(scratch)?;
    let (lower, upper, work) = (dir.0.join("lower"), dir.0.join("upper"), dir.0.join("work"));
    for d in [&lower, &upper, &work] {
        fs_err::create_dir(d).map_err(SandboxError::Io)?;
    }
    let sandbox = crate::Sandbox {
        lower: vec![lower],
        upper,
        work,
        mounts: Vec::new(),
        env: Vec::new(),
        cwd: "/".into(),
        hostname: "pyslip".into(),
    };
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let plan = Plan::build(&sandbox, uid, gid, &crate::run::host_info(&sandbox)?)?;
    run_probe(&plan)
}

/// Runs `plan` in a child that exits 0 once it is set up; the setup error otherwise.
fn run_probe(plan: &Plan) -> Result<(), SandboxError> {
    let (parent, child_end) = channel().map_err(SandboxError::Spawn)?;
    let fds = ChildFds {
        stdin: 0,
        stdout: 1,
        stderr: 2,
        channel: child_end.as_raw_fd(),
    };
    let spawned = spawn(plan, Action::Probe, fds);
    drop(child_end);
    let pid = spawned.map_err(|e| clone_error(e, &Sysctls::read()))?;
    let mut failed = None;
    let received = loop {
        match parent.recv() {
            Ok(Some(Message::SetupFailed { step, errno })) => failed = Some((step, errno)),
            Ok(Some(_)) => {}
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let mut status = 0;
    // SAFETY: waitpid(2) on our own child with a valid out pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    received.map_err(SandboxError::Spawn)?;
    if let Some((step, errno)) = failed {
        return Err(setup_error(plan, step, errno, &Sysctls::read()));
    }
    if waited != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(SandboxError::Lost(format!("probe wait status {status:#x}")));
    }
    Ok(())
}

/// A uniquely named scratch directory, removed on drop (after making overlayfs' mode-0000
/// `work/work` directory removable).
struct Scratch(PathBuf);

impl Scratch {
    fn new(parent: &Path) -> Result<Scratch, SandboxError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "pyslip-probe-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = parent.join(name);
        fs_err::create_dir(&dir).map_err(SandboxError::Io)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let inner = self.0.join("work/work");
        let _ =
            std::fs::set_permissions(&inner, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::execute;
    use crate::fake::FakeSys;
    use rustix::io::Errno;

    const OPEN: Sysctls = Sysctls {
        unprivileged_userns_clone: None,
        max_user_namespaces: Some(15000),
        apparmor_restrict: None,
    };

    /// Runs the probe's steps through the fake with one failing call, then diagnoses the failure
    /// as the real probe does, and returns the error text and hint.
    fn probe_with(fail: &str, errno: Errno, sysctls: Sysctls) -> (String, String) {
        let mut steps = user_namespace_steps(1000, 1000);
        steps.push(Step::MakePrivate);
        steps.push(Step::MountRoot {
            options: overlay_options(&[Path::new("/l")], Path::new("/u"), Path::new("/w")).unwrap(),
        });
        let fake = FakeSys::with_root_entries(&[]);
        fake.fail(fail, errno);
        let failure = execute(&steps, &fake, &mut [], &mut |_, _| {}).unwrap_err();
        let err = setup_error(
            &Plan { steps, slots: 0 },
            failure.step as u32,
            errno.raw_os_error(),
            &sysctls,
        );
        (err.to_string(), err.hint().unwrap_or_default())
    }

    #[test]
    fn debian_sysctl_is_named() {
        let sysctls = Sysctls {
            unprivileged_userns_clone: Some(0),
            ..OPEN
        };
        let (msg, hint) = probe_with("write /proc/self/setgroups", Errno::PERM, sysctls);
        assert_eq!(
            msg,
            "rootless sandbox unavailable: sysctl kernel.unprivileged_userns_clone=0"
        );
        assert!(
            hint.contains("sysctl -w kernel.unprivileged_userns_clone=1"),
            "{hint}"
        );
    }

    #[test]
    fn max_user_namespaces_is_named() {
        let sysctls = Sysctls {
            max_user_namespaces: Some(0),
            ..OPEN
        };
        let err = clone_error(io::Error::from_raw_os_error(libc::ENOSPC), &sysctls);
        assert_eq!(
            err.to_string(),
            "rootless sandbox unavailable: sysctl user.max_user_namespaces=0"
        );
        assert!(
            err.hint()
                .unwrap()
                .contains("user.max_user_namespaces=15000")
        );
    }

    #[test]
    fn apparmor_restriction_is_named() {
        let sysctls = Sysctls {
            apparmor_restrict: Some(1),
            ..OPEN
        };
        let (msg, hint) = probe_with("make-private", Errno::PERM, sysctls);
        assert_eq!(
            msg,
            "rootless sandbox unavailable: sysctl kernel.apparmor_restrict_unprivileged_userns=1"
        );
        assert!(
            hint.contains("apparmor_restrict_unprivileged_userns=0"),
            "{hint}"
        );
    }

    #[test]
    fn seccomp_is_blamed_when_sysctls_allow_userns() {
        let err = clone_error(io::Error::from_raw_os_error(libc::EPERM), &OPEN);
        assert_eq!(
            err.to_string(),
            "rootless sandbox unavailable: a seccomp filter or container runtime that denies unshare"
        );
        assert!(
            err.hint()
                .unwrap()
                .contains("--security-opt seccomp=unconfined")
        );
    }

    #[test]
    fn overlay_refusal_is_named() {
        let (msg, hint) = probe_with("fs overlay", Errno::INVAL, OPEN);
        assert_eq!(
            msg,
            "rootless sandbox unavailable: overlayfs refuses to mount in a user namespace"
        );
        assert!(hint.contains("5.12"), "{hint}");
    }

    #[test]
    fn ordinary_mount_errors_are_not_blamed_on_the_host() {
        let (msg, hint) = probe_with("fs overlay", Errno::NOENT, OPEN);
        assert_eq!(
            msg,
            "sandbox setup failed: mount the overlay root filesystem"
        );
        assert_eq!(hint, "");
    }
}
