//! `fenton exec -- CMD...`: a command without a tty whose streams and status pass through.

use anyhow::Result;

use super::Ctx;
use crate::cli::ExecArgs;
use crate::exit::Exit;
use crate::remote::{runtime, sh};

pub fn run(ctx: &Ctx, args: ExecArgs) -> Result<Exit> {
    let remote = ctx.remote()?;
    runtime()?.block_on(remote.exec(&sh::words_os(&args.command)))
}
