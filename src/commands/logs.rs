//! `fenton logs JOB [-n N] [-f]`: a job's log. Following counts the bytes it has printed;
//! when the link drops it reconnects and asks the box for the log from that byte on, so no
//! line is lost and none is printed twice. It ends with the job's exit status.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{jobs, Ctx};
use crate::cli::LogsArgs;
use crate::exit::{Exit, SshFailed};
use crate::jobs::{slurm, Backend};
use crate::remote::{runtime, scripts, Remote};
use crate::ui;

/// How long a follow keeps trying to get the link back.
const RECONNECT_FOR: Duration = Duration::from_secs(300);

pub fn run(ctx: &Ctx, args: LogsArgs) -> Result<Exit> {
    let remote = ctx.remote()?;
    runtime()?.block_on(async {
        tokio::select! {
            exit = logs(&remote, &args) => exit,
            _ = tokio::signal::ctrl_c() => Ok(Exit::Interrupted),
        }
    })
}

async fn logs(remote: &Remote, args: &LogsArgs) -> Result<Exit> {
    let backend = Backend::of(remote);
    let script = backend.log_script();
    let lines = args.lines.map_or("all".to_string(), |n| n.to_string());
    let follow = if args.follow { "1" } else { "0" };
    // The log's byte where the next output starts, once the box has said where it began.
    let mut offset: Option<u64> = None;
    // A name given again since must not switch a reconnect to another job: after the first
    // answer, the job is named by the id the box gave.
    let mut job = args.job.clone();
    // A box that cannot be reached at all fails at once; one whose link drops later, even
    // before the log's first line, is followed again once it is back.
    if args.follow {
        remote.session().await?;
    }
    loop {
        let from = offset.map(|o| o.to_string()).unwrap_or_default();
        let line = jobs::line(remote, &[job.as_str(), &lines, follow, &from]);
        let mut id: Option<String> = None;
        let mut header = Vec::new();
        // Where this call's output is in the log, once its header has said.
        let mut at: Option<u64> = None;
        // What the login shell says before the script's mark is not the log; the line
        // after the mark is the header (`fenton-offset N ID`: where in the log the output
        // starts), and the log follows.
        let framed = scripts::Framed::stdout_only(&script)?;
        let mut unframe = framed.reader();
        let mut stdout = std::io::stdout().lock();
        let mut sink = |bytes: &[u8]| -> std::io::Result<()> {
            let mut bytes = unframe.feed(bytes);
            while at.is_none() {
                let Some(i) = bytes.iter().position(|&b| b == b'\n') else {
                    header.extend_from_slice(bytes);
                    return Ok(());
                };
                header.extend_from_slice(&bytes[..i]);
                bytes = &bytes[i + 1..];
                let text = String::from_utf8_lossy(&header).into_owned();
                header.clear();
                let mut words = text.strip_prefix("fenton-offset ").unwrap_or("").split(' ');
                at = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0));
                id = words.next().filter(|id| !id.is_empty()).map(str::to_string);
            }
            stdout.write_all(bytes)?;
            stdout.flush()?;
            at = at.map(|o| o + bytes.len() as u64);
            Ok(())
        };
        let result = remote.stream(&line, framed.input(), &mut sink).await;
        drop(stdout);
        if let (Ok(code), false) = (&result, unframe.seen()) {
            let out = crate::remote::Output {
                code: *code,
                ..Default::default()
            };
            return Err(framed.unread(&remote.profile.host, &out));
        }
        offset = at.or(offset);
        job = id.unwrap_or(job);
        match result {
            Ok(0) if backend == Backend::Slurm && args.follow => return ended(remote, &job).await,
            Ok(code) => return Ok(Exit::from_code(code)),
            Err(e) if args.follow && e.downcast_ref::<SshFailed>().is_some() => {
                reconnect(remote, &job, offset).await?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// How a followed Slurm job ended, said and given as the exit status: its own for a job
/// that exited, else 1 (cancelled, timeout, out of memory…), the state said on stderr.
async fn ended(remote: &Remote, job: &str) -> Result<Exit> {
    let Some(found) = slurm::find(remote, job).await? else {
        return Ok(Exit::Success);
    };
    let state = found.state_text();
    match (found.state, found.exit) {
        ("succeeded", _) => Ok(Exit::Success),
        ("failed", Some(code)) => {
            ui::info(format_args!("job {job} ended: {state}"));
            Ok(Exit::from_code(code))
        }
        _ => {
            ui::warn(format_args!("job {job} ended: {state}"));
            Ok(Exit::from_code(found.exit.unwrap_or(1)))
        }
    }
}

/// Waits for the link to come back (bounded), saying so.
async fn reconnect(remote: &Remote, job: &str, offset: Option<u64>) -> Result<()> {
    let from = match offset {
        Some(offset) => format!("from byte {offset}"),
        None => "again".into(),
    };
    ui::warn(format_args!(
        "the link to {} dropped; reconnecting to go on following {job} {from}",
        remote.profile.host
    ));
    let deadline = Instant::now() + RECONNECT_FOR;
    loop {
        match remote.session().await {
            Ok(_) => {
                ui::info(format_args!("reconnected to {}", remote.profile.host));
                return Ok(());
            }
            Err(e) if Instant::now() > deadline => {
                return Err(e.context(format!(
                    "gave up following {job} after {} s without a link; `fenton logs {job} -f` goes on from where it is",
                    RECONNECT_FOR.as_secs()
                )))
            }
            Err(e) => {
                ui::debug(format_args!("reconnecting: {e:#}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
