//! `fenton` and `fenton ssh [-- CMD...]`: a login shell, or a command with a tty.

use anyhow::Result;

use super::Ctx;
use crate::cli::SshArgs;
use crate::exit::Exit;
use crate::remote::sh;

pub fn run(ctx: &Ctx, args: SshArgs) -> Result<Exit> {
    let remote = ctx.remote()?;
    let line = (!args.command.is_empty()).then(|| sh::words_os(&args.command));
    match remote.exec_interactive(line.as_deref())? {}
}
