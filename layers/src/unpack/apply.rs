//! Applying one tar entry to the root: files, directories, links, whiteouts.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{
    AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, fchmod, futimens, linkat, mkdirat,
    openat, symlinkat, utimensat,
};
use rustix::io::Errno;
use tar::EntryType;

use super::error::UnpackError;
use super::fsops::{
    Components, RootFs, c_name, display, file_type_at, fs_error, join, list, open_listing,
    remove_any,
};
use super::stream::{EntryNames, StreamState};
use super::{OwnerRecord, UnpackStats};
use crate::entry::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX};

/// Copy buffer for file contents.
const COPY_BUFFER: usize = 128 * 1024;

/// Split a raw archive name into clean components: empty and `.` components dropped, `..` pops
/// (and stops at the root, as in a chroot). Backslashes are ordinary name bytes on Linux.
pub(crate) fn clean(raw: &[u8]) -> Components {
    let mut out: Components = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            name => out.push(name.to_vec()),
        }
    }
    out
}

fn timestamps(mtime: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// State of one layer being applied.
pub(crate) struct Applier<'r> {
    root: &'r RootFs,
    /// Paths this layer created (entries and the parents it had to make).
    written: HashSet<Vec<u8>>,
    /// `written` plus every ancestor of a written path.
    touched: HashSet<Vec<u8>>,
    /// Directory entries whose mode and mtime are applied at the end, after their children.
    dirs: Vec<(Components, u32, u64)>,
    /// Unprivileged: keep owner rwx on directories so later layers can still write into them.
    rootless: bool,
    stats: UnpackStats,
    buffer: Vec<u8>,
}

impl<'r> Applier<'r> {
    pub(crate) fn new(root: &'r RootFs) -> Self {
        Self {
            root,
            written: HashSet::new(),
            touched: HashSet::new(),
            dirs: Vec::new(),
            rootless: !rustix::process::geteuid().is_root(),
            stats: UnpackStats::default(),
            buffer: Vec::new(),
        }
    }

    fn mark_written(&mut self, components: &[Vec<u8>]) {
        self.written.insert(join(components));
        for depth in 0..=components.len() {
            if let Some(prefix) = components.get(..depth) {
                self.touched.insert(join(prefix));
            }
        }
    }

    /// Open (creating as needed) the parent directory of an entry.
    fn parent(&mut self, parent: &[Vec<u8>], entry: &[Vec<u8>]) -> Result<OwnedFd, UnpackError> {
        let mut created = Vec::new();
        let fd = self
            .root
            .ensure_dir(parent, entry, &mut |p| created.push(p.to_vec()))?;
        for dir in created {
            self.mark_written(&dir);
        }
        Ok(fd)
    }

    /// Apply one real (non-extension) entry.
    pub(crate) fn apply<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        names: EntryNames,
        state: &StreamState,
        budget: u64,
    ) -> Result<(), UnpackError> {
        let header = entry.header();
        let mut kind = header.entry_type();
        let shown = String::from_utf8_lossy(&names.path).into_owned();
        if names.pax_size.is_some_and(|s| s != entry.size()) {
            return Err(UnpackError::Unsupported {
                path: shown,
                kind: 'x',
            });
        }
        let mode = header.mode().map_err(UnpackError::Tar)? & 0o7777;
        let mtime = header.mtime().map_err(UnpackError::Tar)?;
        let (uid, gid) = (
            header.uid().map_err(UnpackError::Tar)?,
            header.gid().map_err(UnpackError::Tar)?,
        );
        // Old-style archives mark directories with a trailing slash on an empty regular entry.
        if kind == EntryType::Regular && names.path.ends_with(b"/") && entry.size() == 0 {
            kind = EntryType::Directory;
        }
        let components = clean(&names.path);
        let Some((name, parent)) = components.split_last() else {
            // `.`, `/`, `""`: the root itself. Its type and mode stay ours.
            return if kind.is_dir() {
                Ok(())
            } else {
                Err(UnpackError::RootEntry { path: shown })
            };
        };

        if let Some(rest) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            self.stats.whiteouts += 1;
            return if name.as_slice() == OPAQUE_WHITEOUT.as_bytes() {
                self.opaque(parent)
            } else if rest.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                // Other `.wh..wh.*` names are aufs bookkeeping, never content.
                self.stats.whiteouts -= 1;
                self.stats.skipped += 1;
                Ok(())
            } else if matches!(rest, b"" | b"." | b"..") {
                Err(UnpackError::MalformedWhiteout { path: shown })
            } else {
                self.whiteout(parent, rest)
            };
        }

        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            self.stats.skipped += 1;
            return Ok(());
        }
        let handled = kind.is_dir()
            || kind.is_file()
            || kind == EntryType::Continuous
            || kind.is_symlink()
            || kind.is_hard_link();
        if !handled {
            return Err(UnpackError::Unsupported {
                path: shown,
                kind: char::from(kind.as_byte()),
            });
        }

        let parent_fd = self.parent(parent, &components)?;
        let c = c_name(name).map_err(|e| fs_error("create", &components, e))?;
        if kind.is_dir() {
            self.dir(&parent_fd, &c, &components, mode, mtime)?;
        } else if kind.is_symlink() {
            let target = names.link.unwrap_or_default();
            self.symlink(&parent_fd, &c, &components, &target, mtime)?;
        } else if kind.is_hard_link() {
            let target = names.link.unwrap_or_default();
            self.hardlink(&parent_fd, &c, &components, &target)?;
        } else {
            self.file(
                entry,
                &parent_fd,
                &c,
                &components,
                mode,
                mtime,
                state,
                budget,
            )?;
        }
        if uid != 0 || gid != 0 {
            self.stats.owners.push(OwnerRecord {
                path: display(&components),
                uid,
                gid,
            });
        }
        self.mark_written(&components);
        Ok(())
    }

    fn dir(
        &mut self,
        parent: &OwnedFd,
        name: &CString,
        components: &[Vec<u8>],
        mode: u32,
        mtime: u64,
    ) -> Result<(), UnpackError> {
        let err = |op, e| fs_error(op, components, e);
        match file_type_at(parent.as_fd(), name).map_err(|e| err("inspect", e))? {
            Some(FileType::Directory) => {}
            existing => {
                if existing.is_some() {
                    remove_any(parent.as_fd(), name).map_err(|e| err("replace", e))?;
                }
                mkdirat(parent, name.as_c_str(), Mode::from_raw_mode(0o755))
                    .map_err(|e| err("create directory", e))?;
            }
        }
        self.stats.dirs += 1;
        self.dirs.push((components.to_vec(), mode, mtime));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        parent: &OwnedFd,
        name: &CString,
        components: &[Vec<u8>],
        mode: u32,
        mtime: u64,
        state: &StreamState,
        budget: u64,
    ) -> Result<(), UnpackError> {
        let err = |op, e| fs_error(op, components, e);
        // Replace whatever is there (a symlink is removed, never written through).
        remove_any(parent.as_fd(), name).map_err(|e| err("replace", e))?;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = openat(parent, name.as_c_str(), flags, Mode::from_raw_mode(0o600))
            .map_err(|e| err("create file", e))?;
        let mut file = File::from(fd);
        let size = entry.size();
        if self.buffer.is_empty() {
            self.buffer = vec![0; COPY_BUFFER];
        }
        let mut copied = 0u64;
        loop {
            let n = entry
                .read(&mut self.buffer)
                .map_err(|e| state.classify(e, budget))?;
            if n == 0 {
                break;
            }
            let chunk = self.buffer.get(..n).unwrap_or_default();
            file.write_all(chunk).map_err(|e| UnpackError::Fs {
                op: "write",
                path: display(components),
                source: e,
            })?;
            copied += n as u64;
        }
        if copied != size {
            return Err(UnpackError::Truncated {
                path: display(components),
            });
        }
        fchmod(&file, Mode::from_raw_mode(mode)).map_err(|e| err("chmod", e))?;
        futimens(&file, &timestamps(mtime)).map_err(|e| err("set times of", e))?;
        self.stats.files += 1;
        self.stats.file_bytes += copied;
        Ok(())
    }

    fn symlink(
        &mut self,
        parent: &OwnedFd,
        name: &CString,
        components: &[Vec<u8>],
        target: &[u8],
        mtime: u64,
    ) -> Result<(), UnpackError> {
        let err = |op, e| fs_error(op, components, e);
        let target = c_name(target).map_err(|e| err("create symlink", e))?;
        remove_any(parent.as_fd(), name).map_err(|e| err("replace", e))?;
        symlinkat(target.as_c_str(), parent, name.as_c_str())
            .map_err(|e| err("create symlink", e))?;
        utimensat(
            parent,
            name.as_c_str(),
            &timestamps(mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| err("set times of", e))?;
        self.stats.symlinks += 1;
        Ok(())
    }

    fn hardlink(
        &mut self,
        parent: &OwnedFd,
        name: &CString,
        components: &[Vec<u8>],
        target: &[u8],
    ) -> Result<(), UnpackError> {
        let err = |op, e| fs_error(op, components, e);
        // The target is a path inside this root, whatever it claims (absolute or `..`).
        let target = clean(target);
        if target.as_slice() == components {
            return Ok(());
        }
        let Some((target_name, target_parent)) = target.split_last() else {
            return Err(err("link", Errno::PERM));
        };
        let target_dir = self
            .root
            .open_in_root(target_parent, OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|e| err("link", e))?;
        let target_name = c_name(target_name).map_err(|e| err("link", e))?;
        if file_type_at(target_dir.as_fd(), &target_name)
            .map_err(|e| err("link", e))?
            .is_none()
        {
            return Err(err("link", Errno::NOENT));
        }
        remove_any(parent.as_fd(), name).map_err(|e| err("replace", e))?;
        // No AT_SYMLINK_FOLLOW: a symlink target is linked as the symlink itself.
        linkat(
            &target_dir,
            target_name.as_c_str(),
            parent,
            name.as_c_str(),
            AtFlags::empty(),
        )
        .map_err(|e| err("link", e))?;
        self.stats.hardlinks += 1;
        Ok(())
    }

    /// `.wh.<name>` in `parent`: remove `name` as left by lower layers.
    fn whiteout(&mut self, parent: &[Vec<u8>], name: &[u8]) -> Result<(), UnpackError> {
        let mut target = parent.to_vec();
        target.push(name.to_vec());
        if self.touched.contains(&join(&target)) {
            // Added by this same layer: a whiteout only hides lower layers.
            return Ok(());
        }
        let dir = match self
            .root
            .open_in_root(parent, OFlags::PATH | OFlags::DIRECTORY)
        {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(()),
            Err(e) => return Err(fs_error("open", parent, e)),
        };
        let c = c_name(name).map_err(|e| fs_error("remove", &target, e))?;
        remove_any(dir.as_fd(), &c).map_err(|e| fs_error("remove", &target, e))?;
        Ok(())
    }

    /// `.wh..wh..opq` in `dir`: remove lower-layer content of `dir`, keep what this layer wrote.
    fn opaque(&mut self, dir: &[Vec<u8>]) -> Result<(), UnpackError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY;
        let fd = match self.root.open_in_root(dir, flags) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(()),
            Err(e) => return Err(fs_error("open", dir, e)),
        };
        let mut work: Vec<(OwnedFd, Components)> = vec![(fd, dir.to_vec())];
        while let Some((fd, path)) = work.pop() {
            let children = list(&fd).map_err(|e| fs_error("list", &path, e))?;
            for (child, is_dir) in children {
                let mut child_path = path.clone();
                child_path.push(child.to_bytes().to_vec());
                let key = join(&child_path);
                if is_dir && self.touched.contains(&key) {
                    let sub = open_listing(fd.as_fd(), &child)
                        .map_err(|e| fs_error("open", &child_path, e))?;
                    work.push((sub, child_path));
                } else if !self.written.contains(&key) {
                    remove_any(fd.as_fd(), &child)
                        .map_err(|e| fs_error("remove", &child_path, e))?;
                }
            }
        }
        Ok(())
    }

    /// Apply directory modes and mtimes, deepest and latest first, then return the stats.
    pub(crate) fn finish(mut self) -> Result<UnpackStats, UnpackError> {
        let mut done: HashSet<Components> = HashSet::new();
        let mut dirs = std::mem::take(&mut self.dirs);
        // Children before parents; for the same directory the last entry of the layer wins.
        dirs.reverse();
        dirs.sort_by_key(|(c, _, _)| std::cmp::Reverse(c.len()));
        for (components, mode, mtime) in dirs {
            if !done.insert(components.clone()) {
                continue;
            }
            let Some((name, parent)) = components.split_last() else {
                continue;
            };
            let err = |op, e| fs_error(op, &components, e);
            let parent_fd = match self
                .root
                .open_in_root(parent, OFlags::PATH | OFlags::DIRECTORY)
            {
                Ok(fd) => fd,
                Err(Errno::NOENT | Errno::NOTDIR) => continue,
                Err(e) => return Err(err("open", e)),
            };
            let c = c_name(name).map_err(|e| err("open", e))?;
            let fd = match open_listing(parent_fd.as_fd(), &c) {
                Ok(fd) => fd,
                // Replaced or removed by a later entry of this layer.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => return Err(err("open", e)),
            };
            let mode = if self.rootless { mode | 0o700 } else { mode };
            fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| err("chmod", e))?;
            futimens(&fd, &timestamps(mtime)).map_err(|e| err("set times of", e))?;
        }
        Ok(self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_never_leaves_the_root() {
        let c = |s: &str| {
            clean(s.as_bytes())
                .into_iter()
                .map(|p| String::from_utf8(p).unwrap())
                .collect::<Vec<_>>()
                .join("/")
        };
        assert_eq!(c("../../etc/passwd"), "etc/passwd");
        assert_eq!(c("/abs/./x//y/"), "abs/x/y");
        assert_eq!(c("a/../../b"), "b");
        assert_eq!(c("..\\..\\x"), "..\\..\\x");
        assert_eq!(c("./"), "");
        assert_eq!(c(""), "");
    }
}
