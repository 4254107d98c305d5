//! Commands: thin glue between the command line and the library crates.

use crate::cli::{Cli, Command};

/// Run one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build(_) | Command::Plan(_) => anyhow::bail!("not implemented yet"),
    }
}

/// Print an error as one line (its chain joined by `: `) followed by its hint, if any.
pub fn report(err: &anyhow::Error) {
    let line = err
        .chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    eprintln!("error: {line}");
}
