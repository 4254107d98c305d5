//! The package manager and dependency install (first signal wins; the others are reported).

use std::collections::BTreeSet;

use pep508_rs::MarkerEnvironment;

use crate::config::LoadedConfig;
use crate::deps;
use crate::error::PlanError;
use crate::locks::pipfile::{self, Pipfile, PipfileLock};
use crate::locks::{self, Edge, poetry, uv};
use crate::model::{Ignored, InstallPlan, Installer, Overrides, PackageManager, Source};
use crate::project::Project;
use crate::pyproject::{self, Parsed};
use crate::requirements;
use crate::setup;

/// What the project files say, parsed once by the caller.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The project.
    pub project: &'a Project,
    /// pyproject.toml.
    pub pyproject: Option<&'a Parsed>,
    /// Pipfile.
    pub pipfile: Option<&'a Pipfile>,
    /// Pipfile.lock.
    pub pipfile_lock: Option<&'a PipfileLock>,
    /// Marker environment of the target interpreter.
    pub env: Option<&'a MarkerEnvironment>,
}

/// The decided install plus notes.
#[derive(Debug, Default)]
pub struct InstallChoice {
    /// `None`: no dependency layer.
    pub plan: Option<InstallPlan>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Ignored signals.
    pub ignored: Vec<Ignored>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Requirements,
    Pipenv,
    UvLock,
    Poetry,
    Pep621,
    SetupPy,
}

impl Signal {
    fn label(self) -> &'static str {
        match self {
            Signal::Requirements => "requirements.txt",
            Signal::Pipenv => "Pipfile",
            Signal::UvLock => "uv.lock",
            Signal::Poetry => "poetry.lock / [tool.poetry]",
            Signal::Pep621 => "pyproject.toml [project] dependencies",
            Signal::SetupPy => "setup.py / setup.cfg",
        }
    }
}

/// Decides the install.
pub fn choose(
    inputs: &Inputs<'_>,
    overrides: &Overrides,
    config: Option<&LoadedConfig>,
) -> Result<InstallChoice, PlanError> {
    let project = inputs.project;
    let pyproject = inputs.pyproject;
    let project_table = pyproject.and_then(|p| p.data.project.as_ref());
    let mut signals = Vec::new();
    if project.is_file("requirements.txt") {
        signals.push(Signal::Requirements);
    }
    if inputs.pipfile.is_some() || inputs.pipfile_lock.is_some() {
        signals.push(Signal::Pipenv);
    }
    if project.is_file(locks::UV_LOCK) {
        signals.push(Signal::UvLock);
    }
    if project.is_file(locks::POETRY_LOCK) || pyproject.is_some_and(|p| p.poetry().is_some()) {
        signals.push(Signal::Poetry);
    }
    if project_table.is_some_and(|t| t.dependencies.is_some())
        || (project_table.is_some() && pyproject.is_some_and(Parsed::is_package))
    {
        signals.push(Signal::Pep621);
    }
    if project.is_file("setup.py") || project.is_file("setup.cfg") {
        signals.push(Signal::SetupPy);
    }
    let mut choice = InstallChoice::default();
    // uv.lock needs its pyproject.toml; without it the lock is reported and skipped.
    if signals.contains(&Signal::UvLock) && pyproject.is_none() {
        signals.retain(|s| *s != Signal::UvLock);
        choice.ignored.push(Ignored {
            what: "uv.lock".into(),
            reason: "there is no pyproject.toml beside it".into(),
        });
    }
    let Some((&winner, rest)) = signals.split_first() else {
        return Ok(choice);
    };
    for signal in rest {
        choice.ignored.push(Ignored {
            what: signal.label().to_owned(),
            reason: format!("{} wins", winner.label()),
        });
    }

    let (mut installer, mut installer_source) = (Installer::Uv, Source::Default);
    if let Some(value) = config.and_then(|c| {
        c.config
            .installer
            .as_ref()
            .map(|v| (*v.get_ref(), c.source("installer")))
    }) {
        (installer, installer_source) = value;
    }
    if let Some(value) = overrides.installer {
        (installer, installer_source) = (value, Source::flag("--installer"));
    }
    if winner == Signal::UvLock && installer == Installer::Pip {
        choice.warnings.push("uv.lock is installed with uv (`uv sync --locked`); the pip installer choice is ignored".to_owned());
        choice.ignored.push(Ignored {
            what: "installer pip".into(),
            reason: "uv.lock needs uv".into(),
        });
        (installer, installer_source) = (
            Installer::Uv,
            Source::detected(locks::UV_LOCK, "uv.lock is installed by uv"),
        );
    }

    let mut inputs_used: BTreeSet<String> = BTreeSet::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut install_project = false;
    let (manager, source) = match winner {
        Signal::Requirements => {
            let reqs = requirements::read(project, "requirements.txt", inputs.env)?;
            inputs_used.extend(reqs.inputs);
            names.extend(reqs.names);
            choice.warnings.extend(reqs.warnings);
            (
                PackageManager::Requirements,
                Source::file("requirements.txt", None),
            )
        }
        Signal::Pipenv => {
            let locked = inputs.pipfile_lock.is_some();
            if let Some(lock) = inputs.pipfile_lock {
                names.extend(lock.installed(inputs.env));
                inputs_used.insert(pipfile::PIPFILE_LOCK.to_owned());
            } else if let Some(pipfile) = inputs.pipfile {
                names.extend(pipfile.packages.iter().cloned());
                choice.warnings.push("Pipfile has no Pipfile.lock: dependencies are resolved at build time; run `pipenv lock` for reproducible builds".to_owned());
            }
            if inputs.pipfile.is_some() {
                inputs_used.insert(pipfile::PIPFILE.to_owned());
            } else {
                choice.warnings.push("Pipfile.lock without a Pipfile: `--deploy` cannot check that the lock is current".to_owned());
            }
            let file = if locked {
                pipfile::PIPFILE_LOCK
            } else {
                pipfile::PIPFILE
            };
            (PackageManager::Pipenv { locked }, Source::file(file, None))
        }
        Signal::UvLock => {
            let text = project.read(locks::UV_LOCK)?.unwrap_or_default();
            let name = project_table.and_then(|t| t.name.as_deref());
            let lock = uv::parse_uv_lock(&text, name, inputs.env)?;
            names.extend(lock.packages);
            install_project = lock.root_is_package;
            inputs_used.extend([locks::UV_LOCK.to_owned(), pyproject::FILE.to_owned()]);
            (PackageManager::UvLock, Source::file(locks::UV_LOCK, None))
        }
        Signal::Poetry => {
            let roots = poetry_roots(pyproject, inputs.env);
            let locked = project.is_file(locks::POETRY_LOCK);
            if locked {
                let text = project.read(locks::POETRY_LOCK)?.unwrap_or_default();
                names.extend(poetry::parse(&text)?.installed(&roots, inputs.env));
                inputs_used.insert(locks::POETRY_LOCK.to_owned());
            } else {
                for root in &roots {
                    deps::collect(
                        &deps::Req {
                            name: root.name.clone(),
                            extras: root.extras.clone(),
                            applies: true,
                        },
                        &mut names,
                    );
                }
                choice.warnings.push("[tool.poetry] has no poetry.lock: dependencies are resolved at build time; run `poetry lock` for reproducible builds".to_owned());
            }
            if pyproject.is_some() {
                inputs_used.insert(pyproject::FILE.to_owned());
            }
            let poetry = pyproject.and_then(Parsed::poetry);
            let package_mode = poetry.and_then(|p| p.package_mode).unwrap_or(true);
            install_project = package_mode && pyproject.is_some_and(Parsed::is_package);
            let file = if locked {
                locks::POETRY_LOCK
            } else {
                pyproject::FILE
            };
            (PackageManager::Poetry { locked }, Source::file(file, None))
        }
        Signal::Pep621 => {
            let mut line = None;
            if let (Some(parsed), Some(list)) = (
                pyproject,
                project_table.and_then(|t| t.dependencies.as_ref()),
            ) {
                line = Some(parsed.line(&list.span()));
                for item in list.get_ref() {
                    let req =
                        deps::parse_requirement(item.get_ref(), inputs.env).map_err(|reason| {
                            PlanError::malformed(
                                pyproject::FILE,
                                Some(parsed.line(&item.span())),
                                format!("[project] dependencies: {reason}"),
                                Some("PEP 508 requirements, e.g. \"fastapi[standard]>=0.115\""),
                            )
                        })?;
                    deps::collect(&req, &mut names);
                }
            }
            install_project = pyproject.is_some_and(Parsed::is_package);
            inputs_used.insert(pyproject::FILE.to_owned());
            (PackageManager::Pep621, Source::file(pyproject::FILE, line))
        }
        Signal::SetupPy => {
            let found = setup::read(project, inputs.env)?;
            names.extend(found.names);
            inputs_used.extend(found.inputs);
            if pyproject.is_some() {
                inputs_used.insert(pyproject::FILE.to_owned());
            }
            install_project = true;
            let file = if project.is_file("setup.py") {
                "setup.py"
            } else {
                "setup.cfg"
            };
            (PackageManager::SetupPy, Source::file(file, None))
        }
    };
    choice.plan = Some(InstallPlan {
        manager,
        source,
        installer,
        installer_source,
        inputs: inputs_used.into_iter().collect(),
        dependencies: names.into_iter().collect(),
        install_project,
    });
    Ok(choice)
}

/// Poetry's main group: `[tool.poetry.dependencies]` plus PEP 621 `[project] dependencies` (poetry 2).
fn poetry_roots(pyproject: Option<&Parsed>, env: Option<&MarkerEnvironment>) -> Vec<Edge> {
    let mut roots = Vec::new();
    if let Some(table) = pyproject
        .and_then(Parsed::poetry)
        .and_then(|p| p.dependencies.as_ref())
    {
        roots.extend(
            poetry::edges(table.get_ref())
                .into_iter()
                .filter(|e| !e.optional),
        );
    }
    let list = pyproject
        .and_then(|p| p.data.project.as_ref())
        .and_then(|t| t.dependencies.as_ref());
    for item in list.map(|l| l.get_ref().as_slice()).unwrap_or_default() {
        if let Ok(req) = deps::parse_requirement(item.get_ref(), env)
            && req.applies
        {
            roots.push(Edge {
                name: req.name,
                extras: req.extras,
                marker: None,
                optional: false,
            });
        }
    }
    roots
}
