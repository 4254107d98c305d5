//! Full disks and unusable cache dirs (docs/reliability.md, case 22): a small tmpfs as the cache
//! (full while unpacking the base, full while writing a layer) or as the output directory of
//! `--tar`/`--oci-layout`, a read-only cache, a cache of another user. Each gives one `error:`
//! line and a `hint:`, leaves nothing a later build trusts, and the next build with room works.
//!
//! Mounting needs root: the harness runs as root (scripts/test.sh) and the builds run as the
//! test user.

use std::path::{Path, PathBuf};

use crate::support::{Work, env, host, tmp_entries, unique_repo, verify_cache_blobs};

/// A tmpfs mounted for one test, owned by the test user; unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Self {
        assert!(
            std::fs::metadata("/proc/self").is_ok_and(|m| {
                use std::os::unix::fs::MetadataExt as _;
                m.uid() == 0
            }),
            "these tests mount a tmpfs: run them as root (scripts/test.sh does)"
        );
        std::fs::create_dir_all(path).expect("mount point");
        let at = path.to_str().expect("utf-8");
        host(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
                at,
            ],
        );
        let user = &env().user;
        host("chown", &[&format!("{user}:{user}"), at]);
        Self {
            path: path.to_owned(),
        }
    }

    fn remount(&self, options: &str) {
        let at = self.path.to_str().expect("utf-8");
        host("mount", &["-o", &format!("remount,{options}"), at]);
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("utf-8")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// A push target nobody else uses.
fn target() -> String {
    format!("{}/{}:1", env().registry, unique_repo("disk"))
}

/// Entries of `dir` (empty when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|e| {
            e.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs a build that must fail; returns its `error:` and `hint:` lines (and shows them).
fn fails(work: &Work, app: &Path, args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let (error, hint) = work.build_with(app, args, env).failed().error_and_hint();
    eprintln!("{error}\n{hint}");
    (error, hint)
}

/// Nothing a later build could trust was left in the cache at `xdg`: every blob hashes to its
/// name, no base root (complete or partial) and no layer record exists, `tmp/` is empty.
fn assert_nothing_trusted(xdg: &Path) {
    verify_cache_blobs(xdg);
    for folder in [
        "roots-v1",
        "layer-roots-v1",
        "deps-v1",
        "project-v1",
        "static-v1",
    ] {
        let left = entries(&xdg.join("pyslip").join(folder));
        assert!(left.is_empty(), "{folder} holds {left:?}");
    }
    assert_eq!(tmp_entries(xdg), Vec::<String>::new());
}

#[test]
fn full_cache_while_unpacking_the_base_fails_cleanly_then_builds() {
    let work = Work::new();
    let app = work.app("flask-requirements");
    // The base layer (53 MB) fits; its unpacked root does not.
    let cache = Tmpfs::mount(&work.path().join("small-cache"), "80m");
    let args = ["--python", "3.13", "-t", &target(), "--push"];
    let xdg = [("XDG_CACHE_HOME", cache.path())];
    let (error, hint) = fails(&work, &app, &args, &xdg);
    assert!(error.contains("unpacking base image"), "{error}");
    assert!(
        hint.contains("cache") && hint.contains("is full"),
        "{error}\n{hint}"
    );
    assert_nothing_trusted(Path::new(cache.path()));

    cache.remount("size=2g");
    work.build_with(&app, &args, &xdg).ok();
}

#[test]
fn full_cache_while_writing_a_layer_fails_cleanly_then_builds() {
    let work = Work::new();
    let app = work.app("stdlib");
    // 24 MB that gzip cannot shrink: the app layer does not fit in 8 MB.
    let big = app.join("data.bin");
    host(
        "dd",
        &[
            "if=/dev/urandom",
            &format!("of={}", big.display()),
            "bs=1M",
            "count=24",
            "status=none",
        ],
    );
    work.give_to_user(&app);
    let cache = Tmpfs::mount(&work.path().join("small-cache"), "8m");
    let args = ["--python", "3.11", "-t", &target(), "--push"];
    let xdg = [("XDG_CACHE_HOME", cache.path())];
    let (error, hint) = fails(&work, &app, &args, &xdg);
    assert!(error.contains("app layer"), "{error}");
    assert!(hint.contains("cache") && hint.contains("is full"), "{hint}");
    assert_nothing_trusted(Path::new(cache.path()));

    cache.remount("size=256m");
    work.build_with(&app, &args, &xdg).ok();
}

/// `--tar` or `--oci-layout` into a directory on a 4 MB tmpfs (the image is ~45 MB).
fn full_output(flag: &str, name: &str) {
    let work = Work::new();
    let app = work.app("stdlib");
    let out = Tmpfs::mount(&work.path().join("out"), "4m");
    let dest = format!("{}/{name}", out.path());
    let args = ["--python", "3.11", "-t", "full:1", flag, &dest];
    let (error, hint) = fails(&work, &app, &args, &[]);
    assert!(error.contains(flag), "{error}");
    assert!(hint.contains(flag) && hint.contains("is full"), "{hint}");
    // Nothing half-written under a name anyone reads: no tarball, no layout index, no blob
    // that does not hash to its name, no temp file.
    let left = entries(Path::new(out.path()));
    let layout = Path::new(&dest);
    if flag == "--tar" {
        assert!(left.is_empty(), "left in the output dir: {left:?}");
    } else {
        assert!(
            !layout.join("index.json").exists(),
            "an index.json was written"
        );
        for blob in entries(&layout.join("blobs/sha256")) {
            let bytes = std::fs::read(layout.join("blobs/sha256").join(&blob)).expect("read");
            assert_eq!(
                layers::Digest::of(&bytes).hex(),
                blob,
                "partial blob {blob}"
            );
        }
    }
    verify_cache_blobs(&work.cache());

    out.remount("size=512m");
    work.build(&app, &args).ok();
    match flag {
        "--tar" => {
            host("tar", &["-tf", &dest]);
        }
        _ => {
            host("umoci", &["ls", "--layout", &dest]);
        }
    }
}

#[test]
fn full_tar_output_dir_fails_cleanly_then_builds() {
    full_output("--tar", "image.tar");
}

#[test]
fn full_oci_layout_output_dir_fails_cleanly_then_builds() {
    full_output("--oci-layout", "layout");
}

#[test]
fn read_only_cache_is_one_error_with_a_hint_then_builds() {
    let work = Work::new();
    let app = work.app("stdlib");
    let cache = Tmpfs::mount(&work.path().join("ro-cache"), "64m");
    cache.remount("ro");
    let args = ["--python", "3.11", "-t", &target(), "--push"];
    let xdg = [("XDG_CACHE_HOME", cache.path())];
    let (error, hint) = fails(&work, &app, &args, &xdg);
    assert!(
        error.contains("read-only file system") && error.contains(cache.path()),
        "{error}"
    );
    assert!(hint.contains("XDG_CACHE_HOME"), "{hint}");

    cache.remount("rw");
    work.build_with(&app, &args, &xdg).ok();
}

#[test]
fn cache_of_another_user_is_one_error_with_a_hint_then_builds() {
    let work = Work::new();
    let app = work.app("stdlib");
    // Root's directory, readable but not writable by the test user.
    let cache = work.path().join("roots-cache");
    std::fs::create_dir(&cache).expect("mkdir");
    let at = cache.to_str().expect("utf-8");
    let args = ["--python", "3.11", "-t", &target(), "--push"];
    let xdg = [("XDG_CACHE_HOME", at)];
    let (error, hint) = fails(&work, &app, &args, &xdg);
    assert!(error.contains("belongs to another user (uid 0"), "{error}");
    assert!(hint.contains("XDG_CACHE_HOME"), "{hint}");

    let user = &env().user;
    host("chown", &[&format!("{user}:{user}"), at]);
    work.build_with(&app, &args, &xdg).ok();
}
