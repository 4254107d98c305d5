//! The `pyslip` binary: parse the command line, run the command, render errors with hints.

mod cache;
mod cli;
mod commands;
mod image;
mod output;
mod signals;
mod wheels;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    if let Err(err) = signals::install() {
        eprintln!(
            "warning: cannot handle SIGINT/SIGTERM ({err}); an interrupted build leaves its scratch files for the next build to remove"
        );
    }
    let cli = cli::Cli::parse();
    let result = commands::run(cli);
    // An interrupted run exits from the signal thread, with the signal's status.
    signals::wait_if_interrupted();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            commands::report(&err);
            ExitCode::FAILURE
        }
    }
}
