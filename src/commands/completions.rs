//! `fenton completions SHELL` and `fenton man`: generated from the clap types.

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::Exit;

pub fn completions(shell: clap_complete::Shell) -> Result<Exit> {
    clap_complete::generate(shell, &mut Cli::command(), "fenton", &mut std::io::stdout());
    Ok(Exit::Success)
}

pub fn man() -> Result<Exit> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
    Ok(Exit::Success)
}
