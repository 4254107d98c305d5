//! The namespace-free install gives the same layer bytes as the sandbox, for every package
//! manager: each app is installed both ways from empty layer caches (sharing only the package
//! caches) and the digests are compared. Run as the unprivileged test user.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{Build, app, copy_app, listing, tempdir};
use pyslip_install::Isolation;

/// Installs `project` with `isolation` into the layer cache `cache`, rebuilding even when the
/// cache has the layers (so both installs share only the package caches); returns (deps
/// digest, project digest).
fn install(project: &Path, isolation: Isolation, python: &str, cache: &Path) -> (String, String) {
    let mut build = Build::on_base(project, cache, python);
    build.isolation = isolation;
    build.no_cache = true;
    let deps = build
        .run()
        .unwrap_or_else(|e| panic!("{isolation:?} install of {}: {e:?}", project.display()));
    let project_layer = build.project(&deps).unwrap();
    (
        deps.layer.digest.to_string(),
        project_layer
            .map(|p| p.layer.digest.to_string())
            .unwrap_or_default(),
    )
}

fn same_both_ways(project: &Path, python: &str) {
    let work = tempdir();
    let cache = work.path().join("cache");
    let ns = install(project, Isolation::Namespaces, python, &cache);
    let none = install(project, Isolation::None, python, &cache);
    if ns != none {
        let (a, b) = if ns.0 == none.0 {
            (&ns.1, &none.1)
        } else {
            (&ns.0, &none.0)
        };
        // Kept for a look at the two layers.
        let kept = work.keep();
        panic!(
            "{}: sandbox {ns:?} vs namespace-free {none:?} (cache kept in {})\n--- sandbox\n{}\n--- namespace-free\n{}",
            project.display(),
            kept.display(),
            blob_listing(&cache, a),
            blob_listing(&cache, b)
        );
    }
}

fn blob_listing(cache: &Path, digest: &str) -> String {
    listing(
        &cache
            .join("blobs-v1/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
}

rootless_test! {
    /// requirements.txt with console scripts (flask, gunicorn) and an sdist (docopt).
    fn requirements_with_scripts_and_an_sdist_match() {
        let dir = tempdir();
        let project = copy_app("flask-requirements", dir.path());
        let reqs = fs_err::read_to_string(project.join("requirements.txt")).unwrap();
        fs_err::write(project.join("requirements.txt"), format!("{reqs}docopt==0.6.2\n")).unwrap();
        same_both_ways(&project, "3.13");
    }
}

rootless_test! {
    /// uv.lock with the project's own package in a layer of its own (direct_url.json, RECORD).
    fn uv_lock_and_project_layer_match() {
        same_both_ways(&app("fastapi-uv"), "3.13");
    }
}

rootless_test! {
    /// poetry.lock and Pipfile.lock (hash-checked requirements from the locks).
    fn poetry_and_pipenv_locks_match() {
        same_both_ways(&app("fastapi-poetry"), "3.11");
        same_both_ways(&app("flask-pipenv"), "3.11");
    }
}

rootless_test! {
    /// `--installer pip`: the image's own pip run for the root.
    fn pip_installer_matches() {
        let dir = tempdir();
        let project = copy_app("flask-requirements", dir.path());
        fs_err::write(project.join("pyslip.toml"), "installer = \"pip\"\n").unwrap();
        same_both_ways(&project, "3.13");
    }
}
