//! The box's own jobs: a wrapper script (`scripts/job.sh`) started in a tmux window (or
//! under setsid) records the job's pid, end and exit status in its directory, so those files
//! tell the truth while the laptop is away. Each call here is one job script sent to the
//! box's `sh` (`src/remote/scripts/`).
//!
//! A job lives in `remote_dir/jobs/<id>/` (files `name`, `cmd`, `dir`, `started`, `pid`,
//! `ended`, `exit`, `log`, and `killed`, `notify`, `notify.result` when those happened).

use std::time::Duration;

use anyhow::Result;

use super::{last, printable, Cancelled, Job, Listing, Notify};
use crate::remote::{scripts, sh, Output, Remote, STEP_LIMIT};

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

/// Reads list.sh's output: `now N`, then `job ID` … `end` blocks of `KEY VALUE` lines. A
/// block cut short (a full disk when it was kept) is dropped at the next `job` line.
pub fn parse(text: &str) -> Vec<Job> {
    let mut now = 0;
    let mut jobs = Vec::new();
    let mut fields: Vec<(&str, &str)> = Vec::new();
    for line in text.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "now" => now = value.trim().parse().unwrap_or(0),
            "job" => {
                fields.clear();
                fields.push((key, value));
            }
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
        slurm: None,
    }
}

/// `list.sh`: the jobs, or with `last` the `last` latest and those not over (the box leaves
/// out the rest and counts them).
pub async fn list(remote: &Remote, last: Option<usize>) -> Result<Listing> {
    let last = last.unwrap_or(0).to_string();
    let out = output(remote, scripts::JOB_LIST, &[last]).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(Listing {
        jobs: parse(&text),
        older: super::older(&text),
    })
}

/// `kill.sh`: SIGTERM to the job's process group, SIGKILL after the grace.
pub async fn cancel(remote: &Remote, job: &str, grace: u64) -> Result<Cancelled> {
    // The script waits the grace period, then up to 5 s for the wrapper to record the end.
    let limit = Duration::from_secs(grace) + STEP_LIMIT;
    let out = output_within(
        remote,
        scripts::JOB_KILL,
        &[job, grace.to_string().as_str()],
        limit,
        "stopping the job",
    )
    .await?;
    Ok(Cancelled::from_answer(&out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kept block cut short is dropped at the next job's lines.
    #[test]
    fn blocks_cut_short_are_dropped() {
        let text =
            "now 100\nolder 7\njob a\nname cut\njob b\nname b\nstarted 1\nended 2\nexit 0\nend\n\
                    job c\nname c\nstarted 3\nend\njob d\nname d\nstarted 4\nended 5\nexit 1\nend\n\
                    job e\nname e\nstarted 6\nended 7\nexit 0\nend\njob f\nname f";
        let jobs = parse(text);
        let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["b", "c", "d", "e"]);
    }

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
}
