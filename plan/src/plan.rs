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
use crate::model::{
    BuildPlan, Decision, Framework, Ignored, Overrides, PLAN_JSON_VERSION, Source, Workload,
};
use crate::pipfile;
use crate::procfile::{self, Procfile};
use crate::project::Project;
use crate::pyproject::{self, Parsed};
use crate::version::{self, Pin, PinValue, PyVersion};
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

/// Decides the build of the project in `dir`, with command-line `overrides` winning.
pub fn plan(dir: &Path, overrides: &Overrides) -> Result<BuildPlan, PlanError> {
    let project = Project::open(dir)?;
    let mut notes = Notes::default();

    let pyproject = project
        .read(pyproject::FILE)?
        .map(|text| pyproject::parse(&text))
        .transpose()?;
    let config = load_config(&project, pyproject.as_ref(), &mut notes)?;
    let procfile = project
        .read(procfile::FILE)?
        .map(|text| procfile::parse(&text))
        .transpose()?;
    let pipfile = project
        .read(pipfile::PIPFILE)?
        .map(|text| pipfile::parse_pipfile(&text))
        .transpose()?;
    let pipfile_lock_text = project.read(pipfile::PIPFILE_LOCK)?;
    let pipfile_lock = pipfile_lock_text
        .as_deref()
        .map(|text| pipfile::parse_lock(text, None))
        .transpose()?;

    // Python version and base image.
    let mut pins: Vec<Pin> = Vec::new();
    if let Some(text) = project.read(".python-version")? {
        pins.extend(version::parse_python_version_file(
            ".python-version",
            &text,
        )?);
    }
    if let Some(text) = project.read("runtime.txt")? {
        pins.extend(version::parse_runtime_txt("runtime.txt", &text)?);
    }
    pins.extend(pipfile.as_ref().and_then(|p| p.python.clone()));
    pins.extend(pipfile_lock.as_ref().and_then(|p| p.python.clone()));
    if let Some(parsed) = &pyproject {
        pins.extend(pyproject_pins(parsed)?);
    }
    let mut explicit = None;
    if let Some(c) = config.as_ref().and_then(|c| {
        c.config
            .python
            .as_ref()
            .map(|p| (p.get_ref().clone(), c.source("python")))
    }) {
        explicit = Some(c);
    }
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
    let python = chosen.decision;
    let base = choose_base(overrides, config.as_ref(), &python.value, &mut notes)?;
    let marker_env = PyVersion::parse(&python.value).and_then(|v| deps::marker_env(&v));

    // Dependencies.
    let install_choice = install::choose(
        &Inputs {
            project: &project,
            pyproject: pyproject.as_ref(),
            pipfile: pipfile.as_ref(),
            pipfile_lock: pipfile_lock_text.as_deref(),
            env: marker_env.as_ref(),
        },
        overrides,
        config.as_ref(),
    )?;
    notes.warnings.extend(install_choice.warnings);
    notes.ignored.extend(install_choice.ignored);
    let install = install_choice.plan;

    // Workload, framework, command, port.
    let workload = choose_workload(overrides, config.as_ref(), procfile.as_ref());
    let deps_set = install
        .as_ref()
        .map(|i| i.dependencies.iter().cloned().collect())
        .unwrap_or_default();
    let deps_file = install
        .as_ref()
        .map_or(String::new(), |i| version::describe(&i.source));
    let detected = framework::detect(&project, &deps_set, &deps_file);
    let started = choose_cmd(
        &project,
        overrides,
        config.as_ref(),
        procfile.as_ref(),
        workload.value,
        detected,
        &mut notes,
    )?;
    let port = choose_port(
        overrides,
        config.as_ref(),
        workload.value,
        started.default_port.as_ref(),
        &mut notes,
    )?;

    // Env, user, collectstatic, release, labels.
    let env = build_env(overrides, config.as_ref(), port.as_ref(), &mut notes)?;
    let user = match (
        &overrides.user,
        config
            .as_ref()
            .and_then(|c| c.config.user.as_ref().map(|u| (u, c))),
    ) {
        (Some(user), _) => Decision::new(user.clone(), Source::flag("--user")),
        (None, Some((user, c))) => Decision::new(user.get_ref().clone(), c.source("user")),
        (None, None) => Decision::new(DEFAULT_USER.to_owned(), Source::Default),
    };
    let collectstatic = started
        .django
        .as_ref()
        .map(|django| choose_collectstatic(django, config.as_ref(), &env));
    let release = procfile
        .as_ref()
        .and_then(|p| p.get("release"))
        .map(|entry| {
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
    let labels: BTreeMap<String, String> = config
        .as_ref()
        .and_then(|c| c.config.labels.as_ref())
        .map(|l| l.get_ref().clone())
        .unwrap_or_default();
    let (check, check_path) = choose_check(config.as_ref())?;

    // Files.
    let dockerignore = match project.read(".dockerignore")? {
        Some(text) => ignore::parse_dockerignore(".dockerignore", &text)?,
        None => Vec::new(),
    };
    let config_exclude = match config
        .as_ref()
        .and_then(|c| c.config.exclude.as_ref().map(|e| (e, c)))
    {
        Some((exclude, c)) => files::config_patterns(&c.file, exclude.get_ref())?,
        None => Vec::new(),
    };
    let walked = files::walk(
        project.root(),
        &WalkOptions {
            dockerignore,
            config_exclude,
            outputs: &overrides.exclude_outputs,
        },
    )?;
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
        check,
        check_path,
        files: walked.files,
        warnings: notes.warnings,
        ignored: notes.ignored,
    })
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
    project: &Project,
    overrides: &Overrides,
    config: Option<&LoadedConfig>,
    procfile: Option<&Procfile>,
    workload: Workload,
    detected: Result<Option<Detected>, PlanError>,
    notes: &mut Notes,
) -> Result<Started, PlanError> {
    let process = if workload == Workload::Web {
        "web"
    } else {
        "worker"
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
    if let Some(c) = config
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
    if let Some(p) = procfile {
        let other = if workload == Workload::Web {
            "worker"
        } else {
            "web"
        };
        if let Some(entry) = p.get(other) {
            notes.ignore(
                format!("Procfile {other}: (line {})", entry.line),
                format!("the workload is {process}"),
            );
        }
    }

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
            let file = match &d.framework.source {
                Source::Detected { file, .. } => file.clone(),
                other => version::describe(other),
            };
            Decision::new(
                d.port,
                Source::detected(
                    &file,
                    format!("{:?} default port", d.framework.value).to_lowercase(),
                ),
            )
        });
    if let Some(d) = &detected {
        notes.warnings.extend(d.warnings.iter().cloned());
        notes.ignored.extend(d.ignored.iter().cloned());
    }
    let django = detected.as_ref().and_then(|d| d.django.clone());

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
        return Ok(Started {
            framework,
            app: None,
            server: None,
            cmd,
            default_port,
            django,
        });
    }
    if workload == Workload::Worker {
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
        return Ok(Started {
            framework,
            app: None,
            server: None,
            cmd,
            default_port: None,
            django: None,
        });
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
    let detail = match &found.server {
        Some(server) => format!(
            "{:?} app served by {:?}",
            found.framework.value, server.value
        )
        .to_lowercase(),
        None => "detected".to_owned(),
    };
    let file = found.app.as_ref().map_or_else(
        || match &found.framework.source {
            Source::Detected { file, .. } => file.clone(),
            other => version::describe(other),
        },
        |a| a.file.clone(),
    );
    Ok(Started {
        framework,
        app: found.app,
        server: found.server,
        cmd: Decision::new(argv, Source::detected(&file, detail)),
        default_port,
        django,
    })
}
