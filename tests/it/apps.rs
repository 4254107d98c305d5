//! Every `testdata/apps/` app builds (its dependencies installed by the real
//! installer in the rootless sandbox), runs under podman and answers its route; locked apps hold
//! exactly their locked versions. The builds share one cache, concurrently.

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
    let dir = work.app(app);
    let image = format!("{}/{}:1", env().registry, unique_repo(app));
    let repo = base_repo();
    let dir_arg = dir.to_str().expect("utf-8 path");
    let mut args = vec!["build", dir_arg, "--base-repo", &repo];
    args.extend_from_slice(&["-t", image.as_str(), "--push", "--json"]);
    args.extend_from_slice(extra);
    let report = work.pyslip_umask("077", &args).ok().json();
    let has_deps = report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .any(|l| l["origin"] == "deps");
    if has_deps {
        let again = format!("{}/{}:1", env().registry, unique_repo(app));
        let mut args = vec!["build", dir_arg, "--base-repo", &repo];
        args.extend_from_slice(&["-t", again.as_str(), "--push", "--json", "--no-cache"]);
        args.extend_from_slice(extra);
        let rebuilt = work.pyslip_umask("022", &args).ok().json();
        assert_eq!(
            rebuilt["digest"], report["digest"],
            "{app}: umask 077 and 022 give different images"
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
