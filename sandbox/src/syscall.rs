//! The privileged operations the sandbox setup needs, behind a small trait (youki style) so the
//! mount plan can be executed against a recording fake in unit tests.
//!
//! The real implementation runs in the child between `clone` and `execve` of a possibly
//! multi-threaded caller, so every method must be async-signal-safe: only raw system calls on
//! borrowed `&CStr`s (rustix's linux_raw backend does not touch libc state), no allocation, no
//! locks.

use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountPropagationFlags, MoveMountFlags,
    OpenTreeFlags, UnmountFlags,
};
use rustix::thread::UnshareFlags;

/// The type of an existing directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

/// A filesystem option for `fsconfig`: a string value or a flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FsOption {
    Str(&'static CStr, std::ffi::CString),
    Flag(&'static CStr),
}

/// Privileged/namespace operations used by [`crate::exec::execute`].
pub(crate) trait Syscall {
    /// A handle on an open file or detached mount.
    type Fd;
    /// Write `data` to an existing file (`/proc/self/uid_map` …).
    fn write_file(&self, path: &CStr, data: &[u8]) -> Result<(), Errno>;
    /// `sethostname`.
    fn set_hostname(&self, name: &[u8]) -> Result<(), Errno>;
    /// Make every mount private so nothing propagates to or from the host.
    fn make_private(&self) -> Result<(), Errno>;
    /// `fsopen` + `fsconfig` + `fsmount`: a new detached filesystem mount.
    fn new_fs(
        &self,
        fstype: &CStr,
        options: &[FsOption],
        attrs: MountAttrFlags,
    ) -> Result<Self::Fd, Errno>;
    /// `O_PATH` open of a host bind source; with `follow` false no component may be a symlink
    /// (`openat2` `RESOLVE_NO_SYMLINKS`).
    fn open_source(&self, path: &CStr, follow: bool) -> Result<Self::Fd, Errno>;
    /// `open_tree(OPEN_TREE_CLONE)` of an opened source: a detached bind mount.
    fn clone_tree(&self, source: &Self::Fd) -> Result<Self::Fd, Errno>;
    /// `open_tree(OPEN_TREE_CLONE | AT_RECURSIVE)`: the source with every mount below it.
    fn clone_tree_recursive(&self, source: &Self::Fd) -> Result<Self::Fd, Errno>;
    /// `mount_setattr` on a detached mount.
    fn set_attrs(&self, mount: &Self::Fd, attrs: MountAttrFlags) -> Result<(), Errno>;
    /// `move_mount` a detached mount onto an `O_PATH` fd.
    fn attach(&self, mount: &Self::Fd, target: &Self::Fd) -> Result<(), Errno>;
    /// `move_mount` a detached mount onto a host path.
    fn attach_at(&self, mount: &Self::Fd, path: &CStr) -> Result<(), Errno>;
    /// `O_PATH|O_DIRECTORY` open of a host path.
    fn open_dir(&self, path: &CStr) -> Result<Self::Fd, Errno>;
    /// `openat2(root, path, O_PATH|O_DIRECTORY, RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS)`.
    fn open_dir_in_root(&self, root: &Self::Fd, path: &CStr) -> Result<Self::Fd, Errno>;
    /// `openat(dir, name, O_PATH|O_NOFOLLOW)` and the entry's type.
    fn open_entry(&self, dir: &Self::Fd, name: &CStr) -> Result<(Self::Fd, Kind), Errno>;
    /// `mkdirat(dir, name, 0755)`.
    fn mkdir(&self, dir: &Self::Fd, name: &CStr) -> Result<(), Errno>;
    /// `mknodat(dir, name, S_IFREG|0644)`: an empty file to mount onto.
    fn mkfile(&self, dir: &Self::Fd, name: &CStr) -> Result<(), Errno>;
    /// `symlinkat(target, dir, name)`.
    fn symlink(&self, target: &CStr, dir: &Self::Fd, name: &CStr) -> Result<(), Errno>;
    /// Whether `fd` lives on an overlayfs (so a created entry shows in the upper dir).
    fn on_overlay(&self, fd: &Self::Fd) -> Result<bool, Errno>;
    /// `fchdir(root)`, `pivot_root(".", ".")`, detach the old root, `chdir("/")`.
    fn pivot_into(&self, root: &Self::Fd) -> Result<(), Errno>;
    /// `unshare(CLONE_NEWUSER|CLONE_NEWNS)`: a nested namespace pair that locks all mounts.
    fn unshare_user_mount(&self) -> Result<(), Errno>;
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
    fn no_new_privs(&self) -> Result<(), Errno>;
    /// Sets `IFF_UP` on `lo` (`SIOCSIFFLAGS`) in the current network namespace.
    fn loopback_up(&self) -> Result<(), Errno>;
}

/// The real implementation on Linux.
pub(crate) struct Linux;

const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

impl Syscall for Linux {
    type Fd = OwnedFd;

    fn write_file(&self, path: &CStr, data: &[u8]) -> Result<(), Errno> {
        let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
        let written = rustix::io::write(&fd, data)?;
        if written == data.len() {
            Ok(())
        } else {
            Err(Errno::IO)
        }
    }

    fn set_hostname(&self, name: &[u8]) -> Result<(), Errno> {
        rustix::system::sethostname(name)
    }

    fn make_private(&self) -> Result<(), Errno> {
        rustix::mount::mount_change(
            c"/",
            MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
        )
    }

    fn new_fs(
        &self,
        fstype: &CStr,
        options: &[FsOption],
        attrs: MountAttrFlags,
    ) -> Result<OwnedFd, Errno> {
        let fs = rustix::mount::fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?;
        for option in options {
            match option {
                FsOption::Str(key, value) => {
                    rustix::mount::fsconfig_set_string(&fs, *key, value.as_c_str())?
                }
                FsOption::Flag(key) => rustix::mount::fsconfig_set_flag(&fs, *key)?,
            }
        }
        rustix::mount::fsconfig_create(&fs)?;
        rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
    }

    fn open_source(&self, path: &CStr, follow: bool) -> Result<OwnedFd, Errno> {
        let flags = OFlags::PATH | OFlags::CLOEXEC;
        if follow {
            rustix::fs::open(path, flags, Mode::empty())
        } else {
            rustix::fs::openat2(
                rustix::fs::CWD,
                path,
                // No O_NOFOLLOW: with RESOLVE_NO_SYMLINKS a trailing symlink is then ELOOP
                // instead of an O_PATH handle on the link itself.
                flags,
                Mode::empty(),
                ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            )
        }
    }

    fn clone_tree(&self, source: &OwnedFd) -> Result<OwnedFd, Errno> {
        rustix::mount::open_tree(
            source,
            c"",
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_EMPTY_PATH,
        )
    }

    fn clone_tree_recursive(&self, source: &OwnedFd) -> Result<OwnedFd, Errno> {
        rustix::mount::open_tree(
            source,
            c"",
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_EMPTY_PATH
                | OpenTreeFlags::AT_RECURSIVE,
        )
    }

    fn set_attrs(&self, mount: &OwnedFd, attrs: MountAttrFlags) -> Result<(), Errno> {
        // rustix has no mount_setattr wrapper; the struct is `struct mount_attr` (VER0, 32 bytes).
        #[repr(C)]
        struct MountAttr {
            attr_set: u64,
            attr_clr: u64,
            propagation: u64,
            userns_fd: u64,
        }
        let attr = MountAttr {
            attr_set: u64::from(attrs.bits()),
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        // SAFETY: raw syscall with a valid fd, a NUL-terminated empty path and a pointer to a
        // live, correctly sized `mount_attr`.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                std::os::fd::AsRawFd::as_raw_fd(mount),
                c"".as_ptr(),
                libc::AT_EMPTY_PATH,
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        };
        if ret == 0 {
            Ok(())
        } else {
            // SAFETY: reading errno right after a failed syscall; `__errno_location` is
            // async-signal-safe (thread-local storage of the only thread in the child).
            Err(Errno::from_raw_os_error(unsafe {
                *libc::__errno_location()
            }))
        }
    }

    fn attach(&self, mount: &OwnedFd, target: &OwnedFd) -> Result<(), Errno> {
        rustix::mount::move_mount(
            mount,
            c"",
            target,
            c"",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
    }

    fn attach_at(&self, mount: &OwnedFd, path: &CStr) -> Result<(), Errno> {
        rustix::mount::move_mount(
            mount,
            c"",
            rustix::fs::CWD,
            path,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
    }

    fn open_dir(&self, path: &CStr) -> Result<OwnedFd, Errno> {
        rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    }

    fn open_dir_in_root(&self, root: &OwnedFd, path: &CStr) -> Result<OwnedFd, Errno> {
        rustix::fs::openat2(
            root,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
    }

    fn open_entry(&self, dir: &OwnedFd, name: &CStr) -> Result<(OwnedFd, Kind), Errno> {
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let stat = rustix::fs::fstat(&fd)?;
        let kind = match rustix::fs::FileType::from_raw_mode(stat.st_mode) {
            rustix::fs::FileType::Directory => Kind::Dir,
            rustix::fs::FileType::RegularFile | rustix::fs::FileType::CharacterDevice => Kind::File,
            rustix::fs::FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        };
        Ok((fd, kind))
    }

    fn mkdir(&self, dir: &OwnedFd, name: &CStr) -> Result<(), Errno> {
        rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755))
    }

    fn mkfile(&self, dir: &OwnedFd, name: &CStr) -> Result<(), Errno> {
        rustix::fs::mknodat(
            dir,
            name,
            rustix::fs::FileType::RegularFile,
            Mode::from_raw_mode(0o644),
            0,
        )
    }

    fn symlink(&self, target: &CStr, dir: &OwnedFd, name: &CStr) -> Result<(), Errno> {
        rustix::fs::symlinkat(target, dir, name)
    }

    fn on_overlay(&self, fd: &OwnedFd) -> Result<bool, Errno> {
        let stat = rustix::fs::fstatfs(fd)?;
        #[allow(clippy::unnecessary_cast)] // f_type is i64 or u32 depending on the target
        Ok(stat.f_type as i64 == OVERLAYFS_SUPER_MAGIC)
    }

    fn pivot_into(&self, root: &OwnedFd) -> Result<(), Errno> {
        rustix::process::fchdir(root.as_fd())?;
        // pivot_root(".", ".") stacks the old root on top of the new one; unmounting "." then
        // detaches it without needing a put_old directory inside the image (as runc does).
        rustix::process::pivot_root(c".", c".")?;
        rustix::mount::unmount(c".", UnmountFlags::DETACH)?;
        rustix::process::chdir(c"/")
    }

    fn unshare_user_mount(&self) -> Result<(), Errno> {
        // SAFETY: no CLONE_FILES; the child is single-threaded, so no other thread can observe
        // the new namespaces.
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER | UnshareFlags::NEWNS) }
    }

    fn no_new_privs(&self) -> Result<(), Errno> {
        rustix::thread::set_no_new_privs(true)
    }

    fn loopback_up(&self) -> Result<(), Errno> {
        // rustix wraps no interface-flag ioctl; `struct ifreq` and the two ioctls come from libc.
        let socket = rustix::net::socket_with(
            rustix::net::AddressFamily::INET,
            rustix::net::SocketType::DGRAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
        // SAFETY: `ifreq` is plain data (all-zero is valid); the ioctls read and write only that
        // struct, on a socket we own. errno is read right after a failure, as in `set_attrs`.
        unsafe {
            let mut request: libc::ifreq = std::mem::zeroed();
            for (dst, src) in request.ifr_name.iter_mut().zip(b"lo\0") {
                *dst = *src as libc::c_char;
            }
            if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request) < 0 {
                return Err(Errno::from_raw_os_error(*libc::__errno_location()));
            }
            request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &request) < 0 {
                return Err(Errno::from_raw_os_error(*libc::__errno_location()));
            }
        }
        Ok(())
    }
}
