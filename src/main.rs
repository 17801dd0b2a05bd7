//! fenton: drive a remote machine-learning box from a laptop.

mod cli;
mod commands;
mod config;
mod exit;
mod lock;
mod proc;
mod remote;
mod status;
mod ui;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_from(cli::rewrite_legacy(std::env::args_os()));
    ui::init(&cli.global);
    match commands::run(cli) {
        Ok(exit) => exit.into(),
        Err(error) => exit::report(&error),
    }
}
