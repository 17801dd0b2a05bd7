//! Slurm jobs, through the cluster's login node. fenton writes the batch script and submits
//! it with `sbatch` (`scripts/slurm-run.sh`), lists its jobs from one `squeue` and, for
//! those that left the queue, one `sacct` (`slurm-list.sh`), follows their output files on
//! the shared filesystem (`slurm-logs.sh`) and cancels them with `scancel`
//! (`slurm-kill.sh`). How Slurm's states read to a user is [`state`], a pure function.

use std::ffi::OsString;

use anyhow::{bail, Result};
use serde::Serialize;

use super::{boxed, last, printable, Cancelled, Job, Listing, Notify};
use crate::config::Slurm;
use crate::jobs::resources;
use crate::remote::{scripts, sh, Remote, STEP_LIMIT};

/// What `fenton run` asks of Slurm beyond the profile's `[profile.x.slurm]`.
#[derive(Debug, Default)]
pub struct Ask {
    pub gpus: Option<String>,
    pub time: Option<String>,
    pub partition: Option<String>,
    pub cpus: Option<u32>,
    pub mem: Option<String>,
}

/// sbatch's options for a job: one node (a program sees the GPUs of its own node only; a
/// job that wants more says so in `extra`, which comes last and so wins), then what was asked,
/// each option given replacing the profile's.
pub fn options(profile: &Slurm, ask: &Ask) -> Result<Vec<String>> {
    let flag = |e: String, flag: &str| anyhow::anyhow!("{flag} {e}");
    let mut out = vec!["--nodes=1".to_string()];
    let partition = ask.partition.clone().or(profile.partition.clone());
    if let Some(p) = partition {
        out.push(format!(
            "--partition={}",
            resources::name("a partition", &p).map_err(|e| flag(e, "--partition"))?
        ));
    }
    if let Some(a) = &profile.account {
        out.push(format!("--account={a}"));
    }
    if let Some(q) = &profile.qos {
        out.push(format!("--qos={q}"));
    }
    let gpus = ask
        .gpus
        .clone()
        .or(profile.gpus.as_ref().map(|g| g.as_text()));
    if let Some(g) = gpus {
        out.push(format!(
            "--gpus={}",
            resources::gpus(&g).map_err(|e| flag(e, "--gpus"))?
        ));
    }
    let cpus = ask.cpus.map(i64::from).or(profile.cpus);
    if let Some(c) = cpus {
        out.push(format!(
            "--cpus-per-task={}",
            resources::cpus(c).map_err(|e| flag(e, "--cpus"))?
        ));
    }
    if let Some(m) = ask.mem.clone().or(profile.mem.clone()) {
        out.push(format!(
            "--mem={}",
            resources::mem(&m).map_err(|e| flag(e, "--mem"))?
        ));
    }
    if let Some(t) = ask.time.clone().or(profile.time.clone()) {
        out.push(format!(
            "--time={}",
            resources::time(&t).map_err(|e| flag(e, "--time"))?
        ));
    }
    out.extend(profile.extra.iter().cloned());
    Ok(out)
}

pub struct Submit<'a> {
    pub name: &'a str,
    /// Where the job runs; a `~` is the login node's home.
    pub dir: &'a str,
    pub command: &'a [OsString],
    /// For an end message: the script lines that write the channels' files into notify.d,
    /// how often the login node's watcher looks, and what is sent in words (`end`, `end if
    /// over 5m`); None for no message.
    pub notify: Option<(String, u64, String)>,
    pub array: Option<String>,
    pub options: Vec<String>,
}

pub struct Submitted {
    pub id: String,
    pub slurm_id: String,
}

/// `sbatch`, by slurm-run.sh. A refusal is sbatch's own words on one line, and what to do.
pub async fn submit(remote: &Remote, job: Submit<'_>) -> Result<Submitted> {
    let mut body = format!("{}\n{}", scripts::SLURM_LIB, scripts::SLURM_RUN);
    if let Some((files, _, _)) = &job.notify {
        body.push_str(files);
        body.push_str(&sh::write_file(
            "fj_jobs",
            ".watch.sh",
            &scripts::slurm_watcher(),
        ));
    }
    body.push_str("fj_submit \"$@\"\n");
    let (what, every) = match &job.notify {
        Some((_, every, what)) => (what.as_str(), *every),
        None => ("0", 0),
    };
    let mut args = vec![
        job.name.to_string(),
        job.command_words(),
        what.to_string(),
        every.to_string(),
        job.array.clone().unwrap_or_default(),
    ];
    args.extend(job.options.iter().cloned());
    // The directory keeps its `~` (sh::path); the rest are plain words, the command among
    // them: the one thing the batch script runs as code.
    let line = format!(
        "{} {} {}",
        boxed::line(remote, &[args[0].as_str()]),
        sh::path(job.dir),
        sh::words(&args[1..]),
    );
    let script = scripts::job(&body);
    let out = remote
        .within(
            STEP_LIMIT,
            "submitting the job",
            scripts::output(remote, &line, &script),
        )
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let word = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::to_string)
    };
    if out.code == 0 && text.lines().any(|l| l == "refused") {
        let said: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("refused "))
            .collect();
        let offered: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("sinfo "))
            .collect();
        bail!("{}", refusal(&said, &offered));
    }
    match (out.code, word("id "), word("slurm ")) {
        (0, Some(id), Some(slurm_id)) => Ok(Submitted { id, slurm_id }),
        _ => Err(boxed::failure(&out, "the job was not submitted")),
    }
}

impl Submit<'_> {
    fn command_words(&self) -> String {
        sh::words_os(self.command)
    }
}

/// sbatch's refusal in one line (its `error:` lines, control characters dropped), and the
/// likely fix, from what it said and what `sinfo` lists (`PARTITION GRES` lines).
pub fn refusal(said: &[&str], offered: &[&str]) -> String {
    let words: Vec<String> = said
        .iter()
        .map(|l| printable(l))
        .map(|l| {
            l.trim_start_matches("sbatch: error: ")
                .trim_start_matches("sbatch: ")
                .to_string()
        })
        .filter(|l| !l.is_empty())
        .collect();
    let mut words = words;
    words.dedup();
    let message = if words.is_empty() {
        "sbatch refused the job and said nothing".to_string()
    } else {
        format!("sbatch refused the job: {}", words.join("; "))
    };
    let all = words.join(" ").to_ascii_lowercase();
    let partitions: Vec<String> = offered
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .map(printable)
        .collect();
    let gres: Vec<String> = offered
        .iter()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let p = w.next()?.trim_end_matches('*');
            let g = w.next().filter(|g| *g != "(null)")?;
            Some(printable(&format!("{p}: {g}")))
        })
        .collect();
    let list = |v: &[String]| {
        if v.is_empty() {
            "none listed".to_string()
        } else {
            v.join(", ")
        }
    };
    let fix = if all.contains("partition") {
        format!(
            "give a partition the cluster has with --partition or `slurm.partition` (sinfo lists {}; * is the default)",
            list(&partitions)
        )
    } else if all.contains("account") {
        "set `slurm.account` to an account you belong to (sacctmgr show assoc user=$USER format=account)".into()
    } else if all.contains("qos") || all.contains("policy") {
        "ask for less (--time, --gpus) or set `slurm.qos` to one your account may use (sacctmgr show assoc user=$USER format=qos)".into()
    } else if all.contains("gres") || all.contains("generic resource") {
        format!(
            "ask for a GPU type the cluster has, as TYPE:COUNT or a plain count (sinfo lists {})",
            list(&gres)
        )
    } else if all.contains("node configuration is not available") {
        format!(
            "no node of the partition has that many GPUs, CPUs or that much memory: ask for less (sinfo lists {})",
            list(&gres)
        )
    } else if all.contains("time limit") {
        "ask for a shorter --time: the partition's limit is lower (sinfo -o '%P %l')".into()
    } else {
        "check the job's options (`[profile.x.slurm]` and fenton run's) against the site's".into()
    };
    format!("{message}: {fix}")
}

/// How a Slurm state reads to a user, with the exit status where it has one: `N:S` (exit
/// code and signal, as squeue and sacct print them) gives N, or 128+S for a signal. Slurm's
/// words may come cut short (`OUT_OF_ME+`, as sacct prints a narrow column) or with more
/// after them (`CANCELLED by 1000`).
pub fn state(slurm: &str, exit: Option<&str>) -> (&'static str, Option<i32>) {
    let word = slurm
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches('+');
    let code = exit.and_then(|e| {
        let (n, s) = e.split_once(':').unwrap_or((e, "0"));
        let (n, s) = (n.trim().parse::<i32>().ok()?, s.trim().parse::<i32>().ok()?);
        Some(if s > 0 { 128 + s } else { n })
    });
    let is = |full: &str| !word.is_empty() && full.starts_with(word) && word.len() >= 3;
    let mapped = match word {
        "PENDING" | "CONFIGURING" => "pending",
        "RUNNING" | "SIGNALING" | "STAGE_OUT" | "RESIZING" => "running",
        "COMPLETING" => "completing",
        "SUSPENDED" | "STOPPED" => "suspended",
        "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" => "requeued",
        "COMPLETED" => {
            return match code {
                Some(c) if c != 0 => ("failed", Some(c)),
                _ => ("succeeded", Some(0)),
            }
        }
        "FAILED" | "SPECIAL_EXIT" => return ("failed", code.filter(|c| *c != 0).or(Some(1))),
        "CANCELLED" | "REVOKED" => "cancelled",
        "TIMEOUT" | "DEADLINE" => "timeout",
        "PREEMPTED" => "preempted",
        "NODE_FAIL" | "BOOT_FAIL" => "node_failure",
        _ if is("OUT_OF_MEMORY") => "out_of_memory",
        _ if is("CANCELLED") => "cancelled",
        _ if is("COMPLETING") => "completing",
        _ if is("REQUEUE_HOLD") => "requeued",
        _ => "unknown",
    };
    // A status is said only for a job that ended by a signal; a timeout's own is not news.
    let code = match mapped {
        "cancelled" | "out_of_memory" | "node_failure" | "preempted" => code.filter(|c| *c > 128),
        _ => None,
    };
    (mapped, code)
}

/// Whether a mapped state is one the job leaves by itself (it has not ended yet).
pub fn active(state: &str) -> bool {
    matches!(
        state,
        "pending" | "running" | "completing" | "suspended" | "requeued" | "unknown"
    )
}

/// The Slurm side of a job, for `fenton jobs --json`.
#[derive(Debug, Default, Serialize)]
pub struct SlurmInfo {
    pub job_id: String,
    /// Slurm's own word for the state (of the first task still going, for an array).
    pub state: String,
    /// Why a pending job waits (squeue's reason).
    pub reason: Option<String>,
    pub node: Option<String>,
    /// `D-HH:MM:SS` as Slurm writes them; `time_limit` None when unlimited.
    pub elapsed: Option<String>,
    pub time_limit: Option<String>,
    pub time_left: Option<String>,
    /// When it started (seconds since the epoch, by the cluster's clock); for a pending
    /// job, when Slurm expects it to, once it has a guess.
    pub start: Option<u64>,
    /// The tasks of an array job.
    pub tasks: Vec<Task>,
}

#[derive(Debug, Serialize)]
pub struct Task {
    /// The task's index, or a range of pending ones (`4-9`).
    pub index: String,
    pub state: &'static str,
    pub exit: Option<i32>,
    pub slurm_state: String,
    pub node: Option<String>,
}

/// squeue's line: `JOBID|ARRAYJOBID|TASK|STATE|REASON|ELAPSED|LIMIT|LEFT|NODES|START`.
#[derive(Debug, Clone, Default)]
struct Queued {
    raw: String,
    array_id: String,
    task: Option<String>,
    state: String,
    reason: Option<String>,
    elapsed: Option<String>,
    limit: Option<String>,
    left: Option<String>,
    nodes: Option<String>,
    start: Option<String>,
}

fn field(text: &str) -> Option<String> {
    let t = printable(text);
    (!t.is_empty()
        && !matches!(
            t.as_str(),
            "N/A" | "None" | "(null)" | "Unknown" | "UNLIMITED"
        ))
    .then_some(t)
}

fn queued(line: &str) -> Option<Queued> {
    let f: Vec<&str> = line.split('|').collect();
    if f.len() < 10 {
        return None;
    }
    Some(Queued {
        raw: f[0].trim().to_string(),
        array_id: f[1].trim().to_string(),
        task: field(f[2]),
        state: f[3].trim().to_string(),
        reason: field(f[4]),
        elapsed: field(f[5]),
        limit: field(f[6]),
        left: field(f[7]),
        nodes: field(f[8]),
        start: field(f[9]),
    })
}

/// A task as the queue or the accounting last saw it.
struct Seen {
    index: Option<String>,
    /// Slurm's word, and the exit code as `N:S` once the accounting has it.
    state: String,
    exit: Option<String>,
    nodes: Option<String>,
    /// When it ended, as the accounting says (seconds since the epoch).
    end: Option<u64>,
    queued: Queued,
}

/// sacct's line: `JobID|State|ExitCode|Elapsed|Start|End|NodeList`, or, as a `final` kept
/// by an older fenton, with `JobName` (any text, even `|`) after the id: the fields are read
/// from the end.
#[derive(Debug, Clone)]
struct Accounted {
    /// `12`, or `12_3` for an array task (with an accounting database).
    id: String,
    state: String,
    exit: String,
    elapsed: Option<String>,
    start: Option<String>,
    end: Option<u64>,
    nodes: Option<String>,
}

fn accounted(line: &str) -> Option<Accounted> {
    let all: Vec<&str> = line.split('|').collect();
    if all.len() < 7 {
        return None;
    }
    let f = &all[all.len() - 6..];
    Some(Accounted {
        id: all[0].trim().to_string(),
        state: f[0].trim().to_string(),
        exit: f[1].trim().to_string(),
        elapsed: field(f[2]),
        start: field(f[3]),
        end: f[4].trim().parse().ok(),
        nodes: field(f[5]),
    })
}

/// How many tasks an array index stands for: `3` is one, `4-9` six, `1,3-4` three.
pub fn task_count(index: &str) -> u64 {
    let spec = index.split('%').next().unwrap_or("");
    let n: u64 = spec
        .split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => match (
                a.parse::<u64>(),
                b.split(':').next().unwrap_or("").parse::<u64>(),
            ) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 1,
            },
            None => 1,
        })
        .sum();
    n.max(1)
}

/// Slurm's `[D-]HH:MM:SS`, `MM:SS` or `M` in seconds.
pub fn seconds(text: &str) -> Option<u64> {
    let (days, clock) = match text.split_once('-') {
        Some((d, c)) => (d.parse::<u64>().ok()?, c),
        None => (0, text),
    };
    let parts: Vec<u64> = clock
        .split(':')
        .map(|p| p.parse::<u64>().ok())
        .collect::<Option<_>>()?;
    let s = match parts[..] {
        [h, m, s] => h * 3600 + m * 60 + s,
        [m, s] => m * 60 + s,
        [m] => m * 60,
        _ => return None,
    };
    Some(days * 86400 + s)
}

/// Reads slurm-list.sh's output into jobs, oldest first.
pub fn parse(text: &str) -> Vec<Job> {
    let mut now = 0;
    let mut blocks: Vec<Vec<(String, String)>> = vec![];
    let mut fields: Vec<(String, String)> = vec![];
    let mut queue: Vec<Queued> = vec![];
    let mut acct: Vec<Accounted> = vec![];
    let mut blind = false;
    let mut lasts: Vec<(&str, &str)> = vec![];
    for line in text.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "lastof" => lasts.push(value.split_once(' ').unwrap_or((value, ""))),
            "now" => now = value.trim().parse().unwrap_or(0),
            "squeue-failed" => blind = true,
            "older" => {}
            // (A block cut short, which the login node never sends whole, is dropped here.)
            "job" => fields = vec![(key.to_string(), value.to_string())],
            "end" => blocks.push(std::mem::take(&mut fields)),
            "squeue" => queue.extend(queued(value)),
            "sacct" => acct.extend(accounted(value)),
            _ => fields.push((key.to_string(), value.to_string())),
        }
    }
    // A running job's last log line comes after the blocks, from one tail for them all.
    for block in &mut blocks {
        let id = block
            .iter()
            .find(|(k, _)| k == "job")
            .map(|(_, v)| v.clone());
        let found = lasts
            .iter()
            .rev()
            .find(|(of, _)| Some(*of) == id.as_deref());
        if let Some((_, last)) = found {
            if !block.iter().any(|(k, _)| k == "last") {
                block.push(("last".into(), last.to_string()));
            }
        }
    }
    let mut jobs: Vec<Job> = blocks
        .iter()
        .map(|b| job(now, b, &queue, &acct, blind))
        .collect();
    // A job may come twice, the later lines the newer; ids sort by submission.
    jobs.reverse();
    jobs.sort_by(|a, b| a.id.cmp(&b.id));
    jobs.dedup_by(|later, kept| later.id == kept.id);
    jobs
}

/// One of fenton's jobs from its block; `blind` when squeue did not answer, so that a job
/// the accounting does not know as ended is `unknown`, not guessed.
fn job(
    now: u64,
    fields: &[(String, String)],
    queue: &[Queued],
    acct: &[Accounted],
    blind: bool,
) -> Job {
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let sid = get("slurm").unwrap_or("").trim().to_string();
    let started = get("started")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(now);
    let array = get("array").is_some();
    let mine: Vec<&Queued> = queue.iter().filter(|q| q.array_id == sid).collect();
    let raws: Vec<&str> = mine.iter().map(|q| q.raw.as_str()).collect();
    let kept = get("final").and_then(accounted);
    let mut booked: Vec<Accounted> = acct
        .iter()
        .filter(|a| {
            a.id == sid
                || a.id.split_once('_').is_some_and(|(j, _)| j == sid)
                || raws.contains(&a.id.as_str())
        })
        .cloned()
        .collect();
    booked.extend(kept);
    let booked_for = |q: &Queued| {
        booked.iter().find(|a| {
            a.id == q.raw
                || q.task
                    .as_ref()
                    .is_some_and(|t| a.id == format!("{sid}_{t}"))
        })
    };
    // One task per queue line; the accounting's word wins once the queue's is an end.
    let mut tasks: Vec<Seen> = mine
        .iter()
        .map(|q| {
            let (state, exit, nodes, end) = match booked_for(q) {
                Some(a) if !active(state(&q.state, None).0) => (
                    a.state.clone(),
                    Some(a.exit.clone()),
                    a.nodes.clone(),
                    a.end,
                ),
                _ => (q.state.clone(), None, q.nodes.clone(), None),
            };
            Seen {
                index: q.task.clone(),
                state,
                exit,
                nodes,
                end,
                queued: (*q).clone(),
            }
        })
        .collect();
    if tasks.is_empty() {
        for a in &booked {
            let task = a.id.split_once('_').map(|(_, t)| t.to_string());
            let q = Queued {
                elapsed: a.elapsed.clone(),
                start: a.start.clone(),
                ..Queued::default()
            };
            tasks.push(Seen {
                index: task,
                state: a.state.clone(),
                exit: Some(a.exit.clone()),
                nodes: a.nodes.clone(),
                end: a.end,
                queued: q,
            });
        }
    }
    // When fenton's kill began (slurm-kill.sh's `killed`; 0 when it could not say).
    let killed_at = get("killed").map(|v| v.trim().parse::<u64>().unwrap_or(0));
    let mapped: Vec<Task> = tasks
        .iter()
        .map(|seen| {
            let (mut st, mut code) = state(&seen.state, seen.exit.as_deref());
            // A task fenton stopped was cancelled, even when its TERM handler then exited
            // by itself or it died of the signal; one the accounting says ended before the
            // kill keeps its own end.
            if let Some(at) = killed_at {
                if matches!(st, "succeeded" | "failed") && seen.end.is_none_or(|e| e >= at) {
                    (st, code) = ("cancelled", None);
                }
            }
            Task {
                index: seen.index.clone().unwrap_or_default(),
                state: st,
                exit: code,
                slurm_state: printable(&seen.state),
                node: seen.nodes.clone(),
            }
        })
        .collect();
    let killed = killed_at.is_some();
    // The job's state: the first task still going, else the first that did not succeed.
    let lead = mapped
        .iter()
        .position(|t| t.state == "running")
        .or_else(|| mapped.iter().position(|t| active(t.state)))
        .or_else(|| mapped.iter().position(|t| t.state != "succeeded"))
        .or(if mapped.is_empty() { None } else { Some(0) });
    let (mut st, exit) = match lead {
        Some(i) => (mapped[i].state, mapped[i].exit),
        None if blind => ("unknown", None),
        // Submitted a moment ago, and not yet in the queue's answer; or forgotten by it.
        None if now.saturating_sub(started) < 60 => ("pending", None),
        None => ("unknown", None),
    };
    // An array fenton stopped was cancelled, even where one of its tasks had failed before.
    if killed && array && matches!(st, "succeeded" | "failed") {
        st = "cancelled";
    }
    let q = lead.map(|i| tasks[i].queued.clone()).unwrap_or_default();
    let elapsed = q.elapsed.clone();
    let duration_s = elapsed.as_deref().and_then(seconds).unwrap_or(0);
    // When it ended, as the accounting says; else (the queue's word only) by now.
    let end = booked.iter().filter_map(|a| a.end).max();
    let ended = (!active(st) && lead.is_some()).then_some(end.unwrap_or(now));
    let slurm = SlurmInfo {
        job_id: sid,
        state: lead.map(|i| tasks[i].state.clone()).unwrap_or_default(),
        reason: if blind && lead.is_none() {
            Some(NO_ANSWER.to_string())
        } else {
            q.reason.clone().filter(|_| st == "pending")
        },
        node: lead.and_then(|i| tasks[i].nodes.clone()),
        elapsed,
        time_limit: q.limit.clone(),
        time_left: q.left.clone().filter(|_| st == "running"),
        start: q.start.as_deref().and_then(|s| s.parse().ok()),
        tasks: if array { mapped } else { vec![] },
    };
    Job {
        id: get("job").unwrap_or("").to_string(),
        name: get("name").unwrap_or("").to_string(),
        command: get("cmd").unwrap_or("").to_string(),
        state: st,
        exit: if st == "cancelled" && killed {
            None
        } else {
            exit
        },
        started,
        ended,
        duration_s,
        last_line: printable(get("last").unwrap_or("")),
        damaged: vec![],
        notify: Notify {
            requested: get("notify").is_some(),
            what: get("notify").map(printable).unwrap_or_default(),
            last: get("notify.last").and_then(last),
            results: fields
                .iter()
                .filter(|(k, _)| k == "result")
                .map(|(_, v)| printable(v))
                .collect(),
        },
        age_s: now.saturating_sub(started),
        slurm: Some(slurm),
    }
}

/// The reason an unknown job gives when squeue did not answer.
const NO_ANSWER: &str = "squeue did not answer";

/// `slurm-list.sh`: the jobs, or with `last` the `last` latest and those not over (the login
/// node leaves out the rest and counts them).
pub async fn list(remote: &Remote, last: Option<usize>) -> Result<Listing> {
    let body = format!("{}\n{}", scripts::SLURM_LIB, scripts::SLURM_LIST);
    let out = boxed::output(remote, &body, &[last.unwrap_or(0).to_string()]).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    if let Some(why) = text.lines().find_map(|l| l.strip_prefix("squeue-failed")) {
        let why = printable(why.trim());
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(" ({why})")
        };
        crate::ui::warn(format_args!(
            "the scheduler did not answer squeue on {}{why}: jobs it has not said ended show as unknown; try again, or see fenton doctor",
            remote.profile.host
        ));
    }
    Ok(Listing {
        jobs: parse(&text),
        older: super::older(&text),
    })
}

/// One job, by id, name or Slurm id, as `fenton jobs` shows it.
pub async fn find(remote: &Remote, job: &str) -> Result<Option<Job>> {
    let jobs = list(remote, None).await?.jobs;
    let (base, task) = match job.rsplit_once('.') {
        Some((b, t)) if t.bytes().all(|c| c.is_ascii_digit()) && !t.is_empty() => (b, Some(t)),
        _ => (job, None),
    };
    let found = jobs.into_iter().rfind(|j| {
        j.id == base || j.name == base || j.slurm.as_ref().is_some_and(|s| s.job_id == base)
    });
    Ok(found.map(|mut j| {
        if let (Some(task), Some(slurm)) = (task, j.slurm.as_mut()) {
            if let Some(t) = slurm.tasks.iter().find(|t| t.index == task) {
                j.state = t.state;
                j.exit = t.exit;
            }
        }
        j
    }))
}

/// How long a cancelled job gets to leave the queue before `fenton kill` says it has not:
/// 30 s, or `FENTON_SLURM_CANCEL_WAIT` seconds (for tests, which need not wait so long).
fn cancel_wait() -> u64 {
    std::env::var("FENTON_SLURM_CANCEL_WAIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s| (1..=600).contains(s))
        .unwrap_or(30)
}

pub async fn cancel(remote: &Remote, job: &str, grace: u64) -> Result<Cancelled> {
    let body = format!("{}\n{}", scripts::SLURM_LIB, scripts::SLURM_KILL);
    let wait = cancel_wait();
    // The grace, then the wait for the cluster to end the job, and three queries that a
    // controller which does not answer lets run out (squeue gives up after 10-20 s each).
    let limit = std::time::Duration::from_secs(grace + wait + 60) + STEP_LIMIT;
    let out = boxed::output_within(
        remote,
        &body,
        &[job, grace.to_string().as_str(), wait.to_string().as_str()],
        limit,
        "cancelling the job",
    )
    .await?;
    Ok(Cancelled::from_answer(&out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_states_read_as_what_happened() {
        let cases: [(&str, Option<&str>, &str, Option<i32>); 22] = [
            ("PENDING", None, "pending", None),
            ("CONFIGURING", None, "pending", None),
            ("RUNNING", None, "running", None),
            ("COMPLETING", None, "completing", None),
            ("COMPLETED", Some("0:0"), "succeeded", Some(0)),
            ("FAILED", Some("3:0"), "failed", Some(3)),
            ("FAILED", Some("0:9"), "failed", Some(137)),
            ("FAILED", None, "failed", Some(1)),
            ("CANCELLED", Some("0:15"), "cancelled", Some(143)),
            ("CANCELLED by 1000", Some("0:0"), "cancelled", None),
            ("CANCELLED+", None, "cancelled", None),
            ("TIMEOUT", Some("0:0"), "timeout", None),
            ("TIMEOUT", Some("0:15"), "timeout", None),
            ("OUT_OF_MEMORY", Some("0:125"), "out_of_memory", Some(253)),
            ("OUT_OF_ME+", Some("0:125"), "out_of_memory", Some(253)),
            ("OUT_OF_MEM", None, "out_of_memory", None),
            ("PREEMPTED", Some("0:15"), "preempted", Some(143)),
            ("REQUEUED", None, "requeued", None),
            ("REQUEUE_HOLD", None, "requeued", None),
            ("NODE_FAIL", Some("0:0"), "node_failure", None),
            ("BOOT_FAIL", None, "node_failure", None),
            ("WHATEVER", None, "unknown", None),
        ];
        for (slurm, exit, want, code) in cases {
            assert_eq!(state(slurm, exit), (want, code), "{slurm} {exit:?}");
        }
        assert!(active("completing") && active("requeued") && !active("preempted"));
    }

    #[test]
    fn slurm_times_are_seconds() {
        assert_eq!(seconds("00:05"), Some(5));
        assert_eq!(seconds("1:02:03"), Some(3723));
        assert_eq!(seconds("2-00:00:01"), Some(172801));
        assert_eq!(seconds("INVALID"), None);
    }

    #[test]
    fn options_come_from_the_profile_and_what_was_asked() {
        let profile = Slurm {
            partition: Some("gpu".into()),
            account: Some("lab".into()),
            gpus: Some(crate::jobs::resources::GpusValue::Count(1)),
            time: Some("4h".into()),
            extra: vec!["--constraint=a100".into()],
            ..Slurm::default()
        };
        let ask = Ask {
            gpus: Some("a100:2".into()),
            cpus: Some(8),
            mem: Some("32G".into()),
            ..Ask::default()
        };
        assert_eq!(
            options(&profile, &ask).unwrap(),
            [
                "--nodes=1",
                "--partition=gpu",
                "--account=lab",
                "--gpus=a100:2",
                "--cpus-per-task=8",
                "--mem=32G",
                "--time=0-04:00:00",
                "--constraint=a100"
            ]
        );
        let bad = Ask {
            time: Some("soon".into()),
            ..Ask::default()
        };
        let e = options(&profile, &bad).unwrap_err().to_string();
        assert!(e.starts_with("--time \"soon\" is not a time limit"), "{e}");
    }

    #[test]
    fn refusals_say_what_sbatch_said_and_the_fix() {
        let offered = ["debug* gpu:2", "big gpu:4", "cpu (null)"];
        let r = refusal(
            &[
                "sbatch: error: invalid partition specified: nope",
                "sbatch: error: Batch job submission failed: Invalid partition name specified",
            ],
            &offered,
        );
        assert_eq!(
            r,
            "sbatch refused the job: invalid partition specified: nope; Batch job submission failed: Invalid partition name specified: \
             give a partition the cluster has with --partition or `slurm.partition` (sinfo lists debug*, big, cpu; * is the default)"
        );
        let r = refusal(
            &["sbatch: error: Batch job submission failed: Requested node configuration is not available"],
            &offered,
        );
        assert!(
            r.ends_with("ask for less (sinfo lists debug: gpu:2, big: gpu:4)"),
            "{r}"
        );
        let r = refusal(
            &["sbatch: error: Invalid generic resource (gres) specification\u{1b}[31m"],
            &offered,
        );
        assert!(r.contains("GPU type") && !r.contains('\u{1b}'), "{r}");
        assert!(refusal(&[], &[]).starts_with("sbatch refused the job and said nothing"));
    }

    #[test]
    fn without_the_queue_a_job_is_unknown_unless_the_accounting_says_it_ended() {
        let text = "now 2000\n\
            job 20260101-000000-01\nname new\ncmd 'sh'\nstarted 1990\nslurm 7\nlast \nend\n\
            job 20260101-000000-02\nname done\ncmd 'sh'\nstarted 1000\nslurm 8\nlast \nend\n\
            squeue-failed squeue: error: Unable to contact slurm controller (connect failure)\n\
            sacct 8|FAILED|3:0|00:00:01|1500|1501|n1\n";
        let jobs = parse(text);
        let states: Vec<String> = jobs.iter().map(Job::state_text).collect();
        assert_eq!(states, ["unknown (squeue did not answer)", "failed (3)"]);
        assert!(jobs[0].ended.is_none());
    }

    #[test]
    fn a_listing_joins_fentons_jobs_with_the_queue_and_the_accounting() {
        let text = "now 2000\n\
            job 20260101-000000-01\nname train\ncmd 'python' 'x.py'\nstarted 1000\nslurm 7\nlast epoch 3\nend\n\
            job 20260101-000000-02\nname bad\ncmd 'sh'\nstarted 1000\nslurm 8\nlast \nend\n\
            job 20260101-000000-03\nname arr\ncmd 'sh'\nstarted 1000\nslurm 9\narray 0-3\nlast \nend\n\
            job 20260101-000000-04\nname wait\ncmd 'sh'\nstarted 1990\nslurm 14\nlast \nend\n\
            job 20260101-000000-05\nname old\ncmd 'sh'\nstarted 100\nslurm 3\nfinal 3|old|a|b|OUT_OF_MEMORY|0:125|00:01:00|x|y|n2\nlast \nend\n\
            job 20260101-000000-06\nname stop\ncmd 'sh'\nstarted 1000\nslurm 15\nkilled 1500\nlast \nend\n\
            job 20260101-000000-07\nname sig\ncmd 'sh'\nstarted 1000\nslurm 16\nkilled 1500\nlast \nend\n\
            job 20260101-000000-08\nname before\ncmd 'sh'\nstarted 1000\nslurm 17\nkilled 1500\nlast \nend\n\
            job 20260101-000000-09\nname arr2\ncmd 'sh'\nstarted 1000\nslurm 18\narray 0-1\nkilled 1500\nlast \nend\n\
            squeue 7|7|N/A|RUNNING|None|1:02|5:00|3:58|n1|2026-01-01T00:00:00\n\
            squeue 8|8|N/A|FAILED|NonZeroExitCode|0:01|UNLIMITED|N/A|n1|2026-01-01T00:00:00\n\
            squeue 10|9|0|COMPLETED|None|0:02|UNLIMITED|N/A|n1|x\n\
            squeue 11|9|1|FAILED|None|0:02|UNLIMITED|N/A|n2|x\n\
            squeue 9|9|2-3|PENDING|Resources|0:00|UNLIMITED|N/A||N/A\n\
            squeue 14|14|N/A|PENDING|ReqNodeNotAvail, UnavailableNodes:n3|0:00|UNLIMITED|N/A||N/A\n\
            sacct 8|FAILED|3:0|00:00:01|1500|1501|n1\n\
            sacct 10|COMPLETED|0:0|00:00:02|x|y|n1\n\
            sacct 11|FAILED|2:0|00:00:02|x|y|n2\n\
            sacct 15|COMPLETED|0:0|00:00:09|x|y|n1\n\
            sacct 16|FAILED|0:15|00:00:09|1000|1500|n1\n\
            sacct 17|FAILED|3:0|00:00:09|1000|1499|n1\n\
            squeue 19|18|0|FAILED|None|0:02|UNLIMITED|N/A|n1|x\n\
            squeue 20|18|1|FAILED|None|0:02|UNLIMITED|N/A|n2|x\n\
            sacct 19|FAILED|0:15|00:00:09|1000|1501|n1\n\
            sacct 20|FAILED|3:0|00:00:01|1000|1001|n2\n";
        let jobs = parse(text);
        let states: Vec<String> = jobs.iter().map(Job::state_text).collect();
        assert_eq!(
            states,
            [
                "running (3:58 left)",
                "failed (3)",
                "pending (4 tasks: 2 pending, 1 succeeded, 1 failed (2))",
                "pending (ReqNodeNotAvail, UnavailableNodes:n3)",
                "out of memory",
                "cancelled",
                "cancelled",
                "failed (3)",
                "cancelled (2 tasks: 1 cancelled, 1 failed (3))"
            ]
        );
        assert_eq!(
            jobs[6].exit, None,
            "a killed job's signal is not its failure"
        );
        let s = jobs[0].slurm.as_ref().unwrap();
        assert_eq!((s.job_id.as_str(), s.node.as_deref()), ("7", Some("n1")));
        assert_eq!(jobs[0].duration_s, 62);
        assert_eq!(jobs[0].last_line, "epoch 3");
        assert_eq!(jobs[2].slurm.as_ref().unwrap().tasks.len(), 3);
        assert_eq!(jobs[4].exit, Some(253));
        assert!(jobs[0].ended.is_none());
        assert_eq!(jobs[1].ended, Some(1501));
        assert_eq!(
            jobs[5].ended,
            Some(2000),
            "by the listing's clock when sacct gives none"
        );
    }
}
