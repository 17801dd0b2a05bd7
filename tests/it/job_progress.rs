//! A job's progress on the phone, sent by the box while the job runs: `--notify-every` (on
//! Telegram one message edited in place), `--notify-on` matches, `--stall`, `--notify-min`,
//! and the end message that says how the job ended; against a real sshd and the local HTTP
//! stand-in, with the box's processes watched for the bot token.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::http::{HttpServer, Request};
use crate::common::{installed, wait_until, TestBox};
use crate::job_faults::Tmpfs;
use crate::jobs::{
    channels, find, follow, jobs_json, path_without, reaper, start, text_of, with_channels, TOKEN,
};

/// The webhook events that arrived, in order, as JSON.
fn hooks(server: &HttpServer) -> Vec<serde_json::Value> {
    server
        .requests()
        .iter()
        .filter(|r| r.path == "/hook")
        .map(Request::json)
        .collect()
}

fn events(server: &HttpServer) -> Vec<String> {
    hooks(server)
        .iter()
        .map(|h| h["event"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Waits until the job's wrapper and its watcher are gone (both run `sh …/ID/job.sh run`),
/// after which nothing more can be sent for it.
fn wait_for_the_wrapper(id: &str) {
    let needle = format!("/{id}/job.sh");
    wait_until(
        "the job's wrapper and watcher to end",
        Duration::from_secs(60),
        || TestBox::pids_mentioning(&needle).is_empty(),
    );
}

/// Reads every process's command line and environment until stopped; keeps the ones that
/// hold a secret.
struct Watch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
    rounds: Arc<Mutex<usize>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    fn start(secret: &str) -> Watch {
        let secret = secret.as_bytes().to_vec();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rounds = Arc::new(Mutex::new(0));
        let (halt, found, count) = (stop.clone(), seen.clone(), rounds.clone());
        let thread = std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                    for file in ["cmdline", "environ"] {
                        let Ok(data) = std::fs::read(entry.path().join(file)) else {
                            continue;
                        };
                        if data.windows(secret.len()).any(|w| w == secret) {
                            found.lock().unwrap().push(format!(
                                "{}/{file}: {}",
                                entry.path().display(),
                                String::from_utf8_lossy(&data).replace('\0', " ")
                            ));
                        }
                    }
                }
                *count.lock().unwrap() += 1;
                // Leave the other tests some of the machine's cores.
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Watch {
            stop,
            seen,
            rounds,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        let rounds = *self.rounds.lock().unwrap();
        (self.seen.lock().unwrap().clone(), rounds)
    }
}

#[test]
fn progress_edits_one_telegram_message_and_stops_at_the_end() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);
    let server = HttpServer::start();
    with_channels(&test, &server);
    let watch = Watch::start(TOKEN);

    let id = start(
        &test,
        &[
            "--notify-every",
            "2s",
            "--name",
            "train",
            "--",
            "sh",
            "-c",
            "i=1; while [ $i -le 9 ]; do echo step $i; i=$((i + 1)); sleep 1; done",
        ],
    );
    // While it runs, `fenton jobs` says what it sends and what went last.
    server.wait_for("/hook", 2, Duration::from_secs(60));
    let jobs = jobs_json(&test);
    let job = find(&jobs, &id);
    assert_eq!(job["notify"]["what"], "end, every 2s", "{job:#}");
    assert_eq!(job["notify"]["last"]["event"], "progress", "{job:#}");
    let table = test.run(["jobs"]).ok();
    assert!(
        table.stdout.contains("end, every 2s: progress "),
        "{table:?}"
    );

    let out = follow(&test, &id);
    assert_eq!(out.code, Some(0), "{out:?}");
    server.wait_for("/hook", 3, Duration::from_secs(60));
    wait_until("the end message", Duration::from_secs(60), || {
        events(&server).contains(&"end".to_string())
    });
    wait_for_the_wrapper(&id);
    let (seen, rounds) = watch.finish();
    assert!(seen.is_empty(), "the bot token was visible: {seen:#?}");
    assert!(rounds >= 10, "the /proc watch ran only {rounds} times");

    // Telegram: one sendMessage for the card, edits of that message, one sendMessage at the end.
    let telegram: Vec<Request> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/bot"))
        .collect();
    let kinds: Vec<&str> = telegram
        .iter()
        .map(|r| r.path.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"sendMessage"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"sendMessage"), "{kinds:?}");
    let middle = &kinds[1..kinds.len() - 1];
    assert!(
        !middle.is_empty() && middle.iter().all(|k| *k == "editMessageText"),
        "{kinds:?}"
    );
    assert!(text_of(&telegram[0]).starts_with("train running on "));
    for edit in &telegram[1..telegram.len() - 1] {
        assert_eq!(edit.path, format!("/bot{TOKEN}/editMessageText"));
        let body = edit.json();
        assert_eq!(body["message_id"], 1000, "{body}");
        assert_eq!(body["chat_id"], "4242", "{body}");
        assert!(text_of(edit).contains("last lines of the log:\n"), "{body}");
    }
    let end = text_of(telegram.last().unwrap());
    assert!(end.starts_with("train succeeded on "), "{end}");
    assert!(end.contains("step 9"), "{end}");

    // ntfy: one low-priority post per update, then the end.
    let ntfy: Vec<Request> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/ntfy/jobs")
        .collect();
    assert!(ntfy.len() >= 3, "{ntfy:#?}");
    let (last, updates) = ntfy.split_last().unwrap();
    for update in updates {
        assert_eq!(update.header("priority"), Some("low"), "{update:?}");
        assert!(update.body.contains("step "), "{update:?}");
    }
    assert_eq!(last.header("tags"), Some("fenton,white_check_mark"));

    // The webhook: progress events, then one end, and nothing after it.
    let events = events(&server);
    assert_eq!(events.last().map(String::as_str), Some("end"), "{events:?}");
    assert_eq!(events.iter().filter(|e| *e == "end").count(), 1);
    assert!(
        events[..events.len() - 1].iter().all(|e| e == "progress"),
        "{events:?}"
    );
    let hook = &hooks(&server)[0];
    assert_eq!(hook["state"], "running");
    assert_eq!(hook["id"], id.as_str());
    assert!(
        hook["log_tail"].as_str().unwrap().contains("step "),
        "{hook}"
    );
    // Roughly one per 2 s of a 9 s job, each channel alike.
    let progress = events.len() - 1;
    assert!((2..=6).contains(&progress), "{events:?}");
    assert_eq!(ntfy.len(), events.len());
    assert_eq!(telegram.len(), events.len());

    // The watcher added nothing to the log.
    let log = std::fs::read_to_string(test.remote_dir.join("jobs").join(&id).join("log")).unwrap();
    let expected: String = (1..=9).map(|i| format!("step {i}\n")).collect();
    assert_eq!(log, expected);
    let jobs = jobs_json(&test);
    assert_eq!(find(&jobs, &id)["notify"]["last"]["event"], "end");
}

#[test]
fn matching_lines_arrive_rate_limited_and_a_failure_shows_its_traceback() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);
    let server = HttpServer::start();
    with_channels(&test, &server);

    let script = "echo epoch 1; sleep 2; echo epoch 2; echo epoch 3; echo loss 0.5; \
        echo 'Traceback (most recent call last):'; echo '  File \"train.py\", line 3'; \
        echo 'ValueError: bad shape'; sleep 2; echo cleaning up; exit 1";
    let id = start(
        &test,
        &[
            "--notify-on",
            "epoch [0-9]+",
            "--notify-on",
            "Traceback",
            "--name",
            "m",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    let out = follow(&test, &id);
    assert_eq!(out.code, Some(1), "{out:?}");
    wait_until("the end message", Duration::from_secs(60), || {
        events(&server).contains(&"end".to_string())
    });
    wait_for_the_wrapper(&id);

    let hooks = hooks(&server);
    let matches: Vec<(String, String)> = hooks
        .iter()
        .filter(|h| h["event"] == "match")
        .map(|h| {
            (
                h["pattern"].as_str().unwrap().to_string(),
                h["line"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // epoch 1 at once; epoch 2 and 3 came within its minute: the latest is sent when the job
    // ends, epoch 2 never.
    assert_eq!(
        matches,
        [
            ("epoch [0-9]+".to_string(), "epoch 1".to_string()),
            (
                "Traceback".to_string(),
                "Traceback (most recent call last):".to_string()
            ),
            ("epoch [0-9]+".to_string(), "epoch 3".to_string()),
        ],
        "{hooks:#?}"
    );
    let end = hooks.last().unwrap();
    assert_eq!(end["event"], "end");
    assert_eq!(end["state"], "failed");
    let text = end["text"].as_str().unwrap();
    assert!(text.starts_with("m failed (exit 1) on "), "{text}");
    // The lines around the first Traceback, not only the plain tail.
    assert!(
        text.contains("around the first error in the log:\nepoch 3\nloss 0.5\nTraceback (most recent call last):\n  File \"train.py\", line 3\nValueError: bad shape\ncleaning up"),
        "{text}"
    );
    // Telegram got each match as a message of its own.
    let telegram: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/bot"))
        .map(text_of)
        .collect();
    assert_eq!(telegram.len(), 4, "{telegram:#?}");
    assert!(
        telegram[0].contains("matches epoch [0-9]+:\nepoch 1"),
        "{telegram:#?}"
    );
}

#[test]
fn a_silent_job_is_reported_stalled_once_and_running_again_once() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);
    let server = HttpServer::start();
    with_channels(&test, &server);

    let id = start(
        &test,
        &[
            "--stall",
            "2s",
            "--name",
            "quiet",
            "--",
            "sh",
            "-c",
            "echo loading; sleep 7; echo training; sleep 2; echo done",
        ],
    );
    let out = follow(&test, &id);
    assert_eq!(out.code, Some(0), "{out:?}");
    wait_until("the end message", Duration::from_secs(60), || {
        events(&server).contains(&"end".to_string())
    });
    wait_for_the_wrapper(&id);

    let hooks = hooks(&server);
    let stalls: Vec<&serde_json::Value> = hooks.iter().filter(|h| h["event"] == "stall").collect();
    assert_eq!(stalls.len(), 2, "{hooks:#?}");
    assert_eq!(stalls[0]["stalled"], true);
    assert!(
        stalls[0]["title"]
            .as_str()
            .unwrap()
            .starts_with("quiet on "),
        "{hooks:#?}"
    );
    assert!(stalls[0]["text"]
        .as_str()
        .unwrap()
        .contains("has printed nothing for "));
    assert_eq!(stalls[1]["stalled"], false);
    assert!(stalls[1]["text"]
        .as_str()
        .unwrap()
        .contains("is printing again"));
    assert_eq!(
        events(&server),
        ["stall", "stall", "end"],
        "one stall, one running again, the end"
    );
    let ntfy: Vec<Request> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/ntfy/jobs")
        .collect();
    assert_eq!(ntfy[0].header("tags"), Some("fenton,warning"));
    assert_eq!(ntfy[1].header("tags"), Some("fenton,arrow_forward"));
}

#[test]
fn a_job_shorter_than_notify_min_sends_nothing() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);
    let server = HttpServer::start();
    with_channels(&test, &server);

    let id = start(
        &test,
        &["--notify-min", "1h", "--name", "short", "--", "echo", "hi"],
    );
    let out = follow(&test, &id);
    assert_eq!(out.code, Some(0), "{out:?}");
    let job = test.remote_dir.join("jobs").join(&id);
    wait_until(
        "the job's channel files to go",
        Duration::from_secs(30),
        || !job.join("notify.d").exists(),
    );
    wait_for_the_wrapper(&id);
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
    let jobs = jobs_json(&test);
    let notify = &find(&jobs, &id)["notify"];
    assert_eq!(notify["what"], "end if over 1h", "{notify:#}");
    assert_eq!(notify["last"]["event"], "skipped", "{notify:#}");
    let table = test.run(["jobs"]).ok();
    assert!(
        table.stdout.contains("end if over 1h: not sent: it ran "),
        "{table:?}"
    );
}

#[test]
fn bad_progress_options_are_refused_before_anything_starts() {
    let Some(test) = TestBox::new() else { return };
    let server = HttpServer::start();
    for (args, message) in [
        (
            &["--notify-every", "5"][..],
            "fenton: --notify-every \"5\" is not a duration like 30s, 20m, 2h or 1d (or 0 for none)\n",
        ),
        (
            &["--stall", "1w"][..],
            "fenton: --stall \"1w\" is not a duration like 30s, 20m, 2h or 1d (or 0 for none)\n",
        ),
        (
            &["--notify-on", "a\nb"][..],
            "fenton: --notify-on \"a\\nb\" is empty or holds a control character (a line break?): give one pattern per --notify-on\n",
        ),
    ] {
        with_channels(&test, &server);
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--", "true"]);
        let out = test.run(&all);
        assert_eq!((out.code, out.stderr.as_str()), (Some(1), message));
    }
    // Without a channel, the option says what it needs.
    test.write_config(&test.default_config(""));
    let out = test.run(["run", "--notify-every", "1m", "--", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .starts_with("fenton: --notify-every needs a channel: add [notify.telegram]"),
        "{out:?}"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn progress_matches_and_stalls_still_go_out_on_a_full_disk() {
    let Some(test) = TestBox::new() else { return };
    on_a_full_disk(&test, "HTTP 200");
}

#[test]
fn progress_still_goes_out_on_a_full_disk_with_wget() {
    require!("wget", installed("wget"));
    let bin = tempfile::Builder::new()
        .prefix("fenton-bin")
        .tempdir()
        .unwrap();
    let path = path_without(bin.path(), &["curl"]);
    let Some(test) = TestBox::builder().env("PATH", &path).start() else {
        return;
    };
    on_a_full_disk(&test, "sent with wget");
}

/// A job whose remote_dir is a 2 MB tmpfs fills it (its log has the page its first line took,
/// and room in it for one line more), then stays silent for a while: its
/// progress, its match, its stall and its end all arrive, and `fenton jobs` says what went
/// last; every channel's result ends with `sent`.
fn on_a_full_disk(test: &TestBox, sent: &str) {
    let Some(_disk) = Tmpfs::mount(&test.remote_dir, "2m") else {
        return;
    };
    let _reaper = reaper(test);
    let server = HttpServer::start();
    with_channels(test, &server);
    let disk = test.remote_dir.to_str().unwrap();
    let id = start(
        test,
        &[
            "--notify-every",
            "2s",
            "--notify-on",
            "^filled",
            "--stall",
            "3s",
            "--name",
            "filler",
            "--dir",
            disk,
            "--",
            "sh",
            "-c",
            "echo filling; dd if=/dev/zero of=fill bs=64k 2>/dev/null; df -Pk . | awk 'NR == 2 { print \"filled, \" $4 \" KB free\" }'; \
             dd if=/dev/zero of=fill2 bs=4k 2>/dev/null; sleep 8; exit 9",
        ],
    );
    let out = follow(test, &id);
    assert_eq!(out.code, Some(9), "{out:?}");
    wait_until("the end message", Duration::from_secs(60), || {
        events(&server).contains(&"end".to_string())
    });
    wait_for_the_wrapper(&id);
    let hooks = hooks(&server);
    let events = events(&server);
    assert_eq!(events.last().map(String::as_str), Some("end"), "{events:?}");
    assert!(
        hooks
            .iter()
            .any(|h| h["event"] == "match" && h["line"].as_str().unwrap().starts_with("filled, ")),
        "{hooks:#?}"
    );
    assert_eq!(
        hooks.iter().filter(|h| h["event"] == "stall").count(),
        1,
        "{events:?}"
    );
    let late_progress = hooks
        .iter()
        .filter(|h| h["event"] == "progress")
        .filter(|h| h["log_tail"].as_str().unwrap().contains("filled, "))
        .count();
    assert!(late_progress >= 2, "{events:?}");
    assert_eq!(hooks.last().unwrap()["disk_full"], true);
    let telegram: Vec<Request> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/editMessageText"))
        .collect();
    assert!(!telegram.is_empty(), "{:#?}", server.requests());
    let last = find(&jobs_json(test), &id)["notify"]["last"].clone();
    assert_eq!(last["event"], "end", "{last}");
    let results = last["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{last}");
    assert!(
        results.iter().all(|r| r.as_str().unwrap().ends_with(sent)),
        "{last}"
    );
}

#[test]
fn a_killed_job_ends_its_watcher_and_its_window_with_it() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);
    let server = HttpServer::start();
    with_channels(&test, &server);
    let id = start(
        &test,
        &[
            "--notify-every",
            "1s",
            "--stall",
            "1s",
            "--name",
            "forever",
            "--",
            "sleep",
            "300",
        ],
    );
    server.wait_for("/hook", 2, Duration::from_secs(60));
    let out = test.run(["kill", &id]).ok();
    assert!(out.stderr.contains("killed"), "{out:?}");
    assert_eq!(follow(&test, &id).code, Some(143));
    wait_for_the_wrapper(&id);
    let mut tmux = std::process::Command::new("tmux");
    tmux.args(["-L", &test.tmux_socket, "list-windows", "-a", "-F"])
        .arg("#{window_name}");
    wait_until(
        "the job's tmux window to close",
        Duration::from_secs(10),
        || {
            !crate::common::run(tmux_clone(&tmux), Duration::from_secs(10))
                .stdout
                .lines()
                .any(|w| w == "forever")
        },
    );
    let hooks = hooks(&server);
    let end = hooks.last().unwrap();
    assert_eq!(end["event"], "end", "{hooks:#?}");
    assert_eq!(end["state"], "killed");
    assert!(end["text"]
        .as_str()
        .unwrap()
        .starts_with("forever was killed on "));
    assert_eq!(hooks.iter().filter(|h| h["event"] == "end").count(), 1);
    assert_eq!(hooks.iter().filter(|h| h["event"] == "stall").count(), 1);
}

fn tmux_clone(cmd: &std::process::Command) -> std::process::Command {
    let mut copy = std::process::Command::new(cmd.get_program());
    copy.args(cmd.get_args());
    copy
}

#[test]
fn a_job_killed_by_a_signal_says_so() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);
    let server = HttpServer::start();
    with_channels(&test, &server);
    let id = start(
        &test,
        &[
            "--notify",
            "--name",
            "sig",
            "--",
            "sh",
            "-c",
            "echo RuntimeError: first; echo working; kill -SEGV $$",
        ],
    );
    assert_eq!(follow(&test, &id).code, Some(139));
    let hook = server.wait_for("/hook", 1, Duration::from_secs(30))[0].json();
    assert_eq!(hook["state"], "signal", "{hook}");
    let text = hook["text"].as_str().unwrap();
    assert!(
        text.starts_with("sig was killed by signal SIGSEGV on "),
        "{text}"
    );
    assert!(
        text.contains("around the first error in the log:\nRuntimeError: first\nworking"),
        "{text}"
    );
}

#[test]
fn the_profile_gives_the_defaults_and_an_option_replaces_them() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);
    let server = HttpServer::start();
    test.write_config(
        &(test.default_config(
            "notify_by_default = true\nnotify = { every = \"1s\", on = [\"^go\"], min = \"0\" }",
        ) + &channels(&server)),
    );
    let id = start(&test, &["--", "sh", "-c", "echo go; sleep 3; echo done"]);
    assert_eq!(follow(&test, &id).code, Some(0));
    wait_until("the end message", Duration::from_secs(60), || {
        events(&server).contains(&"end".to_string())
    });
    wait_for_the_wrapper(&id);
    let events = events(&server);
    assert!(events.contains(&"match".to_string()), "{events:?}");
    assert!(events.contains(&"progress".to_string()), "{events:?}");
    let jobs = jobs_json(&test);
    assert_eq!(
        find(&jobs, &id)["notify"]["what"],
        "end, every 1s, 1 pattern"
    );

    // An option replaces the profile's value; 0 turns it off.
    let out = test.run(["run", "--notify-every", "0", "--", "true"]).ok();
    assert!(
        out.stderr.contains("it will notify you: end, 1 pattern"),
        "{out:?}"
    );
    // A bad value in the profile says where it is.
    test.write_config(&(test.default_config("notify = { stall = \"soon\" }") + &channels(&server)));
    let out = test.run(["run", "--notify", "--", "true"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            Some(1),
            "fenton: the profile's notify.stall \"soon\" is not a duration like 30s, 20m, 2h or 1d (or 0 for none)\n"
        )
    );
}

#[test]
fn progress_shows_the_gpus_the_jobs_processes_use() {
    let bin = tempfile::Builder::new()
        .prefix("fenton-bin")
        .tempdir()
        .unwrap();
    std::os::unix::fs::symlink(crate::common::nvidia_smi(), bin.path().join("nvidia-smi")).unwrap();
    // A recording of an H100 whose one compute process (pid 11327) becomes the job's.
    let recording = bin.path().join("h100.txt");
    let original = std::fs::read_to_string(crate::common::recording(
        "linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt",
    ))
    .unwrap();
    std::fs::write(&recording, &original).unwrap();
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.path().display());
    let Some(test) = TestBox::builder()
        .env("PATH", &path)
        .env("NVIDIA_SMI_CAPTURE", recording.to_str().unwrap())
        .start()
    else {
        return;
    };
    let _reaper = reaper(&test);
    let server = HttpServer::start();
    with_channels(&test, &server);
    let id = start(
        &test,
        &["--notify-every", "1s", "--name", "gpu", "--", "sleep", "30"],
    );
    // Before its pid is the GPU's, the job uses none: no GPU line.
    let first = server.wait_for("/hook", 1, Duration::from_secs(30))[0].json();
    assert!(!first["text"].as_str().unwrap().contains("GPU "), "{first}");
    let pid = std::fs::read_to_string(test.remote_dir.join("jobs").join(&id).join("pid")).unwrap();
    let swapped = bin.path().join("swapped.txt");
    std::fs::write(&swapped, original.replace("11327", pid.trim())).unwrap();
    std::fs::rename(&swapped, &recording).unwrap();
    wait_until(
        "a progress message with the job's GPU",
        Duration::from_secs(30),
        || {
            hooks(&server).iter().any(|h| {
                h["event"] == "progress"
                    && h["text"]
                        .as_str()
                        .unwrap()
                        .contains("\nGPU 0: 100% busy, 19818/81559 MiB, 59 C\n")
            })
        },
    );
    let out = test.run(["kill", &id]).ok();
    assert!(out.stderr.contains("killed"), "{out:?}");
}

#[test]
fn a_job_whose_wrapper_dies_is_reported_lost_by_its_watcher() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);
    let server = HttpServer::start();
    with_channels(&test, &server);
    let id = start(
        &test,
        &["--stall", "1h", "--name", "orphan", "--", "sleep", "300"],
    );
    let job = test.remote_dir.join("jobs").join(&id);
    let wrapper = std::fs::read_to_string(job.join("wrapper")).unwrap();
    crate::jobs::sigkill(&wrapper, false);
    wait_until("the lost message", Duration::from_secs(30), || {
        events(&server).contains(&"end".to_string())
    });
    wait_for_the_wrapper(&id);
    let end = hooks(&server).pop().unwrap();
    assert_eq!(end["state"], "lost", "{end}");
    assert!(
        end["text"].as_str().unwrap().starts_with("orphan on "),
        "{end}"
    );
    assert!(!job.join("notify.d").exists(), "the tokens stayed");
    assert!(
        end["text"]
            .as_str()
            .unwrap()
            .contains("no end message will come"),
        "{end}"
    );
    // The job itself runs on (its group is the Reaper's to end), and `jobs` says so.
    assert!(!job.join("exit").exists());
    assert_eq!(find(&jobs_json(&test), &id)["state"], "running");
}
