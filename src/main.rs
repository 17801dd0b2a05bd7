//! fenton: drive a remote machine-learning box from a laptop.

mod cli;
mod commands;
mod config;
mod exit;
mod jobs;
mod lock;
mod monitor;
mod proc;
mod remote;
mod status;
mod ui;

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    let cli = cli::Cli::try_parse_from(cli::rewrite_legacy(std::env::args_os()))
        .unwrap_or_else(|e| without_hidden_suggestions(e).exit());
    ui::init(&cli.global);
    match commands::run(cli) {
        Ok(exit) => exit.into(),
        Err(error) => exit::report(&error),
    }
}

/// clap suggests hidden commands too (`fenton stauts` offered `jesus`): keep them out of
/// the "similar subcommands" tip.
fn without_hidden_suggestions(error: clap::Error) -> clap::Error {
    if error.kind() != ErrorKind::InvalidSubcommand {
        return error;
    }
    let Some(ContextValue::Strings(suggested)) = error.get(ContextKind::SuggestedSubcommand) else {
        return error;
    };
    let cmd = cli::Cli::command();
    let hidden: Vec<&str> = cmd
        .get_subcommands()
        .filter(|c| c.is_hide_set())
        .map(|c| c.get_name())
        .collect();
    let kept: Vec<String> = suggested
        .iter()
        .filter(|s| !hidden.contains(&s.as_str()))
        .cloned()
        .collect();
    if kept.len() == suggested.len() {
        return error;
    }
    let mut fixed = clap::Error::new(ErrorKind::InvalidSubcommand).with_cmd(&cmd);
    for (kind, value) in error.context() {
        if kind != ContextKind::SuggestedSubcommand {
            fixed.insert(kind, value.clone());
        } else if !kept.is_empty() {
            fixed.insert(kind, ContextValue::Strings(kept.clone()));
        }
    }
    fixed
}
