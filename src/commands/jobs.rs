//! `fenton jobs [--json]`: the jobs on the box and how each one stands. Also what the job
//! commands share: the scripts they send (`src/remote/scripts/`), the command line that runs
//! them, and how a job's state is told from the files its wrapper leaves.
//!
//! A job lives in `remote_dir/jobs/<id>/` (files `name`, `cmd`, `dir`, `started`, `pid`,
//! `ended`, `exit`, `log`, and `killed`, `notify`, `notify.result` when those happened); the
//! wrapper script on the box writes them, so they tell the truth while the laptop is away.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::Ctx;
use crate::cli::JobsArgs;
use crate::exit::Exit;
use crate::remote::{runtime, scripts, sh, Output, Remote, STEP_LIMIT};
use crate::ui;

/// The remote command line that runs a job script fed on stdin: `sh -s -- REMOTE_DIR ARGS...`
/// (`remote_dir` keeps its `~`), each argument quoted.
pub fn line<S: AsRef<str>>(remote: &Remote, args: &[S]) -> String {
    let mut line = format!("sh -s -- {}", sh::path(&remote.profile.remote_dir));
    if !args.is_empty() {
        line.push(' ');
        line.push_str(&sh::words(args));
    }
    line
}

/// Why a job script failed, in one line: the last line it wrote as `fenton: …` (the login
/// shell's start-up files may have said other things first), else its last line.
pub fn failure(out: &Output, what: &str) -> anyhow::Error {
    let text = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.iter().rev().find_map(|l| l.strip_prefix("fenton: ")) {
        Some(message) => anyhow::anyhow!("{message}"),
        None => match lines.last() {
            Some(last) => anyhow::anyhow!("{what} (exit {}): {last}", out.code),
            None => anyhow::anyhow!("{what} (exit {})", out.code),
        },
    }
}

/// Runs a job script that should take a moment; a failure the script explained (on stderr)
/// ends the command.
pub async fn output<S: AsRef<str>>(remote: &Remote, body: &str, args: &[S]) -> Result<Output> {
    output_within(remote, body, args, STEP_LIMIT, "the job script").await
}

/// [`output`] for a script that may take up to `limit` (`what` it does names it when late).
pub async fn output_within<S: AsRef<str>>(
    remote: &Remote,
    body: &str,
    args: &[S],
    limit: Duration,
    what: &str,
) -> Result<Output> {
    let script = scripts::job(body);
    let out = remote
        .within(
            limit,
            what,
            scripts::output(remote, &line(remote, args), &script),
        )
        .await?;
    if out.code != 0 {
        return Err(failure(&out, "the job script failed on the box"));
    }
    Ok(out)
}

/// A job's name: what `--name` may be, so that it is safe in a file, a tmux window name and a
/// notification title.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        bail!(
            "job name {name:?} is not allowed: use up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        );
    }
    Ok(())
}

/// The name a job gets without `--name`: its program's file name, made safe.
pub fn default_name(command: &[std::ffi::OsString]) -> String {
    let program = command
        .first()
        .map(|p| p.to_string_lossy())
        .unwrap_or_default();
    let base = program.rsplit('/').next().unwrap_or("");
    let safe: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let safe = safe.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let safe: String = safe.chars().take(64).collect();
    if safe.is_empty() {
        "job".into()
    } else {
        safe
    }
}

#[derive(Debug, Serialize)]
pub struct Job {
    pub id: String,
    pub name: String,
    /// The command line the job runs (its words quoted for sh); its first line.
    pub command: String,
    /// running, succeeded, failed, killed, lost, or damaged (its exit file holds no status).
    pub state: &'static str,
    pub exit: Option<i32>,
    /// Seconds since the epoch, by the box's clock.
    pub started: u64,
    pub ended: Option<u64>,
    pub duration_s: u64,
    pub last_line: String,
    /// What is wrong with the job's files on the box, a line each (none when all is well).
    pub damaged: Vec<String>,
    pub notify: Notify,
    #[serde(skip)]
    age_s: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Notify {
    pub requested: bool,
    /// Which notifications the job has, in words: `end, every 30m, 2 patterns, stall 20m`.
    pub what: String,
    /// One line per channel once sent: `telegram ok: HTTP 200`, `ntfy failed: …`.
    pub results: Vec<String>,
    /// The last message sent (progress, match, stall, running, end) or not sent (skipped).
    pub last: Option<Last>,
}

#[derive(Debug, Serialize)]
pub struct Last {
    pub event: String,
    /// Seconds since the epoch, by the box's clock.
    pub at: u64,
    /// What each channel said, or why nothing was sent.
    pub results: Vec<String>,
}

/// notify.last's line: `EVENT TIME RESULT;RESULT…`.
fn last(line: &str) -> Option<Last> {
    let mut words = line.trim().splitn(3, ' ');
    let event = words.next().filter(|w| !w.is_empty())?.to_string();
    let at = words.next()?.parse().ok()?;
    let results = words
        .next()
        .unwrap_or("")
        .split(';')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    Some(Last { event, at, results })
}

/// Whether a channel's result line (`telegram ok: HTTP 200`) says the message went out.
pub fn sent(result: &str) -> bool {
    result.split_whitespace().nth(1) == Some("ok:")
}

impl Notify {
    fn failed(&self) -> Vec<&str> {
        self.results
            .iter()
            .filter(|r| !sent(r))
            .map(String::as_str)
            .collect()
    }

    /// For the table: which notifications, and the last one sent.
    fn summary(&self, ended: bool, now: u64) -> String {
        if !self.requested {
            return "-".into();
        }
        let status = self.status(ended, now);
        if self.what.is_empty() || self.what == "end" {
            status
        } else {
            format!("{}: {status}", self.what)
        }
    }

    fn status(&self, ended: bool, now: u64) -> String {
        if let Some(last) = self.last.as_ref().filter(|l| l.event == "skipped") {
            return last
                .results
                .first()
                .cloned()
                .unwrap_or_else(|| "not sent".into());
        }
        if self.results.is_empty() {
            if let Some(last) = &self.last {
                let failed = last.results.iter().filter(|r| !sent(r)).count();
                return format!(
                    "{} {} ago{}",
                    last.event,
                    ui::duration(now.saturating_sub(last.at)),
                    if failed > 0 { " (FAILED)" } else { "" }
                );
            }
            return if ended { "sending" } else { "when done" }.into();
        }
        let failed = self.failed();
        if failed.is_empty() {
            "sent".into()
        } else {
            let channels: Vec<&str> = failed
                .iter()
                .filter_map(|r| r.split_whitespace().next())
                .collect();
            format!("FAILED: {}", channels.join(","))
        }
    }
}

/// Reads list.sh's output: `now N`, then `job ID` … `end` blocks of `KEY VALUE` lines.
pub fn parse(text: &str) -> Vec<Job> {
    let mut now = 0;
    let mut jobs = Vec::new();
    let mut fields: Vec<(&str, &str)> = Vec::new();
    for line in text.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "now" => now = value.trim().parse().unwrap_or(0),
            "end" => {
                jobs.push(job(now, &fields));
                fields.clear();
            }
            _ => fields.push((key, value)),
        }
    }
    // The script gives jobs in no set order, a job twice when it ended meanwhile (the later
    // lines are the newer); ids sort by start time.
    jobs.reverse();
    jobs.sort_by(|a, b| a.id.cmp(&b.id));
    jobs.dedup_by(|later, kept| later.id == kept.id);
    jobs
}

fn job(now: u64, fields: &[(&str, &str)]) -> Job {
    let get = |key: &str| fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let num = |key: &str| get(key).and_then(|v| v.trim().parse::<u64>().ok());
    let started = num("started").unwrap_or(now);
    let ended = num("ended");
    let exit = get("exit").and_then(|v| v.trim().parse::<i32>().ok());
    let alive = get("alive").is_some();
    let age_s = now.saturating_sub(started);
    let damaged: Vec<String> = fields
        .iter()
        .filter(|(k, _)| *k == "damaged")
        .map(|(_, v)| v.to_string())
        .collect();
    let state = match exit {
        None if get("exit").is_some() => "damaged",
        Some(_) if get("killed").is_some() => "killed",
        Some(0) => "succeeded",
        Some(_) => "failed",
        None if alive => "running",
        // Between the start and the wrapper writing its pid.
        None if get("pid").is_none() && age_s < 15 => "running",
        None => "lost",
    };
    let end = ended.filter(|_| exit.is_some()).unwrap_or(now);
    Job {
        id: get("job").unwrap_or("").to_string(),
        name: get("name").unwrap_or("").to_string(),
        command: get("cmd").unwrap_or("").to_string(),
        state,
        exit,
        started,
        ended: ended.filter(|_| exit.is_some()),
        duration_s: end.saturating_sub(started),
        last_line: printable(get("last").unwrap_or("")),
        damaged,
        notify: Notify {
            requested: get("notify").is_some(),
            // Jobs started before the notifications had names say `1`.
            what: match get("notify").map(str::trim) {
                Some("1") | None => "end".into(),
                Some(what) => printable(what),
            },
            last: get("notify.last").and_then(last),
            results: fields
                .iter()
                .filter(|(k, _)| *k == "result")
                .map(|(_, v)| v.to_string())
                .collect(),
        },
        age_s,
    }
}

/// A log line as a table may show it: colour escapes and control characters but tabs dropped.
fn printable(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI sequences: ESC [ … final byte in @..~
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        if !c.is_control() || c == '\t' {
            out.push(c);
        }
    }
    out.trim().to_string()
}

/// Tabs as a terminal shows them: spaces to the next multiple of 8 columns.
fn expand_tabs(line: &str) -> String {
    let mut out = String::new();
    let mut column = 0;
    for c in line.chars() {
        if c == '\t' {
            let next = (column / 8 + 1) * 8;
            out.extend(std::iter::repeat_n(' ', next - column));
            column = next;
        } else {
            out.push(c);
            column += 1;
        }
    }
    out
}

impl Job {
    /// The state as the table shows it: `failed (3)` for a failure.
    pub fn state_text(&self) -> String {
        match (self.state, self.exit) {
            ("failed", Some(code)) => format!("failed ({code})"),
            (state, _) => state.into(),
        }
    }
}

pub fn list(remote: &Remote) -> Result<Vec<Job>> {
    let out = runtime()?.block_on(output(remote, scripts::JOB_LIST, &[] as &[&str]))?;
    Ok(parse(&String::from_utf8_lossy(&out.stdout)))
}

pub fn run(ctx: &Ctx, args: JobsArgs) -> Result<Exit> {
    let remote = ctx.remote()?;
    if args.prune {
        return prune(&remote, &args.older_than);
    }
    let jobs = list(&remote)?;
    // Written, not printed: a reader that went away (`| head`) or a full disk is an error
    // that `exit::report` says (or, for the reader, keeps quiet about), not a panic.
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&jobs)?)
            .context("cannot write the list of jobs")?;
        return Ok(Exit::Success);
    }
    if jobs.is_empty() {
        ui::info(format_args!(
            "no jobs on {} yet: start one with `fenton run -- CMD...`",
            remote.profile.host
        ));
        return Ok(Exit::Success);
    }
    out.write_all(table(&jobs).as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write the list of jobs")?;
    for job in &jobs {
        for what in &job.damaged {
            ui::warn(format_args!(
                "job {} ({}) is damaged: {what}",
                job.id, job.name
            ));
        }
        for failure in job.notify.failed() {
            ui::warn(format_args!(
                "job {} ({}): notification {failure}",
                job.id, job.name
            ));
        }
    }
    Ok(Exit::Success)
}

/// `--older-than`: a number of seconds, minutes, hours, days or weeks (`30d`).
fn age(text: &str) -> Result<u64> {
    let bad = || {
        anyhow::anyhow!(
            "--older-than {text:?} is not an age like 30d, 12h or 90m (s, m, h, d or w)"
        )
    };
    let unit = text.chars().last().ok_or_else(bad)?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        'w' => 7 * 86400,
        _ => return Err(bad()),
    };
    let n: u64 = text[..text.len() - 1].parse().map_err(|_| bad())?;
    n.checked_mul(scale).ok_or_else(bad)
}

fn prune(remote: &Remote, older_than: &str) -> Result<Exit> {
    let seconds = age(older_than)?;
    let out = runtime()?.block_on(output(remote, scripts::JOB_PRUNE, &[seconds.to_string()]))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let pruned = text.lines().filter(|l| l.starts_with("pruned ")).count();
    let kept = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("kept "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .context("the box's prune script did not finish")?;
    ui::info(format_args!(
        "removed {pruned} finished job(s) that ended over {older_than} ago; {kept} kept"
    ));
    Ok(Exit::Success)
}

fn table(jobs: &[Job]) -> String {
    let notify = jobs.iter().any(|j| j.notify.requested);
    let mut rows: Vec<Vec<String>> = vec![["ID", "NAME", "STATE", "STARTED", "DURATION"]
        .iter()
        .map(|s| s.to_string())
        .collect()];
    if notify {
        rows[0].push("NOTIFY".into());
    }
    rows[0].push("LAST LINE".into());
    for job in jobs {
        let mut row = vec![
            ui::clean(&job.id).into_owned(),
            ui::clean(&job.name).into_owned(),
            job.state_text(),
            format!("{} ago", ui::duration(job.age_s)),
            ui::duration(job.duration_s),
        ];
        if notify {
            row.push(
                ui::clean(
                    &job.notify
                        .summary(job.exit.is_some(), job.started + job.age_s),
                )
                .into_owned(),
            );
        }
        row.push(
            ui::clean(&expand_tabs(&job.last_line))
                .chars()
                .take(60)
                .collect(),
        );
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == columns {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_the_scripts_own_line() {
        let out = |stderr: &str| Output {
            code: 1,
            stdout: vec![],
            stderr: stderr.as_bytes().to_vec(),
        };
        let noisy = out(
            "bash: warning: setlocale: LC_ALL: cannot change locale\nfenton: cannot enter /x\n",
        );
        assert_eq!(failure(&noisy, "it failed").to_string(), "cannot enter /x");
        let plain = out("sh: 3: oops\n\n");
        assert_eq!(
            failure(&plain, "it failed").to_string(),
            "it failed (exit 1): sh: 3: oops"
        );
        assert_eq!(
            failure(&out(""), "it failed").to_string(),
            "it failed (exit 1)"
        );
    }

    #[test]
    fn names_are_checked() {
        for good in ["train", "bert-base_2.1", "A9"] {
            check_name(good).unwrap();
        }
        for bad in [
            "", "a;b", "it's", "$(id)", "a/b", "..", ".x", "-x", "a b", "ü", "x\n",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} was accepted");
        }
        check_name(&"x".repeat(64)).unwrap();
        assert!(check_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn default_names_are_safe() {
        let name =
            |words: &[&str]| default_name(&words.iter().map(|w| w.into()).collect::<Vec<_>>());
        assert_eq!(name(&["python", "x.py"]), "python");
        assert_eq!(name(&["/usr/bin/env"]), "env");
        assert_eq!(name(&["./train.sh"]), "train.sh");
        assert_eq!(name(&["$(id)"]), "id-");
        assert_eq!(name(&["..."]), "job");
        for words in [&["a;b'c"][..], &["../.."], &["ü"]] {
            check_name(&name(words)).unwrap();
        }
    }

    #[test]
    fn states_come_from_the_files() {
        let text = "now 1000\n\
            job a\nname ok\nstarted 900\nended 950\nexit 0\nnotify 1\nresult telegram ok: HTTP 200\nresult ntfy failed: HTTP 500\nlast \u{1b}[32mdone\u{1b}[0m\nend\n\
            job b\nname bad\nstarted 900\nended 910\nexit 3\nlast \nend\n\
            job c\nname k\nstarted 900\nended 910\nexit 143\nkilled 905\nend\n\
            job d\nname r\nstarted 990\npid 5\nalive 1\nend\n\
            job e\nname l\nstarted 100\npid 5\nend\n\
            job f\nname s\nstarted 995\nend\n\
            job g\nname x\nstarted 900\nended 910\nexit abc\ndamaged its exit file holds \"abc\", not an exit status\nend\n\
            job h\nname saved\nstarted 900\nended 910\nexit 0\nkilled 905\nend\n";
        let jobs = parse(text);
        let states: Vec<String> = jobs.iter().map(Job::state_text).collect();
        assert_eq!(
            states,
            [
                "succeeded",
                "failed (3)",
                "killed",
                "running",
                "lost",
                "running",
                "damaged",
                "killed"
            ]
        );
        assert_eq!(
            jobs[6].damaged,
            ["its exit file holds \"abc\", not an exit status"]
        );
        assert!(jobs[0].damaged.is_empty());
        assert_eq!(jobs[0].duration_s, 50);
        assert_eq!(jobs[0].last_line, "done");
        assert_eq!(jobs[0].notify.summary(true, 1000), "FAILED: ntfy");
        assert_eq!(jobs[3].duration_s, 10);
        assert_eq!(jobs[4].duration_s, 900);
    }

    #[test]
    fn the_table_says_which_notifications_a_job_has_and_the_last_one() {
        let text = "now 1000\n\
            job a\nname r\nstarted 900\nnotify end, every 30m, stall 20m\nnotify.last progress 990 telegram ok: edited;ntfy ok: HTTP 200\npid 5\nalive 1\nend\n\
            job b\nname s\nstarted 900\nended 901\nexit 0\nnotify end if over 1h\nnotify.last skipped 901 not sent: it ran 1s, under the 1h minimum\nend\n\
            job c\nname t\nstarted 900\nnotify.last \nnotify 1\npid 5\nalive 1\nend\n";
        let jobs = parse(text);
        let summary = |j: &Job| j.notify.summary(j.exit.is_some(), 1000);
        assert_eq!(
            summary(&jobs[0]),
            "end, every 30m, stall 20m: progress 10s ago"
        );
        assert_eq!(
            summary(&jobs[1]),
            "end if over 1h: not sent: it ran 1s, under the 1h minimum"
        );
        assert_eq!(summary(&jobs[2]), "when done");
        assert_eq!(jobs[0].notify.last.as_ref().unwrap().results.len(), 2);
    }

    #[test]
    fn ages_read_as_people_write_them() {
        assert_eq!(age("30d").unwrap(), 30 * 86400);
        assert_eq!(age("12h").unwrap(), 12 * 3600);
        assert_eq!(age("90m").unwrap(), 5400);
        assert_eq!(age("2w").unwrap(), 14 * 86400);
        assert_eq!(age("0s").unwrap(), 0);
        for bad in [
            "",
            "30",
            "d",
            "-1d",
            "1.5d",
            "30 d",
            "99999999999999999999d",
        ] {
            assert!(age(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn jobs_sort_by_id_and_the_later_lines_of_one_win() {
        let text = "now 1000\n\
            job 2\nname b\nstarted 900\nend\n\
            job 1\nname a\nstarted 800\nended 850\nexit 0\nend\n\
            job 2\nname b\nstarted 900\nended 950\nexit 0\nend\n";
        let jobs = parse(text);
        let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(ids, ["1", "2"]);
        assert_eq!(jobs[1].state, "succeeded");
    }

    #[test]
    fn the_table_keeps_a_log_lines_tabs_as_a_terminal_shows_them() {
        let text = "now 1000\njob 1\nname a\nstarted 900\nended 950\nexit 0\nlast epoch\t3\tloss 0.25\nend\n";
        let jobs = parse(text);
        assert_eq!(jobs[0].last_line, "epoch\t3\tloss 0.25");
        let table = table(&jobs);
        assert!(table.contains("epoch   3       loss 0.25"), "{table}");
    }
}
