//! Shared helpers: run each test as the unprivileged test user, an unpacked fixture base root,
//! and a plan for a project directory.

#![allow(dead_code, clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use layers::{Digest, UnpackLimits, unpack_layers_into};
use pyslip_install::{DepsLayer, DepsRequest};
use pyslip_sandbox::{BindMount, Output, Sandbox, Stdio};

/// When root, re-runs test `name` of this binary as `$PYSLIP_TEST_USER` (runuser), asserting
/// it passed, and returns true; as a non-root user returns false and the test runs here.
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
        "test user {user} missing: run scripts/test-env.sh"
    );
    let passwd = String::from_utf8_lossy(&passwd.stdout).into_owned();
    let home = passwd.trim().split(':').nth(5).unwrap_or("/").to_owned();
    // The test binary may live where the test user cannot read it: run a copy.
    let dir = tempfile::Builder::new()
        .prefix("pyslip-install-test")
        .tempdir()
        .unwrap();
    fs_err::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("test-bin");
    fs_err::copy(std::env::current_exe().unwrap(), &bin).unwrap();
    fs_err::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new("runuser");
    cmd.args([
        "-u",
        &user,
        "--",
        "env",
        &format!("HOME={home}"),
        "TMPDIR=/tmp",
    ]);
    for var in ["PYSLIP_TEST_REGISTRY", "SSL_CERT_FILE", "PATH"] {
        if let Ok(v) = std::env::var(var) {
            cmd.arg(format!("{var}={v}"));
        }
    }
    let out = cmd
        .arg(&bin)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Show the unprivileged run's output (timings) in the root run's output.
    eprintln!("{stderr}");
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

/// The fixture `python:3.11-slim` from the test registry, unpacked once per user under the
/// temp dir: (root, manifest digest).
pub fn base_root() -> (PathBuf, Digest) {
    base_root_for("3.11")
}

/// The fixture `python:<version>-slim` (3.11, 3.13 or 3.14) from the test registry, unpacked
/// once per user under the temp dir: (root, manifest digest).
pub fn base_root_for(version: &str) -> (PathBuf, Digest) {
    let registry = std::env::var("PYSLIP_TEST_REGISTRY").expect(
        "PYSLIP_TEST_REGISTRY unset: run scripts/test-env.sh and source /var/lib/pyslip-test/env",
    );
    let uid = rustix::process::geteuid().as_raw();
    let dir = std::env::temp_dir().join(format!("pyslip-install-tests-{uid}"));
    fs_err::create_dir_all(&dir).unwrap();
    let root = dir.join(format!("base-{version}"));
    let digest_file = dir.join(format!("base-{version}.digest"));
    if root.is_dir() && digest_file.is_file() {
        return (
            root,
            Digest::parse(fs_err::read_to_string(&digest_file).unwrap().trim()).unwrap(),
        );
    }
    let layout = tempfile::Builder::new()
        .prefix("oci-")
        .tempdir_in(&dir)
        .unwrap();
    let status = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--src-no-creds",
        ])
        .arg(format!("docker://{registry}/library/python:{version}-slim"))
        .arg(format!("oci:{}:x", layout.path().display()))
        .status()
        .unwrap();
    assert!(
        status.success(),
        "skopeo copy failed (run scripts/test-env.sh)"
    );
    let blob = |d: &str| {
        layout
            .path()
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let index: serde_json::Value =
        serde_json::from_slice(&fs_err::read(layout.path().join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs_err::read(blob(&manifest_digest)).unwrap()).unwrap();
    let layers: Vec<fs_err::File> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| fs_err::File::open(blob(l["digest"].as_str().unwrap())).unwrap())
        .collect();
    let fresh = dir.join(format!("base-{version}.{}", std::process::id()));
    unpack_layers_into(&fresh, layers, &UnpackLimits::default()).unwrap();
    // Another test may have won the race; either root is fine.
    if fs_err::rename(&fresh, &root).is_err() {
        let _ = std::process::Command::new("rm")
            .arg("-rf")
            .arg(&fresh)
            .status();
    }
    let tmp = dir.join(format!("digest.{}", std::process::id()));
    fs_err::write(&tmp, &manifest_digest).unwrap();
    fs_err::rename(&tmp, &digest_file).unwrap();
    (root, Digest::parse(&manifest_digest).unwrap())
}

/// The repository's `testdata/apps/<name>`.
pub fn app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/apps")
        .join(name)
}

/// Copies a testdata app into a fresh temp dir (to modify it).
pub fn copy_app(name: &str, into: &Path) -> PathBuf {
    let dest = into.join(name);
    let status = Command::new("cp")
        .arg("-r")
        .arg(app(name))
        .arg(&dest)
        .status()
        .unwrap();
    assert!(status.success());
    dest
}

/// The build's environment as tests pass it: the CA bundle only, plus `extra`.
pub fn host_env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k == "SSL_CERT_FILE")
        .collect();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

/// Owns the inputs of a [`DepsRequest`].
pub struct Build {
    pub project: PathBuf,
    pub plan: pyslip_plan::BuildPlan,
    pub base: PathBuf,
    pub digest: Digest,
    pub cache: PathBuf,
    pub env: Vec<(String, String)>,
    pub no_cache: bool,
    /// Sandbox or namespace-free install.
    pub isolation: pyslip_install::Isolation,
    /// Target platform.
    pub platform: String,
}

impl Build {
    pub fn new(project: &Path, cache: &Path) -> Build {
        Self::on_base(project, cache, "3.11")
    }

    /// A build over the fixture base of the plan's own Python version.
    pub fn for_plan_python(project: &Path, cache: &Path) -> Build {
        let plan = pyslip_plan::plan(project, &pyslip_plan::Overrides::default()).unwrap();
        Self::on_base(project, cache, &plan.python.value)
    }

    pub fn on_base(project: &Path, cache: &Path, python: &str) -> Build {
        let (base, digest) = base_root_for(python);
        let plan = pyslip_plan::plan(project, &pyslip_plan::Overrides::default()).unwrap();
        Build {
            project: project.to_owned(),
            plan,
            base,
            digest,
            cache: cache.to_owned(),
            env: host_env(&[]),
            no_cache: false,
            isolation: pyslip_install::Isolation::Namespaces,
            platform: "linux/amd64".into(),
        }
    }

    pub fn request(&self) -> DepsRequest<'_> {
        DepsRequest {
            project_dir: &self.project,
            plan: &self.plan,
            base_root: &self.base,
            base_digest: &self.digest,
            platform: &self.platform,
            cache_dir: &self.cache,
            uv_override: None,
            no_cache: self.no_cache,
            mtime: 0,
            host_env: self.env.clone(),
            fetch: &RegistryFetch,
            isolation: self.isolation,
        }
    }

    pub fn run(&self) -> Result<DepsLayer, pyslip_install::InstallError> {
        pyslip_install::dependency_layer(&self.request())
    }

    /// The project layer over `deps` (`None` when the plan has none).
    pub fn project(
        &self,
        deps: &DepsLayer,
    ) -> Result<Option<DepsLayer>, pyslip_install::InstallError> {
        pyslip_install::project_layer(&self.request(), deps)
    }
}

/// Unpacks the layer into a root beside `dir` and runs `python3 -c code` with the base root
/// below it; returns the output.
pub fn python_in(layer: &DepsLayer, base: &Path, dir: &Path, code: &str) -> Output {
    let root = dir.join("layer-root");
    unpack_layers_into(
        &root,
        [fs_err::File::open(&layer.blob_path).unwrap()],
        &UnpackLimits::default(),
    )
    .unwrap();
    let upper = dir.join("check-upper");
    let work = dir.join("check-work");
    fs_err::create_dir(&upper).unwrap();
    fs_err::create_dir(&work).unwrap();
    let sandbox = Sandbox {
        lower: vec![root, base.to_owned()],
        upper,
        work: work.clone(),
        mounts: Vec::<BindMount>::new(),
        env: vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("HOME".into(), "/root".into()),
        ],
        cwd: "/".into(),
        hostname: String::new(),
    };
    let out = sandbox
        .run(
            &["python3".into(), "-c".into(), code.into()],
            Stdio::Capture { limit: 1 << 20 },
        )
        .unwrap();
    let _ = fs_err::set_permissions(work.join("work"), std::fs::Permissions::from_mode(0o700));
    out
}

/// Runs `python3 -c code` over `layers` (lowest first, each unpacked once into the build's
/// cache as the build itself does) and the build's base; returns the output.
pub fn python_over(build: &Build, layers: &[&DepsLayer], dir: &Path, code: &str) -> Output {
    let mut lower: Vec<PathBuf> = layers
        .iter()
        .rev()
        .map(|l| pyslip_install::layer_root(&build.cache, l).unwrap())
        .collect();
    lower.push(build.base.clone());
    // overlayfs takes at most 255 bytes of lowerdir list: mount short aliases.
    let links = tempfile::Builder::new()
        .prefix("l")
        .tempdir_in("/tmp")
        .unwrap();
    let lower: Vec<PathBuf> = lower
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let link = links.path().join(i.to_string());
            std::os::unix::fs::symlink(d, &link).unwrap();
            link
        })
        .collect();
    let scratch = tempfile::Builder::new()
        .prefix("run")
        .tempdir_in(dir)
        .unwrap();
    let (upper, work) = (scratch.path().join("u"), scratch.path().join("w"));
    fs_err::create_dir(&upper).unwrap();
    fs_err::create_dir(&work).unwrap();
    let sandbox = Sandbox {
        lower,
        upper,
        work: work.clone(),
        mounts: Vec::<BindMount>::new(),
        env: vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("HOME".into(), "/root".into()),
            ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
        ],
        cwd: "/".into(),
        hostname: String::new(),
    };
    let out = sandbox
        .run(
            &["python3".into(), "-c".into(), code.into()],
            Stdio::Capture { limit: 1 << 20 },
        )
        .unwrap();
    let _ = fs_err::set_permissions(work.join("work"), std::fs::Permissions::from_mode(0o700));
    out
}

/// The decompressed tar bytes of a layer blob.
pub fn tar_bytes(blob: &Path) -> Vec<u8> {
    let out = Command::new("gzip").arg("-dc").arg(blob).output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// `tar -tv` listing of a layer blob.
pub fn listing(blob: &Path) -> String {
    let out = Command::new("tar").arg("-tvzf").arg(blob).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A temp dir that can be removed although overlay left mode-0000 dirs in it.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pyslip-install")
        .tempdir()
        .unwrap()
}

/// Downloads through the registry client, as the binary does.
#[derive(Debug)]
pub struct RegistryFetch;

impl pyslip_install::Fetch for RegistryFetch {
    fn fetch(
        &self,
        url: &str,
        dest: &Path,
        sha256: &str,
        max_bytes: u64,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = pyslip_registry::Client::new(pyslip_registry::ClientConfig::default())?;
        let url = pyslip_registry::Url::parse(url)?;
        let digest = Digest::parse(&format!("sha256:{sha256}"))?;
        runtime.block_on(client.fetch_url_verified(&url, dest, &digest, max_bytes))?;
        Ok(())
    }
}
