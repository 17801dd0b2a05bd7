//! `fenton run`, `jobs`, `logs`, `kill` and `notify` against a real sshd and tmux, with a
//! local HTTP server playing Telegram, ntfy and a webhook: jobs end as they should, the box
//! itself tells you so (with curl, or wget where curl is missing), secrets stay off every
//! command line, jobs outlive the laptop, and `logs -f` survives the link dropping.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::http::{HttpServer, Request};
use crate::common::{installed, run, wait_until, Out, TestBox};

pub(crate) const TOKEN: &str = "123456:SECRET-bot-token-xyzzy";
pub(crate) const NTFY_TOKEN: &str = "tk_ntfy-secret-plugh";

/// The config's notification channels, all pointing at `server`.
pub(crate) fn channels(server: &HttpServer) -> String {
    format!(
        "\n[notify.telegram]\nbot_token = {TOKEN:?}\nchat_id = \"4242\"\napi_url = {:?}\n\n\
         [notify.ntfy]\nurl = {:?}\ntoken = {NTFY_TOKEN:?}\n\n\
         [notify.webhook]\nurl = {:?}\n",
        server.url(""),
        server.url("/ntfy/jobs"),
        server.url("/hook")
    )
}

pub(crate) fn with_channels(test: &TestBox, server: &HttpServer) {
    test.write_config(&(test.default_config("") + &channels(server)));
}

/// Ends every job a test left running, even when it fails: jobs live in sessions of their
/// own whose command lines need not mention the test, so TestBox's clean-up misses them.
pub(crate) struct Reaper(std::path::PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.0.join("jobs")) else {
            return;
        };
        for entry in entries.flatten() {
            // An ended job's pids may belong to someone else by now.
            if entry.path().join("exit").exists() {
                continue;
            }
            for (file, group) in [("pid", true), ("wrapper", false)] {
                if let Ok(pid) = std::fs::read_to_string(entry.path().join(file)) {
                    sigkill(&pid, group);
                }
            }
        }
    }
}

/// SIGKILL to the process (or, with `group`, the process group) that `text`, read from a
/// job's file, names; nothing unless it is a pid above 1. Through nix, never the `kill`
/// program: procps's reads `kill -KILL -17950` as the options -1 -7 -9 -5 -0, and as root
/// `-1` is every process on the machine.
pub(crate) fn sigkill(text: &str, group: bool) {
    use nix::sys::signal::{kill, killpg, Signal};
    let Ok(pid) = text.trim().parse::<i32>() else {
        return;
    };
    if pid <= 1 {
        return;
    }
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = if group {
        killpg(pid, Signal::SIGKILL)
    } else {
        kill(pid, Signal::SIGKILL)
    };
}

pub(crate) fn reaper(test: &TestBox) -> Reaper {
    Reaper(test.remote_dir.clone())
}

/// Starts a job and returns its id.
pub(crate) fn start(test: &TestBox, args: &[&str]) -> String {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    let out = test.run(&all).ok();
    let id = out.stdout.trim().to_string();
    assert!(!id.is_empty() && !id.contains('\n'), "{out:?}");
    id
}

/// `fenton logs JOB -f`: waits for the job's end and says how it ended.
pub(crate) fn follow(test: &TestBox, job: &str) -> Out {
    run(test.fenton(["logs", job, "-f"]), Duration::from_secs(60))
}

pub(crate) fn jobs_json(test: &TestBox) -> Vec<serde_json::Value> {
    let out = test.run(["jobs", "--json"]).ok();
    serde_json::from_str::<serde_json::Value>(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {out:?}"))
        .as_array()
        .unwrap()
        .clone()
}

pub(crate) fn find<'a>(jobs: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
    jobs.iter()
        .find(|j| j["id"] == id)
        .unwrap_or_else(|| panic!("no job {id} in {jobs:#?}"))
}

/// A `fenton jobs` table without its clock: each row's cells but STARTED and DURATION,
/// which move on between two listings of the same jobs. Cells are cut where the header's
/// names start.
pub(crate) fn table_without_times(table: &str) -> Vec<Vec<String>> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let names = [
        "ID",
        "SLURM",
        "NAME",
        "STATE",
        "NODE",
        "STARTED",
        "DURATION",
        "LAST LINE",
    ];
    let mut starts: Vec<(usize, &str)> = names
        .iter()
        .filter_map(|n| {
            header
                .find(&format!("{n} "))
                .or_else(|| header.rfind(n))
                .map(|i| (i, *n))
        })
        .collect();
    starts.sort();
    lines
        .map(|row| {
            let cut = |i: usize| row.char_indices().nth(i).map_or(row.len(), |(b, _)| b);
            starts
                .iter()
                .enumerate()
                .filter(|(_, (_, n))| !["STARTED", "DURATION"].contains(n))
                .map(|(k, (i, _))| {
                    let end = starts.get(k + 1).map_or(row.len(), |(j, _)| cut(*j));
                    row[cut(*i).min(end)..end].trim().to_string()
                })
                .collect()
        })
        .collect()
}

pub(crate) fn text_of(request: &Request) -> String {
    request.json()["text"].as_str().unwrap().to_string()
}

#[test]
fn jobs_end_as_they_should_and_the_box_says_so() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);
    let server = HttpServer::start();
    server.answer("/hook", 500);
    with_channels(&test, &server);

    let ok = start(
        &test,
        &[
            "--notify",
            "--name",
            "ok",
            "--",
            "sh",
            "-c",
            "echo starting; sleep 1; echo all done",
        ],
    );
    let bad = start(
        &test,
        &[
            "--notify",
            "--name",
            "bad",
            "--",
            "sh",
            "-c",
            "echo oops >&2; exit 3",
        ],
    );
    let missing = start(&test, &["--", "no-such-command-42"]);
    let killed = start(&test, &["--notify", "--name", "k", "--", "sleep", "300"]);
    let words = start(&test, &["--", "printf", "%s|", "a b", "$(id)", "it's"]);

    let out = follow(&test, &ok);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "starting\nall done\n");
    let out = follow(&test, &bad);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(3), "oops\n"),
        "{out:?}"
    );
    let out = follow(&test, &missing);
    assert_eq!(out.code, Some(127), "{out:?}");
    let out = follow(&test, &words);
    assert_eq!(
        out.stdout, "a b|$(id)|it's|",
        "words reach the job as typed"
    );

    let out = test.run(["kill", "k"]).ok();
    assert!(out.stderr.contains("killed"), "{out:?}");
    let out = follow(&test, &killed);
    assert_eq!(out.code, Some(143), "{out:?}");

    let jobs = jobs_json(&test);
    let state = |id: &str| {
        let job = find(&jobs, id);
        (
            job["state"].as_str().unwrap().to_string(),
            job["exit"].as_i64(),
        )
    };
    assert_eq!(state(&ok), ("succeeded".into(), Some(0)));
    assert_eq!(state(&bad), ("failed".into(), Some(3)));
    assert_eq!(state(&missing), ("failed".into(), Some(127)));
    assert_eq!(state(&killed), ("killed".into(), Some(143)));
    assert_eq!(find(&jobs, &missing)["name"], "no-such-command-42");
    assert_eq!(find(&jobs, &killed)["command"], "'sleep' '300'");
    assert!(find(&jobs, &ok)["last_line"] == "all done", "{jobs:#?}");
    assert!(find(&jobs, &ok)["duration_s"].as_u64().unwrap() >= 1);

    // Telegram: the bot API's sendMessage, as JSON.
    let telegram = server.wait_for("/bot", 3, Duration::from_secs(30));
    for request in &telegram {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, format!("/bot{TOKEN}/sendMessage"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.json()["chat_id"], "4242");
    }
    let message = |name: &str| {
        telegram
            .iter()
            .map(text_of)
            .find(|t| t.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no message for {name}: {telegram:#?}"))
    };
    let text = message("ok");
    assert!(text.starts_with("ok succeeded on "), "{text}");
    assert!(text.contains("exit status 0, ran "), "{text}");
    assert!(text.contains("starting\nall done"), "{text}");
    let text = message("bad");
    assert!(text.starts_with("bad failed (exit 3) on "), "{text}");
    assert!(text.contains("exit status 3"), "{text}");
    assert!(text.contains("oops"), "{text}");
    assert!(message("k").starts_with("k was killed on "));

    // ntfy: a POST of the text, with title, priority and tags as headers.
    let ntfy = server.wait_for("/ntfy/jobs", 3, Duration::from_secs(30));
    let request = ntfy
        .iter()
        .find(|r| r.header("title").is_some_and(|t| t.starts_with("bad ")))
        .unwrap_or_else(|| panic!("{ntfy:#?}"));
    assert_eq!(request.method, "POST");
    assert_eq!(request.header("priority"), Some("high"));
    assert_eq!(request.header("tags"), Some("fenton,x"));
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {NTFY_TOKEN}").as_str())
    );
    assert!(request.body.contains("exit status 3"), "{request:?}");
    assert!(request.body.contains("oops"), "{request:?}");

    // The webhook: JSON with every fact, and a 500 answer that `jobs` reports.
    let hooks = server.wait_for("/hook", 3, Duration::from_secs(30));
    let hook = hooks
        .iter()
        .map(Request::json)
        .find(|j| j["name"] == "ok")
        .unwrap();
    assert_eq!(hook["state"], "succeeded");
    assert_eq!(hook["exit"], 0);
    assert_eq!(hook["id"], ok.as_str());
    assert!(hook["duration_s"].as_u64().unwrap() >= 1, "{hook}");
    assert_eq!(hook["log_tail"], "starting\nall done");
    assert!(hooks.iter().all(|r| r.method == "POST"));

    wait_until("the notification results", Duration::from_secs(30), || {
        jobs_json(&test)
            .iter()
            .filter(|j| {
                j["notify"]["results"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty())
            })
            .count()
            == 3
    });
    let out = test.run(["jobs"]).ok();
    assert!(
        out.stderr.contains("notification webhook failed: HTTP 500"),
        "{out:?}"
    );
    assert!(out.stdout.contains("FAILED: webhook"), "{out:?}");
    let jobs = jobs_json(&test);
    let results = &find(&jobs, &ok)["notify"]["results"];
    assert!(
        results
            .as_array()
            .unwrap()
            .contains(&"telegram ok: HTTP 200".into()),
        "{results}"
    );
    assert_eq!(
        server.requests().len(),
        9,
        "one message per channel and job"
    );
}

#[test]
fn names_that_could_escape_are_refused_and_never_run() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);
    let mark = test.root.join("ran");
    let touch = format!("touch {}", mark.display());
    for name in [
        "a;b",
        "it's",
        "$(touch x)",
        "../up",
        "a/b",
        "..",
        ".",
        "-x",
        "",
    ] {
        let out = test.run(["run", &format!("--name={name}"), "--", "sh", "-c", &touch]);
        assert_eq!(out.code, Some(1), "{name}: {out:?}");
        assert!(
            out.stderr.starts_with("fenton: job name ") && out.stderr.lines().count() == 1,
            "{out:?}"
        );
    }
    assert!(!mark.exists(), "a refused job ran");
    assert!(!test.remote_dir.join("jobs").exists());

    // Other bad input: one line that says what to do.
    let out = test.run(["run", "--dir", "/no/such/dir", "--", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        "fenton: cannot enter /no/such/dir on the box: give an existing directory with --dir\n"
    );
    for args in [
        &["logs", "nope"][..],
        &["logs", "nope", "-f"],
        &["kill", "nope"],
    ] {
        let out = test.run(args);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert_eq!(
            out.stderr, "fenton: no job nope on the box (fenton jobs lists them)\n",
            "{args:?}"
        );
    }
    let out = test.run(["run", "--notify", "--", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.starts_with("fenton: --notify needs a channel"),
        "{out:?}"
    );

    // --dir: where the job runs.
    let dir = test.root.join("work dir");
    std::fs::create_dir(&dir).unwrap();
    let id = start(&test, &["--dir", dir.to_str().unwrap(), "--", "pwd"]);
    assert_eq!(follow(&test, &id).stdout, format!("{}\n", dir.display()));
    std::fs::remove_dir_all(test.remote_dir.join("jobs")).unwrap();

    // A default name comes from the command, made safe.
    let id = start(&test, &["--", "../../$(x);y", "z"]);
    follow(&test, &id);
    let jobs = jobs_json(&test);
    assert_eq!(find(&jobs, &id)["name"], "x--y");
    assert_eq!(find(&jobs, &id)["exit"], 127);
    // Nothing but the job's directory (and the listing's own .listed files).
    let dirs: Vec<_> = std::fs::read_dir(test.remote_dir.join("jobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| !name.to_string_lossy().starts_with(".listed"))
        .collect();
    assert_eq!(dirs, [id.as_str()]);
}

#[test]
fn fifty_megabytes_of_output_arrive_whole() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);
    let id = start(&test, &["--name", "big", "--", "seq", "1", "6500000"]);
    let out = follow(&test, &id);
    assert_eq!(out.code, Some(0));
    let want = std::process::Command::new("seq")
        .args(["1", "6500000"])
        .output()
        .unwrap()
        .stdout;
    assert!(want.len() > 50_000_000);
    let log = std::fs::metadata(test.remote_dir.join("jobs").join(&id).join("log")).unwrap();
    assert_eq!(log.len(), want.len() as u64, "the log file on the box");
    assert!(
        out.stdout.as_bytes() == want,
        "logs -f lost or repeated bytes"
    );
    let out = test.run(["logs", "big"]).ok();
    assert!(out.stdout.as_bytes() == want, "logs lost or repeated bytes");
    let out = test.run(["logs", "big", "-n", "2"]).ok();
    assert_eq!(out.stdout, "6499999\n6500000\n");
}

/// Collects every process command line (both sides: the box is this machine) that holds any
/// of `secrets`, until stopped.
struct Watch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    fn start(secrets: &[&str]) -> Watch {
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (halt, found) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                    let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                        continue;
                    };
                    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                    if secrets.iter().any(|s| cmdline.contains(s)) {
                        found.lock().unwrap().push(cmdline);
                    }
                }
                // Leave the other tests some of the machine's two cores.
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Watch {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        self.seen.lock().unwrap().clone()
    }
}

#[test]
fn secrets_stay_off_command_lines_and_out_of_logs() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);
    let server = HttpServer::start();
    with_channels(&test, &server);
    let watch = Watch::start(&[TOKEN, NTFY_TOKEN]);

    let out = test
        .run([
            "-vv",
            "run",
            "--notify",
            "--name",
            "s",
            "--",
            "sh",
            "-c",
            "sleep 1; echo done",
        ])
        .ok();
    let id = out.stdout.trim().to_string();
    let job = test.remote_dir.join("jobs").join(&id);
    // While it runs: the channel files are private, and tmux remembers no secret.
    let meta = std::fs::metadata(job.join("notify.d/telegram.curl")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let meta = std::fs::metadata(job.join("notify.d")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let mut tmux = std::process::Command::new("tmux");
    tmux.args(["-L", &test.tmux_socket, "list-windows", "-a", "-F"])
        .arg("#{pane_start_command} #{window_name}");
    let windows = run(tmux, Duration::from_secs(10)).ok();
    assert!(windows.stdout.contains("job.sh"), "{windows:?}");

    let tested = test.run(["-vv", "notify", "test"]).ok();
    server.wait_for("/bot", 2, Duration::from_secs(30));
    follow(&test, &id);
    wait_until(
        "the job's channel files to go",
        Duration::from_secs(30),
        || !job.join("notify.d").exists(),
    );
    let seen = watch.finish();
    assert!(seen.is_empty(), "a secret was on a command line: {seen:#?}");

    for (what, text) in [
        ("run -vv", &out.stderr),
        ("notify test -vv", &tested.stderr),
        ("notify test", &tested.stdout),
        ("tmux", &windows.stdout),
    ] {
        assert!(
            !text.contains(TOKEN) && !text.contains(NTFY_TOKEN),
            "{what} shows a secret: {text}"
        );
    }
    // The secrets go to grep in a file: on its command line, any run of this test at the same
    // time on this machine would see them.
    let patterns = test.root.join("secrets");
    std::fs::write(&patterns, format!("{TOKEN}\n{NTFY_TOKEN}\n")).unwrap();
    let out = run(
        {
            let mut grep = std::process::Command::new("grep");
            grep.args(["-rlF", "-f"])
                .arg(&patterns)
                .arg(&test.remote_dir);
            grep
        },
        Duration::from_secs(10),
    );
    assert_eq!(out.stdout, "", "files on the box still hold a secret");
}

/// The pids of this test's local ssh and fenton processes (the box's sshd, tmux and jobs
/// are left alone, although the box is this machine).
pub(crate) fn laptop_pids(test: &TestBox) -> Vec<i32> {
    TestBox::pids_mentioning(&test.root.to_string_lossy())
        .into_iter()
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            matches!(comm.trim(), "ssh" | "fenton")
        })
        .collect()
}

#[test]
fn jobs_outlive_the_laptop() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);
    let server = HttpServer::start();
    with_channels(&test, &server);
    let id = start(
        &test,
        &[
            "--notify",
            "--name",
            "long",
            "--",
            "sh",
            "-c",
            "sleep 3; echo survived",
        ],
    );
    test.run(["disconnect"]).ok();
    for pid in laptop_pids(&test) {
        let _ = nix_kill(pid);
    }
    wait_until(
        "no ssh or fenton of the test",
        Duration::from_secs(10),
        || laptop_pids(&test).is_empty(),
    );
    assert!(test
        .control_sockets()
        .iter()
        .all(|s| !s.exists() || std::os::unix::net::UnixStream::connect(s).is_err()));
    let hooks = server.wait_for("/hook", 1, Duration::from_secs(30));
    assert_eq!(hooks[0].json()["state"], "succeeded");
    assert_eq!(hooks[0].json()["log_tail"], "survived");
    let jobs = jobs_json(&test);
    assert_eq!(find(&jobs, &id)["state"], "succeeded");
}

fn nix_kill(pid: i32) -> std::io::Result<()> {
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .map(|_| ())
}

#[test]
fn following_survives_the_link_dropping() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);
    let id = start(
        &test,
        &[
            "--name",
            "count",
            "--",
            "sh",
            "-c",
            "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo \"line $i\"; sleep 0.02; done",
        ],
    );
    let follow = Follow::start(&test, "count");

    wait_until("50 lines", Duration::from_secs(30), || follow.lines() >= 50);
    // The shared connection dies under it…
    let masters: Vec<i32> = laptop_pids(&test)
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|w| w == b"-M"))
        })
        .collect();
    assert_eq!(masters.len(), 1, "one shared connection");
    nix_kill(masters[0]).unwrap();
    let before = follow.lines();
    wait_until(
        "lines after the master died",
        Duration::from_secs(30),
        || follow.lines() >= before + 30,
    );
    // …and then the box's sshd goes away and comes back.
    test.sshd.restart();
    follow.ends_with_every_line_once(300, Duration::from_secs(60));
    let _ = id;
}

/// Links to every program on this machine except `left_out`, in `dir`.
pub(crate) fn path_without(dir: &std::path::Path, left_out: &[&str]) -> String {
    for source in ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        let Ok(entries) = std::fs::read_dir(source) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if left_out.iter().any(|l| name == *l) || dir.join(&name).exists() {
                continue;
            }
            let _ = std::os::unix::fs::symlink(entry.path(), dir.join(&name));
        }
    }
    dir.to_string_lossy().into_owned()
}

#[test]
fn without_curl_or_tmux_the_box_uses_wget_and_setsid() {
    require!("wget", installed("wget"));
    let bin = tempfile::Builder::new()
        .prefix("fenton-bin")
        .tempdir()
        .unwrap();
    let path = path_without(bin.path(), &["curl", "tmux"]);
    let Some(test) = TestBox::builder().env("PATH", &path).start() else {
        return;
    };
    let _reaper = reaper(&test);
    let out = test.on_box("command -v curl; command -v tmux; command -v wget");
    assert_eq!(out.stdout, format!("{path}/wget\n"), "{out:?}");
    let server = HttpServer::start();
    server.answer("/hook", 500);
    with_channels(&test, &server);

    let out = test.run(["notify", "test"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.contains("telegram ok: sent with wget"),
        "{out:?}"
    );
    assert!(out.stdout.contains("ntfy ok: sent with wget"), "{out:?}");
    assert!(
        out.stdout.contains("webhook failed: the server answered"),
        "{out:?}"
    );
    assert!(out.stderr.contains("some channels failed"), "{out:?}");
    let telegram = server.wait_for("/bot", 1, Duration::from_secs(10));
    assert_eq!(telegram[0].path, format!("/bot{TOKEN}/sendMessage"));
    assert!(text_of(&telegram[0]).contains("this is a test message"));
    let ntfy = server.wait_for("/ntfy/jobs", 1, Duration::from_secs(10));
    assert_eq!(
        ntfy[0].header("authorization"),
        Some(format!("Bearer {NTFY_TOKEN}").as_str())
    );
    assert!(ntfy[0]
        .header("title")
        .unwrap()
        .starts_with("fenton test from "));

    let out = test
        .run([
            "run",
            "--notify",
            "--name",
            "w",
            "--",
            "sh",
            "-c",
            "echo via wget",
        ])
        .ok();
    assert!(!out.stderr.contains("tmux"), "{out:?}");
    let id = out.stdout.trim().to_string();
    assert_eq!(follow(&test, &id).stdout, "via wget\n");
    let hooks = server.wait_for("/hook", 2, Duration::from_secs(30));
    let hook = hooks
        .iter()
        .map(Request::json)
        .find(|j| j["name"] == "w")
        .unwrap();
    assert_eq!(hook["log_tail"], "via wget");
    assert_eq!(hook["state"], "succeeded");
}

#[test]
fn following_survives_the_link_going_down_for_20_seconds() {
    let Some(test) = TestBox::builder().link().start() else {
        return;
    };
    let _reaper = reaper(&test);
    let link = test.link.as_ref().unwrap();
    start(
        &test,
        &[
            "--name",
            "outage",
            "--",
            "sh",
            "-c",
            "i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo \"line $i\"; sleep 0.1; done",
        ],
    );
    let follow = Follow::start(&test, "outage");
    wait_until("20 lines", Duration::from_secs(30), || follow.lines() >= 20);

    // The outage is the fault under test: the link stays down for 20 s, whatever happens.
    link.blackhole();
    std::thread::sleep(Duration::from_secs(20));
    link.restore();

    follow.ends_with_every_line_once(400, Duration::from_secs(90));
}

/// `fenton logs JOB -f` running, its output gathered as it arrives.
pub(crate) struct Follow {
    child: std::process::Child,
    got: Arc<Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Follow {
    pub(crate) fn start(test: &TestBox, job: &str) -> Follow {
        let mut child = test
            .fenton(["logs", job, "-f"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Follow { child, got, reader }
    }

    pub(crate) fn lines(&self) -> usize {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    /// Whether `logs -f` has ended.
    pub(crate) fn ended(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// What `logs -f` printed, once it ends (within `timeout`): status, stdout, stderr.
    pub(crate) fn finish(self, timeout: Duration) -> (Option<i32>, String, String) {
        let Follow { child, got, reader } = self;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = rx
            .recv_timeout(timeout)
            .unwrap_or_else(|_| panic!("logs -f did not end within {timeout:?}"))
            .unwrap();
        reader.join().unwrap();
        let text = String::from_utf8_lossy(&got.lock().unwrap()).into_owned();
        (
            out.status.code(),
            text,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Waits for `logs -f` to end with the job (exit 0), having reconnected, and checks it
    /// printed `line 1` … `line N` each exactly once.
    pub(crate) fn ends_with_every_line_once(self, n: usize, timeout: Duration) {
        let (code, text, stderr) = self.finish(timeout);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stderr.contains("reconnecting"), "{stderr}");
        let want: String = (1..=n).map(|i| format!("line {i}\n")).collect();
        assert!(text == want, "lines lost or repeated:\n{text}\n{stderr}");
    }
}

#[test]
fn a_job_gets_the_sessions_umask_and_default_signal_handlers() {
    // In tmux, and under setsid on a box without tmux.
    let bin = tempfile::Builder::new()
        .prefix("fenton-bin")
        .tempdir()
        .unwrap();
    let no_tmux = path_without(bin.path(), &["tmux"]);
    for (how, builder) in [
        ("tmux", TestBox::builder()),
        ("setsid", TestBox::builder().env("PATH", &no_tmux)),
    ] {
        let Some(test) = builder.start() else { return };
        let _reaper = reaper(&test);
        let session_umask = test.on_box("umask").ok().stdout;
        let script = "umask; sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status";
        let started = test
            .run(["run", "--name", how, "--", "sh", "-c", script])
            .ok();
        let in_tmux = started.stderr.contains("in tmux window");
        assert_eq!(in_tmux, how == "tmux", "{how}: {}", started.stderr);
        let log = follow(&test, started.stdout.trim()).ok().stdout;
        let mut lines = log.lines();
        assert_eq!(
            lines.next(),
            Some(session_umask.trim()),
            "{how}: umask in {log:?}"
        );
        let ignored = u64::from_str_radix(lines.next().unwrap_or("?").trim(), 16)
            .unwrap_or_else(|_| panic!("{how}: no SigIgn in {log:?}"));
        // SIGINT is 2, SIGQUIT 3: bits 1 and 2.
        assert_eq!(
            ignored & 0b110,
            0,
            "{how}: the job ignores INT or QUIT: {log:?}"
        );
    }
}

/// As with `fenton exec`, the command may follow fenton's options without `--`; the words
/// after it are the command's, even those that look like fenton's options.
#[test]
fn a_command_without_the_separator_runs_as_typed() {
    let Some(test) = TestBox::new() else { return };
    let id = start(&test, &["--name", "bare", "echo", "--name", "a b"]);
    let out = follow(&test, &id).ok();
    assert_eq!(out.stdout, "--name a b\n");
    assert_eq!(find(&jobs_json(&test), &id)["name"], "bare");
}

/// `fenton logs <TAB>` and `fenton kill <TAB>` offer the box's jobs, by id and by name.
#[test]
fn job_ids_and_names_complete_after_logs_and_kill() {
    let Some(test) = TestBox::new() else { return };
    let id = start(&test, &["--name", "complete-me", "--", "true"]);
    follow(&test, &id).ok();
    let envs: Vec<(String, String)> = test
        .fenton(Vec::<&str>::new())
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
        .collect();
    for shell in ["bash", "fish"] {
        if !crate::common::available(shell, crate::common::installed(shell)) {
            continue;
        }
        let offered = crate::cli::complete(shell, "fenton logs ", &envs);
        assert!(
            offered.contains(&id) && offered.contains(&"complete-me".to_string()),
            "{shell}: {offered:?}"
        );
        assert_eq!(
            crate::cli::complete(shell, "fenton kill compl", &envs),
            ["complete-me"],
            "{shell}"
        );
    }
}

/// `fenton jobs --prune` removes finished jobs that ended before `--older-than` (30 days by
/// default), never a running one.
#[test]
fn prune_removes_old_finished_jobs_and_nothing_running() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);
    let old = start(&test, &["--name", "old", "--", "true"]);
    let recent = start(&test, &["--name", "recent", "--", "true"]);
    follow(&test, &old).ok();
    follow(&test, &recent).ok();
    let running = start(&test, &["--name", "running", "--", "sleep", "60"]);
    // The first ended 40 days ago, as its wrapper would have recorded it then.
    let jobs = test.remote_dir.join("jobs");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::fs::write(
        jobs.join(&old).join("ended"),
        format!("{}\n", now - 40 * 86400),
    )
    .unwrap();
    // And listing them first leaves the cached lines of the finished ones behind, as private
    // as the rest of a job's files.
    assert_eq!(jobs_json(&test).len(), 3);
    for kept in [jobs.join(&recent).join("listed"), jobs.join(".listed-ids")] {
        let meta = std::fs::metadata(&kept).unwrap();
        assert_eq!(meta.permissions().mode() & 0o077, 0, "{kept:?}: {meta:?}");
    }
    let ids = std::fs::read_to_string(jobs.join(".listed-ids")).unwrap();
    assert!(ids.contains(&recent) && !ids.contains(&running), "{ids}");

    let out = test.run(["jobs", "--prune"]).ok();
    assert!(
        out.stderr
            .contains("removed 1 finished job(s) that ended over 30d ago; 2 kept"),
        "{out:?}"
    );
    assert!(!jobs.join(&old).exists());
    let ids: Vec<String> = jobs_json(&test)
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [recent.clone(), running.clone()]);

    let out = test.run(["jobs", "--prune", "--older-than", "0s"]).ok();
    assert!(out.stderr.contains("removed 1 "), "{out:?}");
    let ids: Vec<String> = jobs_json(&test)
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [running]);

    let out = test.run(["jobs", "--prune", "--older-than", "soon"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("is not an age like 30d"), "{out:?}");
    let out = test.run(["jobs", "--older-than", "1d"]);
    assert_eq!(out.code, Some(2), "--older-than without --prune: {out:?}");
}

/// `fenton jobs | head -0`: a reader that went away is no news (exit 0, nothing said), and a
/// list that cannot be written (a full disk) is one line and exit 1, never a panic.
#[test]
fn the_list_of_jobs_to_a_closed_pipe_or_a_full_disk() {
    let Some(test) = TestBox::new() else { return };
    test.run(["run", "--", "true"]).ok();
    for args in [&["jobs"][..], &["jobs", "--json"]] {
        let mut child = test
            .fenton(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");

        let full = std::fs::File::options()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = test.fenton(args).stdout(full).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(
            stderr,
            "fenton: cannot write the list of jobs: No space left on device (os error 28)\n"
        );
    }
}

/// A long history: `fenton jobs` shows the 20 latest jobs and any older one still running,
/// and counts the rest; `--all`, `--last N` and `--json` say how many. Kept lines cut short
/// (a full disk when they were written) are made again, never shown half.
#[test]
fn the_list_shows_the_latest_jobs_and_every_running_one() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);
    let running = start(&test, &["--name", "long", "--", "sleep", "60"]);
    // 25 finished jobs that sort after it, as their wrappers leave them.
    let jobs = test.remote_dir.join("jobs");
    let old = |i: usize| format!("20991231-000000-{i:02}");
    for i in 1..=25 {
        let d = jobs.join(old(i));
        std::fs::create_dir(&d).unwrap();
        for (file, text) in [
            ("name", format!("old-{i}")),
            ("cmd", "true".into()),
            ("started", "4102358400".into()),
            ("ended", "4102358460".into()),
            ("exit", "0".into()),
            ("log", format!("step {i}")),
        ] {
            std::fs::write(d.join(file), format!("{text}\n")).unwrap();
        }
    }
    let ids = |out: &Out| -> Vec<String> {
        out.stdout
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    let latest: Vec<String> = std::iter::once(running.clone())
        .chain((6..=25).map(old))
        .collect();
    let first = test.run(["jobs"]).ok();
    assert_eq!(ids(&first), latest, "{first:?}");
    assert!(
        first
            .stderr
            .contains("5 older job(s) not shown: `fenton jobs --all`"),
        "{first:?}"
    );
    // The second time from the kept lines: the same table.
    let again = test.run(["jobs"]).ok();
    assert_eq!(
        table_without_times(&again.stdout),
        table_without_times(&first.stdout)
    );
    assert!(jobs.join(old(25)).join("listed").exists());

    let all = test.run(["jobs", "--all"]).ok();
    assert_eq!(ids(&all).len(), 26, "{all:?}");
    assert!(!all.stderr.contains("older"), "{all:?}");
    assert_eq!(jobs_json(&test).len(), 26);
    let three = test.run(["jobs", "--last", "3"]).ok();
    assert_eq!(ids(&three), [running.clone(), old(23), old(24), old(25)]);
    assert!(three.stderr.contains("22 older job(s)"), "{three:?}");
    let out = test.run(["jobs", "--last", "0"]);
    assert_eq!(out.code, Some(2), "{out:?}");

    // Kept lines cut short, and the one file older versions kept for all jobs.
    let kept = jobs.join(old(25)).join("listed");
    std::fs::write(&kept, format!("job {}\nname old-25\n", old(25))).unwrap();
    std::fs::write(jobs.join(".listed"), "job x\nend\n").unwrap();
    let out = test.run(["jobs", "--last", "1"]).ok();
    let row = out.stdout.lines().last().unwrap_or_default();
    assert!(
        row.starts_with(&old(25)) && row.contains("succeeded") && row.contains("step 25"),
        "{out:?}"
    );
    assert!(std::fs::read_to_string(&kept).unwrap().ends_with("end\n"));
    assert!(!jobs.join(".listed").exists());
}
