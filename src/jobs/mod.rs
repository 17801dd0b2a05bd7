//! What a job is, apart from where it runs. Two backends sit behind one small interface
//! ([`Backend`]: submit, list, read the log from a byte offset, cancel): the box itself
//! ([`boxed`]: a wrapper under tmux or setsid that records how the job ended) and a Slurm
//! cluster reached through its login node ([`slurm`]: sbatch, squeue, sacct, scancel). The
//! commands (`run`, `jobs`, `logs`, `kill`) stay thin and do not know which one they drive.
//!
//! Either way a job lives in `remote_dir/jobs/<id>/` on the box (or login node), its id the
//! UTC start time and a counter, so ids sort by start.

pub mod boxed;
pub mod resources;
pub mod slurm;

use serde::Serialize;

use crate::config::Scheduler;
use crate::remote::Remote;
use crate::ui;

/// A job's name: what `--name` may be, so that it is safe in a file, a tmux window name and a
/// notification title.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        anyhow::bail!(
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
    /// running, succeeded, failed, killed, lost, or damaged (its exit file holds no status);
    /// on a Slurm profile also pending, completing (not ended yet), cancelled, timeout,
    /// out_of_memory, preempted, requeued, suspended, node_failure and unknown.
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
    /// Seconds since it started (or was submitted), by the box's clock.
    #[serde(skip)]
    pub age_s: u64,
    /// On a Slurm profile: the job as the scheduler sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm: Option<slurm::SlurmInfo>,
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
pub(crate) fn last(line: &str) -> Option<Last> {
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
    pub fn failed(&self) -> Vec<&str> {
        self.results
            .iter()
            .filter(|r| !sent(r))
            .map(String::as_str)
            .collect()
    }

    /// For the table: which notifications, and the last one sent.
    pub fn summary(&self, ended: bool, now: u64) -> String {
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

/// A log line as a table may show it: colour escapes and control characters but tabs dropped.
pub fn printable(line: &str) -> String {
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

impl Job {
    /// The state as the table shows it: `failed (3)` for a failure, `pending (Resources)`,
    /// `running (1:02:00 left)`, and an array's tasks counted by state.
    pub fn state_text(&self) -> String {
        let plain = |state: &str, exit: Option<i32>| match (state, exit) {
            ("failed", Some(code)) => format!("failed ({code})"),
            (state, _) => state.replace('_', " "),
        };
        let base = plain(self.state, self.exit);
        let Some(s) = &self.slurm else {
            return base;
        };
        if !s.tasks.is_empty() {
            let rank = |state: &str| {
                ["running", "pending", "completing", "requeued", "suspended"]
                    .iter()
                    .position(|s| *s == state)
                    .unwrap_or(9)
            };
            let mut groups: Vec<(usize, String, u64)> = vec![];
            for task in &s.tasks {
                let text = plain(task.state, task.exit);
                let n = slurm::task_count(&task.index);
                match groups.iter_mut().find(|(_, t, _)| *t == text) {
                    Some(group) => group.2 += n,
                    None => groups.push((rank(task.state), text, n)),
                }
            }
            groups.sort_by_key(|(rank, _, _)| *rank);
            let total: u64 = groups.iter().map(|(_, _, n)| n).sum();
            let parts: Vec<String> = groups.iter().map(|(_, t, n)| format!("{n} {t}")).collect();
            return format!(
                "{} ({total} tasks: {})",
                plain(self.state, None),
                parts.join(", ")
            );
        }
        match (self.state, &s.reason, &s.time_left) {
            ("pending" | "unknown", Some(reason), _) => {
                format!("{} ({})", self.state, ui::clean(reason))
            }
            ("running", _, Some(left)) => format!("running ({} left)", ui::clean(left)),
            _ => base,
        }
    }
}

/// The jobs a listing shows, oldest first, and how many older ones it left out.
#[derive(Debug)]
pub struct Listing {
    pub jobs: Vec<Job>,
    pub older: usize,
}

/// The jobs a listing's `older N` lines say it left out.
pub fn older(text: &str) -> usize {
    text.lines()
        .filter_map(|l| l.strip_prefix("older "))
        .filter_map(|n| n.trim().parse::<usize>().ok())
        .sum()
}

/// Which backend a profile's jobs go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Box,
    Slurm,
}

impl Backend {
    pub fn of(remote: &Remote) -> Backend {
        match remote.profile.scheduler {
            Scheduler::Box => Backend::Box,
            Scheduler::Slurm => Backend::Slurm,
        }
    }

    /// The profile's jobs, oldest first: with `last`, only the `last` latest ones and those
    /// that have not ended; else every one.
    pub async fn list(self, remote: &Remote, last: Option<usize>) -> anyhow::Result<Listing> {
        match self {
            Backend::Box => boxed::list(remote, last).await,
            Backend::Slurm => slurm::list(remote, last).await,
        }
    }

    /// Stops a job: SIGTERM, then the rest after `grace` seconds.
    pub async fn cancel(self, remote: &Remote, job: &str, grace: u64) -> anyhow::Result<Cancelled> {
        match self {
            Backend::Box => boxed::cancel(remote, job, grace).await,
            Backend::Slurm => slurm::cancel(remote, job, grace).await,
        }
    }

    /// The script that prints a job's log from a byte offset (or its last lines), following
    /// it with `follow`, in the protocol of `scripts/logs.sh`: a `fenton-offset N ID` line,
    /// then the log.
    pub fn log_script(self) -> String {
        use crate::remote::scripts;
        match self {
            Backend::Box => scripts::job(scripts::JOB_LOGS),
            Backend::Slurm => {
                scripts::job(&format!("{}\n{}", scripts::SLURM_LIB, scripts::SLURM_LOGS))
            }
        }
    }
}

/// How a cancel went.
#[derive(Debug, PartialEq, Eq)]
pub enum Cancelled {
    /// The job had ended before.
    Ended,
    /// It ended within the grace of SIGTERM.
    Stopped,
    /// It was still there after the grace, and was killed.
    Killed,
}

impl Cancelled {
    /// What a kill script's stdout says: a line `ended` or `sigkill`, else it stopped.
    pub fn from_answer(stdout: &[u8]) -> Cancelled {
        let text = String::from_utf8_lossy(stdout);
        if text.lines().any(|l| l == "ended") {
            Cancelled::Ended
        } else if text.lines().any(|l| l == "sigkill") {
            Cancelled::Killed
        } else {
            Cancelled::Stopped
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
