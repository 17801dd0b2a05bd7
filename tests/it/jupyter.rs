//! `fenton jupyter` against a real Jupyter server (jupyter-server from PyPI, in the venv that
//! scripts/test makes): it answers through the local forward with its token and refuses
//! without, is reused and outlives fenton and its connection, keeps its token off every
//! command line and out of fenton's output, and fails clearly on busy ports and bad commands.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{run, wait_until, Builder, Out, TestBox, ROOT};

/// The Jupyter that scripts/test installs.
fn jupyter() -> PathBuf {
    Path::new(ROOT).join("target/jupyter-venv/bin/jupyter")
}

/// A port nobody listens on at 127.0.0.1 right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A box whose profile runs the venv's `jupyter server` on ports of its own, with Jupyter's
/// own files inside the test's directory; its server is ended when this is dropped.
struct Lab {
    test: TestBox,
    remote_port: u16,
    local_port: u16,
}

impl Lab {
    fn start(command: &str, start_timeout: u64) -> Option<Lab> {
        Lab::start_on(TestBox::builder(), command, start_timeout)
    }

    fn start_on(box_: Builder, command: &str, start_timeout: u64) -> Option<Lab> {
        let test = box_.start()?;
        let (remote_port, local_port) = (free_port(), free_port());
        let jr = test.root.join("jupyter-home");
        let nb = test.root.join("notebooks");
        std::fs::create_dir_all(&nb).unwrap();
        // The setup line keeps Jupyter's runtime, data and config files out of the box's HOME.
        let setup = format!(
            "export JUPYTER_RUNTIME_DIR={0}/run JUPYTER_DATA_DIR={0}/data JUPYTER_CONFIG_DIR={0}/config",
            jr.display()
        );
        test.write_config(&test.default_config(&format!(
            "[profile.box.jupyter]\ncommand = {command:?}\nsetup = {setup:?}\ndir = {:?}\nremote_port = {remote_port}\nlocal_port = {local_port}\nstart_timeout = {start_timeout}\n",
            nb.display()
        )));
        Some(Lab {
            test,
            remote_port,
            local_port,
        })
    }

    /// The venv's Jupyter; None (skip, or fail in CI) when scripts/test has not installed it.
    fn real() -> Option<Lab> {
        Lab::real_on(TestBox::builder())
    }

    fn real_on(box_: Builder) -> Option<Lab> {
        if !crate::common::available(
            "jupyter-server (scripts/test installs it)",
            jupyter().is_file(),
        ) {
            return None;
        }
        Lab::start_on(box_, &format!("{} server", jupyter().display()), 60)
    }

    /// Runs fenton with a generous limit: Jupyter takes seconds to start on a busy machine.
    fn run(&self, args: &[&str]) -> Out {
        run(self.test.fenton(args), Duration::from_secs(90))
    }

    /// `fenton status` lists one Jupyter server: `pid`, on the remote port.
    fn lists_only(&self, pid: i32) {
        let out = self.run(&["status", "--json"]).ok();
        let status: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let servers = status["jupyter"].as_array().unwrap();
        assert_eq!(servers.len(), 1, "{status:#}");
        assert_eq!(servers[0]["pid"], pid, "{status:#}");
        assert_eq!(servers[0]["port"], self.remote_port, "{status:#}");
    }

    fn run_with_browser(&self, args: &[&str]) -> Out {
        let mut cmd = self.test.fenton(args);
        cmd.env("BROWSER", self.browser());
        run(cmd, Duration::from_secs(90))
    }

    /// A browser that records the URL it was asked to open.
    fn browser(&self) -> PathBuf {
        let path = self.test.root.join("browser");
        let record = self.test.root.join("opened");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n",
                record.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// The URLs the browser was asked to open.
    /// The URLs the browser recorded, once it has recorded `n` (it runs on its own, and may
    /// write after fenton has exited).
    fn opened_n(&self, n: usize) -> Vec<String> {
        wait_until(
            "the browser to record its URL",
            Duration::from_secs(10),
            || self.opened().len() >= n,
        );
        self.opened()
    }

    fn opened(&self) -> Vec<String> {
        std::fs::read_to_string(self.test.root.join("opened"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn state(&self, file: &str) -> PathBuf {
        self.test.remote_dir.join("jupyter").join(file)
    }

    fn token(&self) -> String {
        std::fs::read_to_string(self.state("token")).expect("token file")
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.state("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// The HTTP status of GET /api/status at a local port, with or without a token.
fn api_status(port: u16, token: Option<&str>) -> Option<u16> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut request = agent.get(format!("http://127.0.0.1:{port}/api/status"));
    if let Some(token) = token {
        request = request.header("Authorization", format!("token {token}"));
    }
    request.call().ok().map(|r| r.status().as_u16())
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Every command line on this machine (the laptop and the box alike).
fn command_lines_holding(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let pid = e.ok()?.file_name().to_str()?.parse::<u32>().ok()?;
            let line = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let line = String::from_utf8_lossy(&line).replace('\0', " ");
            line.contains(needle).then(|| format!("{pid}: {line}"))
        })
        .collect()
}

#[test]
fn start_serves_jupyter_through_a_private_forward() {
    let Some(lab) = Lab::real() else { return };
    let start = lab.run_with_browser(&["-vv", "jupyter", "start"]).ok();
    let token = lab.token();
    let local = lab.local_port;

    assert_eq!(api_status(local, Some(&token)), Some(200), "{start:#?}");
    assert_eq!(api_status(local, None), Some(403));

    // A 0600 file of 48 hex digits, no newline; the box listens on 127.0.0.1 only.
    assert_eq!(token.len(), 48, "{token:?}");
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    let mode = std::fs::metadata(lab.state("token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let listen = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let hex = format!(":{:04X} ", lab.remote_port);
    let ours: Vec<&str> = listen
        .lines()
        .filter(|l| l.contains(&hex) && l.contains(" 0A "))
        .collect();
    assert!(
        !ours.is_empty()
            && ours.iter().all(|l| l
                .trim_start()
                .split(' ')
                .nth(1)
                .unwrap()
                .starts_with("0100007F")),
        "{ours:?}"
    );

    // The browser got a private page that leads to the token URL; its argv holds no token.
    let opened = lab.opened_n(1);
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert!(!opened[0].contains(&token));
    let page = std::fs::read_to_string(opened[0].strip_prefix("file://").unwrap()).unwrap();
    assert!(
        page.contains(&format!("http://127.0.0.1:{local}/?token={token}")),
        "{page}"
    );

    let status = lab.run(&["jupyter", "status"]).ok();
    let pid = lab.pid().unwrap();
    assert!(status.stdout.contains("running"), "{status:#?}");
    lab.lists_only(pid);
    assert!(status.stdout.contains(&pid.to_string()), "{status:#?}");
    assert!(
        status.stdout.contains(&lab.remote_port.to_string()),
        "{status:#?}"
    );
    assert!(
        status
            .stdout
            .contains(&format!("http://127.0.0.1:{local}/")),
        "{status:#?}"
    );

    let url = lab.run(&["jupyter", "url"]).ok();
    assert_eq!(
        url.stdout.trim(),
        format!("http://127.0.0.1:{local}/?token={token}")
    );

    // The token is on no command line, in tmux's remembered command nor in fenton's output.
    assert_eq!(command_lines_holding(&token), Vec::<String>::new());
    let panes = lab.test.on_box(&format!(
        "tmux -L {} list-panes -a -F '#{{pane_start_command}}'",
        lab.test.tmux_socket
    ));
    assert!(
        panes.stdout.contains("run.sh") && !panes.stdout.contains(&token),
        "{panes:#?}"
    );
    let stop = lab.run(&["-vv", "jupyter", "stop"]).ok();
    for out in [&start, &status, &stop] {
        assert!(
            !out.stdout.contains(&token) && !out.stderr.contains(&token),
            "{out:#?}"
        );
    }

    // Stopped: the server and the forward are gone; the token stays, private, for the next
    // start's same URL.
    assert!(!alive(pid), "Jupyter (pid {pid}) still runs after stop");
    assert_eq!(lab.token(), token);
    let mode = std::fs::metadata(lab.state("token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(api_status(local, None), None);
    let status = lab.run(&["jupyter", "status"]);
    assert_eq!(status.code, Some(1), "{status:#?}");
    assert!(status.stdout.contains("not running"), "{status:#?}");
}

#[test]
fn a_running_server_is_reused_and_outlives_fenton_and_its_connection() {
    let Some(lab) = Lab::real() else { return };
    let first = lab.run(&["jupyter", "start", "--no-browser"]).ok();
    assert_eq!(
        first.stdout.trim(),
        format!("http://127.0.0.1:{}/", lab.local_port)
    );
    let pid = lab.pid().unwrap();
    let token = lab.token();

    let again = lab.run(&["jupyter", "start", "--no-browser"]).ok();
    assert!(again.elapsed < Duration::from_secs(1), "{again:#?}");
    assert!(
        again.stderr.contains("already running") && again.stderr.contains(&pid.to_string()),
        "{again:#?}"
    );
    assert_eq!((lab.pid(), lab.token()), (Some(pid), token.clone()));

    // The forward is fenton's, not the connection's: it outlives a disconnect and connects
    // again when used; `disconnect --all` closes it, not Jupyter.
    let out = lab.run(&["disconnect"]).ok();
    assert!(out.stderr.contains("disconnect --all"), "{out:#?}");
    assert_eq!(api_status(lab.local_port, Some(&token)), Some(200));
    lab.run(&["disconnect", "--all"]).ok();
    assert_eq!(api_status(lab.local_port, None), None);
    lab.run(&["connect"]).ok();
    assert!(alive(pid));
    let status = lab.run(&["jupyter", "status"]).ok();
    assert!(
        status.stdout.contains(&pid.to_string()) && status.stdout.contains("forward is down"),
        "{status:#?}"
    );

    // No browser here (no BROWSER, no display): a plain line says so, the address follows.
    let out = lab.run(&["jupyter", "open"]).ok();
    assert!(
        out.stderr.starts_with(
            "fenton: warning: no browser found here: set BROWSER to your browser's command, or open the address below\n"
        ),
        "{out:#?}"
    );
    assert_eq!(
        out.stdout.trim(),
        format!("http://127.0.0.1:{}/", lab.local_port)
    );
    lab.run_with_browser(&["jupyter", "open"]).ok();
    assert_eq!(api_status(lab.local_port, Some(&token)), Some(200));
    assert_eq!(lab.opened_n(1).len(), 1);
    assert_eq!(lab.pid(), Some(pid));
    lab.run(&["jupyter", "stop"]).ok();
    assert!(!alive(pid));
}

#[test]
fn busy_ports_are_said_and_worked_around() {
    let Some(lab) = Lab::real() else { return };
    // The box's port is taken by a program of the test's: a clear error that names it.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = lab.run(&["jupyter", "start", "--no-browser", "--port", &port]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    let me = format!("pid {}", std::process::id());
    assert!(
        out.stderr
            .contains(&format!("port {port} on the box is taken")),
        "{out:#?}"
    );
    assert!(
        out.stderr.contains(&me) && out.stderr.contains("--port N"),
        "{out:#?}"
    );
    assert_eq!(out.stderr.lines().count(), 1, "{out:#?}");
    drop(taken);

    // The local port is busy: the next free one is used, and said.
    let busy = TcpListener::bind(("127.0.0.1", lab.local_port)).unwrap();
    let out = lab.run(&["jupyter", "start", "--no-browser"]).ok();
    let said = format!("local port {} is busy: using ", lab.local_port);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains(&said))
        .unwrap_or_else(|| panic!("{out:#?}"));
    let used: u16 = line
        .rsplit("using ")
        .next()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(used, lab.local_port);
    assert_eq!(out.stdout.trim(), format!("http://127.0.0.1:{used}/"));
    assert_eq!(api_status(used, Some(&lab.token())), Some(200));
    drop(busy);
    lab.run(&["jupyter", "stop"]).ok();
}

#[test]
fn a_command_that_does_not_exist_is_named_with_the_fix() {
    let Some(lab) = Lab::start("jupyter-not-installed-42 lab", 60) else {
        return;
    };
    let out = lab.run(&["jupyter", "start", "--no-browser"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        out.stderr
            .contains("`jupyter-not-installed-42` is not found on the box")
            && out.stderr.contains("pip install jupyterlab")
            && out.stderr.contains("jupyter.command")
            && !out.stderr.contains("run.sh"),
        "{out:#?}"
    );
    assert!(out.elapsed < Duration::from_secs(20), "{out:#?}");
    assert!(
        !lab.state("token").exists(),
        "a failed start leaves no token behind"
    );
    let status = lab.run(&["jupyter", "status"]);
    assert!(status.stdout.contains("not running"), "{status:#?}");
}

#[test]
fn a_failing_setup_or_a_server_that_never_listens_is_said() {
    let Some(lab) = Lab::start("sleep 30 #", 2) else {
        return;
    };
    // The deadline: the server never listens, so fenton stops it and says so.
    let out = lab.run(&["jupyter", "start", "--no-browser"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        out.stderr.contains("did not listen on box port"),
        "{out:#?}"
    );
    assert!(out.stderr.contains("jupyter.start_timeout"), "{out:#?}");
    assert!(out.elapsed < Duration::from_secs(10), "{out:#?}");
    let status = lab.run(&["jupyter", "status"]);
    assert!(status.stdout.contains("not running"), "{status:#?}");

    // A setup line that fails stops the start with its own words.
    let config = std::fs::read_to_string(&lab.test.config).unwrap();
    let setup = config.lines().find(|l| l.starts_with("setup = ")).unwrap();
    lab.test
        .write_config(&config.replace(setup, "setup = \"echo no such env >&2; false\""));
    let out = lab.run(&["jupyter", "start", "--no-browser"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(out.stderr.contains("jupyter.setup failed"), "{out:#?}");
    assert!(out.stderr.contains("no such env"), "{out:#?}");
}

#[test]
fn three_starts_at_once_make_one_server_that_all_three_share() {
    let Some(lab) = Lab::real() else { return };
    // Warm, so that all three reach the box together.
    lab.run(&["connect"]).ok();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let cmd = lab.test.fenton(["jupyter", "start", "--no-browser"]);
            std::thread::spawn(move || run(cmd, Duration::from_secs(120)))
        })
        .collect();
    let outs: Vec<Out> = handles
        .into_iter()
        .map(|h| h.join().unwrap().ok())
        .collect();
    let url = format!("http://127.0.0.1:{}/", lab.local_port);
    for out in &outs {
        assert_eq!(out.stdout.trim(), url, "{out:#?}");
    }
    let pid = lab.pid().expect("one server recorded");
    let token = lab.token();
    let started = outs
        .iter()
        .filter(|o| o.stderr.contains("Jupyter is running on the box"))
        .count();
    let reused = outs
        .iter()
        .filter(|o| o.stderr.contains("already running") && o.stderr.contains(&pid.to_string()))
        .count();
    assert_eq!((started, reused), (1, 2), "{outs:#?}");
    assert_eq!(api_status(lab.local_port, Some(&token)), Some(200));
    let servers = command_lines_holding(&lab.test.root.join("notebooks").display().to_string())
        .into_iter()
        .filter(|c| c.contains("port_retries=0"))
        .count();
    assert_eq!(servers, 1, "one Jupyter server");

    let status = lab.run(&["jupyter", "status"]).ok();
    assert!(status.stdout.contains(&pid.to_string()), "{status:#?}");
    lab.run(&["jupyter", "stop"]).ok();
    assert!(!alive(pid));
}

/// The `Umask:` of a process, from /proc.
fn umask_of(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .unwrap_or("")
        .trim()
        .to_string()
}

#[test]
fn setup_is_a_secret_and_jupyter_keeps_the_login_umask() {
    let Some(lab) = Lab::real() else { return };
    let mark = format!("HF-SECRET-{}-{}", std::process::id(), lab.remote_port);
    let config = std::fs::read_to_string(&lab.test.config).unwrap();
    lab.test.write_config(
        &config.replace("setup = \"", &format!("setup = \"export HF_TOKEN={mark}; ")),
    );

    // Every command line on the box, sampled all along doctor and the start.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (stop, mark) = (stop.clone(), mark.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seen.extend(command_lines_holding(&mark));
            }
            seen
        })
    };
    let doctor = lab.run(&["-vv", "doctor"]);
    let start = lab.run(&["-vv", "jupyter", "start", "--no-browser"]).ok();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    assert!(seen.is_empty(), "setup on a command line: {seen:?}");
    for out in [&doctor, &start] {
        assert!(
            !out.stdout.contains(&mark) && !out.stderr.contains(&mark),
            "{out:#?}"
        );
    }
    let show = lab.run(&["config", "show"]).ok();
    assert!(!show.stdout.contains(&mark), "{}", show.stdout);
    assert!(
        show.stdout.contains("setup = \"********\""),
        "{}",
        show.stdout
    );

    // Jupyter and the tmux server it started in keep the login umask, not fenton's 077.
    let login = lab.run(&["exec", "--", "sh", "-c", "umask"]).ok();
    let login = format!("{:0>4}", login.stdout.trim());
    let pid = lab.pid().expect("Jupyter's pid");
    assert_eq!(umask_of(pid), login);
    let server = lab
        .run(&[
            "exec",
            "--",
            "tmux",
            "-L",
            &lab.test.tmux_socket,
            "display-message",
            "-p",
            "#{pid}",
        ])
        .ok();
    assert_eq!(umask_of(server.stdout.trim().parse().unwrap()), login);
    // Its token and log stay private all the same.
    for file in ["token", "log"] {
        let mode = std::fs::metadata(lab.state(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{file} is {mode:o}");
    }
    lab.run(&["jupyter", "stop"]).ok();

    // A setup that fails is reported without its text.
    let failing: String = config
        .lines()
        .map(|l| {
            if l.starts_with("setup = ") {
                format!("setup = \"export HF_TOKEN={mark}; false\"\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    lab.test.write_config(&failing);
    let out = lab.run(&["jupyter", "start", "--no-browser"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        out.stderr.contains("jupyter.setup failed"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(&mark), "{}", out.stderr);
}

/// What `fenton jupyter start` leaves (its log, pid files, Jupyter's own runtime files in the
/// default place) sits in directories only the user can enter: doctor finds nothing exposed,
/// while it runs and after it stops, whatever the files' own modes.
#[test]
fn doctor_finds_fentons_own_jupyter_files_private() {
    let Some(lab) = Lab::real() else { return };
    let config = std::fs::read_to_string(&lab.test.config).unwrap();
    let setup = config.lines().find(|l| l.starts_with("setup = ")).unwrap();
    lab.test.write_config(&config.replace(setup, ""));
    let files = |when: &str| {
        let out = lab.run(&["doctor", "--json"]);
        let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let check = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "box.jupyter_files")
            .unwrap()
            .clone();
        assert_eq!(check["status"], "ok", "{when}: {check:#}");
    };
    lab.run(&["jupyter", "start", "--no-browser"]).ok();
    let runtime = lab.test.on_box("ls \"$HOME\"/.local/share/jupyter/runtime");
    assert!(runtime.stdout.contains("jpserver-"), "{runtime:#?}");
    // Another umask or Jupyter version leaves them readable by all: still nobody else can
    // reach them through their 0700 directories.
    lab.test
        .on_box(&format!(
            "chmod 644 \"$HOME\"/.local/share/jupyter/runtime/* {}/jupyter/*",
            lab.test.remote_dir.display()
        ))
        .ok();
    files("running");
    lab.lists_only(lab.pid().unwrap());
    lab.run(&["jupyter", "stop"]).ok();
    files("stopped");
}

/// The URL a browser or VS Code saved keeps working: after the shared connection is killed
/// (the next request opens it again, one handshake, no fenton command between), after
/// `jupyter stop` and `start`, and after the box restarts; `--new-token` changes it.
#[test]
fn the_saved_url_survives_a_killed_master_a_stop_and_a_box_restart() {
    let Some(lab) = Lab::real() else { return };
    lab.run(&["jupyter", "start", "--no-browser"]).ok();
    let url = lab.run(&["jupyter", "url"]).ok().stdout;
    let token = lab.token();
    let local = lab.local_port;
    assert_eq!(api_status(local, Some(&token)), Some(200));

    for pid in lab.test.masters() {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    wait_until("the master to die", Duration::from_secs(5), || {
        lab.test.masters().is_empty()
    });
    let before = lab.test.sshd.accepted();
    assert_eq!(api_status(local, Some(&token)), Some(200));
    assert_eq!(lab.test.sshd.accepted(), before + 1, "one new handshake");

    // Stopped, the forward and its process go; started again, the same URL answers.
    lab.run(&["jupyter", "stop"]).ok();
    assert_eq!(api_status(local, None), None);
    wait_until("the forwarder to stop", Duration::from_secs(5), || {
        lab.test.forwarders().is_empty()
    });
    lab.run(&["jupyter", "start", "--no-browser"]).ok();
    assert_eq!(lab.run(&["jupyter", "url"]).ok().stdout, url);
    assert_eq!(api_status(local, Some(&token)), Some(200));

    // The box restarts: its Jupyter and sshd die. The forward waits; a start brings the
    // same URL back.
    let pid = lab.pid().unwrap();
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    wait_until("Jupyter to die", Duration::from_secs(5), || !alive(pid));
    lab.test.sshd.restart();
    assert_eq!(api_status(local, Some(&token)), None);
    lab.run(&["jupyter", "start", "--no-browser"]).ok();
    assert_eq!(lab.run(&["jupyter", "url"]).ok().stdout, url);
    assert_eq!(api_status(local, Some(&token)), Some(200));

    // A new token only when asked, and only for a server that starts with it.
    let out = lab.run(&["jupyter", "start", "--no-browser", "--new-token"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(out.stderr.contains("jupyter stop"), "{out:#?}");
    lab.run(&["jupyter", "stop"]).ok();
    lab.run(&["jupyter", "start", "--no-browser", "--new-token"])
        .ok();
    let new = lab.token();
    assert_ne!(new, token);
    assert_eq!(api_status(local, Some(&token)), Some(403));
    assert_eq!(api_status(local, Some(&new)), Some(200));
    lab.run(&["jupyter", "stop"]).ok();
}

/// GET /api/status with the token, from the laptop's side of the link, by curl with a limit:
/// the HTTP status (None when it failed) and how long it took. The token is read from a file.
fn through_link(lab: &Lab, header: &Path, limit: u64) -> (Option<u16>, Duration) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time"])
        .arg(limit.to_string())
        .arg("-H")
        .arg(format!("@{}", header.display()))
        .arg(format!("http://127.0.0.1:{}/api/status", lab.local_port));
    let out = run(lab.test.client(cmd), Duration::from_secs(limit + 30));
    let code = out.stdout.trim().parse().ok().filter(|&c| c != 0);
    (code, out.elapsed)
}

/// The link dies (a pulled cable, a closed lid) and comes back: requests meanwhile fail
/// within connect_timeout + 3 s, none hangs, and the first after the link's return is
/// answered within connect_timeout + 2 s, with no fenton command typed.
#[test]
fn the_forward_heals_after_a_dead_link() {
    if !crate::common::available("curl", crate::common::installed("curl")) {
        return;
    }
    let Some(lab) = Lab::real_on(TestBox::builder().link()) else {
        return;
    };
    lab.run(&["jupyter", "start", "--no-browser"]).ok();
    let header = lab.test.root.join("header");
    std::fs::write(&header, format!("Authorization: token {}\n", lab.token())).unwrap();
    assert_eq!(through_link(&lab, &header, 20).0, Some(200));

    // connect_timeout is 5 s in the test profile: each waits 8 s at most, and a little
    // more for curl and a loaded machine.
    let bound = Duration::from_secs(5 + 3 + 3);
    let link = lab.test.link.as_ref().unwrap();
    link.blackhole();
    let during: Vec<_> = (0..3).map(|_| through_link(&lab, &header, 60)).collect();
    let batch = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..5)
            .map(|_| scope.spawn(|| through_link(&lab, &header, 60)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    eprintln!("during the outage: {during:?} then at once {batch:?}");
    for (code, took) in during.iter().chain(&batch) {
        assert_ne!(*code, Some(200), "answered through a dead link");
        assert!(*took < bound, "a request took {took:?} on a dead link");
    }

    link.restore();
    let back = std::time::Instant::now();
    loop {
        let (code, took) = through_link(&lab, &header, 20);
        if code == Some(200) {
            break;
        }
        assert!(
            took < bound,
            "a request took {took:?} after the link came back"
        );
        assert!(
            back.elapsed() < Duration::from_secs(7),
            "no answer {:?} after the link came back",
            back.elapsed()
        );
    }
    let healed = back.elapsed();
    eprintln!("answered {healed:?} after the link came back");
    assert!(healed <= Duration::from_secs(5 + 2), "{healed:?}");
    lab.run(&["jupyter", "stop"]).ok();
}
