//! Opening and closing the shared connection: a plain `ssh -M -f -N` (so passphrase prompts and
//! ssh-agent work as usual), its socket in a short private directory, its log in a file whose
//! last lines become a one-line error that says what to do.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::Signal;

use super::Remote;
use crate::config::{expand_home, Profile};
use crate::exit::SshFailed;
use crate::ui;

/// Unix socket paths max out near 104 bytes on macOS; stay far below.
const MAX_DIR_LEN: usize = 70;

/// The private directory that holds control sockets: `$XDG_RUNTIME_DIR/fenton`, else
/// `/tmp/fenton-UID`. Made 0700; one that someone else owns is refused.
pub fn control_dir() -> Result<PathBuf> {
    let uid = nix::unistd::getuid();
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d).join("fenton"))
        .filter(|d| d.as_os_str().len() <= MAX_DIR_LEN && d.parent().is_some_and(Path::is_dir));
    let dir = runtime.unwrap_or_else(|| PathBuf::from(format!("/tmp/fenton-{uid}")));
    match DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
    let meta = fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.uid() != uid.as_raw() {
        bail!(
            "{} is not a directory of yours, so fenton cannot keep its connection there safely: remove it",
            dir.display()
        );
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

/// A short, stable name for a profile's connection: the same box settings, the same socket.
pub fn socket_stem(name: &str, profile: &Profile) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let port = profile.port.map(|p| p.to_string());
    for part in [
        Some(name),
        Some(profile.host.as_str()),
        profile.user.as_deref(),
        port.as_deref(),
        profile.identity_file.as_deref(),
        profile.ssh_config.as_deref(),
    ] {
        for byte in part.unwrap_or("").bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// How long a healthy master takes to answer a mux check; a dead one answers at once.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// What is at a control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A master answers there.
    Alive,
    /// Nothing listens there (none ever did, or its master died).
    Gone,
    /// Something holds the socket but does not answer (a stopped or wedged master).
    Hung,
}

/// Asks the master at `control` whether it is alive, within [`CHECK_TIMEOUT`].
pub async fn state(control: &Path) -> State {
    if fs::symlink_metadata(control).is_err() {
        return State::Gone;
    }
    let check = async {
        openssh_mux_client::Connection::connect(control)
            .await?
            .send_alive_check()
            .await
    };
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(_)) => State::Alive,
        Ok(Err(openssh_mux_client::Error::IOError(e)))
            if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) =>
        {
            State::Gone
        }
        _ => State::Hung,
    }
}

/// Opens the shared connection at `control` unless a master answers there; one that holds
/// the socket without answering is ended first.
pub async fn open(remote: &Remote, control: &Path) -> Result<()> {
    let socket = |p: &Path| fs::symlink_metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let seen = socket(control);
    let first = state(control).await;
    if first == State::Alive {
        return Ok(());
    }
    preflight(&remote.profile)?;
    // Without a terminal, a passphrase or password prompt could only hang: fail instead.
    let interactive = File::open("/dev/tty").is_ok();
    let _lock = lock(remote, control, interactive)?;
    // Another command may have replaced the master meanwhile; the same hung one is not asked
    // (and waited for) twice.
    let now = if first == State::Hung && socket(control) == seen {
        State::Hung
    } else {
        state(control).await
    };
    match now {
        State::Alive => return Ok(()),
        State::Hung => end_hung(remote, control, CHECK_TIMEOUT),
        State::Gone => {}
    }
    let _ = fs::remove_file(control);
    let log_path = control.with_extension("log");
    let mut log = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&log_path)
        .with_context(|| format!("cannot write {}", log_path.display()))?;
    log.seek(SeekFrom::Start(0))?;

    let persist = format!("ControlPersist={}", remote.profile.control_persist);
    let mut cmd = Command::new("ssh");
    cmd.args(["-M", "-f", "-N", "-E"])
        .arg(&log_path)
        .args(remote.ssh_options_at(control))
        .args(["-o", "ControlMaster=yes", "-o", &persist]);
    if !interactive {
        cmd.args(["-o", "BatchMode=yes"]);
    }
    cmd.args(remote.destination());
    // The master outlives us: it must not hold our stdout or stderr open.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    ui::trace_command("ssh", cmd.get_args());
    let limit = Duration::from_secs(remote.profile.connect_timeout + 10);
    let out =
        crate::proc::run_bounded(cmd, (!interactive).then_some(limit)).context("cannot run ssh")?;
    let Some(status) = out.map(|o| o.status) else {
        let (host, port) = endpoint(remote);
        return Err(SshFailed(format!(
            "no answer from {host} port {port} within {} s: is the box up and the address right?",
            limit.as_secs()
        ))
        .into());
    };
    if !status.success() {
        let mut text = String::new();
        let _ = File::open(&log_path).and_then(|mut f| f.read_to_string(&mut text));
        return Err(SshFailed(explain(remote, &text)).into());
    }
    // ssh -f returns once authenticated; the socket follows at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    while UnixStream::connect(control).is_err() {
        if Instant::now() > deadline {
            bail!(
                "ssh connected but its control socket {} never appeared (see {})",
                control.display(),
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    ui::debug(format_args!(
        "opened the shared connection to {} at {}",
        remote.profile.host,
        control.display()
    ));
    Ok(())
}

/// Ends the master that holds `control` without answering (SIGSTOPped, or wedged): asked
/// to end, woken so that it can, and killed if it still lingers. Its socket goes with it.
pub fn end_hung(remote: &Remote, control: &Path, waited: Duration) {
    let pids = masters(control);
    ui::warn(format_args!(
        "the shared connection to {} (ssh pid {}) did not answer within {} s: ending it",
        remote.profile.host,
        if pids.is_empty() {
            "unknown".to_string()
        } else {
            pids.iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        },
        waited.as_secs()
    ));
    for &pid in &pids {
        crate::proc::signal(pid, Signal::SIGTERM);
        crate::proc::signal(pid, Signal::SIGCONT);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while pids.iter().any(|&p| crate::proc::alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for &pid in &pids {
        if crate::proc::alive(pid) {
            crate::proc::signal(pid, Signal::SIGKILL);
        }
    }
    let _ = fs::remove_file(control);
}

/// The pids of this user's ssh masters serving `control`, from `ps` (Linux and macOS alike).
fn masters(control: &Path) -> Vec<i32> {
    let option = format!(
        "ControlPath={}",
        control.to_string_lossy().replace('%', "%%")
    );
    let uid = nix::unistd::getuid().as_raw().to_string();
    let mut cmd = Command::new("ps");
    cmd.args(["-A", "-o", "pid=", "-o", "uid=", "-o", "args="])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let Ok(Some(out)) = crate::proc::run_bounded(cmd, Some(Duration::from_secs(5))) else {
        return vec![];
    };
    // The socket's path may hold spaces: match it as one stretch of the command line.
    let word = format!(" {option}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let pid = fields.next()?.parse().ok()?;
            let owner = fields.next()?;
            let program = fields.next()?;
            let ours = owner == uid
                && (program == "ssh" || program.ends_with("/ssh"))
                && line.contains(" -M ")
                && (line.ends_with(&word) || line.contains(&format!("{word} ")));
            ours.then_some(pid)
        })
        .collect()
}

/// How many mux clients the master at `control` has now: each session holds one for its
/// life. Where the system says (Linux's /proc/net/unix), else None. ssh listens under a
/// temporary name (`control.XXXXXXXXXXXXXXXX`) before renaming it, and that is the name
/// the system shows for the accepted connections too.
pub fn clients(control: &Path) -> Option<usize> {
    let table = fs::read_to_string("/proc/net/unix").ok()?;
    let prefix = format!("{}.", control.to_string_lossy());
    let count = table
        .lines()
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Num RefCount Protocol Flags Type St Inode Path; St 03 is connected.
            fields.len() == 8
                && fields[5] == "03"
                && fields[7]
                    .strip_prefix(&prefix)
                    .is_some_and(|rest| !rest.contains(['.', '/']))
        })
        .count();
    Some(count)
}

/// Two fenton commands starting at once must not both open a master on one socket: the
/// second waits for the first, saying so, for as long as opening may take (a person typing a
/// passphrase gets five minutes).
fn lock(remote: &Remote, control: &Path, interactive: bool) -> Result<Flock<File>> {
    let path = control.with_extension("lock");
    let mut file =
        File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    let limit = if interactive {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(remote.profile.connect_timeout + 15)
    };
    let deadline = Instant::now() + limit;
    let mut said = false;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((busy, nix::errno::Errno::EWOULDBLOCK)) => file = busy,
            Err((_, e)) => return Err(e).context("cannot lock the connection"),
        }
        let host = &remote.profile.host;
        if Instant::now() > deadline {
            bail!(
                "another fenton has been opening the connection to {host} for {} s (waiting for a passphrase?): finish that, or end it",
                limit.as_secs()
            );
        }
        // Many commands at once wait a moment for the one that opens: said only when long.
        if !said && deadline - Instant::now() < limit - Duration::from_secs(2) {
            ui::info(format_args!(
                "waiting for another fenton that is opening the connection to {host}…"
            ));
            said = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Closes the shared connection at `control`, found in `state`: `ssh -O exit` when its
/// master answers, the master ended when it does not. False when none was there.
pub fn close(remote: &Remote, control: &Path, state: State) -> Result<bool> {
    match state {
        State::Gone => {
            let _ = fs::remove_file(control);
            return Ok(false);
        }
        State::Hung => {
            end_hung(remote, control, CHECK_TIMEOUT);
            return Ok(true);
        }
        State::Alive => {}
    }
    let mut cmd = Command::new("ssh");
    cmd.args(remote.ssh_options_at(control))
        .args(["-o", "ControlMaster=no", "-O", "exit"])
        .args(remote.destination());
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    ui::trace_command("ssh", cmd.get_args());
    let out = crate::proc::run_bounded(cmd, Some(CHECK_TIMEOUT)).context("cannot run ssh")?;
    match out {
        None => end_hung(remote, control, CHECK_TIMEOUT),
        Some(out) if !out.status.success() => {
            let text = String::from_utf8_lossy(&out.stderr);
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            bail!("could not close the shared connection: {last}");
        }
        Some(_) => {}
    }
    let _ = fs::remove_file(control);
    Ok(true)
}

/// Checks what ssh would complain about in a wall of text, before ssh runs.
fn preflight(profile: &Profile) -> Result<()> {
    if !on_path("ssh") {
        bail!("ssh is not installed or not on PATH: install OpenSSH's client (e.g. apt install openssh-client)");
    }
    if let Some(identity) = &profile.identity_file {
        let path = expand_home(identity);
        let meta = fs::metadata(&path).with_context(|| {
            format!(
                "identity_file {} cannot be read: fix the path in your config",
                path.display()
            )
        })?;
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "private key {} has mode {mode:04o}, so ssh will refuse it: chmod 600 {}",
                path.display(),
                super::sh::quote_path(&path)
            );
        }
    }
    Ok(())
}

/// Whether an executable of that name is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            fs::metadata(dir.join(program)).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
        })
    })
}

/// The host name and port ssh really uses for a profile (aliases resolved by `ssh -G`).
fn endpoint(remote: &Remote) -> (String, String) {
    let mut cmd = Command::new("ssh");
    cmd.arg("-G")
        .args(remote.ssh_options())
        .args(remote.destination());
    let out = cmd.stdin(Stdio::null()).stderr(Stdio::null()).output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')))
            .map(str::to_string)
    };
    (
        field("hostname").unwrap_or_else(|| remote.profile.host.clone()),
        field("port").unwrap_or_else(|| "22".into()),
    )
}

/// Turns the master's log into one line that says what went wrong and what to do.
fn explain(remote: &Remote, log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("debug") && !l.starts_with("Warning: Permanently added")
        })
        .collect();
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    let (host, port) = endpoint(remote);
    let to = format!("{host} port {port}");
    if has("Could not resolve hostname") {
        format!("cannot resolve host {host:?}: check `host` in the profile or your ssh config")
    } else if has("Connection refused") {
        format!("{to} refused the connection: is sshd running there, and is the port right?")
    } else if has("timed out") {
        format!(
            "no answer from {to} within {} s: is the box up and the address right?",
            remote.profile.connect_timeout
        )
    } else if has("No route to host") || has("Network is unreachable") {
        format!("no route to {to}: check the network (VPN, Wi-Fi) and the address")
    } else if has("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        let fix = lines
            .iter()
            .find_map(|l| l.find("ssh-keygen").map(|i| l[i..].to_string()))
            .unwrap_or_else(|| format!("ssh-keygen -R {host}"));
        format!("the host key of {host} has changed (a reinstalled box, or someone in between); if you expect the change, run: {fix}")
    } else if has("Host key verification failed") {
        format!("the host key of {host} could not be verified: check your known_hosts file")
    } else if has("Permission denied") || has("Too many authentication failures") {
        format!(
            "{to} refused to log you in: check `user` and `identity_file`, or install your key there (ssh-copy-id)"
        )
    } else {
        let last = lines
            .last()
            .copied()
            .unwrap_or("ssh exited without saying why");
        format!("cannot connect to {to}: {last}")
    }
}
