//! The connection to the box: one shared OpenSSH ControlMaster per profile, reused by every
//! command through the `openssh` crate's native mux client, so a warm command costs one channel
//! instead of a handshake. Interactive commands exec the system `ssh -t` through the same master.

pub mod holder;
mod master;
mod mux;
pub use master::on_path;
pub mod scripts;
pub mod sh;
pub mod ssh_config;

use std::convert::Infallible;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use openssh::Session;

use crate::config::{expand_home, Profile};
use crate::exit::{Exit, SshFailed};
use crate::ui;

/// A profile's box, and where its shared connection lives on this machine.
pub struct Remote {
    pub name: String,
    pub profile: Profile,
    /// The config file the profile came from, for the forwarder fenton starts.
    pub config_path: Option<PathBuf>,
    control: PathBuf,
}

/// sshd caps the sessions on one connection (MaxSessions, 10 unless set): past the cap, a
/// command's session goes on another shared connection, up to this many in all.
const CONNECTIONS: usize = 4;
/// How long every connection may refuse a session before fenton gives up.
const SESSION_WAIT: Duration = Duration::from_secs(20);
/// How long the first connections refuse before fenton opens another (a handshake).
const OVERFLOW_AFTER: Duration = Duration::from_millis(250);
/// How long a remote step that should take milliseconds may take before fenton gives up.
pub const STEP_LIMIT: Duration = Duration::from_secs(20);
/// How long a session may take to open before fenton asks whether its master still answers.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

impl Remote {
    pub fn new(name: String, profile: Profile) -> Result<Remote> {
        let dir = master::control_dir()?;
        let stem = master::socket_stem(&name, &profile);
        Ok(Remote {
            control: dir.join(stem),
            name,
            profile,
            config_path: None,
        })
    }

    /// Where the shared connection's control socket is.
    pub fn control_path(&self) -> &std::path::Path {
        &self.control
    }

    /// The options every ssh invocation for this profile carries, before the destination.
    pub fn ssh_options(&self) -> Vec<OsString> {
        self.ssh_options_at(&self.control)
    }

    /// [`Remote::ssh_options`] for the shared connection at `control`.
    fn ssh_options_at(&self, control: &Path) -> Vec<OsString> {
        let p = &self.profile;
        let mut args: Vec<OsString> = Vec::new();
        if let Some(config) = &p.ssh_config {
            args.push("-F".into());
            args.push(expand_home(config).into());
        }
        if let Some(user) = &p.user {
            args.push("-l".into());
            args.push(user.into());
        }
        if let Some(port) = p.port {
            args.push("-p".into());
            args.push(port.to_string().into());
        }
        if let Some(identity) = &p.identity_file {
            args.push("-i".into());
            args.push(expand_home(identity).into());
        }
        for (keyword, value) in self.shared_options(control) {
            args.push("-o".into());
            args.push(format!("{keyword}={value}").into());
        }
        args
    }

    /// The ssh options fenton gives every connection to this box besides the profile's own
    /// (host, user, port, key, ssh config), as (keyword, value) in ssh_config's syntax: the
    /// command line and the Host entry of `fenton ssh-config` are both made from these.
    pub fn shared_options(&self, control: &Path) -> Vec<(&'static str, String)> {
        // `%` would be expanded by ssh as a token.
        let control = control.to_string_lossy().replace('%', "%%");
        vec![
            ("ControlPath", control),
            ("ConnectTimeout", self.profile.connect_timeout.to_string()),
            ("ServerAliveInterval", "5".into()),
            ("ServerAliveCountMax", "3".into()),
            ("StrictHostKeyChecking", "accept-new".into()),
        ]
    }

    /// `ssh` with this profile's options, reusing the shared connection and never opening one.
    pub fn ssh_command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new("ssh");
        cmd.args(self.ssh_options())
            .args(["-o", "ControlMaster=no"]);
        cmd
    }

    /// A file of this profile's next to its control socket (private directory), e.g. a log.
    pub fn state_file(&self, extension: &str) -> PathBuf {
        self.control.with_extension(extension)
    }

    /// The destination words that end an ssh command line.
    pub fn destination(&self) -> [&str; 2] {
        ["--", &self.profile.host]
    }

    /// Where shared connection `i` has its control socket: the first is the profile's own,
    /// the others take the sessions the first has no room for.
    fn connection(&self, i: usize) -> PathBuf {
        match i {
            0 => self.control.clone(),
            i => {
                let mut name = self.control.file_name().unwrap_or_default().to_owned();
                name.push(format!("-{}", i + 1));
                self.control.with_file_name(name)
            }
        }
    }

    fn mux(control: &Path) -> Session {
        Session::resume_mux(
            control.to_path_buf().into_boxed_path(),
            Some(control.with_extension("log").into_boxed_path()),
        )
    }

    /// A mux session over the shared connection, opening the connection first if it is not up.
    pub async fn session(&self) -> Result<Session> {
        master::open(self, &self.control).await?;
        Ok(Self::mux(&self.control))
    }

    /// The shared connection, if one is up and answering.
    pub async fn live_session(&self) -> Option<Session> {
        self.live_at(&self.control).await
    }

    async fn live_at(&self, control: &Path) -> Option<Session> {
        match master::state(control).await {
            master::State::Alive => Some(Self::mux(control)),
            master::State::Gone => None,
            master::State::Hung => {
                // Only `master::open`, under its lock, may replace the master: a second
                // command must not end the one a first has just opened.
                ui::debug(format_args!(
                    "the shared connection at {} is not answering",
                    control.display()
                ));
                None
            }
        }
    }

    /// Starts `line` on the box in a session of its own, with this stdin, stdout and stderr.
    /// When a connection's master refuses the session (sshd's MaxSessions), the command goes
    /// on the next connection, opened if need be, and waits (briefly, at random, so that
    /// many commands do not retry in step) while all are full; a master that does not open
    /// a session in time is replaced.
    async fn spawn(
        &self,
        line: &str,
        stdio: [fn() -> openssh::Stdio; 3],
    ) -> Result<openssh::Child<Arc<Session>>> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(10);
        // The connections this command may open; existing ones it uses anyway.
        let mut may_open = 1;
        // The fewest sessions a refusing connection held: sshd's cap, where that is known.
        let mut cap = None;
        let mut gave_up_opening = false;
        loop {
            let mut refused = 0;
            for i in 0..CONNECTIONS {
                let control = self.connection(i);
                let session = if i < may_open {
                    match master::open(self, &control).await {
                        Ok(()) => Self::mux(&control),
                        Err(e) if i == 0 => return Err(e),
                        Err(e) => {
                            // The box may refuse more connections too (MaxStartups): wait
                            // for room on those that are up.
                            ui::debug(format_args!("no further shared connection: {e:#}"));
                            may_open = i;
                            gave_up_opening = true;
                            break;
                        }
                    }
                } else if let Some(session) = self.live_at(&control).await {
                    session
                } else {
                    continue;
                };
                let mut command = Arc::new(session).arc_raw_command(line);
                command
                    .stdin(stdio[0]())
                    .stdout(stdio[1]())
                    .stderr(stdio[2]());
                // The box confirms a session over the link: a slow or dead link is the
                // master's keep-alives to judge, a master that stops answering is ours.
                let spawn = command.spawn();
                tokio::pin!(spawn);
                let spawned = loop {
                    tokio::select! {
                        spawned = &mut spawn => break Some(spawned),
                        () = tokio::time::sleep(OPEN_TIMEOUT) => {
                            if master::state(&control).await != master::State::Alive {
                                break None;
                            }
                        }
                    }
                };
                match spawned {
                    Some(Ok(child)) => return Ok(child),
                    Some(Err(openssh::Error::SshMux(
                        openssh_mux_client::Error::RequestFailure(reason),
                    ))) => {
                        let clients = master::clients(&control);
                        ui::debug(format_args!(
                            "{} refused a session ({reason}) with {clients:?} open",
                            control.display()
                        ));
                        if let Some(n) = clients.filter(|&n| n > 0) {
                            cap = Some(cap.map_or(n, |c: usize| c.min(n)));
                        }
                        refused += 1;
                    }
                    Some(Err(e)) => return Err(self.lost(e)),
                    None => {
                        // A master that stopped answering after its check: replace it.
                        master::end_hung(self, &control, master::CHECK_TIMEOUT);
                    }
                }
            }
            let waited = start.elapsed();
            if waited > SESSION_WAIT && refused == 0 {
                return Err(SshFailed(format!(
                    "the shared connection to {} opened no session within {} s: its ssh master on this machine is stuck; run `fenton disconnect` and try again",
                    self.profile.host,
                    SESSION_WAIT.as_secs()
                ))
                .into());
            }
            if waited > SESSION_WAIT {
                let allows = match cap {
                    Some(1) => "the box allows 1 session per connection".into(),
                    Some(n) => format!("the box allows {n} sessions per connection"),
                    None => "the box allows only so many sessions per connection".into(),
                };
                return Err(SshFailed(format!(
                    "{} refused a new session on each of {refused} shared connections for {} s: {allows} (sshd MaxSessions), and fenton commands that stay (logs -f, status --watch, fs mount) hold one each; end some, or raise MaxSessions in the box's sshd_config",
                    self.profile.host,
                    SESSION_WAIT.as_secs(),
                ))
                .into());
            }
            if may_open < CONNECTIONS && waited >= OVERFLOW_AFTER && !gave_up_opening {
                may_open += 1;
                continue;
            }
            let jitter = Duration::from_millis(fastrand::u64(0..=pause.as_millis() as u64));
            tokio::time::sleep(pause + jitter).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Opens the shared connection unless its master answers; true when it had to be opened.
    pub async fn connect(&self) -> Result<bool> {
        if master::state(&self.control).await == master::State::Alive {
            return Ok(false);
        }
        master::open(self, &self.control).await?;
        Ok(true)
    }

    /// [`Remote::connect`], sure that the box answers: a master answers locally even when
    /// the link or the box has died, so only a round trip tells, and its keep-alives end it
    /// within the time that takes; then a new one is opened. For `fenton connect` and
    /// forwards, which the master takes without asking the box.
    pub async fn connect_verified(&self) -> Result<bool> {
        if master::state(&self.control).await == master::State::Alive {
            let round_trip = self
                .within(STEP_LIMIT, "answering", self.output("exit 0", &[]))
                .await;
            match round_trip {
                Ok(_) => return Ok(false),
                Err(e) if master::state(&self.control).await == master::State::Alive => {
                    return Err(e)
                }
                Err(e) => ui::debug(format_args!("reconnecting: {e:#}")),
            }
        }
        master::open(self, &self.control).await?;
        Ok(true)
    }

    /// Closes the shared connections; false when none was open.
    pub async fn disconnect(&self) -> Result<bool> {
        // Asked all at once: a stopped master takes the whole check timeout to tell.
        let mut checks = tokio::task::JoinSet::new();
        for i in 0..CONNECTIONS {
            let control = self.connection(i);
            checks.spawn(async move {
                let state = master::state(&control).await;
                (control, state)
            });
        }
        let mut any = false;
        while let Some(Ok((control, state))) = checks.join_next().await {
            any |= master::close(self, &control, state)?;
        }
        Ok(any)
    }

    /// Runs a remote command line with our stdin, stdout and stderr; its exit status is ours.
    ///
    /// The command's output comes through pipes that are copied here until the master closes
    /// them: the mux master reports the exit status as soon as the box sends it, which can be
    /// before it has written the last of the output to descriptors passed to it, and what it
    /// has not written when the control connection closes is lost. A pipe's end of file is
    /// the master saying it wrote everything.
    pub async fn exec(&self, line: &str) -> Result<Exit> {
        // Not the login shell's last command, so a command killed by a signal still leaves
        // a status (128+N, as a shell reports it) instead of a session without one.
        let line = format!("{line}; exit");
        ui::trace_remote(&line);
        let (inherit, piped) = (openssh::Stdio::inherit, openssh::Stdio::piped);
        let mut child = self.spawn(&line, [inherit, piped, piped]).await?;
        let stdout = child.stdout().take();
        let stderr = child.stderr().take();
        let finished = async {
            let copied = tokio::join!(
                copy_to_eof(stdout, Ours::Stdout),
                copy_to_eof(stderr, Ours::Stderr),
            );
            (child.wait().await, copied)
        };
        let (status, copied) = tokio::select! {
            finished = finished => finished,
            _ = tokio::signal::ctrl_c() => return Ok(Exit::Interrupted),
        };
        let code = self.code(status)?;
        for (stream, copied) in [("stdout", copied.0), ("stderr", copied.1)] {
            if let Err(e) = copied {
                anyhow::bail!(
                    "cannot write the command's {stream} here ({e}): the rest of it was lost; \
                     make room where it goes (or send it elsewhere) and run the command again"
                );
            }
        }
        if let Some(signal) = signal_of(code) {
            ui::info(format_args!(
                "the command on the box ended with status {code}: killed by signal {signal}"
            ));
        }
        Ok(Exit::from_code(code))
    }

    /// Runs a remote command line, feeding it `input`, and returns its exit code, stdout and
    /// stderr. Scripts go this way (`sh -s` reading the script on stdin), so no login shell
    /// parses them.
    pub async fn output(&self, line: &str, input: &[u8]) -> Result<Output> {
        let mut stdout = Vec::new();
        let mut sink = |chunk: &[u8]| {
            stdout.extend_from_slice(chunk);
            Ok(true)
        };
        let out = self.run_fed(line, input, true, &mut sink).await?;
        Ok(Output { stdout, ..out })
    }

    /// `work` (a script's round trip) within `limit`: past it, an error that names what did
    /// not finish (`what`, e.g. "listing the jobs"). The box's own scripts bound what can
    /// stick there (tmux, df, nvidia-smi) more tightly, so this is the last word, not the
    /// usual one.
    pub async fn within<T>(
        &self,
        limit: Duration,
        what: &str,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(limit, work).await {
            Ok(out) => out,
            Err(_) => anyhow::bail!(
                "the box {} did not finish {what} within {} s (a stopped tmux server, a hung disk or a machine out of memory?): look with `fenton ssh`, or `fenton doctor`",
                self.profile.host,
                limit.as_secs()
            ),
        }
    }

    /// Runs a remote command line fed `input`, handing each line of its stdout to `each` as it
    /// comes, until the command ends or `each` says stop (false). Returns the exit code (-1
    /// when stopped early) and what the command said on stderr.
    pub async fn stream_lines(
        &self,
        line: &str,
        input: &[u8],
        mut each: impl FnMut(&str) -> bool,
    ) -> Result<Output> {
        let mut pending = Vec::new();
        let mut sink = |chunk: &[u8]| {
            pending.extend_from_slice(chunk);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let text = String::from_utf8_lossy(&pending[..end]).into_owned();
                pending.drain(..=end);
                if !each(&text) {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        let out = self.run_fed(line, input, true, &mut sink).await?;
        if out.code != -1 && !pending.is_empty() {
            each(&String::from_utf8_lossy(&pending));
        }
        Ok(out)
    }

    /// Runs a remote command line fed `input`, handing its stdout to `sink` as it arrives (its
    /// stderr goes to ours), and returns its exit code. A dropped connection is an
    /// [`SshFailed`] error, raised after `sink` has seen every byte that did arrive; an error
    /// from `sink` (a closed stdout) is returned as it is.
    pub async fn stream(
        &self,
        line: &str,
        input: &[u8],
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<i32> {
        let mut sink = |chunk: &[u8]| sink(chunk).map(|()| true);
        Ok(self.run_fed(line, input, false, &mut sink).await?.code)
    }

    /// The one way a command fed `input` runs: its stdout goes to `sink` chunk by chunk as it
    /// arrives (the sink answers false to stop early: code -1), its stderr is captured or
    /// passed through to ours.
    async fn run_fed(
        &self,
        line: &str,
        input: &[u8],
        capture_stderr: bool,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<bool>,
    ) -> Result<Output> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        ui::trace_remote(line);
        // stderr is a pipe even when it is passed through: see `exec`.
        let mut child = self.spawn(line, [openssh::Stdio::piped; 3]).await?;
        let mut stdin = child.stdin().take();
        let mut stdout = child.stdout().take();
        let mut stderr = child.stderr().take();
        let mut out = Output::default();
        let finished = {
            let feed = async {
                if let Some(stdin) = stdin.as_mut() {
                    // A command that exits without reading its input is not an error.
                    let _ = stdin.write_all(input).await;
                }
                drop(stdin);
            };
            let read_out = async {
                let Some(stdout) = stdout.as_mut() else {
                    return std::io::Result::Ok(true);
                };
                let mut buf = vec![0u8; 64 * 1024];
                // A read error is the connection going away: the exit status below says so.
                while let Ok(n) = stdout.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if !sink(&buf[..n])? {
                        return Ok(false);
                    }
                }
                Ok(true)
            };
            let read_err = async {
                if capture_stderr {
                    if let Some(s) = stderr.as_mut() {
                        let _ = s.read_to_end(&mut out.stderr).await;
                    }
                } else {
                    // Where our stderr cannot take it, no message could say so either.
                    let _ = copy_to_eof(stderr.as_mut(), Ours::Stderr).await;
                }
            };
            tokio::pin!(feed, read_out, read_err);
            let (mut fed, mut err_done) = (false, false);
            // Stopping early must not wait for the command's stderr to end.
            let finished = loop {
                tokio::select! {
                    () = &mut feed, if !fed => fed = true,
                    () = &mut read_err, if !err_done => err_done = true,
                    r = &mut read_out => break r?,
                }
            };
            if finished && !err_done {
                read_err.await;
            }
            finished
        };
        out.code = if finished {
            self.code(child.wait().await)?
        } else {
            -1
        };
        Ok(out)
    }

    /// Replaces fenton with the system `ssh` over the shared connection, for anything that
    /// needs a terminal. `line` is remote shell text built by `sh`; none means a login shell.
    pub fn exec_interactive(&self, line: Option<&str>) -> Result<Infallible> {
        let runtime = runtime()?;
        runtime.block_on(self.connect())?;
        let mut cmd = self.ssh_command();
        if line.is_some() && std::io::stdin().is_terminal() {
            cmd.arg("-t");
        }
        cmd.args(self.destination());
        if let Some(line) = line {
            cmd.arg(line);
        }
        ui::trace_command("ssh", cmd.get_args());
        let error = cmd.exec();
        Err(error).context("cannot run ssh")
    }

    /// The exit code of a finished remote command. The mux client reports 127 (command not
    /// found) as an error; here it is the code it is.
    fn code(&self, status: Result<std::process::ExitStatus, openssh::Error>) -> Result<i32> {
        match status {
            Ok(status) => Ok(status.code().unwrap_or(255)),
            Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(127),
            // The master is still there: the box ended the session without a status, which
            // sshd does when the session's own process is killed by a signal.
            Err(openssh::Error::RemoteProcessTerminated)
                if std::os::unix::net::UnixStream::connect(&self.control).is_ok() =>
            {
                Err(SshFailed(format!(
                    "the command on {} ended without an exit status: it or its shell was \
                     killed by a signal on the box",
                    self.profile.host
                ))
                .into())
            }
            Err(e) => Err(self.lost(e)),
        }
    }

    /// The shared connection went away under a command: almost always the link or the box
    /// stopped answering and the master's keep-alives gave up.
    fn lost(&self, error: openssh::Error) -> anyhow::Error {
        SshFailed(format!(
            "lost the connection to {} ({error}): the link or the box stopped answering; \
             run the command again to reconnect, or `fenton doctor` to see why",
            self.profile.host
        ))
        .into()
    }
}

/// One of fenton's own output streams, where a remote command's output goes.
#[derive(Clone, Copy)]
enum Ours {
    Stdout,
    Stderr,
}

/// Copies a remote command's output stream to ours until the master closes it. When ours
/// cannot be written the copy ends and drops the pipe, so the command on the box gets
/// SIGPIPE, as it would under plain ssh; that is no error when a reader (such as `head`) went
/// away, and the error otherwise (a full disk): output must not be lost without a word.
async fn copy_to_eof(
    from: Option<impl tokio::io::AsyncRead + Unpin>,
    to: Ours,
) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    let Some(mut from) = from else { return Ok(()) };
    let mut buf = vec![0u8; 64 * 1024];
    // A read error is the connection going away: the exit status says so.
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let (back, written) = tokio::task::spawn_blocking(move || {
            let written = write_all_waiting(to, &buf[..n]);
            (buf, written)
        })
        .await
        .map_err(std::io::Error::other)?;
        buf = back;
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes all of `buf` to ours (a blocking call). A descriptor that another program sharing
/// it (a terminal, a parent's pipe) made non-blocking answers "would block" when full: this
/// waits until it takes more, as ssh does, where a plain write would fail and the rest of
/// the output would be lost.
fn write_all_waiting(to: Ours, buf: &[u8]) -> std::io::Result<()> {
    use nix::errno::Errno;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    let fd = match to {
        Ours::Stdout => stdout.as_fd(),
        Ours::Stderr => stderr.as_fd(),
    };
    let mut at = 0;
    while at < buf.len() {
        match nix::unistd::write(fd, &buf[at..]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => at += n,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => match poll(
                &mut [PollFd::new(fd, PollFlags::POLLOUT)],
                PollTimeout::NONE,
            ) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The signal a shell's status of 128+N reports, as `9 (KILL)`; none for the two a shell
/// keeps quiet about (INT: the user pressed Ctrl-C; PIPE: the reader went away, as `| head`).
fn signal_of(code: i32) -> Option<String> {
    use nix::sys::signal::Signal;
    let signal = Signal::try_from(code.checked_sub(128)?).ok()?;
    if matches!(signal, Signal::SIGINT | Signal::SIGPIPE) {
        return None;
    }
    Some(format!(
        "{} ({})",
        signal as i32,
        signal.as_str().trim_start_matches("SIG")
    ))
}

/// What a remote command left.
#[derive(Debug, Default)]
pub struct Output {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The async runtime every command that talks to the box runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
