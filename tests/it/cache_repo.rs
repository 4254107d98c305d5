//! The registry-backed layer cache (`--cache-repo`), as CI runners use it: every run starts
//! with an empty cache dir (a fresh [`Work`]) and shares only the cache repository.

use std::path::Path;

use serde_json::Value;

use crate::support::{Container, Work, env, free_port, host, layer, unique_repo};

/// `pyslip build APP -t IMAGE --push --json EXTRA…` as the test user; the report and stderr.
fn build(work: &Work, app: &Path, image: &str, extra: &[&str]) -> (Value, String) {
    let mut args = vec!["-t", image, "--push", "--json"];
    args.extend_from_slice(extra);
    let run = work.build(app, &args).ok();
    (run.json(), run.stderr)
}

/// [`build`] of `testdata/apps/<app>` on a fresh runner (a work dir with an empty cache).
fn fresh_build(app: &str, image: &str, extra: &[&str]) -> (Value, String) {
    let work = Work::new();
    build(&work, &work.app(app), image, extra)
}

/// The tags of `repo` (on the open registry), sorted; empty when it does not exist yet.
fn tags(repo: &str) -> Vec<String> {
    let url = format!("http://{}/v2/{repo}/tags/list", env().registry);
    let body = host("curl", &["-s", &url]);
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut tags: Vec<String> = v["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}

/// Whether the build ran a sandbox step: the base root is unpacked (or a layer is unpacked as
/// a lower dir) only for one.
fn ran_a_step(work: &Work) -> bool {
    ["roots-v1", "layer-roots-v1"]
        .iter()
        .any(|d| work.cache().join(d).exists())
}

/// Runner A publishes deps and static layers; runner B, with an empty cache, takes both from the
/// cache repository: no sandbox, no base unpack, no layer bytes downloaded, the same image, and
/// it runs and serves its static file.
#[test]
fn a_fresh_runner_takes_every_layer_from_the_cache_repo_and_downloads_nothing() {
    let cache_repo = format!("{}/{}", env().registry, unique_repo("cache"));
    let image = format!("{}/{}", env().registry, unique_repo("cached-app"));
    let a = Work::new();
    let app = a.app("django");
    let (first, _) = build(
        &a,
        &app,
        &format!("{image}:a"),
        &["--cache-repo", &cache_repo],
    );
    assert_eq!(layer(&first, "deps")["reused"], false, "{first}");
    assert_eq!(layer(&first, "static")["reused"], false, "{first}");
    let published = tags(cache_repo.split_once('/').expect("repo").1);
    assert_eq!(
        published.len(),
        2,
        "one entry per cached layer: {published:?}"
    );
    assert!(
        published.iter().any(|t| t.starts_with("deps-")),
        "{published:?}"
    );
    assert!(
        published.iter().any(|t| t.starts_with("static-")),
        "{published:?}"
    );

    let b = Work::new();
    let app_b = b.app("django");
    let tag_b = format!("{image}:b");
    let (second, stderr) = build(&b, &app_b, &tag_b, &["--cache-repo", &cache_repo]);
    assert_eq!(layer(&second, "deps")["reused"], "cache-repo", "{second}");
    assert_eq!(layer(&second, "static")["reused"], "cache-repo", "{second}");
    assert_eq!(second["pull"]["blob_bytes_received"], 0, "{second}");
    assert_eq!(second["pull"]["blobs_fetched"], 0, "{second}");
    assert_eq!(second["digest"], first["digest"], "{second}");
    assert!(!ran_a_step(&b), "runner B unpacked a root: {stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    // Only the app layer and the config could be new to the target (here even they were
    // there); every cached layer was mounted or present, none uploaded.
    for origin in ["deps", "static"] {
        assert_ne!(layer(&second, origin)["pushed"], "uploaded", "{second}");
    }

    host("podman", &["pull", "-q", &tag_b]);
    let port = free_port();
    let container = Container::podman(&tag_b, port);
    let (status, body) = container.get(port, "/healthz");
    assert_eq!((status, body.contains("ok")), (200, true), "{body}");
    let (status, _) = container.get(port, "/static/site.css");
    assert_eq!(status, 200);
}

/// A dependency change misses, rebuilds and publishes a new entry (not in read-only mode); the
/// old entry still serves the old lock.
#[test]
fn a_dependency_change_publishes_a_new_entry_and_read_only_writes_nothing() {
    let cache_repo_path = unique_repo("cache");
    let cache_repo = format!("{}/{cache_repo_path}", env().registry);
    let image = format!("{}/{}", env().registry, unique_repo("dep-change"));
    let flag = ["--cache-repo", cache_repo.as_str()];
    let a = Work::new();
    let (first, _) = build(
        &a,
        &a.app("flask-requirements"),
        &format!("{image}:a"),
        &flag,
    );
    assert_eq!(layer(&first, "deps")["reused"], false, "{first}");
    let before = tags(&cache_repo_path);
    assert_eq!(before.len(), 1, "{before:?}");

    let bump = |work: &Work| {
        let app = work.app("flask-requirements");
        let req = app.join("requirements.txt");
        let mut text = std::fs::read_to_string(&req).expect("requirements.txt");
        text.push_str("six==1.17.0\n");
        std::fs::write(&req, text).expect("write requirements.txt");
        app
    };
    let readonly = Work::new();
    let mut args = flag.to_vec();
    args.push("--cache-repo-readonly");
    let (ro, stderr) = build(&readonly, &bump(&readonly), &format!("{image}:ro"), &args);
    assert_eq!(layer(&ro, "deps")["reused"], false, "{ro}");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert_eq!(
        tags(&cache_repo_path),
        before,
        "read-only mode wrote to the cache repo"
    );

    let c = Work::new();
    let (bumped, _) = build(&c, &bump(&c), &format!("{image}:c"), &flag);
    assert_eq!(layer(&bumped, "deps")["reused"], false, "{bumped}");
    let after = tags(&cache_repo_path);
    assert_eq!(after.len(), 2, "no new entry for the new lock: {after:?}");
    assert!(before.iter().all(|t| after.contains(t)));
    assert_ne!(
        layer(&bumped, "deps")["digest"],
        layer(&first, "deps")["digest"]
    );

    let (old, _) = fresh_build("flask-requirements", &format!("{image}:d"), &flag);
    assert_eq!(layer(&old, "deps")["reused"], "cache-repo", "{old}");
    assert_eq!(
        layer(&old, "deps")["digest"],
        layer(&first, "deps")["digest"]
    );
    assert_eq!(old["digest"], first["digest"]);
}

/// Two runners publishing the same key at once both succeed: two builds of one app from empty
/// cache dirs, started together, both build the layer, both publish it and exit 0 without a
/// warning (a failed publish warns and goes on); the cache repository holds one entry, and a
/// third runner takes the layer from it.
#[test]
fn two_runners_publishing_the_same_key_at_once_both_succeed() {
    let cache_repo_path = unique_repo("cache");
    let cache_repo = format!("{}/{cache_repo_path}", env().registry);
    let image = format!("{}/{}", env().registry, unique_repo("race"));
    let flag = ["--cache-repo", cache_repo.as_str()];
    let runners = [Work::new(), Work::new()];
    let apps: Vec<_> = runners
        .iter()
        .map(|w| w.app("flask-requirements"))
        .collect();
    let start = std::sync::Barrier::new(runners.len());
    let runs: Vec<(Value, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = runners
            .iter()
            .zip(&apps)
            .enumerate()
            .map(|(i, (work, app))| {
                let (start, image, flag) = (&start, &image, &flag);
                scope.spawn(move || {
                    start.wait();
                    build(work, app, &format!("{image}:{i}"), flag)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a runner's build failed"))
            .collect()
    });
    for (report, stderr) in &runs {
        // Both missed and built: both published.
        assert_eq!(layer(report, "deps")["reused"], false, "{report}");
        assert!(!stderr.contains("warning"), "{stderr}");
    }
    assert_eq!(runs[0].0["digest"], runs[1].0["digest"]);
    let published = tags(&cache_repo_path);
    assert_eq!(published.len(), 1, "{published:?}");
    assert!(published[0].starts_with("deps-"), "{published:?}");

    let (report, stderr) = fresh_build("flask-requirements", &format!("{image}:third"), &flag);
    assert_eq!(layer(&report, "deps")["reused"], "cache-repo", "{report}");
    assert_eq!(report["digest"], runs[0].0["digest"]);
    assert!(!stderr.contains("warning"), "{stderr}");
}

/// An unreachable cache repo and one that refuses us (401) each cost one warning line; the
/// build goes on locally.
#[test]
fn an_unreachable_or_unauthorised_cache_repo_warns_once_and_the_build_goes_on() {
    let work = Work::new();
    let app = work.app("flask-requirements");
    let image = format!("{}/{}:1", env().registry, unique_repo("cache-down"));
    let closed = format!("127.0.0.1:{}/t/cache", free_port());
    let (report, stderr) = build(&work, &app, &image, &["--cache-repo", &closed]);
    assert_eq!(layer(&report, "deps")["reused"], false, "{report}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: cache repo"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains(&closed), "{stderr}");

    // The auth registry without credentials: the publish of the (locally cached) layer is refused.
    let refused = format!("{}/{}", env().auth_registry, unique_repo("cache"));
    let (report, stderr) = build(&work, &app, &image, &["--cache-repo", &refused]);
    assert_eq!(layer(&report, "deps")["reused"], "local", "{report}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: cache repo"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
}

/// PUT `manifest` under `repo:tag` on the open registry.
fn put_manifest(repo: &str, tag: &str, manifest: &Value) {
    let url = format!("http://{}/v2/{repo}/manifests/{tag}", env().registry);
    let body = manifest.to_string();
    let status = host(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
            "--data-binary",
            &body,
            &url,
        ],
    );
    assert_eq!(status, "201", "PUT {url}");
}

fn get_manifest(repo: &str, tag: &str) -> Value {
    let url = format!("http://{}/v2/{repo}/manifests/{tag}", env().registry);
    let accept = "Accept: application/vnd.oci.image.manifest.v1+json";
    serde_json::from_str(&host("curl", &["-sf", "-H", accept, &url])).expect("manifest")
}

/// The tag and manifest of the dependency entry in the cache repository `repo`.
fn deps_entry(repo: &str) -> (String, Value) {
    let tag = tags(repo)
        .into_iter()
        .find(|t| t.starts_with("deps-"))
        .expect("deps entry");
    let manifest = get_manifest(repo, &tag);
    (tag, manifest)
}

/// Puts `entry` back under `repo:tag` with its stated diff_id rewritten: mounting the layer
/// cannot tell, a download does.
fn put_with_a_wrong_diff_id(repo: &str, tag: &str, entry: &Value) {
    let mut lying = entry.clone();
    lying["annotations"]["dev.pyslip.cache.diff-id"] =
        Value::from(format!("sha256:{}", "0".repeat(64)));
    put_manifest(repo, tag, &lying);
}

/// A tampered entry is never used: one whose layer is not the blob its annotations name is
/// refused on sight; one whose stated diff_id is wrong is caught when its blob is downloaded
/// (a tarball output needs the bytes). Both builds install locally instead.
#[test]
fn a_tampered_entry_is_detected_and_not_used() {
    let cache_repo_path = unique_repo("cache");
    let cache_repo = format!("{}/{cache_repo_path}", env().registry);
    let flag = ["--cache-repo", cache_repo.as_str()];
    let image = format!("{}/{}", env().registry, unique_repo("tampered"));
    let a = Work::new();
    let (first, _) = build(
        &a,
        &a.app("flask-requirements"),
        &format!("{image}:a"),
        &flag,
    );
    let (entry_tag, genuine) = deps_entry(&cache_repo_path);

    // The layer swapped for another blob of the repository (the empty config).
    let mut swapped = genuine.clone();
    swapped["layers"][0]["digest"] = genuine["config"]["digest"].clone();
    swapped["layers"][0]["size"] = genuine["config"]["size"].clone();
    put_manifest(&cache_repo_path, &entry_tag, &swapped);
    let (report, stderr) = fresh_build("flask-requirements", &format!("{image}:b"), &flag);
    assert_eq!(layer(&report, "deps")["reused"], false, "{report}");
    assert!(
        stderr.contains("is not the blob its annotations name"),
        "{stderr}"
    );
    assert_eq!(
        report["digest"], first["digest"],
        "the rebuilt image differs"
    );

    // The stated diff_id rewritten: mounting cannot tell, a download does.
    put_with_a_wrong_diff_id(&cache_repo_path, &entry_tag, &genuine);
    let c = Work::new();
    let tar = c.path().join("run").join("image.tar");
    let tar_arg = tar.to_str().expect("utf-8");
    let run = c
        .build(
            &c.app("flask-requirements"),
            &["--tar", tar_arg, "--json", "--cache-repo", &cache_repo],
        )
        .ok();
    let report = run.json();
    assert_eq!(layer(&report, "deps")["reused"], false, "{report}");
    assert!(run.stderr.contains("has diff_id"), "{}", run.stderr);
    assert_eq!(report["digest"], first["digest"]);
}

/// collectstatic needs the bytes of the layers it runs over: a dependency entry whose stated
/// diff_id is wrong is caught when its blob is downloaded for that, and the build installs the
/// dependencies here and runs collectstatic over them (it used to stop).
#[test]
fn a_tampered_entry_below_collectstatic_is_installed_here_instead() {
    let cache_repo_path = unique_repo("cache");
    let cache_repo = format!("{}/{cache_repo_path}", env().registry);
    let flag = ["--cache-repo", cache_repo.as_str()];
    let image = format!("{}/{}", env().registry, unique_repo("tampered-django"));
    let a = Work::new();
    let (first, _) = build(&a, &a.app("django"), &format!("{image}:a"), &flag);
    let (entry_tag, genuine) = deps_entry(&cache_repo_path);
    put_with_a_wrong_diff_id(&cache_repo_path, &entry_tag, &genuine);

    // A static file changed: the static layer misses, the dependency entry hits.
    let b = Work::new();
    let app = b.app("django");
    let css = app.join("static/site.css");
    let text = fs_err::read_to_string(&css).expect("site.css");
    fs_err::write(&css, format!("{text}\nbody {{ margin: 0 }}\n")).expect("write site.css");
    let tag_b = format!("{image}:b");
    let (report, stderr) = build(&b, &app, &tag_b, &flag);
    assert!(stderr.contains("has diff_id"), "{stderr}");
    assert!(
        stderr.contains("installing the dependencies here"),
        "{stderr}"
    );
    assert_eq!(layer(&report, "deps")["reused"], false, "{report}");
    assert_eq!(layer(&report, "static")["reused"], false, "{report}");
    assert_eq!(
        layer(&report, "deps")["digest"],
        layer(&first, "deps")["digest"],
        "the dependencies installed here differ from the genuine entry"
    );

    host("podman", &["pull", "-q", &tag_b]);
    let port = free_port();
    let container = Container::podman(&tag_b, port);
    let (status, body) = container.get(port, "/static/site.css");
    assert_eq!(status, 200);
    assert!(body.contains("margin: 0"), "{body}");
}
