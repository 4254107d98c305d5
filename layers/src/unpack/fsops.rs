//! Filesystem operations confined to a root directory.
//!
//! Every path is resolved with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` relative to a
//! file descriptor of the root. We chose this over walking components with `O_NOFOLLOW` by hand
//! because the kernel then resolves symlinks (absolute ones, `..` chains, symlinks planted by an
//! earlier entry or layer) exactly as a chroot would, atomically, with no user-space resolver to
//! get wrong; it needs Linux ≥ 5.6, which every kernel that can run rootless overlay has.
//! Only parent directories are resolved this way; the final component is always acted on with an
//! `*at` call on the parent fd that does not follow it (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`,
//! `unlinkat`, `mkdirat`, `symlinkat`, `linkat` without `AT_SYMLINK_FOLLOW`).

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, chmodat, mkdirat, openat, openat2, statat,
    unlinkat,
};
use rustix::io::Errno;

use super::error::UnpackError;

/// A cleaned, root-relative path: no empty, `.` or `..` components.
pub(crate) type Components = Vec<Vec<u8>>;

/// `/a/b` form of a root-relative path, for messages.
pub(crate) fn display(components: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for c in components {
        out.push('/');
        out.push_str(&String::from_utf8_lossy(c));
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// `a/b` form of a root-relative path, as bytes (empty for the root).
pub(crate) fn join(components: &[Vec<u8>]) -> Vec<u8> {
    components.join(&b'/')
}

pub(crate) fn fs_error(op: &'static str, components: &[Vec<u8>], errno: Errno) -> UnpackError {
    UnpackError::Fs {
        op,
        path: display(components),
        source: errno.into(),
    }
}

/// A file name for an `*at` call; names come from the archive and may contain NUL (rejected).
pub(crate) fn c_name(name: &[u8]) -> Result<CString, Errno> {
    CString::new(name).map_err(|_| Errno::INVAL)
}

/// The root directory that layers are applied to.
pub(crate) struct RootFs {
    fd: OwnedFd,
}

impl RootFs {
    /// Open `path` (which must be an existing directory).
    pub(crate) fn open(path: &Path) -> Result<Self, UnpackError> {
        let fd = openat(
            rustix::fs::CWD,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| UnpackError::Root {
            path: path.display().to_string(),
            source: e.into(),
        })?;
        let root = Self { fd };
        // Probe openat2 once so a missing syscall gives one clear error.
        match root.open_in_root(&[], OFlags::PATH | OFlags::DIRECTORY) {
            Ok(_) => Ok(root),
            Err(e @ (Errno::NOSYS | Errno::PERM)) => Err(UnpackError::Openat2Unavailable(e.into())),
            Err(e) => Err(UnpackError::Root {
                path: path.display().to_string(),
                source: e.into(),
            }),
        }
    }

    /// Open `components` resolved inside the root (symlinks followed, but never out of it).
    pub(crate) fn open_in_root(
        &self,
        components: &[Vec<u8>],
        flags: OFlags,
    ) -> Result<OwnedFd, Errno> {
        let path = if components.is_empty() {
            b".".to_vec()
        } else {
            join(components)
        };
        let path = c_name(&path)?;
        let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        let mut attempts = 0;
        loop {
            match openat2(
                &self.fd,
                path.as_c_str(),
                flags | OFlags::CLOEXEC,
                Mode::empty(),
                resolve,
            ) {
                // EAGAIN: a concurrent rename raced the resolution; nothing else writes here, but
                // the kernel may still ask us to retry.
                Err(Errno::AGAIN | Errno::INTR) if attempts < 16 => attempts += 1,
                other => return other,
            }
        }
    }

    /// Resolve directory `components`, creating missing directories (mode 0755) inside the root.
    /// `created` is told about every directory made.
    pub(crate) fn ensure_dir(
        &self,
        components: &[Vec<u8>],
        entry: &[Vec<u8>],
        created: &mut dyn FnMut(&[Vec<u8>]),
    ) -> Result<OwnedFd, UnpackError> {
        let flags = OFlags::PATH | OFlags::DIRECTORY;
        match self.open_in_root(components, flags) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(Errno::NOTDIR) => {
                return Err(UnpackError::ParentNotDirectory {
                    path: display(entry),
                });
            }
            Err(e) => return Err(fs_error("open", components, e)),
        }
        let mut current = self
            .open_in_root(&[], flags)
            .map_err(|e| fs_error("open", &[], e))?;
        for depth in 1..=components.len() {
            let prefix = components.get(..depth).unwrap_or(components);
            current = match self.open_in_root(prefix, flags) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    let name = prefix.last().map(Vec::as_slice).unwrap_or_default();
                    let name = c_name(name).map_err(|e| fs_error("create", prefix, e))?;
                    match mkdirat(&current, name.as_c_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) => created(prefix),
                        // Exists but did not resolve: a dangling symlink. Refuse rather than guess.
                        Err(Errno::EXIST) => {
                            return Err(UnpackError::ParentNotDirectory {
                                path: display(entry),
                            });
                        }
                        Err(e) => return Err(fs_error("create", prefix, e)),
                    }
                    self.open_in_root(prefix, flags)
                        .map_err(|e| fs_error("open", prefix, e))?
                }
                Err(Errno::NOTDIR) => {
                    return Err(UnpackError::ParentNotDirectory {
                        path: display(entry),
                    });
                }
                Err(e) => return Err(fs_error("open", prefix, e)),
            };
        }
        Ok(current)
    }
}

/// What [`remove_any`] found.
pub(crate) fn file_type_at(parent: BorrowedFd<'_>, name: &CStr) -> Result<Option<FileType>, Errno> {
    match statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Remove `name` in `parent` whatever it is (a directory with all its content); never follows
/// symlinks. Returns whether something was there.
pub(crate) fn remove_any(parent: BorrowedFd<'_>, name: &CStr) -> Result<bool, Errno> {
    match file_type_at(parent, name)? {
        None => Ok(false),
        Some(FileType::Directory) => remove_tree(parent, name).map(|()| true),
        Some(_) => unlinkat(parent, name, AtFlags::empty()).map(|()| true),
    }
}

/// Open directory `name` in `parent` for listing, without following a symlink.
pub(crate) fn open_listing(parent: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match openat(parent, name, flags, Mode::empty()) {
        // An unprivileged user meeting a 0000 directory it owns: grant itself access. `name` was
        // just found to be a directory (not a symlink) and nothing else writes into the root.
        Err(Errno::ACCESS) => {
            chmodat(parent, name, Mode::from_raw_mode(0o700), AtFlags::empty())?;
            openat(parent, name, flags, Mode::empty())
        }
        other => other,
    }
}

/// Names and "is a directory" of every entry of an open directory.
pub(crate) fn list(dir: &OwnedFd) -> Result<Vec<(CString, bool)>, Errno> {
    let mut out = Vec::new();
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            FileType::Unknown => file_type_at(dir.as_fd(), name)? == Some(FileType::Directory),
            t => t == FileType::Directory,
        };
        out.push((name.to_owned(), is_dir));
    }
    Ok(out)
}

/// Remove directory `name` in `parent` and everything below it, depth-first without recursion
/// (an archive can nest directories deeper than the stack would like).
fn remove_tree(parent: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    struct Level {
        fd: OwnedFd,
        children: Vec<(CString, bool)>,
        name: CString,
    }
    let fd = open_listing(parent, name)?;
    let children = list(&fd)?;
    let mut stack = vec![Level {
        fd,
        children,
        name: name.to_owned(),
    }];
    loop {
        let Some(top) = stack.last_mut() else {
            return Ok(());
        };
        match top.children.pop() {
            Some((child, true)) => {
                let fd = open_listing(top.fd.as_fd(), &child)?;
                let children = list(&fd)?;
                stack.push(Level {
                    fd,
                    children,
                    name: child,
                });
            }
            Some((child, false)) => unlinkat(&top.fd, child.as_c_str(), AtFlags::empty())?,
            None => {
                let done = stack.pop();
                let dir_parent = stack.last().map_or(parent, |l| l.fd.as_fd());
                if let Some(done) = done {
                    drop(done.fd);
                    unlinkat(dir_parent, done.name.as_c_str(), AtFlags::REMOVEDIR)?;
                }
            }
        }
    }
}
