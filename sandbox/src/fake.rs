//! A recording fake of [`Syscall`] over an in-memory tree, for unprivileged unit tests.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::CStr;

use rustix::io::Errno;
use rustix::mount::MountAttrFlags;

use crate::syscall::{FsOption, Kind, Syscall};

/// Records every call as a line of text; paths of the root being built start with `root`.
#[derive(Default)]
pub(crate) struct FakeSys {
    log: RefCell<Vec<String>>,
    entries: RefCell<BTreeMap<String, Kind>>,
    mounted: RefCell<Vec<String>>,
    failures: RefCell<Vec<(String, Errno)>>,
}

fn s(c: &CStr) -> String {
    c.to_string_lossy().into_owned()
}

impl FakeSys {
    /// A fake whose overlay root holds these directories.
    pub fn with_root_entries(dirs: &[&str]) -> FakeSys {
        let fake = FakeSys::default();
        fake.entries.borrow_mut().insert("root".into(), Kind::Dir);
        for dir in dirs {
            fake.entries
                .borrow_mut()
                .insert(format!("root/{dir}"), Kind::Dir);
        }
        fake
    }

    /// Adds a regular file (path starting with `root/`).
    pub fn add_file(&self, path: &str) {
        self.entries.borrow_mut().insert(path.into(), Kind::File);
    }

    /// Makes the first call whose log line starts with `prefix` fail with `errno`.
    pub fn fail(&self, prefix: &str, errno: Errno) {
        self.failures.borrow_mut().push((prefix.into(), errno));
    }

    /// The calls so far.
    pub fn log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    fn call(&self, line: String) -> Result<(), Errno> {
        let failure = self
            .failures
            .borrow()
            .iter()
            .find(|(prefix, _)| line.starts_with(prefix.as_str()))
            .map(|(_, errno)| *errno);
        self.log.borrow_mut().push(line);
        failure.map_or(Ok(()), Err)
    }

    fn join(dir: &str, name: &CStr) -> String {
        format!("{dir}/{}", s(name))
    }
}

fn attrs_text(attrs: MountAttrFlags) -> String {
    [
        (MountAttrFlags::MOUNT_ATTR_RDONLY, "RDONLY"),
        (MountAttrFlags::MOUNT_ATTR_NOSUID, "NOSUID"),
        (MountAttrFlags::MOUNT_ATTR_NODEV, "NODEV"),
        (MountAttrFlags::MOUNT_ATTR_NOEXEC, "NOEXEC"),
    ]
    .iter()
    .filter(|(flag, _)| attrs.contains(*flag))
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join("|")
}

impl Syscall for FakeSys {
    type Fd = String;

    fn write_file(&self, path: &CStr, data: &[u8]) -> Result<(), Errno> {
        self.call(format!(
            "write {} {}",
            s(path),
            String::from_utf8_lossy(data)
        ))
    }

    fn set_hostname(&self, name: &[u8]) -> Result<(), Errno> {
        self.call(format!("hostname {}", String::from_utf8_lossy(name)))
    }

    fn make_private(&self) -> Result<(), Errno> {
        self.call("make-private".into())
    }

    fn new_fs(
        &self,
        fstype: &CStr,
        options: &[FsOption],
        attrs: MountAttrFlags,
    ) -> Result<String, Errno> {
        let opts: Vec<String> = options
            .iter()
            .map(|o| match o {
                FsOption::Str(k, v) => format!("{}={}", s(k), s(v)),
                FsOption::Flag(k) => s(k),
            })
            .collect();
        self.call(format!(
            "fs {} {} [{}]",
            s(fstype),
            opts.join(" "),
            attrs_text(attrs)
        ))?;
        Ok(format!("fs:{}", s(fstype)))
    }

    fn open_source(&self, path: &CStr, follow: bool) -> Result<String, Errno> {
        let how = if follow { "follow" } else { "nofollow" };
        self.call(format!("open-source {} {how}", s(path)))?;
        Ok(format!("src:{}", s(path)))
    }

    fn clone_tree(&self, source: &String) -> Result<String, Errno> {
        self.call(format!("clone-tree {source}"))?;
        Ok(format!("tree:{}", source.trim_start_matches("src:")))
    }

    fn clone_tree_recursive(&self, source: &String) -> Result<String, Errno> {
        self.call(format!("clone-tree-recursive {source}"))?;
        Ok(format!("tree:{}", source.trim_start_matches("src:")))
    }

    fn set_attrs(&self, mount: &String, attrs: MountAttrFlags) -> Result<(), Errno> {
        self.call(format!("setattr {mount} {}", attrs_text(attrs)))
    }

    fn attach(&self, mount: &String, target: &String) -> Result<(), Errno> {
        self.call(format!("attach {mount} -> {target}"))?;
        if mount.starts_with("fs:") {
            self.mounted.borrow_mut().push(target.clone());
        }
        Ok(())
    }

    fn attach_at(&self, mount: &String, path: &CStr) -> Result<(), Errno> {
        self.call(format!("attach-at {mount} -> {}", s(path)))
    }

    fn open_dir(&self, path: &CStr) -> Result<String, Errno> {
        if path == c"/tmp" {
            Ok("root".into())
        } else {
            Err(Errno::NOENT)
        }
    }

    fn open_dir_in_root(&self, root: &String, path: &CStr) -> Result<String, Errno> {
        let full = if path == c"." {
            root.clone()
        } else {
            Self::join(root, path)
        };
        match self.entries.borrow().get(&full) {
            Some(Kind::Dir) => Ok(full),
            Some(_) => Err(Errno::NOTDIR),
            None => Err(Errno::NOENT),
        }
    }

    fn open_entry(&self, dir: &String, name: &CStr) -> Result<(String, Kind), Errno> {
        let full = Self::join(dir, name);
        let kind = self.entries.borrow().get(&full).copied();
        kind.map(|k| (full, k)).ok_or(Errno::NOENT)
    }

    fn mkdir(&self, dir: &String, name: &CStr) -> Result<(), Errno> {
        let full = Self::join(dir, name);
        self.call(format!("mkdir {full}"))?;
        self.entries.borrow_mut().insert(full, Kind::Dir);
        Ok(())
    }

    fn mkfile(&self, dir: &String, name: &CStr) -> Result<(), Errno> {
        let full = Self::join(dir, name);
        self.call(format!("mkfile {full}"))?;
        self.entries.borrow_mut().insert(full, Kind::File);
        Ok(())
    }

    fn symlink(&self, target: &CStr, dir: &String, name: &CStr) -> Result<(), Errno> {
        let full = Self::join(dir, name);
        self.call(format!("symlink {full} -> {}", s(target)))?;
        self.entries.borrow_mut().insert(full, Kind::Symlink);
        Ok(())
    }

    fn on_overlay(&self, fd: &String) -> Result<bool, Errno> {
        let mounted = self.mounted.borrow();
        Ok(!mounted
            .iter()
            .any(|m| fd == m || fd.starts_with(&format!("{m}/"))))
    }

    fn pivot_into(&self, root: &String) -> Result<(), Errno> {
        self.call(format!("pivot {root}"))
    }

    fn unshare_user_mount(&self) -> Result<(), Errno> {
        self.call("unshare user|mount".into())
    }

    fn no_new_privs(&self) -> Result<(), Errno> {
        self.call("no-new-privs".into())
    }

    fn loopback_up(&self) -> Result<(), Errno> {
        self.call("loopback-up".into())
    }
}
