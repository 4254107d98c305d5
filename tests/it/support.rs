//! Test support: the test environment's addresses, a work dir owned by the unprivileged test
//! user, running pyslip as that user, running images with podman and talking HTTP to them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where the test environment lives (see scripts/test-env.sh).
pub struct TestEnv {
    /// Open registry, `host:port`.
    pub registry: String,
    /// htpasswd-protected registry, `host:port`.
    pub auth_registry: String,
    /// Its user.
    pub auth_user: String,
    /// Its password.
    pub auth_password: String,
    /// The unprivileged user the builds run as.
    pub user: String,
    /// Whether a Docker engine is up for `docker load` tests.
    pub docker: bool,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test.sh (or source /var/lib/pyslip-test/env after scripts/test-env.sh)")
    })
}

/// The test environment, read once from the environment.
pub fn env() -> &'static TestEnv {
    static ENV: OnceLock<TestEnv> = OnceLock::new();
    ENV.get_or_init(|| TestEnv {
        registry: var("PYSLIP_TEST_REGISTRY"),
        auth_registry: var("PYSLIP_TEST_AUTH_REGISTRY"),
        auth_user: var("PYSLIP_TEST_AUTH_USER"),
        auth_password: var("PYSLIP_TEST_AUTH_PASSWORD"),
        user: var("PYSLIP_TEST_USER"),
        docker: std::env::var("PYSLIP_TEST_DOCKER").is_ok_and(|v| v == "1"),
    })
}

/// The base repository of the fixture images.
pub fn base_repo() -> String {
    format!("{}/library/python", env().registry)
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    // /proc/self belongs to the process's effective uid.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A repository name no other test uses.
pub fn unique_repo(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "t/{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A scratch directory owned by the test user, with a private HOME and cache.
pub struct Work {
    dir: tempfile::TempDir,
    /// The pyslip binary, copied where the test user can run it.
    pub bin: PathBuf,
    cache: PathBuf,
}

/// A cache dir shared by every test of this process that asks for it (concurrent builds sharing
/// one cache is a supported case), owned by the test user.
const SHARED_CACHE_PREFIX: &str = "/tmp/pyslip-it-shared-cache-";

/// Shared caches of test processes that are gone (up to a GiB each): removed, so repeated runs
/// do not fill the disk. A live process's cache is left alone.
fn remove_dead_shared_caches() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&SHARED_CACHE_PREFIX["/tmp/".len()..]))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn shared_cache() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        remove_dead_shared_caches();
        let dir = PathBuf::from(format!("{SHARED_CACHE_PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("shared cache dir");
        if running_as_root() {
            let status = Command::new("chown")
                .arg(format!("{0}:{0}", env().user))
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(status.success());
        }
        dir
    })
    .clone()
}

impl Work {
    /// A fresh work dir (under /tmp, so the unprivileged user can reach it).
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pyslip-it-")
            .tempdir_in("/tmp")
            .expect("create work dir");
        let bin = dir.path().join("pyslip");
        std::fs::copy(env!("CARGO_BIN_EXE_pyslip"), &bin).expect("copy pyslip binary");
        for sub in ["home", "cache", "run"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        let cache = dir.path().join("cache");
        let work = Self { dir, bin, cache };
        work.give_to_user(work.path());
        set_mode(work.path().join("run").as_path(), 0o700);
        work
    }

    /// A fresh work dir whose builds use the process-wide shared cache.
    pub fn with_shared_cache() -> Self {
        let mut work = Self::new();
        work.cache = shared_cache();
        work
    }

    /// The work dir.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The test user's cache dir for this work dir.
    pub fn cache(&self) -> PathBuf {
        self.cache.clone()
    }

    /// Copy `testdata/apps/<name>` into the work dir and return its path.
    pub fn app(&self, name: &str) -> PathBuf {
        self.testdata("apps", name)
    }

    /// Copy `testdata/<group>/<name>` to `<work dir>/<group>/<name>` and return its path.
    pub fn testdata(&self, group: &str, name: &str) -> PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(group)
            .join(name);
        let dest = self.path().join(group).join(name);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        let status = Command::new("cp")
            .arg("-a")
            .arg(&src)
            .arg(&dest)
            .status()
            .expect("cp");
        assert!(status.success(), "copying {}", src.display());
        self.give_to_user(&self.path().join(group));
        dest
    }

    /// Make `path` (recursively) owned by the test user.
    pub fn give_to_user(&self, path: &Path) {
        if !running_as_root() {
            return;
        }
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{0}:{0}", env().user))
            .arg(path)
            .status()
            .expect("chown");
        assert!(status.success(), "chown {}", path.display());
    }

    /// A command that runs `program` as the test user with this work dir's HOME, cache and
    /// runtime dir, and nothing else from the test's environment but PATH and the CA bundle.
    pub fn command_as_user(&self, program: &Path) -> Command {
        let mut cmd = if running_as_root() {
            let mut c = Command::new("/usr/sbin/runuser");
            c.args(["-u", &env().user, "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        self.user_env(&mut cmd);
        cmd
    }

    /// Start pyslip as the test user without waiting for it. It is the child process itself
    /// (`setpriv` execs it; `runuser` would stay in between), in a process group of its own, so
    /// a signal to the child reaches pyslip and a signal to the group is what a terminal's
    /// Ctrl-C sends.
    pub fn spawn_pyslip(&self, args: &[&str], envs: &[(&str, &str)]) -> std::process::Child {
        use std::os::unix::process::CommandExt as _;
        let mut cmd = if running_as_root() {
            let mut c = Command::new("/usr/bin/setpriv");
            let user = &env().user;
            c.arg(format!("--reuid={user}"))
                .arg(format!("--regid={user}"))
                .args(["--init-groups", "--"])
                .arg(&self.bin);
            c
        } else {
            Command::new(&self.bin)
        };
        self.user_env(&mut cmd);
        cmd.args(args)
            .envs(envs.iter().copied())
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().expect("start pyslip")
    }

    fn user_env(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", self.path().join("home"))
            .env("XDG_CACHE_HOME", self.cache())
            .env("XDG_RUNTIME_DIR", self.path().join("run"))
            .current_dir(self.path());
        for key in [
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "PIP_CERT",
            "RUST_BACKTRACE",
        ] {
            if let Ok(value) = std::env::var(key) {
                cmd.env(key, value);
            }
        }
    }

    /// `pyslip build APP --base-repo <fixtures> EXTRA...` as the test user.
    pub fn build(&self, app: &Path, extra: &[&str]) -> Run {
        self.build_with(app, extra, &[])
    }

    /// [`Work::build`] with extra environment variables.
    pub fn build_with(&self, app: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Run {
        let repo = base_repo();
        let mut args = vec![
            "build",
            app.to_str().expect("utf-8 path"),
            "--base-repo",
            &repo,
        ];
        args.extend_from_slice(extra);
        self.pyslip_with(&args, envs)
    }

    /// Run pyslip as the test user.
    pub fn pyslip(&self, args: &[&str]) -> Run {
        self.pyslip_with(args, &[])
    }

    /// Run pyslip as the test user under `umask` (it applies to everything pyslip and the
    /// steps it runs create).
    pub fn pyslip_umask(&self, umask: &str, args: &[&str]) -> Run {
        let mut cmd = self.command_as_user(Path::new("/bin/sh"));
        cmd.arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(&self.bin)
            .args(args);
        Run::from(cmd.output().expect("run pyslip"), args)
    }

    /// Run pyslip as the test user with extra environment variables.
    pub fn pyslip_with(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let mut cmd = self.command_as_user(&self.bin);
        cmd.args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("run pyslip"), args)
    }

    /// `podman login` as the test user (writes `$XDG_RUNTIME_DIR/containers/auth.json`).
    pub fn podman_login(&self, registry: &str, user: &str, password: &str) {
        let mut cmd = self.command_as_user(Path::new("/usr/bin/podman"));
        cmd.args([
            "login",
            "--tls-verify=false",
            "-u",
            user,
            "--password-stdin",
            registry,
        ]);
        cmd.stdin(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("podman login");
        {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(password.as_bytes()).expect("password");
        }
        let out = child.wait_with_output().expect("podman login");
        assert!(
            out.status.success(),
            "podman login failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A finished pyslip run.
pub struct Run {
    /// Exit status.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    args: String,
}

impl Run {
    fn from(out: Output, args: &[&str]) -> Self {
        Self {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            args: args.join(" "),
        }
    }

    /// Panic with the output unless it succeeded.
    pub fn ok(self) -> Self {
        assert!(
            self.success,
            "pyslip {} failed\nstdout:\n{}\nstderr:\n{}",
            self.args, self.stdout, self.stderr
        );
        self
    }

    /// Panic unless it failed.
    pub fn failed(self) -> Self {
        assert!(
            !self.success,
            "pyslip {} succeeded but should have failed\nstdout:\n{}\nstderr:\n{}",
            self.args, self.stdout, self.stderr
        );
        self
    }

    /// The `--json` report.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}):\n{}", self.stdout))
    }

    /// The `error:` line and the `hint:` line of a failed run.
    pub fn error_and_hint(&self) -> (String, String) {
        let lines: Vec<&str> = self.stderr.lines().collect();
        let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(
            errors.len(),
            1,
            "want exactly one error line:\n{}",
            self.stderr
        );
        let hint = lines
            .iter()
            .find(|l| l.starts_with("hint: "))
            .unwrap_or_else(|| panic!("no hint line:\n{}", self.stderr));
        (errors[0].to_string(), hint.to_string())
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A container started with podman; removed when dropped.
pub struct Container {
    name: String,
    engine: &'static str,
}

impl Container {
    /// `podman run -d --network host -e PORT=<port> <image>`, from local storage only (never
    /// pulled: a test pulls or loads the image itself, so it knows where it came from).
    pub fn podman(image: &str, port: u16) -> Self {
        Self::start("podman", image, port)
    }

    /// The same with Docker's engine.
    pub fn docker(image: &str, port: u16) -> Self {
        Self::start("docker", image, port)
    }

    fn start(engine: &'static str, image: &str, port: u16) -> Self {
        let name = format!("pyslip-it-{}-{port}", std::process::id());
        let _ = Command::new(engine).args(["rm", "-f", &name]).output();
        let out = Command::new(engine)
            .args([
                "run",
                "-d",
                "--pull=never",
                "--name",
                &name,
                "--network",
                "host",
            ])
            .args(["-e", &format!("PORT={port}"), image])
            .output()
            .expect("container run");
        assert!(
            out.status.success(),
            "{engine} run {image} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { name, engine }
    }

    /// The container's log so far.
    pub fn logs(&self) -> String {
        Command::new(self.engine)
            .args(["logs", &self.name])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr)
            })
            .unwrap_or_default()
    }

    /// Run a command in the container and return its stdout.
    pub fn exec(&self, args: &[&str]) -> String {
        let out = Command::new(self.engine)
            .args(["exec", &self.name])
            .args(args)
            .output()
            .expect("exec");
        assert!(
            out.status.success(),
            "exec {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// GET `path` until the server answers (up to 30 s); returns (status, body).
    pub fn get(&self, port: u16, path: &str) -> (u16, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(reply) = http_get(port, path) {
                return reply;
            }
            if Instant::now() > deadline {
                let logs = Command::new(self.engine)
                    .args(["logs", &self.name])
                    .output();
                let logs = logs
                    .map(|o| {
                        String::from_utf8_lossy(&o.stderr).into_owned()
                            + &String::from_utf8_lossy(&o.stdout)
                    })
                    .unwrap_or_default();
                panic!("no HTTP answer on port {port}{path}; container log:\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new(self.engine)
            .args(["rm", "-f", &self.name])
            .output();
    }
}

/// One HTTP GET with curl; `None` when nothing answered.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    let code: u16 = code.trim().parse().ok()?;
    (code != 0).then(|| (code, body.to_owned()))
}

/// Run a host command (as root) and return its stdout, panicking with stderr on failure.
pub fn host(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file in the cache's blob store hashes to its name (nothing corrupt was kept), and no
/// temp file is left in the cache's `tmp/`.
pub fn assert_cache_blobs_verified(cache: &Path) {
    verify_cache_blobs(cache);
    let left = tmp_entries(cache);
    assert!(left.is_empty(), "temp files left in the cache: {left:?}");
}

/// Every file in the cache's blob store hashes to its name.
///
/// The blob dir must exist: every build opens the cache before its first network request, so a
/// missing dir means the build never got that far (or the check looks in the wrong place).
pub fn verify_cache_blobs(cache: &Path) {
    let dir = cache.join("pyslip/blobs-v1/sha256");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cache blob dir {} is missing: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read blob");
        let actual = layers::Digest::of(&bytes);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert_eq!(
            actual.hex(),
            name,
            "cache blob {} is corrupt",
            path.display()
        );
    }
}

/// What is in the cache's `tmp/` (entries of `tmp/trash/` as `trash/<name>`; an empty trash
/// folder is nothing). Panics when `tmp/` is missing: every build creates it.
pub fn tmp_entries(cache: &Path) -> Vec<String> {
    let names = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{} is missing: {e}", dir.display()))
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    };
    let tmp = cache.join("pyslip/tmp");
    let mut left = Vec::new();
    for name in names(&tmp) {
        if name == "trash" {
            left.extend(
                names(&tmp.join("trash"))
                    .into_iter()
                    .map(|n| format!("trash/{n}")),
            );
        } else {
            left.push(name);
        }
    }
    left.sort();
    left
}

/// The blobs the cache holds (hex names).
pub fn cache_blobs(cache: &Path) -> Vec<String> {
    let dir = cache.join("pyslip/blobs-v1/sha256");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The layer of `--json` build report `report` whose origin is `origin` (`deps`, `app`, …).
pub fn layer<'a>(report: &'a serde_json::Value, origin: &str) -> &'a serde_json::Value {
    report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find(|l| l["origin"] == origin)
        .unwrap_or_else(|| panic!("no {origin} layer: {report}"))
}
