//! Text is data on both sides of the link. What a user types or a config holds reaches tmux,
//! sh, cd and the box's parsers as a value (or is refused, saying why), never as code; what
//! the box says (GPU and process names, tmux sessions, jobs) reaches the terminal as text,
//! never as an escape sequence.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{self, wait_until, Out, TestBox, FENTON};

/// Words that are code somewhere fenton's values go: tmux formats, sh, cd options, globs,
/// quotes, line breaks. `{P}` is a file that must never be created.
const HOSTILE: &[&str] = &[
    "#(touch {P})",
    "s#{pane_pid}#S##",
    "$(touch {P})",
    "`touch {P}`",
    "x'; touch {P}; '",
    "a\"b\\c $HOME",
    "-P",
    "-",
    "--",
    "*",
    "~root",
    " lead and trail ",
    "a;b|c&d>e",
    "ünï ✓",
    "x\ny",
    "ends in a newline\n",
];

fn toml_string(value: &str) -> String {
    toml::Value::String(value.into()).to_string()
}

/// The test's config with `remote_dir` replaced, `extra` in the profile and `tmux` (lines) in
/// its tmux table.
fn config_with(test: &TestBox, remote_dir: &Path, extra: &str, tmux: &str) -> String {
    let text = test.default_config(extra).replace(
        &format!("remote_dir = {:?}", test.remote_dir),
        &format!(
            "remote_dir = {}",
            toml_string(&remote_dir.to_string_lossy())
        ),
    );
    format!("{text}{tmux}")
}

/// What a refusal looks like: exit 1, one line, saying why.
fn refused(out: &Out, why: &str) {
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains(why), "{}", out.stderr);
}

#[test]
fn hostile_words_arrive_as_values_or_are_refused() {
    let Some(test) = TestBox::new() else {
        return;
    };
    let pwned = test.root.join("pwned");
    let words: Vec<String> = HOSTILE
        .iter()
        .map(|w| w.replace("{P}", &pwned.to_string_lossy()))
        .collect();
    let no_file = |what: &str| {
        assert!(!pwned.exists(), "{what} ran code on the box");
    };
    for word in &words {
        let has = |set: &[char]| word.contains(set);
        // exec: the words the user typed, exactly.
        let out = test.run(["exec", "--", "printf", "%s", word]).ok();
        assert_eq!(&out.stdout, word);

        // A job name is a file name, a tmux window name and a notification title.
        let out = test.run(["run", &format!("--name={word}"), "--", "true"]);
        refused(&out, "is not allowed");

        // A tmux session, typed or configured.
        let tmux_bad = has(&['#', ':', '.', '$', '\\', '\n']);
        let out = test.run(["tmux", "--", word]);
        if tmux_bad {
            refused(&out, "is not allowed");
        }
        no_file(&format!("fenton tmux {word:?}"));
        let session = format!("session = {}\n", toml_string(word));
        test.write_config(&config_with(&test, &test.remote_dir, "", &session));
        let out = test.run(["run", "--", "sleep", "60"]);
        if tmux_bad {
            refused(&out, "`tmux.session`");
            assert!(out.stderr.contains("config.toml:"), "{}", out.stderr);
        } else {
            let id = out.ok().stdout.trim().to_string();
            let target = format!("={word}");
            let socket = test.tmux_socket.as_str();
            test.run([
                "exec",
                "--",
                "tmux",
                "-L",
                socket,
                "has-session",
                "-t",
                &target,
            ])
            .ok();
            test.run(["kill", &id]).ok();
        }
        no_file(&format!("tmux.session = {word:?}"));

        // remote_dir (where jobs, Jupyter's state and the status sample live) and the
        // mount's remote path (which status measures).
        let dir = test.root.join(format!("state {word}"));
        let mount = format!(
            "[profile.box.mount]\nremote_path = {}\n",
            toml_string(&dir.to_string_lossy())
        );
        test.write_config(&config_with(&test, &dir, &mount, ""));
        let out = test.run(["run", "--", "true"]);
        if word.contains('\n') {
            refused(&out, "`remote_dir` holds a control character");
        } else {
            out.ok();
            let jobs = test.run(["jobs", "--json"]).ok();
            let jobs: serde_json::Value = serde_json::from_str(&jobs.stdout).unwrap();
            assert_eq!(jobs.as_array().map(Vec::len), Some(1), "{jobs}");
            assert!(dir.join("jobs").is_dir(), "{}", dir.display());
            let status = test.run(["status", "--json"]).ok();
            let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
            let disks = status["disks"].as_array().unwrap();
            let path =
                |role: &str| disks.iter().find(|d| d["role"] == role).unwrap()["path"].clone();
            assert_eq!(path("mount"), dir.to_string_lossy().as_ref(), "{disks:?}");
            assert_eq!(
                path("remote_dir"),
                dir.to_string_lossy().as_ref(),
                "{disks:?}"
            );
        }
        no_file(&format!("remote_dir = {dir:?}"));

        // A tmux socket is a file name in tmux's directory.
        let socket = format!("socket = {}\n", toml_string(word));
        let text = config_with(&test, &test.remote_dir, "", "")
            .replace(&format!("socket = {:?}\n", test.tmux_socket), &socket);
        test.write_config(&text);
        let out = test.run(["status", "--json"]);
        if word.contains(['/', '\n']) {
            refused(&out, "`tmux.socket`");
        } else {
            out.ok();
        }
        no_file(&format!("tmux.socket = {word:?}"));
        test.write_config(&config_with(&test, &test.remote_dir, "", ""));

        // A job named on the command line is looked up, never entered or run.
        for verb in ["logs", "kill"] {
            let out = test.run([verb, "--", word]);
            assert_eq!(out.code, Some(1), "{verb} {word:?}: {out:#?}");
            assert!(
                out.stderr.contains("no job"),
                "{verb} {word:?}: {}",
                out.stderr
            );
        }
        no_file(&format!("fenton logs {word:?}"));

        // --dir: cd takes neither an option nor a CDPATH entry from it, and a name ending in
        // a newline is entered whole.
        let place = test.box_home().join(word);
        std::fs::create_dir_all(&place).unwrap();
        let out = test
            .run(["run", &format!("--dir={word}"), "--", "pwd"])
            .ok();
        let id = out.stdout.trim().to_string();
        let log = test.run(["logs", &id, "-f"]).ok();
        assert_eq!(
            log.stdout,
            format!("{}\n", place.display()),
            "--dir={word:?}"
        );
        no_file(&format!("--dir={word:?}"));
    }
}

#[test]
fn arguments_that_are_not_utf8_pass_through_exactly() {
    let Some(test) = TestBox::new() else {
        return;
    };
    let word = OsStr::from_bytes(b"caf\xe9 \xff\xfe 'x'");
    let mut cmd = test.fenton([OsStr::new("exec"), OsStr::new("--")]);
    cmd.args([OsStr::new("printf"), OsStr::new("%s"), word]);
    let out = bytes(cmd);
    assert_eq!(out.0, Some(0), "{}", String::from_utf8_lossy(&out.2));
    assert_eq!(out.1, word.as_bytes());

    let mut cmd = test.fenton([OsStr::new("run"), OsStr::new("--")]);
    cmd.args([OsStr::new("printf"), OsStr::new("%s"), word]);
    let out = bytes(cmd);
    assert_eq!(out.0, Some(0), "{}", String::from_utf8_lossy(&out.2));
    let id = String::from_utf8(out.1).unwrap();
    let out = bytes(test.fenton(["logs", id.trim(), "-f"]));
    assert_eq!(out.1, word.as_bytes());
}

/// Runs a command to its end (60 s at most): exit code, stdout and stderr as bytes.
fn bytes(cmd: Command) -> (Option<i32>, Vec<u8>, Vec<u8>) {
    let mut timed = Command::new("timeout");
    timed
        .arg("60")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear()
        .stdin(Stdio::null());
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            timed.env(key, value);
        }
    }
    let out = timed.output().unwrap();
    (out.status.code(), out.stdout, out.stderr)
}

/// What fenton prints on a terminal (a pty, through `script`), byte for byte.
fn on_a_terminal(test: &TestBox, args: &str, no_color: bool) -> Vec<u8> {
    let cmd = test.fenton::<_, &str>([]);
    let mut script = Command::new("script");
    script
        .args(["-q", "-e", "-c", &format!("{FENTON} {args}"), "/dev/null"])
        .env_clear();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            script.env(key, value);
        }
    }
    script.env("TERM", "xterm-256color");
    if no_color {
        script.env("NO_COLOR", "1");
    }
    bytes(script).1
}

/// Where a byte string has a control byte other than newline and carriage return, or an
/// escape sequence other than a colour (`ESC [ digits ; … m`), or a C1 control (UTF-8).
fn foreign_control(text: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\n' | b'\r' => {}
            0x1b => {
                // Only `ESC [ digits ; … m`: a colour.
                let body = text.get(i + 2..).unwrap_or_default();
                let n = body
                    .iter()
                    .position(|b| !(b.is_ascii_digit() || *b == b';'))
                    .unwrap_or(body.len());
                if text.get(i + 1) != Some(&b'[') || body.get(n) != Some(&b'm') {
                    return Some(i);
                }
                i += 2 + n;
            }
            b if b < 0x20 || b == 0x7f => return Some(i),
            0xc2 if text.get(i + 1).is_some_and(|b| (0x80..=0x9f).contains(b)) => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[test]
fn what_the_box_says_reaches_the_terminal_as_text() {
    require!("script (util-linux)", common::installed("script"));
    // OSC 52 (write the clipboard), OSC 0 (the window title), CSI 2J (clear), and C1 CSI.
    let evil = r"\033]52;c;cHduZWQ=\007\033]0;owned\007\033[2J\302\2330m";
    let bin = tempfile::Builder::new()
        .prefix("fenton-bin")
        .tempdir()
        .unwrap();
    let smi = bin.path().join("nvidia-smi");
    std::fs::write(
        &smi,
        format!(
            "#!/bin/sh\ncase \"$*\" in\n\
             *compute-apps*) printf 'gpu_bus_id, pid, used_gpu_memory, process_name\\n00000000:01:00.0, 4242, 100, python {evil}\\n' ;;\n\
             *driver_version*) printf 'GPU {evil}, 550.54\\n' ;;\n\
             *) printf 'index, pci.bus_id, utilization.gpu, utilization.memory, memory.used, memory.total, temperature.gpu, power.draw, power.limit, fan.speed, name\\n0, 00000000:01:00.0, 50, 10, 100, 1000, 40, 100.00, 200.00, 30, GPU {evil}\\n' ;;\n\
             esac\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&smi, std::fs::Permissions::from_mode(0o755)).unwrap();
    let Some(test) = TestBox::builder()
        .env(
            "PATH",
            &format!("{}:/usr/local/bin:/usr/bin:/bin", bin.path().display()),
        )
        .start()
    else {
        return;
    };
    // A co-tenant's tmux session and a job whose output and name carry escapes.
    let session = format!(
        "tmux -L {} new-session -d -s \"$(printf 'sess {evil}')\" sleep 600",
        test.tmux_socket
    );
    test.on_box(&session).ok();
    let out = test
        .run([
            "run",
            "--name",
            "evil",
            "--",
            "printf",
            &format!("{evil}\\n"),
        ])
        .ok();
    let id = out.stdout.trim().to_string();
    test.run(["logs", &id, "-f"]).ok();
    let name = test.remote_dir.join("jobs").join(&id).join("name");
    std::fs::write(&name, b"evil\x1b]0;owned\x07\n").unwrap();
    wait_until("the job to end", Duration::from_secs(10), || {
        test.remote_dir.join("jobs").join(&id).join("exit").exists()
    });

    for no_color in [false, true] {
        for args in ["status", "jobs", "doctor"] {
            let text = on_a_terminal(&test, args, no_color);
            let shown = String::from_utf8_lossy(&text);
            if let Some(at) = foreign_control(&text) {
                panic!(
                    "`fenton {args}` (NO_COLOR={no_color}) sent a control at byte {at}: {shown:?}"
                );
            }
            if no_color {
                assert!(!text.contains(&0x1b), "`fenton {args}` coloured: {shown:?}");
            }
            // The hostile text is there, made visible (doctor and the jobs table's last line
            // drop control characters).
            let visible = match args {
                "status" => "^[]52;c;",
                "jobs" => "evil^[]0;owned^G",
                _ => "]52;c;cHduZWQ=",
            };
            assert!(shown.contains(visible), "`fenton {args}`: {shown:?}");
        }
    }
    // --json keeps the true value.
    let out = test.run(["status", "--json"]).ok();
    let status: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let gpu = status["gpu"]["devices"][0]["name"].as_str().unwrap();
    assert!(gpu.contains("\u{1b}]52;c;cHduZWQ=\u{7}"), "{gpu:?}");
}

#[test]
fn a_tmux_server_started_for_a_job_keeps_the_login_umask() {
    let Some(test) = TestBox::new() else {
        return;
    };
    let out = test.run(["run", "--", "sleep", "60"]).ok();
    let id = out.stdout.trim().to_string();
    let socket = test.tmux_socket.as_str();
    let login = test.run(["exec", "--", "sh", "-c", "umask"]).ok();
    let server = test
        .run([
            "exec",
            "--",
            "tmux",
            "-L",
            socket,
            "display-message",
            "-p",
            "#{pid}",
        ])
        .ok();
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.stdout.trim())).unwrap();
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .unwrap()
        .trim();
    assert_eq!(umask, format!("{:0>4}", login.stdout.trim()));
    // fenton's own files stay private.
    let job = test.remote_dir.join("jobs").join(&id);
    let mode = std::fs::metadata(&job).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{} is {mode:o}", job.display());
    test.run(["kill", &id]).ok();
}
