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
    #[serde(default)]
    manifest: Manifest,
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

/// A package of the lock that comes from a local path (a workspace member or a path dependency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UvLocal {
    /// Normalised name.
    pub name: String,
    /// The path as written in the lock, relative to the lock's folder (`.` for the root project).
    pub path: String,
    /// `virtual`: a project that is not a package (not installed; its dependencies are).
    pub is_virtual: bool,
}

/// What a uv.lock says about the install.
#[derive(Debug, Default)]
pub struct UvLock {
    /// Packages `uv sync --no-dev` installs (the project's own name included when it is a package).
    pub packages: BTreeSet<String>,
    /// The project's root package is installed (its source is not `virtual`).
    pub root_is_package: bool,
    /// Packages from local paths that the install needs besides the project itself, in name
    /// order (virtual ones are not installed and are left out).
    pub locals: Vec<UvLocal>,
    /// `[manifest] members`: the workspace's member names (empty for a single project).
    pub members: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Manifest {
    #[serde(default)]
    members: Vec<String>,
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

/// The local path of a package source (`editable`, `directory`, `virtual`, `path`), if any.
fn local_source(source: Option<&toml::Table>) -> Option<UvLocal> {
    let source = source?;
    ["editable", "directory", "virtual", "path"]
        .iter()
        .find_map(|key| {
            let path = source.get(*key)?.as_str()?;
            Some(UvLocal {
                name: String::new(),
                path: path.to_owned(),
                is_virtual: *key == "virtual",
            })
        })
}

/// Parses uv.lock. The root is the package named `project_name` (`[project] name` of the
/// project being built, which may be a workspace member), else the package at `.`.
pub fn parse_uv_lock(
    text: &str,
    project_name: Option<&str>,
    env: Option<&MarkerEnvironment>,
) -> Result<UvLock, PlanError> {
    let expected = "a uv.lock written by `uv lock` (run `uv lock` to regenerate it)";
    let lock: UvLockToml =
        toml::from_str(text).map_err(|err| error::toml_error(UV_LOCK, text, &err, expected))?;
    let mut graph: BTreeMap<String, Node> = BTreeMap::new();
    let mut locals: BTreeMap<String, UvLocal> = BTreeMap::new();
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
        if let Some(local) = local_source(package.source.as_ref()) {
            locals.insert(name.clone(), UvLocal { name, ..local });
        }
    }
    let wanted = project_name
        .and_then(deps::normalize)
        .filter(|w| locals.contains_key(w));
    let roots: Vec<&UvLocal> = match &wanted {
        Some(w) => locals.get(w).into_iter().collect(),
        None => locals.values().filter(|l| l.path == ".").collect(),
    };
    let root_is_package = roots.iter().any(|r| !r.is_virtual);
    let root_edges: Vec<Edge> = roots
        .iter()
        .map(|r| Edge {
            name: r.name.clone(),
            ..Edge::default()
        })
        .collect();
    let mut packages = closure(&graph, &root_edges, env);
    let root_names: BTreeSet<&str> = roots.iter().map(|r| r.name.as_str()).collect();
    for local in locals.values().filter(|l| l.is_virtual) {
        packages.remove(&local.name);
    }
    let needed = locals
        .values()
        .filter(|l| !l.is_virtual && !root_names.contains(l.name.as_str()))
        .filter(|l| packages.contains(&l.name))
        .cloned()
        .collect();
    Ok(UvLock {
        packages,
        root_is_package,
        locals: needed,
        members: lock
            .manifest
            .members
            .iter()
            .filter_map(|m| deps::normalize(m))
            .collect(),
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
        assert!(lock.locals.is_empty());
    }

    const WORKSPACE: &str = r#"
version = 1
requires-python = ">=3.12"

[manifest]
members = ["api", "shared", "web"]

[[package]]
name = "api"
version = "0.1.0"
source = { editable = "apps/api" }
dependencies = [{ name = "fastapi" }, { name = "shared" }]

[[package]]
name = "web"
version = "0.1.0"
source = { editable = "apps/web" }
dependencies = [{ name = "flask" }, { name = "shared" }]

[[package]]
name = "shared"
version = "0.1.0"
source = { editable = "libs/shared" }
dependencies = [{ name = "pydantic" }]

[[package]]
name = "fastapi"
version = "0.115.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "flask"
version = "3.1.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "pydantic"
version = "2.0.0"
source = { registry = "https://pypi.org/simple" }
"#;

    #[test]
    fn a_workspace_member_installs_its_closure_and_its_local_dependencies() {
        let lock = parse_uv_lock(WORKSPACE, Some("api"), None).expect("valid");
        let names: Vec<&str> = lock.packages.iter().map(String::as_str).collect();
        assert_eq!(names, vec!["api", "fastapi", "pydantic", "shared"]);
        assert!(lock.root_is_package);
        assert_eq!(
            lock.locals,
            vec![UvLocal {
                name: "shared".into(),
                path: "libs/shared".into(),
                is_virtual: false
            }]
        );
        assert_eq!(lock.members, vec!["api", "shared", "web"]);
    }

    #[test]
    fn malformed_locks_name_the_line() {
        let err =
            parse_uv_lock("version = 1\n[[package]]\nname = 3\n", None, None).expect_err("bad");
        assert!(err.to_string().starts_with("uv.lock:3:"), "{err}");
    }
}
