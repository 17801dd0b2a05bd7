//! `fenton run [--name NAME] [--notify] [--notify-every D] [--notify-on RE] [--stall D]
//! [--notify-min D] [--dir DIR] -- CMD...`: a job on the box that keeps running when the
//! laptop goes away, and tells the phone how it goes (the box's wrapper does the telling). One round trip: `run.sh` makes the job's directory,
//! writes the wrapper (`job.sh`) and the notification files into it, starts the wrapper in a
//! window of the profile's tmux session (under setsid where tmux is missing) and answers
//! with the id once the job has a pid. A start that fails or is cut short leaves no job
//! directory (and no secret) behind.

use std::time::Duration;

use anyhow::{bail, Result};

use super::{jobs, notify, Ctx};
use crate::cli::RunArgs;
use crate::config::{ProfileNotify, Scheduler};
use crate::exit::Exit;
use crate::jobs::slurm;
use crate::remote::{runtime, scripts, sh, Remote, STEP_LIMIT};
use crate::ui;

pub fn run(ctx: &Ctx, mut args: RunArgs) -> Result<Exit> {
    let name = match args.name.take() {
        Some(name) => {
            jobs::check_name(&name)?;
            name
        }
        None => jobs::default_name(&args.command),
    };
    let loaded = ctx.config()?;
    let (profile_name, profile) = loaded.profile(ctx.global.profile.as_deref())?;
    // Options that only mean something with messages ask for them.
    let asked = [
        ("--notify", args.notify),
        ("--notify-every", args.notify_every.is_some()),
        ("--notify-on", !args.notify_on.is_empty()),
        ("--stall", args.stall.is_some()),
        ("--notify-min", args.notify_min.is_some()),
    ]
    .into_iter()
    .find(|(_, given)| *given)
    .map(|(flag, _)| flag);
    let watch = Watch::new(&args, &profile.notify)?;
    let notify = asked.is_some() || profile.notify_by_default;
    let mut files = if notify {
        notify::files(&loaded.file.notify)?
    } else {
        vec![]
    };
    if notify && files.is_empty() {
        if let Some(flag) = asked {
            bail!(
                "{flag} needs a channel: add [notify.telegram], [notify.ntfy] or [notify.webhook] to {}",
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
    if remote.profile.scheduler == Scheduler::Slurm {
        // The end message (and its minimum) is all a Slurm job sends: the first of `what`.
        let (end, unsent) = watch.what.split_once(", ").unwrap_or((&watch.what, ""));
        if notify && !unsent.is_empty() {
            ui::warn(format_args!(
                "on a Slurm profile only the end message is sent, not {unsent}: the login node's watcher sees the queue, not the log"
            ));
        }
        if watch.min > 0 {
            files.push(("min".to_string(), watch.min.to_string()));
        }
        let channels = notify.then(|| (files, end.to_string()));
        return submit(&remote, &args, &name, channels);
    }
    if notify {
        files.extend(watch.files());
    }
    let slurm_only = [
        ("--gpus", args.gpus.is_some()),
        ("--time", args.time.is_some()),
        ("--partition", args.partition.is_some()),
        ("--cpus", args.cpus.is_some()),
        ("--mem", args.mem.is_some()),
        ("--array", args.array.is_some()),
    ];
    if let Some((flag, _)) = slurm_only.iter().find(|(_, given)| *given) {
        bail!(
            "{flag} is for Slurm profiles: profile {:?} runs jobs on {} itself (set scheduler = \"slurm\" on a cluster's profile)",
            remote.name,
            remote.profile.host
        );
    }

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
            if notify { watch.what.as_str() } else { "0" },
            remote.profile.tmux.session.as_str(),
            remote.profile.tmux.socket.as_str(),
        ])
    );
    // The script gives tmux 5 s a try (three at most) and the wrapper 20 s to record its pid.
    let script = scripts::job(&body);
    // With monitor.auto, the recorder is made sure of beside the start, over a channel of its
    // own: no wait added. (The connection is opened first, so that not both open it.)
    let (out, ()) = runtime()?.block_on(async {
        if remote.profile.monitor.auto {
            remote.connect().await?;
        }
        anyhow::Ok(tokio::join!(
            remote.within(
                STEP_LIMIT + Duration::from_secs(20),
                "starting the job",
                scripts::output(&remote, &line, &script),
            ),
            super::monitor::auto_start(ctx, &remote),
        ))
    })?;
    let out = out?;
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
            format!("; it will notify you: {}", watch.what)
        } else {
            String::new()
        }
    ));
    ui::info(format_args!(
        "follow it: fenton logs {id} -f    stop it: fenton kill {id}    list: fenton jobs"
    ));
    Ok(Exit::Success)
}

/// `fenton run` on a Slurm profile: sbatch through the login node.
fn submit(
    remote: &Remote,
    args: &RunArgs,
    name: &str,
    channels: Option<(Vec<(String, String)>, String)>,
) -> Result<Exit> {
    let ask = slurm::Ask {
        gpus: args.gpus.clone(),
        time: args.time.clone(),
        partition: args.partition.clone(),
        cpus: args.cpus,
        mem: args.mem.clone(),
    };
    let options = slurm::options(&remote.profile.slurm, &ask)?;
    let array = match &args.array {
        Some(a) => {
            Some(crate::jobs::resources::array(a).map_err(|e| anyhow::anyhow!("--array {e}"))?)
        }
        None => None,
    };
    let dir = remote_dir_arg(args.dir.as_deref().unwrap_or("~"));
    let every = remote
        .profile
        .slurm
        .watch_every
        .unwrap_or(crate::config::SLURM_WATCH_EVERY);
    let notifies = channels.as_ref().map(|(_, what)| what.clone());
    let job = slurm::Submit {
        name,
        dir: &dir,
        command: &args.command,
        notify: channels.map(|(files, what)| (notify::write_channel_files(&files), every, what)),
        array,
        options,
    };
    let done = runtime()?.block_on(slurm::submit(remote, job))?;
    crate::outln!("{}", ui::clean(&done.id));
    ui::info(format_args!(
        "job {} ({name}) submitted to Slurm on {} as job {}{}",
        done.id,
        remote.profile.host,
        ui::clean(&done.slurm_id),
        match notifies.as_deref() {
            None => String::new(),
            Some("end") => {
                format!("; the login node will tell you when it ends (it looks every {every} s)")
            }
            // `end if over 5m`
            Some(what) => format!(
                "; the login node will tell you when it ends, {} (it looks every {every} s)",
                what.trim_start_matches("end ")
            ),
        }
    ));
    ui::info(format_args!(
        "follow it: fenton logs {id} -f    stop it: fenton kill {id}    list: fenton jobs",
        id = done.id
    ));
    Ok(Exit::Success)
}

/// What a notifying job sends besides its end message, from the options and the profile's
/// `[profile.x.notify]` (an option replaces the profile's value).
#[derive(Debug, PartialEq)]
struct Watch {
    every: u64,
    on: Vec<String>,
    stall: u64,
    min: u64,
    /// In words, for `fenton jobs` and the box's `notify` file.
    what: String,
}

/// The most `--notify-on` patterns a job may have.
const MAX_PATTERNS: usize = 8;

impl Watch {
    fn new(args: &RunArgs, profile: &ProfileNotify) -> Result<Watch> {
        // The seconds, and the duration as written (for `fenton jobs`).
        let pick = |given: &Option<String>, flag: &str, default: &Option<String>, key: &str| {
            let (text, seconds) = match (given, default) {
                (Some(text), _) => (text, duration(flag, text)?),
                (None, Some(text)) => (
                    text,
                    duration(&format!("the profile's notify.{key}"), text)?,
                ),
                (None, None) => return Ok((0, String::new())),
            };
            Ok::<_, anyhow::Error>((seconds, text.trim().to_string()))
        };
        let (every, every_text) = pick(
            &args.notify_every,
            "--notify-every",
            &profile.every,
            "every",
        )?;
        let (stall, stall_text) = pick(&args.stall, "--stall", &profile.stall, "stall")?;
        let (min, min_text) = pick(&args.notify_min, "--notify-min", &profile.min, "min")?;
        let on = if args.notify_on.is_empty() {
            profile.on.clone()
        } else {
            args.notify_on.clone()
        };
        if on.len() > MAX_PATTERNS {
            bail!(
                "--notify-on is given {} times: {MAX_PATTERNS} patterns at most",
                on.len()
            );
        }
        for pattern in &on {
            if pattern.is_empty() || pattern.chars().any(char::is_control) {
                bail!(
                    "--notify-on {pattern:?} is empty or holds a control character (a line break?): give one pattern per --notify-on"
                );
            }
        }
        let mut what = vec!["end".to_string()];
        if min > 0 {
            what[0] = format!("end if over {min_text}");
        }
        if every > 0 {
            what.push(format!("every {every_text}"));
        }
        match on.len() {
            0 => {}
            1 => what.push("1 pattern".into()),
            n => what.push(format!("{n} patterns")),
        }
        if stall > 0 {
            what.push(format!("stall {stall_text}"));
        }
        Ok(Watch {
            every,
            on,
            stall,
            min,
            what: what.join(", "),
        })
    }

    /// The files in the job's notify.d that tell its wrapper what to send.
    fn files(&self) -> Vec<(String, String)> {
        let mut files = vec![];
        for (name, value) in [
            ("every", self.every),
            ("stall", self.stall),
            ("min", self.min),
        ] {
            if value > 0 {
                files.push((name.to_string(), value.to_string()));
            }
        }
        for (i, pattern) in self.on.iter().enumerate() {
            files.push((format!("on.{}", i + 1), pattern.clone()));
        }
        files
    }
}

/// A duration as `--notify-every` takes it: a number of seconds, minutes, hours or days
/// (`90s`, `30m`, `2h`, `1d`), or 0 for none.
fn duration(flag: &str, text: &str) -> Result<u64> {
    let bad = || {
        anyhow::anyhow!("{flag} {text:?} is not a duration like 30s, 20m, 2h or 1d (or 0 for none)")
    };
    let text = text.trim();
    if text == "0" {
        return Ok(0);
    }
    let unit = text.chars().last().ok_or_else(bad)?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => return Err(bad()),
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(scale)
        .filter(|s| *s <= 366 * 86400)
        .ok_or_else(bad)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration("--stall", "20m").unwrap(), 1200);
        assert_eq!(duration("--stall", "2s").unwrap(), 2);
        assert_eq!(duration("--stall", "1d").unwrap(), 86400);
        assert_eq!(duration("--stall", "0").unwrap(), 0);
        for bad in [
            "",
            "m",
            "20",
            "-1m",
            "+1m",
            "1.5h",
            "2w",
            "9999999999999h",
            "1 m",
        ] {
            let e = duration("--stall", bad).unwrap_err().to_string();
            assert!(e.starts_with("--stall "), "{bad:?}: {e}");
        }
    }
}
