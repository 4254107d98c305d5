use super::*;

/// (input, registry, repository, tag, has digest, canonical display)
type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, bool, String);

const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// (input, registry, repository, tag, has digest, canonical display)
#[test]
fn parses_docker_reference_table() {
    let with_digest = format!("python:3.12@{D}");
    let only_digest = format!("127.0.0.1:5000/library/python@{D}");
    let cases: Vec<Case> = vec![
        (
            "python",
            "docker.io",
            "library/python",
            Some("latest"),
            false,
            "docker.io/library/python:latest".into(),
        ),
        (
            "python:3.12-slim",
            "docker.io",
            "library/python",
            Some("3.12-slim"),
            false,
            "docker.io/library/python:3.12-slim".into(),
        ),
        (
            "library/python",
            "docker.io",
            "library/python",
            Some("latest"),
            false,
            "docker.io/library/python:latest".into(),
        ),
        (
            "user/app:v1",
            "docker.io",
            "user/app",
            Some("v1"),
            false,
            "docker.io/user/app:v1".into(),
        ),
        (
            "docker.io/python",
            "docker.io",
            "library/python",
            Some("latest"),
            false,
            "docker.io/library/python:latest".into(),
        ),
        (
            "index.docker.io/python",
            "docker.io",
            "library/python",
            Some("latest"),
            false,
            "docker.io/library/python:latest".into(),
        ),
        (
            "localhost/app",
            "localhost",
            "app",
            Some("latest"),
            false,
            "localhost/app:latest".into(),
        ),
        (
            "localhost:5000/app:1",
            "localhost:5000",
            "app",
            Some("1"),
            false,
            "localhost:5000/app:1".into(),
        ),
        (
            "127.0.0.1:5000/library/python:3.11-slim",
            "127.0.0.1:5000",
            "library/python",
            Some("3.11-slim"),
            false,
            "127.0.0.1:5000/library/python:3.11-slim".into(),
        ),
        (
            "ghcr.io/org/team/app",
            "ghcr.io",
            "org/team/app",
            Some("latest"),
            false,
            "ghcr.io/org/team/app:latest".into(),
        ),
        (
            "[::1]:5000/app",
            "[::1]:5000",
            "app",
            Some("latest"),
            false,
            "[::1]:5000/app:latest".into(),
        ),
        (
            "Registry/app",
            "Registry",
            "app",
            Some("latest"),
            false,
            "Registry/app:latest".into(),
        ),
        (
            "my-reg:443/a.b/c__d/e-f--g",
            "my-reg:443",
            "a.b/c__d/e-f--g",
            Some("latest"),
            false,
            "my-reg:443/a.b/c__d/e-f--g:latest".into(),
        ),
        (
            with_digest.as_str(),
            "docker.io",
            "library/python",
            Some("3.12"),
            true,
            format!("docker.io/library/python:3.12@{D}"),
        ),
        (
            only_digest.as_str(),
            "127.0.0.1:5000",
            "library/python",
            None,
            true,
            format!("127.0.0.1:5000/library/python@{D}"),
        ),
    ];
    for (input, registry, repository, tag, has_digest, canonical) in cases {
        let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.registry(), registry, "{input}");
        assert_eq!(r.repository(), repository, "{input}");
        assert_eq!(r.tag(), tag, "{input}");
        assert_eq!(r.digest().is_some(), has_digest, "{input}");
        assert_eq!(r.to_string(), canonical, "{input}");
        // The canonical form parses back to the same reference.
        assert_eq!(
            Reference::parse(&canonical).ok().as_ref(),
            Some(&r),
            "{canonical}"
        );
    }
}

#[test]
fn digest_wins_for_pulling_when_tag_and_digest_are_given() {
    let r = Reference::parse(&format!("python:3.12@{D}")).unwrap();
    assert_eq!(r.manifest_ref(), D);
    assert_eq!(
        Reference::parse("python:3.12").unwrap().manifest_ref(),
        "3.12"
    );
}

#[test]
fn rejects_malformed_references_quoting_them() {
    for bad in [
        "",
        "Python",
        "python:",
        "python:-bad",
        "python:a/b",
        "python@sha256:abc",
        "python@sha256:../x",
        "a//b",
        "/python",
        "python/",
        "a-/b",
        "reg:port/app",
        "a..b/c",
        "-a",
        "a___b",
        "a_.b",
    ] {
        let err = Reference::parse(bad).expect_err(bad);
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        assert!(
            err.to_string().contains(": "),
            "{err} says what was expected"
        );
        assert!(err.hint().is_some());
    }
    let long_tag = format!("python:{}", "a".repeat(129));
    assert!(Reference::parse(&long_tag).is_err());
    let long_name = "a".repeat(256);
    assert!(Reference::parse(&long_name).is_err());
}

#[test]
fn api_host_of_docker_hub_is_registry_1() {
    let r = Reference::parse("python").unwrap();
    assert_eq!(r.repo().api_host(), "registry-1.docker.io");
    let r = Reference::parse("127.0.0.1:5000/x").unwrap();
    assert_eq!(r.repo().api_host(), "127.0.0.1:5000");
}

#[test]
fn loopback_detection() {
    for host in [
        "localhost",
        "localhost:5000",
        "127.0.0.1:5000",
        "127.1.2.3",
        "[::1]:5000",
        "[::1]",
    ] {
        assert!(is_loopback(host), "{host}");
    }
    for host in [
        "docker.io",
        "10.0.0.1:5000",
        "localhost.example.com",
        "[::2]:5000",
        "128.0.0.1",
    ] {
        assert!(!is_loopback(host), "{host}");
    }
}

#[test]
fn repo_ref_parses_and_builds_tags() {
    let repo = RepoRef::parse("127.0.0.1:5000/library/python").unwrap();
    assert_eq!(repo.to_string(), "127.0.0.1:5000/library/python");
    assert_eq!(
        repo.tag("3.11-slim").unwrap().to_string(),
        "127.0.0.1:5000/library/python:3.11-slim"
    );
    assert!(repo.tag("bad tag").is_err());
    assert!(RepoRef::parse("python:3.11").is_err());
    assert_eq!(
        RepoRef::parse("python").unwrap().to_string(),
        "docker.io/library/python"
    );
}
