//! Local processes: running one with a deadline, signalling one, telling whether one lives.
//! Every wait fenton does on a local program goes through here, so none is unbounded by
//! accident.

use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Runs a command to its end, or gives None (and kills it) past `limit`; no limit waits as
/// long as it takes (a person typing a passphrase). The caller sets its stdio: never a pipe
/// that a daemon it starts could keep open.
pub fn run_bounded(mut cmd: Command, limit: Option<Duration>) -> std::io::Result<Option<Output>> {
    let child = cmd.spawn()?;
    let Some(limit) = limit else {
        return child.wait_with_output().map(Some);
    };
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.map(Some),
        Err(_) => {
            signal(pid, Signal::SIGKILL);
            Ok(None)
        }
    }
}

pub fn signal(pid: i32, signal: Signal) {
    let _ = kill(Pid::from_raw(pid), signal);
}

/// Whether a process lives; a zombie is gone for our purposes (only Linux tells them apart
/// cheaply).
pub fn alive(pid: i32) -> bool {
    if cfg!(target_os = "linux") {
        return std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rfind(')')
                .and_then(|i| s[i + 1..].split_whitespace().next())
                .is_some_and(|state| state != "Z")
        });
    }
    kill(Pid::from_raw(pid), None).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_past_its_limit_is_killed() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let start = std::time::Instant::now();
        assert!(run_bounded(cmd, Some(Duration::from_millis(100)))
            .unwrap()
            .is_none());
        assert!(start.elapsed() < Duration::from_secs(5));
        let out = run_bounded(Command::new("true"), None).unwrap().unwrap();
        assert!(out.status.success());
        assert!(alive(std::process::id() as i32));
    }
}
