//! Checks of the way to the box: the name resolves, the port answers and speaks SSH, the key
//! logs in without a prompt, the host key is known, and how long a round trip takes.

use std::io::Read;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::laptop::SshSettings;
use super::{Check, Target};
use crate::config::expand_home;
use crate::remote::{runtime, Remote};
use crate::ui;

/// A command as small as `true` that takes longer has hung.
const COMMAND_LIMIT: Duration = Duration::from_secs(20);

/// Round trips above this make interactive work lag.
const SLOW_RTT: Duration = Duration::from_millis(300);

struct Endpoint {
    host: String,
    port: u16,
    user: String,
}

/// The link's checks, and the box's (from `box_checks`) when the shared connection works.
pub fn checks(
    target: &Target,
    remote: &Remote,
    settings: &SshSettings,
    key_refused: bool,
    box_checks: impl Fn() -> Vec<Check>,
) -> (Vec<Check>, Option<Vec<Check>>) {
    let timeout = Duration::from_secs(target.profile.connect_timeout);
    let end = Endpoint {
        host: settings
            .get("hostname")
            .unwrap_or(&target.profile.host)
            .to_string(),
        port: settings
            .get("port")
            .and_then(|p| p.parse().ok())
            .unwrap_or(22),
        user: settings.get("user").unwrap_or("").to_string(),
    };
    let proxy = [("proxyjump", "ProxyJump"), ("proxycommand", "ProxyCommand")]
        .into_iter()
        .find_map(|(key, name)| {
            settings
                .get(key)
                .filter(|v| *v != "none")
                .map(|v| format!("{name} {v}"))
        });
    let mut checks = Vec::new();
    let mut network = None;
    let reachable = match proxy {
        Some(proxy) => {
            checks.push(Check::ok(
                "link.resolve",
                format!("{} is reached through {proxy}", end.host),
            ));
            checks.push(Check::skipped(
                "link.port",
                "the connection goes through a proxy",
            ));
            true
        }
        None => {
            let (check, addrs) = resolve(target, &end);
            checks.push(check);
            if addrs.is_empty() {
                checks.push(Check::skipped("link.port", "the host does not resolve"));
                false
            } else {
                let (check, rtt) = port(target, &end, &addrs, timeout);
                network = rtt;
                checks.push(check);
                network.is_some()
            }
        }
    };
    let known = known_host(settings, &end);
    if !reachable {
        let why = "the box cannot be reached";
        checks.push(Check::skipped("link.auth", why));
        checks.push(Check::skipped("link.host_key", why));
        checks.push(Check::skipped("link.rtt", why));
        return (checks, None);
    }
    // The fresh login takes a handshake; a shared connection that is already up serves the
    // box's checks meanwhile.
    let pending = Pending::login(remote);
    let live =
        !key_refused && runtime().is_ok_and(|rt| rt.block_on(remote.live_session()).is_some());
    let mut command = None;
    let mut on_box = None;
    if live {
        command = Some(time_command(remote));
        if command.as_ref().is_some_and(Result::is_ok) {
            on_box = Some(box_checks());
        }
    }
    let login = pending.wait(timeout);
    let key_trouble = login.stderr.contains("IDENTIFICATION HAS CHANGED")
        || login.stderr.contains("Host key verification failed");
    let auth = if key_trouble {
        Check::skipped("link.auth", "the host key is not trusted")
    } else {
        auth_check(target, &end, &login)
    };
    let logged_in = auth.status == super::Status::Ok;
    checks.push(auth);
    checks.push(host_key(&end, known, &login, key_trouble));
    if command.is_none() && logged_in && !key_refused {
        command = Some(time_command(remote));
        if command.as_ref().is_some_and(Result::is_ok) {
            on_box = Some(box_checks());
        }
    }
    checks.push(match command {
        Some(command) => rtt(network, login.success.then_some(login.elapsed), command),
        None if key_refused => Check::skipped(
            "link.rtt",
            "fenton will not connect until laptop.identity is fixed",
        ),
        None => Check::skipped("link.rtt", "cannot log in"),
    });
    (checks, on_box)
}

fn resolve(target: &Target, end: &Endpoint) -> (Check, Vec<SocketAddr>) {
    let id = "link.resolve";
    match (end.host.as_str(), end.port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            let check = if shown.is_empty() {
                Check::problem(
                    id,
                    format!("{} has no address", end.host),
                    format!("fix `host` {}", target.section("")),
                )
            } else {
                Check::ok(id, format!("{} is {}", end.host, shown.join(", ")))
            };
            (check, addrs)
        }
        Err(e) => (
            Check::problem(
                id,
                format!("cannot resolve {}: {e}", end.host),
                format!(
                    "fix `host` {} (or the HostName in your ssh config), or check the network (VPN, DNS)",
                    target.section("")
                ),
            ),
            vec![],
        ),
    }
}

/// Connects to the first address that answers and reads the server's SSH banner; on success
/// also returns how long the TCP connect took (one network round trip).
fn port(
    target: &Target,
    end: &Endpoint,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> (Check, Option<Duration>) {
    let id = "link.port";
    let to = format!("{} port {}", end.host, end.port);
    let port_fix = format!(
        "set `port = N` {} to the port sshd listens on (now {}), and check that sshd runs on the box",
        target.section(""),
        end.port
    );
    let mut last_error = None;
    for addr in addrs {
        let start = Instant::now();
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(mut stream) => {
                let rtt = start.elapsed();
                let _ = stream.set_read_timeout(Some(timeout));
                let mut banner = Vec::new();
                let mut byte = [0u8; 1];
                while banner.len() < 255 && !banner.ends_with(b"\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => banner.push(byte[0]),
                        _ => break,
                    }
                }
                let banner = String::from_utf8_lossy(&banner).trim().to_string();
                if !banner.starts_with("SSH-") {
                    let said = if banner.is_empty() {
                        format!("said nothing within {} s", timeout.as_secs())
                    } else {
                        format!("answered {banner:?}")
                    };
                    return (
                        Check::problem(
                            id,
                            format!("{to} accepts connections but is not an ssh server: it {said}"),
                            port_fix,
                        ),
                        None,
                    );
                }
                return (Check::ok(id, format!("{to} answers: {banner}")), Some(rtt));
            }
            Err(e) => last_error = Some(e),
        }
    }
    let error = last_error.expect("at least one address");
    let message = match error.kind() {
        std::io::ErrorKind::ConnectionRefused => format!("{to} refused the connection"),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            format!("no answer from {to} within {} s", timeout.as_secs())
        }
        _ => format!("cannot reach {to}: {error}"),
    };
    let fix = if error.kind() == std::io::ErrorKind::ConnectionRefused {
        port_fix
    } else {
        format!(
            "check that the box is up and the address right (`host` {}); a firewall may drop port {}",
            target.section(""),
            end.port
        )
    };
    (Check::problem(id, message, fix), None)
}

struct Login {
    success: bool,
    stderr: String,
    elapsed: Duration,
    timed_out: bool,
}

/// A fresh login with ssh's BatchMode, under way: it fails instead of asking for a password
/// or passphrase.
struct Pending {
    start: Instant,
    pid: Option<u32>,
    done: mpsc::Receiver<std::io::Result<std::process::Output>>,
}

impl Pending {
    fn login(remote: &Remote) -> Pending {
        let mut cmd = Command::new("ssh");
        // ssh takes the first value given: these come before the profile's own options.
        cmd.args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=none",
        ])
        .args(remote.ssh_options())
        .args(remote.destination())
        .arg("true");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        ui::trace_command("ssh", cmd.get_args());
        let (tx, done) = mpsc::channel();
        let start = Instant::now();
        let pid = match cmd.spawn() {
            Ok(child) => {
                let pid = child.id();
                std::thread::spawn(move || {
                    let _ = tx.send(child.wait_with_output());
                });
                Some(pid)
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                None
            }
        };
        Pending { start, pid, done }
    }

    fn wait(self, timeout: Duration) -> Login {
        let limit = timeout + Duration::from_secs(10);
        let left = limit.saturating_sub(self.start.elapsed());
        match self.done.recv_timeout(left) {
            Ok(Ok(out)) => Login {
                // ssh's own failures are 255; any other status is the box's login shell
                // running `true` (a start-up file that exits 1 is link.rtt's to report).
                success: out.status.code().is_some_and(|code| code != 255),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                elapsed: self.start.elapsed(),
                timed_out: false,
            },
            Ok(Err(e)) => Login {
                success: false,
                stderr: format!("cannot run ssh: {e}"),
                elapsed: self.start.elapsed(),
                timed_out: false,
            },
            Err(_) => {
                if let Some(pid) = self.pid {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                Login {
                    success: false,
                    stderr: String::new(),
                    elapsed: self.start.elapsed(),
                    timed_out: true,
                }
            }
        }
    }
}

fn auth_check(target: &Target, end: &Endpoint, login: &Login) -> Check {
    let id = "link.auth";
    let who = format!("{}@{}", end.user, end.host);
    if login.success {
        return Check::ok(id, format!("{who} logs in with a key, no prompt"));
    }
    if login.timed_out {
        return Check::problem(
            id,
            format!(
                "logging in to {who} did not finish within {} s",
                login.elapsed.as_secs()
            ),
            "run `fenton connect -vv` to see where it stops",
        );
    }
    let last = login
        .stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .unwrap_or("ssh exited without saying why");
    if login.stderr.contains("Permission denied")
        || login.stderr.contains("Too many authentication")
    {
        let key = target
            .profile
            .identity_file
            .clone()
            .unwrap_or_else(|| "~/.ssh/id_ed25519".into());
        let port = if end.port == 22 {
            String::new()
        } else {
            format!("-p {} ", end.port)
        };
        return Check::problem(
            id,
            format!("{who} does not accept your key without a prompt ({last})"),
            format!(
                "ssh-copy-id -i {key}.pub {port}{who} (a key with a passphrase: ssh-add {key}); or fix `user`/`identity_file` {}",
                target.section("")
            ),
        );
    }
    Check::problem(
        id,
        format!("cannot log in to {who}: {last}"),
        "run `fenton connect -vv` to see where it stops",
    )
}

/// The known_hosts files ssh reads for this box, and the file that knows it, if any.
fn known_host(settings: &SshSettings, end: &Endpoint) -> Option<String> {
    let name = settings
        .get("hostkeyalias")
        .filter(|a| *a != "none")
        .unwrap_or(&end.host);
    let name = if end.port == 22 {
        name.to_string()
    } else {
        format!("[{name}]:{}", end.port)
    };
    let files = ["userknownhostsfile", "globalknownhostsfile"]
        .iter()
        .flat_map(|key| settings.all(key))
        .flat_map(|v| v.split_whitespace())
        .map(expand_home)
        .filter(|p| p.is_file() && p != Path::new("/dev/null"));
    for file in files {
        let found = Command::new("ssh-keygen")
            .args(["-F", &name, "-f"])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if found {
            return Some(format!("{name} in {}", file.display()));
        }
    }
    None
}

fn host_key(end: &Endpoint, known: Option<String>, login: &Login, key_trouble: bool) -> Check {
    let id = "link.host_key";
    if key_trouble {
        let fix = login
            .stderr
            .lines()
            .find_map(|l| l.find("ssh-keygen -f").map(|i| l[i..].trim().to_string()))
            .unwrap_or_else(|| format!("ssh-keygen -R '[{}]:{}'", end.host, end.port));
        return Check::problem(
            id,
            format!(
                "the host key of {} does not match the one you trusted (a reinstalled box, or someone in between)",
                end.host
            ),
            format!("if you expect the change: {fix}"),
        );
    }
    match known {
        Some(known) => Check::ok(id, format!("known: {known}")),
        None => Check::warning(
            id,
            format!(
                "{} was not in known_hosts: ssh trusted its key on first use (StrictHostKeyChecking=accept-new)",
                end.host
            ),
            Some(format!(
                "compare `ssh-keyscan -p {} {} | ssh-keygen -lf -` with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` run on the box's console",
                end.port, end.host
            )),
        ),
    }
}

/// Opens the shared connection (if needed) and times one command over it.
fn time_command(remote: &Remote) -> Result<Duration, String> {
    let timed = runtime().and_then(|rt| {
        rt.block_on(async {
            remote.session().await?;
            // One command: the box's login shell start-up files run for each (bash reads
            // ~/.bashrc for ssh commands), so more would only make doctor slower. Whatever
            // they print is captured, not mixed into doctor's report.
            let start = Instant::now();
            let out = tokio::time::timeout(COMMAND_LIMIT, remote.output("true", &[]))
                .await
                .map_err(|_| {
                    anyhow::anyhow!("`true` got no answer within {} s", COMMAND_LIMIT.as_secs())
                })??;
            if out.code != 0 {
                anyhow::bail!(
                    "the box's login shell ends every command with exit {} before running it (`true` failed): a start-up file (~/.bashrc?) exits",
                    out.code
                );
            }
            anyhow::Ok(start.elapsed())
        })
    });
    timed.map_err(|e| format!("{e:#}"))
}

fn rtt(
    network: Option<Duration>,
    login: Option<Duration>,
    command: Result<Duration, String>,
) -> Check {
    let id = "link.rtt";
    let command = match command {
        Ok(command) => command,
        Err(e) => {
            let fix = if e.contains("login shell") {
                "on the box, end ~/.bashrc's work for shells that are not interactive: `case $- in *i*) ;; *) return ;; esac` at its top"
            } else {
                "run `fenton connect -vv` to see why"
            };
            return Check::problem(id, format!("the shared connection does not work: {e}"), fix);
        }
    };
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let mut parts = Vec::new();
    if let Some(network) = network {
        parts.push(format!("network {} (TCP connect)", ms(network)));
    }
    if let Some(login) = login {
        parts.push(format!("login {}", ms(login)));
    }
    parts.push(format!(
        "command over the shared connection {}",
        ms(command)
    ));
    let message = parts.join(", ");
    if network.unwrap_or(command) > SLOW_RTT {
        Check::warning(
            id,
            format!("{message}: a slow link, interactive work will lag"),
            Some(
                "prefer `fenton tmux` and `fenton exec` over an sshfs mount for heavy file work"
                    .into(),
            ),
        )
    } else {
        Check::ok(id, message)
    }
}
