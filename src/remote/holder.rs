//! The forwarder: one small process per profile, started by fenton and detached from the
//! terminal, that holds the profile's local forwards (Jupyter's and `fenton tunnel`'s).
//!
//! Forwards held by the ssh master die with it (sleep, a network change, `control_persist`).
//! This process listens on 127.0.0.1 itself and carries each accepted connection to the box as
//! one stream of the shared connection (what `ssh -W` asks the master for, see `mux`). When
//! the master has gone, the first connection opens it again, once, however many arrive at
//! that moment; the rest wait for that one. While nothing connects, nothing is held open to
//! the box. Every connection waits for the box at most `connect_timeout` + 3 s, then is
//! closed: a browser shows an error, nothing hangs. A master that opens no stream within that
//! time and does not answer a round trip either is ended, so the next connection makes a new
//! one instead of waiting on a link that died under it.
//!
//! A forward to a Unix socket on the box (a Slurm notebook's hop) cannot be such a stream
//! before OpenSSH 9.4: older masters (9.2 in Debian 12) open `direct-tcpip` for every stdio
//! forward, the port cut to 16 bits. For those the master is asked to listen on a socket in
//! the private directory (`ssh -O forward -L SOCK:PATH`) and each accepted connection is
//! carried to that; the master's forward is made again whenever nothing answers there (a new
//! master, or none: then it is opened again, as for a stream).
//!
//! It ends when its last forward is closed, on `stop` (`fenton disconnect --all`), after
//! `forward_idle_timeout` seconds without a connection (when set), and when its socket is
//! removed: the login session's runtime directory went (logout), or someone cleaned it.
//!
//! fenton commands talk to it on a Unix socket in the connection's private directory, one
//! line per request: `hello`, `open LOCAL HOST PORT KIND`, `open-socket LOCAL KIND PATH`,
//! `close LOCAL`, `list [probe]`, `stop`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::task::JoinSet;

use openssh::ForwardType;

use super::{master, mux, runtime, Remote};
use crate::ui;

/// What a forwarder answers to `hello`: another version is stopped and replaced.
const PROTOCOL: &str = "fenton-forwards 2";
/// The time past `connect_timeout` a connection waits for the box.
const MARGIN: Duration = Duration::from_secs(3);
/// How long a round trip through a master may take before it counts as dead.
const ROUND_TRIP: Duration = Duration::from_secs(3);
/// How long a greeted control connection is kept for the next forwarded connection. While
/// it is, the master counts a client, so its `ControlPersist` starts this much later.
const SPARE_KEEP: Duration = Duration::from_secs(5);
/// How long a connection whose both directions are done waits for the master to say the
/// stream has ended, before it lets go of the control connection (which ends it anyway).
const LINGER: Duration = Duration::from_secs(3);

/// One forward: 127.0.0.1:`local` here to `host`:`port` as the box sees it, or with `port`
/// 0 to the Unix socket at the path `host` on the box (see [`Forward::socket`]). `kind` says
/// whose it is (`jupyter`, `tunnel`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub local: u16,
    pub host: String,
    pub port: u16,
    pub kind: String,
}

impl Forward {
    /// A forward to the Unix socket at `path` on the box.
    pub fn socket(local: u16, path: &str, kind: &str) -> Forward {
        Forward {
            local,
            host: path.to_string(),
            port: 0,
            kind: kind.to_string(),
        }
    }

    /// Where it goes on the box, as `tunnel list` says it: `HOST:PORT` or the socket's path.
    pub fn target(&self) -> String {
        target(&self.host, self.port)
    }

    /// The line that asks a forwarder to hold it: a path may hold spaces, so it comes last.
    fn request(&self) -> String {
        match self.port {
            0 => format!("open-socket {} {} {}", self.local, self.kind, self.host),
            port => format!("open {} {} {port} {}", self.local, self.host, self.kind),
        }
    }
}

fn target(host: &str, port: u16) -> String {
    match port {
        0 => host.to_string(),
        port => format!("{host}:{port}"),
    }
}

/// A forward as `list` reports it.
#[derive(Debug)]
pub struct Listed {
    pub forward: Forward,
    /// Bytes carried to the box and from it.
    pub up: u64,
    pub down: u64,
    pub connections: u64,
    pub active: u64,
    pub failed: u64,
    /// `answers`, or why the box end did not (with `probe`); empty without.
    pub answer: String,
}

/// What `open` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    New,
    /// The forward was there already, to the same place.
    Already,
    /// The port was held by a forward to elsewhere, which now goes here.
    Moved,
    /// Something else listens on that local port.
    Busy,
}

impl Remote {
    fn forwarder_socket(&self) -> PathBuf {
        self.state_file("fwd.sock")
    }

    /// Sends one request to the forwarder; None when none runs.
    fn ask(&self, request: &str, limit: Duration) -> Result<Option<String>> {
        let socket = self.forwarder_socket();
        let mut stream = match StdUnixStream::connect(&socket) {
            Ok(stream) => stream,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                return Ok(None)
            }
            Err(e) => return Err(e).with_context(|| format!("cannot reach {}", socket.display())),
        };
        stream.set_read_timeout(Some(limit))?;
        stream.set_write_timeout(Some(limit))?;
        let talk = |stream: &mut StdUnixStream| -> std::io::Result<String> {
            stream.write_all(format!("{request}\n").as_bytes())?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer)?;
            Ok(answer)
        };
        match talk(&mut stream) {
            // One that was ending as we asked.
            Ok(answer) if answer.is_empty() => Ok(None),
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                Ok(None)
            }
            Ok(answer) => Ok(Some(answer)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => bail!(
                "fenton's forwarder for profile {:?} did not answer within {} s (stopped?): end it (its pid is in {}) and try again",
                self.name,
                limit.as_secs(),
                self.state_file("fwd.held").display()
            ),
            Err(e) => Err(e).context("lost fenton's forwarder mid-answer"),
        }
    }

    /// Whether a forwarder of this version answers; one of another version is stopped.
    fn forwarder_up(&self) -> Result<bool> {
        match self.ask("hello", Duration::from_secs(5))? {
            None => Ok(false),
            Some(text) if text.starts_with(&format!("{PROTOCOL} ")) => Ok(true),
            Some(_) => {
                ui::debug(format_args!(
                    "replacing a forwarder of another fenton version"
                ));
                let _ = self.ask("stop", Duration::from_secs(5));
                let deadline = Instant::now() + Duration::from_secs(5);
                while StdUnixStream::connect(self.forwarder_socket()).is_ok() {
                    if Instant::now() > deadline {
                        bail!("fenton's forwarder of another version does not stop: end it (its pid is in {})", self.state_file("fwd.held").display());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(false)
            }
        }
    }

    /// Starts the forwarder unless it runs; two commands at once start one.
    fn start_forwarder(&self) -> Result<()> {
        if self.forwarder_up()? {
            return Ok(());
        }
        let _lock = crate::lock::exclusive(
            &self.state_file("fwd.lock"),
            Some(Duration::from_secs(15)),
            "starting the forwarder",
        )?;
        if self.forwarder_up()? {
            return Ok(());
        }
        let socket = self.forwarder_socket();
        let log_path = self.state_file("fwd.log");
        let log = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&log_path)
            .with_context(|| format!("cannot write {}", log_path.display()))?;
        let exe = std::env::current_exe().context("cannot tell where fenton's program is")?;
        let mut cmd = Command::new(exe);
        if let Some(config) = &self.config_path {
            cmd.arg("--config").arg(config);
        }
        cmd.arg("--profile")
            .arg(&self.name)
            .arg("hold-forwards")
            .arg("--socket")
            .arg(&socket);
        // It outlives us: it must not hold our stdout or stderr open, nor our directory (a
        // mount that could then not be unmounted).
        cmd.current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        ui::trace_command("fenton", cmd.get_args());
        let mut child = cmd.spawn().context("cannot start fenton's forwarder")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.forwarder_up()? {
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "fenton's forwarder exited at once ({status}): see {}",
                    log_path.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "fenton's forwarder did not start within 10 s: see {}",
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Holds a forward in the forwarder, starting it if need be.
    pub fn hold_forward(&self, forward: &Forward) -> Result<Opened> {
        let request = forward.request();
        // One that ends (its last forward just closed) as we ask is replaced, once.
        let mut answer = None;
        for _ in 0..2 {
            self.start_forwarder()?;
            answer = self.ask(&request, Duration::from_secs(10))?;
            if answer.is_some() {
                break;
            }
        }
        let answer = answer.context("fenton's forwarder went away as it was asked")?;
        match answer.trim() {
            "ok new" => Ok(Opened::New),
            "ok already" => Ok(Opened::Already),
            "ok moved" => Ok(Opened::Moved),
            "busy" => Ok(Opened::Busy),
            other => bail!(
                "fenton's forwarder could not listen on 127.0.0.1:{}: {}",
                forward.local,
                other.strip_prefix("error ").unwrap_or(other)
            ),
        }
    }

    /// Ends the forward on a local port; false when none was held there.
    pub fn release_forward(&self, local: u16) -> Result<bool> {
        let answer = self.ask(&format!("close {local}"), Duration::from_secs(10))?;
        Ok(answer.is_some_and(|a| a.trim() == "ok"))
    }

    /// The forwards held now, with their traffic; with `probe`, whether the box end of each
    /// answers (a stream opened to it through the shared connection, which opens it if gone).
    pub fn held_forwards(&self, probe: bool) -> Result<Vec<Listed>> {
        let (request, limit) = if probe {
            (
                "list probe",
                Duration::from_secs(self.profile.connect_timeout) + MARGIN + ROUND_TRIP * 2,
            )
        } else {
            ("list", Duration::from_secs(5))
        };
        let Some(answer) = self.ask(request, limit)? else {
            return Ok(vec![]);
        };
        Ok(answer.lines().filter_map(parse_listed).collect())
    }

    /// Stops the forwarder and with it every forward; false when none ran.
    pub fn stop_forwarder(&self) -> Result<bool> {
        Ok(self.ask("stop", Duration::from_secs(5))?.is_some())
    }
}

fn parse_listed(line: &str) -> Option<Listed> {
    let f: Vec<&str> = line.splitn(10, '\t').collect();
    if f.len() != 10 {
        return None;
    }
    Some(Listed {
        forward: Forward {
            local: f[0].parse().ok()?,
            host: f[1].to_string(),
            port: f[2].parse().ok()?,
            kind: f[3].to_string(),
        },
        up: f[4].parse().ok()?,
        down: f[5].parse().ok()?,
        connections: f[6].parse().ok()?,
        active: f[7].parse().ok()?,
        failed: f[8].parse().ok()?,
        answer: f[9].to_string(),
    })
}

/// A forward's counters.
#[derive(Default)]
struct Stats {
    up: AtomicU64,
    down: AtomicU64,
    connections: AtomicU64,
    active: AtomicU64,
    failed: AtomicU64,
}

struct Held {
    target: Arc<Mutex<(String, u16)>>,
    kind: String,
    stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

struct Holder {
    remote: Arc<Remote>,
    control: PathBuf,
    /// How long a connection waits for the box.
    bound: Duration,
    /// Counts the shared connections this process opened or ended: a connection that saw
    /// the master fail under generation N reopens it only if nobody did since.
    generation: AtomicU64,
    /// Held while the master is opened or ended; holds what the last opening said.
    flight: Arc<tokio::sync::Mutex<Option<String>>>,
    forwards: Mutex<BTreeMap<u16, Held>>,
    /// The forwards to a socket on the box that the master was asked to listen for, by
    /// local port: where each goes. Held while one is made.
    relays: tokio::sync::Mutex<BTreeMap<u16, String>>,
    /// A control connection to the master, greeted, ready for the next forwarded
    /// connection (which then waits for one exchange fewer), and when it was made.
    spare: Mutex<Option<(mux::Greeted, Instant)>>,
    /// Whether a spare is being made.
    greeting: std::sync::atomic::AtomicBool,
    /// Connections being carried now, and when the last one began or ended.
    active: AtomicU64,
    last_use: Mutex<Instant>,
}

/// The forwarder's socket and its identity, removed on the way out (if still ours), so that
/// a command that comes next finds none running instead of one that is ending.
static SOCKET: std::sync::OnceLock<(PathBuf, (u64, u64))> = std::sync::OnceLock::new();

fn leave(why: std::fmt::Arguments) -> ! {
    log(why);
    if let Some((path, identity)) = SOCKET.get() {
        let ours = std::fs::metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == *identity);
        if ours {
            let _ = std::fs::remove_file(path);
        }
    }
    std::process::exit(0);
}

fn log(args: std::fmt::Arguments) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    eprintln!("{}.{:03} {args}", now.as_secs(), now.subsec_millis());
}

/// Runs the forwarder for `remote` on `socket` until it has nothing left to do.
pub fn serve(remote: Remote, socket: &Path) -> Result<()> {
    if socket != remote.forwarder_socket() {
        bail!(
            "{} is not profile {:?}'s forwarder socket ({})",
            socket.display(),
            remote.name,
            remote.forwarder_socket().display()
        );
    }
    // Out of the terminal's session: its hangup and Ctrl-C are not ours.
    let _ = nix::unistd::setsid();
    let held_path = remote.state_file("fwd.held");
    let file = File::create(&held_path)
        .with_context(|| format!("cannot create {}", held_path.display()))?;
    // One that is ending lets go within moments; one that lives keeps it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut file = file;
    let mut life = loop {
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => break lock,
            Err((busy, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                file = busy;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                log(format_args!("another forwarder runs for this profile"));
                return Ok(());
            }
            Err((_, e)) => return Err(e).context("cannot lock the forwarder's file"),
        }
    };
    let _ = writeln!(life, "{}", std::process::id());
    let runtime = runtime()?;
    runtime.block_on(async move {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        let meta = std::fs::metadata(socket)?;
        let identity = (meta.dev(), meta.ino());
        let _ = SOCKET.set((socket.to_path_buf(), identity));
        let holder = Arc::new(Holder {
            bound: Duration::from_secs(remote.profile.connect_timeout) + MARGIN,
            control: remote.control_path().to_path_buf(),
            remote: Arc::new(remote),
            generation: AtomicU64::new(0),
            flight: Arc::new(tokio::sync::Mutex::new(None)),
            forwards: Mutex::new(BTreeMap::new()),
            relays: tokio::sync::Mutex::new(BTreeMap::new()),
            spare: Mutex::new(None),
            greeting: std::sync::atomic::AtomicBool::new(false),
            active: AtomicU64::new(0),
            last_use: Mutex::new(Instant::now()),
        });
        log(format_args!(
            "forwarder {} for profile {:?} listening on {}",
            std::process::id(),
            holder.remote.name,
            socket.display()
        ));
        tokio::spawn(watch(holder.clone(), socket.to_path_buf(), identity));
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(request(holder.clone(), stream));
                }
                Err(e) => {
                    log(format_args!("cannot accept a request: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

/// Ends the process when its socket is gone or replaced (the runtime directory was removed:
/// the login session ended), when idle past `forward_idle_timeout`, and when the config no
/// longer has its profile as it was: a forward must not keep a port for a box the profile
/// no longer names.
async fn watch(holder: Arc<Holder>, socket: PathBuf, identity: (u64, u64)) {
    let idle = holder.remote.profile.forward_idle_timeout;
    let config = holder.remote.config_path.clone();
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut seen = config.as_deref().and_then(modified);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(path) = &config {
            let now = modified(path);
            if now != seen {
                seen = now;
                if let Some(why) = profile_changed(&holder.remote, path) {
                    leave(format_args!("{why}: stopping"));
                }
            }
        }
        let now = std::fs::metadata(&socket).map(|m| (m.dev(), m.ino()));
        if now.ok() != Some(identity) {
            leave(format_args!(
                "{} was removed: the session that made it ended; stopping",
                socket.display()
            ));
        }
        {
            let mut spare = holder.spare.lock().unwrap();
            if spare
                .as_ref()
                .is_some_and(|(_, made)| made.elapsed() > SPARE_KEEP)
            {
                *spare = None;
            }
        }
        let quiet = holder.last_use.lock().unwrap().elapsed();
        if idle > 0 && holder.active.load(SeqCst) == 0 && quiet > Duration::from_secs(idle) {
            leave(format_args!(
                "no connection for {idle} s (forward_idle_timeout): stopping"
            ));
        }
    }
}

/// Why the config at `path` no longer holds `remote`'s profile as it was, if it does not; a
/// config that cannot be read (being written) says nothing yet.
fn profile_changed(remote: &Remote, path: &Path) -> Option<String> {
    let loaded = crate::config::load(Some(path)).ok()?;
    match loaded.profile(Some(&remote.name)) {
        Err(_) => Some(format!(
            "profile {:?} is gone from {}",
            remote.name,
            path.display()
        )),
        Ok((name, profile)) => {
            let now = Remote::new(name, profile).ok()?;
            (now.control_path() != remote.control_path()).then(|| {
                format!(
                    "profile {:?} now names another box in {}",
                    remote.name,
                    path.display()
                )
            })
        }
    }
}

/// Answers one request from a fenton command.
async fn request(holder: Arc<Holder>, mut stream: UnixStream) {
    let mut line = Vec::new();
    let read = async {
        let mut byte = [0u8; 1];
        while line.len() < 1024 && stream.read(&mut byte).await.ok()? == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        Some(())
    };
    if tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()
        .flatten()
        .is_none()
    {
        return;
    }
    let line = String::from_utf8_lossy(&line).into_owned();
    let words: Vec<&str> = line.split(' ').collect();
    let answer = match words[..] {
        ["hello"] => format!("{PROTOCOL} {}\n", std::process::id()),
        ["open", local, host, port, kind] => match (local.parse(), port.parse()) {
            (Ok(local), Ok(port)) if local != 0 && port != 0 => {
                holder.open(local, host, port, kind)
            }
            _ => "error a bad request\n".into(),
        },
        ["open-socket", ..] => match open_socket(&line) {
            Some((local, kind, path)) => holder.open(local, path, 0, kind),
            None => "error a bad request\n".into(),
        },
        ["close", local] => match local.parse() {
            Ok(local) => {
                let answer = holder.close(local).await;
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
                if holder.forwards.lock().unwrap().is_empty() {
                    leave(format_args!("no forward left: stopping"));
                }
                return;
            }
            Err(_) => "error a bad request\n".into(),
        },
        ["list"] => holder.list(false).await,
        ["list", "probe"] => holder.list(true).await,
        ["stop"] => {
            let _ = stream.write_all(b"ok\n").await;
            let _ = stream.shutdown().await;
            leave(format_args!("asked to stop"));
        }
        _ => "error a bad request\n".into(),
    };
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The local port, kind and path of an `open-socket` line. The path is absolute and holds
/// no tab or newline (`list` answers in such lines); it may hold spaces.
fn open_socket(line: &str) -> Option<(u16, &str, &str)> {
    let mut f = line.strip_prefix("open-socket ")?.splitn(3, ' ');
    let local = f.next()?.parse().ok().filter(|&l| l != 0)?;
    let kind = f.next().filter(|k| !k.is_empty())?;
    let path = f
        .next()
        .filter(|p| p.starts_with('/') && !p.contains(['\t', '\n']))?;
    Some((local, kind, path))
}

impl Holder {
    fn open(self: &Arc<Self>, local: u16, host: &str, port: u16, kind: &str) -> String {
        let mut forwards = self.forwards.lock().unwrap();
        if let Some(held) = forwards.get_mut(&local) {
            let mut target = held.target.lock().unwrap();
            if target.0 == host && target.1 == port {
                return "ok already\n".into();
            }
            log(format_args!(
                "127.0.0.1:{local} now goes to {} (was {})",
                self::target(host, port),
                self::target(&target.0, target.1)
            ));
            *target = (host.to_string(), port);
            held.kind = kind.to_string();
            return "ok moved\n".into();
        }
        // 127.0.0.1 only: nobody else on the network reaches the box through us.
        let listener = match std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, local))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(TcpListener::from_std)
        {
            Ok(listener) => listener,
            Err(e) if e.kind() == ErrorKind::AddrInUse => return "busy\n".into(),
            Err(e) => return format!("error {e}\n"),
        };
        log(format_args!(
            "holding 127.0.0.1:{local} -> {}",
            target(host, port)
        ));
        let target = Arc::new(Mutex::new((host.to_string(), port)));
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn(accept(
            self.clone(),
            listener,
            local,
            target.clone(),
            stats.clone(),
        ));
        forwards.insert(
            local,
            Held {
                target,
                kind: kind.to_string(),
                stats,
                task,
            },
        );
        "ok new\n".into()
    }

    async fn close(&self, local: u16) -> String {
        let held = self.forwards.lock().unwrap().remove(&local);
        let Some(held) = held else {
            return "none\n".into();
        };
        held.task.abort();
        // Once it has ended, the port is free and its connections are cut.
        let _ = held.task.await;
        if let Some(path) = self.relays.lock().await.remove(&local) {
            let listen = self.relay_path(local);
            if let Some(session) = self.remote.live_at(&self.control).await {
                let _ = session
                    .close_port_forward(ForwardType::Local, unix(&listen), unix(Path::new(&path)))
                    .await;
            }
            let _ = std::fs::remove_file(listen);
        }
        log(format_args!("closed 127.0.0.1:{local}"));
        "ok\n".into()
    }

    async fn list(self: &Arc<Self>, probe: bool) -> String {
        let snapshot: Vec<(u16, String, u16, String, Arc<Stats>)> = self
            .forwards
            .lock()
            .unwrap()
            .iter()
            .map(|(&local, held)| {
                let (host, port) = held.target.lock().unwrap().clone();
                (local, host, port, held.kind.clone(), held.stats.clone())
            })
            .collect();
        let mut probes = JoinSet::new();
        for (i, (local, host, port, _, _)) in snapshot.iter().enumerate() {
            if !probe {
                break;
            }
            let (me, local, host, port) = (self.clone(), *local, host.clone(), *port);
            probes.spawn(async move {
                let deadline = tokio::time::Instant::now() + me.bound;
                let answer = if port == 0 {
                    me.probe_socket(local, &host, deadline).await
                } else {
                    me.channel(&host, port, deadline).await.map(drop)
                };
                let answer = answer.map_or_else(|e| e, |()| "answers".to_string());
                (i, answer)
            });
        }
        let mut answers = vec![String::new(); snapshot.len()];
        while let Some(Ok((i, answer))) = probes.join_next().await {
            answers[i] = answer.replace(['\t', '\n'], " ");
        }
        snapshot
            .iter()
            .zip(answers)
            .map(|((local, host, port, kind, s), answer)| {
                format!(
                    "{local}\t{host}\t{port}\t{kind}\t{}\t{}\t{}\t{}\t{}\t{answer}\n",
                    s.up.load(SeqCst),
                    s.down.load(SeqCst),
                    s.connections.load(SeqCst),
                    s.active.load(SeqCst),
                    s.failed.load(SeqCst),
                )
            })
            .collect()
    }

    fn touch(&self) {
        *self.last_use.lock().unwrap() = Instant::now();
    }

    /// A control connection to the master, greeted: the spare one if it is still good,
    /// else a new one.
    async fn greeted(&self) -> Result<mux::Greeted, mux::Error> {
        let spare = self.spare.lock().unwrap().take();
        match spare {
            Some((greeted, _)) if greeted.fresh() => Ok(greeted),
            _ => mux::greet(&self.control).await,
        }
    }

    /// Makes a spare for the next connection, unless one is there or being made: once a
    /// connection's stream is asked for, so that the master greets it after that request.
    fn make_spare(self: &Arc<Self>) {
        if self.spare.lock().unwrap().is_some() {
            return;
        }
        if !self.greeting.swap(true, SeqCst) {
            let me = self.clone();
            tokio::spawn(async move {
                if let Ok(greeted) = mux::greet(&me.control).await {
                    me.spare
                        .lock()
                        .unwrap()
                        .get_or_insert((greeted, Instant::now()));
                }
                me.greeting.store(false, SeqCst);
            });
        }
    }

    /// Where the master listens for the forward on `local` to a socket on the box.
    fn relay_path(&self, local: u16) -> PathBuf {
        self.remote.state_file(&format!("{local}.sock"))
    }

    /// A connection to the socket at `path` on the box for the forward on `local`, by
    /// `deadline`: to the master's forward at [`Holder::relay_path`], which is made again
    /// when nothing answers there (the master is new, or gone: then it is opened again).
    async fn relay(
        self: &Arc<Self>,
        local: u16,
        path: &str,
        deadline: tokio::time::Instant,
    ) -> Result<(UnixStream, u64), String> {
        let listen = self.relay_path(local);
        let seen = self.generation.load(SeqCst);
        let attempt = async {
            let made =
                |relays: &BTreeMap<u16, String>| relays.get(&local).is_some_and(|p| p == path);
            if made(&*self.relays.lock().await) {
                if let Ok(stream) = connect_relay(&listen).await {
                    return Ok((stream, seen));
                }
            }
            let mut relays = self.relays.lock().await;
            // Another connection may have made it again meanwhile.
            if made(&relays) {
                if let Ok(stream) = connect_relay(&listen).await {
                    return Ok((stream, self.generation.load(SeqCst)));
                }
            }
            let seen = self.generation.load(SeqCst);
            let was = relays.remove(&local);
            match mux::greet(&self.control).await {
                Ok(_) => {}
                Err(mux::Error::NoMaster(_)) => self
                    .reconnect(seen)
                    .await
                    .map_err(|e| format!("cannot reach the box: {e}"))?,
                Err(e) => return Err(e.to_string()),
            }
            let session = Remote::mux(&self.control);
            // A master that still holds a forward from there (its socket was removed, or
            // it went elsewhere) would take the request as done and listen on nothing.
            let mut old = vec![path.to_string()];
            old.extend(was.filter(|w| w != path));
            for old in &old {
                let _ = session
                    .close_port_forward(ForwardType::Local, unix(&listen), unix(Path::new(old)))
                    .await;
            }
            let _ = std::fs::remove_file(&listen);
            session
                .request_port_forward(ForwardType::Local, unix(&listen), unix(Path::new(path)))
                .await
                .map_err(|e| format!("the shared connection did not forward to {path}: {e}"))?;
            log(format_args!(
                "the shared connection forwards {} -> {path}",
                listen.display()
            ));
            relays.insert(local, path.to_string());
            let stream = connect_relay(&listen).await.map_err(|e| {
                format!(
                    "the shared connection's forward at {} does not answer: {e}",
                    listen.display()
                )
            })?;
            Ok((stream, self.generation.load(SeqCst)))
        };
        match tokio::time::timeout_at(deadline, attempt).await {
            Ok(made) => made,
            Err(_) => {
                tokio::spawn(self.clone().end_stalled(seen));
                Err(self.late())
            }
        }
    }

    /// Whether the socket at `path` on the box answers through the forward on `local`: a
    /// refusal comes back within a round trip to the box (measured by one) as an end.
    async fn probe_socket(
        self: &Arc<Self>,
        local: u16,
        path: &str,
        deadline: tokio::time::Instant,
    ) -> Result<(), String> {
        let (mut stream, _) = self.relay(local, path, deadline).await?;
        let start = Instant::now();
        let _ = tokio::time::timeout(
            ROUND_TRIP,
            mux::stdio_forward(&self.control, "127.0.0.1", 1),
        )
        .await;
        let wait = (start.elapsed() * 2 + Duration::from_millis(100)).min(ROUND_TRIP);
        match tokio::time::timeout(wait, stream.read(&mut [0u8; 1])).await {
            Ok(Ok(0) | Err(_)) => Err(closed(path)),
            Ok(Ok(_)) | Err(_) => Ok(()),
        }
    }

    fn late(&self) -> String {
        format!("the box did not answer within {} s", self.bound.as_secs())
    }

    /// Asks for a stream to `host`:`port` through the shared connection, opening that again
    /// when it has gone, by `deadline`; the box's answer is still to come. With it, the
    /// generation of the master asked. The error says why, for the log and `tunnel list`.
    async fn ask(
        self: &Arc<Self>,
        host: &str,
        port: u16,
        deadline: tokio::time::Instant,
    ) -> Result<(mux::Channel, u64), String> {
        let mut reopened = false;
        loop {
            let seen = self.generation.load(SeqCst);
            let attempt = async { self.greeted().await?.request(host, port).await };
            match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok(channel)) => {
                    self.make_spare();
                    return Ok((channel, seen));
                }
                Ok(Err(mux::Error::NoMaster(_))) if !reopened => {
                    reopened = true;
                    match tokio::time::timeout_at(deadline, self.reconnect(seen)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Err(format!("cannot reach the box: {e}")),
                        Err(_) => return Err(self.late()),
                    }
                }
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => {
                    tokio::spawn(self.clone().end_stalled(seen));
                    return Err(self.late());
                }
            }
        }
    }

    /// Waits for the box's answer to a stream asked of the master at generation `seen`,
    /// by `deadline`; none in time may mean the master's link is dead (`end_stalled`).
    async fn answered(
        self: &Arc<Self>,
        control: &mut UnixStream,
        seen: u64,
        deadline: tokio::time::Instant,
    ) -> Result<(), String> {
        match tokio::time::timeout_at(deadline, mux::answer(control)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => {
                tokio::spawn(self.clone().end_stalled(seen));
                Err(self.late())
            }
        }
    }

    /// A stream to `host`:`port` that the box has answered, by `deadline`.
    async fn channel(
        self: &Arc<Self>,
        host: &str,
        port: u16,
        deadline: tokio::time::Instant,
    ) -> Result<mux::Channel, String> {
        let (mut channel, seen) = self.ask(host, port, deadline).await?;
        self.answered(&mut channel.control, seen, deadline).await?;
        Ok(channel)
    }

    /// Opens the shared connection again, unless another connection did since generation
    /// `seen` (then its outcome is ours). The opening goes on when the connection that
    /// asked gives up, so those that come next wait for it instead of starting another.
    async fn reconnect(self: &Arc<Self>, seen: u64) -> Result<(), String> {
        let guard = self.flight.clone().lock_owned().await;
        if self.generation.load(SeqCst) != seen {
            return guard.clone().map_or(Ok(()), Err);
        }
        let me = self.clone();
        let flight = tokio::spawn(async move {
            let mut guard = guard;
            let started = Instant::now();
            let (remote, control) = (me.remote.clone(), me.control.clone());
            let opened = tokio::task::spawn_blocking(move || {
                let runtime = runtime().map_err(|e| format!("{e:#}"))?;
                runtime
                    .block_on(master::open(&remote, &control))
                    .map_err(|e| format!("{e:#}"))
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match &opened {
                Ok(()) => log(format_args!(
                    "opened the shared connection again in {} ms",
                    started.elapsed().as_millis()
                )),
                Err(e) => log(format_args!("cannot open the shared connection: {e}")),
            }
            *guard = opened.clone().err();
            me.generation.fetch_add(1, SeqCst);
            opened
        });
        flight
            .await
            .unwrap_or_else(|e| Err(format!("the opening failed: {e}")))
    }

    /// A stream asked of the master at generation `seen` got no answer in time: if a round
    /// trip through the master gets none either, its link is dead (the laptop slept, the
    /// network changed) and it is ended, once, so the next connection opens a new one.
    /// Asking the box for its own port 1 answers at once, refused or not, on a live link.
    async fn end_stalled(self: Arc<Self>, seen: u64) {
        let _guard = self.flight.lock().await;
        if self.generation.load(SeqCst) != seen {
            return;
        }
        let trip = mux::stdio_forward(&self.control, "127.0.0.1", 1);
        match tokio::time::timeout(ROUND_TRIP, trip).await {
            Ok(Ok(_)) | Ok(Err(mux::Error::Refused(_))) => return,
            Ok(Err(mux::Error::NoMaster(_))) => {}
            Ok(Err(mux::Error::Broken(_))) | Err(_) => {
                log(format_args!(
                    "the shared connection opened no stream within {} s and answers no round trip: ending it",
                    self.bound.as_secs()
                ));
                let (remote, control) = (self.remote.clone(), self.control.clone());
                let _ = tokio::task::spawn_blocking(move || {
                    let runtime = runtime()?;
                    let state = runtime.block_on(master::state(&control));
                    master::close(&remote, &control, state)
                })
                .await;
            }
        }
        self.generation.fetch_add(1, SeqCst);
    }
}

/// Accepts connections on one forward until it is closed (this task aborted, which ends
/// the connections it carries too).
async fn accept(
    holder: Arc<Holder>,
    listener: TcpListener,
    local: u16,
    target: Arc<Mutex<(String, u16)>>,
    stats: Arc<Stats>,
) {
    let mut carried = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let (host, port) = target.lock().unwrap().clone();
                    carried.spawn(carry(holder.clone(), tcp, local, host, port, stats.clone()));
                }
                Err(e) => {
                    // Out of descriptors, most likely: wait for some to be given back.
                    log(format_args!("127.0.0.1:{local}: cannot accept: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = carried.join_next(), if !carried.is_empty() => {}
        }
    }
}

/// Why the box ended a connection to the socket at `path` before a byte came back. Its sshd
/// answers both with the same "connect failed" (OpenSSH's serverloop.c), so both are said.
fn closed(path: &str) -> String {
    format!("the box closed the connection to {path} at once: nothing listens there, or its sshd forbids forwarding to Unix sockets (AllowStreamLocalForwarding)")
}

/// Connects to the master's forward at `listen`. A full queue (a burst of connections the
/// master has not accepted yet) is waited out, briefly at random; the caller bounds it.
async fn connect_relay(listen: &Path) -> std::io::Result<UnixStream> {
    loop {
        match UnixStream::connect(listen).await {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                tokio::time::sleep(Duration::from_millis(fastrand::u64(2..=20))).await;
            }
            connected => return connected,
        }
    }
}

/// A Unix socket, as the shared connection forwards one.
fn unix(path: &Path) -> openssh::Socket<'_> {
    openssh::Socket::UnixSocket { path: path.into() }
}

/// Counts a connection as active while it lives, however it ends.
struct Active<'a>(&'a Holder, &'a Stats);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, SeqCst);
        self.1.active.fetch_sub(1, SeqCst);
        self.0.touch();
    }
}

async fn carry(
    holder: Arc<Holder>,
    tcp: TcpStream,
    local: u16,
    host: String,
    port: u16,
    stats: Arc<Stats>,
) {
    holder.active.fetch_add(1, SeqCst);
    stats.active.fetch_add(1, SeqCst);
    stats.connections.fetch_add(1, SeqCst);
    holder.touch();
    let _active = Active(&holder, &stats);
    let _ = tcp.set_nodelay(true);
    let deadline = tokio::time::Instant::now() + holder.bound;
    let carried = if port == 0 {
        match holder.relay(local, &host, deadline).await {
            Ok((stream, seen)) => match splice(&holder, tcp, stream, seen, &stats).await {
                Ended::Closed => Err(closed(&host)),
                Ended::Done => Ok(()),
            },
            Err(e) => Err(e),
        }
    } else {
        match holder.ask(&host, port, deadline).await {
            Ok((channel, seen)) => pump(&holder, tcp, channel, seen, deadline, &stats).await,
            Err(e) => Err(e),
        }
    };
    if let Err(e) = carried {
        stats.failed.fetch_add(1, SeqCst);
        log(format_args!(
            "127.0.0.1:{local} -> {}: {e}",
            target(&host, port)
        ));
    }
}

/// How a spliced connection ended.
#[derive(PartialEq)]
enum Ended {
    Done,
    /// The box's side ended before a byte came from it, while ours was still sending.
    Closed,
}

/// Carries bytes both ways between a local connection and the master's forward to a socket
/// on the box, until both directions are done; each passes its end of file on. Nothing from
/// the box within the holder's bound may mean the link died under the master of generation
/// `seen` (`end_stalled`, which ends it only if a round trip fails too, and with it this
/// connection).
async fn splice(
    holder: &Arc<Holder>,
    tcp: TcpStream,
    stream: UnixStream,
    seen: u64,
    stats: &Stats,
) -> Ended {
    let (mut from_here, mut to_here) = tcp.into_split();
    let (mut from_box, mut to_box) = stream.into_split();
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from_here.read(&mut buf).await {
            if n == 0 || to_box.write_all(&buf[..n]).await.is_err() {
                break;
            }
            stats.up.fetch_add(n as u64, SeqCst);
        }
        let _ = to_box.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        let first = tokio::time::timeout(holder.bound, from_box.readable()).await;
        if first.is_err() {
            tokio::spawn(holder.clone().end_stalled(seen));
        }
        while let Ok(n) = from_box.read(&mut buf).await {
            if n == 0 || to_here.write_all(&buf[..n]).await.is_err() {
                break;
            }
            got += n as u64;
            stats.down.fetch_add(n as u64, SeqCst);
        }
        let _ = to_here.shutdown().await;
        got
    };
    tokio::pin!(up, down);
    tokio::select! {
        got = &mut down => {
            // Nothing came back while ours still sent: the box would not have it.
            if got == 0 {
                return Ended::Closed;
            }
            up.await;
            Ended::Done
        }
        () = &mut up => {
            down.await;
            Ended::Done
        }
    }
}

/// Carries bytes both ways until the box's side has ended (and the master said so) and, or
/// else, the local side has. They flow from the start, into the pipes, while the box's
/// answer is awaited: the master reads them once the box has answered, as it would read a
/// socket of its own. No answer by `deadline`, or a refusal, ends the connection.
///
/// Each direction lets go of its pipe as soon as it is done, a failed write included: a
/// local client that went away must close the pipe from the box, or the master's write to
/// it blocks, the stream never ends and the connection is held for ever.
async fn pump(
    holder: &Arc<Holder>,
    tcp: TcpStream,
    channel: mux::Channel,
    seen: u64,
    deadline: tokio::time::Instant,
    stats: &Stats,
) -> Result<(), String> {
    let (mut from_here, mut to_here) = tcp.into_split();
    let mux::Channel {
        mut to_box,
        mut from_box,
        mut control,
    } = channel;
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from_here.read(&mut buf).await {
            if n == 0 || to_box.write_all(&buf[..n]).await.is_err() {
                break;
            }
            stats.up.fetch_add(n as u64, SeqCst);
        }
        // The box's side reads an end of file.
        drop(to_box);
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from_box.read(&mut buf).await {
            if n == 0 || to_here.write_all(&buf[..n]).await.is_err() {
                break;
            }
            stats.down.fetch_add(n as u64, SeqCst);
        }
        // The master's next write fails: it ends the stream instead of waiting to write.
        drop(from_box);
        let _ = to_here.shutdown().await;
    };
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    {
        let answer = holder.answered(&mut control, seen, deadline);
        tokio::pin!(answer);
        loop {
            tokio::select! {
                answer = &mut answer => break answer?,
                () = &mut up, if !up_done => up_done = true,
                () = &mut down, if !down_done => down_done = true,
            }
        }
    }
    // The master closes the control connection once the stream is done; what the local
    // side still sends after that has nowhere to go.
    let ended = async {
        let _ = control.read(&mut [0u8; 1]).await;
    };
    tokio::pin!(ended);
    while !(up_done && down_done) {
        tokio::select! {
            () = &mut ended, if down_done => return Ok(()),
            () = &mut up, if !up_done => up_done = true,
            () = &mut down, if !down_done => down_done = true,
        }
    }
    // Both pipes are closed: a live master ends the stream at once. One whose link died
    // may never say so, and the connection is not held for it.
    let _ = tokio::time::timeout(LINGER, ended).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forward_to_a_socket_is_asked_for_with_its_path_whole() {
        let f = Forward::socket(8888, "/home/a b/.fenton/jupyter-slurm/hop.sock", "jupyter");
        assert_eq!(
            f.request(),
            "open-socket 8888 jupyter /home/a b/.fenton/jupyter-slurm/hop.sock"
        );
        assert_eq!(
            open_socket(&f.request()),
            Some((8888, "jupyter", "/home/a b/.fenton/jupyter-slurm/hop.sock"))
        );
        assert_eq!(f.target(), "/home/a b/.fenton/jupyter-slurm/hop.sock");
        let tcp = Forward {
            local: 6006,
            host: "127.0.0.1".into(),
            port: 6006,
            kind: "tunnel".into(),
        };
        assert_eq!(tcp.request(), "open 6006 127.0.0.1 6006 tunnel");
        assert_eq!(tcp.target(), "127.0.0.1:6006");
        for bad in [
            "open-socket 0 jupyter /a.sock",
            "open-socket 8888 jupyter a.sock",
            "open-socket 8888 jupyter /a\tb.sock",
            "open-socket 8888  /a.sock",
            "open-socket 8888 jupyter",
            "open-socket x jupyter /a.sock",
        ] {
            assert_eq!(open_socket(bad), None, "{bad}");
        }
        // What `list` answers reads back as the same forward.
        let line = format!("8888\t{}\t0\tjupyter\t1\t2\t3\t0\t0\tanswers", f.host);
        assert_eq!(parse_listed(&line).unwrap().forward, f);
    }

    #[test]
    fn listed_lines_parse() {
        let line = "8888\t127.0.0.1\t8889\tjupyter\t10\t2000\t3\t1\t0\trefused: open failed";
        let listed = parse_listed(line).unwrap();
        assert_eq!(listed.forward.local, 8888);
        assert_eq!(listed.forward.kind, "jupyter");
        assert_eq!((listed.up, listed.down, listed.connections), (10, 2000, 3));
        assert_eq!(listed.answer, "refused: open failed");
        assert!(parse_listed("8888\tx").is_none());
        assert!(parse_listed("welcome\t1\t2\t3\t4\t5\t6\t7\t8\t9").is_none());
    }
}
