//! `plan()`: reads the project once and decides everything, recording where each value came from.
//! Precedence everywhere: command line > config > Procfile > detection > defaults.

use std::collections::BTreeMap;
use std::path::Path;

use crate::command;
use crate::config::{self, CmdValue, LoadedConfig};
use crate::decide::{build_env, choose_base, choose_collectstatic, choose_port, choose_workload};
use crate::django::DjangoProject;
use crate::error::PlanError;
use crate::files::{self, WalkOptions};
use crate::framework::{self, Detected};
use crate::ignore;
use crate::install::{self, Inputs};
use crate::locks::pipfile;
use crate::model::{
    BuildPlan, Decision, Framework, Ignored, Overrides, PLAN_JSON_VERSION, Source, Workload,
};
use crate::procfile::{self, Procfile};
use crate::project::Project;
use crate::pyproject::{self, Parsed};
use crate::version::{self, Pin, PinValue, PyVersion};
use crate::workspace::{self, FoundWorkspace};
use crate::{app, deps};

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
struct ProjectFiles {
    project: Project,
    pyproject: Option<Parsed>,
    config: Option<LoadedConfig>,
    procfile: Option<Procfile>,
    pipfile: Option<pipfile::Pipfile>,
    pipfile_lock: Option<pipfile::PipfileLock>,
    workspace: Option<FoundWorkspace>,
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

    let python = choose_python(&files, overrides, &mut notes)?;
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
    let walked = walk_files(&files, overrides)?;
    notes.warnings.extend(walked.warnings);

    Ok(BuildPlan {
        plan_version: PLAN_JSON_VERSION,
        python,
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
        files: walked.files,
        warnings: notes.warnings,
        ignored: notes.ignored,
    })
}

/// The Python version: `--python` > config > project pins > default.
fn choose_python(
    files: &ProjectFiles,
    overrides: &Overrides,
    notes: &mut Notes,
) -> Result<Decision<String>, PlanError> {
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
    Ok(chosen.decision)
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

/// The start command and what came with it.
struct Started {
    framework: Decision<Framework>,
    app: Option<crate::model::AppTarget>,
    server: Option<Decision<crate::model::Server>>,
    cmd: Decision<Vec<String>>,
    default_port: Option<Decision<u16>>,
    django: Option<DjangoProject>,
}

fn choose_cmd(
    files: &ProjectFiles,
    overrides: &Overrides,
    workload: Workload,
    detected: Result<Option<Detected>, PlanError>,
    notes: &mut Notes,
) -> Result<Started, PlanError> {
    let explicit = explicit_cmd(files, overrides, workload, notes)?;
    let detected = detected?;
    let framework = detected
        .as_ref()
        .map_or(Decision::new(Framework::None, Source::Default), |d| {
            d.framework.clone()
        });
    let default_port = detected
        .as_ref()
        .filter(|d| d.framework.value != Framework::None)
        .map(|d| {
            Decision::new(
                d.port,
                Source::detected(
                    &source_file(&d.framework.source),
                    format!("{:?} default port", d.framework.value).to_lowercase(),
                ),
            )
        });
    if let Some(d) = &detected {
        notes.warnings.extend(d.warnings.iter().cloned());
        notes.ignored.extend(d.ignored.iter().cloned());
    }
    let django = detected.as_ref().and_then(|d| d.django.clone());
    let started = |cmd, app, server| Started {
        framework: framework.clone(),
        app,
        server,
        cmd,
        default_port: default_port.clone(),
        django: django.clone(),
    };

    if let Some(cmd) = explicit {
        if let Some(detected_cmd) = detected
            .as_ref()
            .and_then(|d| d.cmd.as_ref())
            .filter(|_| workload == Workload::Web)
        {
            notes.ignore(
                format!("detected start command {}", detected_cmd.join(" ")),
                format!("{} wins", version::describe(&cmd.source)),
            );
        }
        return Ok(started(cmd, None, None));
    }
    if workload == Workload::Worker {
        return worker_cmd(&files.project, framework);
    }
    let Some(found) = detected else {
        return Err(PlanError::NothingDetected {
            looked_for: framework::looked_for(),
        });
    };
    let Some(argv) = found.cmd else {
        return Err(found.missing_server.unwrap_or(PlanError::NothingDetected {
            looked_for: framework::looked_for(),
        }));
    };
    let file = found
        .app
        .as_ref()
        .map(|a| a.file.clone())
        .or(found.cmd_file)
        .unwrap_or_else(|| source_file(&found.framework.source));
    let detail = cmd_detail(
        &found.framework.value,
        found.server.as_ref(),
        found.app.as_ref(),
    );
    Ok(started(
        Decision::new(argv, Source::detected(&file, detail)),
        found.app,
        found.server,
    ))
}

/// `fastapi app at line 5, served by uvicorn`.
fn cmd_detail(
    framework: &Framework,
    server: Option<&Decision<crate::model::Server>>,
    app: Option<&crate::model::AppTarget>,
) -> String {
    let Some(server) = server else {
        return "detected".to_owned();
    };
    let what = format!("{framework:?} app").to_lowercase();
    let at = app
        .and_then(|a| a.line)
        .map(|line| format!(" at line {line},"))
        .unwrap_or_default();
    format!(
        "{what}{at} served by {}",
        format!("{:?}", server.value).to_lowercase()
    )
}

/// The file a source names (a detection's file, else its description).
fn source_file(source: &Source) -> String {
    match source {
        Source::Detected { file, .. } => file.clone(),
        other => version::describe(other),
    }
}

/// The start command the user gave: `--cmd` > config `cmd` > the Procfile line of the workload.
fn explicit_cmd(
    files: &ProjectFiles,
    overrides: &Overrides,
    workload: Workload,
    notes: &mut Notes,
) -> Result<Option<Decision<Vec<String>>>, PlanError> {
    let (process, other) = match workload {
        Workload::Web => ("web", "worker"),
        Workload::Worker => ("worker", "web"),
    };
    let mut explicit: Option<Decision<Vec<String>>> = None;
    let shell_note = |cmd: &str, from: &str, notes: &mut Notes| {
        let (argv, exec) = command::shell(cmd);
        if !exec {
            notes.warnings.push(format!("the command from {from} chains several commands, so it runs without `exec` and the shell, not the server, receives signals"));
        }
        argv
    };
    if let Some(cmd) = &overrides.cmd {
        explicit = Some(Decision::new(
            shell_note(cmd, "--cmd", notes),
            Source::flag("--cmd"),
        ));
    }
    if let Some(c) = &files.config
        && let Some(value) = &c.config.cmd
    {
        let key = c.source("cmd");
        if explicit.is_some() {
            notes.ignore(format!("cmd ({})", version::describe(&key)), "--cmd wins");
        } else {
            let argv = match value.get_ref() {
                CmdValue::Shell(s) => shell_note(s, &version::describe(&key), notes),
                CmdValue::Exec(list) => {
                    if list.is_empty() || list.iter().all(|s| s.trim().is_empty()) {
                        return Err(c.invalid(value.span(), "cmd", "the command list is empty"));
                    }
                    list.clone()
                }
            };
            explicit = Some(Decision::new(argv, key));
        }
    }
    let procfile = files.procfile.as_ref();
    if let Some(entry) = procfile.and_then(|p| p.get(process)) {
        if let Some(winner) = &explicit {
            notes.ignore(
                format!("Procfile {process}: (line {})", entry.line),
                format!("{} wins", version::describe(&winner.source)),
            );
        } else {
            explicit = Some(Decision::new(
                shell_note(&entry.command, "the Procfile", notes),
                Source::Procfile { line: entry.line },
            ));
        }
    }
    if let Some(entry) = procfile.and_then(|p| p.get(other)) {
        notes.ignore(
            format!("Procfile {other}: (line {})", entry.line),
            format!("the workload is {process}"),
        );
    }
    Ok(explicit)
}

/// A worker without a given command: `python <worker file>`.
fn worker_cmd(project: &Project, framework: Decision<Framework>) -> Result<Started, PlanError> {
    let files = ["worker.py", "main.py", "app.py", "application.py"];
    let Some(file) = app::first_existing(project, &files) else {
        return Err(PlanError::NothingDetected {
            looked_for: vec![
                "a Procfile `worker:` line".to_owned(),
                format!("a worker file ({})", files.join(", ")),
            ],
        });
    };
    let cmd = Decision::new(
        command::python_file(&file),
        Source::detected(&file, "worker file"),
    );
    let framework = if framework.value == Framework::None {
        Decision::new(Framework::Generic, Source::detected(&file, "worker file"))
    } else {
        framework
    };
    Ok(Started {
        framework,
        app: None,
        server: None,
        cmd,
        default_port: None,
        django: None,
    })
}
