//! Project detection: turns a project directory (plus command-line flags) into a [`BuildPlan`].
//!
//! Pure: reads the project directory (only the files detection needs, plus one stat-only walk for
//! the app layer), never writes, never touches the network. The serde serialization of
//! [`BuildPlan`] is `pyslip plan --json`; [`render_table`] is the human output.

mod app;
mod command;
mod config;
mod decide;
mod deps;
mod django;
mod error;
mod files;
mod framework;
mod frameworks;
mod ignore;
mod install;
mod local;
pub mod locks;
mod model;
mod pins;
mod plan;
mod procfile;
mod project;
mod pyproject;
mod render;
mod requirements;
mod setup;
mod start;
mod version;
mod workspace;

pub use config::KNOWN_KEYS as CONFIG_KEYS;
pub use error::PlanError;
pub use model::{
    AppTarget, BuildPlan, Collectstatic, DEFAULT_BASE_REPO, Decision, FileKind, Framework, Ignored,
    InstallPlan, Installer, LocalPackage, Overrides, PLAN_JSON_VERSION, PackageManager, Server,
    ShippedFile, ShippedFiles, Source, Workload, Workspace,
};
pub use pins::{ExactPin, exact_pins};
pub use plan::{DEFAULT_USER, WORKDIR, plan};
pub use render::{describe_source, human_size, render_table};

/// The Python versions pyslip builds (`X.Y`), newest first.
pub fn supported_pythons() -> Vec<String> {
    (version::OLDEST_MINOR..=version::NEWEST_MINOR)
        .rev()
        .map(|minor| format!("3.{minor}"))
        .collect()
}

/// A distribution name PEP 503-normalised (`Flask_Cors` → `flask-cors`); `None` when invalid.
pub fn normalize_name(name: &str) -> Option<String> {
    deps::normalize(name)
}

/// Entry points of the individual parsers, for property tests and tools: each takes untrusted
/// text and returns a value or a [`PlanError`], never panicking.
pub mod parsers {
    use crate::error::PlanError;

    /// Parses `.python-version`.
    pub fn python_version_file(text: &str) -> Result<(), PlanError> {
        crate::version::parse_python_version_file(".python-version", text).map(drop)
    }
    /// Parses `runtime.txt`.
    pub fn runtime_txt(text: &str) -> Result<(), PlanError> {
        crate::version::parse_runtime_txt("runtime.txt", text).map(drop)
    }
    /// Parses `pyproject.toml` (including `[tool.pyslip]`).
    pub fn pyproject_toml(text: &str) -> Result<(), PlanError> {
        crate::pyproject::parse(text).map(drop)
    }
    /// Parses `pyslip.toml`.
    pub fn pyslip_toml(text: &str) -> Result<(), PlanError> {
        crate::config::parse_pyslip_toml(text)
            .and_then(|c| c.env())
            .map(drop)
    }
    /// Parses `Pipfile`.
    pub fn pipfile(text: &str) -> Result<(), PlanError> {
        crate::locks::pipfile::parse_pipfile(text).map(drop)
    }
    /// Parses `Pipfile.lock`.
    pub fn pipfile_lock(text: &str) -> Result<(), PlanError> {
        crate::locks::pipfile::parse_lock(text).map(drop)
    }
    /// Parses `poetry.lock`.
    pub fn poetry_lock(text: &str) -> Result<(), PlanError> {
        crate::locks::poetry::parse(text).map(drop)
    }
    /// Parses `uv.lock`.
    pub fn uv_lock(text: &str) -> Result<(), PlanError> {
        crate::locks::uv::parse_uv_lock(text, None, None).map(drop)
    }
    /// Parses a `Procfile`.
    pub fn procfile(text: &str) -> Result<(), PlanError> {
        crate::procfile::parse(text).map(drop)
    }
    /// Parses `.dockerignore`.
    pub fn dockerignore(text: &str) -> Result<(), PlanError> {
        crate::ignore::parse_dockerignore(".dockerignore", text).map(drop)
    }
    /// Parses a Python version specifier (`requires-python`) or poetry constraint.
    pub fn python_specifier(text: &str) {
        if let Ok(spec) = crate::version::parse_pep440_specifier(text) {
            let _ = crate::version::newest_satisfying(&spec);
        }
        if let Ok(spec) = crate::version::parse_poetry_constraint(text) {
            let _ = crate::version::newest_satisfying(&spec);
        }
    }
    /// Parses one PEP 508 requirement line.
    pub fn requirement(text: &str) {
        let _ = crate::deps::parse_requirement(text, None);
    }
}
