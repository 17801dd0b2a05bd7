//! `fenton tmux [SESSION] [--cc]` (and the original `fenton -jn`): attach to the persistent
//! session on the box, creating it if missing.

use std::io::IsTerminal;

use anyhow::{bail, Result};

use super::Ctx;
use crate::cli::TmuxArgs;
use crate::exit::Exit;
use crate::remote::sh;

pub fn run(ctx: &Ctx, args: TmuxArgs) -> Result<Exit> {
    let remote = ctx.remote()?;
    let tmux = &remote.profile.tmux;
    let session = args.session.as_deref().unwrap_or(&tmux.session);
    if let Some(problem) = sh::tmux_session_problem(session) {
        bail!("tmux session name {session:?} is not allowed: {problem}; pick another name");
    }
    // tmux itself would say only "open terminal failed: not a terminal", from the box.
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        bail!("fenton tmux needs a terminal: run it in one (`fenton exec -- CMD` runs a command without)");
    }
    let control = if args.cc || tmux.control_mode {
        " -CC"
    } else {
        ""
    };
    let line = format!(
        "{}; exec {}{control} new-session -A -s {}",
        sh::require("tmux", "install it (e.g. apt install tmux)"),
        sh::tmux(&tmux.socket),
        sh::quote(session)
    );
    match remote.exec_interactive(Some(&line))? {}
}
