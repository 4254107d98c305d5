//! Building where user namespaces are not available: inside unprivileged containers (the shapes
//! CI jobs run in) and on a host whose user-namespace limit is 0. `--sandbox auto` picks the
//! namespace-free install by itself, and every image is byte-identical to the one the rootless
//! sandbox builds on the host, and serves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::{Container, Work, base_repo, env, free_port, host, unique_repo};

/// The apps built in every shape: an sdist dependency (docopt), a uv.lock app with a project
/// layer, Django with collectstatic.
const APPS: [&str; 3] = ["flask-sdist", "fastapi-uv", "django"];

/// The fixture base image the containers run (it has the Debian userland pyslip needs: glibc,
/// /bin/sh).
fn job_image() -> String {
    format!("{}:3.13-slim", base_repo())
}

/// The apps, prepared once in a work dir: `flask-sdist` is flask-requirements plus an sdist.
fn apps(work: &Work) -> PathBuf {
    for app in APPS {
        let source = if app == "flask-sdist" {
            "flask-requirements"
        } else {
            app
        };
        let dir = work.app(source);
        if app == "flask-sdist" {
            let reqs = std::fs::read_to_string(dir.join("requirements.txt")).expect("read");
            std::fs::write(
                dir.join("requirements.txt"),
                format!("{reqs}docopt==0.6.2\n"),
            )
            .expect("write");
            std::fs::rename(&dir, dir.with_file_name(app)).expect("rename");
        }
    }
    work.path().join("apps")
}

/// `pyslip build` arguments for `app` pushed to `image`.
fn build_args(app: &str, apps: &str, image: &str) -> Vec<String> {
    [
        "build",
        &format!("{apps}/{app}"),
        "--python",
        "3.13",
        "--base-repo",
        &base_repo(),
        "-t",
        image,
        "--push",
        "--json",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Manifest digests of the apps built on the host in the rootless sandbox (once per run).
fn host_digests() -> &'static BTreeMap<String, String> {
    static DIGESTS: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    DIGESTS.get_or_init(|| {
        let work = Work::new();
        let apps = apps(&work);
        let apps = apps.to_str().expect("utf-8");
        APPS.iter()
            .map(|app| {
                let image = format!("{}/{}:1", env().registry, unique_repo(app));
                let mut args = build_args(app, apps, &image);
                args.extend(["--sandbox".into(), "namespaces".into()]);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let report = work.pyslip(&args).ok().json();
                (
                    app.to_string(),
                    report["digest"].as_str().expect("digest").to_owned(),
                )
            })
            .collect()
    })
}

/// Runs `image` and checks it answers like the app's `expect.json` says.
fn assert_serves(app: &str, image: &str) {
    let expect: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/apps")
                .join(if app == "flask-sdist" {
                    "flask-requirements"
                } else {
                    app
                })
                .join("expect.json"),
        )
        .expect("expect.json"),
    )
    .expect("json");
    host("podman", &["pull", "-q", image]);
    let port = free_port();
    let container = Container::podman(image, port);
    let path = expect["path"].as_str().expect("path");
    let (status, body) = container.get(port, path);
    assert_eq!(
        u64::from(status),
        expect["status"].as_u64().unwrap_or(200),
        "{body}"
    );
    let needle = expect["body_contains"].as_str().expect("body_contains");
    assert!(body.contains(needle), "{app}: {path} answered {body:?}");
    if let Some(static_path) = expect["static_path"].as_str() {
        assert_eq!(
            container.get(port, static_path).0,
            200,
            "{app}: {static_path}"
        );
    }
}

/// Where pyslip's cache is inside the job's container, and the mode `auto` must pick there.
#[derive(Clone, Copy)]
enum Cache {
    /// On the container's own (overlay) file system: no namespace sandbox (no overlay on overlay).
    ContainerRoot,
    /// On a volume (a pod's emptyDir): the namespace sandbox, where seccomp allows it.
    Volume,
}

/// Builds every app inside a container of `shape` (podman flags), with pyslip's cache where
/// `cache` says, and checks each image against the host build.
fn build_in_container(shape: &[&str], cache: Cache) {
    let expected = host_digests();
    let work = Work::new();
    let apps = apps(&work);
    let volume = work.path().join("job-cache");
    std::fs::create_dir(&volume).expect("mkdir");
    let status = Command::new("chown")
        .arg("1000:1000")
        .arg(&volume)
        .status()
        .expect("chown");
    assert!(status.success());
    let (cache_dir, mode) = match cache {
        Cache::ContainerRoot => ("/tmp/cache", "sandbox none"),
        Cache::Volume => ("/cache", "sandbox namespaces"),
    };
    let ca = std::env::var("SSL_CERT_FILE")
        .unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".to_owned());
    let mut script = String::from("set -e\n");
    let mut images = BTreeMap::new();
    for app in APPS {
        let image = format!("{}/{}:1", env().registry, unique_repo(app));
        let args: Vec<String> = build_args(app, "/apps", &image)
            .into_iter()
            .map(|a| format!("'{a}'"))
            .collect();
        script.push_str(&format!(
            "echo '=== {app}' >&2\npyslip {} > /tmp/{app}.json\ncat /tmp/{app}.json\necho\n",
            args.join(" ")
        ));
        images.insert(app, image);
    }
    // The job image is a multi-platform index: always this host's platform, freshly resolved
    // (a test that ran the arm64 image may have left it under the same tag).
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    };
    let out = Command::new("podman")
        .args([
            "run",
            "--rm",
            "--network",
            "host",
            "--pull=always",
            "--tls-verify=false",
        ])
        .args(["--platform", &format!("linux/{arch}")])
        .args(shape)
        .args(["-e", "HOME=/tmp/home", "-e"])
        .arg(format!("XDG_CACHE_HOME={cache_dir}"))
        .arg("-v")
        .arg(format!("{}:/cache", volume.display()))
        .args(["-e", "SSL_CERT_FILE=/etc/pyslip-ca.pem"])
        .arg("-v")
        .arg(format!("{ca}:/etc/pyslip-ca.pem:ro"))
        .arg("-v")
        .arg(format!("{}:/usr/local/bin/pyslip:ro", work.bin.display()))
        .arg("-v")
        .arg(format!("{}:/apps:ro", apps.display()))
        .args([&job_image(), "sh", "-c", &script])
        .output()
        .expect("podman run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "builds in the container {shape:?} failed:\n{stderr}\n{stdout}"
    );
    assert!(
        stderr.contains(mode),
        "auto did not say `{mode}`:\n{stderr}"
    );
    let digests: Vec<String> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let report: serde_json::Value = serde_json::from_str(l).expect("json report");
            report["digest"].as_str().expect("digest").to_owned()
        })
        .collect();
    assert_eq!(digests.len(), APPS.len(), "{stdout}");
    for (app, digest) in APPS.iter().zip(&digests) {
        assert_eq!(
            digest, &expected[*app],
            "{app} built in {shape:?} differs from the host's sandboxed build\n{stderr}"
        );
    }
    for (app, image) in images {
        assert_serves(app, &image);
    }
}

#[test]
fn builds_as_root_in_a_container_with_the_default_seccomp_profile() {
    build_in_container(&[], Cache::ContainerRoot);
}

#[test]
fn builds_as_a_user_in_a_container_with_the_default_seccomp_profile() {
    build_in_container(&["--user", "1000:1000"], Cache::ContainerRoot);
}

#[test]
fn builds_as_a_user_in_a_container_without_seccomp() {
    build_in_container(
        &[
            "--user",
            "1000:1000",
            "--security-opt",
            "seccomp=unconfined",
        ],
        Cache::ContainerRoot,
    );
}

/// A Kubernetes pod's shape: uid 1000, no seccomp filter, the runtime's masked `/proc`, the
/// cache on a volume. The namespace sandbox works there (it binds the pod's `/proc` when a
/// fresh one is refused), and its images are the host's.
#[test]
fn builds_in_the_sandbox_in_a_pod_shaped_container_with_the_cache_on_a_volume() {
    build_in_container(
        &[
            "--user",
            "1000:1000",
            "--security-opt",
            "seccomp=unconfined",
        ],
        Cache::Volume,
    );
}

/// On a host whose user-namespace limit is 0 (set in a user namespace of its own, so nothing
/// else on the machine is affected), auto picks the namespace-free path, names the setting, and
/// the image is the one the sandbox builds.
#[test]
fn auto_builds_without_namespaces_where_the_limit_is_zero() {
    let expected = host_digests();
    let work = Work::new();
    let apps = apps(&work);
    let image = format!("{}/{}:1", env().registry, unique_repo("limit"));
    let args = build_args("flask-sdist", apps.to_str().expect("utf-8"), &image);
    let mut cmd = work.command_as_user(Path::new("/usr/bin/unshare"));
    cmd.args(["--user", "--map-root-user", "sh", "-c"])
        .arg("echo 0 > /proc/sys/user/max_user_namespaces && exec \"$0\" \"$@\"")
        .arg(&work.bin)
        .args(&args);
    let out = cmd.output().expect("unshare");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("sandbox none") && stderr.contains("user.max_user_namespaces"),
        "auto did not name the blocking setting:\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["digest"], expected["flask-sdist"].as_str());
    assert_serves("flask-sdist", &image);
}
