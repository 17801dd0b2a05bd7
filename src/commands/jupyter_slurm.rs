//! `fenton jupyter` on a Slurm profile: the notebook is a batch job with the profile's
//! resources, and the server is reached from here through the login node.
//!
//! One script on the login node (`scripts/jupyter-slurm.sh`) submits the job, reports the
//! queue as it goes (state, reason, Slurm's estimated start) and, once the job runs, decides
//! how the server listens: on the node's loopback when the login node may ssh to the node (an
//! ssh there, "the hop", forwards a private Unix socket in the state directory to it), else
//! on the node's address, which `start`, `status` and `doctor` then say, since anyone on the
//! cluster network can reach it (its token still guards it). The forward from here goes to
//! the socket, or to the node's address and port, held by fenton's forwarder as a box's is,
//! so that a saved URL outlives the shared connection (`remote::holder`). The token is
//! made here and travels as on a box: inside the script on stdin, into a 0600 file that
//! Jupyter reads through `JUPYTER_TOKEN_FILE`.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::jupyter::{answered, last_line, missing, new_token, probe, show, unwrapped, Reply};
use super::Ctx;
use crate::cli::{JupyterCommand, JupyterStartArgs};
use crate::exit::Exit;
use crate::remote::holder::{Forward, Opened};
use crate::remote::{scripts, sh, Remote, STEP_LIMIT};
use crate::status::slurm::duration;
use crate::ui;

pub async fn run(ctx: &Ctx, remote: &Remote, command: JupyterCommand) -> Result<Exit> {
    match command {
        JupyterCommand::Start(args) => {
            let channels = super::notify::files(&ctx.config()?.file.notify)?;
            start(remote, args, &channels).await
        }
        JupyterCommand::Stop => stop(remote).await,
        JupyterCommand::Status => status(remote).await,
        JupyterCommand::Open => open(remote, true).await,
        JupyterCommand::Url => open(remote, false).await,
    }
}

/// Where fenton keeps the notebook's state on the cluster's shared filesystem.
pub fn state_dir(remote: &Remote) -> String {
    format!(
        "{}/jupyter-slurm",
        remote.profile.remote_dir.trim_end_matches('/')
    )
}

/// The script's input: its arguments and variables first (inside the script, never on a
/// command line), then the script.
fn input(args: &[String], vars: &[String]) -> String {
    format!(
        "set -- {}\n{}\n{}",
        args.join(" "),
        vars.join("\n"),
        scripts::jupyter_slurm()
    )
}

/// Runs a short action of the script (status, stop) and parses its answer.
async fn script(remote: &Remote, args: &[String], limit: Duration) -> Result<Reply> {
    let what = format!("fenton's Slurm Jupyter script ({})", args[0]);
    let out = remote
        .within(
            limit,
            &what,
            scripts::output(remote, "sh -s", &input(args, &[])),
        )
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.code != 0 || stdout.is_empty() {
        bail!(
            "the login node could not run fenton's Jupyter script (status {}): {}",
            out.code,
            last_line(&String::from_utf8_lossy(&out.stderr))
        );
    }
    Ok(Reply::parse(&stdout))
}

/// The notebook's job as the login node reports it.
struct Notebook {
    job: String,
    /// Slurm's state, node, reason, end (Unix), time left, limit.
    state: String,
    node: String,
    reason: String,
    end: Option<i64>,
    left: Option<u64>,
    limit: Option<u64>,
    /// `loopback` or the node's address.
    bind: String,
    addr: String,
    port: Option<u16>,
    socket: Option<String>,
    watcher: bool,
    /// When the watcher warned that the time limit is near (Unix, the login node's clock).
    warned: Option<i64>,
    now: Option<i64>,
    token: Option<String>,
}

impl Notebook {
    fn from(reply: &Reply) -> Notebook {
        let get = |k: &str| reply.fields.get(k).cloned().unwrap_or_default();
        let slurm = get("slurm");
        let mut f = slurm.split('|').map(str::to_string);
        let mut next = || f.next().unwrap_or_default();
        let (state, node, reason, end, left, limit) =
            (next(), next(), next(), next(), next(), next());
        Notebook {
            job: get("job"),
            state,
            node: if node.is_empty() { get("node") } else { node },
            reason,
            end: end.parse().ok(),
            left: duration(&left),
            limit: duration(&limit),
            bind: get("bind"),
            addr: get("addr"),
            port: reply.field("port").ok(),
            socket: reply.fields.get("socket").cloned(),
            watcher: reply.fields.contains_key("watcher"),
            warned: reply
                .fields
                .get("warned")
                .and_then(|w| w.split(' ').next()?.parse().ok()),
            now: reply.field("now").ok(),
            token: reply.fields.get("token").cloned(),
        }
    }

    fn loopback(&self) -> bool {
        self.bind == "loopback"
    }

    /// Where the forward from here goes on the login node's side.
    fn target(&self) -> Option<Target> {
        if self.loopback() {
            return self.socket.clone().map(Target::Socket);
        }
        Some(Target::Tcp(self.addr.clone(), self.port?))
    }

    /// How the server listens, in words.
    fn listens(&self) -> String {
        if self.loopback() {
            format!(
                "on {}'s loopback only, reached by an ssh hop from the login node",
                self.node
            )
        } else {
            format!(
                "on {}'s address {}: anyone on the cluster's network can reach it (its token still guards it), because the login node cannot ssh to {}",
                self.node, self.addr, self.node
            )
        }
    }

    /// `25m 10s left of 30m 0s`, flagged once the warning is due (see [`warning_before`]).
    fn time_left(&self) -> String {
        match (self.left, self.limit) {
            (Some(left), Some(limit)) => {
                let text = format!("{} left of {}", ui::duration(left), ui::duration(limit));
                if left <= warning_before(limit) {
                    format!("{text} (the allocation ends soon, and the notebook with it: save your work)")
                } else {
                    text
                }
            }
            _ => "no time limit".into(),
        }
    }
}

/// How long before its time limit the notebook warns: a tenth of the limit, at least one
/// minute and at most ten (the login node's watcher uses the same rule).
fn warning_before(limit: u64) -> u64 {
    (limit / 10).clamp(60, 600)
}

/// What the forward from here reaches on the login node: the hop's socket, or the node.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Socket(String),
    Tcp(String, u16),
}

impl Target {
    /// The forwarder's forward from 127.0.0.1:`local` here to it.
    fn forward(&self, local: u16) -> Forward {
        match self {
            Target::Socket(path) => Forward::socket(local, path, "jupyter"),
            Target::Tcp(host, port) => Forward {
                local,
                host: host.clone(),
                port: *port,
                kind: "jupyter".into(),
            },
        }
    }

    /// Whether `forward` goes to it.
    fn is(&self, forward: &Forward) -> bool {
        *forward == self.forward(forward.local)
    }

    fn text(&self) -> String {
        match self {
            Target::Socket(path) => path.clone(),
            Target::Tcp(host, port) => format!("{host}:{port}"),
        }
    }

    fn parse(text: &str) -> Option<Target> {
        if text.starts_with('/') {
            return Some(Target::Socket(text.to_string()));
        }
        let (host, port) = text.rsplit_once(':')?;
        Some(Target::Tcp(host.to_string(), port.parse().ok()?))
    }
}

/// Starts (or finds) the notebook's job; `channels` are the notification channels' files,
/// for the warning before its time limit.
async fn start(
    remote: &Remote,
    args: JupyterStartArgs,
    channels: &[(String, String)],
) -> Result<Exit> {
    let p = &remote.profile;
    let config = &p.jupyter;
    let port = args.port.unwrap_or(config.remote_port);
    let start_timeout = Duration::from_secs(config.start_timeout.max(1));
    let queue_timeout = Duration::from_secs(config.queue_timeout.max(1));
    let token = new_token()?;
    let options = super::cluster::profile_options(&p.slurm)?;
    let call = [
        "start".to_string(),
        sh::path(&state_dir(remote)),
        queue_timeout.as_secs().to_string(),
        start_timeout.as_secs().to_string(),
        sh::path(&config.dir),
        port.to_string(),
        sh::quote(&config.command),
        sh::quote(&config.setup),
    ];
    let notify_files: String = channels
        .iter()
        .map(|(name, content)| sh::write_file("fj_files", &format!("notify.d/{name}"), content))
        .collect();
    let vars = [
        sh::assign("notify_files", &notify_files),
        sh::assign("token", &token),
        sh::assign("sbatch_options", &sh::words(&options)),
        sh::assign("node_ssh", &sh::words(&config.node_ssh_options)),
    ];
    let spinner = ui::spinner("submitting a Jupyter job to Slurm…".into());
    let framed = scripts::Framed::new(&input(&call, &vars))?;
    remote.connect().await?;
    let mut ran = false;
    let mut lines: Vec<String> = Vec::new();
    let mut job = String::new();
    let mut ready = false;
    let mut queued_at: Option<Instant> = None;
    let mut reused = false;
    let answer = remote.stream_lines("sh -s", framed.input(), |line| {
        if !ran {
            ran = framed.is_mark(line);
            return true;
        }
        if ready {
            lines.push(line.to_string());
            return true;
        }
        let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
        match kind {
            "submitted" | "reused" => {
                job = rest.trim().to_string();
                reused = kind == "reused";
                let verb = if kind == "reused" {
                    "found Jupyter's job"
                } else {
                    "submitted Jupyter as job"
                };
                ui::debug(format_args!("{verb} {job}"));
                spinner.say(format!("job {job} submitted; waiting for Slurm…"));
            }
            "queue" => {
                queued_at.get_or_insert_with(Instant::now);
                spinner.say(queue_words(&job, rest));
            }
            "running" => {
                let node = rest.split(' ').next().unwrap_or("");
                spinner.say(format!("job {job} runs on {node}; starting Jupyter there…"));
            }
            "bind" => ui::debug(format_args!(
                "Jupyter will listen on {}",
                if rest == "loopback" {
                    "the node's loopback"
                } else {
                    rest
                }
            )),
            "ready" => {
                ready = true;
                lines.push(line.to_string());
            }
            _ => lines.push(line.to_string()),
        }
        true
    });
    let limit = queue_timeout + 2 * start_timeout + Duration::from_secs(p.connect_timeout + 60);
    let out = tokio::select! {
        out = tokio::time::timeout(limit, answer) => match out {
            Ok(out) => out?,
            Err(_) => bail!(
                "the login node {} did not finish starting Jupyter within {} s: see `fenton jupyter status`, or stop it with `fenton jupyter stop`",
                p.host,
                limit.as_secs()
            ),
        },
        _ = tokio::signal::ctrl_c() => {
            drop(spinner);
            // An abandoned start must not leave a job waiting for a notebook nobody opens.
            let _ = script(remote, &["stop".to_string(), sh::path(&state_dir(remote))], STEP_LIMIT).await;
            ui::info(format_args!("interrupted: cancelled Jupyter's job"));
            return Ok(Exit::Interrupted);
        }
    };
    if !ran {
        return Err(framed.unread(&p.host, &out));
    }
    let reply = Reply::parse(&lines.join("\n"));
    let waited = queued_at.map(|t| t.elapsed()).unwrap_or_default();
    let mask = |log: &[String]| -> String {
        let said: Vec<String> = log
            .iter()
            .map(|l| unwrapped(l.trim()).replace(&token, crate::config::MASK))
            .filter(|l| !l.is_empty())
            .collect();
        let tail = &said[said.len().saturating_sub(4)..];
        if tail.is_empty() {
            "its log is empty".into()
        } else {
            format!("its log says: {}", tail.join(" | "))
        }
    };
    match reply.kind.as_str() {
        "ready" => {}
        "refused" => {
            let said = lines
                .iter()
                .skip(1)
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" / ");
            bail!(
                "Slurm refused Jupyter's job ({}): {said}: `fenton doctor` checks the profile's [profile.{}.slurm] defaults against the cluster",
                if options.is_empty() { "no options".to_string() } else { options.join(" ") },
                remote.name
            )
        }
        "queue-timeout" => bail!(
            "Jupyter's job {job} waited {} in the queue ({}), past jupyter.queue_timeout ({} s), so fenton cancelled it: raise queue_timeout, or ask for less (`fenton status` shows what is free)",
            ui::duration(waited.as_secs()),
            queue_reason(&reply.rest),
            queue_timeout.as_secs()
        ),
        "gone" => bail!(
            "Jupyter's job {job} ended before it ran ({}); {}",
            reply.rest.trim(),
            mask(&reply.log)
        ),
        "died" if missing(&reply.log).is_some() => bail!(
            "`{}` is not found on the node, so Jupyter cannot start: install it where the nodes see it, or set jupyter.command (and jupyter.setup, e.g. \"module load python\") in profile {:?}",
            missing(&reply.log).unwrap_or_default(),
            remote.name
        ),
        "died" => bail!(
            "Jupyter's job {job} ended as it started (jupyter.command = {:?}); {}",
            config.command,
            mask(&reply.log)
        ),
        "timeout" => bail!(
            "Jupyter's job {job} ran but its server did not start within {} s, so fenton cancelled it (raise jupyter.start_timeout if the node is slow); {}",
            start_timeout.as_secs(),
            mask(&reply.log)
        ),
        "error" => bail!("{}", reply.rest),
        other => bail!(
            "the login node's Jupyter script answered {other:?}: is remote_dir writable there?"
        ),
    }
    let notebook = Notebook::from(&reply);
    let token = notebook
        .token
        .clone()
        .context("the login node did not give Jupyter's token")?;
    let target = notebook
        .target()
        .context("the login node did not say where Jupyter listens")?;
    spinner.say(format!(
        "forwarding a local port to Jupyter on {}…",
        notebook.node
    ));
    let preferred = args.local_port.unwrap_or(config.local_port);
    let local = forward(remote, &target, preferred, args.local_port.is_some())?;
    spinner.say(format!(
        "waiting for Jupyter to answer at http://127.0.0.1:{local}/ …"
    ));
    wait_answer(remote, local, &token, &notebook, start_timeout).await?;
    drop(spinner);
    let how = if reused {
        "was already running".to_string()
    } else {
        format!("waited {} in the queue", ui::duration(waited.as_secs()))
    };
    ui::info(format_args!(
        "Jupyter runs in Slurm job {} on {} (it {how}); {}",
        notebook.job,
        notebook.node,
        notebook.time_left()
    ));
    if notebook.loopback() {
        ui::info(format_args!("it listens {}", notebook.listens()));
    } else {
        ui::warn(format_args!("it listens {}", notebook.listens()));
    }
    show(remote, local, &token, !args.no_browser)
}

/// The queue in words: `job 12 waits in the queue (Resources), Slurm's estimate: 3m 10s`.
fn queue_words(job: &str, line: &str) -> String {
    let f: Vec<&str> = line.split('|').collect();
    let state = f.first().copied().unwrap_or("");
    if state.is_empty() {
        return format!("job {job} submitted; waiting for Slurm to list it…");
    }
    format!(
        "job {job} is {} in the queue ({})…",
        state.to_lowercase(),
        queue_reason(line)
    )
}

/// The pending reason of a `queue` line (`PENDING|node|reason|…`).
fn queue_reason(line: &str) -> String {
    match line.split('|').nth(2).map(str::trim) {
        None | Some("") | Some("None") => "no reason given".into(),
        Some(reason) => ui::clean(reason).into_owned(),
    }
}

/// Polls until Jupyter answers with the token through the forward. A forward whose every
/// connection the login node closes at once for a few seconds is said then, not after the
/// whole `timeout`: its sshd most likely forbids forwarding to the hop's socket.
async fn wait_answer(
    remote: &Remote,
    local: u16,
    token: &str,
    notebook: &Notebook,
    timeout: Duration,
) -> Result<()> {
    let started = Instant::now();
    let early = started + REFUSED_AFTER.min(timeout);
    if answered(local, token, early).await.is_err() {
        if let Some(Target::Socket(path)) = notebook.target() {
            let held = remote.held_forwards(true)?;
            let probe = held.iter().find(|l| l.forward.local == local);
            if probe.is_some_and(|l| l.answer.contains("at once")) {
                bail!(
                    "the login node closes every forwarded connection to Jupyter's hop ({path}) at once: its sshd forbids forwarding to Unix sockets (AllowStreamLocalForwarding in its sshd_config), or the hop died (`fenton jupyter start` brings it back); ask the cluster's admins to allow it, and `fenton jupyter stop` ends Jupyter's job {}",
                    notebook.job
                );
            }
        }
    }
    if let Err(said) = answered(local, token, started + timeout).await {
        bail!(
            "Jupyter's job {} runs on {}, but its server did not answer through http://127.0.0.1:{local}/ within {} s ({said}): its log is {}/log on the cluster; `fenton jupyter stop` ends the job",
            notebook.job,
            notebook.node,
            timeout.as_secs(),
            "remote_dir/jupyter-slurm"
        );
    }
    Ok(())
}

/// How long Jupyter may not answer through the forward before the forward itself is asked
/// whether the login node refuses it.
const REFUSED_AFTER: Duration = Duration::from_secs(5);

/// The local forward to the notebook, held by fenton's forwarder: on the recorded port (the
/// URL saved before), else on `preferred` (first when `insist`), else on the next free one.
fn forward(remote: &Remote, target: &Target, preferred: u16, insist: bool) -> Result<u16> {
    let _lock = crate::lock::exclusive(
        &remote.state_file("jupyter.lock"),
        Some(Duration::from_secs(30)),
        "forwarding a port to Jupyter",
    )?;
    let first = match recorded(remote) {
        Some((local, _)) if !insist => local,
        _ => preferred,
    };
    let held = remote.held_forwards(false)?;
    // A tunnel of the user's on that port is theirs, not Jupyter's.
    let others: Vec<u16> = held
        .iter()
        .filter(|l| l.forward.kind != "jupyter")
        .map(|l| l.forward.local)
        .collect();
    let mut local = first;
    loop {
        let opened = if others.contains(&local) {
            Opened::Busy
        } else {
            remote.hold_forward(&target.forward(local))?
        };
        if opened != Opened::Busy {
            break;
        }
        if local >= first.saturating_add(100) || local == u16::MAX {
            bail!(
                "no free local port in {first}..{local}: close what uses them, or set jupyter.local_port to another"
            );
        }
        local += 1;
    }
    if local != first {
        ui::info(format_args!(
            "local port {first} is busy: using {local} instead"
        ));
    }
    // Jupyter's forward from before, on another port, goes.
    for old in held
        .iter()
        .filter(|l| l.forward.kind == "jupyter" && l.forward.local != local)
    {
        remote.release_forward(old.forward.local)?;
    }
    let path = remote.state_file("jupyter-slurm");
    fs::write(&path, format!("{local} {}\n", target.text()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(local)
}

/// Ends the recorded forward, if the forwarder holds it.
fn release(remote: &Remote) -> Result<()> {
    if let Some((local, target)) = recorded(remote) {
        let held = remote.held_forwards(false)?;
        if held.iter().any(|l| {
            l.forward.local == local && l.forward.kind == "jupyter" && target.is(&l.forward)
        }) {
            remote.release_forward(local)?;
        }
    }
    Ok(())
}

/// The forward recorded here: (local port, where it goes).
fn recorded(remote: &Remote) -> Option<(u16, Target)> {
    let text = fs::read_to_string(remote.state_file("jupyter-slurm")).ok()?;
    let (local, target) = text.trim().split_once(' ')?;
    Some((local.parse().ok()?, Target::parse(target)?))
}

fn forget(remote: &Remote) {
    let _ = fs::remove_file(remote.state_file("jupyter-slurm"));
}

/// The notebook's job, with its token when asked for; None when no job of it is queued or
/// running.
async fn query(remote: &Remote, token: bool) -> Result<Option<Notebook>> {
    let mut args = vec!["status".to_string(), sh::path(&state_dir(remote))];
    if token {
        args.push("token".into());
    }
    let reply = script(remote, &args, STEP_LIMIT).await?;
    Ok((reply.kind == "running").then(|| Notebook::from(&reply)))
}

async fn status(remote: &Remote) -> Result<Exit> {
    let Some(n) = query(remote, false).await? else {
        crate::outln!("jupyter: not running (start it with `fenton jupyter start`)");
        return Ok(Exit::Failure);
    };
    if n.state != "RUNNING" {
        crate::outln!(
            "jupyter: job {} is {} ({})",
            ui::clean(&n.job),
            n.state.to_lowercase(),
            queue_reason(&format!("{}|{}|{}", n.state, n.node, n.reason))
        );
        return Ok(Exit::Success);
    }
    crate::outln!("jupyter:   running in Slurm job {}", ui::clean(&n.job));
    crate::outln!("node:      {}", ui::clean(&n.node));
    crate::outln!("listens:   {}", ui::clean(&n.listens()));
    crate::outln!("time:      {}", n.time_left());
    if let (Some(end), Some(now)) = (n.end, n.now) {
        if end > now {
            crate::outln!(
                "ends:      in {} (the login node's clock)",
                ui::duration((end - now) as u64)
            );
        }
    }
    if let (Some(at), Some(now)) = (n.warned, n.now) {
        crate::outln!(
            "warned:    {} ago that the time limit is near (and on your notification channels, if any)",
            ui::duration((now - at).max(0) as u64)
        );
    }
    if !n.watcher {
        crate::outln!(
            "watcher:   gone (`fenton jupyter start` brings the hop and its watcher back)"
        );
    }
    match (recorded(remote), n.target()) {
        (Some((local, was)), Some(now)) if was == now && probe(local, None).is_some() => {
            crate::outln!(
                "url:       http://127.0.0.1:{local}/  (with its token: `fenton jupyter url`)"
            )
        }
        _ => crate::outln!(
            "url:       none: the forward is down (`fenton jupyter open` restores it)"
        ),
    }
    Ok(Exit::Success)
}

async fn open(remote: &Remote, browser: bool) -> Result<Exit> {
    let Some(n) = query(remote, true).await? else {
        bail!("Jupyter is not running on the cluster: start it with `fenton jupyter start`");
    };
    let (Some(target), Some(token)) = (n.target(), n.token.clone()) else {
        bail!(
            "Jupyter's job {} is {} and its server is not reachable yet: `fenton jupyter start` waits for it",
            n.job,
            n.state.to_lowercase()
        );
    };
    let local = forward(remote, &target, remote.profile.jupyter.local_port, false)?;
    if browser {
        show(remote, local, &token, true)
    } else {
        crate::outln!("http://127.0.0.1:{local}/?token={}", ui::clean(&token));
        Ok(Exit::Success)
    }
}

async fn stop(remote: &Remote) -> Result<Exit> {
    let reply = script(
        remote,
        &["stop".to_string(), sh::path(&state_dir(remote))],
        Duration::from_secs(remote.profile.connect_timeout + 70),
    )
    .await?;
    release(remote)?;
    forget(remote);
    let _ = fs::remove_file(remote.state_file("jupyter.html"));
    let job = reply.rest.split(' ').next().unwrap_or("");
    match reply.kind.as_str() {
        "stopped" => ui::info(format_args!("cancelled Jupyter's Slurm job {job}")),
        "stuck" => bail!(
            "scancel did not end Jupyter's job {job} within 30 s (Slurm still shows it {}): see `fenton exec -- squeue -j {job}`",
            reply.rest.split(' ').nth(1).unwrap_or("").to_lowercase()
        ),
        _ => ui::info(format_args!("Jupyter was not running on the cluster")),
    }
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_answer_reads_as_a_notebook() {
        let reply = Reply::parse(
            "ready\njob 12\nslurm RUNNING|n1|None|1796169901|25:00|30:00\nnode n1\naddr 10.0.0.5\nport 8890\nbind loopback\nsocket /home/t/.fenton/jupyter-slurm/hop.sock\nwatcher 99\nnow 1796168401\ndir /home/t\ntoken abc\n",
        );
        let n = Notebook::from(&reply);
        assert_eq!(
            (n.job.as_str(), n.state.as_str(), n.node.as_str()),
            ("12", "RUNNING", "n1")
        );
        assert_eq!(
            (n.left, n.limit, n.port),
            (Some(1500), Some(1800), Some(8890))
        );
        assert_eq!(
            n.target(),
            Some(Target::Socket(
                "/home/t/.fenton/jupyter-slurm/hop.sock".into()
            ))
        );
        assert!(n.listens().contains("loopback only"));
        assert_eq!(n.time_left(), "25m 0s left of 30m 0s");
        assert_eq!(
            (
                warning_before(60),
                warning_before(1800),
                warning_before(36000)
            ),
            (60, 180, 600)
        );
        let n = Notebook::from(&Reply::parse(
            "ready\njob 12\nslurm RUNNING|n1|None|0|2:00|30:00\nnode n1\naddr 10.0.0.5\nport 8890\nbind 10.0.0.5\n",
        ));
        assert_eq!(n.target(), Some(Target::Tcp("10.0.0.5".into(), 8890)));
        assert!(n.listens().contains("anyone on the cluster's network"));
        assert!(n.time_left().contains("ends soon"), "{}", n.time_left());
    }

    #[test]
    fn recorded_targets_round_trip() {
        for t in [
            Target::Socket("/a b/hop.sock".into()),
            Target::Tcp("10.0.0.5".into(), 8888),
            Target::Tcp("node-1".into(), 1),
        ] {
            assert_eq!(Target::parse(&t.text()), Some(t.clone()));
        }
        assert_eq!(Target::parse("nonsense"), None);
        // The forwarder holds a socket target as a socket, a node's address as TCP.
        let hop = Target::Socket("/a b/hop.sock".into()).forward(8888);
        assert_eq!(hop, Forward::socket(8888, "/a b/hop.sock", "jupyter"));
        let node = Target::Tcp("10.0.0.5".into(), 8890);
        assert_eq!(
            (node.forward(9).host.as_str(), node.forward(9).port),
            ("10.0.0.5", 8890)
        );
        assert!(node.is(&node.forward(9)) && !node.is(&hop));
    }

    #[test]
    fn the_queue_is_said_in_words() {
        assert_eq!(
            queue_words("7", "PENDING||Resources|0|1:00:00|1:00:00"),
            "job 7 is pending in the queue (Resources)…"
        );
        assert_eq!(
            queue_words("7", ""),
            "job 7 submitted; waiting for Slurm to list it…"
        );
        assert_eq!(queue_reason("PENDING||None|"), "no reason given");
        assert_eq!(queue_reason("PENDING||\x1b[31mx|"), "^[[31mx");
    }
}
