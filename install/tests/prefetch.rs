//! Resolving on the host while the base is unpacked (`prefetch`, on the path without
//! namespaces), then installing offline: the same layer as the online install; an offline
//! install that strays from the host's resolution is redone online; nothing is prefetched where
//! it does not apply. As the unprivileged test user.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Build, app, copy_app, host_env, tempdir};
use pyslip_install::{Isolation, Prefetched, dependency_layer_prefetched, prefetch};

/// The fixture bases' Python (their `PYTHON_VERSION`).
const PYTHON: &str = "3.13.5";

fn offline_runs(log: &str) -> usize {
    log.lines()
        .filter(|l| l.starts_with("$ uv pip install") && l.ends_with(" --offline"))
        .count()
}

rootless_test! {
    /// Unpinned requirements: resolved on the host, installed offline, byte-identical to the
    /// online install; a resolution that does not name everything installed is not trusted.
    fn a_prefetched_install_runs_offline_and_gives_the_same_layer() {
        let dir = tempdir();
        let project = copy_app("flask-requirements", dir.path());
        let mut build = Build::on_base(&project, &dir.path().join("cache"), "3.13");
        build.no_cache = true;
        build.isolation = Isolation::None;
        let online = build.run().unwrap();
        assert_eq!(offline_runs(&online.log), 0, "log:\n{}", online.log);

        let req = build.request();
        let prefetched = prefetch(&req, PYTHON).expect("the host resolution failed");
        let offline = dependency_layer_prefetched(&req, Some(&prefetched)).unwrap();
        assert_eq!(offline_runs(&offline.log), 1, "log:\n{}", offline.log);
        assert_eq!(offline.layer.digest, online.layer.digest);

        // A resolution that named other versions (and left flask's dependencies out): the
        // offline install is not kept, the layer is made online (and is the same).
        let partial = Prefetched::from_pins(["flask==0.1", "gunicorn==0.1"]);
        let redone = dependency_layer_prefetched(&req, Some(&partial)).unwrap();
        assert_eq!(offline_runs(&redone.log), 0, "log:\n{}", redone.log);
        assert_eq!(redone.layer.digest, online.layer.digest);
    }
}

rootless_test! {
    /// Locked installs run offline first on their own; the namespace sandbox (a resolution may
    /// build a source distribution, which must not happen on the host), foreign platforms and a
    /// host without any Python for uv to run get no prefetch (and build as usual).
    fn no_prefetch_where_it_does_not_apply() {
        let dir = tempdir();
        let cache = dir.path().join("cache");
        let mut locked = Build::on_base(&app("fastapi-uv"), &cache, "3.13");
        locked.isolation = Isolation::None;
        assert!(prefetch(&locked.request(), PYTHON).is_none());

        let project = copy_app("flask-requirements", dir.path());
        let sandboxed = Build::on_base(&project, &cache, "3.13");
        assert_eq!(sandboxed.isolation, Isolation::Namespaces);
        assert!(prefetch(&sandboxed.request(), PYTHON).is_none());

        let mut arm = Build::on_base(&project, &cache, "3.13");
        arm.isolation = Isolation::None;
        arm.platform = "linux/arm64".into();
        assert!(prefetch(&arm.request(), PYTHON).is_none());

        let mut bare = Build::on_base(&project, &cache, "3.13");
        bare.isolation = Isolation::None;
        bare.env = host_env(&[("PATH", "/nonexistent")]);
        assert!(prefetch(&bare.request(), PYTHON).is_none());
        assert!(bare.run().is_ok());
    }
}

/// Writes `pyslip-fixture-sdist-only` 1.0 as a wheel and 2.0 as a source distribution only
/// (a setuptools project) into `dir`.
fn two_versions(dir: &std::path::Path) {
    const SCRIPT: &str = r#"import base64, hashlib, io, sys, tarfile, zipfile
out, name = sys.argv[1], "pyslip_fixture_sdist_only"
di = f"{name}-1.0.dist-info"
files = {f"{name}/__init__.py": b"version = 1\n",
         f"{di}/METADATA": b"Metadata-Version: 2.1\nName: pyslip-fixture-sdist-only\nVersion: 1.0\n",
         f"{di}/WHEEL": b"Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
digest = lambda b: base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b"=").decode()
record = "".join(f"{k},sha256={digest(b)},{len(b)}\n" for k, b in files.items()) + f"{di}/RECORD,,\n"
with zipfile.ZipFile(f"{out}/{name}-1.0-py3-none-any.whl", "w") as z:
    for k, b in files.items():
        z.writestr(k, b)
    z.writestr(f"{di}/RECORD", record)
top = "pyslip_fixture_sdist_only-2.0"
sdist = {f"{top}/PKG-INFO": b"Metadata-Version: 2.1\nName: pyslip-fixture-sdist-only\nVersion: 2.0\n",
         f"{top}/pyproject.toml": b'[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n[project]\nname = "pyslip-fixture-sdist-only"\nversion = "2.0"\n',
         f"{top}/{name}/__init__.py": b"version = 2\n"}
with tarfile.open(f"{out}/{top}.tar.gz", "w:gz") as t:
    for k, b in sdist.items():
        info = tarfile.TarInfo(k)
        info.size = len(b)
        t.addfile(info, io.BytesIO(b))
"#;
    let status = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
}

/// `python3 -m http.server` on a free loopback port, serving `dir`; stopped when dropped.
struct Served(std::process::Child, String);

impl Served {
    fn dir(dir: &std::path::Path) -> Served {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        Served(child, format!("http://127.0.0.1:{port}/"))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

rootless_test! {
    /// The newest version has only a source distribution (an older one has a wheel): the online
    /// install builds it, and so does the offline install after the host resolution (which may
    /// build, without namespaces) — the same layer. A resolution with `--no-build` would take
    /// the older wheel, and an offline install, lacking the newer one's data, would follow it.
    fn a_newer_version_with_only_a_source_distribution_is_installed_offline_too() {
        let dir = tempdir();
        let links = dir.path().join("links");
        fs_err::create_dir(&links).unwrap();
        two_versions(&links);
        let served = Served::dir(&links);
        let project = copy_app("flask-requirements", dir.path());
        let reqs = fs_err::read_to_string(project.join("requirements.txt")).unwrap();
        fs_err::write(
            project.join("requirements.txt"),
            format!("{reqs}pyslip-fixture-sdist-only\n"),
        )
        .unwrap();
        let mut build = Build::on_base(&project, &dir.path().join("cache"), "3.13");
        build.no_cache = true;
        build.isolation = Isolation::None;
        build.env = host_env(&[("UV_FIND_LINKS", &served.1)]);
        let online = build.run().unwrap();
        assert!(
            common::listing(&online.blob_path).contains("pyslip_fixture_sdist_only-2.0.dist-info"),
            "the online install did not take 2.0"
        );

        let req = build.request();
        let prefetched = prefetch(&req, PYTHON).expect("the host resolution failed");
        let offline = dependency_layer_prefetched(&req, Some(&prefetched)).unwrap();
        assert_eq!(offline_runs(&offline.log), 1, "log:\n{}", offline.log);
        assert_eq!(offline.layer.digest, online.layer.digest);
    }
}
