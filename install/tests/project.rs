//! The project's own package in a layer of its own: an app-code change leaves the dependency
//! layer alone. Real installs from PyPI, run rootless as the test user.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::{Build, copy_app, python_over, tempdir};

fn output(out: &pyslip_sandbox::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

rootless_test! {
    /// Changing only a project source file keeps the dependency layer's key and digest (a cache
    /// hit) and gives a new project layer with the new code; an unchanged rebuild reuses both.
    fn project_code_change_rebuilds_only_the_project_layer() {
        let dir = tempdir();
        let cache = dir.path().join("cache");
        let project = copy_app("fastapi-uv", dir.path());
        let build = Build::new(&project, &cache);
        assert!(pyslip_install::has_project_layer(&build.request()).unwrap());
        let deps = build.run().unwrap();
        let t = Instant::now();
        let first = build.project(&deps).unwrap().unwrap();
        let cold_project = t.elapsed();
        assert!(!first.reused);

        let t = Instant::now();
        let deps_again = Build::new(&project, &cache).run().unwrap();
        let again = Build::new(&project, &cache).project(&deps_again).unwrap().unwrap();
        let noop = t.elapsed();
        assert!(deps_again.reused && again.reused, "unchanged rebuild reuses both layers");
        assert_eq!(again.layer, first.layer);

        let main = project.join("src/uvapp/main.py");
        let code = fs_err::read_to_string(&main).unwrap();
        fs_err::write(&main, format!("{code}\nPYSLIP_MARKER = 'changed-7731'\n")).unwrap();
        let changed = Build::new(&project, &cache);
        assert_eq!(pyslip_install::cache_key(&changed.request()).unwrap(), deps.key, "deps key unchanged");
        let t = Instant::now();
        let deps_after = changed.run().unwrap();
        let project_after = changed.project(&deps_after).unwrap().unwrap();
        let code_change = t.elapsed();
        assert!(deps_after.reused, "the dependency install did not run again");
        assert_eq!(deps_after.layer, deps.layer);
        assert!(!project_after.reused);
        assert_ne!(project_after.key, first.key);
        assert_ne!(project_after.layer.digest, first.layer.digest);
        let out = python_over(&changed, &[&deps_after, &project_after], dir.path(), "import uvapp.main as m; print(m.PYSLIP_MARKER)");
        assert_eq!(output(&out).trim(), "changed-7731", "{}", output(&out));
        eprintln!("TIMING project layer: first {cold_project:?} (incl. unpacking the deps root), no-op rebuild {noop:?}, code change {code_change:?}");
    }
}
