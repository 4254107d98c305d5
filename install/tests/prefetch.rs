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
