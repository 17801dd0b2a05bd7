//! `fenton kill JOB`: SIGTERM to the job, the rest after the grace period, by whichever
//! backend runs it; then, on a Slurm profile, what the scheduler says of it (scancel says
//! nothing of a job it does not know).

use anyhow::{bail, Result};

use super::Ctx;
use crate::cli::KillArgs;
use crate::exit::Exit;
use crate::jobs::{slurm, Backend, Cancelled};
use crate::remote::runtime;
use crate::ui;

pub fn run(ctx: &Ctx, args: KillArgs) -> Result<Exit> {
    let remote = ctx.remote()?;
    let backend = Backend::of(&remote);
    let rt = runtime()?;
    let how = rt.block_on(backend.cancel(&remote, &args.job, args.grace))?;
    let job = &args.job;
    if backend == Backend::Slurm {
        let Some(found) = rt.block_on(slurm::find(&remote, job))? else {
            bail!(
                "job {job} is gone from the list after scancel: `fenton jobs` shows what is left"
            );
        };
        let state = found.state_text();
        if slurm::active(found.state) {
            bail!(
                "job {job} is still {state} after scancel: the cluster may be slow to end it; `fenton jobs` shows when it has"
            );
        }
        match how {
            Cancelled::Ended => ui::info(format_args!("job {job} had already ended: {state}")),
            Cancelled::Killed => ui::info(format_args!(
                "job {job} did not stop within {} s of SIGTERM: Slurm cancelled it ({state})",
                args.grace
            )),
            Cancelled::Stopped => ui::info(format_args!("job {job} stopped: {state}")),
        }
        return Ok(Exit::Success);
    }
    match how {
        Cancelled::Ended => ui::info(format_args!(
            "job {job} had already ended: `fenton jobs` shows how"
        )),
        Cancelled::Killed => ui::info(format_args!(
            "job {job} did not stop within {} s of SIGTERM: killed it with SIGKILL",
            args.grace
        )),
        Cancelled::Stopped => ui::info(format_args!("job {job} killed")),
    }
    Ok(Exit::Success)
}
