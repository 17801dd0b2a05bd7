//! The POSIX sh scripts fenton sends to the box on stdin (`sh -s`), kept in one place so one
//! test holds every one of them to `sh -n` and shellcheck. Nothing on the box needs
//! installing: they use sh, coreutils, /proc and, where present, tmux, nvidia-smi and curl.

use std::io::Read;

use anyhow::{Context, Result};

use super::{Output, Remote};

/// `fenton status`: one frame, or a frame per interval for `--watch`.
pub const STATUS: &str = include_str!("scripts/status.sh");
/// `fenton status` on a Slurm profile: the login node's load, sinfo and squeue, in sections
/// (see [`slurm_status`]).
const SLURM_STATUS: &str = include_str!("scripts/slurm-status.sh");
/// `fenton doctor` on a Slurm profile: the scheduler's commands, partitions, a test
/// submission (see [`slurm_doctor`]).
const SLURM_DOCTOR: &str = include_str!("scripts/slurm-doctor.sh");
/// `fenton jupyter` on a Slurm profile: the notebook as a batch job, on the login node.
pub const JUPYTER_SLURM: &str = include_str!("scripts/jupyter-slurm.sh");
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
/// What the Slurm job scripts share; each goes after [`JOB_LIB`] and this. Every script
/// that talks to Slurm starts with it: it clears what the login shell's environment would
/// change in the answers of Slurm's commands.
pub const SLURM_LIB: &str = include_str!("scripts/slurm-lib.sh");
pub const SLURM_RUN: &str = include_str!("scripts/slurm-run.sh");
pub const SLURM_LIST: &str = include_str!("scripts/slurm-list.sh");
pub const SLURM_LOGS: &str = include_str!("scripts/slurm-logs.sh");
pub const SLURM_KILL: &str = include_str!("scripts/slurm-kill.sh");
/// The end-message watcher on a Slurm login node (see [`slurm_watcher`]).
const SLURM_WATCH: &str = include_str!("scripts/slurm-watch.sh");
/// `fenton monitor` and `status --history`: start, find, stop and read the recorder.
pub const MONITOR: &str = include_str!("scripts/monitor.sh");
/// The recorder itself, written to the box by `monitor start` (see [`recorder`]).
const RECORDER: &str = include_str!("scripts/recorder.sh");
/// `fenton code`: whether the box can run the editor's server, and where DIR is.
pub const CODE: &str = include_str!("scripts/code.sh");
pub const NOTIFY_TEST: &str = include_str!("scripts/notify-test.sh");
/// The wrapper a job runs under: written to the box, it records how the job ended and sends
/// the notifications.
pub const JOB_WRAPPER: &str = include_str!("scripts/job.sh");

/// The recorder as the box runs it: job.sh's senders first, so that alerts and a job's
/// notifications go out the same way.
pub fn recorder() -> String {
    let mut out = String::new();
    for name in ["fj_curl_why", "fj_send", "fj_json", "fj_jstr"] {
        out.push_str(job_function(name));
    }
    out + RECORDER
}

/// The Slurm notebook's script as the login node runs it: [`slurm_env`], then job.sh's
/// senders, so its warning before the time limit goes out as a job's notifications do.
pub fn jupyter_slurm() -> String {
    let mut out = format!("{}\n", slurm_env());
    for name in ["fj_curl_why", "fj_send", "fj_json", "fj_jstr"] {
        out.push_str(job_function(name));
    }
    out + JUPYTER_SLURM
}

/// The watcher as the login node runs it: lib.sh and slurm-lib.sh, then job.sh's senders,
/// so that a Slurm job's end message goes out as a box job's does.
pub fn slurm_watcher() -> String {
    let mut out = format!("{JOB_LIB}\n{SLURM_LIB}\n");
    for name in [
        "fj_human",
        "fj_json",
        "fj_jstr",
        "fj_utf8",
        "fj_curl_why",
        "fj_send",
        "fj_add",
        "fj_notify",
        "fj_last",
        "fj_tail",
        "fj_hostname",
        "fj_num",
    ] {
        out.push_str(job_function(name));
    }
    out + SLURM_WATCH
}

/// The head of slurm-lib.sh that every script talking to Slurm starts with: the login
/// shell's variables that would change what Slurm's commands print or do, cleared.
pub fn slurm_env() -> &'static str {
    let end = SLURM_LIB
        .find("\n# fj_sfind ")
        .expect("slurm-lib.sh has its environment first, then fj_sfind");
    &SLURM_LIB[..end + 1]
}

/// `fenton status` on a Slurm profile, as the login node runs it.
pub fn slurm_status() -> String {
    format!("{}\n{SLURM_STATUS}", slurm_env())
}

/// `fenton doctor` on a Slurm profile, as the login node runs it.
pub fn slurm_doctor() -> String {
    format!("{}\n{SLURM_DOCTOR}", slurm_env())
}

/// The text of the function `name` in job.sh, from its `name() {` line to its closing `}`.
fn job_function(name: &str) -> &'static str {
    let head = format!("\n{name}() {{\n");
    let start = JOB_WRAPPER
        .find(&head)
        .unwrap_or_else(|| panic!("job.sh has no function {name}"))
        + 1;
    let end = JOB_WRAPPER[start..]
        .find("\n}\n")
        .unwrap_or_else(|| panic!("job.sh's {name} does not end"))
        + start
        + 3;
    &JOB_WRAPPER[start..end]
}

/// A job script as the box runs it: the shared functions first.
pub fn job(body: &str) -> String {
    format!("{JOB_LIB}\n{body}")
}

/// `bytes` random bytes from the system's generator, as hex.
pub fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("cannot read /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A script framed so that what the box answers can be told from what the login shell said.
/// Its first line prints a mark made for this one run, on stdout and on stderr: whatever
/// comes before it (a `.bashrc` banner, even one shaped like fenton's own output) is the
/// login shell's, and no mark at all means the script never ran (a start-up file that exits
/// or eats stdin), which is not the same as an empty answer.
///
/// The whole input is one line: a start-up file that reads lines of stdin (`read -r answer`)
/// takes all of it, and then no part of the script runs either, where it would otherwise run
/// (a job started) with fenton saying it did not. The box starts no program for the frame.
pub struct Framed {
    input: String,
    mark: String,
}

impl Framed {
    pub fn new(script: &str) -> Result<Framed> {
        let mark = format!("@@fenton-{}", random_hex(12)?);
        let first = format!("printf '%s\\n' {mark}; printf '%s\\n' {mark} >&2");
        Ok(Framed {
            input: one_line(&first, script),
            mark,
        })
    }

    /// A frame for a script whose stderr goes straight to the user's terminal: marked on
    /// stdout only.
    pub fn stdout_only(script: &str) -> Result<Framed> {
        let mark = format!("@@fenton-{}", random_hex(12)?);
        let first = format!("printf '%s\\n' {mark}");
        Ok(Framed {
            input: one_line(&first, script),
            mark,
        })
    }

    /// Whether a line of output (without its newline) is the mark's: one that ends with it,
    /// as a start-up file may have printed without a newline before it.
    pub fn is_mark(&self, line: &str) -> bool {
        line.ends_with(&self.mark)
    }

    /// What goes on the script's stdin.
    pub fn input(&self) -> &[u8] {
        self.input.as_bytes()
    }

    /// What follows the mark's line in a whole output; None without a mark.
    pub fn after<'a>(&self, out: &'a [u8]) -> Option<&'a [u8]> {
        let mark = self.mark.as_bytes();
        let mut at = 0;
        for line in out.split_inclusive(|&b| b == b'\n') {
            at += line.len();
            if line.strip_suffix(b"\n").is_some_and(|l| l.ends_with(mark)) {
                return Some(&out[at..]);
            }
        }
        None
    }

    /// A reader for output that arrives in pieces (a followed log, status frames).
    pub fn reader(&self) -> Unframe {
        Unframe {
            mark: self.mark.clone(),
            pending: Vec::new(),
            seen: false,
        }
    }

    /// The one-line error for an output that has no mark: the script did not run.
    pub fn unread(&self, host: &str, out: &Output) -> anyhow::Error {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = stderr
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(|l| format!(", after it said: {l}"))
            .unwrap_or_default();
        anyhow::anyhow!(
            "the login shell on {host} did not run fenton's script (exit {}{said}): a start-up file (~/.bashrc?) that exits, or reads stdin, breaks every command sent over ssh; make it return at once when the shell is not interactive",
            out.code
        )
    }
}

/// `first`, then the script as one double-quoted word for `eval`, on the same line: the
/// script runs in the shell that read it, as it would have from stdin (its traps, its
/// arguments, the process a signal reaches), and only once all of it has arrived. Its
/// newlines are `$fj_nl`, a newline taken from the shell's default IFS (space, tab, newline):
/// no program runs to make one, and only a shell that took an IFS from its environment pays
/// for a `printf`. `\`, `"`, `$` and `` ` `` are escaped, so the word is the script's text
/// as it is.
fn one_line(first: &str, script: &str) -> String {
    let mut input = String::with_capacity(script.len() * 5 / 4 + 256);
    input.push_str(concat!(
        "case $IFS in ' \t'?) fj_nl=${IFS#??} ;; ",
        "*) fj_nl=$(printf '\\n.'); fj_nl=${fj_nl%.} ;; esac; "
    ));
    input.push_str(first);
    input.push_str("; eval \"");
    for c in script.chars() {
        match c {
            '\n' => input.push_str("${fj_nl}"),
            '\\' | '"' | '$' | '`' => {
                input.push('\\');
                input.push(c);
            }
            _ => input.push(c),
        }
    }
    input.push_str("\"\n");
    input
}

/// Hands on what follows the mark's line of output that arrives in pieces.
pub struct Unframe {
    mark: String,
    pending: Vec<u8>,
    seen: bool,
}

impl Unframe {
    /// The part of `chunk` (with what came before it, held back) that is the script's own.
    pub fn feed<'a>(&'a mut self, chunk: &'a [u8]) -> &'a [u8] {
        if self.seen {
            return chunk;
        }
        self.pending.extend_from_slice(chunk);
        let mut at = 0;
        while let Some(end) = self.pending[at..].iter().position(|&b| b == b'\n') {
            let line = &self.pending[at..at + end];
            at += end + 1;
            if line.ends_with(self.mark.as_bytes()) {
                self.seen = true;
                self.pending.drain(..at);
                return &self.pending;
            }
        }
        self.pending.drain(..at);
        &[]
    }

    /// Whether the mark has come: the script runs.
    pub fn seen(&self) -> bool {
        self.seen
    }
}

/// Runs a script (`line` is the remote command, `sh -s …`) and answers with its own
/// output: stdout and stderr after their marks, the exit code as it was. A script that never
/// ran is an error that says why.
pub async fn output(remote: &Remote, line: &str, script: &str) -> Result<Output> {
    let framed = Framed::new(script)?;
    let out = remote.output(line, framed.input()).await?;
    let Some(stdout) = framed.after(&out.stdout) else {
        return Err(framed.unread(&remote.profile.host, &out));
    };
    let stderr = framed.after(&out.stderr).unwrap_or(&out.stderr);
    Ok(Output {
        code: out.code,
        stdout: stdout.to_vec(),
        stderr: stderr.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// A login shell's chatter, even a line shaped like the mark, is not the answer; a
    /// script that never printed its mark is told from one that answered nothing.
    #[test]
    fn frames_tell_the_answer_from_the_chatter() {
        let framed = Framed::new("echo answer; echo oops >&2").unwrap();
        let run = |prefix: &str| {
            let mut child = Command::new("sh")
                .args(["-c", &format!("{prefix}\nexec sh -s")])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let _ = child.stdin.take().unwrap().write_all(framed.input());
            let out = child.wait_with_output().unwrap();
            Output {
                code: out.status.code().unwrap_or(-1),
                stdout: out.stdout,
                stderr: out.stderr,
            }
        };
        // Start-up files print lines, lines like fenton's, and text without a newline.
        let chatty = run(
            "echo '@@fenton-0000'; echo now 5; echo fenton-offset 99 x; echo warn >&2; printf 'no newline'; printf 'title' >&2",
        );
        assert_eq!(framed.after(&chatty.stdout), Some(&b"answer\n"[..]));
        assert_eq!(framed.after(&chatty.stderr), Some(&b"oops\n"[..]));
        let mut reader = framed.reader();
        let mut got = Vec::new();
        for chunk in chatty.stdout.chunks(3) {
            got.extend_from_slice(reader.feed(chunk));
        }
        assert!(reader.seen());
        assert_eq!(got, b"answer\n");
        for broken in [
            "cat >/dev/null",
            "read -r line",
            "read -r one; read -r two",
            "exit 1",
        ] {
            let out = run(broken);
            assert_eq!(framed.after(&out.stdout), None, "{broken}");
            assert!(
                !out.stdout.ends_with(b"answer\n"),
                "{broken}: the script ran"
            );
            let err = framed.unread("box", &out).to_string();
            assert!(err.contains("did not run fenton's script"), "{err}");
        }
    }

    /// The script runs as it was written, whatever characters it holds, as one line of input,
    /// in a shell with the default IFS or one it was handed.
    #[test]
    fn a_framed_script_arrives_as_it_was_written() {
        let text = "a \\ b \"c\" $HOME `id` $(id) ${x} 'q' \\n \t\ttabs %s %b\n\n  spaces  ";
        let script = format!(
            "cat <<'EOF'\n{text}\nEOF\nprintf '%s|' \"$@\" \\\n  last\necho \"$fj_nl\" | wc -l\nprintf end"
        );
        let framed = Framed::new(&script).unwrap();
        let input = framed.input();
        assert_eq!(
            input.iter().filter(|&&b| b == b'\n').count(),
            1,
            "not one line: {}",
            String::from_utf8_lossy(input)
        );
        assert!(input.ends_with(b"\n"));
        let line = String::from_utf8(input.to_vec()).unwrap();
        for prefix in ["", "IFS=:"] {
            let out = Command::new("sh")
                .args(["-c", &format!("{prefix}\n{line}"), "sh", "a", "b c"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{prefix}: {out:?}");
            let after = framed.after(&out.stdout).expect("no mark");
            assert_eq!(
                String::from_utf8_lossy(after),
                format!("{text}\na|b c|last|2\nend"),
                "{prefix}"
            );
        }
    }

    #[test]
    fn only_real_process_ids_may_be_signalled() {
        // `kill -TERM -1` reaches every process: 1 is never a job's process group.
        let ok = |text: &str| {
            Command::new("sh")
                .arg("-c")
                .arg(job("fj_pid_ok \"$1\""))
                .args(["sh", "/nonexistent", text])
                .status()
                .unwrap()
                .success()
        };
        for good in ["2", "4242", "4194304"] {
            assert!(ok(good), "{good:?} was refused");
        }
        for bad in [
            "",
            "0",
            "1",
            "-1",
            "01",
            "abc",
            "12a",
            " 12",
            "1 2",
            "-5",
            "99999999999",
            "$(id)",
        ] {
            assert!(!ok(bad), "{bad:?} was taken for a process id");
        }
    }

    #[test]
    fn every_script_is_valid_posix_sh() {
        let scripts = [
            ("status.sh", STATUS.to_string()),
            ("slurm-status.sh", slurm_status()),
            ("slurm-doctor.sh", slurm_doctor()),
            ("doctor.sh", DOCTOR.to_string()),
            ("run.sh", job(JOB_RUN)),
            ("list.sh", job(JOB_LIST)),
            ("logs.sh", job(JOB_LOGS)),
            ("kill.sh", job(JOB_KILL)),
            ("prune.sh", job(JOB_PRUNE)),
            ("slurm-run.sh", job(&format!("{SLURM_LIB}\n{SLURM_RUN}"))),
            ("slurm-list.sh", job(&format!("{SLURM_LIB}\n{SLURM_LIST}"))),
            ("slurm-logs.sh", job(&format!("{SLURM_LIB}\n{SLURM_LOGS}"))),
            ("slurm-kill.sh", job(&format!("{SLURM_LIB}\n{SLURM_KILL}"))),
            ("notify-test.sh", job(NOTIFY_TEST)),
            ("job.sh", JOB_WRAPPER.to_string()),
            ("jupyter.sh", JUPYTER.to_string()),
            ("jupyter-slurm.sh", jupyter_slurm()),
            ("monitor.sh", MONITOR.to_string()),
            ("recorder.sh", recorder()),
            ("code.sh", CODE.to_string()),
            ("slurm-watch.sh", slurm_watcher()),
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
