//! The test harness: real boxes (an OpenSSH sshd on 127.0.0.1, started by `scripts/sandbox`),
//! fenton run against them with a private HOME, config and runtime directory, and the end of
//! every process a test started (sshd, ssh masters, tmux servers, sshfs, Jupyter), even when
//! the test fails.

#![allow(dead_code)]

pub mod http;
pub mod netns;
pub mod slurm;

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const FENTON: &str = env!("CARGO_BIN_EXE_fenton");
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Whether a test may run. A missing part skips the test (and says so) unless
/// `FENTON_REQUIRE_ALL=1`, where it fails: CI must never pass a test it did not run.
pub fn available(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if std::env::var("FENTON_REQUIRE_ALL").is_ok_and(|v| v == "1") {
        panic!(
            "{what} is missing and FENTON_REQUIRE_ALL=1: install it (scripts/test does as root)"
        );
    }
    eprintln!("SKIPPED: {what} is missing");
    false
}

/// Skips (or, in CI, fails) the calling test when a part is missing.
#[macro_export]
macro_rules! require {
    ($what:expr, $present:expr) => {
        if !$crate::common::available($what, $present) {
            return;
        }
    };
}

/// The project's `nvidia-smi` stand-in, which answers from real GPUs' recordings
/// (`tests/fixtures/nvidia-smi/`); its first lines say how to choose them.
pub fn nvidia_smi() -> PathBuf {
    Path::new(ROOT).join("tests/bin/nvidia-smi")
}

/// One recording of a real GPU's nvidia-smi, by file name.
pub fn recording(name: &str) -> PathBuf {
    Path::new(ROOT).join("tests/fixtures/nvidia-smi").join(name)
}

/// Whether a program is installed (sbin included, where sshd lives).
pub fn installed(program: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default() + ":/usr/sbin:/sbin:/usr/local/sbin";
    std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
}

/// Waits for a condition, polling, and fails the test naming what it waited for.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a finished command left.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Out {
    pub fn ok(self) -> Out {
        assert_eq!(self.code, Some(0), "command failed: {self:#?}");
        self
    }
}

/// Runs a command to its end, killing it and failing the test past `timeout`.
pub fn run(mut cmd: Command, timeout: Duration) -> Out {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output: Output = match rx.recv_timeout(timeout) {
        Ok(output) => output.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
    };
    Out {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// A real sshd on 127.0.0.1, in a directory of its own.
pub struct Sshd {
    pub dir: PathBuf,
    pub port: u16,
    envs: Vec<String>,
    options: Vec<String>,
    /// The network namespace and address it listens on, behind a [`netns::Link`].
    netns: Option<(String, String)>,
}

impl Sshd {
    fn start(
        dir: PathBuf,
        envs: Vec<String>,
        options: Vec<String>,
        netns: Option<(String, String)>,
    ) -> Sshd {
        let sshd = Sshd {
            dir,
            port: 0,
            envs,
            options,
            netns,
        };
        sshd.sandbox("start");
        let port = std::fs::read_to_string(sshd.dir.join("port")).expect("sandbox port");
        Sshd {
            port: port.trim().parse().expect("port number"),
            ..sshd
        }
    }

    fn sandbox(&self, action: &str) {
        let mut cmd = Command::new(Path::new(ROOT).join("scripts/sandbox"));
        cmd.arg(action)
            .arg("--dir")
            .arg(&self.dir)
            .arg("--no-profile");
        if action == "start" {
            if self.port != 0 {
                cmd.args(["--port", &self.port.to_string()]);
            }
            for env in &self.envs {
                cmd.args(["--env", env]);
            }
            for option in &self.options {
                cmd.args(["--option", option]);
            }
            if let Some((_, addr)) = &self.netns {
                cmd.args(["--listen", addr]);
            }
        }
        if let Some((ns, _)) = &self.netns {
            let mut wrapped = Command::new("nsenter");
            wrapped
                .arg(format!("--net=/run/netns/{ns}"))
                .arg("--")
                .arg(cmd.get_program())
                .args(cmd.get_args());
            cmd = wrapped;
        }
        cmd.stdin(Stdio::null());
        let out = run(cmd, Duration::from_secs(20));
        assert_eq!(out.code, Some(0), "scripts/sandbox {action}: {out:#?}");
    }

    /// Stops the listener and its connections, then starts it again on the same port.
    pub fn restart(&self) {
        self.sandbox("stop");
        self.sandbox("start");
    }

    pub fn stop(&self) {
        self.sandbox("stop");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// How many ssh connections the box has accepted so far.
    pub fn accepted(&self) -> usize {
        self.log().matches("Accepted publickey").count()
    }

    /// The client's ssh config for this box (Host `fenton-sandbox`).
    pub fn ssh_config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }
}

/// Builds a [`TestBox`]: environment for the box's sessions and extra profile keys.
#[derive(Default)]
pub struct Builder {
    envs: Vec<String>,
    bashrc: Option<String>,
    profile: String,
    sshd_options: Vec<String>,
    link: bool,
}

impl Builder {
    /// An environment variable every session on the box gets (sshd's SetEnv).
    pub fn env(mut self, name: &str, value: &str) -> Builder {
        self.envs.push(format!("{name}={value}"));
        self
    }

    /// A `.bashrc` in the box's HOME, which its login shell runs for every command.
    pub fn bashrc(mut self, text: &str) -> Builder {
        self.bashrc = Some(text.into());
        self
    }

    /// An sshd_config line (`KEYWORD VALUE`) that wins over the sandbox's defaults.
    pub fn sshd_option(mut self, line: &str) -> Builder {
        self.sshd_options.push(line.into());
        self
    }

    /// Lines added to the profile (TOML, under `[profile.box]`, before any sub-table).
    pub fn profile(mut self, toml: &str) -> Builder {
        self.profile.push_str(toml);
        self.profile.push('\n');
        self
    }

    /// The box behind a link the test can cut (`test.link()`): sshd in a network namespace
    /// of its own, fenton and `on_box` in another, joined by a veth pair.
    pub fn link(mut self) -> Builder {
        self.link = true;
        self
    }

    /// None when sshd is missing (the test is skipped; it fails under FENTON_REQUIRE_ALL).
    pub fn start(self) -> Option<TestBox> {
        if !available("sshd (openssh-server)", installed("sshd")) {
            return None;
        }
        if self.link
            && !available(
                "network namespaces (root, iproute2, nftables, nsenter)",
                netns::Link::available(),
            )
        {
            return None;
        }
        let link = self.link.then(netns::Link::new);
        let tmp = tempfile::Builder::new()
            .prefix("fenton-t")
            .tempdir()
            .expect("tempdir");
        let root = tmp.path().to_path_buf();
        for dir in ["home", "xdg", "run", "remote"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        let netns = link
            .as_ref()
            .map(|l| (l.box_ns.clone(), l.box_addr.clone()));
        let sshd = Sshd::start(root.join("box"), self.envs, self.sshd_options, netns);
        let tmux_socket = format!("ft-{}", root.file_name().unwrap().to_string_lossy());
        let test = TestBox {
            config: root.join("xdg/fenton/config.toml"),
            remote_dir: root.join("remote"),
            tmux_socket,
            sshd,
            root,
            link,
            _tmp: tmp,
        };
        if let Some(bashrc) = &self.bashrc {
            std::fs::write(test.box_home().join(".bashrc"), bashrc).unwrap();
        }
        test.write_config(&test.default_config(&self.profile));
        Some(test)
    }
}

/// A box and a laptop for one test: sshd, a fenton config pointing at it, and private
/// HOME, XDG and runtime directories.
pub struct TestBox {
    pub sshd: Sshd,
    pub root: PathBuf,
    pub config: PathBuf,
    pub remote_dir: PathBuf,
    pub tmux_socket: String,
    /// Set by `Builder::link`; dropped after the processes in it are ended.
    pub link: Option<netns::Link>,
    _tmp: tempfile::TempDir,
}

impl TestBox {
    pub fn new() -> Option<TestBox> {
        Builder::default().start()
    }

    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The HOME of the box's sessions, a directory of the test's own.
    pub fn box_home(&self) -> PathBuf {
        self.sshd.dir.join("home")
    }

    /// The profile `box`, reaching the sshd through its own ssh config.
    pub fn default_config(&self, extra: &str) -> String {
        format!(
            "default = \"box\"\n\n[profile.box]\nhost = \"fenton-sandbox\"\nssh_config = {:?}\nremote_dir = {:?}\nconnect_timeout = 5\n{extra}\n[profile.box.tmux]\nsocket = {:?}\n",
            self.sshd.ssh_config(),
            self.remote_dir,
            self.tmux_socket
        )
    }

    pub fn write_config(&self, text: &str) {
        std::fs::create_dir_all(self.config.parent().unwrap()).unwrap();
        std::fs::write(&self.config, text).unwrap();
        std::fs::set_permissions(&self.config, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// `fenton` with nothing of the developer's own environment: only PATH, and HOME, XDG and
    /// the runtime directory inside the test's temp dir.
    pub fn fenton<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(FENTON);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.root.join("home"))
            .env("XDG_CONFIG_HOME", self.root.join("xdg"))
            .env("XDG_RUNTIME_DIR", self.root.join("run"))
            .env("LANG", "C.UTF-8")
            .args(args)
            .stdin(Stdio::null());
        self.client(cmd)
    }

    /// `cmd` as the laptop runs it: behind the link when the test has one.
    pub fn client(&self, cmd: Command) -> Command {
        match &self.link {
            Some(link) => link.enter(&cmd),
            None => cmd,
        }
    }

    /// Runs fenton to its end (30 s at most).
    pub fn run<I, S>(&self, args: I) -> Out
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(self.fenton(args), Duration::from_secs(30))
    }

    /// Runs a shell line on the box with plain ssh (not through fenton), for checking.
    pub fn on_box(&self, line: &str) -> Out {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F")
            .arg(self.sshd.ssh_config())
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "ControlPath=none",
                "fenton-sandbox",
                line,
            ])
            .stdin(Stdio::null());
        run(self.client(cmd), Duration::from_secs(30))
    }

    /// The control sockets of shared connections made in this test.
    pub fn control_sockets(&self) -> Vec<PathBuf> {
        let dir = self.root.join("run/fenton");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return vec![];
        };
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_none())
            .collect()
    }

    /// The pids of local processes whose command line mentions `needle`.
    pub fn pids_mentioning(needle: &str) -> Vec<i32> {
        let me = std::process::id() as i32;
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return vec![];
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != me)
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
            })
            .collect()
    }

    /// The pids of fenton's forwarders (`fenton hold-forwards`) started in this test.
    pub fn forwarders(&self) -> Vec<i32> {
        let root = self.root.to_string_lossy().into_owned();
        Self::pids_mentioning("hold-forwards")
            .into_iter()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&root))
            })
            .collect()
    }

    /// The pids of the ssh masters serving this test's shared connection (not the
    /// forwarder, whose socket's name starts with the connection's).
    pub fn masters(&self) -> Vec<i32> {
        self.control_sockets()
            .iter()
            .flat_map(|socket| Self::pids_mentioning(&format!("ControlPath={}", socket.display())))
            .collect()
    }

    fn kill_mentioning(needle: &str) {
        for pid in Self::pids_mentioning(needle) {
            let _ = nix_kill(pid);
        }
    }
}

fn nix_kill(pid: i32) -> std::io::Result<()> {
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .map(|_| ())
}

impl Drop for TestBox {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- sshd log ---\n{}", self.sshd.log());
            if let Ok(entries) = std::fs::read_dir(self.root.join("run/fenton")) {
                for entry in entries.flatten() {
                    if entry.path().extension().is_some_and(|e| e == "log") {
                        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                        eprintln!("--- {} ---\n{text}", entry.path().display());
                    }
                }
            }
        }
        let _ = Command::new("tmux")
            .args(["-L", &self.tmux_socket, "kill-server"])
            .stderr(Stdio::null())
            .status();
        // A mount left by a failed test: detach it, so neither the processes ended below nor
        // the temp dir's removal wait on it.
        for point in mounts_under(&self.root) {
            let _ = Command::new("fusermount3")
                .arg("-uz")
                .arg(&point)
                .stderr(Stdio::null())
                .status();
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&point)
                .stderr(Stdio::null())
                .status();
        }
        self.sshd.stop();
        let root = self.root.to_string_lossy().into_owned();
        Self::kill_mentioning(&root);
        Self::kill_mentioning(&self.tmux_socket);
    }
}

/// The mount points under `dir`, from the mount table (which never asks a mount anything).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| {
            // Space, tab, newline and backslash come as octal escapes.
            let mut out = Vec::new();
            let bytes = point.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'\\' && i + 3 < bytes.len() {
                    let n = std::str::from_utf8(&bytes[i + 1..i + 4])
                        .ok()
                        .and_then(|d| u8::from_str_radix(d, 8).ok());
                    if let Some(n) = n {
                        out.push(n);
                        i += 4;
                        continue;
                    }
                }
                out.push(bytes[i]);
                i += 1;
            }
            PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
        })
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// A local tmux server of the test's own, to drive interactive commands like a person:
/// type with `send`, read the screen with `screen`.
pub struct Terminal {
    socket: PathBuf,
    status_file: PathBuf,
}

/// Runs the program as a child, like a shell would (same process group, so Ctrl-C reaches it),
/// and writes its exit status to a file: tmux 3.3 sometimes marks a pane dead without ever
/// giving its `#{pane_dead_status}`. A negative status is the signal that killed it.
const WAIT_AND_RECORD: &str = "import os, signal, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGQUIT, signal.SIG_IGN)
status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
with open(sys.argv[1] + '.part', 'w') as f:
    f.write(str(status))
os.rename(sys.argv[1] + '.part', sys.argv[1])
";

impl Terminal {
    /// Starts `cmd` in a 120x40 terminal.
    pub fn start(test: &TestBox, cmd: &Command) -> Option<Terminal> {
        if !available("tmux", installed("tmux")) {
            return None;
        }
        let socket = test.root.join("term.sock");
        // Keep the pane after the program ends, to read what it said last and its status.
        let conf = test.root.join("term.conf");
        std::fs::write(&conf, "set -g remain-on-exit on\n").unwrap();
        let status_file = test.root.join("term.status");
        let _ = std::fs::remove_file(&status_file);
        let python = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join("python3"))
            .find(|path| path.is_file())
            .expect("python3, to run the terminal's program");
        let mut tmux = Command::new("tmux");
        tmux.arg("-S")
            .arg(&socket)
            .arg("-f")
            .arg(&conf)
            .args(["new-session", "-d", "-x", "120", "-y", "40", "--"])
            .arg(python)
            .args(["-c", WAIT_AND_RECORD])
            .arg(&status_file)
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .env_clear();
        for (key, value) in cmd.get_envs() {
            if let Some(value) = value {
                tmux.env(key, value);
            }
        }
        tmux.env("TERM", "xterm-256color");
        let out = run(tmux, Duration::from_secs(10));
        assert_eq!(out.code, Some(0), "cannot start a terminal: {out:#?}");
        Some(Terminal {
            socket,
            status_file,
        })
    }

    fn tmux(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.socket).args(args);
        run(cmd, Duration::from_secs(10))
    }

    /// Types keys (tmux key names: "Enter", "C-b", …, or literal text with `literal`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend_from_slice(keys);
        self.tmux(&args).ok();
    }

    /// Types text as is, then Enter.
    pub fn line(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "0", "-l", text]).ok();
        self.keys(&["Enter"]);
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "0", "-S", "-200"])
            .stdout
    }

    pub fn wait_for(&self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return;
            }
            if Instant::now() > deadline {
                panic!("timed out after {timeout:?} waiting for {text:?} on screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A tmux format about the pane (`#{alternate_on}`, `#{cursor_flag}`…), expanded.
    pub fn display(&self, format: &str) -> String {
        self.tmux(&["display-message", "-p", "-t", "0", format])
            .stdout
            .trim()
            .to_string()
    }

    /// Whether the program in the terminal has ended.
    pub fn exited(&self) -> bool {
        self.tmux(&["display-message", "-p", "-t", "0", "#{pane_dead}"])
            .stdout
            .trim()
            == "1"
    }

    /// The program's exit status, once ended; None if a signal killed it.
    pub fn status(&self) -> Option<i32> {
        let status = std::fs::read_to_string(&self.status_file).unwrap_or_else(|err| {
            panic!(
                "the terminal's program left no exit status ({err}); screen:\n{}",
                self.screen()
            )
        });
        Some(status.trim().parse().unwrap()).filter(|status: &i32| *status >= 0)
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}
