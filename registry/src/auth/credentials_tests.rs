use super::*;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn basic(u: &str, p: &str) -> Option<Credential> {
    Some(Credential::Basic {
        username: u.into(),
        password: p.into(),
    })
}

struct Dirs {
    _tmp: tempfile::TempDir,
    sources: CredentialSources,
    root: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_owned();
    let sources = CredentialSources {
        registry_auth_file: Some(root.join("regauth.json")),
        xdg_runtime_dir: Some(root.join("run")),
        docker_config_dir: Some(root.join("docker")),
        helper_path: Some(root.join("bin").into_os_string()),
    };
    for d in ["run/containers", "docker", "bin"] {
        fs_err::create_dir_all(root.join(d)).unwrap();
    }
    Dirs {
        _tmp: tmp,
        sources,
        root,
    }
}

#[tokio::test]
async fn auth_file_order_registry_auth_file_then_podman_then_docker() {
    let d = dirs();
    let docker = format!(
        r#"{{"auths":{{"r.example":{{"auth":"{}"}},"only-docker.example":{{"auth":"{}"}}}}}}"#,
        b64("d:dp"),
        b64("o:op")
    );
    fs_err::write(d.root.join("docker/config.json"), docker).unwrap();
    let podman = format!(
        r#"{{"auths":{{"r.example":{{"auth":"{}"}}}}}}"#,
        b64("p:pp")
    );
    fs_err::write(d.root.join("run/containers/auth.json"), podman).unwrap();
    assert_eq!(
        d.sources.lookup("r.example").await.unwrap(),
        basic("p", "pp")
    );
    assert_eq!(
        d.sources.lookup("only-docker.example").await.unwrap(),
        basic("o", "op")
    );
    fs_err::write(
        d.root.join("regauth.json"),
        r#"{"auths":{"https://r.example":{"username":"x","password":"xp"}}}"#,
    )
    .unwrap();
    assert_eq!(
        d.sources.lookup("r.example").await.unwrap(),
        basic("x", "xp")
    );
    assert_eq!(d.sources.lookup("nobody.example").await.unwrap(), None);
    assert_eq!(d.sources.files().len(), 3);
}

#[tokio::test]
async fn docker_hub_key_forms_match_docker_io() {
    let d = dirs();
    let cfg = format!(
        r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#,
        b64("hub:secret:with:colons")
    );
    fs_err::write(d.root.join("docker/config.json"), cfg).unwrap();
    assert_eq!(
        d.sources.lookup("docker.io").await.unwrap(),
        basic("hub", "secret:with:colons")
    );
    assert_eq!(
        d.sources.lookup("index.docker.io").await.unwrap(),
        None,
        "lookups use the normalised name"
    );
}

#[tokio::test]
async fn malformed_auth_file_and_value_are_errors_naming_the_file() {
    let d = dirs();
    fs_err::write(d.root.join("regauth.json"), "{not json").unwrap();
    let err = d.sources.lookup("r.example").await.unwrap_err();
    assert!(err.to_string().contains("regauth.json"), "{err}");
    fs_err::write(
        d.root.join("regauth.json"),
        r#"{"auths":{"r.example":{"auth":"bm9jb2xvbg=="}}}"#,
    )
    .unwrap();
    let err = d.sources.lookup("r.example").await.unwrap_err();
    assert!(err.to_string().contains("regauth.json"), "{err}");
}

#[cfg(unix)]
fn write_helper(d: &Dirs, name: &str, script: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let path = d.root.join("bin").join(format!("docker-credential-{name}"));
    fs_err::write(&path, script).unwrap();
    fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn cred_helpers_and_creds_store_run_helper_with_server_url_on_stdin() {
    let d = dirs();
    // The helper echoes the server URL it was given as the user name.
    write_helper(
        &d,
        "echo",
        "#!/bin/sh\nread url\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"%s\",\"Secret\":\"s3\"}' \"$url\" \"$url\"\n",
    );
    write_helper(
        &d,
        "none",
        "#!/bin/sh\necho 'credentials not found in native keychain'\nexit 1\n",
    );
    write_helper(
        &d,
        "tok",
        "#!/bin/sh\necho '{\"Username\":\"<token>\",\"Secret\":\"refresh\"}'\n",
    );
    fs_err::write(
        d.root.join("docker/config.json"),
        r#"{"credsStore":"echo","credHelpers":{"missing.example":"none","tok.example":"tok"},"auths":{"r.example":{}}}"#,
    )
    .unwrap();
    assert_eq!(
        d.sources.lookup("r.example").await.unwrap(),
        Some(Credential::Basic {
            username: "r.example".into(),
            password: "s3".into()
        })
    );
    assert_eq!(
        d.sources.lookup("docker.io").await.unwrap(),
        basic("https://index.docker.io/v1/", "s3")
    );
    assert_eq!(d.sources.lookup("missing.example").await.unwrap(), None);
    assert_eq!(
        d.sources.lookup("tok.example").await.unwrap(),
        Some(Credential::IdentityToken("refresh".into()))
    );
}

#[cfg(unix)]
#[tokio::test]
async fn failing_or_absent_helper_is_an_error_with_hint() {
    let d = dirs();
    write_helper(
        &d,
        "broken",
        "#!/bin/sh\necho 'keychain locked' >&2\nexit 3\n",
    );
    fs_err::write(
        d.root.join("docker/config.json"),
        r#"{"credHelpers":{"a.example":"broken","b.example":"absent"}}"#,
    )
    .unwrap();
    let err = d.sources.lookup("a.example").await.unwrap_err();
    assert!(err.to_string().contains("keychain locked"), "{err}");
    let err = d.sources.lookup("b.example").await.unwrap_err();
    assert!(
        err.hint()
            .is_some_and(|h| h.contains("docker-credential-absent")),
        "{err}"
    );
}

#[test]
fn normalise_key_strips_scheme_and_path() {
    assert_eq!(normalise_key("https://index.docker.io/v1/"), "docker.io");
    assert_eq!(normalise_key("http://127.0.0.1:5001"), "127.0.0.1:5001");
    assert_eq!(normalise_key("ghcr.io"), "ghcr.io");
}
