//! docs/reliability.md, cases 1–11: extraction of crafted, mostly malicious layers from
//! `testdata/layers/` (made by `testdata/layers/make.py`).
//!
//! Every test unpacks into `<tmp>/root` next to a `<tmp>/host` directory holding a canary file,
//! and checks that the host side is unchanged and the expected outcome (error, skip, or a write
//! that landed inside the root) happened. Cases that need an absolute host path use a fixed
//! directory under /tmp named after the case.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use layers::{UnpackError, UnpackLimits, UnpackStats, unpack_layer, unpack_layers_into};

const CANARY: &[u8] = b"canary\n";

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/layers")
        .join(name)
}

struct Sandbox {
    dir: tempfile::TempDir,
    root: PathBuf,
    host: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let host = dir.path().join("host");
        fs::create_dir(&root).unwrap();
        fs::create_dir(&host).unwrap();
        fs::write(host.join("canary"), CANARY).unwrap();
        Self { dir, root, host }
    }

    fn unpack(&self, name: &str) -> Result<UnpackStats, UnpackError> {
        self.unpack_with(name, &UnpackLimits::default())
    }

    fn unpack_with(&self, name: &str, limits: &UnpackLimits) -> Result<UnpackStats, UnpackError> {
        let file = fs::File::open(testdata(name)).unwrap();
        unpack_layer(&self.root, file, limits)
    }

    /// Nothing appeared next to the root and the host canary is unchanged.
    fn assert_host_untouched(&self) {
        let mut top: Vec<_> = names(self.dir.path());
        top.sort();
        assert_eq!(
            top,
            ["host", "root"],
            "something was written next to the root"
        );
        assert_eq!(
            names(&self.host),
            ["canary"],
            "something was written into the host dir"
        );
        assert_eq!(fs::read(self.host.join("canary")).unwrap(), CANARY);
        assert_eq!(fs::metadata(self.host.join("canary")).unwrap().nlink(), 1);
        assert!(
            fs::symlink_metadata(&self.root).unwrap().is_dir(),
            "root is no longer a dir"
        );
    }

    fn root_file(&self, rel: &str) -> Vec<u8> {
        fs::read(self.root.join(rel)).unwrap()
    }
}

fn names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// A canary at a fixed absolute path (for archives whose symlinks point at absolute paths).
struct FixedCanary {
    dir: PathBuf,
    file: PathBuf,
}

impl FixedCanary {
    fn new(dir: &str) -> Self {
        let dir = PathBuf::from(dir);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("canary");
        fs::write(&file, CANARY).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let t = fs::FileTimes::new()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000));
        fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_times(t)
            .unwrap();
        Self { dir, file }
    }

    fn assert_untouched(&self) {
        assert_eq!(
            names(&self.dir),
            ["canary"],
            "something was written into {:?}",
            self.dir
        );
        let meta = fs::metadata(&self.file).unwrap();
        assert_eq!(fs::read(&self.file).unwrap(), CANARY);
        assert_eq!(meta.mode() & 0o7777, 0o644, "mode of the host file changed");
        assert_eq!(meta.mtime(), 1000, "mtime of the host file changed");
        assert_eq!(meta.nlink(), 1, "the host file was hardlinked");
    }
}

impl Drop for FixedCanary {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn case01_dotdot_absolute_and_backslash_names_stay_inside_the_root() {
    let sb = Sandbox::new();
    sb.unpack("case01_dotdot_absolute.tar.gz").unwrap();
    sb.assert_host_untouched();
    // `..` is clamped at the root like a chroot would, so the writes land inside it.
    assert_eq!(sb.root_file("host/canary"), b"pwned\n");
    assert_eq!(sb.root_file("host/escape-dotdot"), b"pwned\n");
    assert_eq!(sb.root_file("abs-escape"), b"pwned\n");
    assert_eq!(sb.root_file("..\\..\\host\\escape-backslash"), b"pwned\n");
}

#[test]
fn case02_absolute_symlink_etc_never_writes_to_host_etc() {
    let sb = Sandbox::new();
    let result = sb.unpack("case02_etc_absolute_symlink.tar.gz");
    assert!(
        !Path::new("/etc/pyslip-escape-case02").exists(),
        "wrote to the host /etc"
    );
    sb.assert_host_untouched();
    // `etc -> /etc` resolves to itself inside the root: a loop, so the write fails.
    assert!(matches!(result, Err(UnpackError::Fs { .. })), "{result:?}");
}

#[test]
fn case02_dotdot_symlink_writes_land_inside_the_root() {
    let sb = Sandbox::new();
    sb.unpack("case02_dotdot_symlink.tar.gz").unwrap();
    sb.assert_host_untouched();
    assert_eq!(sb.root_file("host/canary"), b"pwned\n");
    assert_eq!(sb.root_file("written-via-up"), b"pwned\n");
    assert!(
        fs::symlink_metadata(sb.root.join("up"))
            .unwrap()
            .is_symlink()
    );
}

#[test]
fn case02_absolute_dir_symlink_is_not_followed_to_the_host() {
    let sb = Sandbox::new();
    let _ = fs::remove_file("/tmp/pyslip-escape-case02-abs");
    let result = sb.unpack("case02_absolute_dir_symlink.tar.gz");
    assert!(
        !Path::new("/tmp/pyslip-escape-case02-abs").exists(),
        "wrote to the host /tmp"
    );
    sb.assert_host_untouched();
    // `abs -> /tmp` dangles inside the root; the unpacker refuses to guess.
    assert!(
        matches!(result, Err(UnpackError::ParentNotDirectory { .. })),
        "{result:?}"
    );
}

#[test]
fn case02_symlink_planted_by_a_lower_layer_stays_inside_the_root() {
    let sb = Sandbox::new();
    sb.unpack("case02_lower_plants_symlink.tar.gz").unwrap();
    sb.unpack("case02_upper_writes_through.tar.gz").unwrap();
    sb.assert_host_untouched();
    assert_eq!(sb.root_file("host/canary"), b"pwned\n");
}

#[test]
fn case03_symlink_replaced_by_directory_does_not_redirect_writes() {
    let host = FixedCanary::new("/tmp/pyslip-layers-case03");
    let sb = Sandbox::new();
    sb.unpack("case03_symlink_then_dir.tar.gz").unwrap();
    host.assert_untouched();
    sb.assert_host_untouched();
    let d = fs::symlink_metadata(sb.root.join("d")).unwrap();
    assert!(d.is_dir() && !d.is_symlink());
    assert_eq!(sb.root_file("d/canary"), b"pwned\n");
}

#[test]
fn case04_no_directory_outside_the_root_when_an_entry_then_fails() {
    let sb = Sandbox::new();
    let result = sb.unpack("case04_mkdir_then_fail.tar.gz");
    assert!(
        matches!(result, Err(UnpackError::Truncated { .. })),
        "{result:?}"
    );
    sb.assert_host_untouched();
    assert!(!sb.dir.path().join("made-by-case04").exists());
    // The directories were made, but inside the root (`out -> ..` is clamped to the root).
    assert!(sb.root.join("made-by-case04/sub").is_dir());
}

#[test]
fn case04_failed_unpack_into_dest_leaves_nothing() {
    let sb = Sandbox::new();
    let dest = sb.root.join("image-root");
    let layer = fs::File::open(testdata("case04_mkdir_then_fail.tar.gz")).unwrap();
    let result = unpack_layers_into(&dest, [layer], &UnpackLimits::default());
    assert!(result.is_err());
    assert!(names(&sb.root).is_empty(), "left {:?}", names(&sb.root));
    sb.assert_host_untouched();
}

#[test]
fn case05_chmod_and_utimes_never_follow_symlinks() {
    let host = FixedCanary::new("/tmp/pyslip-layers-case05");
    let sb = Sandbox::new();
    sb.unpack("case05_chmod_through_symlink.tar.gz").unwrap();
    host.assert_untouched();
    sb.assert_host_untouched();
    for name in ["d", "f", "s"] {
        let meta = fs::symlink_metadata(sb.root.join(name)).unwrap();
        assert!(meta.is_symlink(), "{name} is not the final symlink");
        assert_eq!(meta.mtime(), 1, "{name}: symlink's own mtime was not set");
    }
}

#[test]
fn case06_hardlink_to_absolute_path_never_links_a_host_inode() {
    let host = FixedCanary::new("/tmp/pyslip-layers-case06-abs");
    let sb = Sandbox::new();
    let archive = "case06_hardlink_absolute.tar.gz";
    // The archive points at /tmp/pyslip-layers-case06/canary; use that exact path too.
    let exact = FixedCanary::new("/tmp/pyslip-layers-case06");
    let result = sb.unpack(archive);
    assert!(matches!(result, Err(UnpackError::Fs { .. })), "{result:?}");
    exact.assert_untouched();
    host.assert_untouched();
    sb.assert_host_untouched();
    assert!(!sb.root.join("hl").exists());
}

#[test]
fn case06_hardlink_with_dotdot_or_through_symlink_fails_inside_the_root() {
    for archive in [
        "case06_hardlink_dotdot.tar.gz",
        "case06_hardlink_via_symlink.tar.gz",
    ] {
        let host = FixedCanary::new("/tmp/pyslip-layers-case06-b");
        let sb = Sandbox::new();
        let result = sb.unpack(archive);
        assert!(
            matches!(result, Err(UnpackError::Fs { .. })),
            "{archive}: {result:?}"
        );
        host.assert_untouched();
        sb.assert_host_untouched();
        assert!(!sb.root.join("hl").exists(), "{archive}");
    }
}

#[test]
fn case06_hardlinks_with_absolute_targets_resolve_inside_the_root() {
    let sb = Sandbox::new();
    let stats = sb.unpack("case06_hardlink_inside.tar.gz").unwrap();
    assert_eq!(stats.hardlinks, 2);
    let inode = |p: &str| fs::metadata(sb.root.join(p)).unwrap().ino();
    assert_eq!(inode("hl"), inode("inside"));
    assert_eq!(inode("hl2"), inode("inside"));
    sb.assert_host_untouched();
}

#[test]
fn case07_link_then_regular_file_replaces_the_link() {
    let host = FixedCanary::new("/tmp/pyslip-layers-case07");
    let sb = Sandbox::new();
    sb.unpack("case07_link_then_file.tar.gz").unwrap();
    host.assert_untouched();
    sb.assert_host_untouched();
    let f = fs::symlink_metadata(sb.root.join("f")).unwrap();
    assert!(f.is_file(), "symlink was not replaced");
    assert_eq!(sb.root_file("f"), b"pwned\n");
    // The hardlink was replaced too: its former partner keeps the old content.
    assert_eq!(sb.root_file("inside"), b"orig\n");
    assert_eq!(sb.root_file("h"), b"pwned\n");
    assert_eq!(fs::metadata(sb.root.join("inside")).unwrap().nlink(), 1);
}

#[test]
fn case08_root_entries_cannot_change_the_root() {
    let sb = Sandbox::new();
    let before = fs::metadata(&sb.root).unwrap().mode();
    sb.unpack("case08_root_dir_entry.tar.gz").unwrap();
    assert_eq!(
        fs::metadata(&sb.root).unwrap().mode(),
        before,
        "root mode changed"
    );
    assert_eq!(sb.root_file("ok"), b"ok");
    for archive in [
        "case08_root_symlink.tar.gz",
        "case08_root_file.tar.gz",
        "case08_root_empty_name.tar.gz",
    ] {
        let result = sb.unpack(archive);
        assert!(
            matches!(result, Err(UnpackError::RootEntry { .. })),
            "{archive}: {result:?}"
        );
        let meta = fs::symlink_metadata(&sb.root).unwrap();
        assert!(
            meta.is_dir() && !meta.is_symlink(),
            "{archive} changed the root type"
        );
        assert_eq!(meta.mode(), before);
    }
    sb.assert_host_untouched();
}

#[test]
fn case09_whiteouts_hide_only_lower_content_and_never_appear() {
    let sb = Sandbox::new();
    sb.unpack("case09_lower.tar.gz").unwrap();
    let stats = sb.unpack("case09_upper.tar.gz").unwrap();
    sb.assert_host_untouched();
    let exists = |p: &str| fs::symlink_metadata(sb.root.join(p)).is_ok();
    assert!(exists("a/keep"));
    assert!(!exists("a/gone"), ".wh.gone did not remove gone");
    assert!(exists("other"));
    assert!(
        !exists("dir/old") && !exists("dir/sub"),
        "opaque dir kept lower content"
    );
    assert_eq!(sb.root_file("dir/new"), b"n");
    assert!(
        !exists("dir2/old") && !exists("dir2/kept/old"),
        "opaque dir2 kept lower content"
    );
    assert_eq!(
        sb.root_file("dir2/kept/new"),
        b"n",
        "opaque removed this layer's own file"
    );
    assert_eq!(stats.whiteouts, 4);
    assert_eq!(stats.skipped, 1, "aufs .wh..wh.plnk is skipped");
    // No whiteout file anywhere in the root.
    let mut stack = vec![sb.root.clone()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".wh."),
                "whiteout file {:?} in output",
                e.path()
            );
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
}

#[test]
fn case09_malformed_whiteouts_are_errors() {
    for i in 0..3 {
        let sb = Sandbox::new();
        let result = sb.unpack(&format!("case09_malformed_{i}.tar.gz"));
        assert!(
            matches!(result, Err(UnpackError::MalformedWhiteout { .. })),
            "{i}: {result:?}"
        );
        sb.assert_host_untouched();
    }
}

#[test]
fn case10_huge_long_name_and_pax_records_are_refused_before_reading() {
    for archive in [
        "case10_huge_gnu_longname.tar.gz",
        "case10_huge_pax_header.tar.gz",
    ] {
        let sb = Sandbox::new();
        let result = sb.unpack(archive);
        assert!(
            matches!(result, Err(UnpackError::MetadataTooLarge { size, limit: 1_048_576 }) if size > 2_000_000),
            "{archive}: {result:?}"
        );
        sb.assert_host_untouched();
    }
}

#[test]
fn case10_negative_huge_sizes_and_truncation_are_errors() {
    for archive in [
        "case10_negative_size.tar.gz",
        "case10_huge_size.tar.gz",
        "case10_truncated_tar.tar.gz",
        "case10_truncated_gzip.tar.gz",
    ] {
        let sb = Sandbox::new();
        let result = sb.unpack(archive);
        assert!(result.is_err(), "{archive} unpacked: {result:?}");
        sb.assert_host_untouched();
    }
    // A declared size beyond the budget is refused up front.
    let sb = Sandbox::new();
    let small = UnpackLimits {
        max_uncompressed: 1 << 20,
        ..UnpackLimits::default()
    };
    let result = sb.unpack_with("case10_huge_size.tar.gz", &small);
    assert!(
        matches!(result, Err(UnpackError::TooLarge { .. })),
        "{result:?}"
    );
    let result = sb.unpack("case10_truncated_gzip.tar.gz");
    assert!(matches!(result, Err(UnpackError::Stream(_))), "{result:?}");
}

#[test]
fn case10_gzip_bomb_stops_at_the_budget_and_leaves_no_root() {
    let sb = Sandbox::new();
    let limits = UnpackLimits {
        max_uncompressed: 8 << 20,
        ..UnpackLimits::default()
    };
    let result = sb.unpack_with("case10_gzip_bomb.tar.gz", &limits);
    assert!(
        matches!(result, Err(UnpackError::TooLarge { limit }) if limit == 8 << 20),
        "{result:?}"
    );
    let dest = sb.host.join("bomb-root");
    let layer = fs::File::open(testdata("case10_gzip_bomb.tar.gz")).unwrap();
    let result = unpack_layers_into(&dest, [layer], &limits);
    assert!(
        matches!(result, Err(UnpackError::TooLarge { .. })),
        "{result:?}"
    );
    // No root and no temp dir left beside it.
    assert_eq!(names(&sb.host), ["canary"]);
    // With enough budget the same layer unpacks.
    let big = UnpackLimits {
        max_uncompressed: 128 << 20,
        ..UnpackLimits::default()
    };
    let stats = unpack_layers_into(
        &dest,
        [fs::File::open(testdata("case10_gzip_bomb.tar.gz")).unwrap()],
        &big,
    )
    .unwrap();
    assert_eq!(stats[0].file_bytes, 64 << 20);
}

#[test]
fn case11_devices_skipped_ownership_recorded_xattrs_ignored_modes_applied_last() {
    let sb = Sandbox::new();
    let stats = sb.unpack("case11_rootless_hostile.tar.gz").unwrap();
    sb.assert_host_untouched();
    assert_eq!(stats.skipped, 3, "char, block and fifo entries are skipped");
    assert!(names(&sb.root.join("dev")).is_empty());
    assert!(!sb.root.join("fifo").exists());
    assert_eq!(
        stats.owners,
        vec![layers::OwnerRecord {
            path: "/owned".into(),
            uid: 12345,
            gid: 54321
        }]
    );
    let owned = fs::metadata(sb.root.join("owned")).unwrap();
    assert_eq!(owned.uid(), rustix_euid(), "ownership must not be applied");
    let mut buf = [0u8; 64];
    let xattr = rustix::fs::lgetxattr(sb.root.join("xattrs"), "user.pyslip", &mut buf);
    assert!(xattr.is_err(), "xattr was applied");
    let locked = fs::metadata(sb.root.join("locked")).unwrap();
    let expected = if rustix_euid() == 0 { 0o000 } else { 0o700 };
    assert_eq!(locked.mode() & 0o7777, expected);
    assert_eq!(sb.root_file("locked/child"), b"c\n");
    assert_eq!(
        fs::metadata(sb.root.join("locked/sub")).unwrap().mode() & 0o777,
        if rustix_euid() == 0 { 0o555 } else { 0o755 }
    );
}

fn rustix_euid() -> u32 {
    rustix::process::geteuid().as_raw()
}
