//! `fenton completions SHELL` and `fenton man`: generated from the clap types.

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};
use crate::exit::Exit;
use crate::ui;

pub fn completions(shell: clap_complete::Shell) -> Result<Exit> {
    clap_complete::generate(shell, &mut Cli::command(), "fenton", &mut std::io::stdout());
    Ok(Exit::Success)
}

/// The page for fenton names a page per command (`fenton-run(1)`…): `--dir` writes them all.
pub fn man(args: ManArgs) -> Result<Exit> {
    let Some(dir) = args.dir else {
        clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
        return Ok(Exit::Success);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), &dir)
        .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
    ui::info(format_args!(
        "wrote fenton.1 and a page per command into {}",
        dir.display()
    ));
    Ok(Exit::Success)
}
