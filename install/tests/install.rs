//! Real installs from PyPI into the fixture base image, run rootless as the test user.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::{Build, copy_app, listing, python_in, python_over, tempdir};

fn stdout(out: &pyslip_sandbox::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

rootless_test! {
    /// requirements.txt with flask: the layer, stacked on the base, imports flask; a second
    /// request is a cache hit that does not touch the sandbox (its base root does not exist).
    fn requirements_flask_installs_imports_and_hits_the_cache() {
        let dir = tempdir();
        let project = dir.path().join("app");
        fs_err::create_dir(&project).unwrap();
        fs_err::write(project.join("requirements.txt"), "flask==3.1.3\n").unwrap();
        fs_err::write(project.join("app.py"), "from flask import Flask\napp = Flask(__name__)\n").unwrap();
        let cache = dir.path().join("cache");
        let build = Build::new(&project, &cache);
        let t = Instant::now();
        let layer = build.run().unwrap();
        let cold = t.elapsed();
        assert!(!layer.reused);
        // The installer ran through the TLS-intercepting proxy with the host CA bundle, and the
        // settings pyslip gives it raise no warning of their own.
        assert!(!layer.log.contains("warning"), "installer warned:\n{}", layer.log);
        assert!(layer.blob_path.starts_with(fs_err::canonicalize(&cache).unwrap().join("blobs-v1/sha256")));
        let out = python_in(&layer, &build.base, dir.path(), "import flask, importlib.metadata as m; print(m.version('flask'))");
        assert_eq!(stdout(&out).trim(), "3.1.3", "{}", stdout(&out));
        let list = listing(&layer.blob_path);
        assert!(list.contains("usr/local/bin/flask"), "console script in the image's bin: {list}");
        assert!(list.contains("__pycache__/") && list.contains(".cpython-311.pyc"), "bytecode compiled at build");
        // Everything the install added lives under the interpreter's prefix (site-packages, bin).
        let outside: Vec<&str> = list
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .filter(|p| !p.starts_with("usr/") && *p != "usr/")
            .collect();
        assert!(outside.is_empty(), "entries outside usr/: {outside:?}");
        for bad in [".pyslip", " tmp/", "root/.cache", "var/cache", "etc/resolv.conf"] {
            assert!(!list.contains(bad), "{bad} leaked into the layer:\n{list}");
        }

        // Warm uv cache, no layer cache: the install again.
        let mut warm = Build::new(&project, &cache);
        warm.no_cache = true;
        let t = Instant::now();
        let again = warm.run().unwrap();
        let warm_time = t.elapsed();
        assert_eq!(again.layer.digest, layer.layer.digest);

        let mut hit = Build::new(&project, &cache);
        hit.base = dir.path().join("no-such-base");
        let t = Instant::now();
        let reused = hit.run().unwrap();
        let hit_time = t.elapsed();
        assert!(reused.reused);
        assert_eq!(reused.layer, layer.layer);
        eprintln!("TIMING flask requirements: cold {cold:?}, warm uv cache {warm_time:?}, cache hit {hit_time:?}");
    }
}

rootless_test! {
    /// Two builds from clean caches give byte-identical layers, including a package built from
    /// an sdist (docopt has no wheel) and its bytecode.
    fn two_clean_builds_give_identical_layers_with_an_sdist() {
        let dir = tempdir();
        let project = dir.path().join("app");
        fs_err::create_dir(&project).unwrap();
        fs_err::write(project.join("requirements.txt"), "docopt==0.6.2\nitsdangerous==2.2.0\n").unwrap();
        fs_err::write(project.join("main.py"), "import docopt\n").unwrap();
        let a = Build::new(&project, &dir.path().join("cache-a")).run().unwrap();
        let b = Build::new(&project, &dir.path().join("cache-b")).run().unwrap();
        let (la, lb) = (listing(&a.blob_path), listing(&b.blob_path));
        assert_eq!(la, lb);
        assert!(la.contains("docopt.py") && la.contains("docopt.cpython-311.pyc"), "{la}");
        assert_eq!(a.layer, b.layer, "layer digests differ");
        let out = python_in(&a, &Build::new(&project, &dir.path().join("cache-a")).base, dir.path(), "import docopt; print(docopt.__version__)");
        assert_eq!(stdout(&out).trim(), "0.6.2", "{}", stdout(&out));
    }
}

rootless_test! {
    /// uv.lock app: exactly the locked versions in the dependency layer, and the project itself,
    /// non-editable, in a project layer of its own that holds nothing else.
    fn uv_lock_app_installs_locked_versions_and_the_project() {
        let dir = tempdir();
        let build = Build::new(&common::app("fastapi-uv"), &dir.path().join("cache"));
        let layer = build.run().unwrap();
        let deps_list = listing(&layer.blob_path);
        assert!(!deps_list.contains("/uvapp"), "the project is not in the dependency layer:\n{deps_list}");
        let project = build.project(&layer).unwrap().expect("a project layer");
        assert!(!project.reused && project.created_by.contains("--no-deps"), "{}", project.created_by);
        let lock = fs_err::read_to_string(common::app("fastapi-uv/uv.lock")).unwrap();
        let fastapi = locked_version(&lock, "fastapi");
        let out = python_over(&build, &[&layer, &project], dir.path(), "import importlib.metadata as m, uvapp, uvapp.main; print(m.version('fastapi'), m.version('uvapp'), uvapp.__file__)");
        let said = stdout(&out);
        let (versions, file) = said.trim().rsplit_once(' ').unwrap();
        assert_eq!(versions, format!("{fastapi} 0.1.0"), "{said}");
        assert!(
            file.starts_with("/usr/local/lib/python3.11/") && file.ends_with("-packages/uvapp/__init__.py"),
            "installed non-editable into the system site-packages: {said}"
        );
        assert!(!deps_list.contains("/_pytest/"), "dev group left out");
        // The project layer: the package, its metadata and bytecode, nothing of the dependencies.
        let list = listing(&project.blob_path);
        for line in list.lines().filter(|l| !l.ends_with('/')) {
            let path = line.split_whitespace().last().unwrap();
            assert!(
                path.contains("-packages/uvapp/") || path.contains("-packages/uvapp-0.1.0.dist-info/"),
                "{path} in the project layer:\n{list}"
            );
        }
        assert!(list.contains("uvapp/__pycache__/main.cpython-311.pyc"), "bytecode compiled: {list}");
    }
}

fn locked_version(lock: &str, name: &str) -> String {
    let marker = format!("name = \"{name}\"\nversion = \"");
    let (_, rest) = lock.split_once(&marker).unwrap();
    rest.split('"').next().unwrap().to_owned()
}

rootless_test! {
    /// A uv.lock that no longer matches pyproject.toml fails with the hint to run `uv lock`.
    fn stale_uv_lock_fails_with_hint() {
        let dir = tempdir();
        let project = copy_app("fastapi-uv", dir.path());
        let py = fs_err::read_to_string(project.join("pyproject.toml")).unwrap();
        fs_err::write(project.join("pyproject.toml"), py.replace("\"uvicorn>=0.30\",", "\"uvicorn>=0.30\",\n    \"docopt\",")).unwrap();
        let err = Build::new(&project, &dir.path().join("cache")).run().unwrap_err();
        assert!(err.hint().unwrap_or_default().contains("uv lock"), "{err}: {:?}", err.hint());
        assert!(!dir.path().join("cache/deps-v1").exists() || fs_err::read_dir(dir.path().join("cache/deps-v1")).unwrap().next().is_none(), "nothing recorded");
    }
}

rootless_test! {
    /// Pipfile.lock app: exactly the lock's default packages; a stale lock fails with the hint.
    fn pipfile_lock_app_installs_locked_versions_and_stale_lock_fails() {
        let dir = tempdir();
        let build = Build::new(&common::app("flask-pipenv"), &dir.path().join("cache"));
        let layer = build.run().unwrap();
        let out = python_in(&layer, &build.base, dir.path(), "import importlib.metadata as m; print(m.version('flask'), m.version('waitress'))");
        assert_eq!(stdout(&out).trim(), "3.1.3 3.0.2", "{}", stdout(&out));
        assert!(!listing(&layer.blob_path).contains("/_pytest/"));

        let project = copy_app("flask-pipenv", dir.path());
        let pipfile = fs_err::read_to_string(project.join("Pipfile")).unwrap();
        fs_err::write(project.join("Pipfile"), pipfile.replace("waitress = \"==3.0.2\"", "waitress = \"*\"")).unwrap();
        let err = Build::new(&project, &dir.path().join("cache")).run().unwrap_err();
        assert!(err.hint().unwrap_or_default().contains("pipenv lock"), "{err}");
    }
}

rootless_test! {
    /// poetry.lock app (package-mode = false): the main group at its locked versions only.
    fn poetry_lock_app_installs_main_group() {
        let dir = tempdir();
        let build = Build::new(&common::app("fastapi-poetry"), &dir.path().join("cache"));
        let layer = build.run().unwrap();
        let lock = fs_err::read_to_string(common::app("fastapi-poetry/poetry.lock")).unwrap();
        let fastapi = locked_version(&lock, "fastapi");
        let out = python_in(&layer, &build.base, dir.path(), "import importlib.metadata as m; print(m.version('fastapi'))");
        assert_eq!(stdout(&out).trim(), fastapi, "{}", stdout(&out));
        assert!(!listing(&layer.blob_path).contains("/_pytest/"), "dev group left out");
    }
}
