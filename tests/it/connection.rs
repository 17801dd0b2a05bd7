//! The shared connection and `fenton exec` against a real sshd: words arrive intact, streams
//! and exit statuses pass through, one handshake serves many commands, and every fault ends
//! in one line that says what to do, within the connect timeout.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use crate::common::{run, wait_until, TestBox};

#[test]
fn words_reach_the_box_byte_for_byte() {
    let Some(test) = TestBox::new() else { return };
    let words = [
        "a b",
        "it's",
        "\"double\"",
        "$(id)",
        "`id`",
        "a;b",
        "*",
        "{a,b}",
        "line1\nline2",
        "-n",
        "--",
        "",
        "tab\there",
        "ünï",
    ];
    let mut args = vec!["exec", "--", "printf", "%s\\0"];
    args.extend(words);
    let out = test.run(&args).ok();
    let got: Vec<&str> = out.stdout.split_terminator('\0').collect();
    assert_eq!(got, words);
}

#[test]
fn streams_and_exit_status_pass_through() {
    let Some(test) = TestBox::new() else { return };
    let mut cmd = test.fenton([
        "exec",
        "--",
        "sh",
        "-c",
        "tr a-z A-Z; echo oops >&2; exit 7",
    ]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello box\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO BOX\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");

    let out = test.run(["exec", "--", "definitely-not-a-command-42"]);
    assert_eq!(out.code, Some(127), "{out:?}");
}

#[test]
fn one_handshake_serves_every_command() {
    let Some(test) = TestBox::new() else { return };
    test.run(["exec", "--", "true"]).ok();
    test.run(["exec", "--", "true"]).ok();
    test.run(["connect"]).ok();
    test.run(["exec", "--", "true"]).ok();
    assert_eq!(
        test.sshd.accepted(),
        1,
        "each command must reuse the shared connection"
    );
    let sockets = test.control_sockets();
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    assert!(
        sockets[0].as_os_str().len() < 100,
        "socket path too long for macOS: {sockets:?}"
    );
    let dir = sockets[0].parent().unwrap();
    assert_eq!(
        std::fs::metadata(dir).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let out = test.run(["disconnect"]).ok();
    assert!(out.stderr.contains("disconnected"), "{}", out.stderr);
    wait_until("the master to exit", Duration::from_secs(5), || {
        TestBox::pids_mentioning(dir.to_str().unwrap()).is_empty()
    });
    let out = test.run(["disconnect"]).ok();
    assert!(out.stderr.contains("no connection"), "{}", out.stderr);
}

#[test]
fn a_killed_master_is_replaced_silently() {
    let Some(test) = TestBox::new() else { return };
    let out = test.run(["connect"]).ok();
    assert!(
        out.stderr.contains(
            "connected to box (fenton-sandbox); the connection stays open 600 s after the last command"
        ),
        "{out:?}"
    );
    let socket = test.control_sockets().remove(0);
    for pid in TestBox::pids_mentioning(socket.to_str().unwrap()) {
        nix_kill(pid);
    }
    wait_until("the master to die", Duration::from_secs(5), || {
        TestBox::pids_mentioning(socket.to_str().unwrap()).is_empty()
    });
    assert!(
        socket.exists(),
        "a SIGKILLed master leaves its socket behind"
    );
    let out = test.run(["exec", "--", "echo", "back"]).ok();
    assert_eq!(out.stdout, "back\n");
    assert!(
        !out.stderr.contains("fenton"),
        "replaced silently: {}",
        out.stderr
    );
    assert_eq!(test.sshd.accepted(), 2);
}

#[test]
fn a_restarted_sshd_is_reconnected() {
    let Some(test) = TestBox::new() else { return };
    test.run(["connect"]).ok();
    test.sshd.restart();
    let out = test.run(["exec", "--", "echo", "again"]).ok();
    assert_eq!(out.stdout, "again\n");
}

#[test]
fn refused_port_names_host_and_port_and_exits_255() {
    let Some(test) = TestBox::new() else { return };
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    test.write_config(&test.default_config(&format!("port = {port}")));
    let out = test.run(["exec", "--", "true"]);
    assert_eq!(out.code, Some(255), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("127.0.0.1 port {port} refused the connection")),
        "{}",
        out.stderr
    );
}

#[test]
fn a_silent_host_times_out_within_the_connect_timeout() {
    let Some(test) = TestBox::new() else { return };
    // Accepts TCP but never speaks SSH: the handshake can only time out.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    test.write_config(
        &test
            .default_config(&format!("port = {port}\nconnect_timeout = 2"))
            .replace("connect_timeout = 5\n", ""),
    );
    let out = test.run(["exec", "--", "true"]);
    drop(listener);
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(
        out.elapsed < Duration::from_secs(8),
        "took {:?}",
        out.elapsed
    );
    assert!(
        out.stderr.contains(&format!("port {port}")),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn a_changed_host_key_is_refused_with_the_fix() {
    let Some(test) = TestBox::new() else { return };
    let other = test.root.join("other_key");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(keygen.success());
    let public = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let key = public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let known = test.sshd.dir.join("known_hosts");
    std::fs::write(&known, format!("[127.0.0.1]:{} {key}\n", test.sshd.port)).unwrap();
    let out = test.run(["exec", "--", "true"]);
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(out.stderr.contains("has changed"), "{}", out.stderr);
    assert!(
        out.stderr.contains("ssh-keygen") && out.stderr.contains("-R"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn a_private_key_others_can_read_is_named_with_the_fix() {
    let Some(test) = TestBox::new() else { return };
    let key = test.root.join("loose key");
    std::fs::copy(test.sshd.dir.join("id_ed25519"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    test.write_config(&test.default_config(&format!("identity_file = {key:?}")));
    let out = test.run(["exec", "--", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("mode 0644")
            && out
                .stderr
                .contains(&format!("chmod 600 '{}'", key.display())),
        "{}",
        out.stderr
    );
}

#[test]
fn missing_ssh_is_said_plainly() {
    let Some(test) = TestBox::new() else { return };
    let mut cmd = test.fenton(["exec", "--", "true"]);
    cmd.env("PATH", test.root.join("empty"));
    let out = run(cmd, Duration::from_secs(10));
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("ssh is not installed"),
        "{}",
        out.stderr
    );
}

fn nix_kill(pid: i32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

#[test]
fn a_blackholed_host_times_out_naming_host_and_port() {
    let Some(test) = TestBox::builder().link().start() else {
        return;
    };
    let link = test.link.as_ref().unwrap();
    link.blackhole();
    let out = test.run(["exec", "--", "true"]);
    assert_eq!(out.code, Some(255), "{out:?}");
    // connect_timeout is 5 s in the test profile.
    assert!(
        out.elapsed < Duration::from_secs(12),
        "took {:?}",
        out.elapsed
    );
    let want = format!("no answer from {} port", link.box_addr);
    assert!(out.stderr.contains(&want), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn a_dead_link_under_a_live_master_fails_instead_of_hanging() {
    let Some(test) = TestBox::builder().link().start() else {
        return;
    };
    let link = test.link.as_ref().unwrap();
    test.run(["connect"]).ok();
    link.blackhole();
    // The master still answers locally; only its keep-alives can tell the link is gone.
    let out = test.run(["exec", "--", "echo", "lost"]);
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(
        out.elapsed < Duration::from_secs(25),
        "took {:?}",
        out.elapsed
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    eprintln!(
        "a dead link was noticed after {:?}: {}",
        out.elapsed, out.stderr
    );

    link.restore();
    let out = test.run(["exec", "--", "echo", "back"]).ok();
    assert_eq!(out.stdout, "back\n");
}

#[test]
fn ssh_config_aliases_with_proxyjump_work() {
    let Some(test) = TestBox::new() else { return };
    // A second alias for the same box, reached through the first one as a jump host.
    let config = test.sshd.ssh_config();
    let mut text = std::fs::read_to_string(&config).unwrap();
    let body: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    text.push_str(&format!(
        "Host via-jump\n{body}  ProxyJump fenton-sandbox\n"
    ));
    std::fs::write(&config, text).unwrap();
    test.write_config(
        &test
            .default_config("")
            .replace("host = \"fenton-sandbox\"", "host = \"via-jump\""),
    );
    let out = test
        .run([
            "exec",
            "--",
            "sh",
            "-c",
            "echo \"$SSH_CONNECTION\" | cut -d' ' -f1",
        ])
        .ok();
    assert_eq!(out.stdout, "127.0.0.1\n");
    assert_eq!(
        test.sshd.accepted(),
        2,
        "one login for the jump, one for the box"
    );
    test.run(["exec", "--", "true"]).ok();
    assert_eq!(
        test.sshd.accepted(),
        2,
        "later commands reuse the shared connection"
    );
}

#[test]
fn commands_started_at_once_share_one_new_connection() {
    let Some(test) = TestBox::new() else { return };
    let children: Vec<_> = (0..4)
        .map(|i| {
            test.fenton(["exec", "--", "echo", &format!("n{i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("n{i}\n"));
    }
    assert_eq!(test.sshd.accepted(), 1, "one master for all four");
}

/// The box user's HOME, and so every file a program keeps under it (a Jupyter's runtime
/// files, dotfiles), is the test's own: nothing else on the machine can change a result.
#[test]
fn the_box_has_a_home_of_its_own() {
    let Some(test) = TestBox::new() else { return };
    let out = test
        .run([
            "exec",
            "--",
            "sh",
            "-c",
            "echo \"$HOME\"; echo \"${XDG_DATA_HOME:-$HOME/.local/share}/jupyter/runtime\"; \
             echo \"${JUPYTER_RUNTIME_DIR-unset} ${JUPYTER_DATA_DIR-unset} ${XDG_RUNTIME_DIR-unset}\"",
        ])
        .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with(&*test.root.to_string_lossy()),
        "{out:?}"
    );
    assert!(lines[1].starts_with(lines[0]), "{out:?}");
    assert_eq!(lines[2], "unset unset unset", "{out:?}");
    // sftp, so sshfs, starts there too.
    let batch = test.root.join("sftp-batch");
    std::fs::write(&batch, "pwd\n").unwrap();
    let mut sftp = std::process::Command::new("sftp");
    sftp.arg("-q")
        .arg("-F")
        .arg(test.sshd.ssh_config())
        .arg("-b")
        .arg(&batch)
        .arg("fenton-sandbox")
        .stdin(Stdio::null());
    let out = run(sftp, Duration::from_secs(20));
    assert!(
        out.stdout
            .contains(&format!("Remote working directory: {}", lines[0])),
        "{out:?}"
    );
}
