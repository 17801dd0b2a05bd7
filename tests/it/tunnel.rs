//! `fenton tunnel`: a local port reaches a server on the box through the shared connection,
//! is listed, survives the fenton process, closes on request, and a busy port is refused, as
//! is a forward onto itself (the box here is this machine).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{wait_until, TestBox};

/// A small HTTP server on the box (this machine), on 127.0.0.1 only; ended when dropped.
struct WebServer {
    child: Child,
    port: u16,
}

impl WebServer {
    fn start(test: &TestBox) -> Option<WebServer> {
        if !crate::common::available("python3", crate::common::installed("python3")) {
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(test.root.join("hello.txt"), "hello from the box\n").unwrap();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(&test.root)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = WebServer { child, port };
        wait_until(
            "the box's web server to listen",
            Duration::from_secs(20),
            || get(port).is_some(),
        );
        Some(server)
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The body of GET /hello.txt at a local port; None when nothing answers.
fn get(port: u16) -> Option<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut response = agent
        .get(format!("http://127.0.0.1:{port}/hello.txt"))
        .call()
        .ok()?;
    response.body_mut().read_to_string().ok()
}

#[test]
fn a_tunnel_reaches_the_box_until_closed() {
    let Some(test) = TestBox::new() else { return };
    let Some(web) = WebServer::start(&test) else {
        return;
    };
    let local = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = format!("{local}:127.0.0.1:{}", web.port);
    let out = test.run(["tunnel", &spec]).ok();
    assert_eq!(out.stdout.trim(), format!("http://127.0.0.1:{local}/"));
    assert_eq!(get(local).as_deref(), Some("hello from the box\n"));

    let list = test.run(["tunnel", "list"]).ok();
    let line = format!("127.0.0.1:{local} -> 127.0.0.1:{}\tup", web.port);
    assert!(list.stdout.contains(&line), "{list:#?}");

    test.run(["tunnel", "close", &local.to_string()]).ok();
    assert_eq!(get(local), None);
    let list = test.run(["tunnel", "list"]).ok();
    assert!(!list.stdout.contains(&local.to_string()), "{list:#?}");
    let out = test.run(["tunnel", "close", &local.to_string()]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(out.stderr.contains("no tunnel on local port"), "{out:#?}");
}

#[test]
fn a_busy_local_port_or_a_bad_spec_is_refused() {
    let Some(test) = TestBox::new() else { return };
    // The box is this machine: the box's own port is busy here too.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = test.run(["tunnel", &port]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        out.stderr
            .contains(&format!("local port {port} is in use here")),
        "{out:#?}"
    );
    let out = test.run(["tunnel", "6006:-oProxyCommand=x:22"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        out.stderr.contains("is not LOCAL or LOCAL:HOST:PORT"),
        "{out:#?}"
    );
}

/// The box is this machine: `fenton tunnel PORT` would forward 127.0.0.1:PORT to the box's
/// 127.0.0.1:PORT, its own listener, and every connection would open another.
#[test]
fn a_forward_onto_itself_is_refused_and_a_dead_target_fails_at_once() {
    let Some(test) = TestBox::new() else { return };
    let free = || {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let port = free();
    let out = test.run(["tunnel", &port.to_string()]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        out.stderr.contains("would forward onto itself")
            && out
                .stderr
                .contains(&format!("fenton tunnel {}:localhost:{port}", port + 1)),
        "{out:#?}"
    );
    assert!(
        TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "left listening"
    );
    let list = test.run(["tunnel", "list"]).ok();
    assert!(!list.stdout.contains(&port.to_string()), "{list:#?}");

    // Nothing listens at the target: each connection is closed at once, none piles up.
    let (local, target) = (free(), free());
    test.run(["tunnel", &format!("{local}:localhost:{target}")])
        .ok();
    for _ in 0..20 {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", local)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let started = std::time::Instant::now();
        let mut buf = [0u8; 16];
        let read = std::io::Read::read(&mut stream, &mut buf);
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}

/// The local address of every socket listening on `port`, from /proc/net/tcp and tcp6.
fn listeners_on(port: u16) -> Vec<String> {
    let hex = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .flat_map(|table| {
            std::fs::read_to_string(table)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() > 3 && f[1].ends_with(&hex) && f[3] == "0A").then(|| f[1].to_string())
        })
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The forward is held by fenton, not by the master: killing the master loses nothing, and
/// twenty connections at once right after it pay for one new handshake between them.
#[test]
fn a_killed_master_costs_twenty_connections_one_handshake() {
    let Some(test) = TestBox::new() else { return };
    let Some(web) = WebServer::start(&test) else {
        return;
    };
    let local = free_port();
    test.run(["tunnel", &format!("{local}:127.0.0.1:{}", web.port)])
        .ok();
    assert_eq!(get(local).as_deref(), Some("hello from the box\n"));
    // On 127.0.0.1 only, held by one forwarder process.
    assert_eq!(listeners_on(local), [format!("0100007F:{local:04X}")]);
    assert_eq!(test.forwarders().len(), 1);

    for pid in test.masters() {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    wait_until("the master to die", Duration::from_secs(5), || {
        test.masters().is_empty()
    });
    let before = test.sshd.accepted();
    let answers: Vec<Option<String>> = (0..20)
        .map(|_| std::thread::spawn(move || get(local)))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert!(
        answers
            .iter()
            .all(|a| a.as_deref() == Some("hello from the box\n")),
        "{answers:?}"
    );
    assert_eq!(
        test.sshd.accepted(),
        before + 1,
        "one new handshake for all 20"
    );

    // The list says the box end answers, and counts the traffic.
    let list = test.run(["tunnel", "list"]).ok();
    let line = format!("127.0.0.1:{local} -> 127.0.0.1:{}\tup\t", web.port);
    assert!(list.stdout.contains(&line), "{list:#?}");
    assert!(
        list.stdout.contains("21 connections (0 open, 0 failed)"),
        "{list:#?}"
    );

    // The last forward closed, the forwarder goes too.
    test.run(["tunnel", "close", &local.to_string()]).ok();
    wait_until("the forwarder to stop", Duration::from_secs(5), || {
        test.forwarders().is_empty()
    });
}

/// Two `fenton tunnel` at once start one forwarder and one forward; a second forward goes
/// in the same process; a box end that refuses is said, and `disconnect --all` ends it all.
#[test]
fn two_opens_at_once_share_one_forwarder() {
    let Some(test) = TestBox::new() else { return };
    let Some(web) = WebServer::start(&test) else {
        return;
    };
    let local = free_port();
    let spec = format!("{local}:127.0.0.1:{}", web.port);
    let outs: Vec<_> = (0..2)
        .map(|_| {
            let cmd = test.fenton(["tunnel", &spec]);
            std::thread::spawn(move || crate::common::run(cmd, Duration::from_secs(60)))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap().ok())
        .collect();
    for out in &outs {
        assert_eq!(
            out.stdout.trim(),
            format!("http://127.0.0.1:{local}/"),
            "{out:#?}"
        );
    }
    assert_eq!(test.forwarders().len(), 1);
    assert_eq!(get(local).as_deref(), Some("hello from the box\n"));

    // Nothing listens at the second one's target on the box: said at once, and listed.
    let (other, dead) = (free_port(), free_port());
    let out = test
        .run(["tunnel", &format!("{other}:127.0.0.1:{dead}")])
        .ok();
    assert!(
        out.stderr.contains("nothing answers at 127.0.0.1:"),
        "{out:#?}"
    );
    assert_eq!(test.forwarders().len(), 1);
    let list = test.run(["tunnel", "list"]).ok();
    assert!(
        list.stdout
            .contains(&format!("127.0.0.1:{other} -> 127.0.0.1:{dead}\tdown: ")),
        "{list:#?}"
    );

    let out = test.run(["disconnect", "--all"]).ok();
    assert!(out.stderr.contains("closed the forwards"), "{out:#?}");
    wait_until("the forwarder to stop", Duration::from_secs(5), || {
        test.forwarders().is_empty()
    });
    assert_eq!(get(local), None);
    assert!(TcpListener::bind(("127.0.0.1", local)).is_ok());
}

/// The forwarder stops by itself after `forward_idle_timeout` seconds without a connection,
/// when its socket goes (the login session's runtime directory is removed at logout), and
/// when the config's profile names another box.
#[test]
fn the_forwarder_stops_when_idle_or_when_the_session_ends() {
    let Some(test) = TestBox::builder()
        .profile("forward_idle_timeout = 2")
        .start()
    else {
        return;
    };
    let Some(web) = WebServer::start(&test) else {
        return;
    };
    let local = free_port();
    let spec = format!("{local}:127.0.0.1:{}", web.port);
    test.run(["tunnel", &spec]).ok();
    // Used, it stays past the timeout; idle, it goes.
    for _ in 0..4 {
        assert_eq!(get(local).as_deref(), Some("hello from the box\n"));
        std::thread::sleep(Duration::from_millis(700));
    }
    assert_eq!(test.forwarders().len(), 1);
    wait_until(
        "the idle forwarder to stop",
        Duration::from_secs(10),
        || test.forwarders().is_empty(),
    );
    assert_eq!(get(local), None);

    // Without an idle timeout from here on: only what is tested can stop it.
    test.write_config(&test.default_config(""));
    test.run(["tunnel", &spec]).ok();
    let sockets: Vec<_> = std::fs::read_dir(test.root.join("run/fenton"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".fwd.sock"))
        .collect();
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    std::fs::remove_file(&sockets[0]).unwrap();
    wait_until("the forwarder to stop", Duration::from_secs(5), || {
        test.forwarders().is_empty()
    });
    assert_eq!(get(local), None);

    // The profile now names another box: the old box's forward must not keep the port.
    test.run(["tunnel", &spec]).ok();
    assert_eq!(test.forwarders().len(), 1);
    test.write_config(&test.default_config("user = \"someone-else\""));
    wait_until("the forwarder to stop", Duration::from_secs(5), || {
        test.forwarders().is_empty()
    });
    assert_eq!(get(local), None);
}

/// A server on the box that writes without end to each connection and never reads (so it
/// ignores an end of file); ended when dropped.
struct Firehose {
    child: Child,
    port: u16,
}

impl Firehose {
    fn start() -> Option<Firehose> {
        if !crate::common::available("python3", crate::common::installed("python3")) {
            return None;
        }
        let port = free_port();
        let script = r#"
import socket, sys, threading
def serve(c):
    chunk = b"x" * 65536
    try:
        while True:
            c.sendall(chunk)
    except OSError:
        c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(512)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;
        let child = Command::new("python3")
            .args(["-c", script, &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Firehose { child, port };
        wait_until(
            "the box's endless server to listen",
            Duration::from_secs(20),
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        Some(server)
    }
}

impl Drop for Firehose {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `bytes` from a connection to a local port, then closes it unread (an aborted
/// download).
fn read_some_and_leave(port: u16, bytes: usize) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = vec![0u8; bytes];
    std::io::Read::read_exact(&mut stream, &mut buf).unwrap();
}

/// A client that goes away in the middle of a download that would never end: its connection
/// through the forward ends with it, however much the box still has to send, and fifty such
/// clients leave the forwarder holding no more descriptors than before.
#[test]
fn a_client_that_leaves_mid_download_frees_its_connection() {
    let Some(test) = TestBox::new() else { return };
    let Some(hose) = Firehose::start() else {
        return;
    };
    let local = free_port();
    test.run(["tunnel", &format!("{local}:127.0.0.1:{}", hose.port)])
        .ok();
    let [forwarder] = test.forwarders()[..] else {
        panic!("not one forwarder: {:?}", test.forwarders());
    };
    let fds = || {
        std::fs::read_dir(format!("/proc/{forwarder}/fd"))
            .unwrap()
            .count()
    };
    let open_now = || {
        let list = test.run(["tunnel", "list"]).ok();
        list.stdout.contains("(0 open, 0 failed)")
    };
    read_some_and_leave(local, 1 << 20);
    wait_until(
        "the left connection to close in the forwarder",
        Duration::from_secs(10),
        open_now,
    );
    let before = fds();
    let clients: Vec<_> = (0..50)
        .map(|_| std::thread::spawn(move || read_some_and_leave(local, 256 * 1024)))
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    wait_until(
        "the fifty left connections to close in the forwarder",
        Duration::from_secs(20),
        open_now,
    );
    // A spare control connection may come and go; fifty held ones would be 200.
    assert!(fds() <= before + 2, "{before} descriptors, then {}", fds());
    let list = test.run(["tunnel", "list"]).ok();
    assert!(list.stdout.contains("51 connections"), "{list:#?}");
}
