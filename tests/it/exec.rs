//! `fenton exec` passes through every byte the command wrote, on both streams, whatever the
//! size, the destination (a pipe or a file), the load on the machine and the number of
//! commands at once; a command killed by a signal ends as a shell reports it, not as a link
//! fault.

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{run, TestBox};

/// What `seq 1 N` prints.
fn seq(n: usize) -> Vec<u8> {
    (1..=n)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect()
}

/// Busy loops while alive: a loaded machine, where output used to be lost. One core's worth
/// of them, so that tests running beside this one keep the rest.
struct Load(Vec<Child>);

impl Load {
    fn start() -> Load {
        Load(
            (0..1)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .expect("a busy loop")
                })
                .collect(),
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One run's stdout and stderr lengths against what was written, or what went wrong.
fn check(label: &str, code: Option<i32>, stdout: &[u8], stderr: &[u8], out: usize, err: usize) {
    assert_eq!(code, Some(0), "{label}: exit status");
    assert!(
        stdout == seq(out).as_slice(),
        "{label}: stdout has {} of {} bytes",
        stdout.len(),
        seq(out).len()
    );
    assert!(
        stderr == seq(err).as_slice(),
        "{label}: stderr has {} of {} bytes",
        stderr.len(),
        seq(err).len()
    );
}

/// `seq` counts whose output spans 100 KB to 10 MB on stdout, with a quarter as much on stderr.
const SIZES: [usize; 5] = [20_000, 60_000, 150_000, 400_000, 1_400_000];

fn line(out: usize, err: usize) -> String {
    format!("seq 1 {out}; seq 1 {err} >&2")
}

#[test]
fn every_byte_arrives_on_both_streams_to_a_pipe_or_a_file_under_load() {
    let Some(test) = TestBox::new() else { return };
    test.run(["connect"]).ok();
    let _load = Load::start();
    let files = test.root.join("out");
    std::fs::create_dir_all(&files).unwrap();
    for i in 0..200 {
        // Mostly the sizes that were cut most often, 10 MB every tenth run.
        let out = if i % 10 == 9 { SIZES[4] } else { SIZES[i % 4] };
        let err = out / 4;
        let mut cmd = test.fenton(["exec", "--", "sh", "-c", &line(out, err)]);
        if i % 2 == 0 {
            let o = run(cmd, Duration::from_secs(60));
            let code = o.code;
            check(
                &format!("run {i} to a pipe"),
                code,
                o.stdout.as_bytes(),
                o.stderr.as_bytes(),
                out,
                err,
            );
        } else {
            let (o, e) = (
                files.join(format!("{i}.out")),
                files.join(format!("{i}.err")),
            );
            let status = cmd
                .stdout(File::create(&o).unwrap())
                .stderr(File::create(&e).unwrap())
                .status()
                .unwrap();
            check(
                &format!("run {i} to a file"),
                status.code(),
                &std::fs::read(&o).unwrap(),
                &std::fs::read(&e).unwrap(),
                out,
                err,
            );
        }
    }
    // Plain ssh over fenton's own shared connection, in the same conditions, as the yardstick.
    let socket = test.control_sockets().pop().expect("the shared connection");
    for i in 0..20 {
        let out = SIZES[i % 5];
        let mut ssh = Command::new("ssh");
        ssh.arg("-F")
            .arg(test.sshd.ssh_config())
            .arg("-S")
            .arg(&socket)
            .args(["fenton-sandbox", &line(out, out / 4)])
            .stdin(Stdio::null());
        let o = run(ssh, Duration::from_secs(60));
        check(
            &format!("plain ssh run {i}"),
            o.code,
            o.stdout.as_bytes(),
            o.stderr.as_bytes(),
            out,
            out / 4,
        );
    }
}

#[test]
fn fifty_at_once_lose_nothing() {
    // Room for fifty sessions on one connection, so this test is about the output alone.
    let Some(test) = TestBox::builder().sshd_option("MaxSessions 64").start() else {
        return;
    };
    test.run(["connect"]).ok();
    let children: Vec<_> = (0..50)
        .map(|i| {
            let out = SIZES[i % 4];
            let child = test
                .fenton(["exec", "--", "sh", "-c", &line(out, out / 4)])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (i, out, child)
        })
        .collect();
    for (i, out, child) in children {
        let o = child.wait_with_output().unwrap();
        check(
            &format!("run {i} of 50"),
            o.status.code(),
            &o.stdout,
            &o.stderr,
            out,
            out / 4,
        );
    }
}

#[test]
fn a_chatty_bashrc_under_load_never_costs_the_answer() {
    let Some(test) = TestBox::builder()
        .bashrc("echo 'Welcome to the box!'\necho 'a warning' >&2\n")
        .start()
    else {
        return;
    };
    test.run(["connect"]).ok();
    let _load = Load::start();
    for i in 0..300 {
        let out = test.run(["exec", "--", "echo", "hi"]);
        assert_eq!(out.code, Some(0), "run {i}: {out:?}");
        assert_eq!(out.stdout, "Welcome to the box!\nhi\n", "run {i}");
        assert_eq!(out.stderr, "a warning\n", "run {i}");
    }
}

#[test]
fn a_command_killed_by_a_signal_is_not_a_link_fault() {
    let Some(test) = TestBox::new() else { return };
    let out = test.run(["exec", "--", "sh", "-c", "echo before; kill -9 $$"]);
    assert_eq!(
        out.code,
        Some(137),
        "128 + 9, as a shell reports it: {out:?}"
    );
    assert_eq!(out.stdout, "before\n");
    assert!(
        out.stderr.contains("killed by signal 9 (KILL)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("connection"), "{}", out.stderr);

    let out = test.run(["exec", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.code, Some(143), "{out:?}");
    assert!(out.stderr.contains("signal 15 (TERM)"), "{}", out.stderr);

    // The connection is still there: the next command needs no new handshake.
    test.run(["exec", "--", "true"]).ok();
    assert_eq!(test.sshd.accepted(), 1, "{}", test.sshd.log());

    // A reader that goes away early ends the command, as with plain ssh, without an error.
    let fenton = test.fenton(["exec", "--", "yes"]);
    let mut sh = Command::new("sh");
    sh.args(["-c", "\"$0\" \"$@\" | head -n 3"])
        .arg(fenton.get_program())
        .args(fenton.get_args())
        .env_clear()
        .envs(fenton.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(Stdio::null());
    let out = run(sh, Duration::from_secs(20));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "y\ny\ny\n");
    assert_eq!(out.stderr, "", "a closed pipe is no news");
}

/// Output that cannot be written here (a full disk: /dev/full) is an error that says so, not
/// a quiet success with the output gone; on stderr, where nothing can be said, the exit says it.
#[test]
fn output_that_cannot_be_written_is_not_a_success() {
    let Some(test) = TestBox::new() else { return };
    for (args, redirect) in [
        (&["echo", "hi"][..], ">/dev/full"),
        (&["head", "-c", "1000000", "/dev/zero"][..], ">/dev/full"),
        (&["sh", "-c", "echo hi >&2"][..], "2>/dev/full"),
    ] {
        let fenton = test.fenton(["exec", "--"].iter().chain(args));
        let mut sh = Command::new("sh");
        sh.args(["-c", &format!("\"$0\" \"$@\" {redirect}")])
            .arg(fenton.get_program())
            .args(fenton.get_args())
            .env_clear()
            .envs(fenton.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdin(Stdio::null());
        let out = run(sh, Duration::from_secs(20));
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        if redirect.starts_with('>') {
            assert!(
                out.stderr
                    .contains("cannot write the command's stdout here (No space left"),
                "{}",
                out.stderr
            );
        }
    }
}

/// A stdout left non-blocking by another program that shares it (a terminal, a pipe from a
/// parent that set O_NONBLOCK) fills up when its reader is slow: fenton waits for the reader,
/// as ssh does, instead of taking "would block" for a closed pipe and losing the rest.
#[test]
fn a_non_blocking_stdout_with_a_slow_reader_gets_every_byte() {
    require!("python3", crate::common::installed("python3"));
    let Some(test) = TestBox::new() else { return };
    // The reader: a pipe made non-blocking on fenton's side, read slowly; prints the count.
    let reader = r#"
import fcntl, os, subprocess, sys, time
r, w = os.pipe()
fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
child = subprocess.Popen(sys.argv[1:], stdout=w)
os.close(w)
n = 0
while True:
    time.sleep(0.002)
    chunk = os.read(r, 65536)
    if not chunk:
        break
    n += len(chunk)
print(n, child.wait())
"#;
    let fenton = test.fenton(["exec", "--", "head", "-c", "3000000", "/dev/zero"]);
    let mut python = Command::new("python3");
    python
        .args(["-c", reader])
        .arg(fenton.get_program())
        .args(fenton.get_args())
        .env_clear()
        .envs(fenton.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(Stdio::null());
    let out = run(python, Duration::from_secs(60));
    assert_eq!(out.stdout, "3000000 0\n", "{out:?}");
}

/// Ctrl-C ends exec at once (130) even while its output waits for a reader that stopped
/// reading (a pager, which ignores Ctrl-C): the write still waiting is left behind.
#[test]
fn ctrl_c_ends_exec_while_its_output_waits_for_a_reader() {
    let Some(test) = TestBox::new() else { return };
    let marker = format!("fenton-unread-{}", std::process::id());
    // `yes` on the box says `MARKER!`, which is on no command line here.
    let mut child = test
        .fenton(["exec", "--", "sh", "-c", "exec yes \"$0!\"", &marker])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The pipe is never read: fenton's write blocks once it is full, then the master's, the
    // link's and the box's, until `yes` itself waits to write.
    let _reader = child.stdout.take();
    let needle = format!("{marker}!");
    crate::common::wait_until(
        "the command on the box to wait for its output to be read",
        Duration::from_secs(20),
        || {
            TestBox::pids_mentioning(&needle).iter().any(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|stat| stat.rsplit(") ").next().is_some_and(|s| s.starts_with('S')))
            })
        },
    );
    let asked = std::time::Instant::now();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let mut status = None;
    while status.is_none() && asked.elapsed() < Duration::from_secs(10) {
        status = child.try_wait().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("exec did not end within 10 s of Ctrl-C");
    };
    assert_eq!(status.code(), Some(130));
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
}
