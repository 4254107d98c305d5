//! uv.lock: the packages `uv sync --locked --no-dev` installs, found by walking the lock's
//! dependency graph from the project's package.

use std::collections::{BTreeMap, BTreeSet};

use pep508_rs::MarkerEnvironment;
use serde::Deserialize;

use super::{Edge, Node, closure};
use crate::deps;
use crate::error::{self, PlanError};

/// `uv.lock`.
pub const UV_LOCK: &str = "uv.lock";

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
    fn malformed_locks_name_the_line() {
        let err =
            parse_uv_lock("version = 1\n[[package]]\nname = 3\n", None, None).expect_err("bad");
        assert!(err.to_string().starts_with("uv.lock:3:"), "{err}");
    }
}
