//! Shared helpers: run each test as the unprivileged test user, and build a busybox root.

#![allow(dead_code, clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use pyslip_sandbox::{Output, Sandbox, Stdio};

/// When running as root, re-runs test `name` of this test binary as `$PYSLIP_TEST_USER`
/// (default `pyslip-test`) via `runuser`, asserts it passed, and returns true (the caller then
/// returns). As a non-root user it returns false and the test runs here, unprivileged.
pub fn reexec_unprivileged(name: &str) -> bool {
    if !rustix::process::geteuid().is_root() {
        return false;
    }
    let user = std::env::var("PYSLIP_TEST_USER").unwrap_or_else(|_| "pyslip-test".to_owned());
    let passwd = Command::new("getent")
        .args(["passwd", &user])
        .output()
        .unwrap();
    assert!(
        passwd.status.success(),
        "test user {user} does not exist: run scripts/test-env.sh (tests must prove rootlessness)"
    );
    let passwd = String::from_utf8_lossy(&passwd.stdout).into_owned();
    let home = passwd.trim().split(':').nth(5).unwrap_or("/").to_owned();
    // The test binary may sit in a directory the test user cannot read: run a copy.
    let dir = tempfile::Builder::new()
        .prefix("pyslip-sandbox-test")
        .tempdir()
        .unwrap();
    fs_err::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("test-bin");
    fs_err::copy(std::env::current_exe().unwrap(), &bin).unwrap();
    fs_err::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A canary in root's home that the sandboxed command must not be able to read.
    let canary = PathBuf::from(format!(
        "/root/.pyslip-sandbox-canary-{}-{name}",
        std::process::id()
    ));
    fs_err::write(&canary, b"root-canary-secret").unwrap();
    let out = Command::new("runuser")
        .args([
            "-u",
            &user,
            "--",
            "env",
            &format!("HOME={home}"),
            "TMPDIR=/tmp",
        ])
        .arg(format!("PYSLIP_SANDBOX_ROOT_CANARY={}", canary.display()))
        .arg(format!(
            "PYSLIP_TEST_BUSYBOX={}",
            std::env::var("PYSLIP_TEST_BUSYBOX").unwrap_or_else(|_| "/bin/busybox".into())
        ))
        .arg(&bin)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let _ = fs_err::remove_file(&canary);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "test {name} as {user} failed:\n{stdout}\n{stderr}"
    );
    true
}

/// Declares a test that always runs as the unprivileged test user.
#[macro_export]
macro_rules! rootless_test {
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            if common::reexec_unprivileged(stringify!($name)) {
                return;
            }
            $body
        }
    };
}

const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "id", "echo", "ps", "rm", "mkdir", "touch", "sleep", "kill", "nc", "env",
    "readlink", "grep", "wc", "stat", "head", "tr", "sort", "mount", "umount", "test", "true",
    "false", "printf", "hostname", "cut", "ln", "chmod",
];

/// A temporary busybox root (lower), upper and work directory, owned by the running user.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub base: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let busybox =
            std::env::var("PYSLIP_TEST_BUSYBOX").unwrap_or_else(|_| "/bin/busybox".into());
        assert!(
            Path::new(&busybox).exists(),
            "{busybox} missing: apt-get install busybox-static (run scripts/test-env.sh)"
        );
        let dir = tempfile::Builder::new()
            .prefix("pyslip-sandbox")
            .tempdir()
            .unwrap();
        let base = dir.path().join("base");
        for d in ["bin", "proc", "dev", "tmp", "etc", "root"] {
            fs_err::create_dir_all(base.join(d)).unwrap();
        }
        fs_err::copy(&busybox, base.join("bin/busybox")).unwrap();
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", base.join("bin").join(applet)).unwrap();
        }
        fs_err::write(base.join("etc/base-file"), b"from the base\n").unwrap();
        fs_err::write(base.join("root/base-marker"), b"base root home\n").unwrap();
        let upper = dir.path().join("upper");
        let work = dir.path().join("work");
        fs_err::create_dir(&upper).unwrap();
        fs_err::create_dir(&work).unwrap();
        Fixture {
            dir,
            base,
            upper,
            work,
        }
    }

    pub fn sandbox(&self) -> Sandbox {
        Sandbox {
            lower: vec![self.base.clone()],
            upper: self.upper.clone(),
            work: self.work.clone(),
            mounts: vec![],
            env: vec![("PATH".into(), "/bin".into())],
            cwd: "/".into(),
            hostname: "pyslip-test".into(),
        }
    }

    /// A fresh upper/work pair (for a second run on the same base).
    pub fn fresh_upper(&mut self, name: &str) {
        self.upper = self.dir.path().join(format!("{name}-upper"));
        self.work = self.dir.path().join(format!("{name}-work"));
        fs_err::create_dir(&self.upper).unwrap();
        fs_err::create_dir(&self.work).unwrap();
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // overlayfs leaves a mode-0000 work/work directory behind.
        for entry in std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::set_permissions(
                entry.path().join("work"),
                std::fs::Permissions::from_mode(0o700),
            );
        }
    }
}

/// Runs `sh -c script` with captured output.
pub fn sh(sandbox: &Sandbox, script: &str) -> Output {
    sandbox
        .run(
            &["sh".into(), "-c".into(), script.into()],
            Stdio::Capture { limit: 1 << 20 },
        )
        .unwrap()
}

/// stdout as a string.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Recursively lists `dir` as sorted relative paths.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs_err::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.symlink_metadata().unwrap().is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = vec![];
    walk(dir, dir, &mut out);
    out.sort();
    out
}
