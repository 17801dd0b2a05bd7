//! `fenton monitor` and `fenton status --history` against a real sshd, with the project's
//! nvidia-smi stand-in on the box's PATH: the recorder must keep recording with no fenton and
//! no connection on the laptop, record exactly what the GPUs (the recordings) say, keep its
//! files within the retention, and end for good on `monitor stop`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::common::http::HttpServer;
use crate::common::{self, wait_until, Terminal, TestBox};
use crate::jobs::{reaper, sigkill};
use crate::status::{recorded, value};

const T: Duration = Duration::from_secs(30);
const H100: &str = "linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt";

/// A sample as the recorder wrote it: its time and its `key=value` words.
type Sample = (i64, BTreeMap<String, String>);

struct MonitorBox {
    test: TestBox,
    state: PathBuf,
    _bin: tempfile::TempDir,
}

/// A box with one stand-in GPU whose state (`idle`, `load`) the test sets in a file, and a
/// profile recording every second, keeping `retention`.
fn monitor_box(retention: &str) -> Option<MonitorBox> {
    monitor_box_with(&format!("every = 1, retention = {retention:?}"), &[])
}

/// The same with `monitor` keys of the test's and extra environment on the box.
fn monitor_box_with(keys: &str, vars: &[(&str, &str)]) -> Option<MonitorBox> {
    monitor_box_on(&common::recording(H100), keys, vars)
}

/// The same with the GPU answering from `recording`.
fn monitor_box_on(recording: &Path, keys: &str, vars: &[(&str, &str)]) -> Option<MonitorBox> {
    let bin = tempfile::Builder::new()
        .prefix("fenton-bin")
        .tempdir()
        .unwrap();
    std::os::unix::fs::symlink(common::nvidia_smi(), bin.path().join("nvidia-smi")).unwrap();
    let state = bin.path().join("gpu-state");
    std::fs::write(&state, "idle\n").unwrap();
    let mut builder = TestBox::builder();
    for (k, v) in vars {
        builder = builder.env(k, v);
    }
    let test = builder
        .env("NVIDIA_SMI_CAPTURE", &recording.to_string_lossy())
        .env("NVIDIA_SMI_STATE_FILE", &state.to_string_lossy())
        .env(
            "PATH",
            &format!("{}:/usr/local/bin:/usr/bin:/bin", bin.path().display()),
        )
        .profile(&format!("monitor = {{ {keys} }}"))
        .start()?;
    Some(MonitorBox {
        test,
        state,
        _bin: bin,
    })
}

impl MonitorBox {
    fn dir(&self) -> PathBuf {
        self.test.remote_dir.join("monitor")
    }

    /// The record files: (name, bytes).
    fn files(&self) -> Vec<(String, u64)> {
        let Ok(entries) = std::fs::read_dir(self.dir()) else {
            return vec![];
        };
        let mut files: Vec<(String, u64)> = entries
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e))
            .filter(|(n, _)| (n.starts_with("r-") || n.starts_with("t-")) && !n.ends_with(".tmp"))
            .map(|(n, e)| (n, e.metadata().map_or(0, |m| m.len())))
            .collect();
        files.sort();
        files
    }

    /// Every sample kept, oldest first.
    fn samples(&self) -> Vec<Sample> {
        let mut all = Vec::new();
        for (name, _) in self.files() {
            let text = std::fs::read_to_string(self.dir().join(name)).unwrap_or_default();
            for line in text.lines() {
                let mut words = line.split(' ');
                let Some(Ok(t)) = words.next().map(str::parse::<i64>) else {
                    continue;
                };
                let fields = words
                    .filter_map(|w| w.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                all.push((t, fields));
            }
        }
        all.sort_by_key(|s| s.0);
        all
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir().join("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// The processes of the session `sid` (the recorder runs as a session of its own).
fn in_session(sid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            // state ppid pgrp session
            after.split_whitespace().nth(3) == Some(&sid.to_string())
        })
        .collect()
}

/// The laptop's ssh and fenton processes of this test.
fn laptop(test: &TestBox) -> Vec<i32> {
    TestBox::pids_mentioning(&test.root.to_string_lossy())
        .into_iter()
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            matches!(comm.trim(), "ssh" | "fenton")
        })
        .collect()
}

fn gpu_row(state: &str) -> Vec<(String, String)> {
    recorded(&common::recording(H100), state, "query-gpu").remove(0)
}

/// What the recorder must have written for the GPU in `state`, from the recording itself.
fn expected(state: &str) -> [(String, Value); 4] {
    let row = gpu_row(state);
    [
        ("gpu0.util", "utilization.gpu"),
        ("gpu0.mem", "memory.used"),
        ("gpu0.temp", "temperature.gpu"),
        ("gpu0.power", "power.draw"),
    ]
    .map(|(key, field)| (key.to_string(), value(&row, field)))
}

fn number(text: &str) -> Value {
    text.parse::<f64>()
        .map_or(Value::Null, |n| serde_json::json!(n))
}

/// Which recorded state a sample's GPU fields equal, if any.
fn state_of(sample: &Sample) -> Option<&'static str> {
    ["idle", "load"].into_iter().find(|state| {
        expected(state)
            .iter()
            .all(|(k, v)| sample.1.get(k).map(|s| number(s)) == Some(v.clone()))
    })
}

#[test]
fn the_recorder_outlives_the_connection_and_records_what_the_gpus_say() {
    let Some(m) = monitor_box("1h") else { return };
    let test = &m.test;
    let out = test.run(["monitor", "start"]).ok();
    assert!(out.stderr.contains("every 1 s"), "{out:?}");
    let pid = m.pid().expect("the recorder's pid file");
    let out = test.run(["monitor", "start"]).ok();
    assert!(out.stderr.contains("already runs"), "{out:?}");
    assert_eq!(m.pid(), Some(pid), "a second start found the first");
    let out = test.run(["monitor", "status"]).ok();
    assert!(out.stdout.contains("recording since"), "{out:?}");
    assert!(out.stdout.contains("keeping 1h"), "{out:?}");

    wait_until("3 idle samples", T, || {
        m.samples()
            .iter()
            .filter(|s| state_of(s) == Some("idle"))
            .count()
            >= 3
    });
    // A job while the GPU is under load, to be marked on the chart.
    std::fs::write(&m.state, "load\n").unwrap();
    let out = test
        .run(["run", "--name", "epoch", "--", "sleep", "3"])
        .ok();
    let job = out.stdout.trim().to_string();
    wait_until("3 load samples", T, || {
        m.samples()
            .iter()
            .filter(|s| state_of(s) == Some("load"))
            .count()
            >= 3
    });
    wait_until("a sample naming the running job", T, || {
        m.samples().iter().any(|s| {
            s.1.get("jobs")
                .is_some_and(|j| j.split(',').any(|j| j == job))
        })
    });

    // No connection and no fenton left on the laptop: it records on.
    test.run(["disconnect"]).ok();
    wait_until("the laptop's ssh and fenton processes to end", T, || {
        laptop(test).is_empty()
    });
    let before = m.samples().len();
    wait_until("3 samples with nothing on the laptop", T, || {
        m.samples().len() >= before + 3
    });

    // A master killed outright is no different.
    test.run(["connect"]).ok();
    let masters: Vec<i32> = laptop(test)
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|w| w == b"-M"))
        })
        .collect();
    assert_eq!(masters.len(), 1, "one shared connection");
    sigkill(&masters[0].to_string(), false);
    std::fs::write(&m.state, "idle\n").unwrap();
    let before = m.samples().len();
    wait_until("3 samples after the master was killed", T, || {
        m.samples().len() >= before + 3
    });
    assert_eq!(m.pid(), Some(pid), "the same recorder all along");

    // Every sample is the recording's idle or load row, and every second has one sample.
    let samples = m.samples();
    for s in &samples {
        assert!(state_of(s).is_some(), "not what the stand-in said: {s:?}");
        assert_eq!(s.1.get("gpu0.memtotal").map(String::as_str), Some("81559"));
        let cpu: f64 = s.1["mem"].parse().unwrap();
        assert!((0.0..=100.0).contains(&cpu), "{s:?}");
    }
    let times: Vec<i64> = samples.iter().map(|s| s.0).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");

    // --json: each one-second bucket holds exactly the sample of that second.
    let out = test.run(["status", "--history", "50s", "--json"]).ok();
    let h: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(h["step"], 1, "{h}");
    assert_eq!(h["recorder"]["state"], "running");
    let stamps: Vec<i64> = h["timestamps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    let samples = m.samples();
    let by_time: BTreeMap<i64, &Sample> = samples.iter().map(|s| (s.0, s)).collect();
    let mut matched = 0;
    for key in ["gpu0.util", "gpu0.power", "gpu0.temp", "mem", "disk.root"] {
        let series = h["series"][key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: {h}"));
        assert_eq!(series.len(), stamps.len());
        for (t, v) in stamps.iter().zip(series) {
            // The sample of the very second the box answered in may be written after.
            if *t >= h["now"].as_i64().unwrap() {
                continue;
            }
            let want = by_time.get(t).map_or(Value::Null, |s| number(&s.1[key]));
            assert_eq!(v.as_f64(), want.as_f64(), "{key} at {t}");
            matched += usize::from(!v.is_null());
        }
    }
    assert!(matched >= 5 * 10, "only {matched} values in the window");
    let jobs = h["jobs"].as_array().unwrap();
    assert!(
        jobs.iter()
            .any(|j| j["id"] == job.as_str() && j["name"] == "epoch"),
        "{h}"
    );

    // The chart: the width of its terminal, text only, the job marked.
    let out = test.run(["status", "--history", "2m"]).ok();
    for line in out.stdout.lines() {
        assert!(line.chars().count() <= 80, "wider than 80: {line:?}");
        assert!(!line.chars().any(char::is_control), "{line:?}");
    }
    for row in [
        "gpu0 util",
        "gpu0 mem",
        "gpu0 temp",
        "gpu0 power",
        "cpu",
        "memory",
        "disk root",
        "net in",
        "fenton jobs",
        "epoch",
    ] {
        assert!(out.stdout.contains(row), "no {row}:\n{}", out.stdout);
    }
    let marks = out
        .stdout
        .lines()
        .find(|l| l.starts_with("fenton jobs"))
        .unwrap();
    assert!(marks.contains('[') && marks.contains(']'), "{}", out.stdout);
    assert!(
        out.stdout.contains('█') && out.stdout.contains('▁'),
        "{}",
        out.stdout
    );
    if let Some(term) = Terminal::start(test, &test.fenton(["status", "--history", "2m"])) {
        wait_until("the chart on a terminal", T, || term.exited());
        let screen = term.screen();
        let widest = screen
            .lines()
            .map(|l| l.trim_end().chars().count())
            .max()
            .unwrap();
        assert!((100..=120).contains(&widest), "{widest} columns:\n{screen}");
    }
    let out = test.run(["status"]).ok();
    assert!(out.stdout.contains("recording since"), "{}", out.stdout);

    let page = test.root.join("history.html");
    let out = test
        .run([
            "status",
            "--history",
            "2m",
            "--html",
            &page.to_string_lossy(),
        ])
        .ok();
    assert!(out.stderr.contains("wrote"), "{out:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("<svg") && html.contains("gpu0 util") && html.contains("epoch"),
        "{html}"
    );
    assert!(
        !html.contains("src=") && !html.contains("href="),
        "fetches nothing: {html}"
    );
    // --open: a private temporary page, handed to the system's opener (a stand-in here that
    // notes what it was given and the page's mode).
    let opener_dir = test.root.join("opener");
    let tmp = test.root.join("tmp");
    std::fs::create_dir_all(&opener_dir).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let seen = test.root.join("opened");
    let opener = opener_dir.join("xdg-open");
    std::fs::write(
        &opener,
        format!(
            "#!/bin/sh\n{{ printf '%s\\n' \"$1\"; stat -c %a \"$1\"; }} > '{}'\n",
            seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = test.fenton(["status", "--history", "2m", "--open"]);
    cmd.env(
        "PATH",
        format!(
            "{}:{}",
            opener_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    )
    .env("TMPDIR", &tmp);
    let out = common::run(cmd, T).ok();
    let said = std::fs::read_to_string(&seen).unwrap_or_default();
    let (opened, mode) = said.trim().split_once('\n').unwrap_or(("", ""));
    assert!(
        opened.starts_with(&tmp.to_string_lossy().into_owned()) && opened.ends_with(".html"),
        "{said:?} {out:?}"
    );
    assert_eq!(mode, "600", "{said:?}");
    assert!(
        out.stderr
            .contains(&format!("wrote {opened} and opened it")),
        "{out:?}"
    );
    let page = std::fs::read_to_string(opened).unwrap();
    assert!(page.contains("<svg") && page.contains("epoch"), "{page}");
    // Without an opener the page is still written, and the error says where it is.
    let mut cmd = test.fenton(["status", "--history", "2m", "--open"]);
    cmd.env("PATH", "/nonexistent").env("TMPDIR", &tmp);
    let out = common::run(cmd, T);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("could not open it: there is no xdg-open here"),
        "{out:?}"
    );

    let out = test.run(["doctor", "--json"]);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "box.monitor")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(check["status"], "ok", "{check}");
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .contains("the recorder runs since"),
        "{check}"
    );

    // Stop ends it: no process of its session is left, and the samples stop.
    let out = test.run(["monitor", "stop"]).ok();
    assert!(out.stderr.contains("stopped the recorder"), "{out:?}");
    wait_until("the recorder's processes to end", T, || {
        in_session(pid).is_empty()
    });
    assert_eq!(m.pid(), None);
    let out = test.run(["monitor", "status"]).ok();
    assert!(out.stdout.contains("not recording"), "{out:?}");
    let out = test.run(["monitor", "stop"]).ok();
    assert!(out.stderr.contains("does not run"), "{out:?}");
}

/// The means of `made` (time, cpu, util) in each bucket of `h` that ends by `until`, against
/// what the box answered; how many were compared.
fn compare_buckets(h: &Value, made: &[(i64, Option<f64>, f64)], until: i64) -> usize {
    let step = h["step"].as_i64().unwrap();
    let mut compared = 0;
    for (i, end) in h["timestamps"].as_array().unwrap().iter().enumerate() {
        let end = end.as_i64().unwrap();
        if end > until {
            break;
        }
        let inside: Vec<_> = made
            .iter()
            .filter(|s| s.0 > end - step && s.0 <= end)
            .collect();
        let mean = |values: Vec<f64>| {
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        };
        let want_cpu = mean(inside.iter().filter_map(|s| s.1).collect());
        let want_util = mean(inside.iter().map(|s| s.2).collect());
        for (key, want) in [("cpu", want_cpu), ("gpu0.util", want_util)] {
            let got = h["series"][key][i].as_f64();
            match (got, want) {
                (Some(got), Some(want)) => {
                    assert!(
                        (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                        "{key} in the bucket ending {end}: {got}, the samples' mean {want}"
                    );
                    compared += 1;
                }
                (got, want) => assert_eq!(got, want, "{key} in the bucket ending {end}: {h}"),
            }
        }
    }
    compared
}

#[test]
fn hours_of_history_are_read_from_running_sums() {
    let Some(m) = monitor_box("7d") else { return };
    let test = &m.test;
    // Finished hours recorded every 10 s before the recorder starts, as a recorder of before
    // (or one stopped meanwhile) left them: twelve up to now, three more a day before (past a
    // seventh of the retention, so thinned), nothing between. cpu has a gap in every seventh
    // sample.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let hour = now - now % 3600;
    let mut made: Vec<(i64, Option<f64>, f64)> = Vec::new();
    std::fs::create_dir_all(m.dir()).unwrap();
    let hours: Vec<i64> = (1..=12).chain(26..=28).collect();
    for &h in &hours {
        let start = hour - h * 3600;
        let mut text = String::new();
        for t in (start + 5..start + 3600).step_by(10) {
            let cpu = (t % 7 != 0).then(|| (t % 97) as f64 / 2.0);
            let util = ((t / 600) % 101) as f64;
            let cpu_text = cpu.map(|c| c.to_string()).unwrap_or_default();
            text.push_str(&format!("{t} cpu={cpu_text} gpu0.util={util} jobs=\n"));
            made.push((t, cpu, util));
        }
        std::fs::write(m.dir().join(format!("r-{start}")), text).unwrap();
    }
    // Summaries in the format of before (means per minute and ten minutes), wrong on purpose:
    // they go, and the samples are summed up again.
    let old = hour - 3600;
    std::fs::write(
        m.dir().join(format!("m-{old}")),
        format!("{} n=6 cpu=1000000 gpu0.util=1000000\n", old + 60),
    )
    .unwrap();
    std::fs::write(
        m.dir().join(format!("d-{old}")),
        format!("{} n=60 cpu=1000000 gpu0.util=1000000\n", old + 600),
    )
    .unwrap();
    test.run(["monitor", "start"]).ok();
    let summed = |h: &i64| m.dir().join(format!("b-{}", hour - h * 3600)).exists();
    wait_until("the recorder to sum up the fifteen hours", T, || {
        hours.iter().all(summed)
    });
    for &h in &hours[12..] {
        let start = hour - h * 3600;
        assert!(m.dir().join(format!("t-{start}")).exists(), "hour -{h}");
        assert!(!m.dir().join(format!("c-{start}")).exists(), "hour -{h}");
    }
    assert!(!m.dir().join(format!("m-{old}")).exists());
    assert!(!m.dir().join(format!("d-{old}")).exists());
    // A sample added to a summed-up file afterwards is not read: the sums are.
    let first = m.dir().join(format!("r-{}", hour - 12 * 3600));
    let mut text = std::fs::read_to_string(&first).unwrap();
    text.push_str(&format!(
        "{} cpu=1000000 gpu0.util=1000000\n",
        hour - 12 * 3600 + 3599
    ));
    std::fs::write(&first, text).unwrap();

    // Over 12 h, buckets of whole minutes from the sums per minute; over 4 days, of whole ten
    // minutes from the sums per ten minutes, which the thinned hours kept: both the means of
    // every sample, and nothing where nothing was recorded. The current hour also holds the
    // recorder's own samples.
    let out = test.run(["status", "--history", "12h", "--json"]).ok();
    let h: Value = serde_json::from_str(&out.stdout).unwrap();
    let (from, step) = (h["from"].as_i64().unwrap(), h["step"].as_i64().unwrap());
    assert!(step >= 600 && step % 60 == 0 && from % 60 == 0, "{h}");
    assert!(step % 600 != 0, "{h}");
    assert!(compare_buckets(&h, &made, hour) >= 2 * 40, "{h}");
    let out = test.run(["status", "--history", "4d", "--json"]).ok();
    let h: Value = serde_json::from_str(&out.stdout).unwrap();
    let (from, step) = (h["from"].as_i64().unwrap(), h["step"].as_i64().unwrap());
    assert!(step >= 6000 && step % 600 == 0 && from % 600 == 0, "{h}");
    assert!(compare_buckets(&h, &made, hour) >= 2 * 5, "{h}");
    let gaps = h["series"]["cpu"]
        .as_array()
        .unwrap()
        .iter()
        .zip(h["timestamps"].as_array().unwrap())
        .filter(|(v, t)| v.is_null() && t.as_i64().unwrap() > hour - 25 * 3600)
        .count();
    assert!(gaps >= 3, "{h}");
}

#[test]
fn retention_bounds_the_files() {
    let Some(m) = monitor_box("20s") else { return };
    let test = &m.test;
    test.run(["monitor", "start"]).ok();
    let pid = m.pid().unwrap();
    // 20 s kept in spans of 2 s, thinned after 2 s: after 35 s of recording, the first 15 s
    // are gone.
    let since = m.samples().first().map(|s| s.0);
    wait_until("35 s of recording", Duration::from_secs(60), || {
        let s = m.samples();
        match (since, s.last()) {
            (Some(first), Some(last)) => last.0 - first >= 35,
            _ => false,
        }
    });
    let files = m.files();
    assert!(files.len() <= 12, "{} files: {files:?}", files.len());
    assert!(files.iter().any(|(n, _)| n.starts_with("t-")), "{files:?}");
    let samples = m.samples();
    let (oldest, newest) = (samples[0].0, samples.last().unwrap().0);
    assert!(newest - oldest <= 20 + 2 * 2, "kept {oldest}..{newest}");
    // Thinned: far fewer samples than seconds kept.
    assert!(
        samples.len() < (newest - oldest) as usize,
        "{} samples",
        samples.len()
    );
    let bytes: u64 = files.iter().map(|f| f.1).sum();
    assert!(bytes < 20_000, "{bytes} bytes");
    // A file's sums per minute go with it when it is thinned, those per ten minutes when it
    // is removed.
    for entry in std::fs::read_dir(m.dir()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            continue;
        }
        let kept = |prefixes: &[&str], start: &str| {
            prefixes
                .iter()
                .any(|p| files.iter().any(|(n, _)| *n == format!("{p}{start}")))
        };
        if let Some(start) = name.strip_prefix("c-") {
            assert!(kept(&["r-"], start), "{name} without r-{start}: {files:?}");
        }
        if let Some(start) = name.strip_prefix("b-") {
            assert!(
                kept(&["r-", "t-"], start),
                "{name} without its file: {files:?}"
            );
        }
    }
    let out = test.run(["monitor", "status", "--json"]).ok();
    let r: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(r["state"], "running");
    assert_eq!(r["retention_s"], 20);
    assert!(r["bytes"].as_u64().unwrap() > 0, "{r}");
    test.run(["monitor", "stop"]).ok();
    wait_until("the recorder's processes to end", T, || {
        in_session(pid).is_empty()
    });
}

/// Bad settings are refused before anything reaches the box.
#[test]
fn bad_monitor_settings_are_one_line_errors() {
    let Some(test) = TestBox::builder()
        .profile("monitor = { retention = \"7 days\" }")
        .start()
    else {
        return;
    };
    let out = test.run(["monitor", "start"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("monitor.retention"), "{out:?}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out:?}");
    test.write_config(&test.default_config(""));
    let out = test.run(["status", "--history", "soon"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("not a duration"), "{out:?}");
    let out = test.run(["monitor", "start", "--every", "0"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(!Path::new(&test.remote_dir.join("monitor")).exists());
}

/// `monitor.auto`: the first status starts the recorder; one killed behind fenton's back (as
/// a reboot would) is reported, and started again by the next command (`connect`, `run`).
#[test]
fn auto_starts_the_recorder_and_notices_when_it_is_gone() {
    let Some(m) = monitor_box("1h") else { return };
    let test = &m.test;
    let mut config = std::fs::read_to_string(&test.config).unwrap();
    config = config.replace("monitor = {", "monitor = { auto = true,");
    test.write_config(&config);
    let out = test.run(["status"]).ok();
    assert!(out.stderr.contains("started the recorder"), "{out:?}");
    assert!(out.stdout.contains("recording since"), "{}", out.stdout);
    let pid = m.pid().unwrap();
    let out = test.run(["status"]).ok();
    assert!(!out.stderr.contains("started"), "{out:?}");
    // Killed outright: its pid file stays, its process does not.
    sigkill(&pid.to_string(), true);
    wait_until("the killed recorder to end", T, || {
        in_session(pid).is_empty()
    });
    let out = test.run(["monitor", "status"]).ok();
    assert!(
        out.stdout.contains("ended without `fenton monitor stop`"),
        "{out:?}"
    );
    let out = test.run(["connect"]).ok();
    assert!(out.stderr.contains("started the recorder"), "{out:?}");
    let first_again = m.pid().unwrap();
    assert_ne!(first_again, pid);
    // Starting a job is a first use too, and the job starts as well.
    sigkill(&first_again.to_string(), true);
    wait_until("the killed recorder to end", T, || {
        in_session(first_again).is_empty()
    });
    let _reaper = reaper(test);
    let out = test
        .run(["run", "--name", "with-recorder", "--", "true"])
        .ok();
    assert!(out.stderr.contains("started the recorder"), "{out:?}");
    assert!(out.stderr.contains("(with-recorder) started"), "{out:?}");
    let again = m.pid().unwrap();
    assert_ne!(again, first_again);
    let out = test.run(["run", "--", "true"]).ok();
    assert!(!out.stderr.contains("recorder"), "{out:?}");
    // Without auto, status says it is gone and leaves it so.
    test.write_config(&config.replace("auto = true,", ""));
    sigkill(&again.to_string(), true);
    wait_until("the killed recorder to end", T, || {
        in_session(again).is_empty()
    });
    let out = test.run(["status", "--json"]).ok();
    let s: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(s["monitor"]["running"], false, "{s}");
    let out = test.run(["status"]).ok();
    assert!(out.stdout.contains("not recording"), "{}", out.stdout);
    let out = test.run(["monitor", "stop"]).ok();
    assert!(out.stderr.contains("does not run"), "{out:?}");
    let out = test.run(["status", "--json"]).ok();
    let s: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(s["monitor"], Value::Null, "{s}");
}

/// The alerts come from the box while no fenton runs on the laptop: an idle GPU under a
/// running job (once, however long it stays idle, then "recovered"), the kernel's OOM
/// killer (naming the job it ended), a hot GPU and a full disk (thresholds set low enough for this box). A real OOM kill would take the test machine down with it, so the box's
/// `FENTON_VMSTAT` points the recorder at a stand-in for /proc/vmstat whose `oom_kill`
/// counter the test raises.
#[test]
fn the_box_alerts_with_nothing_running_on_the_laptop() {
    let vmstat_dir = tempfile::tempdir().unwrap();
    let vmstat = vmstat_dir.path().join("vmstat");
    std::fs::write(&vmstat, "nr_free_pages 1000\noom_kill 0\n").unwrap();
    let Some(m) = monitor_box_with(
        "every = 1, gpu_idle_after = \"2s\", gpu_temp_c = 40, disk_percent = 1, alerts = [\"gpu_idle\", \"oom\", \"gpu_temp\", \"disk\"]",
        &[("FENTON_VMSTAT", &vmstat.to_string_lossy())],
    ) else {
        return;
    };
    let test = &m.test;
    let _reaper = reaper(test);
    let server = HttpServer::start();
    let config = std::fs::read_to_string(&test.config).unwrap();
    test.write_config(&format!(
        "{config}\n[notify.webhook]\nurl = {:?}\n",
        server.url("/hook")
    ));
    let out = test
        .run(["run", "--name", "train", "--", "sleep", "120"])
        .ok();
    let job = out.stdout.trim().to_string();
    test.run(["monitor", "start"]).ok();
    test.run(["disconnect"]).ok();
    wait_until("the laptop's ssh and fenton processes to end", T, || {
        laptop(test).is_empty()
    });
    let alerts = |key: &str, state: &str| -> Vec<Value> {
        server
            .requests()
            .iter()
            .map(|r| r.json())
            .filter(|j| j["alert"] == key && j["state"] == state)
            .collect()
    };

    wait_until("an idle-GPU alert", T, || {
        !alerts("gpu_idle.0", "alert").is_empty()
    });
    let alert = &alerts("gpu_idle.0", "alert")[0];
    let text = alert["text"].as_str().unwrap();
    assert!(
        text.contains("GPU 0 idle") && text.contains(&job),
        "{alert}"
    );
    assert!(
        alert["host"].as_str().is_some_and(|h| !h.is_empty()),
        "{alert}"
    );
    // Still idle for 4 more samples: no second message within the hour.
    let before = m.samples().len();
    wait_until("4 more idle samples", T, || m.samples().len() >= before + 4);
    assert_eq!(
        alerts("gpu_idle.0", "alert").len(),
        1,
        "{:#?}",
        server.requests()
    );
    std::fs::write(&m.state, "load\n").unwrap();
    wait_until("the idle GPU's recovery", T, || {
        !alerts("gpu_idle.0", "recovered").is_empty()
    });

    // The OOM killer ends the job: its process group killed outright, the counter raised.
    let group =
        std::fs::read_to_string(test.remote_dir.join("jobs").join(&job).join("pid")).unwrap();
    sigkill(group.trim(), true);
    std::fs::write(&vmstat, "nr_free_pages 1000\noom_kill 2\n").unwrap();
    wait_until("an OOM alert", T, || !alerts("oom", "alert").is_empty());
    let oom = &alerts("oom", "alert")[0];
    let text = oom["text"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "killed fenton job {job} (train) for memory (2 OOM kill(s))"
        )) && text.contains(&format!("fenton logs {job}")),
        "{oom}"
    );
    assert!(
        laptop(test).is_empty(),
        "fenton ran on the laptop meanwhile"
    );
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(m.dir().join("notify.d")), 0o700);
    assert_eq!(mode(m.dir().join("notify.d/webhook.curl")), 0o600);
    let pid = m.pid().unwrap();
    test.run(["monitor", "stop"]).ok();
    wait_until("the recorder's processes to end", T, || {
        in_session(pid).is_empty()
    });
    assert!(
        !m.dir().join("notify.d").exists(),
        "the channels' tokens stayed on the box after stop"
    );
    assert_eq!(alerts("gpu_idle.0", "alert").len(), 1);
    assert_eq!(alerts("gpu_idle.0", "recovered").len(), 1);
    assert_eq!(alerts("oom", "alert").len(), 1);
    // The recording's GPU runs at 41 °C idle and more under load, the test's disk is above
    // 1 %: each said once, as both held throughout.
    let hot = alerts("gpu_temp.0", "alert");
    assert_eq!(hot.len(), 1, "{:#?}", server.requests());
    assert!(
        hot[0]["text"].as_str().unwrap().contains("limit 40"),
        "{}",
        hot[0]
    );
    let full = alerts("disk.root", "alert");
    assert_eq!(full.len(), 1, "{:#?}", server.requests());
    assert!(
        full[0]["text"].as_str().unwrap().contains("% full"),
        "{}",
        full[0]
    );
}

/// The GPUs' compute processes go into the samples with their user and, for a fenton job's,
/// the job's id, and `--history` lists them. The recording's first process (pid 11327) is
/// made the job's, as a training run's would be.
#[test]
fn gpu_processes_are_recorded_with_their_fenton_job() {
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("h100.txt");
    let original = std::fs::read_to_string(common::recording(H100)).unwrap();
    std::fs::write(&recording, &original).unwrap();
    let Some(m) = monitor_box_on(&recording, "every = 1, retention = \"1h\"", &[]) else {
        return;
    };
    let test = &m.test;
    let _reaper = reaper(test);
    std::fs::write(&m.state, "load\n").unwrap();
    let job = test
        .run(["run", "--name", "train", "--", "sleep", "60"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let pid = std::fs::read_to_string(test.remote_dir.join("jobs").join(&job).join("pid"))
        .unwrap()
        .trim()
        .to_string();
    let swapped = dir.path().join("swapped.txt");
    std::fs::write(&swapped, original.replace("11327", &pid)).unwrap();
    std::fs::rename(&swapped, &recording).unwrap();
    test.run(["monitor", "start"]).ok();
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    let ours = format!("0/{pid}/{user}/2566/{job}");
    wait_until("3 samples with the job's GPU process", T, || {
        m.samples()
            .iter()
            .filter(|s| {
                s.1.get("procs")
                    .is_some_and(|p| p.split(',').any(|p| p == ours))
            })
            .count()
            >= 3
    });
    // The recording's other processes are no job's.
    let last = m.samples().pop().unwrap();
    let procs: Vec<&str> = last.1["procs"].split(',').collect();
    assert_eq!(procs.len(), 3, "{procs:?}");
    for other in ["11328", "11345"] {
        let p = procs
            .iter()
            .find(|p| p.split('/').nth(1) == Some(other))
            .unwrap_or_else(|| panic!("{procs:?}"));
        assert!(p.ends_with('/'), "{p}");
    }

    let out = test.run(["status", "--history", "1m", "--json"]).ok();
    let h: Value = serde_json::from_str(&out.stdout).unwrap();
    let found = h["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"].as_u64().map(|n| n.to_string()) == Some(pid.clone()))
        .unwrap_or_else(|| panic!("{h}"))
        .clone();
    assert_eq!(found["gpu"], 0);
    assert_eq!(found["user"], user.as_str());
    assert_eq!(found["peak_mib"], 2566.0);
    assert_eq!(found["job"], job.as_str());
    let out = test.run(["status", "--history", "1m"]).ok();
    assert!(
        out.stdout.contains(&format!(
            "gpu0 pid {pid} {user}, up to 2566 MiB, fenton job {job} (train)"
        )),
        "{}",
        out.stdout
    );
    // Idle, the GPU holds no memory: no second nvidia-smi, no processes.
    std::fs::write(&m.state, "idle\n").unwrap();
    let before = m.samples().len();
    wait_until("2 idle samples", T, || m.samples().len() >= before + 2);
    assert!(!m.samples().last().unwrap().1.contains_key("procs"));
    let rpid = m.pid().unwrap();
    test.run(["monitor", "stop"]).ok();
    wait_until("the recorder's processes to end", T, || {
        in_session(rpid).is_empty()
    });
}
