//! The start command: the one the user gave (`--cmd` > config `cmd` > the Procfile line of the
//! workload), else the detected framework's, else a worker file.

use crate::app;
use crate::command;
use crate::config::CmdValue;
use crate::django::DjangoProject;
use crate::error::PlanError;
use crate::framework::{self, Detected};
use crate::model::{AppTarget, Decision, Framework, Overrides, Server, Source, Workload};
use crate::plan::{Notes, ProjectFiles};
use crate::project::Project;
use crate::version;

/// The start command and what came with it.
pub(crate) struct Started {
    pub(crate) framework: Decision<Framework>,
    pub(crate) app: Option<AppTarget>,
    pub(crate) server: Option<Decision<Server>>,
    pub(crate) cmd: Decision<Vec<String>>,
    pub(crate) default_port: Option<Decision<u16>>,
    pub(crate) django: Option<DjangoProject>,
}

/// The start command, and the framework, app, server and default port that came with it.
pub(crate) fn choose_cmd(
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
    server: Option<&Decision<Server>>,
    app: Option<&AppTarget>,
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
