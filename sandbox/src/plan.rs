//! The mount plan: every namespace and mount step of a sandbox, decided in the parent (where
//! allocation is allowed) and executed in the child by [`crate::exec::execute`].

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::mount::MountAttrFlags;

use crate::config::Sandbox;
use crate::error::SandboxError;
use crate::syscall::{FsOption, Kind};

/// Host path the overlay root is attached to in the child's private mount namespace before
/// `pivot_root`. Covering it is harmless: every host path the setup needs was resolved to an fd
/// or into the overlay's superblock before.
pub(crate) const STAGING: &CStr = c"/tmp";

/// Device nodes bind-mounted from the host into the sandbox's `/dev`.
pub(crate) const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Which part of the setup a step belongs to (used to diagnose failures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Creating/mapping the user namespace: failures mean user namespaces are blocked.
    UserNamespace,
    /// Mounting the overlay root: failures mean rootless overlay is unavailable.
    Overlay,
    /// Everything else.
    Mount,
}

/// A path inside the sandbox root, split for in-root resolution without allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// As given, for messages (`/etc/resolv.conf`).
    pub path: String,
    /// Cumulative relative prefixes (`etc`, `etc/resolv.conf`).
    pub prefixes: Vec<CString>,
    /// Single components (`etc`, `resolv.conf`).
    pub names: Vec<CString>,
    /// What to create when the last component is missing.
    pub create: Kind,
}

impl Target {
    /// Parses an absolute path inside the sandbox; rejects `.`, `..`, empty paths and NUL bytes.
    pub fn parse(path: &str, create: Kind) -> Result<Target, SandboxError> {
        let invalid = |reason| SandboxError::Invalid {
            what: "mount target",
            value: path.to_owned(),
            reason,
        };
        let rest = path
            .strip_prefix('/')
            .ok_or_else(|| invalid("must be absolute"))?;
        let mut prefixes = Vec::new();
        let mut names = Vec::new();
        let mut prefix = String::new();
        for name in rest.split('/').filter(|c| !c.is_empty()) {
            if name == "." || name == ".." {
                return Err(invalid("must not contain . or .. components"));
            }
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(name);
            names.push(CString::new(name).map_err(|_| invalid("contains a NUL byte"))?);
            prefixes
                .push(CString::new(prefix.as_str()).map_err(|_| invalid("contains a NUL byte"))?);
        }
        if names.is_empty() {
            return Err(invalid("must not be the root itself"));
        }
        Ok(Target {
            path: format!("/{prefix}"),
            prefixes,
            names,
            create,
        })
    }

    /// The relative path of the first `len` components (`etc/resolv.conf`).
    pub fn prefix(&self, len: usize) -> String {
        len.checked_sub(1)
            .and_then(|i| self.prefixes.get(i))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// One step of the setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Write a procfs file (`setgroups`, `uid_map`, `gid_map`).
    WriteFile {
        path: &'static CStr,
        data: Vec<u8>,
        stage: Stage,
    },
    /// Set the UTS host name.
    SetHostname(Vec<u8>),
    /// Make all inherited mounts private.
    MakePrivate,
    /// Mount the overlay and make it the root being built (attached at [`STAGING`]).
    MountRoot { options: Vec<FsOption> },
    /// Mount a fresh filesystem (proc, tmpfs) at a target inside the root.
    MountFs {
        fstype: &'static CStr,
        options: Vec<FsOption>,
        attrs: MountAttrFlags,
        target: Target,
    },
    /// Open a host bind source into `slot` (before the overlay covers [`STAGING`]). The child
    /// opens it itself: an fd opened by the parent belongs to the host mount namespace, and
    /// `open_tree` refuses to clone mounts of another namespace. `follow` is false for
    /// caller-named sources (`RESOLVE_NO_SYMLINKS`) and true for trusted system files.
    OpenSource {
        slot: usize,
        path: CString,
        follow: bool,
    },
    /// Mount a fresh procfs at `/proc`; where the kernel refuses one (a container runtime masks
    /// parts of its `/proc`, and a new procfs would reveal them), bind the host's `/proc`
    /// opened into `slot` instead, recursively so the runtime's masks come along.
    MountProc {
        slot: usize,
        attrs: MountAttrFlags,
        target: Target,
    },
    /// Bind-mount the source opened into `slot` at a target inside the root.
    Bind {
        slot: usize,
        attrs: MountAttrFlags,
        target: Target,
    },
    /// Create a symlink at a target inside the root.
    Symlink { link: &'static CStr, target: Target },
    /// `pivot_root` into the new root and detach the old one.
    PivotRoot,
    /// Enter a nested user + mount namespace so every mount above is locked.
    NestNamespaces,
    /// Set `no_new_privs`.
    NoNewPrivs,
    /// Bring up `lo` in the sandbox's private network namespace.
    LoopbackUp,
}

impl Step {
    /// Which part of the setup this is.
    pub fn stage(&self) -> Stage {
        match self {
            Step::WriteFile { stage, .. } => *stage,
            // The first use of CAP_SYS_ADMIN in the new namespace: AppArmor's userns restriction
            // shows up here rather than at unshare.
            Step::MakePrivate => Stage::UserNamespace,
            // The first call a container's seccomp profile may refuse in the new namespaces.
            Step::SetHostname(_) => Stage::UserNamespace,
            Step::MountRoot { .. } => Stage::Overlay,
            _ => Stage::Mount,
        }
    }

    /// Human description for error messages.
    pub fn describe(&self) -> String {
        match self {
            Step::WriteFile { path, data, .. } => format!(
                "write {:?} to {}",
                String::from_utf8_lossy(data),
                path.to_string_lossy()
            ),
            Step::SetHostname(_) => "set the host name".to_owned(),
            Step::MakePrivate => "make mounts private".to_owned(),
            Step::MountRoot { .. } => "mount the overlay root filesystem".to_owned(),
            Step::MountFs { fstype, target, .. } => {
                format!("mount {} on {}", fstype.to_string_lossy(), target.path)
            }
            Step::MountProc { target, .. } => format!("mount proc on {}", target.path),
            Step::OpenSource { path, .. } => {
                format!("open bind source {}", path.to_string_lossy())
            }
            Step::Bind { target, .. } => format!("bind mount onto {}", target.path),
            Step::Symlink { link, target } => {
                format!("symlink {} -> {}", target.path, link.to_string_lossy())
            }
            Step::PivotRoot => "pivot_root into the new root".to_owned(),
            Step::NestNamespaces => "enter the nested user namespace".to_owned(),
            Step::NoNewPrivs => "set no_new_privs".to_owned(),
            Step::LoopbackUp => "bring up the loopback interface".to_owned(),
        }
    }
}

/// What the parent found on the host (and validated) before planning.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostInfo {
    /// Those of [`DEVICES`] the host has.
    pub devices: Vec<&'static str>,
    /// Whether the host has `/etc/resolv.conf`.
    pub resolv_conf: bool,
    /// Whether the host has `/etc/hosts`.
    pub hosts: bool,
    /// The kind of each [`Sandbox::mounts`] source.
    pub binds: Vec<Kind>,
}

/// Isolation beyond what [`Sandbox::run`] gets; the default is exactly that.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Isolation {
    /// The sandbox has a private network namespace (cloned by the caller): bring `lo` up in it.
    pub private_network: bool,
    /// User and group the command runs as in the nested user namespace, which maps them to the
    /// outer root (the invoking user); `None` keeps root (`0 0 1`).
    pub run_as: Option<(u32, u32)>,
}

/// The ordered setup steps of one sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub steps: Vec<Step>,
    /// How many source slots the steps use (the executor's scratch space).
    pub slots: usize,
}

fn id_map(inside: u32, outside: u32) -> Vec<u8> {
    format!("{inside} {outside} 1\n").into_bytes()
}

/// `setgroups deny` and a one-id map of `inside` to `outside` (uid, gid) for a new user namespace.
fn map_steps(inside: (u32, u32), outside: (u32, u32), stage: Stage) -> Vec<Step> {
    vec![
        Step::WriteFile {
            path: c"/proc/self/setgroups",
            data: b"deny".to_vec(),
            stage,
        },
        Step::WriteFile {
            path: c"/proc/self/uid_map",
            data: id_map(inside.0, outside.0),
            stage,
        },
        Step::WriteFile {
            path: c"/proc/self/gid_map",
            data: id_map(inside.1, outside.1),
            stage,
        },
    ]
}

/// The user-namespace steps shared by [`Plan::build`] and the probe.
pub(crate) fn user_namespace_steps(uid: u32, gid: u32) -> Vec<Step> {
    map_steps((0, 0), (uid, gid), Stage::UserNamespace)
}

/// Overlay options for lower roots (topmost first), upper and work.
pub(crate) fn overlay_options(
    lower: &[impl AsRef<Path>],
    upper: &Path,
    work: &Path,
) -> Result<Vec<FsOption>, SandboxError> {
    if lower.is_empty() {
        return Err(SandboxError::Invalid {
            what: "lower",
            value: String::new(),
            reason: "at least one lower root is needed",
        });
    }
    let mut lowerdir = Vec::new();
    for (i, dir) in lower.iter().enumerate() {
        if i > 0 {
            lowerdir.push(b':');
        }
        // overlayfs splits `lowerdir` on ':' and unescapes '\'.
        for &b in dir.as_ref().as_os_str().as_bytes() {
            if b == b':' || b == b'\\' {
                lowerdir.push(b'\\');
            }
            lowerdir.push(b);
        }
    }
    let plain = |what: &'static str, path: &Path| {
        let bytes = path.as_os_str().as_bytes();
        let invalid = |reason| SandboxError::Invalid {
            what,
            value: path.display().to_string(),
            reason,
        };
        if bytes.contains(&b':') || bytes.contains(&b'\\') {
            return Err(invalid("must not contain ':' or '\\'"));
        }
        CString::new(bytes).map_err(|_| invalid("contains a NUL byte"))
    };
    let lowerdir = CString::new(lowerdir).map_err(|_| SandboxError::Invalid {
        what: "lower",
        value: format!("{:?}", lower.iter().map(|l| l.as_ref()).collect::<Vec<_>>()),
        reason: "contains a NUL byte",
    })?;
    Ok(vec![
        FsOption::Str(c"lowerdir", lowerdir),
        FsOption::Str(c"upperdir", plain("upper", upper)?),
        FsOption::Str(c"workdir", plain("work", work)?),
        FsOption::Flag(c"userxattr"),
    ])
}

fn tmpfs(mode: &str, size: &str) -> Vec<FsOption> {
    // Static option values: CString::new cannot fail on them.
    let c = |s: &str| CString::new(s).unwrap_or_default();
    vec![
        FsOption::Str(c"mode", c(mode)),
        FsOption::Str(c"size", c(size)),
    ]
}

impl Plan {
    /// Decides every setup step for `sandbox`, run by host user `uid`/`gid`.
    pub fn build(
        sandbox: &Sandbox,
        uid: u32,
        gid: u32,
        host: &HostInfo,
    ) -> Result<Plan, SandboxError> {
        Plan::build_with(sandbox, uid, gid, host, Isolation::default())
    }

    /// [`Plan::build`] with extra `isolation`.
    pub fn build_with(
        sandbox: &Sandbox,
        uid: u32,
        gid: u32,
        host: &HostInfo,
        isolation: Isolation,
    ) -> Result<Plan, SandboxError> {
        let nosuid_nodev = MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV;
        let read_only = nosuid_nodev | MountAttrFlags::MOUNT_ATTR_RDONLY;
        let mut steps = user_namespace_steps(uid, gid);
        if !sandbox.hostname.is_empty() {
            steps.push(Step::SetHostname(sandbox.hostname.as_bytes().to_vec()));
        }
        if isolation.private_network {
            steps.push(Step::LoopbackUp);
        }
        steps.push(Step::MakePrivate);

        // Every bind: (host path, follow symlinks, attrs, target). Opened before the overlay
        // is attached, mounted after.
        let mut binds: Vec<(CString, bool, MountAttrFlags, Target)> = Vec::new();
        for name in &host.devices {
            binds.push((
                cstring("bind source", &format!("/dev/{name}"))?,
                true,
                MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC,
                Target::parse(&format!("/dev/{name}"), Kind::File)?,
            ));
        }
        for (present, path) in [
            (host.resolv_conf, "/etc/resolv.conf"),
            (host.hosts, "/etc/hosts"),
        ] {
            if present {
                binds.push((
                    cstring("bind source", path)?,
                    true,
                    read_only,
                    Target::parse(path, Kind::File)?,
                ));
            }
        }
        for (mount, kind) in sandbox.mounts.iter().zip(&host.binds) {
            let source = CString::new(mount.source.as_os_str().as_bytes()).map_err(|_| {
                SandboxError::Invalid {
                    what: "bind source",
                    value: mount.source.display().to_string(),
                    reason: "contains a NUL byte",
                }
            })?;
            let attrs = if mount.writable {
                nosuid_nodev
            } else {
                read_only
            };
            binds.push((source, false, attrs, Target::parse(&mount.target, *kind)?));
        }
        for (slot, (path, follow, _, _)) in binds.iter().enumerate() {
            steps.push(Step::OpenSource {
                slot,
                path: path.clone(),
                follow: *follow,
            });
        }
        // The slot after the binds: the host's /proc, the fallback of a refused fresh procfs.
        let proc_slot = binds.len();
        steps.push(Step::OpenSource {
            slot: proc_slot,
            path: c"/proc".to_owned(),
            follow: true,
        });

        steps.push(Step::MountRoot {
            options: overlay_options(&sandbox.lower, &sandbox.upper, &sandbox.work)?,
        });
        steps.push(Step::MountProc {
            slot: proc_slot,
            attrs: nosuid_nodev | MountAttrFlags::MOUNT_ATTR_NOEXEC,
            target: Target::parse("/proc", Kind::Dir)?,
        });
        steps.push(Step::MountFs {
            fstype: c"tmpfs",
            options: tmpfs("755", "1m"),
            attrs: MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC,
            target: Target::parse("/dev", Kind::Dir)?,
        });
        for (name, link) in [
            ("fd", c"/proc/self/fd"),
            ("stdin", c"/proc/self/fd/0"),
            ("stdout", c"/proc/self/fd/1"),
            ("stderr", c"/proc/self/fd/2"),
        ] {
            steps.push(Step::Symlink {
                link,
                target: Target::parse(&format!("/dev/{name}"), Kind::Symlink)?,
            });
        }
        for path in ["/dev/shm", "/tmp"] {
            steps.push(Step::MountFs {
                fstype: c"tmpfs",
                options: tmpfs("1777", "50%"),
                attrs: nosuid_nodev,
                target: Target::parse(path, Kind::Dir)?,
            });
        }
        let slots = binds.len() + 1;
        for (slot, (_, _, attrs, target)) in binds.into_iter().enumerate() {
            steps.push(Step::Bind {
                slot,
                attrs,
                target,
            });
        }
        steps.push(Step::PivotRoot);
        steps.push(Step::NestNamespaces);
        // The nested namespace maps the command's identity to the outer root (the invoking user).
        let inner = isolation.run_as.unwrap_or((0, 0));
        steps.extend(map_steps(inner, (0, 0), Stage::Mount));
        steps.push(Step::NoNewPrivs);
        Ok(Plan { steps, slots })
    }
}

fn cstring(what: &'static str, value: &str) -> Result<CString, SandboxError> {
    CString::new(value).map_err(|_| SandboxError::Invalid {
        what,
        value: value.to_owned(),
        reason: "contains a NUL byte",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_parse_splits_and_validates() {
        let t = Target::parse("/root//.cache/uv/", Kind::Dir).unwrap();
        assert_eq!(t.path, "/root/.cache/uv");
        assert_eq!(
            t.prefixes,
            vec![
                c"root".to_owned(),
                c"root/.cache".to_owned(),
                c"root/.cache/uv".to_owned()
            ]
        );
        assert_eq!(t.names.len(), 3);
        assert_eq!(t.prefix(2), "root/.cache");
        assert!(Target::parse("relative", Kind::Dir).is_err());
        assert!(Target::parse("/a/../b", Kind::Dir).is_err());
        assert!(Target::parse("/", Kind::Dir).is_err());
        assert!(Target::parse("/a\0b", Kind::Dir).is_err());
    }

    #[test]
    fn lowerdir_is_escaped_and_ordered() {
        let opts = overlay_options(
            &[Path::new("/c/dep"), Path::new("/c/sha256:ab")],
            Path::new("/u"),
            Path::new("/w"),
        )
        .unwrap();
        assert_eq!(
            opts[0],
            FsOption::Str(c"lowerdir", c"/c/dep:/c/sha256\\:ab".to_owned())
        );
        assert_eq!(opts[3], FsOption::Flag(c"userxattr"));
        assert!(overlay_options(&[Path::new("/l")], Path::new("/u:x"), Path::new("/w")).is_err());
        assert!(overlay_options(&[] as &[&Path], Path::new("/u"), Path::new("/w")).is_err());
    }
}
