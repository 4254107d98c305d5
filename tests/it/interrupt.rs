//! Stopping a build with a real signal (docs/reliability.md, case 33) at three points it can be
//! held at deterministically — the dependency install (a package index that never answers), the
//! base unpack (the moment its `.tmp-root-*` appears), a push (a registry that never answers an
//! upload) — and with `kill -9`. Each time pyslip stops within seconds with one line naming the
//! step, no process of it survives, and the next build sweeps what is left and gives the digest
//! of a clean build.

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::support::{Work, env, tmp_entries, unique_repo, verify_cache_blobs};

/// The app with a dependency layer used here, and its Python.
const APP: &str = "flask-requirements";
const PYTHON: &str = "3.13";

/// How long a cold build may take to reach the point a test stops it at.
const REACH: Duration = Duration::from_secs(240);

/// A package index that accepts connections and never answers: an install that reaches it waits
/// there until it is killed.
struct StallingIndex {
    port: u16,
    accepted: Arc<Mutex<Vec<TcpStream>>>,
}

impl StallingIndex {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let sink = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                sink.lock().expect("lock").push(stream);
            }
        });
        Self { port, accepted }
    }

    /// The environment that points uv and pip at this index.
    fn env(&self) -> Vec<(String, String)> {
        let url = format!("http://127.0.0.1:{}/simple", self.port);
        vec![
            ("UV_INDEX_URL".into(), url.clone()),
            ("PIP_INDEX_URL".into(), url),
        ]
    }

    fn connected(&self) -> bool {
        !self.accepted.lock().expect("lock").is_empty()
    }

    /// Whether every connection the installer opened was closed (it died) within `timeout`.
    fn all_closed_within(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let streams = self.accepted.lock().expect("lock");
        streams.iter().all(|stream| {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                stream.set_read_timeout(Some(left)).expect("timeout");
                match stream.read(&mut buf) {
                    Ok(0) => return true,
                    // The request the installer sent before it hung.
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                    Err(_) => return false,
                }
            }
        })
    }
}

fn envs(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// `build APP --python X -t REF --push --json` against the fixtures.
fn build_args(app: &Path, python: &str, target: &str) -> Vec<String> {
    [
        "build",
        app.to_str().expect("utf-8"),
        "--base-repo",
        &crate::support::base_repo(),
        "--python",
        python,
        "-t",
        target,
        "--push",
        "--json",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn target() -> String {
    format!("{}/{}:1", env().registry, unique_repo("interrupt"))
}

/// Polls `reached` until it holds, failing with pyslip's output if it exits first.
fn wait_until(child: &mut Child, what: &str, reached: impl Fn() -> bool) {
    let deadline = Instant::now() + REACH;
    while !reached() {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("pyslip exited ({status}) before {what}:\n{stderr}");
        }
        assert!(Instant::now() < deadline, "pyslip never reached {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// How a stopped pyslip ended.
struct Stopped {
    code: Option<i32>,
    signal: Option<i32>,
    stderr: String,
    took: Duration,
}

/// Sends `signal` (a `kill` name) to pyslip, or to its whole process group as a terminal's
/// Ctrl-C does, and waits (up to 30 s) for it to exit.
fn stop(mut child: Child, signal: &str, group: bool) -> Stopped {
    let pid = child.id().to_string();
    let target = if group { format!("-{pid}") } else { pid };
    let started = Instant::now();
    let sent = Command::new("/bin/kill")
        .args([&format!("-{signal}"), "--", &target])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill -{signal} {target}");
    let deadline = started + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pyslip did not stop within 30 s of {signal}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = started.elapsed();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).expect("stderr");
    }
    eprintln!("pyslip stopped {took:?} after {signal}");
    use std::os::unix::process::ExitStatusExt as _;
    Stopped {
        code: status.code(),
        signal: status.signal(),
        stderr,
        took,
    }
}

impl Stopped {
    /// Exit status `code`, within 10 s, and one `error:` line, the last, naming `signal` and
    /// `step`.
    fn assert_reported(&self, code: i32, signal: &str, step: &str) {
        assert_eq!(self.code, Some(code), "exit status\n{}", self.stderr);
        assert!(self.took < Duration::from_secs(10), "took {:?}", self.took);
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(errors.len(), 1, "one error line:\n{}", self.stderr);
        let want = format!("error: interrupted by {signal} while {step}");
        assert!(
            errors[0].starts_with(&want),
            "want {want:?}:\n{}",
            self.stderr
        );
        assert_eq!(
            self.stderr.lines().last(),
            Some(errors[0]),
            "{}",
            self.stderr
        );
    }
}

/// The digest a clean build of `app` gives (from an empty cache, built once per test run).
fn clean_digest(app: &str, python: &str) -> String {
    static DIGESTS: Mutex<Vec<(String, Arc<OnceLock<String>>)>> = Mutex::new(Vec::new());
    let cell = {
        let mut all = DIGESTS.lock().expect("lock");
        let key = format!("{app}@{python}");
        match all.iter().find(|(k, _)| *k == key) {
            Some((_, cell)) => cell.clone(),
            None => {
                let cell = Arc::new(OnceLock::new());
                all.push((key, cell.clone()));
                cell
            }
        }
    };
    cell.get_or_init(|| {
        let work = Work::new();
        let dir = work.app(app);
        let args = build_args(&dir, python, &target());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        digest_of(&work.pyslip(&args).ok())
    })
    .clone()
}

fn digest_of(run: &crate::support::Run) -> String {
    run.json()["digest"].as_str().expect("digest").to_owned()
}

/// The next build in the same cache succeeds with the clean build's digest, and afterwards
/// nothing the stopped build left is in `tmp/` (not even in the trash), in `roots-v1/` or among
/// the blobs; `tmp/` holds at most the trash of the next build's own scratch dirs.
fn next_build_matches_a_clean_one(
    work: &Work,
    app: &Path,
    name: &str,
    python: &str,
    left: &[String],
) {
    let args = build_args(app, python, &target());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = work.pyslip(&args).ok();
    assert_eq!(digest_of(&run), clean_digest(name, python));
    let now = tmp_entries(&work.cache());
    for entry in left {
        let name = entry.trim_start_matches("trash/");
        assert!(
            !now.iter().any(|n| n.trim_start_matches("trash/") == name),
            "{entry} survived the next build: {now:?}"
        );
    }
    assert!(
        now.iter().all(|n| n.starts_with("trash/")),
        "left in tmp/: {now:?}"
    );
    assert_eq!(
        hidden(&work.cache().join("pyslip/roots-v1")),
        Vec::<String>::new()
    );
    verify_cache_blobs(&work.cache());
}

/// Names starting with `.` in `dir` (temp names).
fn hidden(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// Starts `build APP … --push` as the test user with `env`.
fn spawn_build(work: &Work, app: &Path, python: &str, target: &str, env: &[(&str, &str)]) -> Child {
    let args = build_args(app, python, target);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    work.spawn_pyslip(&args, env)
}

/// A cold build of [`APP`] whose installer hangs at a package index that never answers; `env`
/// is added to the build's environment.
fn install_held_at_the_index(
    env: &[(&str, &str)],
) -> (StallingIndex, Work, std::path::PathBuf, Child) {
    let index = StallingIndex::start();
    let work = Work::new();
    let app = work.app(APP);
    let stall = index.env();
    let mut all = envs(&stall);
    all.extend_from_slice(env);
    let mut child = spawn_build(&work, &app, PYTHON, &target(), &all);
    wait_until(&mut child, "the package index", || index.connected());
    (index, work, app, child)
}

#[test]
fn sigint_during_the_install_kills_the_sandbox_and_cleans_up() {
    let (index, work, app, child) = install_held_at_the_index(&[]);
    let during = tmp_entries(&work.cache());
    assert!(during.iter().any(|e| e.starts_with("deps-")), "{during:?}");

    let stopped = stop(child, "INT", true);
    stopped.assert_reported(130, "SIGINT", "making the dependency layer");
    assert!(
        index.all_closed_within(Duration::from_secs(5)),
        "the installer still holds its connection: the sandbox survived"
    );
    // The stopped build removed its own scratch dir before exiting.
    assert_eq!(tmp_entries(&work.cache()), Vec::<String>::new());
    next_build_matches_a_clean_one(&work, &app, APP, PYTHON, &during);
}

/// Without namespaces the installer runs on the host in a session of its own (a terminal's
/// Ctrl-C does not reach it): pyslip's handler kills its process group. Here the process held
/// at the index is uv resolving on the host while the base unpacks; pyslip waits for it once
/// the base root is there, and is stopped then.
#[test]
fn sigterm_during_an_install_without_namespaces_kills_the_installer() {
    let (index, work, app, mut child) = install_held_at_the_index(&[("PYSLIP_SANDBOX", "none")]);
    let roots = work.cache().join("pyslip/roots-v1");
    wait_until(&mut child, "the unpacked base root", || {
        fs_err::read_dir(&roots).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| !e.file_name().to_string_lossy().starts_with('.'))
        })
    });
    let stopped = stop(child, "TERM", false);
    stopped.assert_reported(143, "SIGTERM", "making the dependency layer");
    assert!(
        index.all_closed_within(Duration::from_secs(5)),
        "the host-run installer still holds its connection"
    );
    assert_eq!(tmp_entries(&work.cache()), Vec::<String>::new());
    next_build_matches_a_clean_one(&work, &app, APP, PYTHON, &[]);
}

#[test]
fn kill_9_during_the_install_leaves_a_scratch_dir_the_next_build_sweeps() {
    let (index, work, app, child) = install_held_at_the_index(&[]);

    let stopped = stop(child, "KILL", false);
    assert_eq!(stopped.signal, Some(9));
    // The sandbox dies with pyslip (parent-death signal), so the installer does too.
    assert!(
        index.all_closed_within(Duration::from_secs(5)),
        "the installer outlived pyslip"
    );
    let left = tmp_entries(&work.cache());
    assert!(
        left.iter().any(|e| e.starts_with("deps-")),
        "kill -9 should leave the scratch dir: {left:?}"
    );
    next_build_matches_a_clean_one(&work, &app, APP, PYTHON, &left);
}

#[test]
fn sigterm_during_the_base_unpack_stops_it_and_cleans_up() {
    let work = Work::new();
    let app = work.app(APP);
    let roots = work.cache().join("pyslip/roots-v1");
    let mut child = spawn_build(&work, &app, PYTHON, &target(), &[]);
    wait_until(&mut child, "the base unpack", || {
        hidden(&roots).iter().any(|n| n.starts_with(".tmp-root-"))
    });

    let stopped = stop(child, "TERM", false);
    stopped.assert_reported(143, "SIGTERM", "unpacking the base image");
    let left = hidden(&roots);
    assert!(left.is_empty(), "the stopped build left {left:?}");
    let complete = std::fs::read_dir(&roots).expect("roots-v1").count();
    assert_eq!(complete, 0, "a root was completed after the signal");
    next_build_matches_a_clean_one(&work, &app, APP, PYTHON, &[]);
}

#[test]
fn sigint_during_a_push_stops_it_and_the_next_push_matches() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let registry = runtime.block_on(
        pyslip_registry::testing::FaultServer::builder()
            .upstream(&env().registry)
            .stall(pyslip_registry::testing::Route::Uploads)
            .build(),
    );
    let work = Work::new();
    let app = work.app("stdlib");
    let stalled = format!("{}/{}:1", registry.registry(), unique_repo("stalled"));
    let mut child = spawn_build(&work, &app, "3.11", &stalled, &[]);
    wait_until(&mut child, "a blob upload", || {
        registry.count("POST", "/blobs/uploads") > 0
    });

    let stopped = stop(child, "INT", false);
    stopped.assert_reported(130, "SIGINT", &format!("pushing {stalled}"));
    assert_eq!(tmp_entries(&work.cache()), Vec::<String>::new());
    next_build_matches_a_clean_one(&work, &app, "stdlib", "3.11", &[]);
}
