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
