//! What `fenton status` knows about a Slurm cluster, from its login node: the partitions and
//! their nodes (`sinfo`), the user's jobs (`squeue`) and the login node's own load. The login
//! node answers one script (`scripts/slurm-status.sh`) in sections; everything here is pure,
//! so recorded text makes the tests.
//!
//! What the scheduler prints is data: every line is split on a delimiter no Slurm name can
//! hold, the one free-text field (a reason, a job name) comes last so a delimiter in it
//! cannot shift the others, and a line that does not fit is skipped, never guessed at.

use std::fmt::Write;

use serde::Serialize;

use super::render::{fit, Style, WIDTH};
use super::Load;

/// The version of the Slurm status JSON; it changes only when a key changes meaning or goes
/// away.
pub const SCHEMA: u32 = 1;

/// `sinfo -N` with one line per node and partition: the fields `parse_node` reads, in order.
pub const SINFO_NODES: &str =
    "NodeList:0|,Partition:0|,StateLong:0|,CPUsState:0|,Gres:0|,GresUsed:0|,Reason:0";
/// `sinfo` with one line per partition (and node state): name (`*` for the default),
/// availability, time limit.
pub const SINFO_PARTITIONS: &str = "%P|%a|%l";
/// `squeue -o`, with times as Unix seconds (`SLURM_TIME_FORMAT=%s`); the name comes last.
pub const SQUEUE: &str = "%i|%T|%P|%M|%l|%L|%N|%S|%r|%b|%j";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Cluster {
    pub schema: u32,
    pub profile: String,
    /// Always `slurm`: tells this object from a box's status.
    pub scheduler: String,
    pub login: Login,
    pub partitions: Vec<Partition>,
    pub jobs: Vec<Job>,
    /// What failed on the way (`sinfo: …`, `squeue: …`): the rest still shows.
    pub errors: Vec<String>,
    /// From sending the script to its whole answer, sinfo and squeue included.
    pub answer_ms: Option<f64>,
}

/// The login node itself: what everyone's editors, builds and `pip install`s share.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Login {
    pub host: String,
    pub load: Load,
    pub cpu_count: u32,
    pub memory_total_mib: Option<u64>,
    pub memory_available_mib: Option<u64>,
    /// The login node's clock, Unix seconds.
    pub now_unix: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Partition {
    pub name: String,
    /// The partition jobs go to without `-p`.
    pub default: bool,
    /// `up`, `down`, `drain` or `inact`, as sinfo says.
    pub availability: String,
    /// null: no limit (`infinite`) or one sinfo did not say.
    pub time_limit_seconds: Option<u64>,
    pub nodes_up: u32,
    pub nodes_down: u32,
    pub gpus_total: u32,
    pub gpus_allocated: u32,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Node {
    pub name: String,
    /// sinfo's long state with its flags (`idle`, `mixed`, `down*`, `drained`, …).
    pub state: String,
    /// Takes new jobs: idle, mixed, allocated, completing or planned, and responding.
    pub up: bool,
    pub cpus_allocated: Option<u32>,
    pub cpus_total: Option<u32>,
    pub gpus_total: u32,
    pub gpus_allocated: u32,
    /// GPU types as the site names them (`a100`), when it types them.
    pub gpu_types: Vec<String>,
    /// Why an admin or Slurm took the node out; null when none.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Job {
    /// Slurm's job id (`123`, `123_4` for an array task, `123_[5-9]` for pending tasks).
    pub id: String,
    pub name: String,
    /// Slurm's state, as squeue says it (`PENDING`, `RUNNING`, `COMPLETING`, …).
    pub state: String,
    pub partition: String,
    /// Why a pending job waits (`Resources`, `Priority`, `QOSMaxGRESPerUser`…); null when none.
    pub reason: Option<String>,
    /// Running: when it started; pending: Slurm's estimate, when it has one.
    pub start_unix: Option<i64>,
    pub nodes: Option<String>,
    pub elapsed_seconds: Option<u64>,
    /// null: no limit.
    pub time_limit_seconds: Option<u64>,
    pub time_left_seconds: Option<u64>,
    /// Running with less than a tenth of its time limit left.
    pub ending_soon: bool,
    /// What it asked for per node (`gres:gpu:1`); null when nothing.
    pub gres: Option<String>,
}

impl Job {
    pub fn pending(&self) -> bool {
        self.state == "PENDING"
    }
}

/// What the login node's script printed, parsed; `host` and `profile` come from here.
pub fn parse(text: &str) -> Cluster {
    let mut cluster = Cluster {
        schema: SCHEMA,
        profile: String::new(),
        scheduler: "slurm".into(),
        login: Login::default(),
        partitions: Vec::new(),
        jobs: Vec::new(),
        errors: Vec::new(),
        answer_ms: None,
    };
    let mut section = "";
    let mut nodes: Vec<(String, Node)> = Vec::new();
    let mut parts: Vec<Partition> = Vec::new();
    for line in text.lines() {
        if let Some(head) = line.strip_prefix("@@fenton:") {
            let (name, arg) = head.split_once(' ').unwrap_or((head, ""));
            match name {
                "err" => {
                    let said = arg.trim();
                    if !said.is_empty() && cluster.errors.len() < 8 {
                        cluster.errors.push(format!("{section}: {said}"));
                    }
                }
                "rc" => {
                    let failed = arg.trim() != "0";
                    let said = cluster
                        .errors
                        .iter()
                        .any(|e| e.starts_with(&format!("{section}:")));
                    if failed && !said {
                        cluster
                            .errors
                            .push(format!("{section}: exit {} without a message", arg.trim()));
                    }
                    section = "";
                }
                "host" => cluster.login.host = arg.trim().to_string(),
                "now" => cluster.login.now_unix = arg.trim().parse().ok(),
                "cpus" => cluster.login.cpu_count = arg.trim().parse().unwrap_or(0),
                _ => section = leak_section(name),
            }
            continue;
        }
        match section {
            "load" => {
                let mut f = line.split_whitespace().map(|v| v.parse::<f64>().ok());
                if let (Some(Some(a)), Some(Some(b)), Some(Some(c))) =
                    (f.next(), f.next(), f.next())
                {
                    cluster.login.load = Load {
                        avg_1m: a,
                        avg_5m: b,
                        avg_15m: c,
                    };
                }
            }
            "mem" => {
                let kib = |l: &str| -> Option<u64> {
                    l.split_whitespace()
                        .nth(1)?
                        .parse::<u64>()
                        .ok()
                        .map(|k| k / 1024)
                };
                if line.starts_with("MemTotal:") {
                    cluster.login.memory_total_mib = kib(line);
                } else if line.starts_with("MemAvailable:") {
                    cluster.login.memory_available_mib = kib(line);
                }
            }
            "sinfo-nodes" => nodes.extend(parse_node(line)),
            "sinfo-partitions" => {
                if let Some(p) = parse_partition(line) {
                    if !parts.iter().any(|q| q.name == p.name) {
                        parts.push(p);
                    }
                }
            }
            "squeue" => cluster.jobs.extend(parse_job(line)),
            _ => {}
        }
    }
    // Partitions sinfo listed but whose nodes it did not (or the other way round) still show.
    for (partition, _) in &nodes {
        if !parts.iter().any(|p| &p.name == partition) {
            parts.push(Partition {
                name: partition.clone(),
                ..Partition::default()
            });
        }
    }
    for p in &mut parts {
        p.nodes = nodes
            .iter()
            .filter(|(name, _)| name == &p.name)
            .map(|(_, n)| n.clone())
            .collect();
        p.nodes.sort_by(|a, b| natural(&a.name, &b.name));
        p.nodes_up = p.nodes.iter().filter(|n| n.up).count() as u32;
        p.nodes_down = p.nodes.len() as u32 - p.nodes_up;
        p.gpus_total = p.nodes.iter().map(|n| n.gpus_total).sum();
        p.gpus_allocated = p.nodes.iter().map(|n| n.gpus_allocated).sum();
    }
    cluster.partitions = parts;
    cluster
}

/// The script's section names, as the static strings the parser matches on.
fn leak_section(name: &str) -> &'static str {
    match name {
        "load" => "load",
        "mem" => "mem",
        "sinfo-nodes" => "sinfo-nodes",
        "sinfo-partitions" => "sinfo-partitions",
        "squeue" => "squeue",
        _ => "",
    }
}

/// Node names in the order people number them: `gpu2` before `gpu10`.
fn natural(a: &str, b: &str) -> std::cmp::Ordering {
    let split = |s: &str| {
        let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (head, tail) = s.split_at(s.len() - digits);
        (
            head.to_string(),
            tail.parse::<u64>().unwrap_or(0),
            s.to_string(),
        )
    };
    split(a).cmp(&split(b))
}

/// One `SINFO_NODES` line: (partition, node).
pub fn parse_node(line: &str) -> Option<(String, Node)> {
    let mut f = line.splitn(7, '|');
    let name = f.next()?.trim();
    let partition = f.next()?.trim().trim_end_matches('*');
    let state = f.next()?.trim();
    let cpus = f.next()?.trim();
    let gres = f.next()?.trim();
    let used = f.next()?.trim();
    let reason = f.next()?.trim();
    if name.is_empty() || partition.is_empty() || state.is_empty() {
        return None;
    }
    let (gpus_total, gpu_types) = gpus(gres);
    let (gpus_allocated, _) = gpus(used);
    // CPUsState is allocated/idle/other/total.
    let cpus: Vec<Option<u32>> = cpus.split('/').map(|v| v.parse().ok()).collect();
    let (cpus_allocated, cpus_total) = match cpus.as_slice() {
        [a, _, _, t] => (*a, *t),
        _ => (None, None),
    };
    let reason = match reason {
        "" | "none" | "None" | "(null)" => None,
        r => Some(r.to_string()),
    };
    Some((
        partition.to_string(),
        Node {
            name: name.to_string(),
            state: state.to_string(),
            up: node_up(state),
            cpus_allocated,
            cpus_total,
            gpus_total,
            gpus_allocated,
            gpu_types,
            reason,
        },
    ))
}

/// Whether a node in this sinfo state takes new jobs. A trailing flag `*` (not responding),
/// `~`/`#`/`%` (powered down or powering) or `!` (powering down) means it does not now;
/// `+` (more states follow, e.g. `idle+drain`) is read state by state.
pub fn node_up(state: &str) -> bool {
    let state = state.to_ascii_lowercase();
    if state.ends_with(['*', '~', '#', '%', '!']) {
        return false;
    }
    let state = state.trim_end_matches(['$', '@', '^', '-']);
    state.split('+').all(|s| {
        matches!(
            s,
            "idle" | "mixed" | "mix" | "allocated" | "alloc" | "completing" | "comp" | "planned"
        )
    })
}

/// The GPUs in a GRES string (`gpu:2`, `gpu:a100:4(S:0-1)`, `gpu:a100:2(IDX:0,2),gpu:v100:1`,
/// `(null)`): how many, and their types.
pub fn gpus(gres: &str) -> (u32, Vec<String>) {
    let mut total = 0;
    let mut types = Vec::new();
    for item in top_level(gres) {
        let item = item.trim();
        // The trailing group is where they sit (`(S:0-1)`, `(IDX:0,2)`), not part of the count.
        let item = match item.rfind('(') {
            Some(at) if item.ends_with(')') && at > 0 => &item[..at],
            _ => item,
        };
        let item = item.strip_prefix("gres/").unwrap_or(item);
        let mut parts = item.split(':');
        if parts.next() != Some("gpu") {
            continue;
        }
        let rest: Vec<&str> = parts.collect();
        let (kind, count) = match rest.as_slice() {
            [] => (None, Some(1)),
            [n] => match n.parse::<u32>() {
                Ok(n) => (None, Some(n)),
                Err(_) => (Some(*n), Some(1)),
            },
            [kind, n, ..] => (Some(*kind), n.parse::<u32>().ok()),
        };
        total += count.unwrap_or(0);
        if let Some(kind) = kind.filter(|k| !k.is_empty() && *k != "(null)") {
            if !types.iter().any(|t| t == kind) {
                types.push(kind.to_string());
            }
        }
    }
    (total, types)
}

/// A comma-separated list split where no parenthesis is open: `IDX:0,2` stays whole.
fn top_level(list: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in list.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth <= 0 => {
                out.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&list[start..]);
    out
}

/// One `SINFO_PARTITIONS` line.
pub fn parse_partition(line: &str) -> Option<Partition> {
    let mut f = line.split('|');
    let name = f.next()?.trim();
    let availability = f.next()?.trim();
    let limit = f.next()?.trim();
    if name.is_empty() || f.next().is_some() {
        return None;
    }
    let default = name.ends_with('*');
    Some(Partition {
        name: name.trim_end_matches('*').to_string(),
        default,
        availability: availability.to_string(),
        time_limit_seconds: duration(limit),
        ..Partition::default()
    })
}

/// One `SQUEUE` line.
pub fn parse_job(line: &str) -> Option<Job> {
    let mut f = line.splitn(11, '|');
    let mut next = || f.next().map(str::trim);
    let id = next()?;
    let state = next()?;
    let partition = next()?;
    let elapsed = next()?;
    let limit = next()?;
    let left = next()?;
    let nodes = next()?;
    let start = next()?;
    let reason = next()?;
    let gres = next()?;
    let name = next()?;
    let id_ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_digit() || "_[]-,%+:".contains(c));
    if !id_ok || state.is_empty() || !state.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
        return None;
    }
    let some = |v: &str| match v {
        "" | "N/A" | "None" | "(null)" | "n/a" => None,
        v => Some(v.to_string()),
    };
    let time_limit_seconds = duration(limit);
    let time_left_seconds = duration(left).or_else(|| {
        let (limit, spent) = (time_limit_seconds?, duration(elapsed)?);
        Some(limit.saturating_sub(spent))
    });
    let running = state == "RUNNING";
    let ending_soon = running
        && match (time_left_seconds, time_limit_seconds) {
            (Some(left), Some(limit)) => left * 10 < limit,
            _ => false,
        };
    Some(Job {
        id: id.to_string(),
        name: name.to_string(),
        state: state.to_string(),
        partition: partition.to_string(),
        reason: some(reason),
        start_unix: start.parse().ok().filter(|&t: &i64| t > 0),
        nodes: some(nodes),
        elapsed_seconds: duration(elapsed),
        time_limit_seconds,
        time_left_seconds,
        ending_soon,
        gres: some(gres),
    })
}

/// A Slurm duration (`5`, `4:55`, `1:02:03`, `2-03:04:05`, `2-03`) in seconds; None for
/// `UNLIMITED`, `INVALID`, `NOT_SET`, `infinite` and anything else.
pub fn duration(text: &str) -> Option<u64> {
    let num = |p: &str| {
        (!p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u64>().ok())
            .flatten()
    };
    let parts = |t: &str| t.split(':').map(num).collect::<Option<Vec<u64>>>();
    let text = text.trim();
    if let Some((days, rest)) = text.split_once('-') {
        let seconds = match parts(rest)?[..] {
            [h] => h * 3600,
            [h, m] => h * 3600 + m * 60,
            [h, m, s] => h * 3600 + m * 60 + s,
            _ => return None,
        };
        return Some(num(days)? * 86400 + seconds);
    }
    match parts(text)?[..] {
        // A bare number is minutes, as `--time` reads it.
        [m] => Some(m * 60),
        [m, s] => Some(m * 60 + s),
        [h, m, s] => Some(h * 3600 + m * 60 + s),
        _ => None,
    }
}

/// The cluster drawn for a person, each line ending in a newline.
pub fn render(c: &Cluster, style: Style) -> String {
    let clean = |t: &str| crate::ui::clean(t).into_owned();
    let width = if style.width == 0 {
        WIDTH
    } else {
        style.width.max(40)
    };
    let paint = |text: &str, code: &str| {
        if style.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&fit(&text, width));
        out.push('\n');
    };
    let l = &c.login;
    let mut head = format!(
        "[{}] {} · Slurm login node",
        clean(&c.profile),
        clean(&l.host)
    );
    if let Some(ms) = c.answer_ms {
        let _ = write!(head, " · answered in {ms:.0} ms");
    }
    line(head);
    let mut login = format!(
        "Login   load {:.2} {:.2} {:.2}",
        l.load.avg_1m, l.load.avg_5m, l.load.avg_15m
    );
    if l.cpu_count > 0 {
        let _ = write!(login, " · {} cores", l.cpu_count);
    }
    if let (Some(total), Some(free)) = (l.memory_total_mib, l.memory_available_mib) {
        let _ = write!(login, " · memory {} free of {}", gib(free), gib(total));
    }
    line(login);
    for p in &c.partitions {
        let mut text = format!(
            "{}{}{} · {} · nodes {} up, {} down",
            paint(&clean(&p.name), "1"),
            if p.default { " (default)" } else { "" },
            if p.availability == "up" {
                String::new()
            } else {
                format!(" {}", paint(&clean(&p.availability), "31"))
            },
            p.time_limit_seconds
                .map_or("no time limit".into(), |s| format!("limit {}", limit(s))),
            p.nodes_up,
            p.nodes_down
        );
        if p.gpus_total > 0 {
            let _ = write!(
                text,
                " · GPUs {} of {} in use",
                p.gpus_allocated, p.gpus_total
            );
        }
        line(text);
        for n in &p.nodes {
            let state = if n.up {
                clean(&n.state)
            } else {
                paint(&clean(&n.state), "31")
            };
            let mut text = format!("  {:<12} {state}", clean(&n.name));
            if n.gpus_total > 0 {
                let types = if n.gpu_types.is_empty() {
                    String::new()
                } else {
                    format!(" {}", clean(&n.gpu_types.join(",")))
                };
                let _ = write!(
                    text,
                    " · GPU {}/{}{types} in use",
                    n.gpus_allocated, n.gpus_total
                );
            }
            if let (Some(a), Some(t)) = (n.cpus_allocated, n.cpus_total) {
                let _ = write!(text, " · CPU {a}/{t}");
            }
            if let Some(reason) = &n.reason {
                let _ = write!(text, " · {}", clean(reason));
            }
            line(text);
        }
    }
    if c.jobs.is_empty() {
        line("Jobs    none of yours in the queue".into());
    }
    for (i, j) in c.jobs.iter().enumerate() {
        let label = if i == 0 { "Jobs" } else { "" };
        let mut text = format!(
            "{label:<8}{} {} {}",
            clean(&j.id),
            clean(&j.name),
            j.state.to_lowercase()
        );
        if j.pending() {
            if let Some(reason) = &j.reason {
                let _ = write!(text, " ({})", clean(reason));
            }
            match (j.start_unix, l.now_unix) {
                (Some(at), Some(now)) if at > now => {
                    let _ = write!(
                        text,
                        " · starts in ~{}",
                        crate::ui::duration((at - now) as u64)
                    );
                }
                (Some(_), _) => text.push_str(" · starting"),
                _ => {}
            }
            let _ = write!(text, " · {}", clean(&j.partition));
        } else {
            if let Some(nodes) = &j.nodes {
                let _ = write!(text, " on {}", clean(nodes));
            }
            let elapsed = j.elapsed_seconds.map_or("–".into(), crate::ui::duration);
            let _ = match j.time_limit_seconds {
                Some(l) => write!(text, " · {elapsed} of {}", limit(l)),
                None => write!(text, " · {elapsed}, no time limit"),
            };
            if let Some(left) = j
                .time_left_seconds
                .filter(|_| j.time_limit_seconds.is_some())
            {
                let left = format!("{} left", crate::ui::duration(left));
                let left = if j.ending_soon {
                    paint(&format!("{left}, less than 10% of its limit"), "33")
                } else {
                    left
                };
                let _ = write!(text, " · {left}");
            }
        }
        line(text);
    }
    for e in &c.errors {
        line(format!("{}: {}", paint("error", "31"), clean(e)));
    }
    out
}

fn limit(seconds: u64) -> String {
    crate::ui::duration(seconds)
}

fn gib(mib: u64) -> String {
    format!("{:.1} GiB", mib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_slurm_writes_them() {
        for (text, want) in [
            ("0:00", Some(0)),
            ("4:55", Some(295)),
            ("1:02:03", Some(3723)),
            ("2-03:04:05", Some(2 * 86400 + 3 * 3600 + 4 * 60 + 5)),
            ("1-00:00:00", Some(86400)),
            ("2-03", Some(2 * 86400 + 3 * 3600)),
            ("5", Some(300)),
            ("UNLIMITED", None),
            ("infinite", None),
            ("INVALID", None),
            ("NOT_SET", None),
            ("", None),
            ("1:2:3:4", None),
            ("-5", None),
            ("1:-5", None),
            ("12a", None),
        ] {
            assert_eq!(duration(text), want, "{text:?}");
        }
    }

    #[test]
    fn gres_strings_count_gpus_and_name_their_types() {
        for (text, total, types) in [
            ("gpu:2", 2, vec![]),
            ("gpu:a100:4(S:0-1)", 4, vec!["a100"]),
            (
                "gpu:a100:2(IDX:0,2),gpu:v100:1(IDX:3)",
                3,
                vec!["a100", "v100"],
            ),
            ("gpu:(null):0(IDX:N/A)", 0, vec![]),
            ("gpu:tesla:4(S:0),mps:400", 4, vec!["tesla"]),
            ("(null)", 0, vec![]),
            ("", 0, vec![]),
            ("mps:100", 0, vec![]),
            ("gres/gpu:3", 3, vec![]),
            ("gpu", 1, vec![]),
            ("gpu:a100", 1, vec!["a100"]),
            ("gpu:x:lots", 0, vec!["x"]),
        ] {
            let (n, t) = gpus(text);
            assert_eq!(
                (n, t.iter().map(String::as_str).collect::<Vec<_>>()),
                (total, types),
                "{text:?}"
            );
        }
    }

    #[test]
    fn node_states_that_take_jobs() {
        for up in [
            "idle",
            "mixed",
            "allocated",
            "completing",
            "IDLE",
            "planned",
            "idle$",
        ] {
            assert!(node_up(up), "{up}");
        }
        for down in [
            "down",
            "down*",
            "idle*",
            "drained",
            "draining",
            "idle+drain",
            "mixed+drain",
            "inval",
            "fail",
            "maint",
            "unknown",
            "idle~",
            "powered_down",
            "future",
            "reserved",
            "",
        ] {
            assert!(!node_up(down), "{down}");
        }
    }

    #[test]
    fn sinfo_lines_become_nodes_and_junk_is_skipped() {
        let (p, n) =
            parse_node("gpu01|gpu*|mixed|8/24/0/32|gpu:a100:4(S:0-1)|gpu:a100:3(IDX:0-2)|none")
                .unwrap();
        assert_eq!(p, "gpu");
        assert_eq!(
            (n.name.as_str(), n.up, n.gpus_total, n.gpus_allocated),
            ("gpu01", true, 4, 3)
        );
        assert_eq!((n.cpus_allocated, n.cpus_total), (Some(8), Some(32)));
        assert_eq!(n.gpu_types, ["a100"]);
        assert_eq!(n.reason, None);
        // The reason is free text and comes last: a `|` in it shifts nothing.
        let (_, n) =
            parse_node("n2|debug|down*|0/0/4/4|gpu:2|gpu:0|Not responding | really").unwrap();
        assert!(!n.up);
        assert_eq!(n.reason.as_deref(), Some("Not responding | really"));
        for junk in [
            "",
            "Welcome to the cluster!",
            "a|b",
            "|debug|idle|0/4/0/4|gpu:2|gpu:0|none",
        ] {
            assert_eq!(parse_node(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn squeue_lines_become_jobs() {
        let j = parse_job(
            "41|RUNNING|gpu|54:00|1:00:00|6:00|node2|1796169301|None|gres:gpu:1|train | big",
        )
        .unwrap();
        assert_eq!(j.name, "train | big");
        assert_eq!(
            (j.elapsed_seconds, j.time_limit_seconds, j.time_left_seconds),
            (Some(3240), Some(3600), Some(360))
        );
        assert!(!j.ending_soon, "exactly 10% left is not less than 10%");
        let j = parse_job("42|RUNNING|gpu|55:00|1:00:00|5:00|node2|1796169301|None|N/A|t").unwrap();
        assert!(j.ending_soon);
        assert_eq!(j.gres, None);
        let j =
            parse_job("43_[0-3]|PENDING|gpu|0:00|2:00|2:00||N/A|Priority|gres:gpu:2|wrap").unwrap();
        assert!(j.pending());
        assert_eq!(
            (j.reason.as_deref(), j.start_unix, j.nodes),
            (Some("Priority"), None, None)
        );
        let j =
            parse_job("44|RUNNING|long|3-00:00:00|UNLIMITED|UNLIMITED|n1|100|None|N/A|x").unwrap();
        assert_eq!(
            (j.time_limit_seconds, j.time_left_seconds, j.ending_soon),
            (None, None, false)
        );
        for junk in [
            "",
            "JOBID|STATE",
            "a b c",
            "$(id)|RUNNING|p|0:00|1:00|1:00|n|0|None|N/A|x",
        ] {
            assert_eq!(parse_job(junk), None, "{junk:?}");
        }
    }

    const RECORDED: &str = "\
@@fenton:host login1
@@fenton:now 1796169400
@@fenton:cpus 2
@@fenton:load
0.52 0.40 0.31 1/123 4567
@@fenton:mem
MemTotal:       24684544 kB
MemAvailable:   23500000 kB
@@fenton:sinfo-partitions
debug*|up|infinite
gpu|up|1:00:00
@@fenton:rc 0
@@fenton:sinfo-nodes
node2|gpu|mixed|1/3/0/4|gpu:2|gpu:1|none
node2|debug*|mixed|1/3/0/4|gpu:2|gpu:1|none
vm|debug*|idle|0/4/0/4|gpu:2|gpu:0|none
node10|debug*|down*|0/0/4/4|gpu:2|gpu:0|Not responding
@@fenton:rc 0
@@fenton:squeue
1|RUNNING|debug|0:42|5:00|4:18|node2|1796169301|None|gres:gpu:1|wrap
6|PENDING|gpu|0:00|2:00|2:00||1796169500|Resources|gres:gpu:2|we|ird
@@fenton:rc 0
";

    #[test]
    fn a_recorded_answer_parses_and_renders() {
        let mut c = parse(RECORDED);
        c.profile = "cluster".into();
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.login.host, "login1");
        assert_eq!(c.login.memory_total_mib, Some(24106));
        let debug = &c.partitions[0];
        assert!(debug.default);
        let names: Vec<&str> = debug.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["node2", "node10", "vm"]);
        assert_eq!(
            (
                debug.nodes_up,
                debug.nodes_down,
                debug.gpus_total,
                debug.gpus_allocated
            ),
            (2, 1, 6, 1)
        );
        assert_eq!(c.partitions[1].time_limit_seconds, Some(3600));
        assert_eq!(c.jobs.len(), 2);
        let text = render(&c, Style::default());
        assert!(
            text.contains(
                "debug (default) · no time limit · nodes 2 up, 1 down · GPUs 1 of 6 in use"
            ),
            "{text}"
        );
        assert!(
            text.contains("  node10       down* · GPU 0/2 in use · CPU 0/4 · Not responding"),
            "{text}"
        );
        assert!(
            text.contains("Jobs    1 wrap running on node2 · 42s of 5m 0s · 4m 18s left"),
            "{text}"
        );
        assert!(
            text.contains("6 we|ird pending (Resources) · starts in ~1m 40s · gpu"),
            "{text}"
        );
        for line in text.lines() {
            assert!(line.chars().count() <= WIDTH, "{line}");
        }
    }

    #[test]
    fn failures_are_said_and_the_rest_still_shows() {
        let c = parse("@@fenton:host l\n@@fenton:sinfo-nodes\n@@fenton:err sinfo: not found\n@@fenton:rc 127\n@@fenton:squeue\n@@fenton:rc 1\n");
        assert_eq!(
            c.errors,
            [
                "sinfo-nodes: sinfo: not found",
                "squeue: exit 1 without a message"
            ]
        );
        let text = render(&c, Style::default());
        assert!(
            text.contains("error: sinfo-nodes: sinfo: not found"),
            "{text}"
        );
        // Escape sequences from the box are shown, not obeyed.
        let c = parse("@@fenton:sinfo-nodes\nn\x1b]52;c;x\x07|debug|idle|0/4/0/4|gpu:1|gpu:0|none\n@@fenton:rc 0\n");
        let text = render(&c, Style::default());
        assert!(
            !text.contains('\x1b') && text.contains("n^[]52;c;x^G"),
            "{text}"
        );
    }
}
