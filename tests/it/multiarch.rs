//! Multi-platform builds without emulation: a FastAPI app with compiled dependencies built for
//! linux/amd64 and linux/arm64 in one command — with the arm64 binfmt handler switched off while
//! pyslip runs — pushed as an index whose images both run; the same build into an OCI layout
//! and a tarball; an sdist that would have to be compiled fails naming its package.

use std::fs::File;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Work, env, free_port, host, http_get, layer, unique_repo};

/// The arm64 binfmt entry qemu-user-static registers.
const BINFMT: &str = "/proc/sys/fs/binfmt_misc/qemu-aarch64";
/// Held shared by tests that run arm64 code, exclusively while the entry is off.
const BINFMT_LOCK: &str = "/tmp/pyslip-it-binfmt.lock";
/// ELF `e_machine` of aarch64.
const EM_AARCH64: u16 = 183;

fn binfmt_lock() -> File {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(BINFMT_LOCK)
        .expect("binfmt lock file")
}

/// The arm64 binfmt entry switched off until dropped (also on panic); no arm64 code can run.
struct BinfmtOff {
    _lock: File,
}

impl BinfmtOff {
    fn new() -> Self {
        let lock = binfmt_lock();
        lock.lock().expect("binfmt lock");
        assert!(
            std::fs::read_to_string(BINFMT)
                .expect(BINFMT)
                .starts_with("enabled"),
            "{BINFMT} is not enabled: scripts/test-env.sh sets it up"
        );
        std::fs::write(BINFMT, "0").expect("disable qemu-aarch64");
        Self { _lock: lock }
    }
}

impl Drop for BinfmtOff {
    fn drop(&mut self) {
        let _ = std::fs::write(BINFMT, "1");
    }
}

/// A shared hold on the binfmt entry while arm64 code runs.
fn binfmt_on() -> File {
    let lock = binfmt_lock();
    lock.lock_shared().expect("binfmt lock");
    lock
}

/// A container of one platform; removed when dropped.
struct Running {
    name: String,
}

impl Running {
    fn start(image: &str, platform: &str, port: u16) -> Self {
        let name = format!("pyslip-it-multiarch-{}-{port}", std::process::id());
        let _ = Command::new("podman").args(["rm", "-f", &name]).output();
        host(
            "podman",
            &[
                "run",
                "-d",
                "--pull=never",
                "--platform",
                platform,
                "--name",
                &name,
                "--network",
                "host",
                "-e",
                &format!("PORT={port}"),
                // One process: emulated imports outlast uvicorn's worker health check.
                "-e",
                "WEB_CONCURRENCY=1",
                image,
            ],
        );
        Self { name }
    }

    /// The `/healthz` reply; an emulated start may take minutes on a busy machine, so this waits
    /// up to 10.
    fn healthz(&self, port: u16) -> Value {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Some((status, body)) = http_get(port, "/healthz") {
                assert_eq!(status, 200, "{body}");
                return serde_json::from_str(&body).expect("json body");
            }
            if Instant::now() > deadline {
                let logs = Command::new("podman").args(["logs", &self.name]).output();
                let logs = logs.map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
                panic!("no answer from {}: {logs:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", &self.name])
            .output();
    }
}

const BOTH: &str = "linux/amd64,linux/arm64";

fn build_both(work: &Work, app: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["--python", "3.13", "--platform", BOTH, "--json"];
    args.extend_from_slice(extra);
    work.build(app, &args).ok().json()
}

/// The report's entry for `platform` (`linux/arm64` finds the base's `linux/arm64/v8`).
fn platform_entry<'a>(report: &'a Value, platform: &str) -> &'a Value {
    report["platforms"]
        .as_array()
        .expect("platforms")
        .iter()
        .find(|p| {
            let shown = p["platform"].as_str().unwrap_or("");
            shown == platform || shown.starts_with(&format!("{platform}/"))
        })
        .unwrap_or_else(|| panic!("no {platform} in {report}"))
}

/// The digest of the layer of `origin` in a platform's report entry.
fn layer_digest(entry: &Value, origin: &str) -> String {
    layer(entry, origin)["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no digest of the {origin} layer in {entry}"))
        .to_owned()
}

/// `(path, e_machine, 64-bit)` of every ELF file in a gzip'd layer blob.
fn elf_files(blob: &Path, scratch: &Path) -> Vec<(String, u16, bool)> {
    std::fs::create_dir_all(scratch).expect("mkdir");
    let ok = Command::new("tar")
        .arg("-xzf")
        .arg(blob)
        .arg("-C")
        .arg(scratch)
        .status();
    assert!(ok.expect("tar").success(), "unpacking {}", blob.display());
    let mut out = Vec::new();
    let mut stack = vec![scratch.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let (path, kind) = (entry.path(), entry.file_type().expect("file type"));
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let bytes = std::fs::read(&path).expect("read");
                if bytes.len() > 20 && bytes.starts_with(b"\x7fELF") {
                    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
                    let shown = path.strip_prefix(scratch).expect("inside").display();
                    out.push((shown.to_string(), machine, bytes[4] == 2));
                }
            }
        }
    }
    out
}

/// Built for both platforms with arm64 emulation off, pushed as an index; both images run
/// and import their compiled extensions; the arm64 deps layer holds only aarch64 ELF files;
/// static and app layers are the same blobs; a no-op rebuild uploads nothing.
#[test]
fn compiled_fastapi_for_amd64_and_arm64_without_emulation_runs_on_both() {
    let work = Work::new();
    let app = work.testdata("multiarch", "fastapi-native");
    let image = format!("{}/{}:1", env().registry, unique_repo("multiarch"));
    let report = {
        let _off = BinfmtOff::new();
        let state = std::fs::read_to_string(BINFMT).expect(BINFMT);
        assert!(state.starts_with("disabled"), "{BINFMT}: {state}");
        build_both(&work, &app, &["-t", &image, "--push"])
    };
    let _on = binfmt_on();
    let digest = report["digest"].as_str().expect("digest").to_owned();
    let raw: Value = serde_json::from_str(&host(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{image}"),
        ],
    ))
    .expect("index json");
    assert_eq!(
        raw["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{raw}"
    );
    let listed: Vec<String> = raw["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap_or(""),
                m["platform"]["architecture"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(listed, ["linux/amd64", "linux/arm64"], "{raw}");

    let (amd, arm) = (
        platform_entry(&report, "linux/amd64"),
        platform_entry(&report, "linux/arm64"),
    );
    assert_eq!(
        layer_digest(amd, "app"),
        layer_digest(arm, "app"),
        "one app layer for both"
    );
    assert_ne!(
        layer_digest(amd, "deps"),
        layer_digest(arm, "deps"),
        "compiled deps differ"
    );
    let deps_blob = work
        .cache()
        .join("pyslip/blobs-v1/sha256")
        .join(&layer_digest(arm, "deps")["sha256:".len()..]);
    let elves = elf_files(&deps_blob, &work.path().join("arm64-deps"));
    for needle in ["pydantic_core", "uvloop", "httptools", "watchfiles"] {
        assert!(
            elves
                .iter()
                .any(|(p, ..)| p.contains(needle) && p.ends_with(".so")),
            "no {needle} extension: {elves:?}"
        );
    }
    for (path, machine, is64) in &elves {
        assert!(
            *machine == EM_AARCH64 && *is64,
            "{path}: e_machine {machine}, 64-bit {is64}"
        );
    }

    for (platform, entry, machine) in [
        ("linux/amd64", amd, "x86_64"),
        ("linux/arm64", arm, "aarch64"),
    ] {
        let repo = image.rsplit_once(':').expect("tag").0;
        let by_digest = format!("{repo}@{}", entry["digest"].as_str().expect("digest"));
        host("podman", &["pull", "-q", "--tls-verify=false", &by_digest]);
        let port = free_port();
        let running = Running::start(&by_digest, platform, port);
        let reply = running.healthz(port);
        assert_eq!(reply["machine"], machine, "{platform}: {reply}");
        assert_eq!(
            reply["modules"].as_array().map(Vec::len),
            Some(4),
            "{reply}"
        );
    }

    // A no-op rebuild: every layer reused, nothing uploaded, the same index.
    let again = build_both(&work, &app, &["-t", &image, "--push"]);
    assert_eq!(again["digest"], digest.as_str(), "{again}");
    assert_eq!(again["push"]["uploaded"], 0, "{again}");
    assert_eq!(again["push"]["blob_bytes_sent"], 0, "{again}");
    for entry in again["platforms"].as_array().expect("platforms") {
        for layer in entry["layers"].as_array().expect("layers") {
            assert_ne!(layer["pushed"], "uploaded", "{entry}");
        }
    }
}

/// The same two-platform build into an OCI layout and a tarball: skopeo copies each platform
/// out of the layout; `podman load` of the tarball loads this machine's image, which runs.
#[test]
fn two_platforms_into_oci_layout_and_tarball() {
    let work = Work::with_shared_cache();
    let app = work.testdata("multiarch", "fastapi-native");
    let out = work.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir out");
    work.give_to_user(&out);
    let (layout, tar) = (out.join("layout"), out.join("image.tar"));
    let tag = format!("localhost/{}:1", unique_repo("multiarch-local"));
    let report = build_both(
        &work,
        &app,
        &[
            "-t",
            &tag,
            "--oci-layout",
            layout.to_str().expect("utf-8"),
            "--tar",
            tar.to_str().expect("utf-8"),
        ],
    );
    for (arch, platform) in [("amd64", "linux/amd64"), ("arm64", "linux/arm64")] {
        let local = format!("localhost/{}:{arch}", unique_repo("from-layout"));
        host(
            "skopeo",
            &[
                "copy",
                "-q",
                "--override-arch",
                arch,
                &format!("oci:{}:1", layout.display()),
                &format!("containers-storage:{local}"),
            ],
        );
        let inspected: Value =
            serde_json::from_str(&host("podman", &["image", "inspect", &local])).expect("json");
        assert_eq!(inspected[0]["Architecture"], arch, "{inspected}");
        // The image podman stored is that platform's: its id is the platform's config digest.
        let config = platform_entry(&report, platform)["config"]
            .as_str()
            .expect("config");
        assert_eq!(inspected[0]["Id"], &config["sha256:".len()..], "{platform}");
        host("podman", &["rmi", "-f", &local]);
    }
    let loaded = host("podman", &["load", "-i", tar.to_str().expect("utf-8")]);
    assert!(loaded.contains(&tag), "{loaded}");
    let inspected: Value =
        serde_json::from_str(&host("podman", &["image", "inspect", &tag])).expect("json");
    assert_eq!(inspected[0]["Architecture"], "amd64", "{inspected}");
    let port = free_port();
    let running = Running::start(&tag, "linux/amd64", port);
    assert_eq!(running.healthz(port)["machine"], "x86_64");
    drop(running);
    host("podman", &["rmi", "-f", &tag]);
}

/// ujson 1.35 exists only as an sdist with a C extension: for arm64 it would be compiled for
/// this machine, so the build fails naming it and the platform.
#[test]
fn an_sdist_with_a_c_extension_fails_for_arm64_naming_it() {
    let work = Work::with_shared_cache();
    let app = work.path().join("apps/sdist-c");
    std::fs::create_dir_all(&app).expect("mkdir");
    std::fs::write(app.join("requirements.txt"), "ujson==1.35\n").expect("write");
    std::fs::write(
        app.join("main.py"),
        "import ujson\nprint(ujson.dumps([1]))\n",
    )
    .expect("write");
    work.give_to_user(&work.path().join("apps"));
    let out = work.path().join("out.tar");
    let run = work
        .build(
            &app,
            &[
                "--python",
                "3.13",
                "--platform",
                "linux/arm64",
                "--tar",
                out.to_str().expect("utf-8"),
            ],
        )
        .failed();
    let (error, hint) = run.error_and_hint();
    assert!(
        error.contains("ujson") && error.contains("linux/arm64"),
        "{error}"
    );
    assert!(hint.contains("wheel"), "{hint}");
    assert!(!out.exists(), "a failed build wrote {}", out.display());
}

/// Push an index named `name` in the test registry made of `(source image, arch)` entries.
fn push_index(name: &str, entries: &[(&str, &str)]) -> String {
    let list = format!("localhost/{}", unique_repo("mix-list"));
    host("podman", &["manifest", "create", &list]);
    for (source, arch) in entries {
        host(
            "podman",
            &[
                "manifest",
                "add",
                "--tls-verify=false",
                "--arch",
                arch,
                &list,
                &format!("docker://{source}"),
            ],
        );
    }
    let target = format!("{}/{}", env().registry, name);
    host(
        "podman",
        &[
            "manifest",
            "push",
            "--all",
            "--tls-verify=false",
            &list,
            &format!("docker://{target}"),
        ],
    );
    host("podman", &["manifest", "rm", &list]);
    target
}

/// A base tag whose amd64 and arm64 images carry different Pythons cannot give a foreign
/// platform's dependencies (the host's interpreter would install for the wrong Python); a base
/// without this machine's platform cannot either. Both stop before any install, naming why.
#[test]
fn foreign_platforms_need_the_hosts_image_with_the_same_python() {
    let work = Work::with_shared_cache();
    let app = work.testdata("multiarch", "fastapi-native");
    let registry = &env().registry;
    let mixed = push_index(
        &format!("{}:3.13-slim", unique_repo("mixed-python")),
        &[
            (&format!("{registry}/library/python:3.11-slim"), "amd64"),
            (&format!("{registry}/library/python:3.13-slim"), "arm64"),
        ],
    );
    let out = work.path().join("out.tar");
    let out = out.to_str().expect("utf-8");
    let app = app.to_str().expect("utf-8");
    let run = work
        .pyslip(&[
            "build",
            app,
            "--base",
            &mixed,
            "--platform",
            BOTH,
            "--tar",
            out,
        ])
        .failed();
    let (error, hint) = run.error_and_hint();
    assert!(
        error.contains("PYTHON_VERSION 3.13") && error.contains("3.11"),
        "{error}"
    );
    assert!(error.contains("linux/arm64"), "{error}");
    assert!(hint.contains("same Python"), "{hint}");

    let arm_only = push_index(
        &format!("{}:3.13-slim", unique_repo("arm-only")),
        &[(&format!("{registry}/library/python:3.13-slim"), "arm64")],
    );
    let run = work
        .pyslip(&[
            "build",
            app,
            "--base",
            &arm_only,
            "--platform",
            "linux/arm64",
            "--tar",
            out,
        ])
        .failed();
    let (error, hint) = run.error_and_hint();
    assert!(error.contains("has no linux/amd64 image"), "{error}");
    assert!(hint.contains("lists linux/amd64"), "{hint}");
    assert!(!Path::new(out).exists(), "a failed build wrote {out}");
}

/// Django (pure Python) for both platforms: collectstatic runs once and both images carry the
/// same static and app blobs; the pure-Python dependency layers come out identical and share
/// one digest.
#[test]
fn pure_python_django_shares_every_pyslip_layer_across_platforms() {
    let work = Work::with_shared_cache();
    let app = work.app("django");
    let layout = work.path().join("layout");
    let report = work
        .build(
            &app,
            &[
                "--platform",
                BOTH,
                "--json",
                "--oci-layout",
                layout.to_str().expect("utf-8"),
            ],
        )
        .ok()
        .json();
    let (amd, arm) = (
        platform_entry(&report, "linux/amd64"),
        platform_entry(&report, "linux/arm64"),
    );
    for origin in ["deps", "static", "app"] {
        assert_eq!(
            layer_digest(amd, origin),
            layer_digest(arm, origin),
            "{origin}: {report}"
        );
    }
    assert_ne!(
        amd["digest"], arm["digest"],
        "the base layers differ: {report}"
    );
}
