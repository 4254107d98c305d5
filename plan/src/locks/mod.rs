//! Lock files and Pipfiles, parsed once for both the plan and the install.
//!
//! Each format has one parser here. The plan walks the parsed lock from the project's main
//! dependencies to decide which packages are installed (its `dependencies`); the install crate
//! writes exactly those packages, at their locked versions and hashes, from the same parsed
//! records, so that what the plan shows is what the image gets.

pub mod pipfile;
pub mod poetry;
pub mod uv;

use std::collections::{BTreeMap, BTreeSet};

use pep508_rs::MarkerEnvironment;

use crate::deps;

pub use pipfile::{PIPFILE, PIPFILE_LOCK, Pipfile, PipfileLock, PipfileRequirement};
pub use poetry::{POETRY_LOCK, PoetryLock};
pub use uv::{UV_LOCK, UvLock};

/// Where a locked package comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageSource {
    /// A package index: `None` for the default one (left to the environment), else its URL.
    Registry(Option<String>),
    /// A local directory (a path dependency), relative to the lock's folder.
    Directory {
        /// The path as written in the lock.
        path: String,
        /// Installed editable (`develop = true`, `editable = true`).
        editable: bool,
    },
    /// A local wheel or source archive, relative to the lock's folder.
    File {
        /// The path as written in the lock.
        path: String,
    },
    /// A VCS checkout.
    Git {
        /// The repository URL.
        url: String,
    },
    /// A direct URL.
    Url {
        /// The URL.
        url: String,
    },
}

impl PackageSource {
    /// A short name of the source kind for messages (`git`, `directory`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            PackageSource::Registry(_) => "registry",
            PackageSource::Directory { .. } => "directory",
            PackageSource::File { .. } => "file",
            PackageSource::Git { .. } => "git",
            PackageSource::Url { .. } => "url",
        }
    }
}

/// One package of a lock, as the install needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPackage {
    /// The name as written in the lock.
    pub name: String,
    /// PEP 503-normalised name.
    pub key: String,
    /// The locked version (without `==`); `None` for path and VCS entries that have none.
    pub version: Option<String>,
    /// Extras the lock installs it with (Pipfile.lock).
    pub extras: Vec<String>,
    /// The hashes of its files (`sha256:…`).
    pub hashes: Vec<String>,
    /// The environment marker under which it is installed, when any.
    pub markers: Option<String>,
    /// Where it comes from.
    pub source: PackageSource,
}

/// A dependency edge of a lock.
#[derive(Debug, Clone, Default)]
pub(crate) struct Edge {
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
pub(crate) struct Node {
    /// Unconditional dependencies.
    pub deps: Vec<Edge>,
    /// Dependencies per extra.
    pub extras: BTreeMap<String, Vec<Edge>>,
}

/// Whether `marker` holds in `env` (no env, or an unparseable marker, counts as true).
pub(crate) fn marker_holds(
    name: &str,
    marker: Option<&str>,
    env: Option<&MarkerEnvironment>,
) -> bool {
    match (marker, env) {
        (Some(marker), Some(_)) if !marker.trim().is_empty() => {
            deps::parse_requirement(&format!("{name}; {marker}"), env).map_or(true, |r| r.applies)
        }
        _ => true,
    }
}

/// Every package reachable from `roots`, markers evaluated in `env` (unparseable markers count as true).
pub(crate) fn closure(
    graph: &BTreeMap<String, Node>,
    roots: &[Edge],
    env: Option<&MarkerEnvironment>,
) -> BTreeSet<String> {
    let applies = |edge: &Edge| marker_holds(&edge.name, edge.marker.as_deref(), env);
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

/// A string list of a TOML or JSON value, by key (missing or mistyped means empty).
pub(crate) fn toml_strings(value: Option<&toml::Value>) -> Vec<String> {
    value
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
