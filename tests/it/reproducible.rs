//! Reproducibility and no-op rebuilds.

use std::process::Command;

use crate::support::{Work, base_repo, cache_blobs, env, unique_repo};

fn build_to_layout(work: &Work, app: &std::path::Path, umask: &str) -> String {
    let layout = work.path().join("layout");
    // Run through sh so the umask applies to everything pyslip creates.
    let script = format!(
        "umask {umask} && exec \"$0\" build \"$1\" --base-repo \"$2\" --python 3.11 -t repro:1 --oci-layout \"$3\" --json"
    );
    let mut cmd = work.command_as_user(std::path::Path::new("/bin/sh"));
    cmd.arg("-c")
        .arg(script)
        .arg(&work.bin)
        .arg(app)
        .arg(base_repo())
        .arg(&layout);
    let out = cmd.output().expect("run pyslip");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    report["digest"].as_str().expect("digest").to_owned()
}

/// Two builds from empty caches, with different file mtimes and umask, give
/// the same manifest digest.
#[test]
fn same_digest_across_mtimes_umask_and_empty_caches() {
    let first = Work::new();
    let app1 = first.app("stdlib");
    let second = Work::new();
    let app2 = second.app("stdlib");
    let status = Command::new("touch")
        .args(["-d", "2001-02-03 04:05:06"])
        .arg(app2.join("main.py"))
        .arg(&app2)
        .status()
        .expect("touch");
    assert!(status.success());
    let a = build_to_layout(&first, &app1, "022");
    let b = build_to_layout(&second, &app2, "077");
    assert_eq!(a, b);
}

/// A rebuild of an unchanged project pushed to the same registry uploads no
/// blob, and base layers are never downloaded when the target registry already has them.
#[test]
fn unchanged_rebuild_uploads_nothing_and_base_layers_are_never_downloaded() {
    let work = Work::new();
    let app = work.app("stdlib");
    let image = format!("{}/{}:1", env().registry, unique_repo("noop"));
    let args = [
        "build",
        app.to_str().expect("utf-8"),
        "--base-repo",
        &base_repo(),
        "--python",
        "3.13",
        "-t",
        &image,
        "--push",
        "--json",
    ];
    let first = work.pyslip(&args).ok().json();
    for layer in first["layers"].as_array().expect("layers") {
        if layer["origin"] == "base" {
            assert_eq!(layer["pushed"], "mounted", "base layer uploaded: {first}");
        }
    }
    let second = work.pyslip(&args).ok().json();
    assert_eq!(first["digest"], second["digest"]);
    assert_eq!(second["push"]["uploaded"], 0, "{second}");
    assert_eq!(second["push"]["blob_bytes_sent"], 0, "{second}");
    for layer in second["layers"].as_array().expect("layers") {
        assert_eq!(layer["pushed"], "present", "{second}");
    }
    // No base layer bytes ever reached the cache.
    let blobs = cache_blobs(&work.cache());
    for layer in first["layers"].as_array().expect("layers") {
        if layer["origin"] == "base" {
            let hex = &layer["digest"].as_str().expect("digest")[7..];
            assert!(
                !blobs.iter().any(|b| b == hex),
                "base layer {hex} was downloaded"
            );
        }
    }
}
