//! `fenton run [--name NAME] [--notify] [--dir DIR] -- CMD...`: a job on the box that keeps
//! running when the laptop goes away. One round trip: `run.sh` makes the job's directory,
//! writes the wrapper (`job.sh`) and the notification files into it, starts the wrapper in a
//! window of the profile's tmux session (under setsid where tmux is missing) and answers
//! with the id once the job has a pid. A start that fails or is cut short leaves no job
//! directory (and no secret) behind.

use std::time::Duration;

use anyhow::{bail, Result};

use super::{jobs, notify, Ctx};
use crate::cli::RunArgs;
use crate::exit::Exit;
use crate::remote::{runtime, scripts, sh, Remote, STEP_LIMIT};
use crate::ui;

pub fn run(ctx: &Ctx, args: RunArgs) -> Result<Exit> {
    let name = match args.name {
        Some(name) => {
            jobs::check_name(&name)?;
            name
        }
        None => jobs::default_name(&args.command),
    };
    let loaded = ctx.config()?;
    let (profile_name, profile) = loaded.profile(ctx.global.profile.as_deref())?;
    let notify = args.notify || profile.notify_by_default;
    let files = if notify {
        notify::files(&loaded.file.notify)?
    } else {
        vec![]
    };
    if notify && files.is_empty() {
        if args.notify {
            bail!(
                "--notify needs a channel: add [notify.telegram], [notify.ntfy] or [notify.webhook] to {}",
                loaded.path.display()
            );
        }
        ui::warn(format_args!(
            "notify_by_default is set but no [notify.*] channel is configured in {}",
            loaded.path.display()
        ));
    }
    let notify = notify && !files.is_empty();
    let remote = Remote::new(profile_name, profile)?;

    let body = format!(
        "{}\n{}fj_launch\n",
        scripts::JOB_RUN,
        notify::write_files(&files)
    );
    let dir = remote_dir_arg(args.dir.as_deref().unwrap_or("~"));
    // The directory keeps its `~` (sh::path); the rest are plain words. The command is the
    // one thing run as shell code on the box: its words, quoted as `fenton exec` quotes them.
    let line = format!(
        "{} {} {}",
        jobs::line(&remote, &[name.as_str()]),
        sh::path(&dir),
        sh::words(&[
            sh::words_os(&args.command).as_str(),
            if notify { "1" } else { "0" },
            remote.profile.tmux.session.as_str(),
            remote.profile.tmux.socket.as_str(),
        ])
    );
    // The script gives tmux 5 s a try (three at most) and the wrapper 20 s to record its pid.
    let script = scripts::job(&body);
    let out = runtime()?.block_on(remote.within(
        STEP_LIMIT + Duration::from_secs(20),
        "starting the job",
        scripts::output(&remote, &line, &script),
    ))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The script answers with the id and how it started the job.
    let lines: Vec<&str> = text.lines().collect();
    let (&[id, how], 0) = (&lines[..], out.code) else {
        return Err(jobs::failure(&out, "the job did not start on the box"));
    };
    crate::outln!("{}", ui::clean(id));
    if how == "setsid-tmux-hung" {
        ui::warn(format_args!(
            "tmux on {} did not answer within 5 s (a stopped or hung server?): the job runs under setsid, without a tmux window",
            remote.profile.host
        ));
    }
    let place = match how {
        "tmux" => format!(
            " in tmux window {:?} of session {:?}",
            name, remote.profile.tmux.session
        ),
        _ => String::new(),
    };
    ui::info(format_args!(
        "job {id} ({name}) started on {}{place}{}",
        remote.profile.host,
        if notify {
            "; it will notify you when it ends"
        } else {
            ""
        }
    ));
    ui::info(format_args!(
        "follow it: fenton logs {id} -f    stop it: fenton kill {id}    list: fenton jobs"
    ));
    Ok(Exit::Success)
}

/// `--dir ~/proj` typed in a laptop's shell arrives as /home/me/proj, the laptop's home: the
/// box's home is meant, so a path under the local home becomes `~/…` again, and fenton says so.
fn remote_dir_arg(dir: &str) -> String {
    let Some(home) = dirs::home_dir().filter(|h| h.as_os_str().len() > 1) else {
        return dir.to_string();
    };
    let Ok(rest) = std::path::Path::new(dir).strip_prefix(&home) else {
        return dir.to_string();
    };
    let on_box = if rest.as_os_str().is_empty() {
        "~".to_string()
    } else {
        format!("~/{}", rest.display())
    };
    ui::info(format_args!(
        "--dir {dir} is under this machine's home: using {on_box} on the box"
    ));
    on_box
}
