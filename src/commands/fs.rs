//! `fenton fs`: the box's files on a local mount point through sshfs, kept alive across bad
//! links (reconnect, keepalives) and never able to hang fenton itself: every look at the mount
//! that could block on a dead link runs in a thread with a deadline.
//!
//! sshfs gets its own ssh connection (not the shared master): the mount must outlive fenton and
//! `fenton disconnect`, and a dedicated connection is also faster than a mux channel.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::Ctx;
use crate::cli::FsCommand;
use crate::config::expand_home;
use crate::exit::Exit;
use crate::proc::{alive, run_bounded, signal};
use crate::remote::{on_path, Remote};
use crate::ui;

/// How long `fs status` waits for the mount to answer: the whole command stays under 3 s.
const PROBE_LIMIT: Duration = Duration::from_secs(2);
/// How long an unmount program may take before it is taken as hung.
const UNMOUNT_LIMIT: Duration = Duration::from_secs(4);
/// How long sshfs gets to exit after its ssh child or itself was told to.
const EXIT_LIMIT: Duration = Duration::from_secs(3);
/// Seconds between keepalives, and how many may go unanswered: a dead link is noticed in
/// 10 to 15 s, and file operations then fail instead of hanging.
const ALIVE_INTERVAL: u32 = 5;
const ALIVE_COUNT: u32 = 2;

pub fn run(ctx: &Ctx, command: FsCommand) -> Result<Exit> {
    let remote = ctx.remote()?;
    let fs = Fs::new(&remote)?;
    match command {
        FsCommand::Mount => fs.mount(),
        FsCommand::Unmount { force } => fs.unmount(force),
        FsCommand::Status => fs.status(),
    }
}

struct Fs<'a> {
    remote: &'a Remote,
    /// The mount point, absolute, with its parent's symlinks resolved (never itself: resolving
    /// a mount point asks the mount, which may hang).
    local: PathBuf,
    /// The remote path as sshfs takes it: empty for the remote home, relative paths under it.
    remote_path: String,
}

/// What is on the mount point now.
enum State {
    NotMounted,
    /// Something other than this profile's sshfs.
    Other(MountEntry),
    Ours {
        pid: Option<i32>,
        health: Health,
    },
}

enum Health {
    Ok,
    /// sshfs is gone or its FUSE connection is cut: the mount only needs cleaning up.
    Stale(&'static str),
    /// sshfs is there but the files do not answer (link down).
    Unresponsive(String),
}

impl<'a> Fs<'a> {
    fn new(remote: &'a Remote) -> Result<Fs<'a>> {
        let mount = &remote.profile.mount;
        let raw = mount.local_path_or_default(&remote.name);
        let local = absolute(&expand_home(&raw))?;
        let remote_path = match mount.remote_path.as_deref().unwrap_or("") {
            "~" | "~/" => String::new(),
            path => match path.strip_prefix("~/") {
                Some(rest) => rest.to_string(),
                None => path.to_string(),
            },
        };
        Ok(Fs {
            remote,
            local,
            remote_path,
        })
    }

    /// `[user@]host:path` as sshfs takes it (and as the mount table shows it).
    fn source(&self) -> String {
        let profile = &self.remote.profile;
        let host = if profile.host.contains(':') {
            format!("[{}]", profile.host)
        } else {
            profile.host.clone()
        };
        match &profile.user {
            Some(user) => format!("{user}@{host}:{}", self.remote_path),
            None => format!("{host}:{}", self.remote_path),
        }
    }

    /// The source as a person reads it: the remote home shown as `~`.
    fn shown_source(&self) -> String {
        let source = self.source();
        if self.remote_path.is_empty() {
            source + "~"
        } else if self.remote_path.starts_with('/') {
            source
        } else {
            let host = &source[..source.len() - self.remote_path.len()];
            format!("{host}~/{}", self.remote_path)
        }
    }

    fn shown_local(&self) -> String {
        self.local.display().to_string()
    }

    fn state(&self, probe_health: bool) -> Result<State> {
        // The last mount on a point is the one in use.
        let Some(entry) = mount_table()?
            .into_iter()
            .rev()
            .find(|e| e.point == self.local)
        else {
            return Ok(State::NotMounted);
        };
        if !entry.is_ours(&self.source()) {
            return Ok(State::Other(entry));
        }
        let pid = sshfs_pid(&self.local);
        let health = if pid.is_none() {
            Health::Stale("sshfs is gone")
        } else if !probe_health {
            Health::Ok
        } else {
            match probe(&self.local) {
                Probe::Answered => Health::Ok,
                Probe::NotConnected => Health::Stale("the endpoint is not connected"),
                Probe::Failed(e) => Health::Unresponsive(format!("it fails: {e}")),
                Probe::TimedOut => {
                    Health::Unresponsive(format!("no answer within {} s", PROBE_LIMIT.as_secs()))
                }
            }
        };
        Ok(State::Ours { pid, health })
    }

    fn status(&self) -> Result<Exit> {
        let local = self.shown_local();
        match self.state(true)? {
            State::NotMounted => {
                crate::outln!("not mounted: {local} (`fenton fs mount` mounts it)");
                Ok(Exit::Failure)
            }
            State::Other(entry) => {
                crate::outln!(
                    "mounted by something else: {} ({}) on {local}",
                    entry.source,
                    entry.fstype
                );
                Ok(Exit::Failure)
            }
            State::Ours {
                pid,
                health: Health::Ok,
            } => {
                let pid = pid.unwrap_or_default();
                let since = started(pid)
                    .map(|s| format!(", since {s}"))
                    .unwrap_or_default();
                crate::outln!(
                    "mounted: {} on {local} (sshfs pid {pid}{since})",
                    self.shown_source()
                );
                Ok(Exit::Success)
            }
            State::Ours {
                health: Health::Stale(why),
                ..
            } => {
                crate::outln!(
                    "stale: {local} ({why}); `fenton fs mount` cleans it up and mounts again, `fenton fs unmount` frees it"
                );
                Ok(Exit::Failure)
            }
            State::Ours {
                pid,
                health: Health::Unresponsive(why),
            } => {
                crate::outln!(
                    "unresponsive: {} on {local} (sshfs pid {}): {why}; is the link down? sshfs reconnects when it is back, `fenton fs unmount --force` frees it now",
                    self.shown_source(),
                    pid.unwrap_or_default()
                );
                Ok(Exit::Failure)
            }
        }
    }

    fn mount(&self) -> Result<Exit> {
        preflight()?;
        let local = self.shown_local();
        let limit = Duration::from_secs(self.remote.profile.connect_timeout + 20);
        // Where a person may be typing a passphrase for sshfs's ssh, no deadline cuts them off
        // (ConnectTimeout still bounds an unreachable box); elsewhere BatchMode fails fast.
        let interactive = File::open("/dev/tty").is_ok();
        let bound = (!interactive).then_some(limit);
        // Mounts started at once would stack on the point: one mounts, the others find it.
        let _lock = crate::lock::exclusive(
            &self.remote.state_file("mount.lock"),
            bound.map(|b| b + Duration::from_secs(10)),
            &format!("mounting {local}"),
        )?;
        match self.state(true)? {
            State::NotMounted => {}
            State::Other(entry) => bail!(
                "{local} already has {} ({}) mounted on it: unmount that first, or set mount.local_path to another directory",
                entry.source,
                entry.fstype
            ),
            State::Ours {
                pid,
                health: Health::Ok,
            } => {
                ui::info(format_args!(
                    "already mounted: {} on {local} (sshfs pid {})",
                    self.shown_source(),
                    pid.unwrap_or_default()
                ));
                return Ok(Exit::Success);
            }
            State::Ours {
                health: Health::Unresponsive(why),
                ..
            } => bail!(
                "{local} is mounted but does not answer ({why}): wait for the link, or run `fenton fs unmount --force` and mount again"
            ),
            State::Ours {
                pid,
                health: Health::Stale(why),
            } => {
                ui::info(format_args!(
                    "cleaning up the stale mount on {local} ({why})"
                ));
                self.detach(pid)?;
            }
        }
        self.prepare_mount_point()?;
        let options = &self.remote.profile.mount.options;
        check_allow_other(options)?;

        let log_path = self.remote.state_file("sshfs.log");
        let log = File::create(&log_path)
            .with_context(|| format!("cannot write {}", log_path.display()))?;
        let mut cmd = self.sshfs_command();
        // sshfs daemonizes once mounted; its ssh child keeps stderr, so never a pipe of ours.
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        ui::trace_command("sshfs", cmd.get_args());
        let status = match run_bounded(cmd, bound).context("cannot run sshfs")? {
            Some(out) => out.status,
            None => bail!(
                "sshfs did not mount {} within {} s: is the box up? (`fenton connect -v` checks the link)",
                self.shown_source(),
                limit.as_secs()
            ),
        };
        if !status.success() {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let last = text
                .lines()
                .map(str::trim)
                .rfind(|l| !l.is_empty() && !l.starts_with("debug"))
                .unwrap_or("sshfs exited without saying why");
            let hint = if last.contains("No such file or directory") {
                "create it on the box or fix mount.remote_path".to_string()
            } else if last.contains("fuse") || last.contains("Operation not permitted") {
                "FUSE refused the mount: is /dev/fuse usable by you (`fusermount3` installed and setuid)?".to_string()
            } else {
                format!(
                    "`fenton connect -v` checks the link; sshfs's log: {}",
                    log_path.display()
                )
            };
            bail!(
                "sshfs could not mount {} on {local}: {last}; {hint}",
                self.shown_source()
            );
        }
        let pid = wait_for(Duration::from_secs(2), || sshfs_pid(&self.local));
        ui::info(format_args!(
            "mounted {} on {local} (sshfs pid {})",
            self.shown_source(),
            pid.unwrap_or_default()
        ));
        Ok(Exit::Success)
    }

    /// The mount point must be an empty directory (sshfs would hide what is in it); a missing
    /// one is made.
    fn prepare_mount_point(&self) -> Result<()> {
        let local = self.shown_local();
        match std::fs::metadata(&self.local) {
            Err(e) if e.kind() == ErrorKind::NotFound => std::fs::create_dir_all(&self.local)
                .with_context(|| format!("cannot create the mount point {local}")),
            Err(e) => Err(e).with_context(|| format!("cannot use the mount point {local}")),
            Ok(meta) if !meta.is_dir() => {
                bail!("{local} is a file, not a directory: set mount.local_path to a directory")
            }
            Ok(_) => {
                let mut entries = std::fs::read_dir(&self.local)
                    .with_context(|| format!("cannot read the mount point {local}"))?;
                if let Some(entry) = entries.next() {
                    let name = entry?.file_name();
                    bail!(
                        "{local} is not empty (it holds {:?}…), and a mount would hide what is there: empty it, or set mount.local_path to another directory",
                        name.to_string_lossy()
                    );
                }
                Ok(())
            }
        }
    }

    /// sshfs with the profile's ssh options as sshfs's own (`-F`, `-o KEY=VALUE`), which reach
    /// ssh as single words whatever they hold: sshfs's `ssh_command` cannot carry a space.
    fn sshfs_command(&self) -> Command {
        let profile = &self.remote.profile;
        let user_options = &profile.mount.options;
        // Defaults, and the profile's own ssh options, give way to what the user set in
        // mount.options (sshfs hands ssh options on in order, and ssh keeps the first value it
        // reads). Each entry is one option: a `,` in it is part of its value (escaped below).
        let user_keys: HashSet<String> = user_options
            .iter()
            .map(|o| {
                o.split('=')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .collect();
        let unset = |key: &str| !user_keys.contains(&key.to_ascii_lowercase());

        let mut cmd = Command::new("sshfs");
        cmd.arg(self.source()).arg(&self.local);
        let mut options: Vec<String> = vec!["reconnect".into()];
        // The profile's ssh options, minus the shared master's socket and keepalives: sshfs
        // gets a connection of its own, with keepalives of its own.
        let mut words = self.remote.ssh_options().into_iter();
        while let (Some(flag), Some(value)) = (words.next(), words.next()) {
            let value = value.to_string_lossy().into_owned();
            match flag.to_str().unwrap_or("") {
                "-F" => {
                    cmd.arg("-F").arg(value);
                }
                "-p" if unset("Port") => options.push(format!("Port={value}")),
                "-i" if unset("IdentityFile") => {
                    options.push(format!("IdentityFile={}", ssh_config_word(&value)))
                }
                "-o" => {
                    let key = value.split('=').next().unwrap_or("");
                    let ours = ["ControlPath", "ServerAliveInterval", "ServerAliveCountMax"];
                    if !ours.contains(&key) && unset(key) {
                        options.push(value);
                    }
                }
                // `-l user` is in the source, `user@host`.
                _ => {}
            }
        }
        let mut default = |key: &str, value: String| {
            if unset(key) {
                options.push(if value.is_empty() {
                    key.to_string()
                } else {
                    format!("{key}={value}")
                });
            }
        };
        default("ControlMaster", "no".into());
        default("ControlPath", "none".into());
        default("ServerAliveInterval", ALIVE_INTERVAL.to_string());
        default("ServerAliveCountMax", ALIVE_COUNT.to_string());
        default("LogLevel", "ERROR".into());
        if has_aes() {
            // With AES in hardware, AES-GCM is the cheapest cipher sshd offers.
            default(
                "Ciphers",
                "aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr".into(),
            );
        }
        if File::open("/dev/tty").is_err() {
            // No one could answer a prompt: fail instead of waiting.
            default("BatchMode", "yes".into());
        }
        if cfg!(target_os = "linux") {
            default("idmap", "user".into());
        }
        if cfg!(target_os = "macos") {
            default("volname", format!("fenton-{}", self.remote.name));
            default("defer_permissions", String::new());
            default("noappledouble", String::new());
        }
        options.extend(user_options.iter().cloned());
        for option in options {
            cmd.arg("-o").arg(fuse_option(&option));
        }
        cmd
    }

    fn unmount(&self, force: bool) -> Result<Exit> {
        let local = self.shown_local();
        let pid = match self.state(false)? {
            State::NotMounted => {
                ui::info(format_args!("not mounted: {local}"));
                return Ok(Exit::Success);
            }
            State::Other(entry) => bail!(
                "{local} holds {} ({}), which fenton did not mount: unmount it yourself",
                entry.source,
                entry.fstype
            ),
            State::Ours { pid, .. } => pid,
        };
        if force {
            self.detach(pid)?;
            ui::info(format_args!("unmounted {local} (forced)"));
            return Ok(Exit::Success);
        }
        match unmount_program(&self.local, false)? {
            Unmounted::Yes => {}
            Unmounted::Hung => bail!(
                "unmounting {local} did not finish within {} s (link down?): run `fenton fs unmount --force`",
                UNMOUNT_LIMIT.as_secs()
            ),
            Unmounted::Failed(text) if text.contains("busy") => {
                let holders = holders(&self.local, pid);
                let who = if holders.is_empty() {
                    "a process fenton cannot see (try `lsof +f --` on it)".to_string()
                } else {
                    holders
                        .iter()
                        .map(|(pid, name)| format!("{name} (pid {pid})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                bail!(
                    "{local} is busy, in use by {who}: close those files or leave that directory, or run `fenton fs unmount --force`"
                );
            }
            Unmounted::Failed(text) => bail!("cannot unmount {local}: {text}"),
        }
        if let Some(pid) = pid {
            // sshfs ends once unmounted; give it a moment so a mount right after finds it gone.
            wait_for(EXIT_LIMIT, || (!alive(pid)).then_some(()));
        }
        ui::info(format_args!("unmounted {local}"));
        Ok(Exit::Success)
    }

    /// Gets the mount point back whatever state the mount is in: a lazy unmount (no new
    /// access), then the end of sshfs's ssh child (which unblocks an sshfs waiting on a dead
    /// link), then of sshfs (which fails whatever still waits on the mount).
    fn detach(&self, pid: Option<i32>) -> Result<()> {
        let lazy = std::thread::spawn({
            let local = self.local.clone();
            move || unmount_program(&local, true)
        });
        if let Some(pid) = pid {
            for child in processes().into_iter().filter(|p| p.ppid == pid) {
                signal(child.pid, nix::sys::signal::Signal::SIGTERM);
            }
            signal(pid, nix::sys::signal::Signal::SIGTERM);
            if wait_for(EXIT_LIMIT, || (!alive(pid)).then_some(())).is_none() {
                signal(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        let _ = lazy.join();
        let gone = || {
            mount_table()
                .ok()
                .filter(|t| t.iter().all(|e| e.point != self.local))
        };
        if wait_for(Duration::from_secs(1), gone).is_none() {
            // The first lazy unmount may have waited on the hung sshfs: try again, now that
            // it is gone.
            let _ = unmount_program(&self.local, true);
            if wait_for(Duration::from_secs(2), gone).is_none() {
                bail!(
                    "{} is still mounted after a forced unmount: run `fusermount3 -uz` (macOS: `diskutil unmount force`) on it",
                    self.shown_local()
                );
            }
        }
        Ok(())
    }
}

/// An absolute path without `.`/`..` surprises: the parent resolved (it is local and never the
/// mount), the last component kept as written.
fn absolute(path: &Path) -> Result<PathBuf> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("cannot read the current directory")?
            .join(path)
    };
    let Some(name) = path.file_name() else {
        bail!(
            "mount.local_path {} does not name a directory: give a path like ~/fenton",
            path.display()
        );
    };
    let parent = path.parent().unwrap_or(Path::new("/"));
    Ok(match parent.canonicalize() {
        Ok(parent) => parent.join(name),
        Err(_) => path.clone(),
    })
}

/// What installs sshfs on this OS.
pub const INSTALL_SSHFS: &str = if cfg!(target_os = "macos") {
    "install macFUSE and sshfs (brew install --cask macfuse && brew install gromgit/fuse/sshfs-mac), or FUSE-T (brew tap macos-fuse-t/cask && brew install fuse-t fuse-t-sshfs)"
} else {
    "install it (Debian/Ubuntu: sudo apt install sshfs; Fedora: sudo dnf install fuse-sshfs; Arch: sudo pacman -S sshfs)"
};

/// What installs FUSE on this OS.
pub const INSTALL_FUSE: &str = if cfg!(target_os = "macos") {
    "install macFUSE (brew install --cask macfuse) or FUSE-T (brew install macos-fuse-t/cask/fuse-t)"
} else {
    "install it (Debian/Ubuntu: sudo apt install fuse3), or in a container run with --device /dev/fuse --cap-add SYS_ADMIN"
};

/// sshfs and FUSE are there, or the line that installs them.
fn preflight() -> Result<()> {
    if !on_path("sshfs") {
        bail!("sshfs is not installed: {INSTALL_SSHFS}");
    }
    if !cfg!(target_os = "macos") && (!Path::new("/dev/fuse").exists() || fusermount().is_none()) {
        bail!("FUSE is missing (no /dev/fuse or fusermount3): {INSTALL_FUSE}");
    }
    Ok(())
}

/// `allow_other` lets other local users in, which FUSE allows ordinary users only when
/// /etc/fuse.conf says so: say that instead of sshfs's terse refusal.
fn check_allow_other(options: &[String]) -> Result<()> {
    let asked = options.iter().any(|o| o.trim() == "allow_other");
    if !asked || cfg!(target_os = "macos") || nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let allowed = std::fs::read_to_string("/etc/fuse.conf")
        .is_ok_and(|t| t.lines().any(|l| l.trim() == "user_allow_other"));
    if !allowed {
        bail!("mount.options asks for allow_other, which needs `user_allow_other` in /etc/fuse.conf: add that line (as root), or drop allow_other");
    }
    Ok(())
}

fn fusermount() -> Option<&'static str> {
    ["fusermount3", "fusermount"]
        .into_iter()
        .find(|p| on_path(p))
}

/// A value as ssh reads it in an `-o KEY=VALUE` line: quoted (it splits on spaces), `\` and
/// `"` escaped, and `%` doubled (ssh expands `%` tokens in paths).
fn ssh_config_word(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\\' | '"' => out.push('\\'),
            '%' => out.push('%'),
            _ => {}
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// One `-o` option as FUSE's parser reads it: `,` separates options and `\` escapes.
fn fuse_option(option: &str) -> String {
    let mut out = String::with_capacity(option.len());
    for c in option.chars() {
        if c == ',' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn has_aes() -> bool {
    if cfg!(target_os = "macos") {
        // Apple silicon and every Intel Mac macOS still runs on have AES instructions.
        return true;
    }
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|t| {
        t.lines()
            .filter(|l| l.starts_with("flags") || l.starts_with("Features"))
            .any(|l| l.split_whitespace().any(|f| f == "aes"))
    })
}

/// A line of the mount table.
#[derive(Debug)]
struct MountEntry {
    source: String,
    fstype: String,
    point: PathBuf,
}

impl MountEntry {
    fn is_ours(&self, source: &str) -> bool {
        let sshfs = if cfg!(target_os = "linux") {
            self.fstype == "fuse.sshfs"
        } else {
            true
        };
        // sshfs escapes `,` in the source it hands to FUSE; compare without escapes.
        sshfs && self.source.replace('\\', "") == source.replace('\\', "")
    }
}

/// The mount table, read without touching any mount.
fn mount_table() -> Result<Vec<MountEntry>> {
    if cfg!(target_os = "linux") {
        let text = std::fs::read("/proc/self/mountinfo").context("cannot read the mount table")?;
        Ok(parse_mountinfo(&text))
    } else {
        let out = Command::new("mount")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .context("cannot run mount")?;
        Ok(parse_bsd_mount(&String::from_utf8_lossy(&out.stdout)))
    }
}

/// Linux's /proc/self/mountinfo: `ID PARENT MAJ:MIN ROOT POINT OPTIONS [TAGS…] - TYPE SOURCE …`,
/// with space, tab, newline and `\` written as octal escapes.
fn parse_mountinfo(text: &[u8]) -> Vec<MountEntry> {
    text.split(|&b| b == b'\n')
        .filter_map(|line| {
            let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
            let dash = fields.iter().position(|f| *f == b"-")?;
            let point = fields.get(4)?;
            Some(MountEntry {
                point: PathBuf::from(OsString::from_vec(unescape_octal(point))),
                fstype: String::from_utf8_lossy(&unescape_octal(fields.get(dash + 1)?))
                    .into_owned(),
                source: String::from_utf8_lossy(&unescape_octal(fields.get(dash + 2)?))
                    .into_owned(),
            })
        })
        .collect()
}

fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\'
            && i + 3 < field.len()
            && field[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let digits = &field[i + 1..i + 4];
            out.push(
                digits
                    .iter()
                    .fold(0u8, |n, d| n.wrapping_mul(8) + (d - b'0')),
            );
            i += 4;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    out
}

/// macOS's `mount`: `SOURCE on POINT (TYPE, options…)`.
fn parse_bsd_mount(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (rest, options) = line.rsplit_once(" (")?;
            let (source, point) = rest.split_once(" on ")?;
            Some(MountEntry {
                source: source.to_string(),
                point: PathBuf::from(point),
                fstype: options.split([',', ')']).next()?.trim().to_string(),
            })
        })
        .collect()
}

enum Probe {
    Answered,
    NotConnected,
    Failed(String),
    TimedOut,
}

/// Asks the mount for a name that is in no cache (so the question reaches the box). A child
/// process asks: a thread of ours stuck on a dead link would keep fenton from exiting (the
/// kernel waits out a FUSE request it has sent), while a child left behind ends on its own
/// once sshfs answers or dies.
fn probe(point: &Path) -> Probe {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let path = point.join(format!(".fenton-probe-{}-{nonce}", std::process::id()));
    let mut cmd = Command::new("stat");
    cmd.arg("--")
        .arg(&path)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let Ok(mut child) = cmd.spawn() else {
        return Probe::Failed("cannot run stat".into());
    };
    let Some(status) = wait_for(PROBE_LIMIT, || child.try_wait().ok().flatten()) else {
        return Probe::TimedOut;
    };
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
    }
    // Any answer from the box will do, a refusal included.
    if status.success() || text.contains("No such file") || text.contains("Permission denied") {
        Probe::Answered
    } else if text.contains("not connected") {
        Probe::NotConnected
    } else {
        let why = text.trim().rsplit(": ").next().unwrap_or("").to_string();
        Probe::Failed(if why.is_empty() {
            "stat failed".into()
        } else {
            why
        })
    }
}

enum Unmounted {
    Yes,
    Failed(String),
    Hung,
}

/// The system's unmount: `fusermount3 -u` (`-uz`: lazy) on Linux; `umount`, then
/// `diskutil unmount [force]` on macOS.
fn unmount_program(point: &Path, lazy: bool) -> Result<Unmounted> {
    let mut attempts: Vec<Command> = Vec::new();
    if cfg!(target_os = "macos") {
        let mut umount = Command::new("umount");
        if lazy {
            umount.arg("-f");
        }
        umount.arg(point);
        attempts.push(umount);
        let mut diskutil = Command::new("diskutil");
        diskutil.arg("unmount");
        if lazy {
            diskutil.arg("force");
        }
        diskutil.arg(point);
        attempts.push(diskutil);
    } else {
        let program = fusermount().unwrap_or("fusermount3");
        let mut cmd = Command::new(program);
        cmd.arg(if lazy { "-uz" } else { "-u" }).arg(point);
        attempts.push(cmd);
    }
    let mut last = Unmounted::Failed(String::new());
    for mut cmd in attempts {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        ui::trace_command(&cmd.get_program().to_string_lossy(), cmd.get_args());
        last = match run_bounded(cmd, Some(UNMOUNT_LIMIT))? {
            None => Unmounted::Hung,
            Some(out) if out.status.success() => return Ok(Unmounted::Yes),
            Some(out) => {
                let text = String::from_utf8_lossy(&out.stderr);
                Unmounted::Failed(
                    text.lines()
                        .rfind(|l| !l.trim().is_empty())
                        .unwrap_or("it failed without saying why")
                        .trim()
                        .to_string(),
                )
            }
        };
    }
    Ok(last)
}

/// Polls until `check` gives something, up to `limit`.
fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A local process, as much as fenton needs of it.
struct Process {
    pid: i32,
    ppid: i32,
    name: String,
    /// Only for sshfs processes: reading another process's command line takes its memory
    /// lock, which a process stuck on a dead mount may hold.
    args: Vec<OsString>,
}

/// The local processes (Linux: /proc; elsewhere: `ps`).
fn processes() -> Vec<Process> {
    if cfg!(target_os = "linux") {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return vec![];
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                // `PID (NAME) STATE PPID …`, where NAME may hold spaces and parentheses.
                let open = stat.find('(')?;
                let close = stat.rfind(')')?;
                let name = stat[open + 1..close].to_string();
                let ppid = stat[close + 1..].split_whitespace().nth(1)?.parse().ok()?;
                let cmdline = if name == "sshfs" {
                    std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()
                } else {
                    Vec::new()
                };
                let args = cmdline
                    .split(|&b| b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| OsString::from_vec(a.to_vec()))
                    .collect();
                Some(Process {
                    pid,
                    ppid,
                    name,
                    args,
                })
            })
            .collect()
    } else {
        let Ok(out) = Command::new("ps")
            .args(["-axo", "pid=,ppid=,comm=,command="])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        else {
            return vec![];
        };
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let pid = words.next()?.parse().ok()?;
                let ppid = words.next()?.parse().ok()?;
                let name = words.next()?.rsplit('/').next()?.to_string();
                let command = words.collect::<Vec<_>>().join(" ");
                Some(Process {
                    pid,
                    ppid,
                    name,
                    args: vec![command.into()],
                })
            })
            .collect()
    }
}

/// The sshfs serving `point`: the one whose command line names it.
fn sshfs_pid(point: &Path) -> Option<i32> {
    let point = point.as_os_str();
    processes()
        .into_iter()
        .find(|p| {
            p.name == "sshfs"
                && p.args.iter().any(|a| {
                    a == point
                        || (!cfg!(target_os = "linux")
                            && a.as_bytes()
                                .windows(point.len())
                                .any(|w| w == point.as_bytes()))
                })
        })
        .map(|p| p.pid)
}

/// When a process started, as `ps` says it (local time).
fn started(pid: i32) -> Option<String> {
    let out = Command::new("ps")
        .args(["-o", "lstart=", "-p", &pid.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// The local processes holding files or their working directory under `point` (not sshfs).
fn holders(point: &Path, sshfs: Option<i32>) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let skip = |pid: i32| pid == me || Some(pid) == sshfs;
    if !cfg!(target_os = "linux") {
        let mut cmd = Command::new("lsof");
        cmd.args(["-F", "pc", "+f", "--"])
            .arg(point)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let Ok(Some(out)) = run_bounded(cmd, Some(Duration::from_secs(5))) else {
            return vec![];
        };
        let mut found = Vec::new();
        let mut pid = 0;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(p) = line.strip_prefix('p') {
                pid = p.parse().unwrap_or(0);
            } else if let Some(name) = line.strip_prefix('c') {
                if !skip(pid) {
                    found.push((pid, name.to_string()));
                }
            }
        }
        return found;
    }
    // Reading these links names the path without asking the mount anything.
    let inside = |link: PathBuf| std::fs::read_link(link).is_ok_and(|p| p.starts_with(point));
    processes()
        .into_iter()
        .filter(|p| !skip(p.pid))
        .filter(|p| {
            let dir = PathBuf::from(format!("/proc/{}", p.pid));
            ["cwd", "root", "exe"].iter().any(|l| inside(dir.join(l)))
                || std::fs::read_dir(dir.join("fd"))
                    .map(|fds| fds.flatten().any(|fd| inside(fd.path())))
                    .unwrap_or(false)
        })
        .map(|p| (p.pid, p.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse_with_escapes() {
        let text = b"22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
            90 29 0:50 / /tmp/a\\040b,c:d\\134e rw,nosuid shared:1 - fuse.sshfs box:/data\\040x rw,user_id=0\n";
        let table = parse_mountinfo(text);
        assert_eq!(table.len(), 2);
        assert_eq!(table[1].point, Path::new("/tmp/a b,c:d\\e"));
        assert_eq!(table[1].fstype, "fuse.sshfs");
        assert_eq!(table[1].source, "box:/data x");
    }

    #[test]
    fn bsd_mount_lines_parse() {
        let table = parse_bsd_mount(
            "/dev/disk3s1 on / (apfs, sealed, local)\nbox:/home/tom on /Users/tom/my fenton (macfuse, nodev, nosuid)\n",
        );
        assert_eq!(table[1].source, "box:/home/tom");
        assert_eq!(table[1].point, Path::new("/Users/tom/my fenton"));
        assert_eq!(table[1].fstype, "macfuse");
    }

    #[test]
    fn options_are_escaped_for_fuses_parser_and_ssh() {
        assert_eq!(
            ssh_config_word("/my keys/a\\\"b%c"),
            "\"/my keys/a\\\\\\\"b%%c\""
        );
        assert_eq!(
            fuse_option("IdentityFile=/k,a\\b"),
            "IdentityFile=/k\\,a\\\\b"
        );
    }
}
