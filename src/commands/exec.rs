//! `fenton exec -- CMD...`: a command without a tty whose streams and status pass through.

use anyhow::Result;

use super::Ctx;
use crate::cli::ExecArgs;
use crate::exit::Exit;
use crate::remote::{runtime, sh};

pub fn run(ctx: &Ctx, args: ExecArgs) -> Result<Exit> {
    let remote = ctx.remote()?;
    let runtime = runtime()?;
    let exit = runtime.block_on(remote.exec(&sh::words_os(&args.command)));
    // After Ctrl-C a write of the output may still wait for a reader that stopped reading
    // (a pager ignores Ctrl-C); dropping the runtime would wait for it, for ever.
    runtime.shutdown_background();
    exit
}
