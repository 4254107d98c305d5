//! `pyslip build --check`: the built image starts in the rootless sandbox (private network, the
//! image's user) before any output is written. Bad apps from `testdata/check/` fail with one
//! error line and a hint and write nothing; every web app of `testdata/apps/` passes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Run, Work};

/// Copy `testdata/check/<name>` into the work dir (owned by the test user).
fn check_app(work: &Work, name: &str) -> PathBuf {
    work.testdata("check", name)
}

/// `pyslip build APP --check --json --oci-layout <work>/oci EXTRA...`; returns the run and the
/// layout path.
fn build_checked(work: &Work, app: &Path, extra: &[&str]) -> (Run, PathBuf) {
    let layout = work.path().join("oci");
    let mut args = vec![
        "--check",
        "--json",
        "--oci-layout",
        layout.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    (work.build(app, &args), layout)
}

/// A failed check: one error line with `needles`, a hint with `hint_needle`, the JSON `check`
/// object of `kind`, and no output written.
fn assert_failed(run: Run, layout: &Path, kind: &str, needles: &[&str], hint_needle: &str) -> Run {
    let run = run.failed();
    let (error, hint) = run.error_and_hint();
    assert!(error.starts_with("error: boot check failed: "), "{error}");
    for needle in needles {
        assert!(error.contains(needle), "{needle:?} not in {error}");
    }
    assert!(hint.contains(hint_needle), "{hint_needle:?} not in {hint}");
    assert_eq!(run.json()["check"]["passed"], false, "{}", run.stdout);
    assert_eq!(run.json()["check"]["kind"], kind, "{}", run.stdout);
    assert!(
        !layout.exists(),
        "a failed check wrote {}",
        layout.display()
    );
    run
}

fn check(run: &Run) -> Value {
    run.json()["check"].clone()
}

#[test]
fn app_bound_to_loopback_fails_and_shows_how_to_bind_all_interfaces() {
    let work = Work::with_shared_cache();
    let app = check_app(&work, "loopback");
    let (run, layout) = build_checked(&work, &app, &[]);
    let run = assert_failed(
        run,
        &layout,
        "loopback_only",
        &["127.0.0.1:38017 only", "python main.py"],
        "0.0.0.0",
    );
    assert_eq!(check(&run)["address"], "127.0.0.1");
}

#[test]
fn app_on_a_hard_coded_port_fails_naming_that_port_and_port() {
    let work = Work::with_shared_cache();
    let app = check_app(&work, "fixed-port");
    let (run, layout) = build_checked(&work, &app, &[]);
    let run = assert_failed(
        run,
        &layout,
        "wrong_port",
        &["port 5000", "not on $PORT (38017)"],
        "PORT",
    );
    assert_eq!(check(&run)["found_port"], 5000);
}

#[test]
fn app_with_an_import_error_fails_with_its_traceback() {
    let work = Work::with_shared_cache();
    let app = check_app(&work, "import-error");
    let (run, layout) = build_checked(&work, &app, &[]);
    let run = assert_failed(
        run,
        &layout,
        "exited",
        &[
            "exited with status 1 before it listened",
            "ModuleNotFoundError: No module named 'pyslip_check_missing_module'",
        ],
        "output above",
    );
    // The traceback is shown above the error line.
    let traceback = run
        .stderr
        .find("Traceback (most recent call last)")
        .expect("traceback shown");
    assert!(traceback < run.stderr.find("error: ").expect("error line"));
    assert_eq!(check(&run)["exit_status"], "status 1");
}

#[test]
fn django_page_that_needs_a_missing_database_passes_with_a_warning() {
    let work = Work::with_shared_cache();
    let app = check_app(&work, "django-db");
    let (run, layout) = build_checked(&work, &app, &[]);
    let run = run.ok();
    let result = check(&run);
    assert_eq!(result["passed"], true, "{result}");
    assert_eq!(result["status"], 500, "{result}");
    assert!(
        result["warning"]
            .as_str()
            .is_some_and(|w| w.contains("500")),
        "{result}"
    );
    assert!(
        run.stderr
            .contains("warning: boot check: GET / answered HTTP 500"),
        "{}",
        run.stderr
    );
    assert!(layout.join("index.json").exists());

    // Strict: the same answer fails, and nothing is written.
    let tar = work.path().join("strict.tar");
    let strict = work
        .build(
            &app,
            &[
                "--check-strict",
                "--json",
                "--tar",
                tar.to_str().expect("utf-8"),
            ],
        )
        .failed();
    let (error, hint) = strict.error_and_hint();
    assert!(error.contains("GET / answered HTTP 500"), "{error}");
    assert!(hint.contains("--check-path"), "{hint}");
    assert_eq!(strict.json()["check"]["kind"], "server_error");
    assert!(!tar.exists());

    // Strict on a route that needs no database passes.
    let healthz = work
        .build(
            &app,
            &[
                "--check-strict",
                "--check-path",
                "/healthz",
                "--json",
                "--tar",
                tar.to_str().expect("utf-8"),
            ],
        )
        .ok();
    assert_eq!(check(&healthz)["status"], 200);
    assert!(tar.exists());
}

#[test]
fn good_fastapi_app_passes_and_an_unchanged_rebuild_does_not_run_it_again() {
    // A cache of its own: apps.rs checks the same image in the shared cache.
    let work = Work::new();
    let app = work.app("fastapi-uv");
    let (run, _) = build_checked(&work, &app, &["--check-path", "/healthz"]);
    let run = run.ok();
    let result = check(&run);
    assert_eq!(result["passed"], true, "{result}");
    assert_eq!(result["cached"], false, "{result}");
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["address"], "0.0.0.0", "{result}");
    assert_eq!(result["port"], 38017, "{result}");
    let ms = result["first_response_ms"].as_u64().expect("milliseconds");
    assert!(ms > 0 && ms < 30_000, "{result}");

    // Human output says so; the unchanged rebuild reuses the result.
    let layout = work.path().join("oci2");
    let again = work
        .build(
            &app,
            &[
                "--check",
                "--check-path",
                "/healthz",
                "--oci-layout",
                layout.to_str().expect("utf-8"),
            ],
        )
        .ok();
    assert!(
        again.stderr.contains("check   passed (cached"),
        "{}",
        again.stderr
    );
    let json = work
        .build(
            &app,
            &[
                "--check",
                "--check-path",
                "/healthz",
                "--json",
                "--oci-layout",
                layout.to_str().expect("utf-8"),
            ],
        )
        .ok();
    assert_eq!(check(&json)["cached"], true);
    assert_eq!(json.json()["config"], run.json()["config"]);
}

#[test]
fn good_worker_passes_when_it_keeps_running() {
    let work = Work::with_shared_cache();
    let app = work.app("worker");
    let (run, layout) = build_checked(&work, &app, &[]);
    let result = check(&run.ok());
    assert_eq!(result["passed"], true, "{result}");
    assert_eq!(result["workload"], "worker", "{result}");
    assert!(
        result["running_ms"].as_u64().expect("ms") >= 3000,
        "{result}"
    );
    assert!(layout.join("index.json").exists());
}

/// Processes whose command line contains `marker`, of any user.
fn processes_with(marker: &str) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-a", "-f", marker])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains("pgrep"))
        .map(str::to_owned)
        .collect()
}

/// Polls `cond` for up to `secs`.
fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn app_that_never_listens_times_out_and_its_whole_tree_is_killed() {
    let work = Work::with_shared_cache();
    let app = check_app(&work, "never-listens");
    let marker = format!("pyslip-check-orphan-{}-timeout", std::process::id());
    let env = format!("ORPHAN_MARKER={marker}");
    let (run, layout) = build_checked(&work, &app, &["--check-timeout", "3", "--env", &env]);
    let run = assert_failed(
        run,
        &layout,
        "timeout",
        &["nothing listened on $PORT (38017) within 3 s"],
        "--check-timeout",
    );
    assert!(
        run.stderr.contains("starting up, very slowly"),
        "{}",
        run.stderr
    );
    assert!(
        processes_with(&marker).is_empty(),
        "the app's child outlived the check: {:?}",
        processes_with(&marker)
    );
}

/// Sends `signal` to pyslip while its check runs an app that never listens, and asserts that the
/// app's child process is gone and nothing was written; returns the child's marker and pyslip's
/// stderr.
fn signal_during_check(work: &Work, signal: &str) -> (String, String) {
    let app = check_app(work, "never-listens");
    let layout = work.path().join("oci");
    let marker = format!("pyslip-check-orphan-{}-{signal}", std::process::id());
    let env = format!("ORPHAN_MARKER={marker}");
    let mut cmd = work.command_as_user(&work.bin);
    cmd.args([
        "build",
        app.to_str().expect("utf-8"),
        "--base-repo",
        &crate::support::base_repo(),
        "--check",
        "--check-timeout",
        "120",
        "--env",
        &env,
        "--oci-layout",
        layout.to_str().expect("utf-8"),
    ]);
    cmd.stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("spawn pyslip");
    let started = wait_until(240, || !processes_with(&marker).is_empty());
    // The binary's copy is unique to this work dir.
    let pyslip: Vec<String> = processes_with(&work.bin.display().to_string())
        .into_iter()
        .filter(|l| !l.contains("runuser"))
        .collect();
    assert!(started, "the check never started the app");
    assert_eq!(pyslip.len(), 1, "{pyslip:?}");
    let pid = pyslip[0].split_whitespace().next().expect("pid");
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = child.wait_with_output().expect("wait");
    assert!(
        wait_until(10, || processes_with(&marker).is_empty()),
        "the sandbox outlived pyslip: {:?}",
        processes_with(&marker)
    );
    assert!(!layout.exists());
    (marker, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn killing_pyslip_during_the_check_kills_the_sandbox() {
    let work = Work::with_shared_cache();
    signal_during_check(&work, "KILL");
}

#[test]
fn sigterm_during_the_check_kills_the_sandbox_and_removes_its_scratch() {
    // A cache of its own: no other build's scratch dirs in its tmp/.
    let work = Work::new();
    let (_, stderr) = signal_during_check(&work, "TERM");
    assert!(stderr.contains("error: interrupted by SIGTERM"), "{stderr}");
    let tmp = work.cache().join("pyslip/tmp");
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("check-"))
        .collect();
    assert!(
        left.is_empty(),
        "scratch left in {}: {left:?}",
        tmp.display()
    );
}

/// Build a `testdata/apps/` web app with `--check --check-path <its expect.json path>` and
/// assert it passes with the expected status.
fn web_app_passes(name: &str) {
    let work = Work::with_shared_cache();
    let app = work.app(name);
    let expect: Value =
        serde_json::from_slice(&std::fs::read(app.join("expect.json")).expect("expect.json"))
            .expect("json");
    let path = expect["path"].as_str().expect("web app");
    let (run, layout) = build_checked(&work, &app, &["--check-path", path]);
    let result = check(&run.ok());
    assert_eq!(result["passed"], true, "{name}: {result}");
    assert_eq!(
        result["status"].as_u64(),
        Some(expect["status"].as_u64().unwrap_or(200)),
        "{name}: {result}"
    );
    assert!(result["warning"].is_null(), "{name}: {result}");
    assert!(layout.join("index.json").exists());
}

macro_rules! web_apps_pass {
    ($($test:ident => $app:literal,)*) => {$(
        #[test]
        fn $test() {
            web_app_passes($app);
        }
    )*};
}

// The other apps are checked by their builds in `apps.rs`.
web_apps_pass! {
    check_passes_stdlib => "stdlib",
}

/// Every app of `testdata/apps/` is built by a test of `apps.rs`, whose builds all run the check
/// (a new app must get one).
#[test]
fn every_testdata_app_is_built_with_the_check() {
    let apps_tests = include_str!("apps.rs");
    assert!(apps_tests.contains(r#"args.extend_from_slice(&["--check""#));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/apps");
    for entry in std::fs::read_dir(dir).expect("apps") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(
            name == "stdlib" || apps_tests.contains(&format!("\"{name}\"")),
            "{name} has no test in apps.rs"
        );
    }
}

#[test]
fn check_without_namespaces_is_refused_before_any_work() {
    let work = Work::new();
    let app = work.app("stdlib");
    let layout = work.path().join("oci");
    let run = work
        .build(
            &app,
            &[
                "--check",
                "--sandbox",
                "none",
                "--oci-layout",
                layout.to_str().expect("utf-8"),
            ],
        )
        .failed();
    let (error, hint) = run.error_and_hint();
    assert!(error.contains("--sandbox none"), "{error}");
    assert!(hint.contains("without --check"), "{hint}");
    assert!(!layout.exists());
    // Bad check flags are refused just as early.
    let bad_path = work
        .build(&app, &["--check-path", "healthz", "--oci-layout", "x"])
        .failed();
    assert!(
        bad_path.error_and_hint().0.contains("--check-path"),
        "{}",
        bad_path.stderr
    );
    let zero = work
        .build(&app, &["--check-timeout", "0", "--oci-layout", "x"])
        .failed();
    assert!(
        zero.error_and_hint().0.contains("--check-timeout 0"),
        "{}",
        zero.stderr
    );
}
