//! The install's exactly pinned or locked packages (`numpy==1.26.4` in requirements.txt, every
//! index package of a lock): what the build asks the package index about, to choose a Python
//! those exact versions have wheels for. Pure: reads the plan's install inputs only.

use std::path::Path;

use serde::Deserialize;

use crate::error::PlanError;
use crate::locks::{self, PackageSource, pipfile, poetry};
use crate::model::{BuildPlan, PackageManager};
use crate::project::Project;
use crate::requirements;
use crate::workspace;

/// One package pinned to one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactPin {
    /// PEP 503-normalised name.
    pub name: String,
    /// The version.
    pub version: String,
    /// The file that pins it, relative to the project.
    pub file: String,
    /// 1-based line, where known.
    pub line: Option<usize>,
}

/// The exact pins of `plan`'s install of the project in `dir`, in file order (requirements) or
/// name order (locks), each installed from an index; empty when nothing is pinned exactly.
pub fn exact_pins(dir: &Path, plan: &BuildPlan) -> Result<Vec<ExactPin>, PlanError> {
    let Some(install) = &plan.install else {
        return Ok(Vec::new());
    };
    let project = Project::open(dir)?;
    let installed = |name: &str| install.dependencies.iter().any(|d| d == name);
    let from_lock = |file: &str, packages: &[locks::LockedPackage]| -> Vec<ExactPin> {
        packages
            .iter()
            .filter(|p| installed(&p.key) && matches!(p.source, PackageSource::Registry(_)))
            .filter_map(|p| {
                Some(ExactPin {
                    name: p.key.clone(),
                    version: p.version.clone()?,
                    file: file.to_owned(),
                    line: None,
                })
            })
            .collect()
    };
    Ok(match &install.manager {
        PackageManager::Requirements => requirements::read(&project, "requirements.txt", None)?
            .pins
            .into_iter()
            .filter(|(name, ..)| installed(name))
            .map(|(name, version, file, line)| ExactPin {
                name,
                version,
                file,
                line: Some(line),
            })
            .collect(),
        PackageManager::Poetry { locked: true } => {
            let text = project.read(poetry::POETRY_LOCK)?.unwrap_or_default();
            from_lock(poetry::POETRY_LOCK, &poetry::parse(&text)?.packages)
        }
        PackageManager::Pipenv { locked: true } => {
            let text = project.read(pipfile::PIPFILE_LOCK)?.unwrap_or_default();
            from_lock(pipfile::PIPFILE_LOCK, &pipfile::parse_lock(&text)?.packages)
        }
        PackageManager::UvLock => {
            let root = install.workspace.as_ref().map_or("", |w| w.root.as_str());
            let file = workspace::join(root, locks::UV_LOCK);
            let text = Project::open(&dir.join(root))?
                .read(locks::UV_LOCK)?
                .unwrap_or_default();
            uv_pins(&text, &file)?
                .into_iter()
                .filter(|p| installed(&p.name))
                .collect()
        }
        _ => Vec::new(),
    })
}

#[derive(Debug, Deserialize)]
struct UvLockVersions {
    #[serde(default)]
    package: Vec<UvPackageVersion>,
}

#[derive(Debug, Deserialize)]
struct UvPackageVersion {
    name: String,
    version: Option<String>,
    source: Option<toml::Table>,
}

/// The registry packages of a uv.lock with their versions.
fn uv_pins(text: &str, file: &str) -> Result<Vec<ExactPin>, PlanError> {
    let lock: UvLockVersions = toml::from_str(text).map_err(|err| {
        crate::error::toml_error(file, text, &err, "a uv.lock written by `uv lock`")
    })?;
    Ok(lock
        .package
        .into_iter()
        .filter(|p| {
            p.source
                .as_ref()
                .is_some_and(|s| s.contains_key("registry"))
        })
        .filter_map(|p| {
            Some(ExactPin {
                name: crate::deps::normalize(&p.name)?,
                version: p.version?,
                file: file.to_owned(),
                line: None,
            })
        })
        .collect())
}
