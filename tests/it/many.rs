//! Many commands at once, and parts that stop answering: sshd's default cap on sessions per
//! connection, commands racing for one Jupyter or one mount, and a stopped master, box tmux
//! or sshd session. Every command must end, within its deadline, saying what was stuck.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{run, wait_until, Out, TestBox};

/// A process stopped with SIGSTOP for a test, woken (SIGCONT) when the guard goes, even when
/// the test fails: nothing stays stopped behind it.
struct Stopped(Vec<i32>);

impl Stopped {
    fn new(pids: Vec<i32>) -> Stopped {
        assert!(!pids.is_empty(), "nothing to stop");
        for &pid in &pids {
            signal("-STOP", pid);
        }
        Stopped(pids)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        for &pid in &self.0 {
            signal("-CONT", pid);
        }
    }
}

fn signal(which: &str, pid: i32) {
    let _ = Command::new("kill")
        .args([which, &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status();
}

/// Whether a process is there and not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// The ssh masters of this test's shared connections.
fn masters(test: &TestBox) -> Vec<i32> {
    let dir = test.root.join("run/fenton");
    TestBox::pids_mentioning(dir.to_str().unwrap())
        .into_iter()
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|w| w == b"-M"))
        })
        .filter(|&pid| alive(pid))
        .collect()
}

/// Runs every command at once, each to its end (`limit` at most), in the order given.
fn all_at_once(test: &TestBox, commands: Vec<Vec<String>>, limit: Duration) -> Vec<Out> {
    let handles: Vec<_> = commands
        .into_iter()
        .map(|args| {
            let cmd = test.fenton(&args);
            std::thread::spawn(move || run(cmd, limit))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn words(line: &str) -> Vec<String> {
    line.split(' ').map(str::to_string).collect()
}

#[test]
fn thirty_commands_at_once_all_succeed_under_sshds_default_max_sessions() {
    let Some(test) = TestBox::builder().sshd_option("MaxSessions 10").start() else {
        return;
    };
    let seed = test
        .run(["run", "--name", "seed", "--", "echo", "seed-line"])
        .ok();
    let seed = seed.stdout.trim().to_string();
    test.run(["logs", &seed, "-f"]).ok();
    test.run(["disconnect"]).ok();
    let before = test.sshd.accepted();

    // Each command stays a while on the box, so that more than ten hold a session at once.
    let commands: Vec<Vec<String>> = (0..30)
        .map(|i| match i % 5 {
            0 => ["exec", "--", "sh", "-c", &format!("sleep 1; echo exec-{i}")]
                .map(String::from)
                .to_vec(),
            1 => words("status --json"),
            2 => words("jobs --json"),
            3 => words(&format!("logs {seed}")),
            _ => words(&format!("run --name many-{i} -- sleep 1")),
        })
        .collect();
    let outs = all_at_once(&test, commands.clone(), Duration::from_secs(90));
    let mut ids = vec![];
    for (i, (out, args)) in outs.iter().zip(&commands).enumerate() {
        assert_eq!(out.code, Some(0), "{args:?}: {out:#?}");
        assert!(
            !out.stderr.contains("lost the connection"),
            "{args:?}: {}",
            out.stderr
        );
        match i % 5 {
            0 => assert_eq!(out.stdout, format!("exec-{i}\n"), "{args:?}"),
            1 => {
                let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
                assert_eq!(v["profile"], "box", "{args:?}: {v}");
            }
            2 => {
                let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
                assert!(
                    v.as_array()
                        .unwrap()
                        .iter()
                        .any(|j| j["id"] == seed.as_str()),
                    "{v}"
                );
            }
            3 => assert_eq!(out.stdout, "seed-line\n", "{args:?}"),
            _ => ids.push(out.stdout.trim().to_string()),
        }
    }
    let handshakes = test.sshd.accepted() - before;
    assert!(
        handshakes <= 4,
        "{handshakes} handshakes for 30 commands: the box saw a connection per command"
    );

    // Every `run` made a job of its own.
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "{ids:?}");
    let out = test.run(["jobs", "--json"]).ok();
    let jobs: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    for id in &ids {
        assert!(
            jobs.as_array()
                .unwrap()
                .iter()
                .any(|j| j["id"] == id.as_str()),
            "job {id} missing from {jobs}"
        );
    }
}

#[test]
fn ten_runs_at_once_make_ten_jobs() {
    let Some(test) = TestBox::new() else { return };
    let commands = (0..10)
        .map(|i| words(&format!("run --name ten-{i} -- echo job-{i}")))
        .collect();
    let outs = all_at_once(&test, commands, Duration::from_secs(60));
    let mut ids: Vec<String> = outs
        .into_iter()
        .map(|out| out.ok().stdout.trim().to_string())
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let out = test.run(["logs", id, "-f"]).ok();
        assert_eq!(out.stdout, format!("job-{i}\n"), "job {id}");
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10, "{ids:?}");
}

#[test]
fn a_stopped_master_is_replaced_and_ended() {
    let Some(test) = TestBox::new() else { return };
    test.run(["connect"]).ok();
    let stopped = Stopped::new(masters(&test));
    let start = Instant::now();
    let out = test.run(["exec", "--", "echo", "back"]).ok();
    assert_eq!(out.stdout, "back\n");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "took {:?}",
        start.elapsed()
    );
    assert!(out.stderr.contains("did not answer"), "{}", out.stderr);
    wait_until("the stopped master to end", Duration::from_secs(5), || {
        stopped.0.iter().all(|&pid| !alive(pid))
    });
    assert_eq!(masters(&test).len(), 1, "one master replaces it");

    // status, which asks the master several times, pays the check once.
    let stopped = Stopped::new(masters(&test));
    let out = run(test.fenton(["status", "--json"]), Duration::from_secs(40)).ok();
    assert!(out.elapsed < Duration::from_secs(15), "{out:?}");
    assert!(out.stderr.contains("did not answer"), "{}", out.stderr);
    wait_until("the stopped master to end", Duration::from_secs(5), || {
        stopped.0.iter().all(|&pid| !alive(pid))
    });

    // `disconnect` ends a stopped master too, and says it did.
    let stopped = Stopped::new(masters(&test));
    let out = test.run(["disconnect"]).ok();
    assert!(out.stderr.contains("disconnected"), "{}", out.stderr);
    assert!(out.elapsed < Duration::from_secs(15), "{out:?}");
    wait_until("the stopped master to end", Duration::from_secs(5), || {
        stopped.0.iter().all(|&pid| !alive(pid))
    });
    let out = test.run(["connect"]).ok();
    assert!(out.stderr.contains("connected to box"), "{}", out.stderr);
    assert!(!out.stderr.contains("already"), "{}", out.stderr);
}

#[test]
fn a_stopped_tmux_on_the_box_is_named_within_its_deadline() {
    let Some(test) = TestBox::new() else { return };
    require!("tmux", crate::common::installed("tmux"));
    let out = test
        .on_box(&format!(
            "tmux -L {} new-session -d -s keep sleep 600 && tmux -L {} display-message -p '#{{pid}}'",
            test.tmux_socket, test.tmux_socket
        ))
        .ok();
    let pid: i32 = out.stdout.trim().parse().unwrap();
    let _stopped = Stopped::new(vec![pid]);

    // run says so and starts the job without tmux.
    let out = run(
        test.fenton(["run", "--name", "second", "--", "echo", "ran"]),
        Duration::from_secs(40),
    )
    .ok();
    assert!(
        out.stderr.contains("tmux on fenton-sandbox did not answer"),
        "{}",
        out.stderr
    );
    assert!(out.elapsed < Duration::from_secs(25), "{out:?}");
    let logs = test.run(["logs", out.stdout.trim(), "-f"]).ok();
    assert_eq!(logs.stdout, "ran\n");

    let out = run(
        test.fenton(["jupyter", "start", "--no-browser"]),
        Duration::from_secs(40),
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("tmux on the box did not answer within 10 s"),
        "{}",
        out.stderr
    );
    assert!(out.elapsed < Duration::from_secs(25), "{out:?}");

    // status leaves the stuck part out and shows the rest.
    let out = run(test.fenton(["status", "--json"]), Duration::from_secs(40)).ok();
    assert!(out.elapsed < Duration::from_secs(20), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["profile"], "box", "{v}");
}

#[test]
fn status_watch_takes_sane_intervals_and_its_box_loop_ends_with_fenton() {
    let Some(test) = TestBox::new() else { return };
    for bad in ["1e20", "1e19", "0", "nan", "inf"] {
        let out = test.run(["status", "--watch", bad]);
        assert_eq!(out.code, Some(2), "--watch {bad}: {out:?}");
        assert!(out.stderr.contains("3600"), "{}", out.stderr);
    }

    let mut child = test
        .fenton(["status", "--json", "--watch", "600"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut first = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut first);
        let _ = tx.send(first);
    });
    let first = rx.recv_timeout(Duration::from_secs(30));
    let remote_dir = test.remote_dir.to_str().unwrap().to_string();
    let on_box = || {
        TestBox::pids_mentioning(&remote_dir)
            .into_iter()
            .filter(|&pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains("watch"))
            })
            .filter(|&pid| alive(pid))
            .collect::<Vec<_>>()
    };
    let looping = on_box();
    let _ = child.kill();
    let _ = child.wait();
    let first = first.expect("a first frame within 30 s");
    assert!(first.contains("\"profile\""), "{first}");
    assert!(!looping.is_empty(), "the box's watch loop runs");
    wait_until(
        "the box's watch loop to end after fenton",
        Duration::from_secs(5),
        || on_box().is_empty(),
    );
}

/// The box's sshd processes serving connections (the listener's descendants).
fn sshd_sessions(test: &TestBox) -> Vec<i32> {
    let listener: i32 = std::fs::read_to_string(test.sshd.dir.join("sshd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid = stat[stat.rfind(')')? + 1..]
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = vec![listener];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    found.remove(0);
    found
}

#[test]
fn a_stopped_sshd_session_ends_every_command_within_its_deadline() {
    let Some(test) = TestBox::new() else { return };
    test.run(["connect"]).ok();
    let _first = Stopped::new(sshd_sessions(&test));
    let out = run(
        test.fenton(["exec", "--", "echo", "hi"]),
        Duration::from_secs(40),
    );
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(out.stderr.contains("stopped answering"), "{}", out.stderr);
    assert!(out.elapsed < Duration::from_secs(30), "{out:?}");
    let out = run(test.fenton(["connect"]), Duration::from_secs(40)).ok();
    assert!(
        out.stderr.contains("connected to box") && !out.stderr.contains("already"),
        "{}",
        out.stderr
    );

    // A tunnel asked for through a master whose box has stopped answering is made through
    // a new connection, and works.
    let _second = Stopped::new(sshd_sessions(&test));
    let local = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = format!("{local}:127.0.0.1:{}", test.sshd.port);
    let out = run(test.fenton(["tunnel", &spec]), Duration::from_secs(60)).ok();
    assert!(out.elapsed < Duration::from_secs(45), "{out:?}");
    let mut banner = [0u8; 7];
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", local)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::io::Read::read_exact(&mut stream, &mut banner).unwrap();
    assert_eq!(&banner, b"SSH-2.0", "the tunnel reaches the box");

    // Following a job whose link dies before the log's first line reconnects and goes on.
    let id = test
        .run(["run", "--", "sh", "-c", "sleep 3; echo after"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let _third = Stopped::new(sshd_sessions(&test));
    let out = run(test.fenton(["logs", &id, "-f"]), Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "after\n", "{out:?}");
    assert!(out.stderr.contains("reconnect"), "{}", out.stderr);
}

#[test]
fn when_every_connection_is_full_the_box_limit_is_named_not_the_link() {
    let Some(test) = TestBox::builder().sshd_option("MaxSessions 1").start() else {
        return;
    };
    // Four commands that stay fill the four shared connections fenton may open.
    let script = format!("sleep 60 # holder of {}", test.sshd.port);
    let holders: Vec<_> = (0..4)
        .map(|_| {
            test.fenton(["exec", "--", "sh", "-c", &script])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    struct Reap(Vec<std::process::Child>);
    impl Drop for Reap {
        fn drop(&mut self) {
            for child in &mut self.0 {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
    let holders = Reap(holders);
    wait_until("four sessions on the box", Duration::from_secs(30), || {
        TestBox::pids_mentioning(&script)
            .into_iter()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sh\0"))
            })
            .count()
            >= 4
    });
    let out = run(
        test.fenton(["exec", "--", "echo", "no room"]),
        Duration::from_secs(60),
    );
    drop(holders);
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(
        out.stderr
            .contains("the box allows 1 session per connection (sshd MaxSessions)"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("lost the connection"),
        "{}",
        out.stderr
    );
    assert!(out.elapsed < Duration::from_secs(30), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}
