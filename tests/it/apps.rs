//! Every `testdata/apps/` app builds (its dependencies installed by the real
//! installer in the rootless sandbox), passes the boot check (`--check`, at its `expect.json`
//! path), runs under podman and answers its route; locked apps hold exactly their locked
//! versions. The builds share one cache, concurrently.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Container, Work, base_repo, env, free_port, host, unique_repo};

/// Build `app` with `--push` under umask 077, pull it and start it; returns the report, image and
/// container. An app with a dependency layer is built again under umask 022 (layers rebuilt, not
/// reused): the digest must not change, and the image (run as the default unprivileged user)
/// must work although the first build's files were created 0600.
fn build_and_start(work: &Work, app: &str, extra: &[&str]) -> (Value, String, Container, u16) {
    build_and_start_dir(work, &work.app(app), app, extra)
}

/// [`build_and_start`] for the project in `dir` (`name` names it in messages and repositories).
fn build_and_start_dir(
    work: &Work,
    dir: &Path,
    name: &str,
    extra: &[&str],
) -> (Value, String, Container, u16) {
    let app = name.replace('/', "-");
    let image = format!("{}/{}:1", env().registry, unique_repo(&app));
    let repo = base_repo();
    let dir_arg = dir.to_str().expect("utf-8 path");
    let mut args = vec!["build", dir_arg, "--base-repo", &repo];
    args.extend_from_slice(&["-t", image.as_str(), "--push", "--json"]);
    args.extend_from_slice(extra);
    // The boot check of every app, at its route (a worker: still running after a while); a
    // generous timeout, as the suite's builds run at once on a small machine.
    let expect: Value = std::fs::read(dir.join("expect.json"))
        .map(|bytes| serde_json::from_slice(&bytes).expect("expect.json"))
        .unwrap_or_default();
    let check_path = expect["path"].as_str().map(str::to_owned);
    args.extend_from_slice(&["--check", "--check-timeout", "180"]);
    if let Some(path) = &check_path {
        args.extend_from_slice(&["--check-path", path]);
    }
    let report = work.pyslip_umask("077", &args).ok().json();
    assert_eq!(
        report["check"]["passed"], true,
        "{name}: {}",
        report["check"]
    );
    if check_path.is_some() {
        assert_eq!(
            report["check"]["status"].as_u64(),
            Some(expect["status"].as_u64().unwrap_or(200)),
            "{name}: {}",
            report["check"]
        );
    }
    let has_deps = report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .any(|l| l["origin"] == "deps");
    if has_deps {
        let again = format!("{}/{}:1", env().registry, unique_repo(&app));
        let mut args = vec!["build", dir_arg, "--base-repo", &repo];
        args.extend_from_slice(&["-t", again.as_str(), "--push", "--json", "--no-cache"]);
        args.extend_from_slice(extra);
        let rebuilt = work.pyslip_umask("022", &args).ok().json();
        assert_eq!(
            rebuilt["digest"], report["digest"],
            "{name}: umask 077 and 022 give different images"
        );
    }
    host("podman", &["pull", "-q", &image]);
    let port = free_port();
    let container = Container::podman(&image, port);
    (report, image, container, port)
}

fn expectation(app: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/apps")
        .join(app)
        .join("expect.json");
    serde_json::from_slice(&std::fs::read(&path).expect("expect.json")).expect("json")
}

/// Build, run and check the app's `expect.json`; returns the running container.
fn check_app(app: &str) -> Container {
    check_app_with(app, &[])
}

fn check_app_with(app: &str, extra: &[&str]) -> Container {
    check_app_image(app, extra).0
}

/// [`check_app_with`], also returning the image reference.
fn check_app_image(app: &str, extra: &[&str]) -> (Container, String) {
    let work = Work::with_shared_cache();
    let (report, image, container, port) = build_and_start(&work, app, extra);
    let origins: Vec<&str> = report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter_map(|l| l["origin"].as_str())
        .collect();
    assert!(origins.contains(&"app"), "{report}");
    let expect = expectation(app);
    if let Some(path) = expect["path"].as_str() {
        assert!(
            origins.contains(&"deps") || app == "stdlib",
            "no dependency layer: {report}"
        );
        let (status, body) = container.get(port, path);
        assert_eq!(
            u64::from(status),
            expect["status"].as_u64().unwrap_or(200),
            "{body}"
        );
        let needle = expect["body_contains"].as_str().expect("body_contains");
        assert!(
            body.contains(needle),
            "{app}: {path} answered {body:?}, want {needle:?}"
        );
        if let Some(static_path) = expect["static_path"].as_str() {
            let (status, body) = container.get(port, static_path);
            assert_eq!(
                status, 200,
                "{app}: {static_path} (collectstatic output) answered {body}"
            );
        }
    } else {
        let needle = expect["log_contains"].as_str().expect("log_contains");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !container.logs().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "{app} never logged {needle:?}:\n{}",
                container.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    (container, image)
}

/// The distributions pyslip installed (those under /usr/local; the base image's own Debian
/// packages live elsewhere): normalised name → version.
fn installed(container: &Container) -> BTreeMap<String, String> {
    let script = "import importlib.metadata as m, json\nseen = {}\nfor d in m.distributions():\n    if str(d.locate_file('')).startswith('/usr/local/'): seen.setdefault(d.metadata['Name'], d.version)\nprint(json.dumps(seen))";
    let out = container.exec(&["python3", "-c", script]);
    let raw: BTreeMap<String, String> = serde_json::from_str(out.trim()).expect("json");
    raw.into_iter().map(|(k, v)| (normalise(&k), v)).collect()
}

fn normalise(name: &str) -> String {
    name.to_lowercase().replace(['_', '.'], "-")
}

/// Every installed package has the lock's version; `must` are installed, `never` (dev-only
/// packages) are not.
fn assert_locked(
    container: &Container,
    locked: &BTreeMap<String, String>,
    must: &[&str],
    never: &[&str],
) {
    let installed = installed(container);
    for name in never {
        assert!(
            !installed.contains_key(*name),
            "dev-only {name} was installed: {installed:?}"
        );
    }
    for name in must {
        assert!(
            installed.contains_key(*name),
            "{name} is not installed: {installed:?}"
        );
    }
    for (name, version) in &installed {
        let want = locked
            .get(name)
            .unwrap_or_else(|| panic!("{name} {version} is installed but not in the lock"));
        assert_eq!(version, want, "{name}: installed {version}, locked {want}");
    }
}

/// `[[package]] name/version` of a uv.lock or poetry.lock.
fn toml_lock(app: &str, file: &str) -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/apps")
        .join(app)
        .join(file);
    let lock: toml::Value =
        toml::from_str(&std::fs::read_to_string(path).expect("lock")).expect("toml");
    lock["package"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| {
            Some((
                normalise(p.get("name")?.as_str()?),
                p.get("version")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

#[test]
fn flask_requirements_app_runs() {
    check_app("flask-requirements");
}

#[test]
fn flask_pipenv_app_runs_with_its_locked_versions() {
    let container = check_app("flask-pipenv");
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/apps/flask-pipenv/Pipfile.lock");
    let lock: Value = serde_json::from_slice(&std::fs::read(path).expect("lock")).expect("json");
    let locked: BTreeMap<String, String> = lock["default"]
        .as_object()
        .expect("default")
        .iter()
        .filter_map(|(k, v)| {
            Some((
                normalise(k),
                v["version"].as_str()?.trim_start_matches("==").to_owned(),
            ))
        })
        .collect();
    assert_locked(&container, &locked, &["flask", "waitress"], &[]);
    // Only the default section: develop packages are not installed.
    let develop: Vec<String> = lock["develop"]
        .as_object()
        .map(|d| d.keys().map(|k| normalise(k)).collect())
        .unwrap_or_default();
    let installed = installed(&container);
    for name in develop.iter().filter(|n| !locked.contains_key(*n)) {
        assert!(
            !installed.contains_key(name),
            "develop package {name} was installed"
        );
    }
}

#[test]
fn fastapi_poetry_app_runs_with_its_locked_versions() {
    let container = check_app("fastapi-poetry");
    assert_locked(
        &container,
        &toml_lock("fastapi-poetry", "poetry.lock"),
        &["fastapi", "uvicorn"],
        &["pytest"],
    );
}

#[test]
fn fastapi_uv_app_runs_with_its_locked_versions() {
    let container = check_app("fastapi-uv");
    assert_locked(
        &container,
        &toml_lock("fastapi-uv", "uv.lock"),
        &["fastapi", "uvicorn"],
        &["pytest"],
    );
}

#[test]
fn fastapi_scaffold_app_runs() {
    check_app("fastapi-scaffold");
}

#[test]
fn django_app_runs_and_serves_collected_static_files() {
    check_app("django");
}

#[test]
fn tornado_app_runs() {
    check_app("tornado");
}

#[test]
fn generic_app_runs() {
    check_app("generic");
}

/// The worker runs (it logs its heartbeat), and its image config declares no port: no
/// `ExposedPorts` and no `PORT` in the environment (a web app's has both).
#[test]
fn bottle_app_runs_under_gunicorn() {
    check_app("bottle");
}

#[test]
fn starlette_app_runs() {
    check_app("starlette");
}

#[test]
fn litestar_app_runs() {
    check_app("litestar");
}

#[test]
fn quart_app_runs_under_hypercorn() {
    check_app("quart");
}

#[test]
fn sanic_app_runs_under_its_own_server() {
    check_app("sanic");
}

#[test]
fn aiohttp_app_in_a_package_runs() {
    check_app("aiohttp");
}

#[test]
fn falcon_app_runs_under_waitress() {
    check_app("falcon");
}

#[test]
fn streamlit_app_runs_headless() {
    check_app("streamlit");
}

#[test]
fn flask_factory_in_a_package_runs() {
    check_app("flask-factory");
}

#[test]
fn fastapi_app_in_a_src_package_init_runs() {
    let container = check_app("fastapi-src-init");
    assert_locked(
        &container,
        &toml_lock("fastapi-src-init", "uv.lock"),
        &["fastapi", "uvicorn", "srcapp"],
        &[],
    );
}

#[test]
fn worker_app_runs_without_a_port() {
    let (container, image) = check_app_image("worker", &[]);
    drop(container);
    let inspect: Value =
        serde_json::from_str(&host("podman", &["image", "inspect", &image])).expect("json");
    let config = &inspect[0]["Config"];
    assert!(config.is_object(), "no config in {inspect}");
    let ports = &config["ExposedPorts"];
    assert!(
        ports.is_null() || ports.as_object().is_some_and(|p| p.is_empty()),
        "a worker exposes {ports}"
    );
    let env = config["Env"].as_array().expect("Env");
    assert!(
        env.iter()
            .all(|e| !e.as_str().unwrap_or("").starts_with("PORT=")),
        "a worker has PORT in {env:?}"
    );
    // The same check sees a web app's port (the assertions above can fail).
    let (web, web_image) = check_app_image("stdlib", &[]);
    drop(web);
    let web: Value =
        serde_json::from_str(&host("podman", &["image", "inspect", &web_image])).expect("json");
    assert!(
        web[0]["Config"]["ExposedPorts"]
            .as_object()
            .is_some_and(|p| !p.is_empty())
    );
}

/// `--installer pip`: the base image's own pip runs in the sandbox (through the CA bundle).
#[test]
fn flask_requirements_app_runs_when_installed_with_pip() {
    let container = check_app_with("flask-requirements", &["--installer", "pip"]);
    let installed = installed(&container);
    assert!(installed.contains_key("flask"), "{installed:?}");
    let installer = container.exec(&[
        "python3",
        "-c",
        "import importlib.metadata as m; print(m.distribution('flask').read_text('INSTALLER'))",
    ]);
    assert_eq!(installer.trim(), "pip", "flask was not installed by pip");
}

/// A uv workspace with two app members and a shared library member: each app builds from the
/// root's lock (`uv sync --locked --package <member>` semantics), gets the shared library and
/// its dependencies installed, and ships its own folder and nothing else of the repository.
#[test]
fn uv_workspace_members_build_from_the_root_lock() {
    let work = Work::with_shared_cache();
    let root = work.app("uv-workspace");
    let locked = toml_lock("uv-workspace", "uv.lock");
    for (member, name, other) in [("apps/api", "api", "web"), ("apps/web", "web", "api")] {
        let app = format!("uv-workspace/{member}");
        let (report, _image, container, port) =
            build_and_start_dir(&work, &root.join(member), &app, &[]);
        let origins: Vec<&str> = report["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .filter_map(|l| l["origin"].as_str())
            .collect();
        assert!(
            origins.contains(&"deps") && origins.contains(&"project"),
            "{report}"
        );
        let expect = expectation(&app);
        let (status, body) = container.get(port, expect["path"].as_str().expect("path"));
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains(expect["body_contains"].as_str().expect("needle")),
            "{app}: {body}"
        );
        assert_locked(
            &container,
            &locked,
            &[name, "shared", "markupsafe"],
            &[other],
        );
        let shipped = container.exec(&["sh", "-c", "cd /app && find . -type f | sort"]);
        let shipped: Vec<&str> = shipped.lines().collect();
        assert_eq!(
            shipped,
            vec![
                "./expect.json",
                "./plan.json",
                "./pyproject.toml",
                &format!("./src/{name}/__init__.py")
            ],
            "{app} ships its own folder and nothing else of the repository"
        );
    }
}

/// No Python pin, and numpy 2.2.6 has wheels up to CPython 3.13 only: the build asks the index,
/// chooses 3.13, says why, and the image runs numpy on 3.13.
#[test]
fn unpinned_python_follows_the_wheels_of_the_pins() {
    let work = Work::with_shared_cache();
    let dir = work.app("numpy-pinned");
    let image = format!("{}/{}:1", env().registry, unique_repo("numpy-pinned"));
    let run = work
        .build(
            &dir,
            &[
                "-t",
                &image,
                "--push",
                "--check",
                "--check-path",
                "/healthz",
            ],
        )
        .ok();
    assert!(run.stderr.contains("check   passed"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("python  3.13 [requirements.txt:3: numpy==2.2.6 has no wheels for 3.14]"),
        "{}",
        run.stderr
    );
    host("podman", &["pull", "-q", &image]);
    let port = free_port();
    let container = Container::podman(&image, port);
    let (status, body) = container.get(port, "/healthz");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"numpy\":\"2.2.6\""), "{body}");
    assert!(body.contains("\"python\":\"3.13."), "{body}");
    // The plan alone stays pure; `plan --online` shows the build's choice.
    let online = work.pyslip(&["plan", dir.to_str().expect("utf-8"), "--online", "--json"]);
    let plan: Value = serde_json::from_str(&online.ok().stdout).expect("plan json");
    assert_eq!(plan["python"]["value"], "3.13", "{plan}");
    assert_eq!(plan["python"]["source"]["kind"], "index", "{plan}");
}

/// A pin without a wheel for the chosen Python and no compiler in the slim base: the log's tail
/// (indented), the whole log's path, one error line naming the package, and a hint naming the
/// newest Python with wheels and both fixes.
#[test]
fn a_pin_without_wheels_for_the_python_gets_a_hint_naming_one_that_has_them() {
    let work = Work::with_shared_cache();
    let dir = work.path().join("numpy-old");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("requirements.txt"), "numpy==1.26.4\n").expect("write");
    std::fs::write(dir.join("main.py"), "import numpy\n").expect("write");
    work.give_to_user(&dir);
    let image = format!("{}/{}:1", env().registry, unique_repo("numpy-old"));
    let run = work
        .build(&dir, &["--python", "3.13", "-t", &image, "--push"])
        .failed();
    let lines: Vec<&str> = run.stderr.lines().collect();
    let error = lines
        .iter()
        .position(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{}", run.stderr));
    assert!(
        lines[error].contains("installing numpy==1.26.4 failed"),
        "{}",
        run.stderr
    );
    let hint = lines.get(error + 1).copied().unwrap_or_default();
    assert!(
        hint.starts_with("hint: numpy 1.26.4 has no wheel for Python 3.13"),
        "{}",
        run.stderr
    );
    assert!(hint.contains("--python 3.12"), "{hint}");
    assert!(hint.contains("pin a newer release of numpy"), "{hint}");
    let log_line = lines[..error]
        .iter()
        .find(|l| l.contains("the whole install log: "))
        .unwrap_or_else(|| panic!("no log path:\n{}", run.stderr));
    let path = log_line
        .split("the whole install log: ")
        .nth(1)
        .expect("path")
        .trim_end_matches(')');
    let log = std::fs::read_to_string(path).expect("the log file");
    assert!(log.contains("numpy"), "{log}");
    let shown: Vec<&&str> = lines[..error]
        .iter()
        .filter(|l| l.starts_with("    "))
        .collect();
    assert!(
        shown.len() > 3 && shown.len() <= 41,
        "the log's tail, indented: {}",
        run.stderr
    );
}
