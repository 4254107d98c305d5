//! Commands: thin glue between the command line and the library crates.

pub mod app_layer;
pub mod base;
pub mod build;
pub mod cache_repo;
pub mod check;
pub mod deps;
mod disk;
pub mod inspect;
pub mod layer_inputs;
pub mod outputs;
pub mod plan;
pub mod platforms;
pub mod python_choice;
pub mod report;
pub mod sbom;

use std::fmt;
use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::cli::{self, Cli, Command, PlanFlags};

/// Run one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Build(args) => build::run(*args),
        Command::Plan(args) => plan::run(args),
        Command::Inspect(args) => inspect::run(args),
    }
}

/// Write `text` to stdout. A reader that went away (`pyslip plan | head`) is not an error.
pub fn print_stdout(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// An error in what the user asked for, with what to do about it.
#[derive(Debug)]
pub struct UserError {
    message: String,
    hint: String,
}

impl UserError {
    /// A message and a hint.
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

/// The first hint any error in the chain offers.
fn hint(err: &anyhow::Error) -> Option<String> {
    // A full or read-only disk explains any failure it causes best.
    if let Some(hint) = disk::hint(err) {
        return Some(hint);
    }
    err.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<UserError>() {
            return Some(e.hint.clone());
        }
        if let Some(e) = cause.downcast_ref::<pyslip_image::ImageError>()
            && let Some(hint) = e.hint()
        {
            return Some(hint);
        }
        if let Some(e) = cause.downcast_ref::<pyslip_registry::RegistryError>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<pyslip_registry::ReferenceError>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<pyslip_plan::PlanError>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<crate::cache::CacheError>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<pyslip_install::InstallError>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<pyslip_sandbox::SandboxError>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<layers::UnpackError>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<layers::LayerError>() {
            return e.hint();
        }
        if let Some(e) = cause.downcast_ref::<pyslip_sbom::SbomError>() {
            return e.hint();
        }
        None
    })
}

/// Print an error as one line (its chain joined by `: `) followed by its hint, if any. A failed
/// install first shows the installer's last lines, indented, and where its whole log is.
pub fn report(err: &anyhow::Error) {
    if let Some((tail, path)) = err
        .chain()
        .find_map(|c| c.downcast_ref::<pyslip_install::InstallError>())
        .and_then(pyslip_install::InstallError::log)
    {
        for line in tail.lines() {
            eprintln!("    {line}");
        }
        if let Some(path) = path {
            eprintln!("    (the whole install log: {})", path.display());
        }
    }
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        // A cause that repeats what is already said adds nothing.
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    let line = parts.join(": ").replace('\n', " ");
    eprintln!("error: {line}");
    if let Some(hint) = hint(err) {
        eprintln!("hint: {}", hint.replace('\n', " "));
    }
}

/// The plan crate's overrides from the command line.
pub fn plan_overrides(flags: &PlanFlags, outputs: Vec<PathBuf>) -> Result<pyslip_plan::Overrides> {
    let mut env = Vec::new();
    for pair in &flags.env {
        match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => env.push((key.to_owned(), value.to_owned())),
            _ => bail!(UserError::new(
                format!("--env {pair:?} is not KEY=VALUE"),
                "write --env NAME=value (repeat the flag for more variables)",
            )),
        }
    }
    Ok(pyslip_plan::Overrides {
        python: flags.python.clone(),
        base: flags.base.clone(),
        base_repo: flags.base_repo.clone(),
        cmd: flags.cmd.clone(),
        port: flags.port,
        env,
        workload: flags.workload.map(|w| match w {
            cli::Workload::Web => pyslip_plan::Workload::Web,
            cli::Workload::Worker => pyslip_plan::Workload::Worker,
        }),
        installer: flags.installer.map(|i| match i {
            cli::Installer::Uv => pyslip_plan::Installer::Uv,
            cli::Installer::Pip => pyslip_plan::Installer::Pip,
        }),
        user: flags.user.clone(),
        exclude_outputs: outputs,
        python_refined: None,
    })
}
