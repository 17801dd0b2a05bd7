//! What the box-side recorder (`monitor.sh`, `recorder.sh`) answers, parsed, and its history
//! drawn as one row of block characters per series. The box averages the samples into as
//! many buckets as the chart has columns before sending, so the answer stays small however
//! long the window is.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::ui;

/// `7d`, `24h`, `30m`, `45s` or plain seconds, as seconds.
pub fn parse_duration(text: &str) -> Result<u64> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => t.split_at(at),
        None => (t, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 && scale > 0 && n <= 366 * 86400 / scale => Ok(n * scale),
        _ => bail!("{text:?} is not a duration: give a number and a unit, e.g. 30m, 6h, 7d"),
    }
}

/// The recorder as `monitor.sh` reports it.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Recorder {
    /// running, stopped, died (its process gone without `monitor stop`), rebooted
    pub state: String,
    pub pid: Option<u32>,
    /// Unix time it started recording
    pub since: Option<i64>,
    pub every_s: Option<u64>,
    pub retention_s: Option<u64>,
    pub files: u64,
    pub bytes: u64,
    /// Unix time of the oldest sample kept
    pub oldest: Option<i64>,
    /// the box's clock when it answered
    pub now: Option<i64>,
}

impl Recorder {
    pub fn running(&self) -> bool {
        self.state == "running"
    }

    /// Reads the `key value` lines it knows; the others are someone else's.
    fn line(&mut self, key: &str, value: &str) {
        let num = |v: &str| v.trim().parse::<i64>().ok();
        match key {
            "state" => self.state = value.trim().to_string(),
            "pid" => self.pid = value.trim().parse().ok(),
            "since" => self.since = num(value),
            "settings" => {
                let mut words = value.split_whitespace().map(|w| w.parse::<u64>().ok());
                self.every_s = words.next().flatten();
                self.retention_s = words.next().flatten();
            }
            "files" => self.files = num(value).unwrap_or(0) as u64,
            "bytes" => self.bytes = num(value).unwrap_or(0) as u64,
            "oldest" => self.oldest = num(value),
            "now" => self.now = num(value),
            _ => {}
        }
    }

    /// One line: `recording since 3h 5m ago, every 10 s, keeping 7d (1.2 MB in 4 files)`.
    pub fn summary(&self) -> String {
        let ago = |t: Option<i64>| match (t, self.now) {
            (Some(t), Some(now)) => format!("{} ago", ui::duration((now - t).max(0) as u64)),
            _ => "a while".into(),
        };
        let size = format!("{} in {} files", megabytes(self.bytes), self.files);
        match self.state.as_str() {
            "running" => format!(
                "recording since {}, every {} s, keeping {} ({size})",
                ago(self.since),
                self.every_s.unwrap_or(0),
                ui::duration(self.retention_s.unwrap_or(0)),
            ),
            "rebooted" => format!(
                "not recording: the box rebooted since it started ({size} kept); `fenton monitor start` starts it again"
            ),
            "died" => format!(
                "not recording: the recorder was ended without `fenton monitor stop` ({size} kept); `fenton monitor start` starts it again"
            ),
            _ => format!("not recording ({size} kept); `fenton monitor start` starts it"),
        }
    }
}

pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Parses `monitor.sh`'s answer to start, stop and status.
pub fn recorder(text: &str) -> Recorder {
    let mut r = Recorder::default();
    for line in text.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        r.line(key, value);
    }
    r
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Job {
    pub id: String,
    pub name: String,
    pub started: i64,
    pub ended: Option<i64>,
}

/// A compute process the recorder saw on a GPU in the window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GpuProcess {
    pub gpu: u32,
    pub pid: u32,
    /// Null where the box could not tell (the process had gone, or is another user's)
    pub user: Option<String>,
    /// The most GPU memory it held in a sample (MiB)
    pub peak_mib: Option<f64>,
    /// The fenton job it belongs to (by its process group or session)
    pub job: Option<String>,
    /// Unix times of the first and last samples it was in
    pub first: i64,
    pub last: i64,
}

/// The box's history, bucketed.
#[derive(Debug, Serialize)]
pub struct History {
    /// the box's clock when it answered
    pub now: i64,
    /// each bucket is (from, from + step]
    pub from: i64,
    pub step: i64,
    /// the end of each bucket (Unix seconds)
    pub timestamps: Vec<i64>,
    /// per series, one value per bucket (the mean of its samples), null where it had none
    pub series: BTreeMap<String, Vec<Option<f64>>>,
    pub jobs: Vec<Job>,
    /// the GPUs' compute processes, the latest seen first
    pub processes: Vec<GpuProcess>,
    pub recorder: Recorder,
}

/// Parses `monitor.sh history`.
pub fn history(text: &str) -> Result<History> {
    let mut head = None;
    let mut recorder = Recorder::default();
    let mut series: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    let mut jobs = Vec::new();
    let mut processes = Vec::new();
    for line in text.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "history" => {
                let n: Vec<i64> = value
                    .split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect();
                if let [now, from, step, count] = n[..] {
                    head = Some((now, from, step.max(1), count.max(0) as usize));
                }
            }
            "series" => {
                let mut words = value.split(' ');
                let Some(name) = words.next() else { continue };
                // No infinity or NaN from the box: JSON has none, a chart no place for one.
                let values: Vec<Option<f64>> = words
                    .map(|w| w.parse::<f64>().ok().filter(|v| v.is_finite()))
                    .collect();
                series.insert(name.to_string(), values);
            }
            "job" => {
                let w: Vec<&str> = value.splitn(4, ' ').collect();
                if w.len() < 3 {
                    continue;
                }
                let Ok(started) = w[1].parse() else { continue };
                jobs.push(Job {
                    id: w[0].to_string(),
                    started,
                    ended: w[2].parse().ok(),
                    name: w.get(3).unwrap_or(&"").to_string(),
                });
            }
            "proc" => {
                let w: Vec<&str> = value.split(' ').collect();
                let [gpu, pid, first, last, peak, user, job] = w[..] else {
                    continue;
                };
                let known = |v: &str| (v != "-" && !v.is_empty()).then(|| v.to_string());
                let (Ok(gpu), Ok(pid), Ok(first), Ok(last)) =
                    (gpu.parse(), pid.parse(), first.parse(), last.parse())
                else {
                    continue;
                };
                processes.push(GpuProcess {
                    gpu,
                    pid,
                    user: known(user),
                    peak_mib: peak.parse().ok(),
                    job: known(job),
                    first,
                    last,
                });
            }
            _ => recorder.line(key, value),
        }
    }
    let Some((now, from, step, count)) = head else {
        bail!("the box's monitor script answered nothing fenton can read");
    };
    for values in series.values_mut() {
        values.resize(count, None);
    }
    // The box lists the jobs against a time no later than its clock: those that ended before
    // the window go here.
    jobs.retain(|j| !matches!(j.ended, Some(e) if e < from));
    jobs.sort_by_key(|j| j.started);
    processes.sort_by_key(|p: &GpuProcess| (std::cmp::Reverse(p.last), p.gpu, p.pid));
    Ok(History {
        now,
        from,
        step,
        timestamps: (1..=count as i64).map(|i| from + i * step).collect(),
        series,
        jobs,
        processes,
        recorder,
    })
}

/// The most GPU processes the chart and the page list (the latest seen); `--json` has all.
const PROCESSES: usize = 12;

/// One GPU process in words: `gpu0 pid 4242 tom, 2.5 GiB, job 2026…-01 (train): 3m ago–now`.
fn process_line(h: &History, p: &GpuProcess) -> String {
    let ago = |t: i64| match h.now - t {
        d if d <= h.step => "now".to_string(),
        d => format!("{} ago", ui::duration(d.max(0) as u64)),
    };
    let mut line = format!("gpu{} pid {}", p.gpu, p.pid);
    if let Some(user) = &p.user {
        line.push_str(&format!(" {user}"));
    }
    if let Some(mib) = p.peak_mib {
        line.push_str(&format!(", up to {mib:.0} MiB"));
    }
    if let Some(job) = &p.job {
        match h.jobs.iter().find(|j| &j.id == job) {
            Some(j) => line.push_str(&format!(", fenton job {job} ({})", j.name)),
            None => line.push_str(&format!(", fenton job {job}")),
        }
    }
    let (first, last) = (ago(p.first), ago(p.last));
    if first == last {
        line.push_str(&format!(": {last}"));
    } else {
        line.push_str(&format!(": {first} to {last}"));
    }
    line
}

/// Width of the label column and of the value column after the graph.
const LABEL: usize = 14;
const VALUE: usize = 9;
const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The chart's columns for a terminal `width` wide.
pub fn columns(width: usize) -> usize {
    width.saturating_sub(LABEL + VALUE + 2).max(10)
}

/// One row to draw: a label, values, the top of its scale and how the last value reads.
struct Row {
    label: String,
    values: Vec<Option<f64>>,
    top: f64,
    unit: &'static str,
}

fn rows(h: &History) -> Vec<Row> {
    let get = |k: &str| h.series.get(k).cloned();
    let max = |v: &[Option<f64>]| v.iter().flatten().fold(0.0f64, |a, &b| a.max(b));
    let mut rows = Vec::new();
    let mut gpus: Vec<u32> = h
        .series
        .keys()
        .filter_map(|k| k.strip_prefix("gpu")?.split_once('.')?.0.parse().ok())
        .collect();
    gpus.sort();
    gpus.dedup();
    for g in gpus {
        let key = |f: &str| format!("gpu{g}.{f}");
        if let Some(v) = get(&key("util")) {
            rows.push(Row {
                label: format!("gpu{g} util"),
                values: v,
                top: 100.0,
                unit: "%",
            });
        }
        if let Some(v) = get(&key("mem")) {
            let total = get(&key("memtotal")).map_or(0.0, |t| max(&t));
            let top = if total > 0.0 { total } else { max(&v) };
            let pct = v
                .iter()
                .map(|x| x.map(|x| 100.0 * x / top.max(1.0)))
                .collect();
            rows.push(Row {
                label: format!("gpu{g} mem"),
                values: pct,
                top: 100.0,
                unit: "%",
            });
        }
        if let Some(v) = get(&key("temp")) {
            let top = max(&v).max(100.0);
            rows.push(Row {
                label: format!("gpu{g} temp"),
                values: v,
                top,
                unit: "°C",
            });
        }
        if let Some(v) = get(&key("power")) {
            let top = max(&v);
            rows.push(Row {
                label: format!("gpu{g} power"),
                values: v,
                top,
                unit: "W",
            });
        }
    }
    for (key, label) in [("cpu", "cpu"), ("mem", "memory"), ("swap", "swap")] {
        if let Some(v) = get(key) {
            rows.push(Row {
                label: label.into(),
                values: v,
                top: 100.0,
                unit: "%",
            });
        }
    }
    if let Some(v) = get("load") {
        let top = max(&v).max(1.0);
        rows.push(Row {
            label: "load".into(),
            values: v,
            top,
            unit: "",
        });
    }
    for (key, values) in &h.series {
        if let Some(disk) = key.strip_prefix("disk.") {
            rows.push(Row {
                label: format!("disk {disk}"),
                values: values.clone(),
                top: 100.0,
                unit: "%",
            });
        }
    }
    for (key, label) in [("rx", "net in"), ("tx", "net out")] {
        if let Some(v) = get(key) {
            let top = max(&v);
            rows.push(Row {
                label: label.into(),
                values: v,
                top,
                unit: "B/s",
            });
        }
    }
    rows
}

fn bar(value: Option<f64>, top: f64) -> char {
    match value {
        None => ' ',
        Some(_) if top <= 0.0 => LEVELS[0],
        Some(v) => {
            let level = (v / top * (LEVELS.len() - 1) as f64).round();
            LEVELS[level.clamp(0.0, (LEVELS.len() - 1) as f64) as usize]
        }
    }
}

fn reading(value: f64, unit: &str) -> String {
    match unit {
        "B/s" => {
            let (v, u) = match value {
                v if v >= 1e9 => (v / 1e9, "GB/s"),
                v if v >= 1e6 => (v / 1e6, "MB/s"),
                v if v >= 1e3 => (v / 1e3, "kB/s"),
                v => (v, "B/s"),
            };
            format!("{v:.1}{u}")
        }
        "" => format!("{value:.2}"),
        u => format!("{value:.0}{u}"),
    }
}

/// Fits `text` to `width` display columns (the chart uses only single-width characters).
fn fit(text: &str, width: usize) -> String {
    let mut s: String = text.chars().take(width).collect();
    while s.chars().count() < width {
        s.push(' ');
    }
    s
}

/// The chart, `width` columns wide at most: a row per series, a row marking fenton jobs
/// (`[` start, `]` end, `=` running), a time axis, and the jobs named under it.
pub fn render(h: &History, width: usize, host: &str) -> String {
    let cols = h.timestamps.len();
    let mut out = String::new();
    let span = (h.now - h.from).max(0) as u64;
    let title = format!(
        "{}: the last {}, {} a column",
        ui::clean(host),
        ui::duration(span),
        ui::duration(h.step as u64)
    );
    out.push_str(fit(&title, width).trim_end());
    out.push('\n');
    let rows = rows(h);
    if rows.is_empty() {
        out.push_str("no samples in this window\n");
    }
    for row in &rows {
        let graph: String = row.values.iter().map(|v| bar(*v, row.top)).collect();
        let last = row
            .values
            .iter()
            .rev()
            .flatten()
            .next()
            .map_or("-".to_string(), |v| reading(*v, row.unit));
        out.push_str(&format!(
            "{} {graph} {}\n",
            fit(&row.label, LABEL),
            fit(&last, VALUE).trim_end()
        ));
    }
    if !h.jobs.is_empty() {
        let mut marks = vec![' '; cols];
        let at = |t: i64| -> Option<usize> {
            (t > h.from && t <= h.now).then(|| (((t - h.from - 1) / h.step) as usize).min(cols - 1))
        };
        for job in &h.jobs {
            let first = at(job.started).unwrap_or(0);
            let last = job.ended.map_or(Some(cols.saturating_sub(1)), at);
            if let Some(last) = last {
                for m in marks.iter_mut().take(last + 1).skip(first) {
                    if *m == ' ' {
                        *m = '=';
                    }
                }
            }
            if let Some(i) = at(job.started) {
                marks[i] = '[';
            }
            if let Some(i) = job.ended.and_then(at) {
                marks[i] = ']';
            }
        }
        let marks: String = marks.into_iter().collect();
        out.push_str(&format!(
            "{} {}\n",
            fit("fenton jobs", LABEL),
            marks.trim_end()
        ));
    }
    out.push_str(&format!("{} {}\n", " ".repeat(LABEL), axis(h, cols)));
    for job in &h.jobs {
        let ago = |t: i64| format!("{} ago", ui::duration((h.now - t).max(0) as u64));
        let end = job
            .ended
            .map_or("still running".to_string(), |e| format!("ended {}", ago(e)));
        let line = format!(
            "  {} {}: started {}, {end}",
            ui::clean(&job.id),
            ui::clean(&job.name),
            ago(job.started)
        );
        out.push_str(fit(&line, width).trim_end());
        out.push('\n');
    }
    if !h.processes.is_empty() {
        out.push_str("GPU processes:\n");
        for p in h.processes.iter().take(PROCESSES) {
            let line = format!("  {}", ui::clean(&process_line(h, p)));
            out.push_str(fit(&line, width).trim_end());
            out.push('\n');
        }
        if h.processes.len() > PROCESSES {
            let more = format!(
                "  and {} more (--json lists them)",
                h.processes.len() - PROCESSES
            );
            out.push_str(&more);
            out.push('\n');
        }
    }
    out
}

/// Labels under the chart: `|-5h 12m` marks the column it starts at, every fifth of the
/// width or so, and `now` ends it.
fn axis(h: &History, cols: usize) -> String {
    let mut line = vec![' '; cols];
    let put = |line: &mut Vec<char>, at: usize, text: &str| {
        for (j, c) in text.chars().enumerate() {
            if let Some(slot) = line.get_mut(at + j) {
                *slot = c;
            }
        }
    };
    let end = cols.saturating_sub(3);
    put(&mut line, end, "now");
    let every = (cols / 5).max(10);
    let mut i = 0;
    while i < cols {
        let t = h.from + (i as i64 + 1) * h.step;
        let ago = (h.now - t).max(0) as u64;
        let text = format!("|-{}", ui::duration(ago).replace(' ', ""));
        let len = text.chars().count();
        if i + len + 1 > end {
            break;
        }
        put(&mut line, i, &text);
        i += every.max(len + 2);
    }
    line.into_iter().collect::<String>().trim_end().to_string()
}

/// Text made safe inside HTML (an element's text or a quoted attribute).
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The same charts as one self-contained HTML page: an SVG line per series, the fenton jobs
/// as shaded spans, nothing fetched from the network to view it.
pub fn html(h: &History, host: &str) -> String {
    const W: f64 = 900.0;
    const H: f64 = 60.0;
    let cols = h.timestamps.len().max(1) as f64;
    let x = |i: usize| (i as f64 + 0.5) / cols * W;
    let xt = |t: i64| ((t - h.from) as f64 / (h.now - h.from).max(1) as f64 * W).clamp(0.0, W);
    let mut spans = String::new();
    for job in &h.jobs {
        let (a, b) = (xt(job.started), xt(job.ended.unwrap_or(h.now)));
        spans.push_str(&format!(
            "<rect x=\"{a:.1}\" y=\"0\" width=\"{:.1}\" height=\"{H}\" class=\"job\"><title>{}</title></rect>",
            (b - a).max(1.0),
            escape_html(&format!("{} {}", job.id, job.name))
        ));
    }
    let mut body = String::new();
    for row in rows(h) {
        let mut path = String::new();
        let mut pen_up = true;
        for (i, v) in row.values.iter().enumerate() {
            match v {
                Some(v) => {
                    let y =
                        H - (v / row.top.max(f64::MIN_POSITIVE)).clamp(0.0, 1.0) * (H - 2.0) - 1.0;
                    path.push_str(&format!(
                        "{}{:.1},{y:.1} ",
                        if pen_up { "M" } else { "L" },
                        x(i)
                    ));
                    pen_up = false;
                }
                None => pen_up = true,
            }
        }
        let last = row
            .values
            .iter()
            .rev()
            .flatten()
            .next()
            .map_or("-".to_string(), |v| reading(*v, row.unit));
        body.push_str(&format!(
            "<div class=\"row\"><span class=\"label\">{}</span><svg viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\">{spans}<path d=\"{path}\"/></svg><span class=\"value\">{}</span></div>\n",
            escape_html(&row.label),
            escape_html(&last)
        ));
    }
    let mut jobs = String::new();
    for job in &h.jobs {
        let ago = |t: i64| format!("{} ago", ui::duration((h.now - t).max(0) as u64));
        let end = job
            .ended
            .map_or("still running".to_string(), |e| format!("ended {}", ago(e)));
        jobs.push_str(&format!(
            "<li>{} {}: started {}, {end}</li>",
            escape_html(&job.id),
            escape_html(&job.name),
            ago(job.started)
        ));
    }
    let mut processes = String::new();
    if !h.processes.is_empty() {
        processes.push_str("<h2>GPU processes</h2><ul>");
        for p in &h.processes {
            processes.push_str(&format!("<li>{}</li>", escape_html(&process_line(h, p))));
        }
        processes.push_str("</ul>");
    }
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title><style>\
body{{font:13px system-ui,sans-serif;margin:1.5em}}.row{{display:flex;align-items:center;gap:.6em}}\
.label{{width:8em}}.value{{width:6em}}svg{{background:#f6f6f6;border-bottom:1px solid #ccc}}\
path{{fill:none;stroke:#2a6fdb;stroke-width:1.5}}.job{{fill:#f2c14e;opacity:.35}}</style></head><body>\n\
<h1>{title}</h1><p>The last {span}, {step} a point; shaded: fenton jobs. Left edge {span} ago, right edge now.</p>\n\
{body}<ul>{jobs}</ul>{processes}</body></html>\n",
        title = escape_html(&format!("{host}: what the box did")),
        span = ui::duration((h.now - h.from).max(0) as u64),
        step = ui::duration(h.step as u64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("7d").unwrap(), 7 * 86400);
        assert_eq!(parse_duration("6h").unwrap(), 21600);
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert_eq!(parse_duration("30m").unwrap(), 1800);
        for bad in ["", "0", "h", "5x", "-1h", "1.5h", "99999d", "$(id)"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    fn sample() -> History {
        let text = "history 1000 400 10 60\nstate running\nsince 100\nsettings 10 604800 3600\nfiles 2\nbytes 2500000\nnow 1000\n\
            series gpu0.util 0 100 - 50 inf NaN 1e999\nseries gpu0.mem 10 20\nseries gpu0.memtotal 100 100\nseries cpu 5.5\nseries rx 2000000\n\
            job 20260101-000000-01 500 700 train \x1b]52;c;x\x07\njob 20260101-000000-02 900 - eval\n\
            job 20260101-000000-03 100 399 before\n\
            proc 0 4242 600 700 2566 tom 20260101-000000-01\nproc 0 77 990 1000 - - -\nproc x 1 2 3 4 5 6\n";
        history(text).unwrap()
    }

    #[test]
    fn the_html_page_holds_the_charts_and_no_markup_from_the_box() {
        let mut h = sample();
        h.jobs[1].name = "<script>alert(1)</script>".into();
        let page = html(&h, "box\"<b>");
        assert!(page.starts_with("<!doctype html>"));
        assert!(
            page.contains("gpu0 util") && page.contains("<path d=\"M"),
            "{page}"
        );
        assert!(
            !page.contains("<script>") && !page.contains("<b>"),
            "{page}"
        );
        assert!(page.contains("&lt;script&gt;"), "{page}");
        assert!(!page.contains("http"), "nothing to fetch: {page}");
    }

    #[test]
    fn history_parses_and_fills_gaps() {
        let h = sample();
        assert_eq!(h.timestamps.len(), 60);
        assert_eq!(h.timestamps[0], 410);
        assert_eq!(
            h.series["gpu0.util"][..8],
            [
                Some(0.0),
                Some(100.0),
                None,
                Some(50.0),
                None,
                None,
                None,
                None
            ]
        );
        assert_eq!(h.jobs.len(), 2);
        assert_eq!(h.jobs[1].ended, None);
        // The latest seen first; a line that does not parse is left out.
        assert_eq!(h.processes.len(), 2);
        assert_eq!(
            (h.processes[0].pid, h.processes[0].user.as_deref()),
            (77, None)
        );
        let p = &h.processes[1];
        assert_eq!(
            (
                p.gpu,
                p.pid,
                p.user.as_deref(),
                p.peak_mib,
                p.job.as_deref()
            ),
            (
                0,
                4242,
                Some("tom"),
                Some(2566.0),
                Some("20260101-000000-01")
            )
        );
        assert!(h.recorder.running());
        assert!(
            h.recorder.summary().contains("2.5 MB"),
            "{}",
            h.recorder.summary()
        );
    }

    #[test]
    fn the_chart_fits_and_holds_only_text() {
        let h = sample();
        for width in [40, 80, 200] {
            let mut h2 = sample();
            let cols = columns(width);
            for v in h2.series.values_mut() {
                v.resize(cols, Some(1.0));
            }
            h2.from = h.now - cols as i64 * h.step;
            h2.timestamps = (1..=cols as i64).map(|i| h2.from + i * h.step).collect();
            let text = render(&h2, width, "box");
            for line in text.lines() {
                assert!(line.chars().count() <= width, "{width}: {line:?}");
                assert!(!line.chars().any(char::is_control), "{line:?}");
            }
            assert!(text.contains("gpu0 util"), "{text}");
            assert!(text.contains("now"), "{text}");
            assert!(
                width < 80
                    || text.contains(
                        "gpu0 pid 4242 tom, up to 2566 MiB, fenton job 20260101-000000-01 (train"
                    ),
                "{text}"
            );
            assert!(text.contains("gpu0 pid 77: now"), "{text}");
            assert!(text.contains('['), "{text}");
        }
    }
}
