//! The POSIX sh scripts fenton sends to the box on stdin (`sh -s`), kept in one place so one
//! test holds every one of them to `sh -n` and shellcheck. Nothing on the box needs
//! installing: they use sh, coreutils, /proc and, where present, tmux, nvidia-smi and curl.

/// `fenton status`: one frame, or a frame per interval for `--watch`.
pub const STATUS: &str = include_str!("scripts/status.sh");
/// `fenton doctor`: facts about the box, one `key=value` a line; it changes nothing.
pub const DOCTOR: &str = include_str!("scripts/doctor.sh");
/// `fenton jupyter`: start, find, or stop the server in its tmux window; `key value` lines.
pub const JUPYTER: &str = include_str!("scripts/jupyter.sh");
/// The functions every job script starts with (see [`job`]).
const JOB_LIB: &str = include_str!("scripts/lib.sh");
pub const JOB_RUN: &str = include_str!("scripts/run.sh");
pub const JOB_LIST: &str = include_str!("scripts/list.sh");
pub const JOB_LOGS: &str = include_str!("scripts/logs.sh");
pub const JOB_KILL: &str = include_str!("scripts/kill.sh");
pub const JOB_PRUNE: &str = include_str!("scripts/prune.sh");
pub const NOTIFY_TEST: &str = include_str!("scripts/notify-test.sh");
/// The wrapper a job runs under: written to the box, it records how the job ended and sends
/// the notifications.
pub const JOB_WRAPPER: &str = include_str!("scripts/job.sh");

/// A job script as the box runs it: the shared functions first.
pub fn job(body: &str) -> String {
    format!("{JOB_LIB}\n{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    #[test]
    fn every_script_is_valid_posix_sh() {
        let scripts = [
            ("status.sh", STATUS.to_string()),
            ("doctor.sh", DOCTOR.to_string()),
            ("run.sh", job(JOB_RUN)),
            ("list.sh", job(JOB_LIST)),
            ("logs.sh", job(JOB_LOGS)),
            ("kill.sh", job(JOB_KILL)),
            ("prune.sh", job(JOB_PRUNE)),
            ("notify-test.sh", job(NOTIFY_TEST)),
            ("job.sh", JOB_WRAPPER.to_string()),
            ("jupyter.sh", JUPYTER.to_string()),
        ];
        let shellcheck = Command::new("shellcheck").arg("--version").output().is_ok();
        if !shellcheck {
            if std::env::var("FENTON_REQUIRE_ALL").is_ok_and(|v| v == "1") {
                panic!("shellcheck is missing and FENTON_REQUIRE_ALL=1");
            }
            eprintln!("SKIPPED shellcheck: it is not installed");
        }
        for (name, text) in scripts {
            let out = Command::new("sh")
                .args(["-n", "-c", &text])
                .output()
                .unwrap();
            assert!(out.status.success(), "{name}: {out:?}");
            if !shellcheck {
                continue;
            }
            let mut child = Command::new("shellcheck")
                .args(["-s", "sh", "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}
