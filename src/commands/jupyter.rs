//! `fenton jupyter start | stop | status | open | url`: a Jupyter server on the box, alive in a
//! window of the profile's tmux session, reached here through a forward of the shared
//! connection.
//!
//! The box side is one script (`scripts/jupyter.sh`): a start is one round trip that launches
//! the server (or finds the running one) and waits on the box until it listens, so the only
//! waiting over the link is one HTTP check through the forward. The token is made here, reaches
//! the box inside the script on stdin and lands in a 0600 file that Jupyter reads through
//! `JUPYTER_TOKEN_FILE`: no command line on either machine ever holds it, and only `url`
//! prints it. The browser gets it through a private redirect file, not through its argv.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::Ctx;
use crate::cli::{JupyterCommand, JupyterStartArgs};
use crate::exit::Exit;
use crate::remote::holder::{Forward, Opened};
use crate::remote::scripts::{self, JUPYTER as SCRIPT};
use crate::remote::{runtime, sh, Remote, STEP_LIMIT};
use crate::ui;

pub fn run(ctx: &Ctx, command: JupyterCommand) -> Result<Exit> {
    let remote = ctx.remote()?;
    let runtime = runtime()?;
    if remote.profile.scheduler == crate::config::Scheduler::Slurm {
        return runtime.block_on(super::jupyter_slurm::run(ctx, &remote, command));
    }
    match command {
        JupyterCommand::Start(args) => runtime.block_on(start(&remote, args)),
        JupyterCommand::Stop => runtime.block_on(stop(&remote)),
        JupyterCommand::Status => runtime.block_on(status(&remote)),
        JupyterCommand::Open => runtime.block_on(open(&remote, true)),
        JupyterCommand::Url => runtime.block_on(open(&remote, false)),
    }
}

/// What the box script said: its first line, its `key value` lines, and Jupyter's last lines.
pub(super) struct Reply {
    pub(super) kind: String,
    pub(super) rest: String,
    pub(super) fields: HashMap<String, String>,
    pub(super) log: Vec<String>,
}

impl Reply {
    pub(super) fn parse(text: &str) -> Reply {
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("");
        let (kind, rest) = first.split_once(' ').unwrap_or((first, ""));
        let mut fields = HashMap::new();
        let mut log = Vec::new();
        let mut in_log = false;
        for line in lines {
            if in_log {
                log.push(line.to_string());
            } else if line == "log-begin" {
                in_log = true;
            } else if let Some((key, value)) = line.split_once(' ') {
                fields.insert(key.to_string(), value.to_string());
            } else {
                fields.insert(line.to_string(), String::new());
            }
        }
        Reply {
            kind: kind.to_string(),
            rest: rest.to_string(),
            fields,
            log,
        }
    }

    pub(super) fn field<T: std::str::FromStr>(&self, key: &str) -> Result<T> {
        self.fields
            .get(key)
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("the box's Jupyter state lacks a valid `{key}`"))
    }
}

/// A running server, as the box reports it.
struct Server {
    pid: u32,
    port: u16,
    uptime: u64,
    dir: String,
    token: Option<String>,
}

impl Server {
    fn from(reply: &Reply) -> Result<Server> {
        let started: u64 = reply.field("started").unwrap_or(0);
        let now: u64 = reply.field("now").unwrap_or(0);
        Ok(Server {
            pid: reply.field("pid")?,
            port: reply.field("port")?,
            uptime: now.saturating_sub(started),
            dir: reply.fields.get("dir").cloned().unwrap_or_default(),
            token: reply.fields.get("token").cloned(),
        })
    }
}

/// Where fenton keeps Jupyter's state on the box.
fn state_dir(remote: &Remote) -> String {
    format!(
        "{}/jupyter",
        remote.profile.remote_dir.trim_end_matches('/')
    )
}

/// Runs the box script with `action` and its arguments (shell words made by `sh`); `prefix`
/// goes before the script. The arguments travel inside the script, not on the box's command
/// line, where `ps` would show `setup` (which may export a secret) for the whole start.
async fn script(remote: &Remote, args: &[String], prefix: &str) -> Result<Reply> {
    let input = format!("set -- {}\n{prefix}\n{SCRIPT}", args.join(" "));
    let p = &remote.profile;
    // A start waits for the server at most start_timeout, and first for another fenton's
    // start or stop (the box's lock); a stop for a start, and 10 s for the server to end; a
    // status query takes a moment. The box gives tmux 10 s of each.
    let limit = match args.first().map(String::as_str) {
        Some("status") => STEP_LIMIT,
        _ => Duration::from_secs(2 * p.jupyter.start_timeout + p.connect_timeout + 40),
    };
    let what = format!("fenton's Jupyter script ({})", args[0]);
    let out = remote
        .within(limit, &what, scripts::output(remote, "sh -s", &input))
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.code != 0 || stdout.is_empty() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!(
            "the box could not run fenton's Jupyter script (status {}): {}",
            out.code,
            last_line(&stderr)
        );
    }
    Ok(Reply::parse(&stdout))
}

/// A line of the server's log without the wrapper's own name: `./run.sh: 1: exec: jupyter:
/// not found` is `jupyter: not found`.
pub(super) fn unwrapped(line: &str) -> &str {
    let Some(rest) = line.strip_prefix("./run.sh: ") else {
        return line;
    };
    let rest = rest
        .split_once(": ")
        .filter(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
        .map_or(rest, |(_, r)| r);
    rest.strip_prefix("exec: ").unwrap_or(rest)
}

/// The program the shell could not find, when that is why the server died at once.
pub(super) fn missing(log: &[String]) -> Option<&str> {
    log.iter().rev().find_map(|line| {
        let line = unwrapped(line.trim());
        let program = line
            .strip_suffix(": not found")
            .or_else(|| line.strip_suffix(": command not found"))?;
        Some(program.rsplit(": ").next().unwrap_or(program))
    })
}

pub(super) fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .trim()
}

/// The server's state on the box, with its token when asked for.
async fn query(remote: &Remote, token: bool) -> Result<Option<Server>> {
    let mut args = vec!["status".to_string(), sh::path(&state_dir(remote))];
    if token {
        args.push("token".into());
    }
    let reply = script(remote, &args, "").await?;
    match reply.kind.as_str() {
        "running" => Ok(Some(Server::from(&reply)?)),
        _ => Ok(None),
    }
}

/// 192 random bits from the system's generator, as hex.
pub(super) fn new_token() -> Result<String> {
    scripts::random_hex(24).context("cannot make Jupyter's token")
}

/// The token the last start used, kept here (0600, in the connection's private directory)
/// as on the box, so that a saved URL keeps working across stops, starts and box restarts.
fn saved_token(remote: &Remote) -> Option<String> {
    let text = fs::read_to_string(remote.state_file("jupyter-token")).ok()?;
    let token = text.trim();
    (token.len() == 48 && token.chars().all(|c| c.is_ascii_hexdigit())).then(|| token.to_string())
}

fn save_token(remote: &Remote, token: &str) -> Result<()> {
    if saved_token(remote).as_deref() == Some(token) {
        return Ok(());
    }
    let path = remote.state_file("jupyter-token");
    let _ = fs::remove_file(&path);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(token.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

async fn start(remote: &Remote, args: JupyterStartArgs) -> Result<Exit> {
    let config = &remote.profile.jupyter;
    let port = args.port.unwrap_or(config.remote_port);
    let timeout = Duration::from_secs(config.start_timeout.max(1));
    let deadline = Instant::now() + timeout;
    let token = match saved_token(remote) {
        Some(saved) if !args.new_token => saved,
        _ => new_token()?,
    };
    let spinner = ui::spinner(format!("starting Jupyter on the box (port {port})…"));
    let tmux = &remote.profile.tmux;
    let call = [
        "start".to_string(),
        sh::path(&state_dir(remote)),
        sh::quote(&tmux.socket),
        sh::quote(&tmux.session),
        sh::path(&config.dir),
        port.to_string(),
        timeout.as_secs().to_string(),
        sh::quote(&config.command),
        sh::quote(&config.setup),
        (if args.new_token { "new" } else { "keep" }).to_string(),
    ];
    let reply = script(remote, &call, &sh::assign("token", &token)).await?;
    let mask = |lines: &[String]| -> String {
        let said: Vec<String> = lines
            .iter()
            .map(|l| unwrapped(l.trim()).replace(&token, crate::config::MASK))
            .filter(|l| !l.is_empty())
            .collect();
        let tail = &said[said.len().saturating_sub(4)..];
        if tail.is_empty() {
            "it printed nothing".into()
        } else {
            format!("it said: {}", tail.join(" | "))
        }
    };
    let (server, reused) = match reply.kind.as_str() {
        "running" => (Server::from(&reply)?, true),
        "listening" => {
            let mut server = Server::from(&reply)?;
            server.token.get_or_insert_with(|| token.clone());
            (server, false)
        }
        "busy" => {
            let who = match reply.rest.split_once(' ') {
                Some((pid, cmdline)) => format!("pid {pid}: {}", cmdline.trim()),
                None => "a program of another user, or one fenton cannot see".into(),
            };
            bail!(
                "port {port} on the box is taken by another program ({who}): pick another with `fenton jupyter start --port N` or set jupyter.remote_port"
            )
        }
        "died" if missing(&reply.log).is_some() => bail!(
            "`{}` is not found on the box, so Jupyter cannot start: install it there (pip install jupyterlab), or set jupyter.command (and jupyter.setup, e.g. \"conda activate ml\") in profile {:?} (`fenton doctor` checks it)",
            missing(&reply.log).unwrap_or_default(),
            remote.name
        ),
        "died" => bail!(
            "Jupyter exited right away (jupyter.command = {:?}{}); {}",
            config.command,
            if config.setup.is_empty() {
                ""
            } else {
                ", after jupyter.setup"
            },
            mask(&reply.log)
        ),
        "timeout" => bail!(
            "Jupyter did not listen on box port {port} within {} s, so fenton stopped it (raise jupyter.start_timeout if the box is slow); {}",
            timeout.as_secs(),
            mask(&reply.log)
        ),
        "error" => bail!("{}", reply.rest),
        other => bail!("the box's Jupyter script answered {other:?}: is fenton's remote_dir writable?"),
    };
    if reused && args.new_token {
        bail!(
            "Jupyter already runs on the box (pid {}) with its token: `fenton jupyter stop`, then `fenton jupyter start --new-token`",
            server.pid
        );
    }
    if reused && args.port.is_some_and(|p| p != server.port) {
        ui::warn(format_args!(
            "Jupyter already runs on box port {}, so --port {port} is not used: `fenton jupyter stop` first to move it",
            server.port
        ));
    }
    let token = server
        .token
        .clone()
        .context("the box did not give Jupyter's token")?;
    save_token(remote, &token)?;
    spinner.say(format!(
        "forwarding a local port to box port {}…",
        server.port
    ));
    let local = forward(remote, server.port, args.local_port)?;
    spinner.say(format!(
        "waiting for Jupyter to answer at http://127.0.0.1:{local}/ …"
    ));
    wait_answer(local, &token, deadline, timeout).await?;
    drop(spinner);
    if reused {
        ui::info(format_args!(
            "Jupyter was already running on the box (pid {}, port {}, up {})",
            server.pid,
            server.port,
            ui::duration(server.uptime)
        ));
    } else {
        ui::info(format_args!(
            "Jupyter is running on the box (pid {}, port {}) in tmux window {}:jupyter",
            server.pid, server.port, remote.profile.tmux.session
        ));
    }
    show(remote, local, &token, !args.no_browser)
}

/// Opens the browser at the server, or says where it is.
pub(super) fn show(remote: &Remote, local: u16, token: &str, browser: bool) -> Result<Exit> {
    let plain = format!("http://127.0.0.1:{local}/");
    if browser {
        match open_browser(remote, &format!("{plain}?token={token}")) {
            Ok(()) => {
                ui::info(format_args!("opened {plain} in your browser"));
                return Ok(Exit::Success);
            }
            Err(e) => match std::env::var_os("BROWSER") {
                Some(browser) => ui::warn(format_args!(
                    "BROWSER={} could not open the page: {}; open the address below",
                    browser.to_string_lossy(),
                    e.root_cause()
                )),
                None => ui::warn(format_args!(
                    "no browser found here: set BROWSER to your browser's command, or open the address below"
                )),
            },
        }
    }
    crate::outln!("{plain}");
    ui::info(format_args!(
        "`fenton jupyter url` prints it with its token, for pasting"
    ));
    Ok(Exit::Success)
}

/// Opens the browser through a private file that redirects to the URL, so the token is in no
/// process's argv (the browser's lives as long as the browser does).
fn open_browser(remote: &Remote, url: &str) -> Result<()> {
    let path = remote.state_file("jupyter.html");
    let _ = fs::remove_file(&path);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    write!(
        file,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0;url={url}\"><title>Jupyter</title></head>\
         <body><a href=\"{url}\">Jupyter</a></body></html>\n"
    )?;
    let target = format!("file://{}", path.display());
    ui::trace_command("browser", [&target]);
    webbrowser::open(&target)?;
    Ok(())
}

/// The local forward to the server, held by fenton's forwarder: on `asked` (the port given
/// with --local-port), else on the port the last start used (so a saved URL keeps working),
/// else from `jupyter.local_port` on, the next free one when busy (and said so). A port
/// another program listens on is never used: it would get the token.
fn forward(remote: &Remote, port: u16, asked: Option<u16>) -> Result<u16> {
    // Starts at once make one forward: the second finds the first's.
    let _lock = crate::lock::exclusive(
        &remote.state_file("jupyter.lock"),
        Some(Duration::from_secs(30)),
        "forwarding a port to Jupyter",
    )?;
    let recorded = recorded(remote).map(|(local, _)| local);
    let preferred = asked
        .or(recorded)
        .unwrap_or(remote.profile.jupyter.local_port);
    let held = remote.held_forwards(false)?;
    // A tunnel of the user's on that port is theirs, not Jupyter's.
    let others: Vec<u16> = held
        .iter()
        .filter(|l| l.forward.kind != "jupyter")
        .map(|l| l.forward.local)
        .collect();
    let mut local = preferred;
    loop {
        let opened = if others.contains(&local) {
            Opened::Busy
        } else {
            remote.hold_forward(&Forward {
                local,
                host: "127.0.0.1".into(),
                port,
                kind: "jupyter".into(),
            })?
        };
        if opened != Opened::Busy {
            break;
        }
        if asked.is_some() {
            bail!("local port {local} is in use here by another program: pick another with --local-port N");
        }
        if local >= preferred.saturating_add(100) || local == u16::MAX {
            bail!(
                "no free local port in {preferred}..{local}: close what uses them, or pick one with --local-port N"
            );
        }
        local += 1;
    }
    if local != preferred {
        ui::info(format_args!(
            "local port {preferred} is busy: using {local} instead"
        ));
    }
    // Jupyter's forward from before, on another port, goes.
    for old in held
        .iter()
        .filter(|l| l.forward.kind == "jupyter" && l.forward.local != local)
    {
        remote.release_forward(old.forward.local)?;
    }
    let path = remote.state_file("jupyter");
    fs::write(&path, format!("{local} {port}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(local)
}

/// Whether fenton's forwarder holds Jupyter's forward on `local` to box port `port`.
fn held(remote: &Remote, local: u16, port: u16) -> bool {
    remote.held_forwards(false).is_ok_and(|held| {
        held.iter().any(|l| {
            l.forward.kind == "jupyter" && l.forward.local == local && l.forward.port == port
        })
    })
}

/// The forward recorded here: (local port, box port).
fn recorded(remote: &Remote) -> Option<(u16, u16)> {
    let text = fs::read_to_string(remote.state_file("jupyter")).ok()?;
    let (local, port) = text.trim().split_once(' ')?;
    Some((local.parse().ok()?, port.parse().ok()?))
}

/// The HTTP status of Jupyter's `/api/status` at a local port; None when nothing answers.
pub(super) fn probe(local: u16, token: Option<&str>) -> Option<u16> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let mut request = agent.get(format!("http://127.0.0.1:{local}/api/status"));
    if let Some(token) = token {
        request = request.header("Authorization", format!("token {token}"));
    }
    request.call().ok().map(|r| r.status().as_u16())
}

/// Polls until Jupyter answers with the token through the forward, up to the deadline.
async fn wait_answer(local: u16, token: &str, deadline: Instant, timeout: Duration) -> Result<()> {
    if let Err(said) = answered(local, token, deadline).await {
        bail!(
            "Jupyter listens on the box but did not answer through http://127.0.0.1:{local}/ within {} s ({said}): see its window with `fenton tmux`",
            timeout.as_secs()
        );
    }
    Ok(())
}

/// Polls until Jupyter answers 200 with the token on `local`, up to the deadline (and a few
/// seconds at least: the server was already seen listening, so the link gets them even when
/// the start used up most of the deadline); else what it last answered.
pub(super) async fn answered(
    local: u16,
    token: &str,
    deadline: Instant,
) -> std::result::Result<(), String> {
    let deadline = deadline.max(Instant::now() + Duration::from_secs(5));
    loop {
        let last = probe(local, Some(token));
        if last == Some(200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(match last {
                Some(code) => format!("it answered HTTP {code}"),
                None => "nothing answered".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn open(remote: &Remote, browser: bool) -> Result<Exit> {
    let Some(server) = query(remote, true).await? else {
        bail!("Jupyter is not running on the box: start it with `fenton jupyter start`");
    };
    let token = server
        .token
        .context("the box did not give Jupyter's token")?;
    save_token(remote, &token)?;
    let local = forward(remote, server.port, None)?;
    wait_answer(
        local,
        &token,
        Instant::now(),
        Duration::from_secs(remote.profile.connect_timeout),
    )
    .await?;
    if browser {
        show(remote, local, &token, true)
    } else {
        crate::outln!("http://127.0.0.1:{local}/?token={}", ui::clean(&token));
        Ok(Exit::Success)
    }
}

async fn status(remote: &Remote) -> Result<Exit> {
    let Some(server) = query(remote, false).await? else {
        crate::outln!("jupyter: not running (start it with `fenton jupyter start`)");
        return Ok(Exit::Failure);
    };
    crate::outln!("jupyter: running");
    crate::outln!("pid:     {}", server.pid);
    crate::outln!("port:    {} (on the box)", server.port);
    crate::outln!("uptime:  {}", ui::duration(server.uptime));
    crate::outln!("dir:     {}", ui::clean(&server.dir));
    // Without the token Jupyter answers 403: that is enough to know the forward reaches it.
    match recorded(remote) {
        Some((local, port))
            if port == server.port && held(remote, local, port) && probe(local, None).is_some() =>
        {
            crate::outln!(
                "url:     http://127.0.0.1:{local}/  (with its token: `fenton jupyter url`)"
            )
        }
        _ => {
            crate::outln!("url:     none: the forward is down (`fenton jupyter open` restores it)")
        }
    }
    Ok(Exit::Success)
}

async fn stop(remote: &Remote) -> Result<Exit> {
    let reply = script(
        remote,
        &["stop".to_string(), sh::path(&state_dir(remote))],
        "",
    )
    .await?;
    // The local port and the token are kept for the next start: the same URL.
    if let Some((local, port)) = recorded(remote) {
        if held(remote, local, port) {
            remote.release_forward(local)?;
        }
    }
    let _ = fs::remove_file(remote.state_file("jupyter.html"));
    match reply.kind.as_str() {
        "stopped" => ui::info(format_args!("stopped Jupyter (pid {})", reply.rest)),
        _ => ui::info(format_args!("Jupyter was not running on the box")),
    }
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse() {
        let reply = Reply::parse("running\npid 42\nport 8888\nstarted 100\nnow 130\ndir /x y\n");
        assert_eq!(reply.kind, "running");
        let server = Server::from(&reply).unwrap();
        assert_eq!((server.pid, server.port, server.uptime), (42, 8888, 30));
        let reply = Reply::parse("died\nlog-begin\nsh: 1: nope: not found\n");
        assert_eq!(reply.log, ["sh: 1: nope: not found"]);
        assert_eq!(missing(&reply.log), Some("nope"));
        let reply = Reply::parse("busy 77 python3 -m http.server 8888 \n");
        assert_eq!(reply.rest, "77 python3 -m http.server 8888 ");
    }

    #[test]
    fn a_missing_program_is_named_without_the_wrapper() {
        let log = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        assert_eq!(
            missing(&log(&["./run.sh: 1: exec: jupyter: not found"])),
            Some("jupyter")
        );
        assert_eq!(
            missing(&log(&["./run.sh: line 9: jupyter-lab: command not found"])),
            Some("jupyter-lab")
        );
        assert_eq!(
            missing(&log(&["ModuleNotFoundError: No module named 'x'"])),
            None
        );
        assert_eq!(unwrapped("./run.sh: 12: boom"), "boom");
        assert_eq!(
            unwrapped("Traceback (most recent call last):"),
            "Traceback (most recent call last):"
        );
    }

    #[test]
    fn tokens_are_long_and_new() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 48);
        assert_ne!(a, b);
    }
}
