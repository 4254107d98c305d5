//! `--sbom`: SPDX 2.3 (and CycloneDX 1.6) documents checked by the real validators, holding every
//! locked package at its locked version and the base's Debian packages; reproducible; attached to
//! the pushed image and the OCI layout as a referrer found the way `oras discover` finds it;
//! `pyslip inspect` on both.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Work, env, host, unique_repo};

/// What one `--sbom` build produced.
struct Built {
    report: Value,
    image: String,
    doc: Value,
    bytes: Vec<u8>,
    path: PathBuf,
}

fn build_with_sbom(
    work: &Work,
    app: &Path,
    image: &str,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> Built {
    let path = work.path().join(format!(
        "sbom-{}.json",
        unique_repo("doc").replace('/', "-")
    ));
    let file = path.to_str().expect("utf-8").to_owned();
    let mut args = vec!["-t", image, "--push", "--json", "--sbom", &file];
    args.extend_from_slice(extra);
    let report = work.build_with(app, &args, envs).ok().json();
    let bytes = std::fs::read(&path).expect("sbom written");
    let doc = serde_json::from_slice(&bytes).expect("sbom is JSON");
    Built {
        report,
        image: image.to_owned(),
        doc,
        bytes,
        path,
    }
}

fn validators() -> PathBuf {
    PathBuf::from(std::env::var("PYSLIP_TEST_VALIDATORS").expect(
        "PYSLIP_TEST_VALIDATORS is not set: run scripts/test-env.sh and source /var/lib/pyslip-test/env",
    ))
}

/// `pyspdxtools -i FILE` accepts the document.
fn assert_valid_spdx(path: &Path) {
    let out = std::process::Command::new(validators().join("pyspdxtools"))
        .arg("-i")
        .arg(path)
        .output()
        .expect("run pyspdxtools");
    assert!(
        out.status.success(),
        "pyspdxtools rejects {}:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn normalise(name: &str) -> String {
    name.to_lowercase().replace(['_', '.'], "-")
}

/// SPDX packages by SPDXID prefix: normalised name → (version, package).
fn packages<'a>(doc: &'a Value, prefix: &str) -> BTreeMap<String, (String, &'a Value)> {
    doc["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| {
            p["SPDXID"]
                .as_str()
                .is_some_and(|id| id.starts_with(prefix))
        })
        .map(|p| {
            (
                normalise(p["name"].as_str().expect("name")),
                (p["versionInfo"].as_str().expect("version").to_owned(), p),
            )
        })
        .collect()
}

fn purl(package: &Value) -> String {
    package["externalRefs"][0]["referenceLocator"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `relationshipType` edges as (from, to).
fn edges(doc: &Value, kind: &str) -> BTreeSet<(String, String)> {
    doc["relationships"]
        .as_array()
        .expect("relationships")
        .iter()
        .filter(|r| r["relationshipType"] == kind)
        .map(|r| {
            (
                r["spdxElementId"].as_str().unwrap_or_default().to_owned(),
                r["relatedSpdxElement"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// The names the plan says the install puts in the image (the plan crate's lock readers).
fn planned(work: &Work, app: &Path) -> BTreeSet<String> {
    let plan = work
        .pyslip(&["plan", app.to_str().expect("utf-8"), "--json"])
        .ok()
        .json();
    plan["install"]["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .filter_map(|d| d.as_str().map(normalise))
        .collect()
}

fn testdata(app: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/apps")
        .join(app)
        .join(file)
}

/// name → (version, sha256 hashes) of a uv.lock or poetry.lock.
fn toml_lock(app: &str, file: &str) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let lock: toml::Value =
        toml::from_str(&std::fs::read_to_string(testdata(app, file)).expect("lock")).expect("toml");
    let hash = |v: &toml::Value| {
        v.get("hash")
            .and_then(|h| h.as_str())
            .map(|h| h.trim_start_matches("sha256:").to_owned())
    };
    lock["package"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| {
            let mut hashes = BTreeSet::new();
            for key in ["wheels", "files"] {
                for f in p.get(key).and_then(|w| w.as_array()).into_iter().flatten() {
                    hashes.extend(hash(f));
                }
            }
            hashes.extend(p.get("sdist").and_then(hash));
            Some((
                normalise(p.get("name")?.as_str()?),
                (p.get("version")?.as_str()?.to_owned(), hashes),
            ))
        })
        .collect()
}

/// Every Python package is in pyslip's layers, planned and at its locked version; every
/// planned package is there; the Debian packages of the base are listed in base layers.
fn check_document(
    built: &Built,
    planned: &BTreeSet<String>,
    locked: &BTreeMap<String, String>,
    project: &str,
) {
    assert_valid_spdx(&built.path);
    let doc = &built.doc;
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let digest = built.report["digest"].as_str().expect("digest");
    assert!(
        doc["documentNamespace"]
            .as_str()
            .is_some_and(|n| n.ends_with(digest.trim_start_matches("sha256:")))
    );
    assert!(
        edges(doc, "DESCRIBES").contains(&("SPDXRef-DOCUMENT".into(), "SPDXRef-Project".into()))
    );
    let python = packages(doc, "SPDXRef-PyPI-");
    let expected: BTreeSet<String> = planned.iter().filter(|n| *n != project).cloned().collect();
    assert_eq!(
        python.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "python packages"
    );
    let layers: BTreeMap<String, String> = doc["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| {
            p["SPDXID"]
                .as_str()
                .is_some_and(|id| id.starts_with("SPDXRef-Layer-"))
        })
        .map(|p| {
            (
                p["SPDXID"].as_str().unwrap_or_default().to_owned(),
                p["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let contains = edges(doc, "CONTAINS");
    let depends = edges(doc, "DEPENDS_ON");
    let holder = |id: &str| {
        contains
            .iter()
            .find(|(from, to)| to == id && from.starts_with("SPDXRef-Layer-"))
            .and_then(|(from, _)| layers.get(from))
            .cloned()
            .unwrap_or_default()
    };
    for (name, (version, package)) in &python {
        if let Some(want) = locked.get(name) {
            assert_eq!(
                version, want,
                "{name}: SBOM says {version}, the lock {want}"
            );
        }
        assert_eq!(purl(package), format!("pkg:pypi/{name}@{version}"));
        let id = package["SPDXID"].as_str().expect("id");
        let layer = holder(id);
        assert!(
            layer.contains("(deps)") || layer.contains("(project)"),
            "{name} is in {layer:?}"
        );
        assert!(
            depends.contains(&("SPDXRef-Project".into(), id.to_owned())),
            "{name}"
        );
        assert!(package["licenseDeclared"].is_string());
    }
    let debs = packages(doc, "SPDXRef-Deb-");
    assert!(debs.len() > 50, "only {} Debian packages", debs.len());
    for name in ["bash", "libc6", "python3"] {
        let (_, package) = debs
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from the SBOM"));
        let purl = purl(package);
        assert!(
            purl.starts_with(&format!("pkg:deb/debian/{name}@")),
            "{purl}"
        );
        assert!(
            purl.contains("arch=") && purl.contains("&distro=debian-"),
            "{purl}"
        );
        assert!(holder(package["SPDXID"].as_str().expect("id")).contains("(base)"));
    }
}

fn checksum(package: &Value) -> Option<String> {
    package["checksums"][0]["checksumValue"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn uv_lock_sbom_has_locked_versions_and_file_hashes() {
    let work = Work::with_shared_cache();
    let app = work.app("fastapi-uv");
    let image = format!("{}/{}:1", env().registry, unique_repo("sbom-uv"));
    let built = build_with_sbom(&work, &app, &image, &[], &[]);
    let lock = toml_lock("fastapi-uv", "uv.lock");
    let locked = lock
        .iter()
        .map(|(k, (v, _))| (k.clone(), v.clone()))
        .collect();
    check_document(&built, &planned(&work, &app), &locked, "uvapp");
    let python = packages(&built.doc, "SPDXRef-PyPI-");
    assert!(!python.contains_key("pytest"), "dev package in the SBOM");
    for (name, (_, package)) in &python {
        let sha = checksum(package).unwrap_or_else(|| panic!("{name} has no checksum"));
        assert!(
            lock[name].1.contains(&sha),
            "{name}: {sha} is not a locked file"
        );
        let url = package["downloadLocation"].as_str().unwrap_or_default();
        assert!(
            url.starts_with("https://") && url.ends_with(".whl"),
            "{name}: {url}"
        );
    }
    let project = &built.doc["packages"][0];
    assert_eq!(
        (project["name"].as_str(), project["versionInfo"].as_str()),
        (Some("uvapp"), Some("0.1.0"))
    );
}

#[test]
fn poetry_lock_sbom_has_locked_versions_and_file_hashes() {
    let work = Work::with_shared_cache();
    let app = work.app("fastapi-poetry");
    let image = format!("{}/{}:1", env().registry, unique_repo("sbom-poetry"));
    let built = build_with_sbom(&work, &app, &image, &[], &[]);
    let lock = toml_lock("fastapi-poetry", "poetry.lock");
    let locked = lock
        .iter()
        .map(|(k, (v, _))| (k.clone(), v.clone()))
        .collect();
    check_document(&built, &planned(&work, &app), &locked, "");
    let python = packages(&built.doc, "SPDXRef-PyPI-");
    assert!(!python.contains_key("pytest"), "dev package in the SBOM");
    for (name, (_, package)) in &python {
        let sha = checksum(package).unwrap_or_else(|| panic!("{name} has no checksum"));
        assert!(
            lock[name].1.contains(&sha),
            "{name}: {sha} is not a locked file"
        );
    }
}

#[test]
fn pipfile_lock_sbom_has_default_packages_only() {
    let work = Work::with_shared_cache();
    let app = work.app("flask-pipenv");
    let image = format!("{}/{}:1", env().registry, unique_repo("sbom-pipenv"));
    let built = build_with_sbom(&work, &app, &image, &[], &[]);
    let lock: Value = serde_json::from_slice(
        &std::fs::read(testdata("flask-pipenv", "Pipfile.lock")).expect("lock"),
    )
    .expect("json");
    let version = |v: &Value| {
        v["version"]
            .as_str()
            .map(|s| s.trim_start_matches("==").to_owned())
    };
    let locked: BTreeMap<String, String> = lock["default"]
        .as_object()
        .expect("default")
        .iter()
        .filter_map(|(k, v)| Some((normalise(k), version(v)?)))
        .collect();
    check_document(&built, &planned(&work, &app), &locked, "");
    let python = packages(&built.doc, "SPDXRef-PyPI-");
    for name in lock["develop"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| normalise(k))
    {
        assert!(
            locked.contains_key(&name) || !python.contains_key(&name),
            "develop package {name} listed"
        );
    }
}

#[test]
fn requirements_sbom_is_reproducible_and_discoverable_as_a_referrer() {
    let work = Work::with_shared_cache();
    let app = work.app("flask-requirements");
    let repo = format!("{}/{}", env().registry, unique_repo("sbom-req"));
    let image = format!("{repo}:1");
    let layout = work.path().join("layout");
    let layout_arg = layout.to_str().expect("utf-8").to_owned();
    let first = build_with_sbom(&work, &app, &image, &["--oci-layout", &layout_arg], &[]);
    let pins = BTreeMap::from([
        ("flask".to_owned(), "3.1.3".to_owned()),
        ("gunicorn".to_owned(), "27.0.1".to_owned()),
    ]);
    let mut planned = planned(&work, &app);
    // Exact pins appear as pinned; what they pull in is whatever the resolver chose.
    let python = packages(&first.doc, "SPDXRef-PyPI-");
    planned.extend(python.keys().cloned());
    check_document(&first, &planned, &pins, "");
    assert!(pins.keys().all(|p| python.contains_key(p)));
    assert_eq!(first.doc["creationInfo"]["created"], "1970-01-01T00:00:00Z");

    // The same build again: the same bytes, and still one referrer.
    let second = build_with_sbom(&work, &app, &image, &["--oci-layout", &layout_arg], &[]);
    assert_eq!(first.report["digest"], second.report["digest"]);
    assert!(
        first.bytes == second.bytes,
        "the SBOM of the same build differs"
    );
    let digest = first.report["digest"].as_str().expect("digest").to_owned();
    let sbom_json = &second.report["sbom"];
    assert_eq!(
        sbom_json["referrers"][0]["via"], "fallback-tag",
        "{sbom_json}"
    );

    // Discovery as `oras discover` does it, with plain registry API calls: the referrers API
    // (distribution 2.8 has none: 404), then the fallback tag sha256-<hex>.
    let repo_path = repo.trim_start_matches(&format!("{}/", env().registry));
    let base = format!("http://{}/v2/{repo_path}", env().registry);
    let api = host(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{base}/referrers/{digest}"),
        ],
    );
    assert_eq!(api, "404");
    let accept = "Accept: application/vnd.oci.image.index.v1+json";
    let tag = digest.replace(':', "-");
    let index: Value = serde_json::from_str(&host(
        "curl",
        &["-sf", "-H", accept, &format!("{base}/manifests/{tag}")],
    ))
    .expect("index");
    let entries = index["manifests"].as_array().expect("manifests");
    assert_eq!(
        entries.len(),
        1,
        "a second build duplicated the referrer: {index}"
    );
    assert_eq!(entries[0]["artifactType"], "application/spdx+json");
    let accept = "Accept: application/vnd.oci.image.manifest.v1+json";
    let referrer = entries[0]["digest"].as_str().expect("digest");
    let manifest: Value = serde_json::from_str(&host(
        "curl",
        &["-sf", "-H", accept, &format!("{base}/manifests/{referrer}")],
    ))
    .expect("manifest");
    assert_eq!(manifest["subject"]["digest"], digest.as_str());
    let layer = manifest["layers"][0]["digest"].as_str().expect("layer");
    let blob = std::process::Command::new("curl")
        .args(["-sf", &format!("{base}/blobs/{layer}")])
        .output()
        .expect("curl");
    assert!(
        blob.stdout == first.bytes,
        "the attached document is not the --sbom file"
    );

    // SOURCE_DATE_EPOCH sets `created`.
    let dated_image = format!("{repo}:dated");
    let dated = build_with_sbom(
        &work,
        &app,
        &dated_image,
        &[],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    assert_eq!(dated.doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");

    // `pyslip inspect` on the pushed image and on the layout.
    for target in [image.as_str(), layout_arg.as_str()] {
        let table = work.pyslip(&["inspect", target]).ok().stdout;
        for needle in [
            "ORIGIN",
            "base",
            "deps",
            "app",
            "Flask 3.1.3",
            "bash ",
            "made by: pyslip dependencies:",
            "application/spdx+json",
        ] {
            assert!(
                table.contains(needle),
                "inspect {target} lacks {needle:?}:\n{table}"
            );
        }
        let json = work.pyslip(&["inspect", target, "--json"]).ok().json();
        let layers = json["layers"].as_array().expect("layers");
        assert_eq!(
            layers.len(),
            first.report["layers"].as_array().expect("layers").len()
        );
        let origins: Vec<&str> = layers.iter().filter_map(|l| l["origin"].as_str()).collect();
        assert_eq!(origins.last(), Some(&"app"), "{origins:?}");
        assert!(
            layers
                .iter()
                .all(|l| l["files"].as_u64().is_some_and(|f| f > 0)),
            "{json}"
        );
        assert_eq!(json["digest"], digest.as_str());
    }
}

#[test]
fn cyclonedx_sbom_passes_the_cyclonedx_validator() {
    let work = Work::with_shared_cache();
    let app = work.app("fastapi-uv");
    let image = format!("{}/{}:1", env().registry, unique_repo("sbom-cdx"));
    let built = build_with_sbom(&work, &app, &image, &["--sbom-format", "cyclonedx"], &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/validate_cyclonedx.py");
    let out = std::process::Command::new(validators().join("python"))
        .arg(&script)
        .arg(&built.path)
        .output()
        .expect("run the CycloneDX validator");
    assert!(
        out.status.success(),
        "CycloneDX validation failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(built.doc["specVersion"], "1.6");
    let lock = toml_lock("fastapi-uv", "uv.lock");
    let components = built.doc["components"].as_array().expect("components");
    let fastapi = components
        .iter()
        .find(|c| c["name"] == "fastapi")
        .expect("fastapi listed");
    assert_eq!(
        fastapi["version"].as_str(),
        Some(lock["fastapi"].0.as_str())
    );
    assert!(
        lock["fastapi"]
            .1
            .contains(fastapi["hashes"][0]["content"].as_str().unwrap_or_default())
    );
    assert!(!components.iter().any(|c| c["name"] == "pytest"));
    assert_eq!(built.report["sbom"]["format"], "cyclonedx-1.6");
    let referrers = built.image.replace(":1", "");
    assert!(
        built.report["sbom"]["referrers"][0]["repository"]
            .as_str()
            .is_some_and(|r| r == referrers)
    );
}
