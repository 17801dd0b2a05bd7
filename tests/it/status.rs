//! `fenton status` against a real sshd, with real GPUs' recorded answers: the project's
//! `tests/bin/nvidia-smi` stands on the box's PATH and answers from the recordings in
//! `tests/fixtures/nvidia-smi/`. The JSON must carry exactly what the recordings say,
//! the other figures what the box itself says, `--watch` one channel, `--all` every box.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, wait_until, Terminal, TestBox};

const T: Duration = Duration::from_secs(20);

fn recordings() -> Vec<PathBuf> {
    let dir = Path::new(common::ROOT).join("tests/fixtures/nvidia-smi");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no recordings in {}", dir.display());
    files
}

/// A box whose PATH has the stand-in `nvidia-smi` (when `captures` is not empty), with its
/// variables set.
struct GpuBox {
    test: TestBox,
    _bin: tempfile::TempDir,
}

fn gpu_box(captures: &[&Path], vars: &[(&str, &str)]) -> Option<GpuBox> {
    let bin = tempfile::Builder::new()
        .prefix("fenton-bin")
        .tempdir()
        .unwrap();
    let mut builder = TestBox::builder();
    if !captures.is_empty() {
        std::os::unix::fs::symlink(common::nvidia_smi(), bin.path().join("nvidia-smi")).unwrap();
        let joined: Vec<String> = captures.iter().map(|p| p.display().to_string()).collect();
        builder = builder.env("NVIDIA_SMI_CAPTURE", &joined.join(":"));
    }
    builder = builder.env(
        "PATH",
        &format!("{}:/usr/local/bin:/usr/bin:/bin", bin.path().display()),
    );
    for (k, v) in vars {
        builder = builder.env(k, v);
    }
    Some(GpuBox {
        test: builder.start()?,
        _bin: bin,
    })
}

/// A box whose PATH finds `program` first as a shell script of `body`; the directory holding
/// it must live as long as the box.
fn box_with_stand_in(program: &str, body: &str) -> Option<(TestBox, tempfile::TempDir)> {
    let bin = tempfile::Builder::new()
        .prefix("fenton-bin")
        .tempdir()
        .unwrap();
    let fake = bin.path().join(program);
    std::fs::write(&fake, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.path().display());
    let test = TestBox::builder().env("PATH", &path).start()?;
    Some((test, bin))
}

fn json(test: &TestBox, args: &[&str]) -> Value {
    let out = test.run(args).ok();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:#?}"))
}

/// One CSV table of a recording (`# STATE :: TITLE…`): rows of (column name, cell).
pub(crate) fn recorded(file: &Path, state: &str, title: &str) -> Vec<Vec<(String, String)>> {
    let text = std::fs::read_to_string(file).unwrap();
    let start = format!("# {state} :: {title}");
    let mut lines = text.lines().skip_while(|l| !l.starts_with(&start));
    let body: Vec<&str> = lines
        .by_ref()
        .skip_while(|l| l.starts_with('#'))
        .take_while(|l| !l.trim().is_empty())
        .collect();
    let names: Vec<String> = body[0]
        .split(", ")
        .map(|h| h.split(" [").next().unwrap().to_string())
        .collect();
    body[1..]
        .iter()
        .map(|row| {
            names
                .iter()
                .cloned()
                .zip(row.split(", ").map(str::to_string))
                .collect()
        })
        .collect()
}

/// A recorded cell as JSON: its number (units cut), or null for `[N/A]` and the like.
pub(crate) fn value(row: &[(String, String)], name: &str) -> Value {
    let cell = &row.iter().find(|(n, _)| n == name).unwrap().1;
    if cell.starts_with('[') {
        return Value::Null;
    }
    let n: f64 = cell.split_whitespace().next().unwrap().parse().unwrap();
    serde_json::json!(n)
}

/// The GPU and its processes in `--json` equal what one recording says.
fn assert_matches(gpu: &Value, file: &Path, state: &str) {
    let rows = recorded(file, state, "query-gpu");
    let row = &rows[0];
    let what = format!("{} ({state})", file.display());
    let name = &row.iter().find(|(n, _)| n == "name").unwrap().1;
    assert_eq!(gpu["name"], name.as_str(), "{what}");
    for (json_key, column) in [
        ("utilization_percent", "utilization.gpu"),
        ("memory_utilization_percent", "utilization.memory"),
        ("memory_used_mib", "memory.used"),
        ("memory_total_mib", "memory.total"),
        ("temperature_c", "temperature.gpu"),
        ("power_draw_w", "power.draw"),
        ("power_limit_w", "power.limit"),
        ("fan_percent", "fan.speed"),
    ] {
        assert_eq!(gpu[json_key], value(row, column), "{what}: {json_key}");
    }
    let apps = recorded(file, state, "query-compute-apps");
    let procs = gpu["processes"].as_array().unwrap();
    assert_eq!(procs.len(), apps.len(), "{what}: processes");
    for (p, app) in procs.iter().zip(&apps) {
        assert_eq!(
            p["pid"],
            value(app, "pid").as_f64().unwrap() as u64,
            "{what}"
        );
        let process = &app.iter().find(|(n, _)| n == "process_name").unwrap().1;
        assert_eq!(p["name"], process.as_str(), "{what}");
        assert_eq!(
            p["memory_used_mib"],
            value(app, "used_gpu_memory"),
            "{what}"
        );
    }
}

#[test]
fn every_recording_idle_and_under_load_reaches_json_unchanged() {
    for file in recordings() {
        for state in ["idle", "load"] {
            let Some(b) = gpu_box(&[&file], &[("NVIDIA_SMI_STATE", state)]) else {
                return;
            };
            let status = json(&b.test, &["status", "--json"]);
            assert_eq!(status["gpu"]["state"], "ok", "{status:#}");
            let devices = status["gpu"]["devices"].as_array().unwrap();
            assert_eq!(devices.len(), 1);
            assert_eq!(devices[0]["index"], 0);
            assert_matches(&devices[0], &file, state);
            if file.to_string_lossy().contains("mig") {
                // MIG reports no utilisation: null, never 0.
                assert_eq!(devices[0]["utilization_percent"], Value::Null);
                assert_eq!(devices[0]["memory_utilization_percent"], Value::Null);
            }
        }
    }
}

#[test]
fn two_gpus_in_index_order_each_with_its_processes() {
    let files = recordings();
    let consumer = files
        .iter()
        .find(|f| f.to_string_lossy().contains("2080"))
        .unwrap();
    let h100 = files
        .iter()
        .find(|f| f.to_string_lossy().contains("hbm3"))
        .unwrap();
    let Some(b) = gpu_box(&[consumer, h100], &[("NVIDIA_SMI_STATE", "load")]) else {
        return;
    };
    let status = json(&b.test, &["status", "--json"]);
    let devices = status["gpu"]["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2, "{status:#}");
    assert_eq!(devices[0]["index"], 0);
    assert_eq!(devices[1]["index"], 1);
    assert_matches(&devices[0], consumer, "load");
    assert_matches(&devices[1], h100, "load");
    // A consumer card has a fan, a data-centre one does not: "–" on screen, never 0.
    assert_eq!(devices[1]["fan_percent"], Value::Null);
    let text = b.test.run(["status"]).ok().stdout;
    assert!(
        text.contains("GPU 1   100%  NVIDIA H100 80GB HBM3"),
        "{text}"
    );
    assert!(text.contains("fan –"), "{text}");
}

#[test]
fn a_failed_driver_or_no_nvidia_smi_leaves_the_rest_shown() {
    let file = &recordings()[0];
    let Some(b) = gpu_box(&[file], &[("NVIDIA_SMI_FAIL", "driver")]) else {
        return;
    };
    let status = json(&b.test, &["status", "--json"]);
    assert_eq!(status["gpu"]["state"], "failed");
    let message = status["gpu"]["message"].as_str().unwrap();
    assert!(
        message.contains("exit 9") && message.contains("NVIDIA driver"),
        "{message}"
    );
    assert!(status["memory"]["total_mib"].as_u64().unwrap() > 0);
    let text = b.test.run(["status"]).ok().stdout;
    // The driver's message is wrapped over lines, never cut.
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."),
        "{text}"
    );
    assert!(text.contains("Memory") && text.contains("Disk"), "{text}");
    drop(b);

    if common::installed("nvidia-smi") {
        eprintln!("SKIPPED the no-nvidia-smi half: this machine has a real one");
        return;
    }
    let Some(b) = gpu_box(&[], &[]) else {
        return;
    };
    let status = json(&b.test, &["status", "--json"]);
    assert_eq!(status["gpu"]["state"], "none");
    assert_eq!(status["gpu"]["devices"], serde_json::json!([]));
    let text = b.test.run(["status"]).ok().stdout;
    assert!(text.contains("no NVIDIA GPU"), "{text}");
    assert!(text.contains("Memory"), "{text}");
}

#[test]
fn cpu_memory_and_disk_agree_with_the_box() {
    let Some(test) = TestBox::new() else { return };
    let status = json(&test, &["status", "--json"]);
    let out = test
        .on_box("nproc; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo; df -Pk / | sed -n 2p")
        .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let kib = |line: &str| {
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(status["cpu"]["count"], lines[0].parse::<u64>().unwrap());
    assert_eq!(status["memory"]["total_mib"], kib(lines[1]) / 1024);
    let available = status["memory"]["available_mib"].as_u64().unwrap();
    assert!(
        available.abs_diff(kib(lines[2]) / 1024) < 512,
        "available {available} MiB, /proc/meminfo says {}",
        lines[2]
    );
    let df: Vec<u64> = lines[3]
        .split_whitespace()
        .skip(1)
        .take(3)
        .map(|n| n.parse().unwrap())
        .collect();
    let root = &status["disks"][0];
    assert_eq!(root["role"], "root");
    assert_eq!(root["total_bytes"], df[0] * 1024);
    let free = root["available_bytes"].as_u64().unwrap();
    assert!(free.abs_diff(df[2] * 1024) < 1 << 30, "{root:#} vs {df:?}");
    let roles: Vec<&str> = status["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["root", "home", "remote_dir", "mount"]);
    let cpu = status["cpu"]["utilization_percent"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&cpu), "{cpu}");
    assert!(status["cpu"]["sample_seconds"].as_f64().unwrap() > 0.0);
    assert!(status["link"]["round_trip_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(status["mount"]["mounted"], false);
}

#[test]
fn sessions_and_jobs_on_the_box_are_listed() {
    let Some(test) = TestBox::new() else { return };
    test.on_box(&format!(
        "tmux -L {} new-session -d -s 'train run' sleep 60",
        test.tmux_socket
    ))
    .ok();
    // The jobs feature's layout: a running job (pid 1 is always alive) and a finished one.
    let jobs = test.remote_dir.join("jobs");
    for (id, files) in [
        (
            "7",
            vec![("name", "train"), ("started", "1700000000"), ("pid", "1")],
        ),
        (
            "8",
            vec![
                ("name", "eval"),
                ("started", "1700000000"),
                ("pid", "999999"),
                ("ended", "1700000100"),
                ("exit", "0"),
            ],
        ),
    ] {
        std::fs::create_dir_all(jobs.join(id)).unwrap();
        for (file, text) in files {
            std::fs::write(jobs.join(id).join(file), format!("{text}\n")).unwrap();
        }
    }
    // A process whose command line mentions Jupyter (as `pip install jupyterlab` or a job's
    // arguments do) is no Jupyter server (one process, ended with the test's box).
    test.on_box(&format!(
        "nohup python3 -c 'import time; time.sleep(60)' jupyter-lab --port=8899 {} >/dev/null 2>&1 &",
        test.root.display()
    ))
    .ok();
    wait_until("the process mentioning jupyter", T, || {
        !TestBox::pids_mentioning("--port=8899").is_empty()
    });
    let status = json(&test, &["status", "--json"]);
    assert_eq!(status["tmux"][0]["name"], "train run", "{status:#}");
    assert_eq!(status["jupyter"], serde_json::json!([]), "{status:#}");
    assert_eq!(status["tmux"][0]["windows"], 1);
    assert_eq!(status["jobs"]["running"], 1);
    assert_eq!(status["jobs"]["finished"], 1);
    assert_eq!(status["jobs"]["list"][0]["name"], "train");
    let text = test.run(["status"]).ok().stdout;
    assert!(text.contains("train run (1 window)"), "{text}");
    assert!(text.contains("1 running, 1 finished · train"), "{text}");
    assert!(
        text.contains("Jupyter") && text.contains("not running"),
        "{text}"
    );
}

fn sessions_started(test: &TestBox) -> usize {
    test.sshd.log().matches("Starting session").count()
}

#[test]
fn watch_streams_frames_over_one_channel_until_ctrl_c() {
    let Some(test) = TestBox::new() else { return };
    test.run(["connect"]).ok();
    let before = sessions_started(&test);
    let mut child = test
        .fenton(["status", "--watch", "0.2", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut clocks = Vec::new();
    for _ in 0..4 {
        let line = rx.recv_timeout(T).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("no status frame within {T:?}")
        });
        let frame: Value = serde_json::from_str(&line).unwrap();
        clocks.push(frame["uptime_seconds"].as_f64().unwrap());
        assert!(frame["cpu"]["utilization_percent"].is_number(), "{frame:#}");
    }
    assert!(
        clocks.windows(2).all(|w| w[1] > w[0]),
        "frames repeat: {clocks:?}"
    );
    nix_interrupt(child.id() as i32);
    let deadline = Instant::now() + T;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("fenton status --watch did not end on Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        sessions_started(&test) - before,
        1,
        "every frame must come over one channel:\n{}",
        test.sshd.log()
    );
}

fn nix_interrupt(pid: i32) {
    let ok = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "cannot interrupt {pid}");
}

#[test]
fn watch_in_a_terminal_redraws_and_gives_the_terminal_back() {
    let Some(test) = TestBox::new() else { return };
    // A shell around fenton keeps the terminal alive after it ends, to look at its state.
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "trap : INT; \"$0\" status --watch 0.2; echo \"exit=$?\"; sleep 60",
        common::FENTON,
    ]);
    for (key, value) in test.fenton(Vec::<&str>::new()).get_envs() {
        if let Some(value) = value {
            cmd.env(key, value);
        }
    }
    let Some(term) = Terminal::start(&test, &cmd) else {
        return;
    };
    term.wait_for("Memory", T);
    wait_until("the alternate screen", T, || {
        term.display("#{alternate_on}") == "1"
    });
    assert_eq!(
        term.display("#{cursor_flag}"),
        "0",
        "the cursor hides while drawing"
    );
    let first = term.screen();
    // Lines take the terminal's 120 columns: the disks' roles are not cut at 80.
    let disks: Vec<&str> = first.lines().filter(|l| l.starts_with("Disk")).collect();
    assert!(!disks.is_empty(), "{first}");
    for line in disks {
        assert!(line.trim_end().ends_with(')'), "{line:?} in\n{first}");
    }
    wait_until("a second frame", T, || term.screen() != first);
    term.keys(&["C-c"]);
    term.wait_for("exit=130", T);
    assert_eq!(
        term.display("#{alternate_on}"),
        "0",
        "the screen is given back"
    );
    assert_eq!(term.display("#{cursor_flag}"), "1", "the cursor is back");
}

#[test]
fn all_profiles_at_once_and_an_unreachable_one_does_not_wait() {
    let Some(test) = TestBox::new() else { return };
    // A port where nothing listens.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "{}\n[profile.again]\nhost = \"fenton-sandbox\"\nssh_config = {:?}\nremote_dir = {:?}\n\n[profile.dead]\nhost = \"127.0.0.1\"\nport = {port}\nssh_config = {:?}\nconnect_timeout = 3\n",
        test.default_config(""),
        test.sshd.ssh_config(),
        test.remote_dir,
        test.sshd.ssh_config(),
    );
    test.write_config(&config);
    let out = test.run(["status", "--all", "--json"]);
    assert_eq!(
        out.code,
        Some(1),
        "an unreachable box fails the command: {out:#?}"
    );
    assert!(out.elapsed < Duration::from_secs(15), "{:?}", out.elapsed);
    let answers: Value = serde_json::from_str(&out.stdout).unwrap();
    let answers = answers.as_array().unwrap();
    let names: Vec<&str> = answers
        .iter()
        .map(|a| a["profile"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["again", "box", "dead"]);
    for a in &answers[..2] {
        assert_eq!(a["reachable"], true, "{a:#}");
        assert!(a["status"]["memory"]["total_mib"].as_u64().unwrap() > 0);
    }
    assert_eq!(answers[2]["reachable"], false);
    assert!(
        answers[2]["error"].as_str().unwrap().contains("refused"),
        "{:#}",
        answers[2]
    );

    let out = test.run(["status", "--all"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stdout.contains("[dead] unreachable: "),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.matches("Memory").count(), 2, "{}", out.stdout);
}

#[test]
fn a_hanging_nvidia_smi_is_cut_off_and_the_rest_shown() {
    let Some((test, _fake)) = box_with_stand_in("nvidia-smi", "exec sleep 120") else {
        return;
    };
    let start = Instant::now();
    let status = json(&test, &["status", "--json"]);
    assert!(
        start.elapsed() < Duration::from_secs(18),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(status["gpu"]["state"], "failed", "{status}");
    let message = status["gpu"]["message"].as_str().unwrap();
    assert!(message.contains("did not answer within 10 s"), "{message}");
    assert!(status["memory"]["total_mib"].as_u64().unwrap() > 0);
}

#[test]
fn watch_gives_up_on_a_box_that_stops_sending_frames() {
    // A box stuck for good (here: its `sleep` never returns, so the script cannot finish a
    // sample): no frame ever comes.
    let Some((test, fake)) = box_with_stand_in("sleep", "exec tail -f /dev/null \"$0\"") else {
        return;
    };
    let out = common::run(
        test.fenton(["status", "--watch", "0.5"]),
        Duration::from_secs(40),
    );
    for pid in TestBox::pids_mentioning(&fake.path().to_string_lossy()) {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("no status frame from"),
        "{}",
        out.stderr
    );
    assert!(
        out.elapsed < Duration::from_secs(30),
        "took {:?}",
        out.elapsed
    );
}

/// The stand-in's own clock: a recorded state for so many seconds, then the next, so the
/// monitor can be shown a GPU that goes idle, busy, idle.
#[test]
fn the_nvidia_smi_stand_in_plays_idle_then_load_then_idle() {
    let file = &recordings()[0];
    let utilization = |state: &str| {
        let rows = recorded(file, state, "query-gpu");
        value(&rows[0], "utilization.gpu")
    };
    assert_ne!(
        utilization("idle"),
        utilization("load"),
        "{}",
        file.display()
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (seconds_ago, state) in [(0, "idle"), (15, "load"), (25, "load"), (40, "idle")] {
        let out = Command::new(common::nvidia_smi())
            .args([
                "--query-gpu=utilization.gpu",
                "--format=csv,noheader,nounits",
            ])
            .env("NVIDIA_SMI_CAPTURE", file)
            .env("NVIDIA_SMI_STATE", "idle:10,load:20,idle")
            .env("NVIDIA_SMI_START", (now - seconds_ago).to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let shown: f64 = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(
            serde_json::json!(shown),
            utilization(state),
            "{seconds_ago} s in"
        );
    }
}

/// A test can also switch the state while the box runs, by writing a file.
#[test]
fn a_gpu_turns_busy_when_the_state_file_says_so() {
    let file = &recordings()[0];
    let state = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(state.path(), "idle\n").unwrap();
    let state_path = state.path().to_string_lossy().into_owned();
    let Some(b) = gpu_box(&[file], &[("NVIDIA_SMI_STATE_FILE", &state_path)]) else {
        return;
    };
    assert_matches(
        &json(&b.test, &["status", "--json"])["gpu"]["devices"][0],
        file,
        "idle",
    );
    std::fs::write(state.path(), "load\n").unwrap();
    assert_matches(
        &json(&b.test, &["status", "--json"])["gpu"]["devices"][0],
        file,
        "load",
    );
}
