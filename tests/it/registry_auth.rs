//! Pushing to the htpasswd-protected registry, with and without `podman login` credentials.

use crate::support::{Work, env, unique_repo};

/// Credentials written by `podman login` are used for the push.
#[test]
fn push_with_podman_login_credentials() {
    let work = Work::new();
    let app = work.app("stdlib");
    let e = env();
    work.podman_login(&e.auth_registry, &e.auth_user, &e.auth_password);
    let image = format!("{}/{}:1", e.auth_registry, unique_repo("auth"));
    let report = work
        .build(
            &app,
            &["--python", "3.11", "-t", &image, "--push", "--json"],
        )
        .ok()
        .json();
    assert_eq!(report["refs"][0], serde_json::json!(image));
    // Cross-registry: the base layers had to be sent to the other registry once.
    let copied = report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter(|l| l["origin"] == "base")
        .all(|l| l["pushed"] == "copied" || l["pushed"] == "present");
    assert!(copied, "{report}");
}

/// Without credentials the push fails with one line naming the registry and
/// "unauthorized", plus a hint.
#[test]
fn push_without_credentials_fails_with_one_clear_line() {
    let work = Work::new();
    let app = work.app("stdlib");
    let e = env();
    let image = format!("{}/{}:1", e.auth_registry, unique_repo("noauth"));
    let run = work
        .build(&app, &["--python", "3.11", "-t", &image, "--push"])
        .failed();
    let (error, hint) = run.error_and_hint();
    assert!(error.contains(&e.auth_registry), "{error}");
    assert!(error.contains("unauthorized"), "{error}");
    assert!(hint.contains("login"), "{hint}");
}
