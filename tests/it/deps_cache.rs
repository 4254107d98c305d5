//! The dependency layer's cache, reproducibility and secrets, through the
//! real binary run as the unprivileged user.

use serde_json::Value;

use crate::support::{Work, env, layer, unique_repo};

fn build(
    work: &Work,
    app: &std::path::Path,
    image: &str,
    envs: &[(&str, &str)],
) -> (Value, String) {
    let run = work
        .build_with(app, &["-t", image, "--push", "--json"], envs)
        .ok();
    (run.json(), run.stderr)
}

/// Unchanged rebuild: the dependency layer is reused (no sandbox run) and the digest is the same.
/// App-only change: only the app layer is new.
#[test]
fn unchanged_rebuild_reuses_deps_and_app_change_rebuilds_only_the_app_layer() {
    let work = Work::new();
    let app = work.app("flask-requirements");
    let image = format!("{}/{}:1", env().registry, unique_repo("deps-cache"));
    let (first, _) = build(&work, &app, &image, &[]);
    assert_eq!(layer(&first, "deps")["reused"], false, "{first}");

    let (second, _) = build(&work, &app, &image, &[]);
    assert_eq!(second["digest"], first["digest"]);
    assert_eq!(layer(&second, "deps")["reused"], "local", "{second}");
    assert_eq!(second["push"]["uploaded"], 0, "{second}");

    let main = app.join("app.py");
    let mut code = std::fs::read_to_string(&main).expect("app.py");
    code.push_str("\n# an app-only change\n");
    std::fs::write(&main, code).expect("write app.py");
    let (third, _) = build(&work, &app, &image, &[]);
    assert_ne!(third["digest"], first["digest"]);
    assert_eq!(layer(&third, "deps")["reused"], "local", "{third}");
    assert_eq!(
        layer(&third, "deps")["digest"],
        layer(&first, "deps")["digest"]
    );
    assert_ne!(
        layer(&third, "app")["digest"],
        layer(&first, "app")["digest"]
    );
    // Only the app layer (and config) went up; base and deps were already there.
    for l in third["layers"].as_array().expect("layers") {
        let want = if l["origin"] == "app" {
            "uploaded"
        } else {
            "present"
        };
        assert_eq!(l["pushed"], want, "{third}");
    }
}

/// Two clean builds (separate caches) give identical dependency layers: pycs, RECORD, metadata.
#[test]
fn two_clean_builds_give_identical_dependency_layers() {
    let digests: Vec<Value> = (0..2)
        .map(|i| {
            let work = Work::new();
            let app = work.app("tornado");
            let image = format!("{}/{}:{i}", env().registry, unique_repo("deps-repro"));
            let (report, _) = build(&work, &app, &image, &[]);
            layer(&report, "deps")["digest"].clone()
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
}

/// Secrets in an index URL's credentials and in an env var appear in no layer, config, history,
/// cache key or log line.
#[test]
fn secrets_stay_out_of_layers_config_cache_and_output() {
    const URL_SECRET: &str = "idx-secret-5521";
    const ENV_SECRET: &str = "env-secret-9183";
    let work = Work::new();
    let app = work.app("flask-requirements");
    let image = format!("{}/{}:1", env().registry, unique_repo("secrets"));
    let index = format!("https://pyslip:{URL_SECRET}@pypi.org/simple");
    let (report, stderr) = build(
        &work,
        &app,
        &image,
        &[
            ("PIP_INDEX_URL", &index),
            ("UV_INDEX_URL", &index),
            (
                "PIP_EXTRA_INDEX_URL",
                &format!("https://x:{ENV_SECRET}@example.invalid/simple"),
            ),
            ("PYSLIP_TEST_TOKEN", ENV_SECRET),
        ],
    );
    let output = format!("{report}{stderr}");
    for secret in [URL_SECRET, ENV_SECRET] {
        assert!(!output.contains(secret), "{secret} in pyslip's output");
    }
    // Every file in the cache (layers gunzipped too), including the key index and the config.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd '{}' && for f in $(find . -type f); do (cat \"$f\"; zcat \"$f\" 2>/dev/null) ; done | grep -a -c -e {URL_SECRET} -e {ENV_SECRET}",
            work.cache().display()
        ))
        .output()
        .expect("scan cache");
    let hits = String::from_utf8_lossy(&status.stdout).trim().to_owned();
    assert_eq!(hits, "0", "secrets found in the cache");
}

/// A project installed as a package (uv.lock, `src/` layout): changing its code rebuilds only the
/// project and app layers; the third-party dependency layer is reused.
#[test]
fn project_code_change_reuses_the_third_party_layer() {
    let work = Work::new();
    let app = work.app("fastapi-uv");
    let image = format!("{}/{}:1", env().registry, unique_repo("project-layer"));
    let (first, _) = build(&work, &app, &image, &[]);
    let source = std::fs::read_dir(app.join("src"))
        .expect("src")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("main.py"))
        .find(|p| p.exists())
        .expect("src/<pkg>/main.py");
    let mut code = std::fs::read_to_string(&source).expect("main.py");
    code.push_str("\n# a code change\n");
    std::fs::write(&source, code).expect("write");
    let (second, _) = build(&work, &app, &image, &[]);
    assert_eq!(layer(&second, "deps")["reused"], "local", "{second}");
    assert_eq!(
        layer(&second, "deps")["digest"],
        layer(&first, "deps")["digest"]
    );
    assert_eq!(layer(&second, "project")["reused"], false, "{second}");
    assert_ne!(
        layer(&second, "project")["digest"],
        layer(&first, "project")["digest"]
    );
}
