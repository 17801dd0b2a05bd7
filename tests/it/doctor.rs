//! `fenton doctor` against a real sshd: a healthy setup passes, and each fault a user could
//! have (a key others can read, a config others can write, a wrong port, a port that is not
//! ssh, no tmux on the box, an exposed Jupyter, an sshd taking passwords, a readable token)
//! shows up as its own line with its fix, and exit 1.
//!
//! The box is this machine, so a listening "Jupyter" started by one test is seen by every
//! doctor running meanwhile: that test holds `MACHINE` for writing, the others for reading.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{RwLock, RwLockReadGuard};
use std::time::Duration;

use serde_json::Value;

use crate::common::http::HttpServer;
use crate::common::{wait_until, Out, TestBox};

static MACHINE: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(|e| e.into_inner())
}

/// The ids every run lists, in order, whatever fails.
const IDS: [&str; 28] = [
    "laptop.ssh",
    "laptop.sshfs",
    "laptop.fuse",
    "config.file",
    "config.profile",
    "laptop.identity",
    "laptop.control_dir",
    "laptop.ssh_config",
    "link.resolve",
    "link.port",
    "link.auth",
    "link.host_key",
    "link.rtt",
    "box.tmux",
    "box.jupyter",
    "box.gpu",
    "box.fetch",
    "box.remote_dir",
    "box.disk",
    "box.sshd_password",
    "box.sshd_root",
    "box.jupyter_listen",
    "box.jupyter_auth",
    "box.jupyter_files",
    "box.monitor",
    "notify.telegram",
    "notify.ntfy",
    "notify.webhook",
];

struct Report {
    code: Option<i32>,
    checks: Vec<Value>,
    out: Out,
}

impl Report {
    fn check(&self, id: &str) -> &Value {
        self.checks
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no check {id}: {:#?}", self.out))
    }

    fn status(&self, id: &str) -> &str {
        self.check(id)["status"].as_str().unwrap()
    }

    fn with(&self, status: &str) -> BTreeSet<&str> {
        self.checks
            .iter()
            .filter(|c| c["status"] == status)
            .map(|c| c["id"].as_str().unwrap())
            .collect()
    }

    /// Asserts that `id` is the one problem, that its line says `says`, and its fix `fix`.
    fn only_problem(&self, id: &str, says: &str, fix: &str) {
        assert_eq!(self.code, Some(1), "{:#?}", self.out);
        assert_eq!(
            self.with("problem"),
            BTreeSet::from([id]),
            "{:#?}",
            self.out
        );
        let check = self.check(id);
        let message = check["message"].as_str().unwrap();
        assert!(
            message.contains(says),
            "{id}: {message:?} should say {says:?}"
        );
        let got = check["fix"].as_str().unwrap_or_default();
        assert!(got.contains(fix), "{id}: fix {got:?} should hold {fix:?}");
    }
}

/// Runs `fenton doctor --json` and checks that the ids are the stable list.
fn doctor(test: &TestBox) -> Report {
    let out = crate::common::run(test.fenton(["doctor", "--json"]), Duration::from_secs(60));
    let json: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --json is not JSON ({e}): {out:#?}"));
    let checks = json["checks"].as_array().expect("checks").clone();
    let ids: Vec<&str> = checks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, IDS, "{out:#?}");
    assert_eq!(json["ok"], out.code == Some(0));
    Report {
        code: out.code,
        checks,
        out,
    }
}

/// A box whose host key is already known (as after a first `fenton connect`).
fn known(test: TestBox) -> TestBox {
    test.run(["connect"]).ok();
    test.run(["disconnect"]).ok();
    test
}

#[test]
fn a_healthy_setup_passes() {
    let _machine = shared();
    let Some(test) = TestBox::new() else { return };
    let test = known(test);
    let report = doctor(&test);
    assert_eq!(report.code, Some(0), "{:#?}", report.out);
    assert!(report.with("problem").is_empty(), "{:#?}", report.out);
    // What may vary by machine is a warning at worst: GPUs, Jupyter, sshfs, disk space, and
    // how long a login takes on a loaded machine.
    let varies = [
        "link.rtt",
        "laptop.sshfs",
        "laptop.fuse",
        "box.jupyter",
        "box.gpu",
        "box.disk",
    ];
    for id in IDS {
        let status = report.status(id);
        if id.starts_with("notify.") {
            assert_eq!(status, "skipped", "{id} is not configured");
        } else if !varies.contains(&id) {
            assert_eq!(status, "ok", "{id}: {:#?}", report.check(id));
        }
    }

    // The text form: one line per check, then the count.
    let out = test.run(["doctor"]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    for id in IDS {
        let line = out
            .stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(id))
            .unwrap_or_else(|| panic!("no line for {id}: {}", out.stdout));
        assert!(
            ["ok", "warning", "skipped"].contains(&line.split_whitespace().next().unwrap()),
            "{line}"
        );
    }
    assert!(out.stdout.contains("0 problems"), "{}", out.stdout);
}

#[test]
fn an_identity_file_others_can_read_is_a_problem() {
    let _machine = shared();
    let Some(test) = TestBox::new() else { return };
    let key = test.root.join("key");
    std::fs::copy(test.sshd.dir.join("id_ed25519"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let test = known(test);
    test.write_config(&test.default_config(&format!("identity_file = {key:?}")));
    let report = doctor(&test);
    report.only_problem(
        "laptop.identity",
        "mode 0644",
        &format!("chmod 600 '{}'", key.display()),
    );
}

#[test]
fn a_config_others_can_write_is_reported_not_fatal() {
    let _machine = shared();
    let Some(test) = TestBox::new() else { return };
    let test = known(test);
    std::fs::set_permissions(&test.config, std::fs::Permissions::from_mode(0o666)).unwrap();
    let report = doctor(&test);
    report.only_problem(
        "config.file",
        "others can write it",
        &format!("chmod go-w '{}'", test.config.display()),
    );
    // Every other check still ran.
    assert_eq!(report.status("box.tmux"), "ok");
}

#[test]
fn a_wrong_port_is_a_problem() {
    let _machine = shared();
    let Some(test) = TestBox::new() else { return };
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    test.write_config(&test.default_config(&format!("port = {closed}")));
    let report = doctor(&test);
    report.only_problem("link.port", "refused the connection", "set `port = N`");
    assert_eq!(report.status("link.auth"), "skipped");
    assert_eq!(report.status("box.tmux"), "skipped");
}

/// The port is right but the box's sshd is down: say so first, the port only as the other
/// possibility.
#[test]
fn a_stopped_box_says_nothing_listens() {
    let _machine = shared();
    let Some(test) = TestBox::new() else { return };
    test.sshd.stop();
    let report = doctor(&test);
    report.only_problem(
        "link.port",
        "nothing listens there (is sshd down?)",
        "start sshd on the box",
    );
}

/// A login shell that takes its time on every command: the link is fast, the box is not.
#[test]
fn a_slow_login_shell_is_a_warning() {
    let _machine = shared();
    let Some(test) = TestBox::builder().bashrc("sleep 0.5\n").start() else {
        return;
    };
    let test = known(test);
    let report = doctor(&test);
    assert_eq!(report.code, Some(0), "{:#?}", report.out);
    assert_eq!(report.status("link.rtt"), "warning", "{:#?}", report.out);
    let check = report.check("link.rtt");
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .contains("every command takes that long to start on the box"),
        "{check:#}"
    );
    assert!(
        check["fix"].as_str().unwrap().contains(".bashrc"),
        "{check:#}"
    );
}

#[test]
fn a_port_that_is_not_ssh_is_a_problem_within_the_timeout() {
    let _machine = shared();
    let Some(test) = TestBox::new() else { return };
    // The kernel completes the handshake; nothing ever speaks.
    let blackhole = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blackhole.local_addr().unwrap().port();
    test.write_config(&test.default_config(&format!("port = {port}")));
    let report = doctor(&test);
    report.only_problem("link.port", "is not an ssh server", "set `port = N`");
    assert!(
        report.out.elapsed < Duration::from_secs(5 + 5),
        "doctor took {:?} with connect_timeout = 5",
        report.out.elapsed
    );
    drop(blackhole);
}

/// A directory of links to every program on PATH except those named.
fn path_without(test: &TestBox, missing: &[&str]) -> String {
    let bin = test.root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = std::env::var("PATH").unwrap_or_default() + ":/usr/sbin:/sbin";
    for dir in std::env::split_paths(&path) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let link = bin.join(&name);
            if missing.iter().any(|m| name == **m) || link.exists() {
                continue;
            }
            let _ = std::os::unix::fs::symlink(entry.path(), link);
        }
    }
    bin.to_string_lossy().into_owned()
}

#[test]
fn tmux_missing_on_the_box_is_a_problem() {
    let _machine = shared();
    let Some(probe) = TestBox::new() else { return };
    let bin = path_without(&probe, &["tmux"]);
    let Some(test) = TestBox::builder().env("PATH", &bin).start() else {
        return;
    };
    let test = known(test);
    let out = test.on_box("command -v tmux || echo none");
    assert_eq!(out.stdout.trim(), "none", "tmux must be off the box's PATH");
    let report = doctor(&test);
    report.only_problem("box.tmux", "tmux is not installed", "apt install tmux");
}

/// A listener whose command line says jupyter, as doctor recognises a Jupyter server: a
/// process with "jupyter" in its command line holding a listening TCP socket.
fn fake_jupyter(test: &TestBox, bind: &str) -> (std::process::Child, u16) {
    let script = test.root.join("jupyter-lab-fake");
    let port_file = test.root.join("jupyter-port");
    let _ = std::fs::remove_file(&port_file);
    std::fs::write(
        &script,
        "import socket, sys\n\
         s = socket.socket()\n\
         s.bind((sys.argv[1], 0))\n\
         s.listen(1)\n\
         open(sys.argv[2] + '.tmp', 'w').write(str(s.getsockname()[1]))\n\
         __import__('os').rename(sys.argv[2] + '.tmp', sys.argv[2])\n\
         sys.stdin.read()\n",
    )
    .unwrap();
    let child = Command::new("python3")
        .arg(&script)
        .arg(bind)
        .arg(&port_file)
        .stdin(Stdio::piped())
        .spawn()
        .expect("python3");
    wait_until(
        "the fake Jupyter to listen",
        Duration::from_secs(10),
        || port_file.exists(),
    );
    let port = std::fs::read_to_string(&port_file)
        .unwrap()
        .parse()
        .unwrap();
    (child, port)
}

#[test]
fn a_jupyter_listening_on_every_address_is_a_problem() {
    require!("python3", crate::common::installed("python3"));
    let _machine = MACHINE.write().unwrap_or_else(|e| e.into_inner());
    let Some(test) = TestBox::new() else { return };
    let test = known(test);
    let (mut child, port) = fake_jupyter(&test, "0.0.0.0");
    let report = doctor(&test);
    let _ = child.kill();
    let _ = child.wait();
    report.only_problem(
        "box.jupyter_listen",
        &format!("listens on 0.0.0.0 port {port}"),
        &format!("kill {}", child.id()),
    );

    // On loopback, reached through the ssh forward, it is fine.
    let (mut child, _) = fake_jupyter(&test, "127.0.0.1");
    let report = doctor(&test);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        report.status("box.jupyter_listen"),
        "ok",
        "{:#?}",
        report.out
    );
    assert_eq!(report.code, Some(0), "{:#?}", report.out);
}

#[test]
fn an_sshd_taking_passwords_is_a_warning_and_for_root_a_problem() {
    let _machine = shared();
    let Some(test) = TestBox::builder()
        .sshd_option("PasswordAuthentication yes")
        .start()
    else {
        return;
    };
    let test = known(test);
    let report = doctor(&test);
    assert_eq!(report.code, Some(0), "{:#?}", report.out);
    assert_eq!(report.status("box.sshd_password"), "warning");
    let fix = report.check("box.sshd_password")["fix"].as_str().unwrap();
    let config = test.sshd.dir.join("sshd_config");
    assert!(fix.contains("PasswordAuthentication no"), "{fix}");
    assert!(fix.contains(&config.display().to_string()), "{fix}");
    drop(test);

    let Some(test) = TestBox::builder()
        .sshd_option("PasswordAuthentication yes")
        .sshd_option("PermitRootLogin yes")
        .start()
    else {
        return;
    };
    let test = known(test);
    let report = doctor(&test);
    report.only_problem(
        "box.sshd_root",
        "root can log in with a password",
        "PermitRootLogin prohibit-password",
    );
}

#[test]
fn a_token_file_others_can_read_is_a_problem() {
    let _machine = shared();
    let Some(test) = TestBox::new() else { return };
    let test = known(test);
    let dir = test.remote_dir.join("jupyter");
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    // In a directory only its owner can enter, nobody else reaches it.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let report = doctor(&test);
    assert_eq!(
        report.status("box.jupyter_files"),
        "ok",
        "{:#?}",
        report.check("box.jupyter_files")
    );
    // Once every directory above it lets others through, they can read it.
    for open in [&test.root, &test.remote_dir, &dir] {
        std::fs::set_permissions(open, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let report = doctor(&test);
    report.only_problem(
        "box.jupyter_files",
        &token.display().to_string(),
        &format!("chmod go-rwx '{}'", token.display()),
    );
    assert!(Path::new(&token).exists());
}

#[test]
fn notify_checks_settings_offline_and_sends_a_test_when_asked() {
    require!("curl", crate::common::installed("curl"));
    let _machine = shared();
    let Some(test) = TestBox::new() else { return };
    let test = known(test);
    let server = HttpServer::start();
    server.answer("/botbad/sendMessage", 401);
    let port = server.port;
    let channels = |token: &str| {
        format!(
            "{}\n[notify.telegram]\nbot_token = \"{token}\"\nchat_id = \"42\"\napi_url = \"http://127.0.0.1:{port}\"\n\n[notify.ntfy]\nurl = \"http://127.0.0.1:{port}/topic\"\ntoken = \"tk_secret\"\n\n[notify.webhook]\nurl = \"http://127.0.0.1:{port}/hook\"\n",
            test.default_config("")
        )
    };
    test.write_config(&channels("123:secret"));

    let report = doctor(&test);
    assert_eq!(report.code, Some(0), "{:#?}", report.out);
    for id in ["notify.telegram", "notify.ntfy", "notify.webhook"] {
        assert_eq!(report.status(id), "ok", "{:#?}", report.check(id));
    }
    assert!(
        server.requests().is_empty(),
        "doctor without --notify sent something"
    );

    let out = crate::common::run(
        test.fenton(["doctor", "--json", "--notify"]),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(
        out.stdout.matches("sent a test message (HTTP 200)").count(),
        3,
        "{}",
        out.stdout
    );
    let requests = server.requests();
    let to = |path: &str| {
        requests
            .iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("nothing sent to {path}: {requests:#?}"))
    };
    // The box sends them, as it would for a job.
    let telegram = to("/bot123:secret/sendMessage").json();
    assert_eq!(telegram["chat_id"], "42");
    assert!(
        telegram["text"].as_str().unwrap().contains("test message"),
        "{telegram}"
    );
    assert_eq!(
        to("/topic").header("authorization"),
        Some("Bearer tk_secret")
    );
    assert!(to("/topic").body.contains("test message"));
    assert_eq!(to("/hook").json()["state"], "test");

    test.write_config(&channels("bad"));
    let out = crate::common::run(test.fenton(["doctor", "--notify"]), Duration::from_secs(60));
    assert_eq!(out.code, Some(1), "{out:#?}");
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("notify.telegram"))
        .unwrap();
    assert!(
        line.starts_with("problem") && line.contains("HTTP 401"),
        "{line}"
    );
}

#[test]
fn a_wildcard_host_block_that_shadows_the_box_is_pointed_out() {
    let _machine = shared();
    let Some(test) = TestBox::new() else { return };
    // A `Host *` first in the file wins over the box's own Port line, as ssh reads it.
    let sandbox = std::fs::read_to_string(test.sshd.ssh_config()).unwrap();
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = test.root.join("ssh_config");
    std::fs::write(&config, format!("Host *\n  Port {closed}\n\n{sandbox}")).unwrap();
    let text = std::fs::read_to_string(&test.config).unwrap();
    let sandbox_path = format!("{:?}", test.sshd.ssh_config());
    test.write_config(&text.replace(&sandbox_path, &format!("{config:?}")));
    let report = doctor(&test);
    assert_eq!(
        report.status("laptop.ssh_config"),
        "warning",
        "{:#?}",
        report.out
    );
    let check = report.check("laptop.ssh_config");
    let message = check["message"].as_str().unwrap();
    assert!(
        message.contains(":1 `Host *` sets port before `Host fenton-sandbox` (line 4)"),
        "{message}"
    );
    assert!(check["fix"]
        .as_str()
        .unwrap()
        .contains("move the `Host *` block to the end"));
    // Which is why the port is wrong.
    report.only_problem("link.port", "refused the connection", "set `port = N`");
}

#[test]
fn gpus_are_listed_and_a_failing_driver_is_a_problem() {
    let _machine = shared();
    let capture = crate::common::recording("linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt");
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(crate::common::nvidia_smi(), bin.path().join("nvidia-smi")).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let capture = capture.to_string_lossy().into_owned();
    let Some(test) = TestBox::builder()
        .env("PATH", &path)
        .env("NVIDIA_SMI_CAPTURE", &capture)
        .start()
    else {
        return;
    };
    let test = known(test);
    let report = doctor(&test);
    assert_eq!(report.status("box.gpu"), "ok", "{:#?}", report.out);
    let message = report.check("box.gpu")["message"].as_str().unwrap();
    assert!(
        message.contains("1 GPU(s)") && message.contains("H100"),
        "{message}"
    );
    drop(test);

    let Some(test) = TestBox::builder()
        .env("PATH", &path)
        .env("NVIDIA_SMI_CAPTURE", &capture)
        .env("NVIDIA_SMI_FAIL", "driver")
        .start()
    else {
        return;
    };
    let test = known(test);
    let report = doctor(&test);
    report.only_problem("box.gpu", "nvidia-smi fails (exit 9)", "NVIDIA driver");
}
