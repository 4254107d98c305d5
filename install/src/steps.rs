//! What runs in the sandbox for each package manager: the installer commands, and the
//! requirements files pyslip writes for them from locks.

use pyslip_plan::{InstallPlan, Installer, PackageManager};

use crate::error::InstallError;
use crate::locks;

/// The project directory, mounted read-only (nested `-r`/`-c` resolve against it).
pub(crate) const PROJECT: &str = "/.pyslip/project";
/// Writable scratch space of this build (generated requirements files, the project copy).
pub(crate) const WORK: &str = "/.pyslip/work";
/// The pinned uv binary, mounted read-only.
pub(crate) const UV: &str = "/.pyslip/uv";
/// [`UV`], for matching argv.
pub(crate) const UV_PATH: &str = UV;
/// The copy of the project's shipped files that a project install builds from.
pub(crate) const SRC: &str = "/.pyslip/work/src";
/// Where the `index`-th local package (path dependency) of the plan is copied.
pub(crate) fn local_dir(index: usize) -> String {
    format!("{WORK}/local-{index}")
}

/// uv's package cache.
pub(crate) const UV_CACHE: &str = "/.pyslip/cache/uv";
/// pip's package cache.
pub(crate) const PIP_CACHE: &str = "/.pyslip/cache/pip";

/// One command run in the sandbox (working directory: [`PROJECT`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// argv.
    pub argv: Vec<String>,
    /// Whether the step installs exactly what a lock pins (versions and hashes), so that it
    /// is tried offline first, from the package cache alone ([`Step::offline`]).
    pub offline_first: bool,
}

impl Step {
    /// A step run as it is.
    fn new(argv: Vec<String>) -> Self {
        Step {
            argv,
            offline_first: false,
        }
    }

    /// The install run after this host resolved its requirements ([`crate::prefetch`]):
    /// `--offline`, from the index data that resolution fetched a moment before.
    pub fn offline_after_resolution(&self) -> Step {
        let mut argv = self.argv.clone();
        argv.push("--offline".into());
        Step::new(argv)
    }

    /// The offline attempt of an [`Step::offline_first`] uv step: `--offline` (uv reads the
    /// index pages and files from its cache, without revalidating them) and, for an install,
    /// `--no-build` (a lock's distribution that must be built is left to the online run, which
    /// picks its files from the current index). `None` for other steps.
    pub fn offline(&self) -> Option<Step> {
        if !self.offline_first || self.argv.first().map(String::as_str) != Some(UV) {
            return None;
        }
        let mut argv = self.argv.clone();
        argv.push("--offline".into());
        if argv.get(1..3) == Some(&["pip".to_owned(), "install".to_owned()]) {
            argv.push("--no-build".into());
        }
        Some(Step::new(argv))
    }

    /// The command as shown in messages and the history (uv's mount path shown as `uv`).
    pub fn display(&self) -> String {
        self.argv
            .iter()
            .map(|a| if a == UV { "uv" } else { a.as_str() })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Everything one install does.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recipe {
    /// Commands, in order.
    pub steps: Vec<Step>,
    /// Files to write into the scratch dir first: (name, content).
    pub files: Vec<(String, String)>,
    /// Whether the project's shipped files are copied to [`SRC`].
    pub copy_project: bool,
    /// Whether the plan's local packages (path dependencies) are copied to [`local_dir`]s.
    pub copy_locals: bool,
    /// Whether uv is mounted.
    pub needs_uv: bool,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Reads a project file for a recipe.
fn read(project: &std::path::Path, file: &str) -> Result<String, InstallError> {
    let path = project.join(file);
    fs_err::read_to_string(&path).map_err(|source| InstallError::ReadInput { path, source })
}

/// Whether the project's own package goes into a layer of its own ([`project_recipe`]), so
/// that the dependency layer does not depend on the project's source files. True when the
/// project is installed and its dependencies are known without building it: a uv or poetry lock,
/// or static PEP 621 `[project] dependencies`. setup.py projects and unlocked poetry projects
/// (dependencies known only to the build backend) install in one step, in the dependency layer.
pub(crate) fn split_project(
    install: &InstallPlan,
    project: &std::path::Path,
) -> Result<bool, InstallError> {
    let locked = matches!(
        install.manager,
        PackageManager::UvLock
            | PackageManager::Poetry { locked: true }
            | PackageManager::Pipenv { locked: true }
    );
    if locked && !install.local.is_empty() {
        return Ok(true);
    }
    if !install.install_project {
        return Ok(false);
    }
    Ok(match &install.manager {
        PackageManager::UvLock | PackageManager::Poetry { locked: true } => true,
        PackageManager::Pep621 => {
            !locks::pep621_dynamic_dependencies(&read(project, "pyproject.toml")?)?
        }
        _ => false,
    })
}

/// The generated uv configuration file, when the project configures uv.
pub(crate) const UV_CONFIG: &str = "uv-config.toml";

/// uv's settings that pyslip decides itself (cache, link mode, bytecode, interpreter choice):
/// dropped from a project's uv configuration.
const UV_OWN: &[&str] = &[
    "cache-dir",
    "no-cache",
    "link-mode",
    "compile-bytecode",
    "python-downloads",
    "python-preference",
    "native-tls",
    "system-certs",
    "python-install-mirror",
    "pypy-install-mirror",
    "graalpy-install-mirror",
    "pyodide-install-mirror",
    "python-downloads-json-url",
];
/// `[tool.uv]` keys that describe the project (uv reads them from pyproject.toml itself) and
/// that a `uv.toml` may not hold: dropped from the generated configuration.
const UV_PROJECT_ONLY: &[&str] = &[
    "sources",
    "workspace",
    "dev-dependencies",
    "default-groups",
    "dependency-groups",
    "managed",
    "package",
    "conflicts",
    "environments",
    "required-environments",
    "build-backend",
];
/// The same for `[pip]` settings, plus those that redirect the install.
const UV_PIP_OWN: &[&str] = &[
    "python",
    "system",
    "break-system-packages",
    "target",
    "prefix",
    "compile-bytecode",
    "link-mode",
    "cache-dir",
    "no-cache",
];

/// The project's uv configuration as uv would discover it in the project directory — `uv.toml`,
/// else `[tool.uv]` of `pyproject.toml` — minus the settings pyslip decides itself; `None` when
/// the project configures nothing. uv runs with `--no-config --config-file` of this, so no
/// configuration of the host, the image or a parent directory reaches the install, and the
/// content is part of the cache key.
pub(crate) fn uv_config(project: &std::path::Path) -> Result<Option<String>, InstallError> {
    let (file, mut table) = if project.join("uv.toml").is_file() {
        let text = read(project, "uv.toml")?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| InstallError::InvalidInput {
            file: "uv.toml".into(),
            reason: e.message().to_owned(),
        })?;
        ("uv.toml", table)
    } else if project.join("pyproject.toml").is_file() {
        let text = read(project, "pyproject.toml")?;
        let doc: toml::Table = toml::from_str(&text).map_err(|e| InstallError::InvalidInput {
            file: "pyproject.toml".into(),
            reason: e.message().to_owned(),
        })?;
        let Some(toml::Value::Table(uv)) = doc.get("tool").and_then(|t| t.get("uv")).cloned()
        else {
            return Ok(None);
        };
        ("pyproject.toml", uv)
    } else {
        return Ok(None);
    };
    for key in UV_OWN.iter().chain(UV_PROJECT_ONLY) {
        table.remove(*key);
    }
    if let Some(toml::Value::Table(pip)) = table.get_mut("pip") {
        for key in UV_PIP_OWN {
            pip.remove(*key);
        }
    }
    if table.is_empty() {
        return Ok(None);
    }
    toml::to_string(&table)
        .map(Some)
        .map_err(|e| InstallError::InvalidInput {
            file: file.into(),
            reason: format!("cannot re-write its uv settings: {e}"),
        })
}

/// `--no-config`, and `--config-file` when the recipe carries the project's uv configuration.
fn uv_config_flags(with_config: bool) -> Vec<String> {
    let mut out = strings(&["--no-config"]);
    if with_config {
        out.push("--config-file".into());
        out.push(format!("{WORK}/{UV_CONFIG}"));
    }
    out
}

/// The installer command prefix (`uv pip install --system …` or `python3 -m pip install …`).
/// Neither compiles bytecode: pyslip does, the same way for every install path.
fn install_prefix(installer: Installer, uv_config: bool) -> Vec<String> {
    match installer {
        Installer::Uv => {
            let mut argv = strings(&[UV, "pip", "install", "--system", "--python", "python3"]);
            argv.extend(uv_config_flags(uv_config));
            argv
        }
        Installer::Pip => strings(&[
            "python3",
            "-m",
            "pip",
            "install",
            "--root-user-action=ignore",
            "--disable-pip-version-check",
            "--no-input",
            "--no-compile",
        ]),
    }
}

/// The recipe of the project layer: the project's own package (when it is installed) and its
/// path dependencies, non-editable, without their dependencies (they are in the dependency
/// layer below).
pub(crate) fn project_recipe(
    install: &InstallPlan,
    project: &std::path::Path,
) -> Result<Recipe, InstallError> {
    let config = uv_config(project)?;
    let mut argv = install_prefix(install.installer, config.is_some());
    argv.push("--no-deps".to_owned());
    if install.installer == Installer::Uv
        && (install.workspace.is_some() || !install.local.is_empty())
    {
        // The copies stand alone: `{ workspace = true }` sources cannot be read outside the
        // workspace, and the dependencies come from the layer below anyway.
        argv.push("--no-sources".to_owned());
    }
    if install.install_project {
        argv.push(SRC.to_owned());
    }
    argv.extend((0..install.local.len()).map(local_dir));
    Ok(Recipe {
        steps: vec![Step::new(argv)],
        files: config
            .map(|c| (UV_CONFIG.to_owned(), c))
            .into_iter()
            .collect(),
        copy_project: install.install_project,
        copy_locals: !install.local.is_empty(),
        needs_uv: install.installer == Installer::Uv,
    })
}

/// `uv export` of a uv.lock: everything the lock installs from an index, hash-pinned; the
/// project, workspace members and path dependencies are installed by the project layer.
fn uv_export(install: &InstallPlan, output: &str, with_config: bool) -> Step {
    let mut argv = strings(&[UV, "export"]);
    argv.extend(uv_config_flags(with_config));
    argv.extend(strings(&["--locked", "--no-dev", "--no-emit-project"]));
    if let Some(ws) = &install.workspace {
        // Run at the workspace root (mounted as the project): the member's dependencies only.
        argv.extend(strings(&["--package", &ws.member]));
    }
    if install.workspace.is_some() || !install.local.is_empty() {
        argv.push("--no-emit-local".to_owned());
    }
    argv.extend(strings(&[
        "--no-header",
        "--format",
        "requirements-txt",
        "--output-file",
        output,
    ]));
    Step {
        argv,
        offline_first: true,
    }
}

/// The recipe for `install` in `project`: the dependency layer, with the project itself when
/// [`split_project`] is false.
pub(crate) fn recipe(
    install: &InstallPlan,
    project: &std::path::Path,
) -> Result<Recipe, InstallError> {
    let split = split_project(install, project)?;
    let config = uv_config(project)?;
    let base = install_prefix(install.installer, config.is_some());
    let mut r = Recipe {
        needs_uv: install.installer == Installer::Uv,
        files: config
            .clone()
            .map(|c| (UV_CONFIG.to_owned(), c))
            .into_iter()
            .collect(),
        ..Recipe::default()
    };
    let install_cmd =
        |extra: &[&str]| Step::new(base.iter().cloned().chain(strings(extra)).collect());
    // Hash-pinned: tried offline first.
    let pinned_cmd = |extra: &[&str]| Step {
        offline_first: true,
        ..install_cmd(&[&["--require-hashes", "--no-deps"], extra].concat())
    };
    let locked_req = |r: &mut Recipe, name: &str, content: String| {
        r.files.push((name.to_owned(), content));
        let path = format!("{WORK}/{name}");
        pinned_cmd(&["-r", &path])
    };
    match &install.manager {
        PackageManager::Requirements => r.steps.push(install_cmd(&["-r", "requirements.txt"])),
        PackageManager::SetupPy => {
            r.copy_project = true;
            r.steps.push(install_cmd(&[SRC]));
        }
        PackageManager::Pep621 => {
            if install.install_project && !split {
                r.copy_project = true;
                r.steps.push(install_cmd(&[SRC]));
            } else {
                let reqs = locks::pep621_requirements(&read(project, "pyproject.toml")?)?;
                r.files.push(("pyproject-requirements.txt".into(), reqs));
                r.steps.push(install_cmd(&[
                    "-r",
                    &format!("{WORK}/pyproject-requirements.txt"),
                ]));
            }
        }
        PackageManager::Pipenv { locked: true } => {
            let reqs = locks::pipfile_lock_requirements(
                &read(project, "Pipfile")?,
                &read(project, "Pipfile.lock")?,
                install,
            )?;
            let step = locked_req(&mut r, "pipfile-lock-requirements.txt", reqs);
            r.steps.push(step);
        }
        PackageManager::Pipenv { locked: false } => {
            let reqs = locks::pipfile_requirements(&read(project, "Pipfile")?)?;
            r.files.push(("pipfile-requirements.txt".into(), reqs));
            r.steps.push(install_cmd(&[
                "-r",
                &format!("{WORK}/pipfile-requirements.txt"),
            ]));
        }
        PackageManager::Poetry { locked } => {
            if *locked {
                let reqs =
                    locks::poetry_lock_requirements(&read(project, "poetry.lock")?, install)?;
                let step = locked_req(&mut r, "poetry-lock-requirements.txt", reqs);
                r.steps.push(step);
                if install.install_project && !split {
                    r.copy_project = true;
                    r.steps.push(install_cmd(&["--no-deps", SRC]));
                }
            } else if install.install_project {
                // poetry-core resolves the declared dependencies while building the package.
                r.copy_project = true;
                r.steps.push(install_cmd(&[SRC]));
            } else {
                return Err(InstallError::StaleLock {
                    lock: "poetry.lock",
                    manifest: "pyproject.toml",
                    refresh: "poetry lock",
                });
            }
        }
        PackageManager::UvLock => {
            r.needs_uv = true;
            let exported = format!("{WORK}/uv-requirements.txt");
            r.steps
                .push(uv_export(install, &exported, config.is_some()));
            r.steps.push(pinned_cmd(&["-r", &exported]));
            if install.install_project && !split {
                r.copy_project = true;
                r.steps.push(install_cmd(&["--no-deps", SRC]));
            }
        }
    }
    Ok(r)
}
