//! A [`Status`] drawn for a person: one line per fact, as wide as the terminal (80 columns
//! when there is none), bars on a terminal, colours only where allowed, "–" for what the box
//! did not say.

use std::fmt::Write;

use super::{Disk, Status};

/// The widest line drawn where no terminal says its width.
pub const WIDTH: usize = 80;
/// The narrowest: a label, a bar and a few words.
const MIN_WIDTH: usize = 40;
const LABEL: usize = 8;
const BAR: usize = 20;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Bars (a terminal).
    pub bars: bool,
    /// ANSI colours (a terminal, NO_COLOR unset).
    pub color: bool,
    /// Per-core CPU figures (-v).
    pub verbose: bool,
    /// Columns a line may take: the terminal's width.
    pub width: usize,
}

impl Default for Style {
    fn default() -> Style {
        Style {
            bars: false,
            color: false,
            verbose: false,
            width: WIDTH,
        }
    }
}

impl Style {
    fn width(&self) -> usize {
        self.width.max(MIN_WIDTH)
    }
}

/// The whole dashboard, each line ending in a newline.
pub fn render(s: &Status, style: Style) -> String {
    let s = &for_terminal(s);
    let mut out = Lines {
        style,
        text: String::new(),
    };
    let mut head = format!(
        "{} · {} · up {} · load {:.2} {:.2} {:.2}",
        s.host,
        s.kernel.strip_prefix("Linux ").unwrap_or(&s.kernel),
        crate::ui::duration(s.uptime_seconds as u64),
        s.load.avg_1m,
        s.load.avg_5m,
        s.load.avg_15m
    );
    if let Some(ms) = s.link.round_trip_ms {
        let _ = write!(head, " · link {ms:.0} ms");
    }
    if !s.profile.is_empty() && s.profile != s.host {
        head = format!("[{}] {head}", s.profile);
    }
    out.plain(&head);

    let model = s.cpu.model.as_deref().unwrap_or("");
    out.row(
        "CPU",
        s.cpu.utilization_percent,
        &format!(
            "{}  {} cores {}",
            pct(s.cpu.utilization_percent),
            s.cpu.count,
            model
        ),
    );
    if style.verbose && !s.cpu.per_core_percent.is_empty() {
        let mut line = String::new();
        for (i, p) in s.cpu.per_core_percent.iter().enumerate() {
            let cell = format!("{i}:{} ", pct(*p));
            if LABEL + line.len() + cell.len() > style.width() {
                out.row("", None, line.trim_end());
                line.clear();
            }
            line.push_str(&cell);
        }
        out.row("", None, line.trim_end());
    }

    let m = &s.memory;
    let used = (m.total_mib > 0).then(|| 100.0 * m.used_mib as f64 / m.total_mib as f64);
    let mut text = format!(
        "{}  {} of {} used, {} free",
        pct(used),
        mib(m.used_mib as f64),
        mib(m.total_mib as f64),
        mib(m.available_mib as f64)
    );
    if m.swap_total_mib > 0 {
        let _ = write!(
            text,
            " · swap {} of {}",
            mib(m.swap_used_mib as f64),
            mib(m.swap_total_mib as f64)
        );
    }
    out.row("Memory", used, &text);

    for (disk, roles) in disks(&s.disks) {
        let label = disk.mount_point.as_deref().unwrap_or(&disk.path);
        let used = use_percent(disk);
        let text = match (disk.available_bytes, disk.total_bytes) {
            (Some(free), Some(total)) => format!(
                "{}  {} free of {}  {label} ({roles})",
                pct(used),
                bytes(free),
                bytes(total)
            ),
            _ => format!("  –  {label} ({roles}): df could not tell"),
        };
        out.row("Disk", used, &text);
    }

    let mut nets: Vec<_> = s
        .network
        .iter()
        .filter(|n| n.rx_bytes + n.tx_bytes > 0)
        .collect();
    nets.sort_by_key(|n| std::cmp::Reverse(n.rx_bytes + n.tx_bytes));
    let net: Vec<String> = nets
        .iter()
        .take(3)
        .map(|n| {
            format!(
                "{} ↓ {} ↑ {}",
                n.name,
                rate(n.rx_bytes_per_second),
                rate(n.tx_bytes_per_second)
            )
        })
        .collect();
    out.row(
        "Net",
        None,
        &if net.is_empty() {
            "–".into()
        } else {
            net.join(" · ")
        },
    );

    match s.gpu.state.as_str() {
        "none" => out.row("GPU", None, "no NVIDIA GPU (no nvidia-smi on the box)"),
        "failed" => {
            // The driver's own words say what to do: wrap them rather than cut them.
            let message = s.gpu.message.as_deref().unwrap_or("nvidia-smi failed");
            for (i, part) in wrap(message, style.width() - LABEL).iter().enumerate() {
                let part = out.paint(part, "31");
                out.row(if i == 0 { "GPU" } else { "" }, None, &part);
            }
        }
        _ if s.gpu.devices.is_empty() => out.row("GPU", None, "nvidia-smi lists no GPU"),
        _ => {
            for g in &s.gpu.devices {
                out.row(
                    &format!("GPU {}", g.index),
                    g.utilization_percent,
                    &format!("{}  {}", pct(g.utilization_percent), g.name),
                );
                let power = match (g.power_draw_w, g.power_limit_w) {
                    (None, None) => "–".to_string(),
                    (d, l) => format!("{}/{} W", num(d, 0), num(l, 0)),
                };
                out.row(
                    "",
                    None,
                    &format!(
                        "mem {}/{} MiB · {} °C · {power} · fan {}",
                        num(g.memory_used_mib, 0),
                        num(g.memory_total_mib, 0),
                        num(g.temperature_c, 0),
                        pct(g.fan_percent).trim_start()
                    ),
                );
                for p in &g.processes {
                    out.row(
                        "",
                        None,
                        &format!(
                            "pid {} ({}) {} MiB: {}",
                            p.pid,
                            p.user.as_deref().unwrap_or("–"),
                            num(p.memory_used_mib, 0),
                            p.name
                        ),
                    );
                }
            }
        }
    }

    let sessions: Vec<String> = s
        .tmux
        .iter()
        .map(|t| {
            let windows = t.windows.map_or(String::new(), |w| {
                format!(" {w} window{}", if w == 1 { "" } else { "s" })
            });
            let attached = if t.attached { ", attached" } else { "" };
            format!("{} ({}{attached})", t.name, windows.trim())
        })
        .collect();
    out.row(
        "tmux",
        None,
        &if sessions.is_empty() {
            "no session".into()
        } else {
            sessions.join(" · ")
        },
    );
    if s.jupyter.is_empty() {
        out.row("Jupyter", None, "not running");
    }
    for j in &s.jupyter {
        let port = j.port.map_or("–".into(), |p| p.to_string());
        out.row(
            "Jupyter",
            None,
            &format!("port {port} · pid {} ({}) {}", j.pid, j.user, j.command),
        );
    }
    let mut jobs = format!("{} running, {} finished", s.jobs.running, s.jobs.finished);
    for job in &s.jobs.list {
        let ran = job.running_seconds.map_or("–".into(), crate::ui::duration);
        let _ = write!(jobs, " · {} ({ran})", job.name);
    }
    out.row("Jobs", None, &jobs);
    if let Some(m) = &s.monitor {
        let size = crate::monitor::megabytes(m.kib * 1024);
        let text = match (m.running, m.recording_seconds) {
            (true, Some(secs)) => format!(
                "recording since {} ago ({size})",
                crate::ui::duration(secs)
            ),
            (true, None) => format!("recording ({size})"),
            (false, _) => format!(
                "not recording: the recorder ended without `fenton monitor stop` (a reboot?); `fenton monitor start` ({size} kept)"
            ),
        };
        out.row("Monitor", None, &text);
    }
    let mount = match s.mount.mounted {
        Some(true) => "mounted",
        Some(false) => "not mounted (fenton fs mount)",
        None => "–",
    };
    out.row("Mount", None, &format!("{} {mount}", s.mount.local_path));
    out.text
}

/// The status with every text that came from the box made safe to draw (`ui::clean`): a GPU
/// or process name may carry escape sequences. A new text field belongs here too.
fn for_terminal(s: &Status) -> Status {
    let clean = |text: &mut String| *text = crate::ui::clean(text).into_owned();
    let mut s = s.clone();
    for text in [&mut s.profile, &mut s.host, &mut s.kernel, &mut s.gpu.state] {
        clean(text);
    }
    for text in [&mut s.cpu.model, &mut s.gpu.message].into_iter().flatten() {
        clean(text);
    }
    for d in &mut s.disks {
        clean(&mut d.role);
        clean(&mut d.path);
        for text in [&mut d.filesystem, &mut d.mount_point]
            .into_iter()
            .flatten()
        {
            clean(text);
        }
    }
    for n in &mut s.network {
        clean(&mut n.name);
    }
    for g in &mut s.gpu.devices {
        clean(&mut g.name);
        if let Some(bus) = &mut g.bus_id {
            clean(bus);
        }
        for p in &mut g.processes {
            clean(&mut p.name);
            if let Some(user) = &mut p.user {
                clean(user);
            }
        }
    }
    for t in &mut s.tmux {
        clean(&mut t.name);
    }
    for j in &mut s.jupyter {
        clean(&mut j.user);
        clean(&mut j.command);
    }
    for j in &mut s.jobs.list {
        clean(&mut j.id);
        clean(&mut j.name);
    }
    clean(&mut s.mount.local_path);
    s
}

/// A box that did not answer, in the same layout.
pub fn unreachable(profile: &str, error: &str, style: Style) -> String {
    let mut out = Lines {
        style,
        text: String::new(),
    };
    let word = out.paint("unreachable", "31");
    out.plain(&format!(
        "[{}] {word}: {}",
        crate::ui::clean(profile),
        crate::ui::clean(error)
    ));
    out.text
}

/// The share of a disk in use as `df` shows it (Use%): used ÷ (used + available), rounded
/// up, so the space kept for root counts as neither.
fn use_percent(disk: &Disk) -> Option<f64> {
    let (used, available) = (disk.used_bytes?, disk.available_bytes?);
    let usable = used + available;
    (usable > 0).then(|| (used * 100).div_ceil(usable) as f64)
}

/// Disks that share a mount point are drawn once, with every reason they matter.
fn disks(list: &[Disk]) -> Vec<(&Disk, String)> {
    let mut out: Vec<(&Disk, String)> = Vec::new();
    for disk in list {
        let same = out
            .iter_mut()
            .find(|(d, _)| d.mount_point.is_some() && d.mount_point == disk.mount_point);
        match same {
            Some((_, roles)) => {
                roles.push_str(", ");
                roles.push_str(&disk.role);
            }
            None => out.push((disk, disk.role.clone())),
        }
    }
    out
}

struct Lines {
    style: Style,
    text: String,
}

impl Lines {
    fn plain(&mut self, line: &str) {
        self.text.push_str(&fit(line, self.style.width()));
        self.text.push('\n');
    }

    /// `LABEL  [bar]  text`, the text cut to fit.
    fn row(&mut self, label: &str, bar: Option<f64>, text: &str) {
        let mut line = self.paint(&format!("{label:<LABEL$}"), "1");
        let mut room = self.style.width().saturating_sub(LABEL);
        if let (true, Some(p)) = (self.style.bars, bar) {
            let p = p.clamp(0.0, 100.0);
            let full = ((p / 100.0) * BAR as f64).round() as usize;
            let code = if p >= 90.0 {
                "31"
            } else if p >= 60.0 {
                "33"
            } else {
                "32"
            };
            let filled = self.paint(&"█".repeat(full), code);
            let _ = write!(line, "{filled}{} ", "░".repeat(BAR - full));
            room -= BAR + 1;
        }
        line.push_str(&fit(text, room));
        self.text.push_str(&line);
        self.text.push('\n');
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.style.color && !text.trim().is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Splits text at spaces into lines of at most `width` characters (a longer word is cut by
/// `fit` later).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = vec![];
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// Cuts plain text to `width` characters, marking the cut; colour codes count for nothing.
pub fn fit(text: &str, width: usize) -> String {
    if visible(text) <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut n = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            out.push(c);
            for c in chars.by_ref() {
                out.push(c);
                if c == 'm' {
                    break;
                }
            }
            continue;
        }
        if n + 1 >= width {
            out.push('…');
            break;
        }
        out.push(c);
        n += 1;
    }
    if text.contains('\x1b') {
        out.push_str("\x1b[0m");
    }
    out
}

/// The number of columns a line takes (colour codes take none).
pub fn visible(text: &str) -> usize {
    let mut n = 0;
    let mut escape = false;
    for c in text.chars() {
        match (escape, c) {
            (false, '\x1b') => escape = true,
            (true, 'm') => escape = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

fn pct(p: Option<f64>) -> String {
    p.map_or("  –".into(), |p| format!("{p:>3.0}%"))
}

fn num(n: Option<f64>, decimals: usize) -> String {
    n.map_or("–".into(), |n| format!("{n:.decimals$}"))
}

fn mib(m: f64) -> String {
    if m >= 1024.0 {
        format!("{:.1} GiB", m / 1024.0)
    } else {
        format!("{m:.0} MiB")
    }
}

pub fn bytes(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

fn rate(r: Option<f64>) -> String {
    r.map_or("–".into(), |r| format!("{}/s", bytes(r as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::parse;

    fn sample() -> Status {
        let text = include_str!("testdata/frame.txt");
        let mut s = parse::frames(text).unwrap().remove(0);
        s.profile = "box".into();
        s.link.round_trip_ms = Some(3.4);
        s.mount.local_path = "~/fenton".into();
        s.mount.mounted = Some(false);
        s
    }

    #[test]
    fn wrap_keeps_every_word_within_the_width() {
        let text = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.";
        let lines = wrap(text, 30);
        assert!(lines.iter().all(|l| l.chars().count() <= 30), "{lines:?}");
        assert_eq!(lines.join(" "), text);
        assert_eq!(wrap("", 10), Vec::<String>::new());
    }

    #[test]
    fn everything_fits_80_columns_in_every_style() {
        let s = sample();
        for bars in [false, true] {
            for color in [false, true] {
                for verbose in [false, true] {
                    let style = Style {
                        bars,
                        color,
                        verbose,
                        ..Style::default()
                    };
                    let text = render(&s, style);
                    for line in text.lines() {
                        assert!(
                            visible(line) <= WIDTH,
                            "{} columns: {line:?}",
                            visible(line)
                        );
                    }
                    assert_eq!(text.contains('\x1b'), color, "colour only when asked");
                    assert_eq!(text.contains('█'), bars, "bars only on a terminal");
                }
            }
        }
    }

    #[test]
    fn plain_text_says_every_fact() {
        let text = render(&sample(), Style { ..Style::default() });
        crate::out!("{text}");
        for needle in [
            "[box] gpu-box · 6.1.0-18-amd64 · up 1m 40s · load 0.20 0.41 0.25 · link 3 ms",
            "CPU      50%  2 cores AMD EPYC",
            "Memory   17%",
            // df's own Use% for this line is 18%: used ÷ (used + available).
            "Disk     18%  75.0 GiB free of 252.0 GiB  / (root)",
            "/home/my mount (home)",
            "eth0 ↓ 9.8 KiB/s ↑ 1000 B/s",
            "GPU 0   100%  NVIDIA H100 80GB HBM3",
            "mem 19818/81559 MiB · 59 °C · 632/700 W · fan 38%",
            "GPU 1     –  Odd, Name GPU",
            "pid 5268 (tom) 370 MiB: ffmpeg",
            "fenton (3 windows, attached) · my 'odd\" session|x (1 window)",
            "port 8890 · pid 4242 (tom)",
            "Jobs    1 running, 1 finished · train big (1h 0m)",
            "Mount   ~/fenton not mounted",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
    }

    #[test]
    fn a_wide_terminal_gets_whole_lines_and_a_narrow_one_fits() {
        let mut s = sample();
        for disk in &mut s.disks {
            disk.mount_point = Some("/".into());
        }
        let wide = Style {
            bars: true,
            width: 160,
            ..Style::default()
        };
        let text = render(&s, wide);
        assert!(text.contains("/ (root, home, remote_dir)\n"), "{text}");
        assert!(text.lines().any(|l| visible(l) > WIDTH), "{text}");
        for width in [40, 60, 100, 160] {
            let style = Style { width, ..wide };
            for line in render(&s, style).lines() {
                assert!(visible(line) <= width, "{width}: {line:?}");
            }
        }
    }

    #[test]
    fn unreachable_is_one_line() {
        let text = unreachable(
            "lab",
            "no answer from x port 22 within 5 s",
            Style::default(),
        );
        assert_eq!(
            text,
            "[lab] unreachable: no answer from x port 22 within 5 s\n"
        );
    }

    #[test]
    fn box_text_draws_as_text() {
        let evil = "x\x1b]52;c;aGk=\x07\x1b[2J\u{9b}31m";
        let mut s = sample();
        s.host = evil.into();
        s.cpu.model = Some(evil.into());
        s.gpu.devices[0].name = evil.into();
        s.gpu.devices[0].processes[0].name = evil.into();
        s.tmux[0].name = evil.into();
        s.jupyter[0].command = evil.into();
        s.disks[0].mount_point = Some(evil.into());
        s.network[0].name = evil.into();
        for color in [false, true] {
            let text = render(
                &s,
                Style {
                    color,
                    ..Style::default()
                },
            );
            // fenton's own colours are the only escapes: ESC followed by `[` digits `m`.
            let stripped = text.split('\x1b').skip(1).all(|rest| {
                rest.starts_with('[')
                    && rest[1..].find('m').is_some_and(|m| {
                        rest[1..m + 1]
                            .chars()
                            .all(|c| c.is_ascii_digit() || c == ';')
                    })
            });
            assert!(stripped, "{text:?}");
            assert_eq!(text.contains('\x1b'), color);
            assert!(
                !text.contains('\u{9b}') && !text.contains('\x07'),
                "{text:?}"
            );
            assert!(text.contains("x^[]52;c;aGk=^G^[[2J<U+009B>31m"), "{text}");
        }
    }
}
