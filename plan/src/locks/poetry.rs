//! poetry.lock: `poetry install --no-root --only main` semantics. The plan walks the lock's graph
//! from the main group's dependencies; the install writes those packages from the same records.

use std::collections::{BTreeMap, BTreeSet};

use pep508_rs::MarkerEnvironment;
use serde::Deserialize;

use super::{Edge, LockedPackage, Node, PackageSource, closure};
use crate::deps;
use crate::error::{self, PlanError};

/// `poetry.lock`.
pub const POETRY_LOCK: &str = "poetry.lock";

const EXPECTED: &str =
    "a poetry.lock written by `poetry lock` (run `poetry lock` to regenerate it)";

#[derive(Debug, Deserialize)]
struct PoetryLockToml {
    #[serde(default)]
    package: Vec<PackageToml>,
    #[serde(default)]
    metadata: toml::Table,
}

#[derive(Debug, Deserialize)]
struct PackageToml {
    name: String,
    version: Option<String>,
    #[serde(default)]
    dependencies: toml::Table,
    #[serde(default)]
    extras: BTreeMap<String, Vec<String>>,
    files: Option<Vec<toml::Table>>,
    markers: Option<toml::Value>,
    source: Option<toml::Table>,
    #[serde(default)]
    develop: bool,
}

/// A parsed poetry.lock.
#[derive(Debug, Clone, Default)]
pub struct PoetryLock {
    /// Every `[[package]]`, in file order.
    pub packages: Vec<LockedPackage>,
    graph: BTreeMap<String, Node>,
}

/// Parses poetry.lock (format 1.x with `[metadata.files]`, and 2.x with per-package `files`).
pub fn parse(text: &str) -> Result<PoetryLock, PlanError> {
    let lock: PoetryLockToml =
        toml::from_str(text).map_err(|err| error::toml_error(POETRY_LOCK, text, &err, EXPECTED))?;
    // Lock 1.x keeps the files in `[metadata.files]`.
    let legacy_files = lock.metadata.get("files").and_then(toml::Value::as_table);
    let mut out = PoetryLock::default();
    for package in &lock.package {
        let key = deps::normalize(&package.name).ok_or_else(|| {
            PlanError::malformed(
                POETRY_LOCK,
                None,
                format!("{:?} is not a package name", package.name),
                Some(EXPECTED),
            )
        })?;
        let node = out.graph.entry(key.clone()).or_default();
        node.deps.extend(edges(&package.dependencies));
        for (extra, list) in &package.extras {
            let extra = deps::normalize(extra).unwrap_or_else(|| extra.clone());
            node.extras
                .entry(extra)
                .or_default()
                .extend(list.iter().filter_map(|t| extra_edge(t)));
        }
        let files = package.files.clone().or_else(|| {
            legacy_files
                .and_then(|t| t.get(&package.name))
                .and_then(toml::Value::as_array)
                .map(|a| a.iter().filter_map(|f| f.as_table().cloned()).collect())
        });
        let hashes = files
            .unwrap_or_default()
            .iter()
            .filter_map(|f| {
                f.get("hash")
                    .and_then(toml::Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        // 2.x writes markers per group (`markers = {main = "..."}`); the main group's apply.
        let markers = match &package.markers {
            Some(toml::Value::String(m)) => Some(m.clone()),
            Some(toml::Value::Table(t)) => t
                .get("main")
                .and_then(toml::Value::as_str)
                .map(str::to_owned),
            _ => None,
        };
        out.packages.push(LockedPackage {
            name: package.name.clone(),
            key,
            version: package.version.clone(),
            extras: Vec::new(),
            hashes,
            markers,
            source: source(package.source.as_ref(), package.develop),
        });
    }
    Ok(out)
}

fn source(table: Option<&toml::Table>, develop: bool) -> PackageSource {
    let get = |k: &str| {
        table
            .and_then(|t| t.get(k))
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    match get("type").as_str() {
        "" => PackageSource::Registry(None),
        "legacy" => {
            let url = get("url");
            let pypi = url.trim_end_matches('/') == "https://pypi.org/simple";
            PackageSource::Registry((!pypi).then_some(url))
        }
        "directory" => PackageSource::Directory {
            path: get("url"),
            editable: develop,
        },
        "file" => PackageSource::File { path: get("url") },
        "git" => PackageSource::Git { url: get("url") },
        _ => PackageSource::Url { url: get("url") },
    }
}

impl PoetryLock {
    /// What `poetry install --only main` installs from `roots` (the main group's dependencies),
    /// markers evaluated in `env`.
    pub(crate) fn installed(
        &self,
        roots: &[Edge],
        env: Option<&MarkerEnvironment>,
    ) -> BTreeSet<String> {
        closure(&self.graph, roots, env)
    }
}

/// Edges of a poetry dependency table (`name = "^1"`, `{version, extras, optional, markers}`, or a list of those).
pub(crate) fn edges(table: &toml::Table) -> Vec<Edge> {
    let mut edges = Vec::new();
    for (name, value) in table {
        let Some(normalised) = deps::normalize(name) else {
            continue;
        };
        if normalised == "python" {
            continue;
        }
        let tables: Vec<&toml::Value> = match value {
            toml::Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for item in tables {
            let extras = item
                .get("extras")
                .and_then(toml::Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|e| e.as_str().and_then(deps::normalize))
                        .collect()
                })
                .unwrap_or_default();
            edges.push(Edge {
                name: normalised.clone(),
                extras,
                marker: item
                    .get("markers")
                    .and_then(toml::Value::as_str)
                    .map(str::to_owned),
                optional: item
                    .get("optional")
                    .and_then(toml::Value::as_bool)
                    .unwrap_or(false),
            });
        }
    }
    edges
}

/// `uvicorn[standard] (>=0.12.0)` → an edge for `uvicorn` with extra `standard`.
fn extra_edge(text: &str) -> Option<Edge> {
    let end = text
        .find([' ', '(', '<', '>', '=', '!', '~', ';'])
        .unwrap_or(text.len());
    let head = text.get(..end)?;
    let (name, extras) = match head.split_once('[') {
        Some((name, rest)) => (
            name,
            rest.trim_end_matches(']')
                .split(',')
                .filter_map(deps::normalize)
                .collect(),
        ),
        None => (head, Vec::new()),
    };
    Some(Edge {
        name: deps::normalize(name)?,
        extras,
        marker: None,
        optional: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
[[package]]
name = "fastapi"
version = "0.115.0"
groups = ["main"]
files = [{file = "fastapi-0.115.0-py3-none-any.whl", hash = "sha256:aa"}]
[package.dependencies]
starlette = ">=0.37"
uvicorn = {version = ">=0.12.0", extras = ["standard"], optional = true, markers = "extra == \"standard\""}
[package.extras]
standard = ["uvicorn[standard] (>=0.12.0)"]

[[package]]
name = "starlette"
version = "0.38.0"
markers = {main = "python_version >= \"3.8\""}

[[package]]
name = "uvicorn"
version = "0.30.0"

[[package]]
name = "black"
version = "24.0"

[[package]]
name = "shared"
version = "0.1.0"
develop = true
[package.source]
type = "directory"
url = "../shared"
"#;

    #[test]
    fn closure_follows_extras_and_skips_optional() {
        let lock = parse(LOCK).expect("valid");
        let roots = [Edge {
            name: "fastapi".into(),
            ..Edge::default()
        }];
        let names = lock.installed(&roots, None);
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            vec!["fastapi", "starlette"]
        );
        let roots = [Edge {
            name: "fastapi".into(),
            extras: vec!["standard".into()],
            ..Edge::default()
        }];
        let names = lock.installed(&roots, None);
        assert!(names.contains("uvicorn") && !names.contains("black"));
    }

    #[test]
    fn records_carry_versions_hashes_markers_and_sources() {
        let lock = parse(LOCK).expect("valid");
        let fastapi = &lock.packages[0];
        assert_eq!(fastapi.version.as_deref(), Some("0.115.0"));
        assert_eq!(fastapi.hashes, vec!["sha256:aa"]);
        assert_eq!(fastapi.source, PackageSource::Registry(None));
        assert_eq!(
            lock.packages[1].markers.as_deref(),
            Some("python_version >= \"3.8\"")
        );
        assert_eq!(
            lock.packages[4].source,
            PackageSource::Directory {
                path: "../shared".into(),
                editable: true
            }
        );
    }

    #[test]
    fn lock_1x_metadata_files_give_hashes() {
        let lock = parse(
            "[[package]]\nname = \"a\"\nversion = \"1.0\"\ncategory = \"main\"\n\n[metadata.files]\na = [{file = \"a-1.0.tar.gz\", hash = \"sha256:aa\"}]\n",
        )
        .expect("valid");
        assert_eq!(lock.packages[0].hashes, vec!["sha256:aa"]);
    }

    #[test]
    fn malformed_lock_names_the_line() {
        let err = parse("[[package]\n").expect_err("bad");
        assert!(err.to_string().starts_with("poetry.lock:1:"), "{err}");
    }
}
