//! The sinks with real tools: a two-platform index written as an OCI layout (skopeo copies each
//! platform, umoci lists it), as a tarball (`podman load` and Docker 20.10's `docker load` load
//! and run the host's image; skopeo reads the other platform from it) and pushed to the real
//! registry (skopeo reads the index back; an unchanged re-push sends no blob); one platform keeps
//! its plain manifest; concurrent writers keep every layout entry; outputs share no inode with
//! the blob store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::MetadataExt as _;

use common::{GREETING, client, fixture, host, registry, unique};
use pyslip_image::sink::{layout, remote, tarball};
use pyslip_image::{Artifact, ImageError};
use pyslip_registry::{BlobOutcome, Platform, Reference};

fn index_json(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&fs_err::read(dir.join("index.json")).unwrap()).unwrap()
}

/// `skopeo inspect --raw` of an image reference (`oci:…`, `oci-archive:…`, `docker://…`).
fn raw(image: &str) -> String {
    host("skopeo", &["inspect", "--raw", "--tls-verify=false", image])
}

/// Copy the `arch` image out of `from` (a layout or an archive holding an index) into a fresh
/// layout under `scratch`; its manifest as skopeo wrote it.
fn copy_platform(from: &str, arch: &str, scratch: &std::path::Path) -> String {
    let to = format!("oci:{}:x", scratch.join(format!("out-{arch}")).display());
    host(
        "skopeo",
        &["copy", "-q", "--override-arch", arch, from, &to],
    );
    raw(&to)
}

fn assert_host_is_amd64() {
    assert_eq!(
        Platform::host().to_string(),
        "linux/amd64",
        "these tests run the amd64 image of the fixture on the host"
    );
}

#[tokio::test]
async fn index_in_a_layout_copies_out_per_platform_with_skopeo() {
    let f = fixture().await;
    let artifact = f.index();
    let Artifact::Index(multi) = &artifact else {
        unreachable!()
    };
    let dir = f.dir.path().join("layout");
    layout::write(
        &dir,
        &artifact,
        &f.local,
        &["localhost/pyslip-it/multi:1".into()],
    )
    .unwrap();
    let index = index_json(&dir);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{index}");
    assert_eq!(
        entries[0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(entries[0]["digest"], multi.index_digest.to_string());
    let oci = format!("oci:{}:1", dir.display());
    assert_eq!(raw(&oci).as_bytes(), multi.index.as_slice());
    for image in &multi.images {
        let copied = copy_platform(&oci, &image.platform.architecture, f.dir.path());
        assert_eq!(
            copied.as_bytes(),
            image.manifest.as_slice(),
            "{}",
            image.platform
        );
    }
    let listed = host("umoci", &["ls", "--layout", dir.to_str().unwrap()]);
    assert_eq!(listed.trim(), "1");
}

#[tokio::test]
async fn index_tarball_loads_the_host_image_in_podman_and_docker_20_10() {
    assert_host_is_amd64();
    let f = fixture().await;
    let artifact = f.index();
    let name = format!("localhost/pyslip-it/{}:1", unique("multi-tar"));
    let tar = f.dir.path().join("multi.tar");
    tarball::write(
        &tar,
        &artifact,
        &f.local,
        std::slice::from_ref(&name),
        &Platform::host(),
    )
    .unwrap();
    let tar_s = tar.to_str().unwrap();

    // manifest.json (all Docker 20.10 reads) names the host platform's image only.
    let listing = host("tar", &["-xOf", tar_s, "manifest.json"]);
    let docker: serde_json::Value = serde_json::from_str(&listing).unwrap();
    assert_eq!(docker.as_array().unwrap().len(), 1);
    let amd64 = &f.images[0];
    assert_eq!(
        docker[0]["Config"],
        format!("blobs/sha256/{}", amd64.config_blob.digest.hex())
    );
    assert_eq!(docker[0]["RepoTags"][0], name);

    for engine in ["podman", "docker"] {
        host(engine, &["load", "-i", tar_s]);
        let arch = host(
            engine,
            &["image", "inspect", "--format", "{{.Architecture}}", &name],
        );
        assert_eq!(arch.trim(), "amd64", "{engine}");
        let said = host(engine, &["run", "--rm", &name]);
        assert_eq!(said.trim(), GREETING, "{engine}");
        let _ = std::process::Command::new(engine)
            .args(["rmi", "-f", &name])
            .output();
    }
    // The other platform is in the archive's layout.
    let copied = copy_platform(&format!("oci-archive:{tar_s}:1"), "arm64", f.dir.path());
    assert_eq!(copied.as_bytes(), f.images[1].manifest.as_slice());
}

#[tokio::test]
async fn index_push_then_unchanged_push_sends_no_blob() {
    let f = fixture().await;
    let artifact = f.index();
    let Artifact::Index(multi) = &artifact else {
        unreachable!()
    };
    let target =
        Reference::parse(&format!("{}/pyslip-test/{}:1", registry(), unique("multi"))).unwrap();
    let client = client();
    let first = remote::push(
        &client,
        &artifact,
        &f.local,
        &f.base,
        &target,
        &["also".into()],
    )
    .await
    .unwrap();
    let remote::Pushed::Index(report) = &first else {
        panic!("{first:?}")
    };
    assert_eq!(report.refs.len(), 2);
    // Base layers are mounted from the base repository, never uploaded.
    for (image, pushed) in multi.images.iter().zip(&report.images) {
        for (layer, blob) in image.layers.iter().zip(&pushed.blobs) {
            if layer.origin == pyslip_image::LayerOrigin::Base {
                assert_eq!(blob.outcome, BlobOutcome::Mounted, "{}", image.platform);
            }
        }
    }
    for r in first.refs() {
        let got = raw(&format!("docker://{r}"));
        assert_eq!(got.as_bytes(), multi.index.as_slice(), "{r}");
    }
    let again = remote::push(
        &client,
        &artifact,
        &f.local,
        &f.base,
        &target,
        &["also".into()],
    )
    .await
    .unwrap();
    let remote::Pushed::Index(again) = &again else {
        panic!()
    };
    assert!(again.images.iter().all(|i| !i.manifest_put), "{again:?}");
    assert!(
        again
            .images
            .iter()
            .flat_map(|i| &i.blobs)
            .all(|b| b.outcome == BlobOutcome::AlreadyPresent && b.bytes_sent == 0)
    );
    assert_eq!(
        again.bytes_sent,
        multi.index.len() as u64 * 2,
        "only the index, under both tags"
    );
}

#[tokio::test]
async fn one_platform_keeps_a_plain_manifest_everywhere() {
    let f = fixture().await;
    let image = f.images[0].clone();
    let artifact = Artifact::Image(image.clone());
    let dir = f.dir.path().join("single");
    layout::write(&dir, &artifact, &f.local, &["app:1".into()]).unwrap();
    let entry = &index_json(&dir)["manifests"][0];
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(entry["digest"], image.manifest_digest.to_string());
    assert_eq!(
        entry["annotations"],
        serde_json::json!({
            "io.containerd.image.name": "app:1",
            "org.opencontainers.image.ref.name": "1",
        })
    );
    let tar = f.dir.path().join("single.tar");
    tarball::write(
        &tar,
        &artifact,
        &f.local,
        &["app:1".into()],
        &Platform::host(),
    )
    .unwrap();
    let got = raw(&format!("oci-archive:{}:1", tar.display()));
    assert_eq!(got.as_bytes(), image.manifest.as_slice());
    let target = Reference::parse(&format!(
        "{}/pyslip-test/{}:1",
        registry(),
        unique("single")
    ))
    .unwrap();
    let pushed = remote::push(&client(), &artifact, &f.local, &f.base, &target, &[])
        .await
        .unwrap();
    assert!(matches!(pushed, remote::Pushed::Image(_)));
    let got = raw(&format!("docker://{target}"));
    assert_eq!(got.as_bytes(), image.manifest.as_slice());
}

#[tokio::test]
async fn concurrent_writers_keep_every_entry_and_blobs_are_not_shared_inodes() {
    let f = fixture().await;
    let dir = f.dir.path().join("shared-layout");
    let artifact = Artifact::Image(f.images[0].clone());
    std::thread::scope(|s| {
        for n in 0..8 {
            let (dir, artifact, local) = (&dir, &artifact, &f.local);
            s.spawn(move || {
                layout::write(dir, artifact, local, &[format!("app:{n}")]).unwrap();
            });
        }
    });
    let names: std::collections::BTreeSet<String> = index_json(&dir)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        names,
        (0..8).map(|n| n.to_string()).collect(),
        "a tag was lost"
    );
    let mut compared = 0;
    for layer in &f.images[0].layers {
        let stored = fs_err::metadata(f.local.path(&layer.blob.digest)).unwrap();
        let written =
            fs_err::metadata(dir.join("blobs/sha256").join(layer.blob.digest.hex())).unwrap();
        assert_ne!(
            stored.ino(),
            written.ino(),
            "{} shares the store's inode",
            layer.blob.digest
        );
        assert_eq!(stored.nlink(), 1);
        compared += 1;
    }
    assert!(compared >= 2);
    host("umoci", &["ls", "--layout", dir.to_str().unwrap()]);
}

#[tokio::test]
async fn foreign_directory_is_refused_and_missing_blob_writes_nothing() {
    let f = fixture().await;
    let artifact = Artifact::Image(f.images[0].clone());
    let foreign = f.dir.path().join("photos");
    fs_err::create_dir_all(&foreign).unwrap();
    fs_err::write(foreign.join("cat.jpg"), b"meow").unwrap();
    let err = layout::write(&foreign, &artifact, &f.local, &[]).unwrap_err();
    assert!(matches!(err, ImageError::LayoutNotEmpty { .. }), "{err:?}");
    assert!(err.hint().is_some());
    assert_eq!(
        fs_err::read_dir(&foreign).unwrap().count(),
        1,
        "nothing added to it"
    );

    let app = f.images[0].layers.last().unwrap();
    fs_err::remove_file(f.local.path(&app.blob.digest)).unwrap();
    let tar = f.dir.path().join("broken.tar");
    let err = tarball::write(&tar, &artifact, &f.local, &[], &Platform::host()).unwrap_err();
    assert!(matches!(err, ImageError::MissingBlob { .. }), "{err:?}");
    assert!(!tar.exists());
    assert!(
        fs_err::read_dir(f.dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".pyslip-")),
        "no temp file left"
    );
}
