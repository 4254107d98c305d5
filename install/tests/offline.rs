//! Locked installs try the package cache alone first (`uv … --offline`): a rebuild whose pinned
//! files are all cached revalidates no index page, and a cache that lacks one falls back to the
//! online install; both give the same layer. As the unprivileged test user.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Build, app, copy_app, tempdir};

/// How many times the log shows the pinned install run: offline, and online.
fn runs(log: &str) -> (usize, usize) {
    let installs: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("$ uv pip install") && l.contains("--require-hashes"))
        .collect();
    let offline = installs
        .iter()
        .filter(|l| l.ends_with("--offline --no-build"))
        .count();
    (offline, installs.len() - offline)
}

fn offline_when_cached(project: &std::path::Path) {
    let dir = tempdir();
    let build = Build::on_base(project, &dir.path().join("cache"), "3.13");

    // An empty package cache: the offline attempt fails, the online install runs.
    let first = build.run().unwrap();
    assert_eq!(runs(&first.log), (1, 1), "log:\n{}", first.log);

    // Everything pinned is cached now: the offline attempt is the install.
    fs_err::remove_dir_all(build.cache.join("deps-v1")).unwrap();
    let second = build.run().unwrap();
    assert!(!second.reused);
    assert_eq!(runs(&second.log), (1, 0), "log:\n{}", second.log);
    assert_eq!(second.layer.digest, first.layer.digest);
}

rootless_test! {
    /// uv.lock (exported, then installed hash-pinned).
    fn uv_lock_installs_offline_when_its_files_are_cached() {
        offline_when_cached(&app("fastapi-uv"));
    }
}

rootless_test! {
    /// poetry.lock (pyslip writes the hash-pinned requirements).
    fn poetry_lock_installs_offline_when_its_files_are_cached() {
        let dir = tempdir();
        offline_when_cached(&copy_app("fastapi-poetry", dir.path()));
    }
}

rootless_test! {
    /// Unpinned requirements always resolve online: a range must see the index as it is now.
    fn requirements_are_never_tried_offline() {
        let dir = tempdir();
        let project = copy_app("flask-requirements", dir.path());
        let build = Build::on_base(&project, &dir.path().join("cache"), "3.13");
        let layer = build.run().unwrap();
        assert!(!layer.log.contains("--offline"), "log:\n{}", layer.log);
        assert!(layer.log.contains("$ uv pip install"), "log:\n{}", layer.log);
    }
}
