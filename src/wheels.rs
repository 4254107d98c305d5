//! Which Pythons a pinned package version has wheels for, read from the package index the
//! install would use (the PEP 691 JSON simple API): for choosing a Python the pins can install,
//! and for install-failure hints. Wheel file names and the tags an interpreter accepts are read
//! with uv's own crates, so the answer is the one uv would give.

use std::collections::BTreeSet;
use std::str::FromStr;

use anyhow::{Context, Result};
use pyslip_registry::{Client, Platform};
use serde::Deserialize;
use url::Url;
use uv_distribution_filename::WheelFilename;
use uv_pep440::Version;
use uv_platform_tags::{Arch, Os, Tags, TagsOptions};

/// The index pyslip asks when no index variable is set.
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple";
/// PEP 691's JSON form of the simple API.
const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";
/// A project page is read up to this size (numpy's is about 2 MiB).
const MAX_PAGE: u64 = 64 * 1024 * 1024;
/// glibc of the `python:<X.Y>-slim` bases (Debian 13): wheels for newer glibc do not install.
const GLIBC: (u16, u16) = (2, 41);

/// The package index the install would use: `UV_DEFAULT_INDEX`, `UV_INDEX_URL`,
/// `PIP_INDEX_URL`, else PyPI.
#[derive(Debug, Clone)]
pub struct Index {
    url: Url,
}

impl Index {
    /// The index named by the environment (`var` reads one variable).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let raw = ["UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"]
            .iter()
            .find_map(|name| var(name).filter(|v| !v.trim().is_empty()))
            .unwrap_or_else(|| DEFAULT_INDEX.to_owned());
        let mut url = Url::parse(raw.trim())
            .with_context(|| format!("package index URL {:?}", strip_credentials(&raw)))?;
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        Ok(Index { url })
    }

    /// The index URL without credentials, for messages and cache keys.
    pub fn display(&self) -> String {
        strip_credentials(self.url.as_str())
    }

    /// The project page of `name` (PEP 503-normalised).
    fn page(&self, name: &str) -> Result<Url> {
        self.url
            .join(&format!("{name}/"))
            .with_context(|| format!("project page of {name}"))
    }
}

fn strip_credentials(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

/// What the index has for one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wheels {
    /// Minor versions of Python 3 (among those asked about) with a wheel that installs on the
    /// platform.
    pub minors: BTreeSet<u8>,
    /// Whether the version has any wheel at all (a source-only release constrains nothing).
    pub any_wheel: bool,
}

impl Wheels {
    /// The newest minor with a wheel.
    pub fn newest(&self) -> Option<u8> {
        self.minors.last().copied()
    }
}

#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    files: Vec<File>,
}

#[derive(Debug, Deserialize)]
struct File {
    filename: String,
}

/// The wheels of `name==version` on the index for `minors` on `platform`; `None` when the index
/// does not know the project or the version, or does not speak the JSON API.
pub async fn lookup(
    client: &Client,
    index: &Index,
    name: &str,
    version: &str,
    platform: &Platform,
    minors: &[u8],
) -> Result<Option<Wheels>> {
    let url = index.page(name)?;
    let Some(body) = client
        .get_document(&url, SIMPLE_JSON, MAX_PAGE)
        .await
        .with_context(|| format!("asking {} about {name}", index.display()))?
    else {
        return Ok(None);
    };
    let Ok(page) = serde_json::from_slice::<Page>(&body) else {
        return Ok(None);
    };
    let names: Vec<&str> = page.files.iter().map(|f| f.filename.as_str()).collect();
    Ok(classify(&names, name, version, platform, minors))
}

/// The wheels among `files` of `name==version`; `None` when no file is of that version.
pub fn classify(
    files: &[&str],
    name: &str,
    version: &str,
    platform: &Platform,
    minors: &[u8],
) -> Option<Wheels> {
    let wanted = Version::from_str(version).ok()?;
    let wheels: Vec<WheelFilename> = files
        .iter()
        .filter(|f| f.ends_with(".whl"))
        .filter_map(|f| WheelFilename::from_str(f).ok())
        .filter(|w| w.name.to_string() == name && w.version == wanted)
        .collect();
    let sdists = files.iter().any(|f| {
        let Some(stem) = f.strip_suffix(".tar.gz").or_else(|| f.strip_suffix(".zip")) else {
            return false;
        };
        stem.rsplit_once('-').is_some_and(|(n, v)| {
            pyslip_plan::normalize_name(n).as_deref() == Some(name)
                && Version::from_str(v).is_ok_and(|v| v == wanted)
        })
    });
    if wheels.is_empty() && !sdists {
        return None;
    }
    let arch = match platform.architecture.as_str() {
        "arm64" => Arch::Aarch64,
        _ => Arch::X86_64,
    };
    let accepts = |minor: u8| {
        Tags::from_env(
            uv_platform_tags::Platform::new(
                Os::Manylinux {
                    major: GLIBC.0,
                    minor: GLIBC.1,
                },
                arch,
            ),
            (3, minor),
            "cpython",
            (3, minor),
            TagsOptions {
                manylinux_compatible: true,
                gil_disabled: false,
                debug_enabled: false,
                is_cross: false,
            },
        )
        .is_ok_and(|tags| wheels.iter().any(|w| w.is_compatible(&tags)))
    };
    Some(Wheels {
        minors: minors.iter().copied().filter(|m| accepts(*m)).collect(),
        any_wheel: !wheels.is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amd64() -> Platform {
        Platform::parse("linux/amd64").expect("platform")
    }

    const MINORS: &[u8] = &[9, 10, 11, 12, 13, 14];

    #[test]
    fn cpython_wheels_give_their_minors_abi3_and_pure_wheels_give_all() {
        let files = [
            "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "numpy-1.26.4-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
            "numpy-1.26.4-cp312-cp312-win_amd64.whl",
            "numpy-1.26.4-cp313-cp313-macosx_11_0_arm64.whl",
            "numpy-1.26.4.tar.gz",
            "numpy-2.0.0-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        ];
        let w = classify(&files, "numpy", "1.26.4", &amd64(), MINORS).expect("known");
        assert_eq!(w.minors, BTreeSet::from([11, 12]));
        assert_eq!(w.newest(), Some(12));
        assert!(w.any_wheel);
        let abi3 = ["cryptography-44.0.0-cp39-abi3-manylinux_2_28_x86_64.whl"];
        let w = classify(&abi3, "cryptography", "44.0.0", &amd64(), MINORS).expect("known");
        assert_eq!(w.minors, BTreeSet::from([9, 10, 11, 12, 13, 14]));
        let pure = ["flask-3.1.3-py3-none-any.whl", "flask-3.1.3.tar.gz"];
        let w = classify(&pure, "flask", "3.1.3", &amd64(), MINORS).expect("known");
        assert_eq!(w.minors.len(), MINORS.len());
    }

    #[test]
    fn source_only_and_unknown_versions() {
        let files = ["lxml-4.9.0.tar.gz"];
        let w = classify(&files, "lxml", "4.9.0", &amd64(), MINORS).expect("known");
        assert!(!w.any_wheel && w.minors.is_empty());
        assert_eq!(classify(&files, "lxml", "9.9.9", &amd64(), MINORS), None);
        // A wheel for a glibc newer than the base's does not count.
        let new_glibc = ["x-1.0-cp314-cp314-manylinux_2_45_x86_64.whl"];
        let w = classify(&new_glibc, "x", "1.0", &amd64(), MINORS).expect("known");
        assert!(w.minors.is_empty());
    }

    /// A fake index on loopback: answers each request with the next canned (status, body).
    fn fake_index(replies: Vec<(u16, String)>) -> (Index, std::thread::JoinHandle<Vec<String>>) {
        use std::io::{BufRead as _, BufReader, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            let mut requests = Vec::new();
            for (status, body) in replies {
                let (stream, _) = listener.accept().expect("accept");
                let mut reader = BufReader::new(stream);
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                requests.push(head);
                let mut stream = reader.into_inner();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/vnd.pypi.simple.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
            requests
        });
        let index = Index::from_env(|k| {
            (k == "PIP_INDEX_URL").then(|| format!("http://127.0.0.1:{port}/simple"))
        })
        .expect("index");
        (index, server)
    }

    fn client() -> Client {
        Client::new(pyslip_registry::ClientConfig {
            retry: pyslip_registry::RetryPolicy {
                max_retries: 2,
                min_delay: std::time::Duration::from_millis(1),
                max_delay: std::time::Duration::from_millis(5),
                max_retry_after: std::time::Duration::from_millis(5),
            },
            ..pyslip_registry::ClientConfig::default()
        })
        .expect("client")
    }

    #[tokio::test]
    async fn the_json_simple_api_is_asked_and_retried() {
        let page = r#"{"meta": {"api-version": "1.1"}, "name": "numpy", "files": [
            {"filename": "numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "url": "x", "hashes": {}},
            {"filename": "numpy-1.26.4.tar.gz", "url": "y", "hashes": {}}]}"#;
        let (index, server) = fake_index(vec![(503, String::new()), (200, page.to_owned())]);
        let found = lookup(&client(), &index, "numpy", "1.26.4", &amd64(), MINORS)
            .await
            .expect("lookup")
            .expect("known");
        assert_eq!(found.newest(), Some(12));
        let requests = server.join().expect("server");
        assert_eq!(requests.len(), 2, "one retry after the 503");
        assert!(
            requests[1].starts_with("GET /simple/numpy/ HTTP/1.1"),
            "{}",
            requests[1]
        );
        assert!(
            requests[1]
                .to_ascii_lowercase()
                .contains("accept: application/vnd.pypi.simple.v1+json"),
            "{}",
            requests[1]
        );
        let (index, server) = fake_index(vec![(404, String::new())]);
        let missing = lookup(&client(), &index, "nosuch", "1.0", &amd64(), MINORS).await;
        assert_eq!(missing.expect("404 is an answer"), None);
        server.join().expect("server");
    }

    #[test]
    fn index_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let i = Index::from_env(env(&[])).expect("default");
        assert_eq!(i.display(), "https://pypi.org/simple/");
        let i = Index::from_env(env(&[
            ("PIP_INDEX_URL", "https://pip.example/simple"),
            ("UV_INDEX_URL", "https://user:secret@uv.example/simple"),
        ]))
        .expect("uv wins");
        assert_eq!(i.display(), "https://uv.example/simple/");
        assert_eq!(
            i.page("numpy").expect("page").as_str(),
            "https://user:secret@uv.example/simple/numpy/"
        );
    }
}
