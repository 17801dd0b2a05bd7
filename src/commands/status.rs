//! `fenton status [--json] [--watch [SECS]] [--all]`: the box at a glance. One script goes to
//! the box's `sh` over one channel and answers with frames (once, or every SECS seconds for
//! `--watch`); `--all` asks every profile at once, each on a thread of its own so a box that
//! does not answer delays nobody.

use std::io::{IsTerminal, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Serialize;

use super::Ctx;
use crate::cli::StatusArgs;
use crate::config::{expand_home, Scheduler};
use crate::exit::Exit;
use crate::remote::{runtime, scripts, sh, Remote};
use crate::status::parse::Reader;
use crate::status::render::{self, Style};
use crate::status::Status;
use crate::ui;

/// Time the box may take to answer once connected (nvidia-smi alone can take seconds).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

pub fn run(ctx: &Ctx, args: StatusArgs) -> Result<Exit> {
    if args.all {
        return all(ctx, args.json);
    }
    let remote = ctx.remote()?;
    if args.history.is_some() || args.html.is_some() || args.open {
        let window = args.history.as_deref().unwrap_or("6h");
        let page = match (args.html.as_deref(), args.open) {
            (Some(file), open) => Some(super::monitor::Page::File(file, open)),
            (None, true) => Some(super::monitor::Page::Opened),
            (None, false) => None,
        };
        return super::monitor::show_history(&remote, window, args.json, page, style(ctx).width);
    }
    if remote.profile.scheduler == Scheduler::Slurm {
        return runtime()?.block_on(super::cluster::show(
            &remote,
            style(ctx),
            args.json,
            args.watch,
        ));
    }
    if let Some(secs) = args.watch {
        return runtime()?.block_on(watch(ctx, &remote, secs, args.json));
    }
    let rt = runtime()?;
    rt.block_on(super::monitor::auto_start(ctx, &remote));
    let status = rt.block_on(fetch(&remote))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&status)?)?;
    } else {
        out.write_all(render::render(&status, style(ctx)).as_bytes())?;
    }
    Ok(Exit::Success)
}

fn style(ctx: &Ctx) -> Style {
    let width = terminal_size::terminal_size_of(std::io::stdout())
        .map_or(render::WIDTH, |(w, _)| usize::from(w.0));
    Style {
        bars: std::io::stdout().is_terminal(),
        color: ui::color(),
        verbose: ctx.global.verbose > 0,
        width,
    }
}

/// The command line that runs the status script on the box.
fn script_line(remote: &Remote, mode: &str, interval: f64) -> String {
    let p = &remote.profile;
    let mount = p.mount.remote_path.as_deref().unwrap_or("~");
    format!(
        "sh -s -- {} {} {} {} {}",
        sh::quote(mode),
        sh::quote(&interval.to_string()),
        sh::quote(&p.tmux.socket),
        sh::path(&p.remote_dir),
        sh::path(mount)
    )
}

/// One frame, with what only this side knows (the profile, the mount, the link).
async fn fetch(remote: &Remote) -> Result<Status> {
    // Opened first, so the handshake does not count as the link's round trip.
    remote.connect().await?;
    let start = Instant::now();
    let mut first = None;
    let mut reader = Reader::default();
    let mut frame = None;
    let line = script_line(remote, "once", 0.0);
    let framed = scripts::Framed::new(scripts::STATUS)?;
    let mut ran = false;
    let answer = remote.stream_lines(&line, framed.input(), |line| {
        first.get_or_insert_with(|| start.elapsed());
        if !ran {
            ran = framed.is_mark(line);
            return true;
        }
        frame = reader.line(line);
        frame.is_none()
    });
    let out = match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
        Ok(out) => out?,
        Err(_) => bail!(
            "{} did not answer within {} s after connecting: is it overloaded? (try `fenton exec -- uptime`)",
            remote.profile.host,
            ANSWER_TIMEOUT.as_secs()
        ),
    };
    if !ran {
        return Err(framed.unread(&remote.profile.host, &out));
    }
    let Some(frame) = frame else {
        let stderr = framed.after(&out.stderr).unwrap_or(&out.stderr);
        bail!("{}", no_answer(remote, &reader, stderr, out.code));
    };
    let mut status = frame?;
    local_facts(remote, &mut status);
    status.link.round_trip_ms = first.map(|d| (d.as_secs_f64() * 10_000.0).round() / 10.0);
    Ok(status)
}

fn no_answer(remote: &Remote, reader: &Reader, stderr: &[u8], code: i32) -> String {
    if reader.not_linux() {
        return format!(
            "status needs a Linux box (one with /proc); {} is not one",
            remote.profile.host
        );
    }
    let said = String::from_utf8_lossy(stderr);
    let said = said
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("nothing");
    format!(
        "the status script on {} ended without an answer (exit {code}; it said: {said}): is `sh` there a POSIX shell?",
        remote.profile.host
    )
}

/// The profile's name and the local mount's state.
fn local_facts(remote: &Remote, status: &mut Status) {
    status.profile = remote.name.clone();
    let local = remote.profile.mount.local_path_or_default(&remote.name);
    status.mount.mounted = sshfs_mounted(&expand_home(&local).to_string_lossy());
    status.mount.local_path = local;
}

/// Whether `path` is an sshfs mount, from /proc/mounts; None where there is none to read.
fn sshfs_mounted(path: &str) -> Option<bool> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    let path = path.trim_end_matches('/');
    Some(mounts.lines().any(|line| {
        let f: Vec<&str> = line.split(' ').collect();
        f.len() > 2 && f[2].starts_with("fuse.sshfs") && unescape(f[1]) == path
    }))
}

/// /proc/mounts writes space, tab, newline and backslash as octal escapes.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Frames every `secs` seconds from one long-lived script over one channel, drawn in place
/// until Ctrl-C.
async fn watch(ctx: &Ctx, remote: &Remote, secs: f64, json: bool) -> Result<Exit> {
    remote.connect().await?;
    let screen = Screen::enter(!json && std::io::stdout().is_terminal());
    let start = Instant::now();
    let mut first = None;
    let mut reader = Reader::default();
    let mut failure: Option<anyhow::Error> = None;
    // When the last frame came: a box stuck in a hung disk must not freeze the screen on an
    // old frame for ever.
    let last = std::cell::Cell::new(Instant::now());
    let line = script_line(remote, "watch", secs);
    let framed = scripts::Framed::new(scripts::STATUS)?;
    let mut ran = false;
    let frames = remote.stream_lines(&line, framed.input(), |line| {
        first.get_or_insert_with(|| start.elapsed());
        if !ran {
            ran = framed.is_mark(line);
            return true;
        }
        let Some(frame) = reader.line(line) else {
            return true;
        };
        let shown = frame.and_then(|mut status| {
            local_facts(remote, &mut status);
            status.link.round_trip_ms = first.map(|d| (d.as_secs_f64() * 10_000.0).round() / 10.0);
            let text = if json {
                serde_json::to_string(&status)? + "\n"
            } else if screen.tty {
                render::render(&status, style(ctx))
            } else {
                // Frames one after another, a blank line apart.
                render::render(&status, style(ctx)) + "\n"
            };
            screen.draw(&text)?;
            last.set(Instant::now());
            Ok(())
        });
        match shown {
            Ok(()) => true,
            Err(e) => {
                failure = Some(e);
                false
            }
        }
    });
    let stall = Duration::from_secs_f64(secs) + ANSWER_TIMEOUT;
    let stalled = async {
        while last.get().elapsed() < stall {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let out = tokio::select! {
        out = frames => out?,
        _ = tokio::signal::ctrl_c() => {
            drop(screen);
            return Ok(Exit::Interrupted);
        }
        () = stalled => {
            drop(screen);
            bail!(
                "no status frame from {} for {} s: the link or the box is stuck (a hung disk or nvidia-smi?)",
                remote.profile.host,
                stall.as_secs()
            );
        }
    };
    drop(screen);
    if let Some(e) = failure {
        return Err(e);
    }
    if !ran {
        return Err(framed.unread(&remote.profile.host, &out));
    }
    let stderr = framed.after(&out.stderr).unwrap_or(&out.stderr);
    bail!(
        "the box stopped sending status frames ({})",
        no_answer(remote, &reader, stderr, out.code)
    );
}

/// The terminal while watching: the alternate screen without a cursor, given back on drop.
struct Screen {
    tty: bool,
}

impl Screen {
    fn enter(tty: bool) -> Screen {
        if tty {
            crate::out!("\x1b[?1049h\x1b[?25l");
            let _ = std::io::stdout().flush();
        }
        Screen { tty }
    }

    fn draw(&self, text: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        if self.tty {
            // Home, each line cleared to its end, the rest of the screen cleared.
            let text = text.replace('\n', "\x1b[K\n");
            write!(out, "\x1b[H{text}\x1b[J")?;
        } else {
            out.write_all(text.as_bytes())?;
        }
        out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if self.tty {
            crate::out!("\x1b[?25h\x1b[?1049l");
            let _ = std::io::stdout().flush();
        }
    }
}

/// One box's answer under `--all`.
#[derive(Serialize)]
struct Answer {
    profile: String,
    reachable: bool,
    error: Option<String>,
    status: Option<Frame>,
}

/// A box's status, or a Slurm cluster's (told apart in JSON by its `scheduler` key).
#[derive(Serialize)]
#[serde(untagged)]
enum Frame {
    Box(Box<Status>),
    Cluster(Box<crate::status::slurm::Cluster>),
}

fn all(ctx: &Ctx, json: bool) -> Result<Exit> {
    let loaded = ctx.config()?;
    let names: Vec<String> = loaded.file.profile.keys().cloned().collect();
    if names.is_empty() {
        bail!(
            "{} has no profiles: run `fenton config init --host HOST` to add one",
            loaded.path.display()
        );
    }
    let (tx, rx) = mpsc::channel();
    let mut wait = 0;
    for (i, name) in names.iter().enumerate() {
        let (name, profile) = loaded.profile(Some(name))?;
        wait = wait.max(profile.connect_timeout);
        let tx = tx.clone();
        std::thread::spawn(move || {
            let cluster = profile.scheduler == Scheduler::Slurm;
            let answer = Remote::new(name, profile)
                .and_then(|remote| {
                    let rt = runtime()?;
                    Ok(if cluster {
                        Frame::Cluster(Box::new(rt.block_on(super::cluster::fetch(&remote))?))
                    } else {
                        Frame::Box(Box::new(rt.block_on(fetch(&remote))?))
                    })
                })
                .map_err(|e| format!("{e:#}"));
            let _ = tx.send((i, answer));
        });
    }
    drop(tx);
    // Past the connect timeout (and the time a connected box takes to answer), a box that
    // has not answered is unreachable; the others are not kept waiting for it.
    let limit = Duration::from_secs(wait) + ANSWER_TIMEOUT;
    let deadline = Instant::now() + limit;
    let mut answers: Vec<Option<Result<Frame, String>>> = names.iter().map(|_| None).collect();
    while let Ok((i, answer)) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        answers[i] = Some(answer);
    }
    let answers: Vec<Answer> = names
        .into_iter()
        .zip(answers)
        .map(|(profile, answer)| {
            let answer =
                answer.unwrap_or_else(|| Err(format!("no answer within {} s", limit.as_secs())));
            match answer {
                Ok(status) => Answer {
                    profile,
                    reachable: true,
                    error: None,
                    status: Some(status),
                },
                Err(error) => Answer {
                    profile,
                    reachable: false,
                    error: Some(error),
                    status: None,
                },
            }
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&answers)?)?;
    } else {
        let style = style(ctx);
        let text: Vec<String> = answers
            .iter()
            .map(|a| match (&a.status, &a.error) {
                (Some(Frame::Box(status)), _) => render::render(status, style),
                (Some(Frame::Cluster(cluster)), _) => crate::status::slurm::render(cluster, style),
                (None, error) => {
                    render::unreachable(&a.profile, error.as_deref().unwrap_or(""), style)
                }
            })
            .collect();
        out.write_all(text.join("\n").as_bytes())?;
    }
    Ok(if answers.iter().all(|a| a.reachable) {
        Exit::Success
    } else {
        Exit::Failure
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script, run by a real `sh` on this Linux machine, makes a frame that parses.
    #[test]
    fn the_script_makes_a_frame_that_parses() {
        let dir = tempfile::tempdir().unwrap();
        let dir_arg = dir.path().to_string_lossy().into_owned();
        let mut child = std::process::Command::new("sh")
            .args(["-s", "--", "once", "0", "", dir_arg.as_str(), "/"])
            .env("PATH", "/usr/bin:/bin")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(scripts::STATUS.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let frames = crate::status::parse::frames(&text).unwrap();
        assert_eq!(frames.len(), 1, "{text}");
        let s = &frames[0];
        assert!(s.memory.total_mib > 0 && s.cpu.count > 0, "{s:#?}");
        assert!(s.cpu.utilization_percent.is_some(), "{s:#?}");
        assert_eq!(s.disks.len(), 4);
        assert!(s.disks.iter().all(|d| d.total_bytes.is_some()), "{s:#?}");
        // The second run takes its first sample from the first one, without waiting.
        assert!(dir.path().join("status.sample").is_file());
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape("/home/tom/my\\040box"), "/home/tom/my box");
        assert_eq!(unescape("/a\\134b"), "/a\\b");
    }
}
