//! Executes a [`Plan`](crate::plan::Plan) through a [`Syscall`] implementation.
//!
//! Runs in the child between `clone` and `execve`: no allocation, no locks — it only walks the
//! plan the parent prepared and calls the trait.

use rustix::io::Errno;
use rustix::mount::MountAttrFlags;

use crate::plan::{STAGING, Step, Target};
use crate::syscall::{Kind, Syscall};

/// The step that failed and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failure {
    /// Index into the plan's steps.
    pub step: usize,
    /// The failing system call's error.
    pub errno: Errno,
}

/// Runs `steps` in order. `on_created(step, len)` is called for each entry the setup created on
/// the overlay, named by the first `len` components of that step's target.
///
/// `slots` holds the opened bind sources; the caller allocates it (at least `Plan::slots`
/// entries) before `clone`, so the child never allocates.
pub(crate) fn execute<S: Syscall>(
    steps: &[Step],
    sys: &S,
    slots: &mut [Option<S::Fd>],
    on_created: &mut dyn FnMut(usize, usize),
) -> Result<(), Failure> {
    let mut root: Option<S::Fd> = None;
    for (index, step) in steps.iter().enumerate() {
        run_step(index, step, sys, &mut root, slots, on_created)
            .map_err(|errno| Failure { step: index, errno })?;
    }
    Ok(())
}

fn run_step<S: Syscall>(
    index: usize,
    step: &Step,
    sys: &S,
    root: &mut Option<S::Fd>,
    slots: &mut [Option<S::Fd>],
    on_created: &mut dyn FnMut(usize, usize),
) -> Result<(), Errno> {
    match step {
        Step::WriteFile { path, data, .. } => sys.write_file(path, data),
        Step::SetHostname(name) => sys.set_hostname(name),
        Step::MakePrivate => sys.make_private(),
        Step::MountRoot { options } => {
            let attrs = MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV;
            let mount = sys.new_fs(c"overlay", options, attrs)?;
            sys.attach_at(&mount, STAGING)?;
            *root = Some(sys.open_dir(STAGING)?);
            Ok(())
        }
        Step::MountFs {
            fstype,
            options,
            attrs,
            target,
        } => {
            let root = root.as_ref().ok_or(Errno::INVAL)?;
            let mount = sys.new_fs(fstype, options, *attrs)?;
            let at = entry(sys, root, target, index, on_created)?;
            sys.attach(&mount, &at)
        }
        Step::MountProc {
            slot,
            attrs,
            target,
        } => {
            let root = root.as_ref().ok_or(Errno::INVAL)?;
            let source = slots.get_mut(*slot).and_then(Option::take);
            let mount = match sys.new_fs(c"proc", &[], *attrs) {
                Ok(mount) => mount,
                // EPERM: the kernel's "mount too revealing" check (masked /proc of a container).
                Err(Errno::PERM | Errno::ACCESS) => {
                    let mount = sys.clone_tree_recursive(&source.ok_or(Errno::INVAL)?)?;
                    sys.set_attrs(&mount, *attrs)?;
                    mount
                }
                Err(e) => return Err(e),
            };
            let at = entry(sys, root, target, index, on_created)?;
            sys.attach(&mount, &at)
        }
        Step::OpenSource { slot, path, follow } => {
            let fd = sys.open_source(path, *follow)?;
            *slots.get_mut(*slot).ok_or(Errno::INVAL)? = Some(fd);
            Ok(())
        }
        Step::Bind {
            slot,
            attrs,
            target,
        } => {
            let root = root.as_ref().ok_or(Errno::INVAL)?;
            let source = slots.get_mut(*slot).and_then(Option::take);
            let mount = sys.clone_tree(&source.ok_or(Errno::INVAL)?)?;
            sys.set_attrs(&mount, *attrs)?;
            let at = entry(sys, root, target, index, on_created)?;
            sys.attach(&mount, &at)
        }
        Step::Symlink { link, target } => {
            let root = root.as_ref().ok_or(Errno::INVAL)?;
            let dir = parent_dir(sys, root, target, index, on_created)?;
            let name = target.names.last().ok_or(Errno::INVAL)?;
            sys.symlink(link, &dir, name)
        }
        Step::PivotRoot => sys.pivot_into(root.as_ref().ok_or(Errno::INVAL)?),
        Step::NestNamespaces => sys.unshare_user_mount(),
        Step::NoNewPrivs => sys.no_new_privs(),
        Step::LoopbackUp => sys.loopback_up(),
    }
}

/// Opens (creating missing directories) the parent of `target`'s last component, resolving
/// inside `root` and refusing symlinks.
fn parent_dir<S: Syscall>(
    sys: &S,
    root: &S::Fd,
    target: &Target,
    index: usize,
    on_created: &mut dyn FnMut(usize, usize),
) -> Result<S::Fd, Errno> {
    let mut dir = sys.open_dir_in_root(root, c".")?;
    let parents = target.names.len().saturating_sub(1);
    for (i, (prefix, name)) in target
        .prefixes
        .iter()
        .zip(&target.names)
        .take(parents)
        .enumerate()
    {
        dir = match sys.open_dir_in_root(root, prefix) {
            Err(Errno::NOENT) => {
                sys.mkdir(&dir, name)?;
                if sys.on_overlay(&dir)? {
                    on_created(index, i + 1);
                }
                sys.open_dir_in_root(root, prefix)?
            }
            other => other?,
        };
    }
    Ok(dir)
}

/// Opens `target` (creating it, and reporting the creation, when missing) as a mountpoint.
fn entry<S: Syscall>(
    sys: &S,
    root: &S::Fd,
    target: &Target,
    index: usize,
    on_created: &mut dyn FnMut(usize, usize),
) -> Result<S::Fd, Errno> {
    let dir = parent_dir(sys, root, target, index, on_created)?;
    let name = target.names.last().ok_or(Errno::INVAL)?;
    let (fd, kind) = match sys.open_entry(&dir, name) {
        Err(Errno::NOENT) => {
            match target.create {
                Kind::Dir => sys.mkdir(&dir, name)?,
                _ => sys.mkfile(&dir, name)?,
            }
            if sys.on_overlay(&dir)? {
                on_created(index, target.names.len());
            }
            sys.open_entry(&dir, name)?
        }
        other => other?,
    };
    match (target.create, kind) {
        (Kind::Dir, Kind::Dir) => Ok(fd),
        (Kind::Dir, _) => Err(Errno::NOTDIR),
        // A file may be mounted over a file or over a symlink (e.g. a base image's
        // /etc/resolv.conf -> ../run/...): the mount covers the link itself.
        (_, Kind::File | Kind::Symlink) => Ok(fd),
        (_, _) => Err(Errno::ISDIR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeSys;
    use crate::plan::{HostInfo, Isolation, Plan};
    use crate::{BindMount, Sandbox};

    fn sandbox() -> Sandbox {
        Sandbox {
            lower: vec!["/cache/base".into()],
            upper: "/build/upper".into(),
            work: "/build/work".into(),
            mounts: vec![BindMount {
                source: "/cache/uv".into(),
                target: "/root/.cache/uv".into(),
                writable: true,
            }],
            env: vec![],
            cwd: "/".into(),
            hostname: "pyslip".into(),
        }
    }

    fn host() -> HostInfo {
        HostInfo {
            devices: crate::plan::DEVICES.to_vec(),
            resolv_conf: true,
            hosts: false,
            binds: vec![Kind::Dir],
        }
    }

    fn slots(plan: &Plan) -> Vec<Option<String>> {
        vec![None; plan.slots]
    }

    #[test]
    fn plan_orders_namespaces_mounts_and_pivot() {
        let plan = Plan::build(&sandbox(), 1000, 1001, &host()).unwrap();
        let fake = FakeSys::with_root_entries(&["proc", "dev", "tmp", "etc", "root"]);
        let mut created = vec![];
        execute(&plan.steps, &fake, &mut slots(&plan), &mut |step, len| {
            created.push((step, len))
        })
        .unwrap();
        let log = fake.log();
        let pos = |needle: &str| {
            log.iter()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle} not in {log:#?}"))
        };
        assert_eq!(log[0], "write /proc/self/setgroups deny");
        assert_eq!(log[1], "write /proc/self/uid_map 0 1000 1\n");
        assert_eq!(log[2], "write /proc/self/gid_map 0 1001 1\n");
        assert!(pos("hostname pyslip") < pos("make-private"));
        assert!(pos("make-private") < pos("fs overlay"));
        assert!(log.iter().any(|l| {
            l.contains("lowerdir=/cache/base upperdir=/build/upper workdir=/build/work userxattr")
        }));
        assert!(pos("attach fs:proc -> root/proc") > pos("attach-at fs:overlay -> /tmp"));
        let dev_null = pos("attach tree:/dev/null -> root/dev/null");
        assert!(pos("attach fs:tmpfs -> root/dev") < dev_null);
        // Sources are opened before the overlay covers the staging path, caller-named ones
        // without following symlinks.
        assert!(pos("open-source /cache/uv nofollow") < pos("fs overlay"));
        assert!(pos("open-source /etc/resolv.conf follow") < pos("fs overlay"));
        let resolv = "setattr tree:/etc/resolv.conf RDONLY|NOSUID|NODEV";
        assert!(log.iter().any(|l| l == resolv));
        assert!(
            log.iter()
                .any(|l| l == "setattr tree:/cache/uv NOSUID|NODEV")
        );
        let uv = pos("attach tree:/cache/uv -> root/root/.cache/uv");
        assert!(pos("attach fs:tmpfs -> root/tmp") < uv);
        assert!(uv < pos("pivot"));
        assert!(pos("pivot") < pos("unshare user|mount"));
        assert_eq!(log[log.len() - 5], "unshare user|mount");
        assert_eq!(log[log.len() - 2], "write /proc/self/gid_map 0 0 1\n");
        assert_eq!(log[log.len() - 1], "no-new-privs");
        // /etc/resolv.conf and /root/.cache(/uv) did not exist on the overlay: reported.
        let created: Vec<String> = created
            .iter()
            .map(|&(step, len)| match &plan.steps[step] {
                Step::Bind { target, .. }
                | Step::MountFs { target, .. }
                | Step::MountProc { target, .. } => target.prefix(len),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            created,
            ["etc/resolv.conf", "root/.cache", "root/.cache/uv"]
        );
        // Entries in /dev live on the tmpfs and are not reported.
        assert!(log.iter().any(|l| l == "mkfile root/dev/null"));
    }

    #[test]
    fn isolation_brings_up_loopback_and_maps_the_command_user() {
        let isolation = Isolation {
            private_network: true,
            run_as: Some((1000, 1001)),
        };
        let plan = Plan::build_with(&sandbox(), 4242, 4243, &host(), isolation).unwrap();
        let fake = FakeSys::with_root_entries(&["proc", "dev", "tmp", "etc", "root"]);
        execute(&plan.steps, &fake, &mut slots(&plan), &mut |_, _| {}).unwrap();
        let log = fake.log();
        let pos = |needle: &str| log.iter().position(|l| l == needle).unwrap();
        // lo is brought up with the outer namespace's capabilities, before any mount.
        assert!(pos("write /proc/self/gid_map 0 4243 1\n") < pos("loopback-up"));
        assert!(pos("loopback-up") < pos("make-private"));
        // The nested namespace maps the command's ids to the outer root (the invoking user).
        assert_eq!(
            log[log.len() - 5..],
            [
                "unshare user|mount",
                "write /proc/self/setgroups deny",
                "write /proc/self/uid_map 1000 0 1\n",
                "write /proc/self/gid_map 1001 0 1\n",
                "no-new-privs",
            ]
        );
        // Without isolation: no loopback step, root inside.
        let plain = Plan::build(&sandbox(), 4242, 4243, &host()).unwrap();
        assert!(!plain.steps.contains(&Step::LoopbackUp));
        let default = Plan::build_with(&sandbox(), 4242, 4243, &host(), Isolation::default());
        assert_eq!(default.unwrap(), plain);
    }

    #[test]
    fn failure_names_the_step() {
        let plan = Plan::build(&sandbox(), 1000, 1000, &host()).unwrap();
        let fake = FakeSys::with_root_entries(&["proc", "dev", "tmp", "etc", "root"]);
        fake.fail("fs overlay", Errno::INVAL);
        let err = execute(&plan.steps, &fake, &mut slots(&plan), &mut |_, _| {}).unwrap_err();
        assert_eq!(err.errno, Errno::INVAL);
        assert_eq!(
            plan.steps[err.step].describe(),
            "mount the overlay root filesystem"
        );
    }

    #[test]
    fn refused_fresh_proc_falls_back_to_a_recursive_bind_of_the_hosts() {
        let plan = Plan::build(&sandbox(), 1000, 1000, &host()).unwrap();
        let fake = FakeSys::with_root_entries(&["proc", "dev", "tmp", "etc", "root"]);
        fake.fail("fs proc", Errno::PERM);
        execute(&plan.steps, &fake, &mut slots(&plan), &mut |_, _| {}).unwrap();
        let log = fake.log();
        let pos = |needle: &str| {
            log.iter()
                .position(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("{needle} not in {log:#?}"))
        };
        assert!(pos("open-source /proc follow") < pos("fs overlay"));
        assert!(pos("clone-tree-recursive src:/proc") > pos("fs proc"));
        assert!(pos("setattr tree:/proc NOSUID|NODEV|NOEXEC") > pos("clone-tree-recursive"));
        assert!(pos("attach tree:/proc -> root/proc") > pos("setattr tree:/proc"));

        // Any other failure of the fresh procfs is not papered over.
        let fake = FakeSys::with_root_entries(&["proc", "dev", "tmp", "etc", "root"]);
        fake.fail("fs proc", Errno::NODEV);
        let err = execute(&plan.steps, &fake, &mut slots(&plan), &mut |_, _| {}).unwrap_err();
        assert_eq!(err.errno, Errno::NODEV);
        assert_eq!(plan.steps[err.step].describe(), "mount proc on /proc");
    }

    #[test]
    fn directory_target_over_a_file_is_refused() {
        let plan = Plan::build(&sandbox(), 1000, 1000, &host()).unwrap();
        let fake = FakeSys::with_root_entries(&["proc", "dev", "tmp", "etc", "root"]);
        fake.add_file("root/root/.cache");
        let err = execute(&plan.steps, &fake, &mut slots(&plan), &mut |_, _| {}).unwrap_err();
        assert_eq!(err.errno, Errno::NOTDIR);
        assert_eq!(
            plan.steps[err.step].describe(),
            "bind mount onto /root/.cache/uv"
        );
    }
}
