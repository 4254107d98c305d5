//! The staging tree of the namespace-free install: a directory that mirrors the image's root
//! closely enough for the image's interpreter, run from the host with this tree as its prefix,
//! to install *into* it exactly what an install inside the image would write.
//!
//! Nothing in the lowers (the cached base root and layer roots) may be modified, so every
//! directory an installer can write to is a real directory of the tree:
//! - the **writable** directories (site directories, scripts, the scheme's install dirs) are
//!   copied whole from the lowers, so deleting or rewriting anything in them (an upgrade of a
//!   base package) only touches the copy;
//! - the **data** directories (`data`, `include`: where wheels' `.data/` files go) are mirrored
//!   as real directories whose files are symlinks to the lowers (new files land in the tree);
//! - the standard library directories and every parent of the above are real directories whose
//!   other entries are symlinks to the lowers (the interpreter finds its landmarks through them);
//! - everything else is one symlink to the lowers' entry.
//!
//! [`layers::changes_from_tree`] then compares the copied and mirrored directories with the
//! lowers: a stand-in symlink is "unchanged", anything else is what the install did.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use layers::Lowers;

use crate::error::InstallError;

/// How one path of the tree is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Copied whole.
    Copy,
    /// Real directories, files as stand-in symlinks.
    Mirror,
    /// A real directory whose children are classified one by one.
    Parent,
    /// One stand-in symlink.
    Link,
}

/// Which root-relative directories the tree copies and mirrors.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    /// Copied whole.
    pub copy: BTreeSet<String>,
    /// Mirrored (real dirs, symlinked files).
    pub mirror: BTreeSet<String>,
    /// Real directories with symlinked children (the standard library: its landmarks).
    pub parents: BTreeSet<String>,
}

fn under(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl Plan {
    fn class(&self, rel: &str) -> Class {
        if self.copy.iter().any(|c| under(rel, c)) {
            return Class::Copy;
        }
        let wanted = || {
            self.copy
                .iter()
                .chain(&self.mirror)
                .chain(&self.parents)
                .any(|p| under(p, rel))
        };
        if self.parents.contains(rel) {
            return Class::Parent;
        }
        // Below a standard library directory, only what leads to a wanted path is real.
        if self.parents.iter().any(|p| under(rel, p)) {
            return if wanted() { Class::Parent } else { Class::Link };
        }
        if self.mirror.iter().any(|m| under(rel, m)) {
            return Class::Mirror;
        }
        if wanted() { Class::Parent } else { Class::Link }
    }

    /// The directories whose changes make the layer: the copied and mirrored ones, without
    /// those inside another.
    pub fn roots(&self) -> Vec<String> {
        let all: Vec<&String> = self.copy.iter().chain(&self.mirror).collect();
        let mut out: Vec<String> = all
            .iter()
            .filter(|p| !all.iter().any(|q| *q != **p && under(p, q)))
            .map(|p| (*p).clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Builds the tree at `tree` (an empty directory) from `lowers` following `plan`.
pub(crate) fn build(tree: &Path, lowers: &Lowers, plan: &Plan) -> Result<(), InstallError> {
    let mut stack = vec![String::new()];
    while let Some(dir) = stack.pop() {
        for name in lowers.children(&dir) {
            let rel = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            let Some((host, meta)) = lowers.lookup(&rel) else {
                continue;
            };
            let dest = tree.join(&rel);
            let class = plan.class(&rel);
            if meta.is_dir() && class != Class::Link {
                fs_err::create_dir(&dest).map_err(InstallError::Cache)?;
                set_mode(&dest, meta.mode() | 0o700)?;
                stack.push(rel);
                continue;
            }
            match class {
                Class::Copy => copy_entry(&host, &meta, &dest)?,
                Class::Link | Class::Mirror | Class::Parent => {
                    fs_err::os::unix::fs::symlink(&host, &dest).map_err(InstallError::Cache)?
                }
            }
        }
    }
    // Copied directories keep their own modes once filled (writable for the install).
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), InstallError> {
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(InstallError::Cache)
}

/// Copies one non-directory entry: regular files with their mode and mtime (so an untouched
/// copy compares equal without reading it), symlinks verbatim.
fn copy_entry(host: &Path, meta: &std::fs::Metadata, dest: &Path) -> Result<(), InstallError> {
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs_err::read_link(host).map_err(InstallError::Cache)?;
        fs_err::os::unix::fs::symlink(target, dest).map_err(InstallError::Cache)?;
    } else if ft.is_file() {
        // std's copy uses copy_file_range, which reflinks on file systems that can.
        fs_err::copy(host, dest).map_err(InstallError::Cache)?;
        set_mode(dest, meta.mode() | 0o200)?;
        let times = std::fs::FileTimes::new()
            .set_modified(meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH));
        fs_err::File::options()
            .write(true)
            .open(dest)
            .and_then(|f| f.set_times(times))
            .map_err(InstallError::Cache)?;
    }
    // Devices, fifos and sockets have no place in a site directory: left out.
    Ok(())
}

/// Writes `content` as an executable file at `tree/rel`, replacing what is there.
pub(crate) fn put_executable(
    tree: &Path,
    rel: &str,
    content: &str,
) -> Result<PathBuf, InstallError> {
    let path = tree.join(rel);
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent).map_err(InstallError::Cache)?;
    }
    match fs_err::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(InstallError::Cache(e)),
    }
    fs_err::write(&path, content).map_err(InstallError::Cache)?;
    set_mode(&path, 0o755)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_plan() {
        let plan = Plan {
            copy: ["usr/local/bin", "usr/local/lib/python3.13/site-packages"]
                .map(String::from)
                .into(),
            mirror: ["usr/local"].map(String::from).into(),
            parents: ["usr/local/lib/python3.13"].map(String::from).into(),
        };
        assert_eq!(plan.class("usr"), Class::Parent);
        assert_eq!(plan.class("etc"), Class::Link);
        assert_eq!(plan.class("usr/share"), Class::Link);
        assert_eq!(plan.class("usr/local/share/man"), Class::Mirror);
        assert_eq!(plan.class("usr/local/bin/pip"), Class::Copy);
        assert_eq!(plan.class("usr/local/lib/python3.13"), Class::Parent);
        assert_eq!(plan.class("usr/local/lib/python3.13/os.py"), Class::Link);
        assert_eq!(
            plan.class("usr/local/lib/python3.13/encodings"),
            Class::Link
        );
        assert_eq!(
            plan.class("usr/local/lib/python3.13/site-packages/pip/x.py"),
            Class::Copy
        );
        assert_eq!(
            plan.roots(),
            ["usr/local".to_owned()],
            "copied dirs inside a mirrored one are walked with it"
        );
    }

    #[test]
    fn tree_copies_mirrors_and_links() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("base");
        for d in [
            "usr/lib/python3.13/encodings",
            "usr/local/bin",
            "usr/local/share/x",
            "etc",
        ] {
            fs_err::create_dir_all(base.join(d)).unwrap();
        }
        fs_err::write(base.join("usr/lib/python3.13/os.py"), "os").unwrap();
        fs_err::write(base.join("usr/local/bin/pip"), "pip").unwrap();
        fs_err::write(base.join("usr/local/share/x/f"), "f").unwrap();
        let plan = Plan {
            copy: ["usr/local/bin".to_owned()].into(),
            mirror: ["usr/local".to_owned()].into(),
            parents: ["usr/lib/python3.13".to_owned()].into(),
        };
        let tree = tmp.path().join("tree");
        fs_err::create_dir(&tree).unwrap();
        let lowers = Lowers::new(vec![base.clone()]);
        build(&tree, &lowers, &plan).unwrap();
        let link = |p: &str| fs_err::read_link(tree.join(p)).unwrap();
        assert_eq!(link("etc"), base.join("etc"));
        assert_eq!(
            link("usr/lib/python3.13/os.py"),
            base.join("usr/lib/python3.13/os.py")
        );
        assert_eq!(
            link("usr/lib/python3.13/encodings"),
            base.join("usr/lib/python3.13/encodings")
        );
        assert_eq!(
            link("usr/local/share/x/f"),
            base.join("usr/local/share/x/f")
        );
        let pip = tree.join("usr/local/bin/pip");
        assert!(
            !fs_err::symlink_metadata(&pip)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs_err::read_to_string(pip).unwrap(), "pip");
        // The tree compares equal to what it was made from.
        let changes =
            layers::changes_from_tree(&tree, &plan.roots(), &lowers, &|_| true, &|_| false)
                .unwrap();
        assert!(changes.entries.is_empty(), "{:?}", changes.entries);
    }
}
