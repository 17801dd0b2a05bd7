//! The status script's output (src/remote/scripts/status.sh) into [`Status`]: sections that
//! start with `@@fenton:NAME [ARG]`, frames that end with `@@fenton:end`. Rates and CPU
//! utilisation come from the counters of two samples.

use std::collections::HashMap;

use anyhow::{bail, Result};

use super::{
    Cpu, Disk, Gpu, GpuProcess, Gpus, Interface, Job, Jobs, Jupyter, Link, Load, Memory, Mount,
    Recorder, Status, TmuxSession, SCHEMA,
};

const MARK: &str = "@@fenton:";

/// The counters that make rates: the box's clock, CPU ticks (total first, then per core),
/// network bytes per interface.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub clock: f64,
    pub cpus: Vec<Ticks>,
    pub net: Vec<(String, u64, u64)>,
}

/// CPU ticks: busy and all.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ticks {
    pub busy: u64,
    pub total: u64,
}

/// Reads the script's output line by line and hands out a [`Status`] per frame.
#[derive(Default)]
pub struct Reader {
    sections: Vec<(String, String, Vec<String>)>,
    last: Option<Sample>,
}

impl Reader {
    /// Takes one line; gives a frame when the line ended one.
    pub fn line(&mut self, line: &str) -> Option<Result<Status>> {
        let line = line.trim_end_matches('\r');
        if let Some(head) = line.strip_prefix(MARK) {
            let (name, arg) = head.split_once(' ').unwrap_or((head, ""));
            if name == "end" {
                return Some(self.frame());
            }
            self.sections
                .push((name.to_string(), arg.to_string(), Vec::new()));
            return None;
        }
        if let Some((name, _, lines)) = self.sections.last_mut() {
            lines.push(line.to_string());
            if name == "notlinux" {
                let os = line.trim();
                let os = if os.is_empty() { "not Linux" } else { os };
                return Some(Err(anyhow::anyhow!(
                    "status needs a Linux box (one with /proc); this one says it is {os}"
                )));
            }
        }
        None
    }

    /// Whether the box said it is not Linux and said nothing more.
    pub fn not_linux(&self) -> bool {
        self.sections.iter().any(|(n, _, _)| n == "notlinux")
    }

    fn frame(&mut self) -> Result<Status> {
        let sections = std::mem::take(&mut self.sections);
        let mut samples = Vec::new();
        let mut by_name: HashMap<&str, (&str, &[String])> = HashMap::new();
        for (name, arg, lines) in &sections {
            if name == "sample" {
                samples.push(sample(lines)?);
            } else {
                by_name.insert(name.as_str(), (arg.as_str(), lines.as_slice()));
            }
        }
        let Some(now) = samples.pop() else {
            bail!("the box's status had no sample of its counters")
        };
        let before = samples.pop().or_else(|| self.last.take());
        let status = build(&by_name, before.as_ref(), &now);
        self.last = Some(now);
        Ok(status)
    }
}

/// Every frame in a whole output.
#[cfg(test)]
pub fn frames(text: &str) -> Result<Vec<Status>> {
    let mut reader = Reader::default();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(frame) = reader.line(line) {
            out.push(frame?);
        }
    }
    Ok(out)
}

fn sample(lines: &[String]) -> Result<Sample> {
    let mut out = Sample::default();
    let mut lines = lines.iter();
    let Some(clock) = lines.next().and_then(|l| l.split_whitespace().next()) else {
        bail!("the box's status sample had no clock")
    };
    out.clock = clock.parse().unwrap_or(0.0);
    for line in lines {
        if line.starts_with("cpu") {
            let numbers: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .map(|n| n.parse().unwrap_or(0))
                .collect();
            // user nice system idle iowait irq softirq steal (guest is counted in user).
            let total: u64 = numbers.iter().take(8).sum();
            let idle = numbers.get(3).copied().unwrap_or(0) + numbers.get(4).copied().unwrap_or(0);
            out.cpus.push(Ticks {
                busy: total.saturating_sub(idle),
                total,
            });
        } else if let Some((name, rest)) = line.split_once(':') {
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|n| n.parse().unwrap_or(0))
                .collect();
            if f.len() >= 9 {
                out.net.push((name.trim().to_string(), f[0], f[8]));
            }
        }
    }
    Ok(out)
}

fn percent(before: Ticks, now: Ticks) -> Option<f64> {
    let total = now.total.checked_sub(before.total)?;
    let busy = now.busy.checked_sub(before.busy)?;
    (total > 0).then(|| round1(100.0 * busy as f64 / total as f64))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

type Sections<'a> = HashMap<&'a str, (&'a str, &'a [String])>;

fn lines<'a>(s: &Sections<'a>, name: &str) -> &'a [String] {
    s.get(name).map_or(&[], |(_, l)| l)
}

fn build(s: &Sections, before: Option<&Sample>, now: &Sample) -> Status {
    let host = lines(s, "host");
    let load: Vec<f64> = lines(s, "loadavg")
        .first()
        .map(|l| {
            l.split_whitespace()
                .take(3)
                .map(|n| n.parse().unwrap_or(0.0))
                .collect()
        })
        .unwrap_or_default();
    let cpuinfo = lines(s, "cpuinfo");
    let elapsed = before.map(|b| now.clock - b.clock).filter(|e| *e > 0.0);
    let pct = |i: usize| {
        let b = before?.cpus.get(i)?;
        percent(*b, *now.cpus.get(i)?)
    };
    let cpu = Cpu {
        count: cpuinfo
            .first()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(now.cpus.len().saturating_sub(1) as u32),
        model: cpuinfo
            .get(1)
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_string()),
        utilization_percent: pct(0),
        per_core_percent: (1..now.cpus.len()).map(pct).collect(),
        sample_seconds: elapsed.map(|e| (e * 100.0).round() / 100.0),
    };
    let network = now
        .net
        .iter()
        .filter(|(name, _, _)| name != "lo")
        .map(|(name, rx, tx)| {
            let old = before.and_then(|b| b.net.iter().find(|(n, _, _)| n == name));
            let rate =
                |new: u64, old: Option<u64>| Some(round1(new.checked_sub(old?)? as f64 / elapsed?));
            Interface {
                name: name.clone(),
                rx_bytes: *rx,
                tx_bytes: *tx,
                rx_bytes_per_second: rate(*rx, old.map(|o| o.1)),
                tx_bytes_per_second: rate(*tx, old.map(|o| o.2)),
            }
        })
        .collect();
    Status {
        schema: SCHEMA,
        profile: String::new(),
        host: host.first().cloned().unwrap_or_default(),
        kernel: host.get(1).cloned().unwrap_or_default(),
        uptime_seconds: now.clock,
        load: Load {
            avg_1m: load.first().copied().unwrap_or(0.0),
            avg_5m: load.get(1).copied().unwrap_or(0.0),
            avg_15m: load.get(2).copied().unwrap_or(0.0),
        },
        cpu,
        memory: memory(lines(s, "meminfo")),
        disks: lines(s, "df").iter().filter_map(|l| disk(l)).collect(),
        network,
        gpu: gpus(s),
        tmux: lines(s, "tmux").iter().filter_map(|l| tmux(l)).collect(),
        jupyter: lines(s, "jupyter")
            .iter()
            .filter_map(|l| jupyter(l))
            .collect(),
        jobs: jobs(s.get("jobs").copied().unwrap_or_default()),
        monitor: s.get("monitor").and_then(|m| recorder(*m)),
        mount: Mount::default(),
        link: Link::default(),
    }
}

fn recorder((now, lines): (&str, &[String])) -> Option<Recorder> {
    let line = lines.first()?;
    let w: Vec<&str> = line.split_whitespace().collect();
    let since = w
        .get(1)
        .and_then(|t| t.parse::<i64>().ok())
        .filter(|&t| t > 0);
    let now = now.trim().parse::<i64>().ok();
    Some(Recorder {
        running: *w.first()? == "running",
        since,
        recording_seconds: since.zip(now).map(|(s, n)| (n - s).max(0) as u64),
        kib: w.get(2).and_then(|k| k.parse().ok()).unwrap_or(0),
    })
}

fn memory(lines: &[String]) -> Memory {
    let kib: HashMap<&str, u64> = lines
        .iter()
        .filter_map(|l| {
            let (key, rest) = l.split_once(':')?;
            Some((key, rest.split_whitespace().next()?.parse().ok()?))
        })
        .collect();
    let get = |k: &str| kib.get(k).copied().unwrap_or(0);
    let total = get("MemTotal");
    let available = kib
        .get("MemAvailable")
        .copied()
        .unwrap_or_else(|| get("MemFree") + get("Buffers") + get("Cached"));
    Memory {
        total_mib: total / 1024,
        used_mib: total.saturating_sub(available) / 1024,
        available_mib: available / 1024,
        swap_total_mib: get("SwapTotal") / 1024,
        swap_used_mib: get("SwapTotal").saturating_sub(get("SwapFree")) / 1024,
    }
}

/// `ROLE<TAB>PATH<TAB>` and df -P's line: `FS 1024-blocks Used Available Capacity% Mount`
/// (the file system and the mount point may hold spaces).
fn disk(line: &str) -> Option<Disk> {
    let mut parts = line.splitn(3, '\t');
    let role = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let df: Vec<&str> = parts.next().unwrap_or("").split_whitespace().collect();
    let mut out = Disk {
        role,
        path,
        filesystem: None,
        mount_point: None,
        total_bytes: None,
        used_bytes: None,
        available_bytes: None,
    };
    let at = (3..df.len())
        .find(|&i| df[i].ends_with('%') && df[i - 3..i].iter().all(|n| n.parse::<u64>().is_ok()));
    if let Some(i) = at {
        let n = |j: usize| df[j].parse::<u64>().ok().map(|k| k * 1024);
        out.filesystem = Some(df[..i - 3].join(" "));
        out.total_bytes = n(i - 3);
        out.used_bytes = n(i - 2);
        out.available_bytes = n(i - 1);
        out.mount_point = Some(df[i + 1..].join(" "));
    }
    Some(out)
}

/// One CSV table from nvidia-smi (`--format=csv,nounits`): rows as maps from the column's name
/// (units cut off the header) to the cell. nvidia-smi does not quote: a name holding ", " spills
/// into the next cells, which go back to the name column.
pub fn csv(lines: &[String]) -> Vec<HashMap<String, String>> {
    let mut lines = lines.iter().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return vec![];
    };
    let names: Vec<String> = header
        .split(',')
        .map(|h| {
            let h = h.trim();
            h.split_once(" [").map_or(h, |(n, _)| n).to_string()
        })
        .collect();
    let name_col = names
        .iter()
        .position(|n| n == "name" || n == "process_name" || n == "gpu_name");
    lines
        .map(|row| {
            let mut cells: Vec<String> = row.split(", ").map(|c| c.trim().to_string()).collect();
            if let (Some(col), true) = (name_col, cells.len() > names.len()) {
                let extra = cells.len() - names.len();
                let joined = cells[col..=col + extra].join(", ");
                cells.splice(col..=col + extra, [joined]);
            }
            names.iter().cloned().zip(cells).collect()
        })
        .collect()
}

/// A number from nvidia-smi; `[N/A]`, `[Not Supported]` and the like are no number (never 0).
pub fn number(cell: Option<&String>) -> Option<f64> {
    let cell = cell?.trim();
    if cell.starts_with('[') || cell.eq_ignore_ascii_case("N/A") {
        return None;
    }
    cell.split_whitespace().next()?.parse().ok()
}

fn gpus(s: &Sections) -> Gpus {
    let Some((arg, table)) = s.get("gpu") else {
        return Gpus {
            state: "none".into(),
            message: None,
            devices: vec![],
        };
    };
    if *arg == "none" {
        return Gpus {
            state: "none".into(),
            message: None,
            devices: vec![],
        };
    }
    if *arg != "0" {
        let message = table
            .iter()
            .map(|l| l.trim())
            .find(|l| !l.is_empty())
            .unwrap_or("nvidia-smi failed without saying why");
        return Gpus {
            state: "failed".into(),
            message: Some(format!("nvidia-smi failed (exit {arg}): {message}")),
            devices: vec![],
        };
    }
    let mut devices: Vec<Gpu> = csv(table)
        .iter()
        .enumerate()
        .map(|(i, row)| Gpu {
            index: number(row.get("index")).map_or(i as u32, |n| n as u32),
            name: row.get("name").cloned().unwrap_or_default(),
            bus_id: row.get("pci.bus_id").cloned(),
            utilization_percent: number(row.get("utilization.gpu")),
            memory_utilization_percent: number(row.get("utilization.memory")),
            memory_used_mib: number(row.get("memory.used")),
            memory_total_mib: number(row.get("memory.total")),
            temperature_c: number(row.get("temperature.gpu")),
            power_draw_w: number(row.get("power.draw")),
            power_limit_w: number(row.get("power.limit")),
            fan_percent: number(row.get("fan.speed")),
            processes: vec![],
        })
        .collect();
    devices.sort_by_key(|g| g.index);
    let users: HashMap<u32, String> = lines(s, "gpu-users")
        .iter()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.parse().ok()?, w.next()?.to_string()))
        })
        .collect();
    if let Some(("0", apps)) = s.get("gpu-apps") {
        for row in csv(apps) {
            let Some(pid) = number(row.get("pid")) else {
                continue;
            };
            let pid = pid as u32;
            let bus = row.get("gpu_bus_id");
            let gpu = devices
                .iter_mut()
                .find(|g| g.bus_id.as_ref().is_some_and(|b| Some(b) == bus));
            if let Some(gpu) = gpu {
                gpu.processes.push(GpuProcess {
                    pid,
                    user: users.get(&pid).cloned(),
                    name: row.get("process_name").cloned().unwrap_or_default(),
                    memory_used_mib: number(row.get("used_gpu_memory")),
                });
            }
        }
    }
    Gpus {
        state: "ok".into(),
        message: None,
        devices,
    }
}

/// `ATTACHED|WINDOWS|CREATED|NAME` (the name may hold anything, `|` too).
fn tmux(line: &str) -> Option<TmuxSession> {
    let mut f = line.splitn(4, '|');
    let attached = f.next()?;
    let windows = f.next()?;
    let created = f.next()?;
    Some(TmuxSession {
        attached: attached.trim().parse::<u32>().is_ok_and(|n| n > 0),
        windows: windows.trim().parse().ok(),
        created_unix: created.trim().parse().ok(),
        name: f.next()?.to_string(),
    })
}

/// `PID<TAB>PORT<TAB>USER<TAB>COMMAND`: a Jupyter server that listens.
fn jupyter(line: &str) -> Option<Jupyter> {
    let mut f = line.splitn(4, '\t');
    Some(Jupyter {
        pid: f.next()?.trim().parse().ok()?,
        port: f.next()?.trim().parse().ok(),
        user: f.next()?.to_string(),
        command: f.next().unwrap_or_default().trim_end().to_string(),
    })
}

/// `ID<TAB>STARTED<TAB>ENDED<TAB>EXIT<TAB>PID<TAB>ALIVE<TAB>NAME`, one per job that has not
/// finished, and `finished N` for the others, after the box's clock (the section's argument).
fn jobs((now, lines): (&str, &[String])) -> Jobs {
    let now: Option<u64> = now.trim().parse().ok();
    let mut out = Jobs::default();
    for line in lines {
        if let Some(n) = line.strip_prefix("finished ") {
            out.finished += n.trim().parse::<u32>().unwrap_or(0);
            continue;
        }
        let f: Vec<&str> = line.splitn(7, '\t').collect();
        if f.len() < 7 {
            continue;
        }
        if f[5] == "1" {
            out.running += 1;
            out.list.push(Job {
                id: f[0].to_string(),
                name: if f[6].is_empty() { f[0] } else { f[6] }.to_string(),
                pid: f[4].parse().ok(),
                started_unix: f[1].parse().ok(),
                running_seconds: now
                    .zip(f[1].parse::<u64>().ok())
                    .map(|(now, started)| now.saturating_sub(started)),
            });
        } else {
            out.finished += 1;
        }
    }
    out.list.sort_by_key(|j| j.started_unix);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: &str = include_str!("testdata/frame.txt");

    fn one() -> Status {
        let mut frames = frames(FRAME).unwrap();
        assert_eq!(frames.len(), 1);
        frames.remove(0)
    }

    #[test]
    fn cpu_and_network_come_from_two_samples() {
        let s = one();
        assert_eq!(s.cpu.count, 2);
        assert_eq!(
            s.cpu.model.as_deref(),
            Some("AMD EPYC 7763 64-Core Processor")
        );
        // 100 busy of 200 ticks.
        assert_eq!(s.cpu.utilization_percent, Some(50.0));
        assert_eq!(s.cpu.per_core_percent, [Some(60.0), Some(40.0)]);
        assert_eq!(s.cpu.sample_seconds, Some(0.5));
        assert_eq!(s.network.len(), 1, "lo is left out");
        assert_eq!(s.network[0].name, "eth0");
        assert_eq!(s.network[0].rx_bytes_per_second, Some(10000.0));
        assert_eq!(s.network[0].tx_bytes_per_second, Some(1000.0));
        assert_eq!(s.load.avg_5m, 0.41);
        assert_eq!(s.host, "gpu-box");
        assert_eq!(s.uptime_seconds, 100.5);
    }

    #[test]
    fn jobs_run_by_the_boxs_clock() {
        let s = one();
        assert_eq!((s.jobs.running, s.jobs.finished), (1, 1));
        assert_eq!(s.jobs.list[0].name, "train big");
        assert_eq!(s.jobs.list[0].running_seconds, Some(3600));
    }

    #[test]
    fn memory_and_disks() {
        let s = one();
        assert_eq!(s.memory.total_mib, 24684084 / 1024);
        assert_eq!(s.memory.available_mib, 20000);
        assert_eq!(s.memory.used_mib, (24684084 - 20480000) / 1024);
        assert_eq!(s.memory.swap_used_mib, 1023);
        assert_eq!(s.disks.len(), 3);
        assert_eq!(s.disks[0].total_bytes, Some(264212084 * 1024));
        assert_eq!(s.disks[0].mount_point.as_deref(), Some("/"));
        assert_eq!(s.disks[1].filesystem.as_deref(), Some("/dev/my disk"));
        assert_eq!(s.disks[1].mount_point.as_deref(), Some("/home/my mount"));
        assert_eq!(s.disks[1].available_bytes, Some(600 * 1024));
        assert_eq!(s.disks[2].total_bytes, None);
    }

    #[test]
    fn gpus_by_column_name_in_index_order() {
        let s = one();
        assert_eq!(s.gpu.state, "ok");
        let g = &s.gpu.devices;
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].index, 0);
        assert_eq!(g[0].name, "NVIDIA H100 80GB HBM3");
        assert_eq!(g[0].power_draw_w, Some(631.95));
        assert_eq!(g[1].name, "Odd, Name GPU");
        assert_eq!(g[1].utilization_percent, None, "[N/A] is not 0");
        assert_eq!(g[1].fan_percent, None, "[Not Supported] is not 0");
        assert_eq!(g[1].memory_used_mib, Some(819.0));
        assert_eq!(g[1].processes[0].pid, 5268);
        assert_eq!(g[1].processes[0].user.as_deref(), Some("tom"));
        assert_eq!(g[0].processes[0].name, "python train.py --name a, b");
        assert_eq!(g[0].processes[0].memory_used_mib, None);
        assert_eq!(g[0].processes[0].user, None);
    }

    #[test]
    fn sessions_jupyter_and_jobs() {
        let s = one();
        assert_eq!(s.tmux.len(), 2);
        assert!(s.tmux[0].attached);
        assert_eq!(s.tmux[0].windows, Some(3));
        assert_eq!(s.tmux[1].name, "my 'odd\" session|x");
        assert_eq!(s.jupyter[0].port, Some(8890));
        assert_eq!(s.jupyter[1].port, Some(9999));
        assert_eq!(s.jobs.running, 1);
        assert_eq!(s.jobs.finished, 1);
        assert_eq!(s.jobs.list[0].name, "train big");
        assert_eq!(s.jobs.list[0].pid, Some(4444));
    }

    #[test]
    fn gpu_failures_and_absence() {
        let failed = FRAME.replace(
            "@@fenton:gpu 0\n",
            "@@fenton:gpu 9\nNVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n@@fenton:ignored\n",
        );
        let s = &frames(&failed).unwrap()[0];
        assert_eq!(s.gpu.state, "failed");
        assert!(s.gpu.message.as_ref().unwrap().contains("exit 9"));
        assert!(s.gpu.devices.is_empty());
        let none = FRAME.replace("@@fenton:gpu 0\n", "@@fenton:gpu none\n@@fenton:ignored\n");
        let s = &frames(&none).unwrap()[0];
        assert_eq!(s.gpu.state, "none");
        // The rest is still there.
        assert_eq!(s.memory.available_mib, 20000);
    }

    #[test]
    fn watch_frames_take_rates_from_the_frame_before() {
        let second = "@@fenton:sample\n101.50 0\ncpu  250 0 150 1000 0 0 0 0 0 0\n  eth0: 7000 0 0 0 0 0 0 0 3500 0 0 0 0 0 0 0\n@@fenton:end\n";
        let all = frames(&format!("{FRAME}{second}")).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].cpu.utilization_percent, Some(50.0));
        assert_eq!(all[1].network[0].rx_bytes_per_second, Some(1000.0));
        assert_eq!(all[1].cpu.sample_seconds, Some(1.0));
    }

    #[test]
    fn a_box_without_proc_says_so() {
        let err = frames("@@fenton:notlinux\nDarwin\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "status needs a Linux box (one with /proc); this one says it is Darwin"
        );
    }
}
