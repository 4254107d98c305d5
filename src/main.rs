//! The `pyslip` binary: parse the command line, run the command, render errors with hints.

mod cache;
mod cli;
mod commands;
mod image;
mod output;
mod wheels;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            commands::report(&err);
            ExitCode::FAILURE
        }
    }
}
