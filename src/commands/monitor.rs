//! `fenton monitor start|stop|status` and the box's side of `fenton status --history`: the
//! recorder is `recorder.sh`, a sh loop under `setsid` on the box that appends a line per
//! sample to `remote_dir/monitor/`; `monitor.sh` starts, finds, stops and reads it. Nothing of
//! it runs on the laptop, so it keeps recording with the laptop closed.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{notify, Ctx};
use crate::cli::MonitorCommand;
use crate::config::Notify;
use crate::exit::Exit;
use crate::monitor::{self, History, Recorder};
use crate::remote::{runtime, scripts, sh, Remote};
use crate::ui;

pub fn run(ctx: &Ctx, command: MonitorCommand) -> Result<Exit> {
    let remote = ctx.remote()?;
    let rt = runtime()?;
    match command {
        MonitorCommand::Start { every } => {
            let every = every.unwrap_or(remote.profile.monitor.every);
            let notify = ctx.config()?.file.notify;
            let (fresh, r) = rt.block_on(start(&remote, every, &notify))?;
            if fresh {
                ui::info(format_args!(
                    "recording on {} every {every} s, keeping {}: `fenton status --history` shows it",
                    remote.profile.host,
                    ui::duration(r.retention_s.unwrap_or(0))
                ));
            } else {
                ui::info(format_args!(
                    "the recorder already runs on {}: {}",
                    remote.profile.host,
                    r.summary()
                ));
            }
        }
        MonitorCommand::Stop => {
            let out = rt.block_on(call(&remote, "stop", &[]))?;
            if out.lines().any(|l| l.starts_with("stopped ")) {
                ui::info(format_args!(
                    "stopped the recorder on {}; what it recorded stays",
                    remote.profile.host
                ));
            } else {
                ui::info(format_args!(
                    "the recorder does not run on {}",
                    remote.profile.host
                ));
            }
        }
        MonitorCommand::Status { json } => {
            let r = monitor::recorder(&rt.block_on(call(&remote, "status", &[]))?);
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
            } else {
                writeln!(out, "{}: {}", ui::clean(&remote.profile.host), r.summary())?;
            }
        }
    }
    Ok(Exit::Success)
}

/// Runs `monitor.sh MODE REMOTE_DIR ARGS…` and answers its stdout.
async fn call(remote: &Remote, mode: &str, args: &[String]) -> Result<String> {
    call_script(remote, mode, args, scripts::MONITOR.to_string()).await
}

async fn call_script(
    remote: &Remote,
    mode: &str,
    args: &[String],
    script: String,
) -> Result<String> {
    let mut line = format!(
        "sh -s -- {} {}",
        sh::quote(mode),
        sh::path(&remote.profile.remote_dir)
    );
    for arg in args {
        line.push(' ');
        line.push_str(&sh::quote(arg));
    }
    let out = scripts::output(remote, &line, &script).await?;
    if out.code != 0 {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = stderr
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or("it said nothing");
        bail!(
            "the monitor script failed on {} (exit {}): {}",
            remote.profile.host,
            out.code,
            ui::clean(said.strip_prefix("fenton: ").unwrap_or(said))
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Starts the recorder unless it runs: (whether this call started it, how it is now). Either
/// way the alert settings and the channels' files are written anew, so a running recorder
/// follows the config.
pub async fn start(remote: &Remote, every: u64, notify: &Notify) -> Result<(bool, Recorder)> {
    let m = &remote.profile.monitor;
    let keep = monitor::parse_duration(&m.retention)?;
    let channels = notify::files(notify)?;
    let mut script = String::from(
        "umask 077\nfm_new=$2/monitor\nmkdir -p \"$fm_new\" || { echo \"fenton: cannot make $fm_new on the box\" >&2; exit 1; }\nrm -rf \"$fm_new/notify.d\" \"$fm_new/alerts.conf\"\n",
    );
    if !channels.is_empty() && !m.alerts.is_empty() {
        let idle = monitor::parse_duration(&m.gpu_idle_after)?;
        let conf: String = m
            .alerts
            .iter()
            .map(|a| match a.as_str() {
                "gpu_idle" => format!("gpu_idle {idle} {}\n", m.gpu_idle_percent),
                "gpu_temp" => format!("gpu_temp {}\n", m.gpu_temp_c),
                "disk" => format!("disk {}\n", m.disk_percent),
                other => format!("{other}\n"),
            })
            .collect();
        script.push_str("mkdir \"$fm_new/notify.d\"\n");
        for (name, content) in &channels {
            script.push_str(&sh::write_file(
                "fm_new",
                &format!("notify.d/{name}"),
                content,
            ));
        }
        script.push_str(&sh::write_file("fm_new", "alerts.conf", &conf));
    }
    script.push_str(&sh::write_file(
        "fm_new",
        "recorder.sh.new",
        &scripts::recorder(),
    ));
    script.push_str(scripts::MONITOR);
    let out = call_script(
        remote,
        "start",
        &[every.to_string(), keep.to_string()],
        script,
    )
    .await?;
    let fresh = out.lines().any(|l| l.starts_with("started "));
    Ok((fresh, monitor::recorder(&out)))
}

/// With `monitor.auto`, starts the recorder when it does not run, and says so. A recorder
/// that cannot start is worth a warning, not the command it came with.
pub async fn auto_start(ctx: &Ctx, remote: &Remote) {
    if !remote.profile.monitor.auto {
        return;
    }
    let started = match ctx.config() {
        Ok(loaded) => start(remote, remote.profile.monitor.every, &loaded.file.notify).await,
        Err(e) => Err(e),
    };
    match started {
        Ok((true, _)) => ui::info(format_args!(
            "started the recorder on {} (monitor.auto): `fenton status --history` shows it",
            remote.profile.host
        )),
        Ok((false, _)) => {}
        Err(e) => ui::warn(format_args!("monitor.auto: {e:#}")),
    }
}

/// The history of the last `seconds`, in at most `columns` buckets.
pub async fn history(remote: &Remote, seconds: u64, columns: usize) -> Result<History> {
    let text = call(
        remote,
        "history",
        &[seconds.to_string(), columns.max(1).to_string()],
    )
    .await?;
    monitor::history(&text)
}

/// Where `--html` / `--open` put the page.
pub enum Page<'a> {
    /// `--html FILE`, opened too with `--open`.
    File(&'a Path, bool),
    /// `--open` alone: a private temporary file, opened.
    Opened,
}

/// `fenton status --history [DURATION] [--json]`: one round trip; the box thins the series to
/// the terminal's width.
/// With a page, the charts go to an HTML file (600 points wide), which is said, or opened.
pub fn show_history(
    remote: &Remote,
    window: &str,
    json: bool,
    page: Option<Page>,
    width: usize,
) -> Result<Exit> {
    let seconds = monitor::parse_duration(window)?;
    let columns = if page.is_some() {
        600
    } else {
        monitor::columns(width)
    };
    let h = runtime()?.block_on(history(remote, seconds, columns))?;
    if let Some(page) = page {
        let html = monitor::html(&h, &remote.profile.host);
        let (path, open) = match page {
            Page::File(path, open) => {
                std::fs::write(path, html).with_context(|| {
                    format!(
                        "cannot write {}: give a file in a directory you can write",
                        path.display()
                    )
                })?;
                (path.to_path_buf(), open)
            }
            Page::Opened => (private_page(&html)?, true),
        };
        if !h.recorder.running() {
            ui::warn(format_args!("{}", h.recorder.summary()));
        }
        if open {
            open_page(&path)?;
            ui::info(format_args!("wrote {} and opened it", path.display()));
        } else {
            ui::info(format_args!(
                "wrote {}: open it in a browser",
                path.display()
            ));
        }
        return Ok(Exit::Success);
    }
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&h)?)?;
        return Ok(Exit::Success);
    }
    if !h.recorder.running() {
        ui::warn(format_args!("{}", h.recorder.summary()));
    }
    out.write_all(monitor::render(&h, width, &remote.profile.host).as_bytes())?;
    Ok(Exit::Success)
}

/// The page in a file of its own in the temporary directory, readable by its owner only: the
/// box's history is nobody else's business. It stays for the browser to read.
fn private_page(html: &str) -> Result<PathBuf> {
    let path =
        std::env::temp_dir().join(format!("fenton-history-{}.html", scripts::random_hex(8)?));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| {
            format!(
                "cannot write {}: set TMPDIR to a directory you can write, or give --html FILE",
                path.display()
            )
        })?;
    file.write_all(html.as_bytes())
        .with_context(|| format!("cannot write {} (is the disk full?)", path.display()))?;
    Ok(path)
}

/// Hands the page to the system's opener (`open` on macOS, `xdg-open` elsewhere), which
/// shows it in the user's browser. An opener that answers within 2 s says whether it could;
/// one still running then is the browser itself, showing the page, and is left to it.
fn open_page(path: &Path) -> Result<()> {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let mut cmd = std::process::Command::new(opener);
    cmd.arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    ui::trace_command(opener, cmd.get_args());
    let not_opened = |why: String| {
        anyhow::anyhow!(
            "wrote {} but could not open it: {why}; open it in a browser",
            path.display()
        )
    };
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let hint = if opener == "xdg-open" {
                " (install xdg-utils)"
            } else {
                ""
            };
            return Err(not_opened(format!("there is no {opener} here{hint}")));
        }
        Err(e) => return Err(not_opened(format!("cannot run {opener}: {e}"))),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(not_opened(format!("{opener} failed ({status})"))),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(not_opened(format!("cannot wait for {opener}: {e}"))),
        }
    }
    Ok(())
}
