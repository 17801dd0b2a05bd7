//! `fenton kill JOB`: SIGTERM to the job's process group, SIGKILL after the grace period
//! (`kill.sh`); the job's state becomes `killed`.

use std::time::Duration;

use anyhow::Result;

use super::{jobs, Ctx};
use crate::cli::KillArgs;
use crate::exit::Exit;
use crate::remote::{runtime, scripts, STEP_LIMIT};
use crate::ui;

pub fn run(ctx: &Ctx, args: KillArgs) -> Result<Exit> {
    let remote = ctx.remote()?;
    let grace = args.grace.to_string();
    // The script waits the grace period, then up to 5 s for the wrapper to record the end.
    let limit = Duration::from_secs(args.grace) + STEP_LIMIT;
    let out = runtime()?.block_on(jobs::output_within(
        &remote,
        scripts::JOB_KILL,
        &[args.job.as_str(), grace.as_str()],
        limit,
        "stopping the job",
    ))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.lines().any(|l| l == "ended") {
        ui::info(format_args!(
            "job {} had already ended: `fenton jobs` shows how",
            args.job
        ));
    } else if text.lines().any(|l| l == "sigkill") {
        ui::info(format_args!(
            "job {} did not stop within {} s of SIGTERM: killed it with SIGKILL",
            args.job, args.grace
        ));
    } else {
        ui::info(format_args!("job {} killed", args.job));
    }
    Ok(Exit::Success)
}
