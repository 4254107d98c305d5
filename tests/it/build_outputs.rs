//! The stdlib app built once into all three outputs; each output runs.

use crate::support::{Container, Work, env, free_port, host, unique_repo};

fn expect_healthz(container: &Container, port: u16) {
    let (status, body) = container.get(port, "/healthz");
    assert_eq!(status, 200, "body: {body}");
    assert_eq!(body, r#"{"ok": true}"#);
}

/// Push, --tar and --oci-layout from one build, each run by a real engine; the tarball and the
/// layout are run with the registry's copy removed, so only they can provide the image.
#[test]
fn stdlib_app_pushed_tarball_and_layout_all_run() {
    let work = Work::new();
    let app = work.app("stdlib");
    let image = format!("{}/{}:1", env().registry, unique_repo("stdlib"));
    let tar = work.path().join("out/image.tar");
    let layout = work.path().join("out/layout");
    std::fs::create_dir_all(tar.parent().expect("parent")).expect("mkdir out");
    work.give_to_user(&work.path().join("out"));
    let run = work
        .build(
            &app,
            &[
                "--python",
                "3.11",
                "-t",
                &image,
                "--push",
                "--tar",
                tar.to_str().expect("utf-8"),
                "--oci-layout",
                layout.to_str().expect("utf-8"),
                "--json",
            ],
        )
        .ok();
    let report = run.json();
    let digest = report["digest"].as_str().expect("digest").to_owned();
    assert!(digest.starts_with("sha256:"), "{report}");
    assert_eq!(report["refs"][0], serde_json::json!(image));
    let layers = report["layers"].as_array().expect("layers");
    assert!(layers.len() >= 2, "base + app layers: {report}");
    assert_eq!(layers.last().expect("app")["origin"], "app");

    // From the registry.
    let port = free_port();
    host("podman", &["pull", "-q", &image]);
    let c = Container::podman(&image, port);
    expect_healthz(&c, port);
    drop(c);

    // From the tarball only: the registry's copy is removed first (and containers never pull).
    host("podman", &["rmi", "-f", &image]);
    let gone = std::process::Command::new("podman")
        .args(["image", "exists", &image])
        .status()
        .expect("podman image exists");
    assert!(!gone.success(), "{image} is still in podman's storage");
    let loaded = host("podman", &["load", "-i", tar.to_str().expect("utf-8")]);
    assert!(
        loaded.contains(&image) || loaded.contains(&digest[7..19]),
        "{loaded}"
    );
    let port = free_port();
    let c = Container::podman(&image, port);
    expect_healthz(&c, port);
    drop(c);
    host("podman", &["rmi", "-f", &image]);

    // From the OCI layout, through skopeo.
    let local = format!("localhost/{}:layout", unique_repo("from-layout"));
    host(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci:{}:1", layout.display()),
            &format!("containers-storage:{local}"),
        ],
    );
    let port = free_port();
    let c = Container::podman(&local, port);
    expect_healthz(&c, port);
}

/// `docker load` (Docker 20.10 reads only manifest.json) accepts the tarball and runs it.
#[test]
fn tarball_loads_into_docker() {
    if !env().docker {
        panic!("PYSLIP_TEST_DOCKER is not 1: scripts/test-env.sh did not start dockerd");
    }
    let work = Work::new();
    let app = work.app("stdlib");
    let tar = work.path().join("image.tar");
    let image = format!("pyslip-it/docker-load:{}", std::process::id());
    work.build(
        &app,
        &[
            "--python",
            "3.13",
            "-t",
            &image,
            "--tar",
            tar.to_str().expect("utf-8"),
        ],
    )
    .ok();
    host("docker", &["load", "-i", tar.to_str().expect("utf-8")]);
    let port = free_port();
    let c = Container::docker(&image, port);
    expect_healthz(&c, port);
    drop(c);
    let _ = host("docker", &["rmi", "-f", &image]);
}

/// Adding a second image to an OCI layout keeps the first, and umoci reads the result.
#[test]
fn oci_layout_keeps_earlier_images() {
    let work = Work::new();
    let app = work.app("stdlib");
    let layout = work.path().join("layout");
    for (tag, python) in [("a:1", "3.11"), ("b:2", "3.14")] {
        work.build(
            &app,
            &[
                "--python",
                python,
                "-t",
                tag,
                "--oci-layout",
                layout.to_str().expect("utf-8"),
            ],
        )
        .ok();
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
            .expect("json");
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    assert_eq!(names, ["1", "2"]);
    let listed = host(
        "umoci",
        &["ls", "--layout", layout.to_str().expect("utf-8")],
    );
    assert!(
        listed.lines().any(|l| l == "1") && listed.lines().any(|l| l == "2"),
        "{listed}"
    );
    host(
        "skopeo",
        &["inspect", &format!("oci:{}:2", layout.display())],
    );
}
