//! Failures: each exits non-zero with a one-line cause and a hint, leaving nothing corrupt.

use crate::support::{Work, assert_cache_blobs_verified, base_repo, env, free_port, unique_repo};

fn build_args<'a>(app: &'a str, base_repo: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["build", app, "--base-repo", base_repo, "--python", "3.11"];
    args.extend_from_slice(extra);
    args
}

#[test]
fn no_output_flag_names_the_flags_that_exist() {
    let work = Work::new();
    let app = work.app("stdlib");
    let repo = base_repo();
    let run = work
        .pyslip(&build_args(app.to_str().expect("utf-8"), &repo, &[]))
        .failed();
    let (error, hint) = run.error_and_hint();
    assert!(error.contains("no output"), "{error}");
    for flag in ["--push", "--tar", "--oci-layout"] {
        assert!(hint.contains(flag), "{hint}");
    }
}

#[test]
fn unreachable_registry_is_one_line_with_a_hint() {
    let work = Work::new();
    let app = work.app("stdlib");
    let dead = format!("127.0.0.1:{}", free_port());
    let repo = format!("{dead}/library/python");
    let out = work.path().join("x.tar");
    let run = work
        .pyslip(&build_args(
            app.to_str().expect("utf-8"),
            &repo,
            &["--tar", out.to_str().expect("utf-8")],
        ))
        .failed();
    let (error, _hint) = run.error_and_hint();
    assert!(error.contains(&dead), "{error}");
    assert!(!out.exists(), "a tarball was written");
    assert_cache_blobs_verified(&work.cache());
}

#[test]
fn missing_base_tag_names_the_tag() {
    let work = Work::new();
    let app = work.app("stdlib");
    let repo = base_repo();
    let out = work.path().join("x.tar");
    // The fixtures have no 3.12 (Debian has none); a valid version whose tag is missing.
    let run = work
        .pyslip(&[
            "build",
            app.to_str().expect("utf-8"),
            "--base-repo",
            &repo,
            "--python",
            "3.12",
            "--tar",
            out.to_str().expect("utf-8"),
        ])
        .failed();
    let (error, hint) = run.error_and_hint();
    assert!(error.contains("3.12-slim"), "{error}");
    assert!(
        hint.contains("--python") || hint.contains("--base"),
        "{hint}"
    );
    assert!(!out.exists());
}

#[test]
fn malformed_reference_is_rejected_before_any_work() {
    let work = Work::new();
    let app = work.app("stdlib");
    let repo = base_repo();
    let run = work
        .pyslip(&build_args(
            app.to_str().expect("utf-8"),
            &repo,
            &["-t", "127.0.0.1:5000/Bad Name::x", "--push"],
        ))
        .failed();
    let (error, _hint) = run.error_and_hint();
    assert!(error.contains("Bad Name::x"), "{error}");
    // Nothing was pulled or built.
    assert!(crate::support::cache_blobs(&work.cache()).is_empty());
}

#[test]
fn push_without_tag_is_an_error() {
    let work = Work::new();
    let app = work.app("stdlib");
    let repo = base_repo();
    let run = work
        .pyslip(&build_args(
            app.to_str().expect("utf-8"),
            &repo,
            &["--push"],
        ))
        .failed();
    let (error, hint) = run.error_and_hint();
    assert!(error.contains("--push"), "{error}");
    assert!(hint.contains("-t"), "{hint}");
    let _ = (env(), unique_repo("unused"));
}

/// A registry proxy that corrupts one byte of `route`'s bodies, in front of the real registry.
fn corrupting_proxy(
    route: pyslip_registry::testing::Route,
) -> (
    tokio::runtime::Runtime,
    pyslip_registry::testing::FaultServer,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(
        pyslip_registry::testing::FaultServer::builder()
            .upstream(&env().registry)
            .corrupt(route)
            .build(),
    );
    (runtime, server)
}

fn expect_digest_mismatch(route: pyslip_registry::testing::Route, what: &str) {
    let (_runtime, proxy) = corrupting_proxy(route);
    let work = Work::new();
    let app = work.app("stdlib");
    // Resolve the base once without the proxy, so its manifest and config are cached by digest
    // and only what is still fetched (the tag's manifest, the layers) crosses the proxy.
    let warm = work.path().join("warm");
    work.pyslip(&build_args(
        app.to_str().expect("utf-8"),
        &base_repo(),
        &["--oci-layout", warm.to_str().expect("utf-8")],
    ))
    .ok();
    let layer_blobs = crate::support::cache_blobs(&work.cache());
    for blob in &layer_blobs {
        // Drop the base layers (keep manifests/configs) so the build must download them again.
        let path = work.cache().join("pyslip/blobs-v1/sha256").join(blob);
        if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) > 1 << 20 {
            std::fs::remove_file(&path).expect("remove cached layer");
        }
    }
    let repo = format!("{}/library/python", proxy.registry());
    let out = work.path().join("x.tar");
    let run = work
        .pyslip(&build_args(
            app.to_str().expect("utf-8"),
            &repo,
            &["--tar", out.to_str().expect("utf-8")],
        ))
        .failed();
    let (error, hint) = run.error_and_hint();
    assert!(error.contains("digest mismatch"), "{error}");
    assert!(error.contains(what), "{error}");
    assert!(hint.contains("corrupt"), "{hint}");
    assert!(!out.exists(), "a tarball was written");
    assert_cache_blobs_verified(&work.cache());
}

/// A layer corrupted on the way fails the build; nothing corrupt is cached.
#[test]
fn corrupted_base_layer_is_a_digest_mismatch_and_nothing_is_cached() {
    expect_digest_mismatch(pyslip_registry::testing::Route::BlobGets, "layer");
}

/// The same for the manifest (the registry's Docker-Content-Digest no longer matches the body).
#[test]
fn corrupted_manifest_is_a_digest_mismatch() {
    expect_digest_mismatch(pyslip_registry::testing::Route::Manifests, "manifest");
}
