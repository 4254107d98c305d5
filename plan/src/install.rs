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
use crate::workspace::FoundWorkspace;
use crate::{local, model};

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
    /// The uv workspace the project is a member of (it has no uv.lock of its own).
    pub workspace: Option<&'a FoundWorkspace>,
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

/// What one package manager's files say: the plan's install minus the installer choice.
struct Declared {
    manager: PackageManager,
    source: Source,
    inputs: BTreeSet<String>,
    names: BTreeSet<String>,
    install_project: bool,
    warnings: Vec<String>,
    workspace: Option<model::Workspace>,
    local: Vec<model::LocalPackage>,
}

impl Declared {
    fn new(manager: PackageManager, source: Source) -> Self {
        Declared {
            manager,
            source,
            inputs: BTreeSet::new(),
            names: BTreeSet::new(),
            install_project: false,
            warnings: Vec::new(),
            workspace: None,
            local: Vec::new(),
        }
    }
}

/// Every install signal of the project, in precedence order.
fn signals(inputs: &Inputs<'_>) -> Vec<Signal> {
    let project = inputs.project;
    let pyproject = inputs.pyproject;
    let project_table = pyproject.and_then(|p| p.data.project.as_ref());
    let checks = [
        (Signal::Requirements, project.is_file("requirements.txt")),
        (
            Signal::Pipenv,
            inputs.pipfile.is_some() || inputs.pipfile_lock.is_some(),
        ),
        (
            Signal::UvLock,
            project.is_file(locks::UV_LOCK) || inputs.workspace.is_some(),
        ),
        (
            Signal::Poetry,
            project.is_file(locks::POETRY_LOCK) || pyproject.is_some_and(|p| p.poetry().is_some()),
        ),
        (
            Signal::Pep621,
            project_table.is_some_and(|t| t.dependencies.is_some())
                || (project_table.is_some() && pyproject.is_some_and(Parsed::is_package)),
        ),
        (
            Signal::SetupPy,
            project.is_file("setup.py") || project.is_file("setup.cfg"),
        ),
    ];
    checks
        .into_iter()
        .filter_map(|(signal, present)| present.then_some(signal))
        .collect()
}

/// Decides the install.
pub fn choose(
    inputs: &Inputs<'_>,
    overrides: &Overrides,
    config: Option<&LoadedConfig>,
) -> Result<InstallChoice, PlanError> {
    let mut signals = signals(inputs);
    let mut choice = InstallChoice::default();
    // uv.lock needs its pyproject.toml; without it the lock is reported and skipped.
    if signals.contains(&Signal::UvLock) && inputs.pyproject.is_none() {
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
    let (installer, installer_source) = choose_installer(winner, overrides, config, &mut choice);
    let declared = match winner {
        Signal::Requirements => requirements_txt(inputs)?,
        Signal::Pipenv => pipenv(inputs)?,
        Signal::UvLock => uv_lock(inputs)?,
        Signal::Poetry => poetry(inputs)?,
        Signal::Pep621 => pep621(inputs)?,
        Signal::SetupPy => setup_py(inputs)?,
    };
    choice.warnings.extend(declared.warnings);
    choice.plan = Some(InstallPlan {
        manager: declared.manager,
        source: declared.source,
        installer,
        installer_source,
        inputs: declared.inputs.into_iter().collect(),
        dependencies: declared.names.into_iter().collect(),
        install_project: declared.install_project,
        workspace: declared.workspace,
        local: declared.local,
    });
    Ok(choice)
}

/// The installer: `--installer` > config > uv; a uv.lock is always installed by uv.
fn choose_installer(
    winner: Signal,
    overrides: &Overrides,
    config: Option<&LoadedConfig>,
    choice: &mut InstallChoice,
) -> (Installer, Source) {
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
    (installer, installer_source)
}

/// requirements.txt and everything it includes.
fn requirements_txt(inputs: &Inputs<'_>) -> Result<Declared, PlanError> {
    let reqs = requirements::read(inputs.project, "requirements.txt", inputs.env)?;
    let mut d = Declared::new(
        PackageManager::Requirements,
        Source::file("requirements.txt", None),
    );
    d.inputs.extend(reqs.inputs);
    d.names.extend(reqs.names);
    d.warnings.extend(reqs.warnings);
    Ok(d)
}

/// Pipfile.lock's `default` packages (markers applied), or the Pipfile's when there is no lock.
fn pipenv(inputs: &Inputs<'_>) -> Result<Declared, PlanError> {
    let locked = inputs.pipfile_lock.is_some();
    let file = if locked {
        pipfile::PIPFILE_LOCK
    } else {
        pipfile::PIPFILE
    };
    let mut d = Declared::new(PackageManager::Pipenv { locked }, Source::file(file, None));
    if let Some(lock) = inputs.pipfile_lock {
        d.names.extend(lock.installed(inputs.env));
        d.inputs.insert(pipfile::PIPFILE_LOCK.to_owned());
        d.local = local_packages(inputs, file, &lock.packages, &d.names)?;
    } else if let Some(pipfile) = inputs.pipfile {
        d.names.extend(pipfile.packages.iter().cloned());
        d.warnings.push("Pipfile has no Pipfile.lock: dependencies are resolved at build time; run `pipenv lock` for reproducible builds".to_owned());
    }
    if inputs.pipfile.is_some() {
        d.inputs.insert(pipfile::PIPFILE.to_owned());
    } else {
        d.warnings.push(
            "Pipfile.lock without a Pipfile: `--deploy` cannot check that the lock is current"
                .to_owned(),
        );
    }
    Ok(d)
}

/// The installed packages of a lock that come from a folder, as local packages (relative to the
/// project); other non-index sources are left to the install, which refuses them by name.
fn local_packages(
    inputs: &Inputs<'_>,
    file: &str,
    packages: &[locks::LockedPackage],
    installed: &BTreeSet<String>,
) -> Result<Vec<model::LocalPackage>, PlanError> {
    let mut out: Vec<model::LocalPackage> = Vec::new();
    for pkg in packages.iter().filter(|p| installed.contains(&p.key)) {
        if let locks::PackageSource::Directory { path, .. } = &pkg.source
            && !out.iter().any(|l| l.name == pkg.key)
        {
            out.push(local::package(
                file,
                &pkg.key,
                path,
                inputs.project.root(),
                "",
            )?);
        }
    }
    Ok(out)
}

/// uv.lock: the closure of the project's package, from the project's lock or, for a workspace
/// member, from the workspace root's.
fn uv_lock(inputs: &Inputs<'_>) -> Result<Declared, PlanError> {
    let project_table = inputs.pyproject.and_then(|p| p.data.project.as_ref());
    let name = project_table.and_then(|t| t.name.as_deref());
    let ws = inputs.workspace;
    let (lock_project, root_rel) = match ws {
        Some(ws) => (&ws.root, ws.root_rel.as_str()),
        None => (inputs.project, ""),
    };
    let lock_file = crate::workspace::join(root_rel, locks::UV_LOCK);
    let text = lock_project.read(locks::UV_LOCK)?.unwrap_or_default();
    let lock = uv::parse_uv_lock(&text, name, inputs.env)?;
    let mut d = Declared::new(PackageManager::UvLock, Source::file(&lock_file, None));
    d.names.extend(lock.packages);
    d.install_project = lock.root_is_package;
    d.inputs
        .extend([lock_file.clone(), pyproject::FILE.to_owned()]);
    if let Some(ws) = ws {
        d.inputs
            .insert(crate::workspace::join(root_rel, pyproject::FILE));
        let member = name.and_then(deps::normalize).unwrap_or_default();
        if !lock.members.contains(&member) {
            return Err(PlanError::malformed(
                &lock_file,
                None,
                format!(
                    "the workspace member {:?} ({}) is not in the lock",
                    name.unwrap_or_default(),
                    ws.member_dir
                ),
                Some("run `uv lock` at the workspace root and commit uv.lock"),
            ));
        }
        d.workspace = Some(model::Workspace {
            root: ws.root_rel.clone(),
            member,
            member_dir: ws.member_dir.clone(),
        });
    }
    for found in &lock.locals {
        let package = local::package(
            &lock_file,
            &found.name,
            &found.path,
            lock_project.root(),
            root_rel,
        )?;
        d.inputs
            .insert(crate::workspace::join(&package.path, pyproject::FILE));
        d.local.push(package);
    }
    d.inputs.retain(|i| {
        let path = inputs.project.root().join(i);
        path.is_file()
    });
    Ok(d)
}

/// poetry.lock's main-group closure, or the declared main dependencies without a lock.
fn poetry(inputs: &Inputs<'_>) -> Result<Declared, PlanError> {
    let pyproject = inputs.pyproject;
    let roots = poetry_roots(pyproject, inputs.env);
    let locked = inputs.project.is_file(locks::POETRY_LOCK);
    let file = if locked {
        locks::POETRY_LOCK
    } else {
        pyproject::FILE
    };
    let mut d = Declared::new(PackageManager::Poetry { locked }, Source::file(file, None));
    if locked {
        let text = inputs.project.read(locks::POETRY_LOCK)?.unwrap_or_default();
        let lock = poetry::parse(&text)?;
        d.names.extend(lock.installed(&roots, inputs.env));
        d.inputs.insert(locks::POETRY_LOCK.to_owned());
        d.local = local_packages(inputs, locks::POETRY_LOCK, &lock.packages, &d.names)?;
    } else {
        for root in &roots {
            deps::collect(
                &deps::Req {
                    name: root.name.clone(),
                    extras: root.extras.clone(),
                    applies: true,
                },
                &mut d.names,
            );
        }
        d.warnings.push("[tool.poetry] has no poetry.lock: dependencies are resolved at build time; run `poetry lock` for reproducible builds".to_owned());
    }
    if pyproject.is_some() {
        d.inputs.insert(pyproject::FILE.to_owned());
    }
    let package_mode = pyproject
        .and_then(Parsed::poetry)
        .and_then(|p| p.package_mode)
        .unwrap_or(true);
    d.install_project = package_mode && pyproject.is_some_and(Parsed::is_package);
    Ok(d)
}

/// `[project] dependencies` without a lock.
fn pep621(inputs: &Inputs<'_>) -> Result<Declared, PlanError> {
    let pyproject = inputs.pyproject;
    let list = pyproject
        .and_then(|p| p.data.project.as_ref())
        .and_then(|t| t.dependencies.as_ref());
    let line = pyproject.zip(list).map(|(p, l)| p.line(&l.span()));
    let mut d = Declared::new(PackageManager::Pep621, Source::file(pyproject::FILE, line));
    if let (Some(parsed), Some(list)) = (pyproject, list) {
        for item in list.get_ref() {
            let req = deps::parse_requirement(item.get_ref(), inputs.env).map_err(|reason| {
                PlanError::malformed(
                    pyproject::FILE,
                    Some(parsed.line(&item.span())),
                    format!("[project] dependencies: {reason}"),
                    Some("PEP 508 requirements, e.g. \"fastapi[standard]>=0.115\""),
                )
            })?;
            deps::collect(&req, &mut d.names);
        }
    }
    d.install_project = pyproject.is_some_and(Parsed::is_package);
    d.inputs.insert(pyproject::FILE.to_owned());
    Ok(d)
}

/// setup.py / setup.cfg: `pip install .`.
fn setup_py(inputs: &Inputs<'_>) -> Result<Declared, PlanError> {
    let project = inputs.project;
    let file = if project.is_file("setup.py") {
        "setup.py"
    } else {
        "setup.cfg"
    };
    let mut d = Declared::new(PackageManager::SetupPy, Source::file(file, None));
    let found = setup::read(project, inputs.env)?;
    d.names.extend(found.names);
    d.inputs.extend(found.inputs);
    if inputs.pyproject.is_some() {
        d.inputs.insert(pyproject::FILE.to_owned());
    }
    d.install_project = true;
    Ok(d)
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
