//! `plan()`: reads the project once and decides everything, recording where each value came from.
//! Precedence everywhere: command line > config > Procfile > detection > defaults.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{self, LoadedConfig};
use crate::decide::{build_env, choose_base, choose_collectstatic, choose_port, choose_workload};
use crate::deps;
use crate::error::PlanError;
use crate::files::{self, WalkOptions};
use crate::framework::{self, Detected};
use crate::ignore;
use crate::install::{self, Inputs};
use crate::locks::pipfile;
use crate::model::{BuildPlan, Decision, Ignored, Overrides, PLAN_JSON_VERSION, Source};
use crate::procfile::{self, Procfile};
use crate::project::Project;
use crate::pyproject::{self, Parsed};
use crate::start::choose_cmd;
use crate::version::{self, Pin, PinValue, PyVersion};
use crate::workspace::{self, FoundWorkspace};

/// The default runtime user (the build creates its HOME, `/home/app`).
pub const DEFAULT_USER: &str = "1000:1000";
/// The app's directory in the image.
pub const WORKDIR: &str = "/app";

/// Notes gathered while planning.
#[derive(Debug, Default)]
pub(crate) struct Notes {
    pub(crate) warnings: Vec<String>,
    pub(crate) ignored: Vec<Ignored>,
}

impl Notes {
    pub(crate) fn ignore(&mut self, what: impl Into<String>, reason: impl Into<String>) {
        self.ignored.push(Ignored {
            what: what.into(),
            reason: reason.into(),
        });
    }
}

/// The project files every decision reads, parsed once.
pub(crate) struct ProjectFiles {
    pub(crate) project: Project,
    pub(crate) pyproject: Option<Parsed>,
    pub(crate) config: Option<LoadedConfig>,
    pub(crate) procfile: Option<Procfile>,
    pub(crate) pipfile: Option<pipfile::Pipfile>,
    pub(crate) pipfile_lock: Option<pipfile::PipfileLock>,
    pub(crate) workspace: Option<FoundWorkspace>,
}

impl ProjectFiles {
    fn read(dir: &Path, notes: &mut Notes) -> Result<Self, PlanError> {
        let project = Project::open(dir)?;
        let pyproject = project
            .read(pyproject::FILE)?
            .map(|text| pyproject::parse(&text))
            .transpose()?;
        let config = load_config(&project, pyproject.as_ref(), notes)?;
        let procfile = project
            .read(procfile::FILE)?
            .map(|text| procfile::parse(&text))
            .transpose()?;
        let pipfile = project
            .read(pipfile::PIPFILE)?
            .map(|text| pipfile::parse_pipfile(&text))
            .transpose()?;
        let pipfile_lock = project
            .read(pipfile::PIPFILE_LOCK)?
            .as_deref()
            .map(pipfile::parse_lock)
            .transpose()?;
        let workspace = workspace::find(&project)?;
        Ok(ProjectFiles {
            workspace,
            project,
            pyproject,
            config,
            procfile,
            pipfile,
            pipfile_lock,
        })
    }
}

/// Decides the build of the project in `dir`, with command-line `overrides` winning.
pub fn plan(dir: &Path, overrides: &Overrides) -> Result<BuildPlan, PlanError> {
    let mut notes = Notes::default();
    let files = ProjectFiles::read(dir, &mut notes)?;
    let config = files.config.as_ref();

    let (python, python_candidates) = choose_python(&files, overrides, &mut notes)?;
    let base = choose_base(overrides, config, &python.value, &mut notes)?;
    let marker_env = PyVersion::parse(&python.value).and_then(|v| deps::marker_env(&v));
    let install = choose_install(&files, overrides, marker_env.as_ref(), &mut notes)?;

    let workload = choose_workload(overrides, config, files.procfile.as_ref());
    let detected = detect_framework(&files.project, install.as_ref());
    let started = choose_cmd(&files, overrides, workload.value, detected, &mut notes)?;
    let port = choose_port(
        overrides,
        config,
        workload.value,
        started.default_port.as_ref(),
        &mut notes,
    )?;
    let env = build_env(overrides, config, port.as_ref(), &mut notes)?;
    let user = choose_user(overrides, config);
    let collectstatic = started
        .django
        .as_ref()
        .map(|django| choose_collectstatic(django, config, &env));
    let release = procfile_release(files.procfile.as_ref(), &mut notes);
    let labels: BTreeMap<String, String> = config
        .and_then(|c| c.config.labels.as_ref())
        .map(|l| l.get_ref().clone())
        .unwrap_or_default();
    let (check, check_path) = choose_check(config)?;

    let walked = walk_files(&files, overrides)?;
    notes.warnings.extend(walked.warnings);

    Ok(BuildPlan {
        plan_version: PLAN_JSON_VERSION,
        python,
        python_candidates,
        base,
        install,
        framework: started.framework,
        app: started.app,
        server: started.server,
        cmd: started.cmd,
        port,
        env,
        workload,
        user,
        workdir: WORKDIR.to_owned(),
        collectstatic,
        release,
        labels,
        check,
        check_path,
        cache_repo: config.and_then(|c| {
            c.config
                .cache_repo
                .as_ref()
                .map(|v| Decision::new(v.get_ref().clone(), c.source("cache-repo")))
        }),
        sandbox: choose_sandbox(config)?,
        files: walked.files,
        warnings: notes.warnings,
        ignored: notes.ignored,
    })
}

/// `sandbox` of the configuration, one of the `--sandbox` values.
fn choose_sandbox(config: Option<&LoadedConfig>) -> Result<Option<Decision<String>>, PlanError> {
    let Some((c, v)) = config.and_then(|c| c.config.sandbox.as_ref().map(|v| (c, v))) else {
        return Ok(None);
    };
    if !["auto", "namespaces", "none"].contains(&v.get_ref().as_str()) {
        return Err(c.invalid(v.span(), "sandbox", "must be auto, namespaces or none"));
    }
    Ok(Some(Decision::new(
        v.get_ref().clone(),
        c.source("sandbox"),
    )))
}

/// `check` and `check-path` of the configuration.
type CheckDecisions = (Option<Decision<bool>>, Option<Decision<String>>);

/// The boot check settings of the configuration (the command line's `--check` flags are the
/// build's business: they do not change the plan).
fn choose_check(config: Option<&LoadedConfig>) -> Result<CheckDecisions, PlanError> {
    let Some(c) = config else {
        return Ok((None, None));
    };
    let check = c
        .config
        .check
        .as_ref()
        .map(|v| Decision::new(*v.get_ref(), c.source("check")));
    let path = match &c.config.check_path {
        Some(v) if !v.get_ref().starts_with('/') => {
            return Err(c.invalid(v.span(), "check-path", "must start with /"));
        }
        Some(v) => Some(Decision::new(v.get_ref().clone(), c.source("check-path"))),
        None => None,
    };
    Ok((check, path))
}

/// The Python version: `--python` > config > project pins > the build's choice from package
/// wheels > default; and the versions the build may choose instead.
fn choose_python(
    files: &ProjectFiles,
    overrides: &Overrides,
    notes: &mut Notes,
) -> Result<(Decision<String>, Vec<String>), PlanError> {
    let project = &files.project;
    let mut pins: Vec<Pin> = Vec::new();
    // uv reads `.python-version` up to the workspace root.
    let python_version_file = match (&files.workspace, project.read(".python-version")?) {
        (_, Some(text)) => Some((".python-version".to_owned(), text)),
        (Some(ws), None) => ws
            .root
            .read(".python-version")?
            .map(|text| (workspace::join(&ws.root_rel, ".python-version"), text)),
        (None, None) => None,
    };
    if let Some((file, text)) = python_version_file {
        pins.extend(version::parse_python_version_file(&file, &text)?);
    }
    if let Some(text) = project.read("runtime.txt")? {
        pins.extend(version::parse_runtime_txt("runtime.txt", &text)?);
    }
    pins.extend(files.pipfile.as_ref().and_then(|p| p.python.clone()));
    pins.extend(files.pipfile_lock.as_ref().and_then(|p| p.python.clone()));
    if let Some(parsed) = &files.pyproject {
        pins.extend(pyproject_pins(parsed)?);
    }
    let mut explicit = files.config.as_ref().and_then(|c| {
        c.config
            .python
            .as_ref()
            .map(|p| (p.get_ref().clone(), c.source("python")))
    });
    if let Some(python) = &overrides.python {
        if let Some((value, source)) = explicit.take() {
            notes.ignore(
                format!("python {value} ({})", version::describe(&source)),
                "--python wins",
            );
        }
        explicit = Some((python.clone(), Source::flag("--python")));
    }
    let chosen = version::choose(explicit, &pins)?;
    notes.warnings.extend(chosen.warnings);
    notes.ignored.extend(chosen.ignored);
    let decision = match &overrides.python_refined {
        Some(refined) if chosen.candidates.contains(&refined.value) => refined.clone(),
        _ => chosen.decision,
    };
    Ok((decision, chosen.candidates))
}

/// The dependency install, with its notes.
fn choose_install(
    files: &ProjectFiles,
    overrides: &Overrides,
    env: Option<&pep508_rs::MarkerEnvironment>,
    notes: &mut Notes,
) -> Result<Option<crate::model::InstallPlan>, PlanError> {
    let choice = install::choose(
        &Inputs {
            project: &files.project,
            pyproject: files.pyproject.as_ref(),
            pipfile: files.pipfile.as_ref(),
            pipfile_lock: files.pipfile_lock.as_ref(),
            env,
            workspace: files.workspace.as_ref(),
        },
        overrides,
        files.config.as_ref(),
    )?;
    notes.warnings.extend(choice.warnings);
    notes.ignored.extend(choice.ignored);
    Ok(choice.plan)
}

/// Framework detection over the names the install puts in the image.
fn detect_framework(
    project: &Project,
    install: Option<&crate::model::InstallPlan>,
) -> Result<Option<Detected>, PlanError> {
    let deps_set = install
        .map(|i| i.dependencies.iter().cloned().collect())
        .unwrap_or_default();
    let deps_file = install.map_or(String::new(), |i| version::describe(&i.source));
    framework::detect(project, &deps_set, &deps_file)
}

/// The runtime user: `--user` > config > default.
fn choose_user(overrides: &Overrides, config: Option<&LoadedConfig>) -> Decision<String> {
    match (
        &overrides.user,
        config.and_then(|c| c.config.user.as_ref().map(|u| (u, c))),
    ) {
        (Some(user), _) => Decision::new(user.clone(), Source::flag("--user")),
        (None, Some((user, c))) => Decision::new(user.get_ref().clone(), c.source("user")),
        (None, None) => Decision::new(DEFAULT_USER.to_owned(), Source::Default),
    }
}

/// The Procfile's `release:` line (reported, not run); other unknown process types are ignored.
fn procfile_release(procfile: Option<&Procfile>, notes: &mut Notes) -> Option<Decision<String>> {
    let release = procfile.and_then(|p| p.get("release")).map(|entry| {
        notes.warnings.push(format!(
            "Procfile release: `{}` is not run by pyslip (run it at deploy time)",
            entry.command
        ));
        Decision::new(entry.command.clone(), Source::Procfile { line: entry.line })
    });
    for entry in procfile.iter().flat_map(|p| p.entries.iter()) {
        if !matches!(entry.name.as_str(), "web" | "worker" | "release") {
            notes.ignore(
                format!("Procfile {}: (line {})", entry.name, entry.line),
                "only web: and worker: start the image",
            );
        }
    }
    release
}

/// The app layer's files: `.dockerignore`, config `exclude` and the build's own outputs applied.
fn walk_files(files: &ProjectFiles, overrides: &Overrides) -> Result<files::Walked, PlanError> {
    let project = &files.project;
    let dockerignore = match project.read(".dockerignore")? {
        Some(text) => ignore::parse_dockerignore(".dockerignore", &text)?,
        None => Vec::new(),
    };
    let config_exclude = match files
        .config
        .as_ref()
        .and_then(|c| c.config.exclude.as_ref().map(|e| (e, c)))
    {
        Some((exclude, c)) => files::config_patterns(&c.file, exclude.get_ref())?,
        None => Vec::new(),
    };
    files::walk(
        project.root(),
        &WalkOptions {
            dockerignore,
            config_exclude,
            outputs: &overrides.exclude_outputs,
        },
    )
}

/// pyslip.toml wins over `[tool.pyslip]` (which is then reported as ignored).
fn load_config(
    project: &Project,
    pyproject: Option<&Parsed>,
    notes: &mut Notes,
) -> Result<Option<LoadedConfig>, PlanError> {
    let from_pyproject = pyproject.and_then(Parsed::config);
    match project.read("pyslip.toml")? {
        Some(text) => {
            if from_pyproject.is_some() {
                notes.ignore("pyproject.toml [tool.pyslip]", "pyslip.toml wins");
                notes.warnings.push("both pyslip.toml and [tool.pyslip] in pyproject.toml exist; only pyslip.toml is used".to_owned());
            }
            config::parse_pyslip_toml(&text).map(Some)
        }
        None => Ok(from_pyproject),
    }
}

/// `requires-python` and poetry's `python` as pins (specifiers).
fn pyproject_pins(parsed: &Parsed) -> Result<Vec<Pin>, PlanError> {
    let mut pins = Vec::new();
    if let Some(spec) = parsed
        .data
        .project
        .as_ref()
        .and_then(|p| p.requires_python.as_ref())
    {
        let line = parsed.line(&spec.span());
        let any_of = version::parse_pep440_specifier(spec.get_ref()).map_err(|reason| {
            PlanError::malformed(
                pyproject::FILE,
                Some(line),
                format!("requires-python: {reason}"),
                Some("a PEP 440 specifier, e.g. \">=3.11\""),
            )
        })?;
        pins.push(Pin {
            value: PinValue::Specifier {
                text: spec.get_ref().clone(),
                any_of,
            },
            source: Source::file(pyproject::FILE, Some(line)),
            label: format!("pyproject.toml requires-python {:?}", spec.get_ref()),
        });
    }
    if let Some(table) = parsed.poetry().and_then(|p| p.dependencies.as_ref())
        && let Some(value) = table.get_ref().get("python")
    {
        let line = parsed.line(&table.span());
        let text = value.as_str().ok_or_else(|| {
            PlanError::malformed(
                pyproject::FILE,
                Some(line),
                "[tool.poetry.dependencies] python must be a string",
                Some("e.g. python = \"^3.11\""),
            )
        })?;
        let any_of = version::parse_poetry_constraint(text).map_err(|reason| {
            PlanError::malformed(
                pyproject::FILE,
                Some(line),
                format!("[tool.poetry.dependencies] python: {reason}"),
                Some("a poetry constraint, e.g. \"^3.11\" or \">=3.10,<3.14\""),
            )
        })?;
        pins.push(Pin {
            value: PinValue::Specifier {
                text: text.to_owned(),
                any_of,
            },
            source: Source::file(pyproject::FILE, Some(line)),
            label: format!("pyproject.toml [tool.poetry.dependencies] python {text:?}"),
        });
    }
    Ok(pins)
}
