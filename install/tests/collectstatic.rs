//! Django's collectstatic at build time, run rootless as the test user over a real install from
//! PyPI (testdata/apps/django: whitenoise, STATIC_ROOT = BASE_DIR / "staticfiles").

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::{Build, copy_app, listing, tempdir};
use pyslip_install::{DepsLayer, StaticRequest, collectstatic_layer, lookup_static};

fn static_request<'a>(build: &'a Build, layers: &'a [&'a DepsLayer]) -> StaticRequest<'a> {
    StaticRequest {
        project_dir: &build.project,
        plan: &build.plan,
        layers,
        base_root: &build.base,
        base_digest: &build.digest,
        platform: "linux/amd64",
        cache_dir: &build.cache,
        no_cache: build.no_cache,
        mtime: 0,
        isolation: build.isolation,
    }
}

/// `(mode, owner, path)` of every entry of a `tar -tv` listing.
fn entries(list: &str) -> Vec<(String, String, String)> {
    list.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_owned(),
                f[1].to_owned(),
                f.last().unwrap().trim_end_matches('/').to_owned(),
            )
        })
        .collect()
}

/// GETs through Django's middleware (whitenoise serves STATIC_ROOT).
const SERVE: &str = "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\nimport django\ndjango.setup()\nfrom django.test import Client\nc = Client()\nprint(*(c.get(p).status_code for p in ['/healthz', '/static/site.css', '/static/admin/css/base.css']))\n";

/// Runs `argv` in /app (the project's files) over `layers` (lowest first) and the base; returns
/// (success, stdout + stderr).
fn run_app(
    build: &Build,
    layers: &[&DepsLayer],
    scratch: &std::path::Path,
    argv: &[&str],
) -> (bool, String) {
    let n = std::fs::read_dir(scratch).unwrap().count();
    let stage = scratch.join(format!("stage-{n}"));
    fs_err::create_dir(&stage).unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-r")
        .arg(&build.project)
        .arg(stage.join("app"))
        .status()
        .unwrap();
    assert!(copied.success());
    let mut lower = vec![stage.clone()];
    for layer in layers.iter().rev() {
        lower.push(pyslip_install::layer_root(&build.cache, layer).unwrap());
    }
    lower.push(build.base.clone());
    // overlayfs takes at most 255 bytes of lowerdir list: mount short aliases.
    let links = tempfile::Builder::new()
        .prefix("l")
        .tempdir_in("/tmp")
        .unwrap();
    let lower: Vec<std::path::PathBuf> = lower
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let link = links.path().join(i.to_string());
            std::os::unix::fs::symlink(dir, &link).unwrap();
            link
        })
        .collect();
    let (upper, work) = (
        scratch.join(format!("upper-{n}")),
        scratch.join(format!("work-{n}")),
    );
    fs_err::create_dir(&upper).unwrap();
    fs_err::create_dir(&work).unwrap();
    let sandbox = pyslip_sandbox::Sandbox {
        lower,
        upper,
        work: work.clone(),
        mounts: Vec::new(),
        env: vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("HOME".into(), "/root".into()),
            ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
        ],
        cwd: "/app".into(),
        hostname: String::new(),
    };
    let argv: Vec<String> = argv.iter().map(|a| (*a).to_owned()).collect();
    let out = sandbox
        .run(&argv, pyslip_sandbox::Stdio::Capture { limit: 1 << 20 })
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    let _ = fs_err::set_permissions(work.join("work"), std::fs::Permissions::from_mode(0o700));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

rootless_test! {
    /// The layer holds the collected admin CSS and the app's own static file (hashed and
    /// compressed by whitenoise) under app/staticfiles, owned by 1000:1000, and nothing else;
    /// the app over it passes `manage.py check` and serves the files; the second call is a cache
    /// hit without the sandbox; a clean re-run gives the same digest.
    fn django_collectstatic_layer_holds_static_root_only_and_is_cached_and_reproducible() {
        let dir = tempdir();
        let cache = dir.path().join("cache");
        let build = Build::for_plan_python(&common::app("django"), &cache);
        assert!(pyslip_install::runs_collectstatic(&build.plan));
        let deps = build.run().unwrap();
        let layers = [&deps];

        let t = Instant::now();
        let layer = collectstatic_layer(&static_request(&build, &layers)).unwrap().unwrap();
        let cold = t.elapsed();
        assert!(!layer.reused);
        assert!(layer.created_by.contains("python manage.py collectstatic --noinput"), "{}", layer.created_by);
        let list = listing(&layer.blob_path);
        let found = entries(&list);
        let paths: Vec<&str> = found.iter().map(|(_, _, p)| p.as_str()).collect();
        assert!(paths.contains(&"app/staticfiles/admin/css/base.css"), "{list}");
        assert!(paths.contains(&"app/staticfiles/site.css"), "the app's STATICFILES_DIRS file: {list}");
        assert!(paths.contains(&"app/staticfiles/staticfiles.json"), "whitenoise's manifest: {list}");
        assert!(paths.iter().any(|p| p.starts_with("app/staticfiles/site.") && p.ends_with(".css") && *p != "app/staticfiles/site.css"), "hashed copy: {list}");
        assert!(paths.iter().any(|p| p.starts_with("app/staticfiles/admin/css/base.") && p.ends_with(".css.gz")), "compressed by whitenoise: {list}");
        for (mode, owner, path) in &found {
            assert!(*path == "app" || path.starts_with("app/staticfiles"), "{path} outside the static root:\n{list}");
            assert!(!path.contains("__pycache__") && !path.ends_with(".pyc"), "{path}");
            assert_eq!(owner, "1000/1000", "{path} not owned by the runtime user");
            if path == "app" {
                assert_eq!(mode, "drwxr-xr-x", "/app as the app layer has it");
            }
        }

        // Cache hit: the base root is not needed.
        let mut hit = Build::for_plan_python(&common::app("django"), &cache);
        hit.base = dir.path().join("no-such-base");
        let t = Instant::now();
        let again = collectstatic_layer(&static_request(&hit, &layers)).unwrap().unwrap();
        let hit_time = t.elapsed();
        assert!(again.reused);
        assert_eq!(again.layer, layer.layer);
        assert_eq!(lookup_static(&static_request(&hit, &layers)).unwrap().unwrap().layer, layer.layer);

        // A clean re-run (the layer root of the deps is reused) gives the same bytes.
        let mut clean = Build::for_plan_python(&common::app("django"), &cache);
        clean.no_cache = true;
        let t = Instant::now();
        let rerun = collectstatic_layer(&static_request(&clean, &layers)).unwrap().unwrap();
        let warm = t.elapsed();
        assert!(!rerun.reused);
        assert_eq!(rerun.layer, layer.layer, "collectstatic output differs between runs");
        // The app over its layers: Django's checks pass, and whitenoise serves the collected files.
        let check = run_app(&build, &[&deps, &layer], dir.path(), &["python", "manage.py", "check"]);
        assert!(check.0, "manage.py check: {}", check.1);
        let served = run_app(&build, &[&deps, &layer], dir.path(), &["python", "-c", SERVE]);
        assert_eq!(served.1.trim(), "200 200 200", "{}", served.1);
        eprintln!("TIMING django collectstatic: first {cold:?} (incl. unpacking the deps root), re-run {warm:?}, cache hit {hit_time:?}");

        // Without namespaces (the installer and Django run for the root from the host): the
        // same bytes.
        let mut bare = Build::for_plan_python(&common::app("django"), &cache);
        bare.no_cache = true;
        bare.isolation = pyslip_install::Isolation::None;
        let bare_deps = bare.run().unwrap();
        assert_eq!(bare_deps.layer, deps.layer, "the dependency layer differs without namespaces");
        let bare_layers = [&bare_deps];
        let bare_static = collectstatic_layer(&static_request(&bare, &bare_layers)).unwrap().unwrap();
        assert_eq!(bare_static.layer, layer.layer, "collectstatic without namespaces differs");
    }
}

rootless_test! {
    /// A settings error fails the build with Django's own message and the hint to skip the
    /// step; nothing is recorded. A changed app file changes the key.
    fn django_settings_error_fails_with_djangos_message() {
        let dir = tempdir();
        let cache = dir.path().join("cache");
        let project = copy_app("django", dir.path());
        let good = Build::for_plan_python(&project, &cache);
        let deps = good.run().unwrap();
        let layers = [&deps];
        let good_key = pyslip_install::static_key(&static_request(&good, &layers)).unwrap();

        let settings = project.join("mysite/settings.py");
        let text = fs_err::read_to_string(&settings).unwrap();
        fs_err::write(&settings, text.replace("STATICFILES_DIRS = [BASE_DIR / \"static\"]", "STATICFILES_DIRS = [BASE_DIR / \"static\", STATIC_ROOT]")).unwrap();
        let bad = Build::for_plan_python(&project, &cache);
        assert_ne!(pyslip_install::static_key(&static_request(&bad, &layers)).unwrap(), good_key);
        let err = collectstatic_layer(&static_request(&bad, &layers)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("collectstatic") && msg.contains("(staticfiles.E002) The STATICFILES_DIRS setting should not contain the STATIC_ROOT setting"), "{msg}");
        let hint = err.hint().unwrap_or_default();
        assert!(hint.contains("collectstatic = false") && hint.contains("DISABLE_COLLECTSTATIC=1"), "{hint}");
        let index = cache.join("static-v1");
        assert!(!index.exists() || fs_err::read_dir(&index).unwrap().next().is_none(), "nothing recorded");
    }
}
