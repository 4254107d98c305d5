//! uv.lock and poetry.lock: the packages a `--no-dev` / `--only main` install puts in the image,
//! found by walking the lock's dependency graph from the project's main dependencies.

use std::collections::{BTreeMap, BTreeSet};

use pep508_rs::MarkerEnvironment;
use serde::Deserialize;

use crate::deps;
use crate::error::{self, PlanError};

/// `uv.lock`.
pub const UV_LOCK: &str = "uv.lock";
/// `poetry.lock`.
pub const POETRY_LOCK: &str = "poetry.lock";

/// A dependency edge of a lock.
#[derive(Debug, Clone, Default)]
pub struct Edge {
    /// Normalised name.
    pub name: String,
    /// Extras requested.
    pub extras: Vec<String>,
    /// Marker expression, when any.
    pub marker: Option<String>,
    /// Only installed through an extra (poetry's `optional = true`).
    pub optional: bool,
}

/// A locked package's outgoing edges.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Unconditional dependencies.
    pub deps: Vec<Edge>,
    /// Dependencies per extra.
    pub extras: BTreeMap<String, Vec<Edge>>,
}

/// Every package reachable from `roots`, markers evaluated in `env` (unparseable markers count as true).
pub fn closure(
    graph: &BTreeMap<String, Node>,
    roots: &[Edge],
    env: Option<&MarkerEnvironment>,
) -> BTreeSet<String> {
    let applies = |edge: &Edge| match (&edge.marker, env) {
        (Some(marker), Some(_)) => {
            deps::parse_requirement(&format!("{}; {marker}", edge.name), env)
                .map_or(true, |r| r.applies)
        }
        _ => true,
    };
    let mut seen: BTreeSet<(String, Option<String>)> = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut stack: Vec<Edge> = roots.iter().filter(|e| applies(e)).cloned().collect();
    while let Some(edge) = stack.pop() {
        names.insert(edge.name.clone());
        let Some(node) = graph.get(&edge.name) else {
            continue;
        };
        if seen.insert((edge.name.clone(), None)) {
            stack.extend(
                node.deps
                    .iter()
                    .filter(|e| !e.optional && applies(e))
                    .cloned(),
            );
        }
        for extra in &edge.extras {
            if seen.insert((edge.name.clone(), Some(extra.clone()))) {
                stack.extend(
                    node.extras
                        .get(extra)
                        .into_iter()
                        .flatten()
                        .filter(|e| applies(e))
                        .cloned(),
                );
            }
        }
    }
    names
}

#[derive(Debug, Deserialize)]
struct UvLockToml {
    #[serde(default)]
    package: Vec<UvPackage>,
}

#[derive(Debug, Deserialize)]
struct UvPackage {
    name: String,
    source: Option<toml::Table>,
    #[serde(default)]
    dependencies: Vec<UvDep>,
    #[serde(default, rename = "optional-dependencies")]
    optional_dependencies: BTreeMap<String, Vec<UvDep>>,
}

#[derive(Debug, Deserialize)]
struct UvDep {
    name: String,
    #[serde(default)]
    extra: Vec<String>,
    marker: Option<String>,
}

/// What a uv.lock says about the install.
#[derive(Debug, Default)]
pub struct UvLock {
    /// Packages `uv sync --no-dev` installs (the project's own name included when it is a package).
    pub packages: BTreeSet<String>,
    /// The project's root package is installed (its source is not `virtual`).
    pub root_is_package: bool,
}

fn uv_edge(dep: &UvDep) -> Edge {
    Edge {
        name: deps::normalize(&dep.name).unwrap_or_else(|| dep.name.clone()),
        extras: dep
            .extra
            .iter()
            .filter_map(|e| deps::normalize(e))
            .collect(),
        marker: dep.marker.clone(),
        optional: false,
    }
}

/// Parses uv.lock; `project_name` (from `[project] name`) identifies the root when it is not at `.`.
pub fn parse_uv_lock(
    text: &str,
    project_name: Option<&str>,
    env: Option<&MarkerEnvironment>,
) -> Result<UvLock, PlanError> {
    let expected = "a uv.lock written by `uv lock` (run `uv lock` to regenerate it)";
    let lock: UvLockToml =
        toml::from_str(text).map_err(|err| error::toml_error(UV_LOCK, text, &err, expected))?;
    let mut graph: BTreeMap<String, Node> = BTreeMap::new();
    let mut roots = Vec::new();
    let mut root_is_package = false;
    let wanted = project_name.and_then(deps::normalize);
    for package in &lock.package {
        let name = deps::normalize(&package.name).ok_or_else(|| {
            PlanError::malformed(
                UV_LOCK,
                None,
                format!("{:?} is not a package name", package.name),
                Some(expected),
            )
        })?;
        let node = graph.entry(name.clone()).or_default();
        node.deps.extend(package.dependencies.iter().map(uv_edge));
        for (extra, list) in &package.optional_dependencies {
            let extra = deps::normalize(extra).unwrap_or_else(|| extra.clone());
            node.extras
                .entry(extra)
                .or_default()
                .extend(list.iter().map(uv_edge));
        }
        let source = package.source.as_ref();
        let local = |key: &str| {
            source
                .and_then(|s| s.get(key))
                .and_then(toml::Value::as_str)
                == Some(".")
        };
        let is_root = local("editable")
            || local("virtual")
            || local("directory")
            || (wanted.as_deref() == Some(name.as_str())
                && source.is_some_and(|s| !s.contains_key("registry")));
        if is_root {
            roots.push(Edge {
                name: name.clone(),
                ..Edge::default()
            });
            root_is_package |= !local("virtual");
        }
    }
    let mut packages = closure(&graph, &roots, env);
    if !root_is_package {
        for root in &roots {
            packages.remove(&root.name);
        }
    }
    Ok(UvLock {
        packages,
        root_is_package,
    })
}

#[derive(Debug, Deserialize)]
struct PoetryLockToml {
    #[serde(default)]
    package: Vec<PoetryPackage>,
}

#[derive(Debug, Deserialize)]
struct PoetryPackage {
    name: String,
    #[serde(default)]
    dependencies: toml::Table,
    #[serde(default)]
    extras: BTreeMap<String, Vec<String>>,
}

/// Edges of a poetry dependency table (`name = "^1"`, `{version, extras, optional, markers}`, or a list of those).
pub fn poetry_edges(table: &toml::Table) -> Vec<Edge> {
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
fn poetry_extra_edge(text: &str) -> Option<Edge> {
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

/// Parses poetry.lock and returns what `poetry install --only main` installs from `roots`.
pub fn parse_poetry_lock(
    text: &str,
    roots: &[Edge],
    env: Option<&MarkerEnvironment>,
) -> Result<BTreeSet<String>, PlanError> {
    let expected = "a poetry.lock written by `poetry lock` (run `poetry lock` to regenerate it)";
    let lock: PoetryLockToml =
        toml::from_str(text).map_err(|err| error::toml_error(POETRY_LOCK, text, &err, expected))?;
    let mut graph: BTreeMap<String, Node> = BTreeMap::new();
    for package in &lock.package {
        let name = deps::normalize(&package.name).ok_or_else(|| {
            PlanError::malformed(
                POETRY_LOCK,
                None,
                format!("{:?} is not a package name", package.name),
                Some(expected),
            )
        })?;
        let node = graph.entry(name).or_default();
        node.deps.extend(poetry_edges(&package.dependencies));
        for (extra, list) in &package.extras {
            let extra = deps::normalize(extra).unwrap_or_else(|| extra.clone());
            node.extras
                .entry(extra)
                .or_default()
                .extend(list.iter().filter_map(|t| poetry_extra_edge(t)));
        }
    }
    Ok(closure(&graph, roots, env))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UV: &str = r#"
version = 1
requires-python = ">=3.12"

[[package]]
name = "demo"
version = "0.1.0"
source = { editable = "." }
dependencies = [{ name = "fastapi", extra = ["standard"] }]

[package.dev-dependencies]
dev = [{ name = "pytest" }]

[[package]]
name = "fastapi"
version = "0.115.0"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "starlette" }]

[package.optional-dependencies]
standard = [{ name = "uvicorn", extra = ["standard"] }, { name = "pywin", marker = "sys_platform == 'win32'" }]

[[package]]
name = "uvicorn"
version = "0.30.0"
source = { registry = "https://pypi.org/simple" }

[package.optional-dependencies]
standard = [{ name = "uvloop", marker = "sys_platform != 'win32'" }]

[[package]]
name = "pytest"
version = "8.0.0"
source = { registry = "https://pypi.org/simple" }
"#;

    #[test]
    fn uv_lock_closure_skips_dev_and_foreign_markers() {
        let env = deps::marker_env(&crate::version::PyVersion {
            major: 3,
            minor: 12,
            patch: None,
        });
        let lock = parse_uv_lock(UV, Some("demo"), env.as_ref()).expect("valid");
        let names: Vec<&str> = lock.packages.iter().map(String::as_str).collect();
        assert_eq!(
            names,
            vec!["demo", "fastapi", "starlette", "uvicorn", "uvloop"]
        );
        assert!(lock.root_is_package);
    }

    #[test]
    fn poetry_closure_follows_extras_and_skips_optional() {
        let text = r#"
[[package]]
name = "fastapi"
version = "0.115.0"
groups = ["main"]
[package.dependencies]
starlette = ">=0.37"
uvicorn = {version = ">=0.12.0", extras = ["standard"], optional = true, markers = "extra == \"standard\""}
[package.extras]
standard = ["uvicorn[standard] (>=0.12.0)"]

[[package]]
name = "starlette"
version = "0.38.0"

[[package]]
name = "uvicorn"
version = "0.30.0"

[[package]]
name = "black"
version = "24.0"
"#;
        let roots = [Edge {
            name: "fastapi".into(),
            ..Edge::default()
        }];
        let names = parse_poetry_lock(text, &roots, None).expect("valid");
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            vec!["fastapi", "starlette"]
        );
        let roots = [Edge {
            name: "fastapi".into(),
            extras: vec!["standard".into()],
            ..Edge::default()
        }];
        let names = parse_poetry_lock(text, &roots, None).expect("valid");
        assert!(names.contains("uvicorn") && !names.contains("black"));
    }

    #[test]
    fn malformed_locks_name_the_line() {
        let err =
            parse_uv_lock("version = 1\n[[package]]\nname = 3\n", None, None).expect_err("bad");
        assert!(err.to_string().starts_with("uv.lock:3:"), "{err}");
        let err = parse_poetry_lock("[[package]\n", &[], None).expect_err("bad");
        assert!(err.to_string().starts_with("poetry.lock:1:"), "{err}");
    }
}
