//! Jobs when things go wrong, against a real sshd and tmux: `kill` gives a job its whole
//! grace, a job that fills the disk still records its end and notifies, a start that fails
//! leaves no secret behind, and damaged job files give one clear line, never a wrong answer.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::common::http::{HttpServer, Request};
use crate::common::{available, installed, run, wait_until, TestBox};
use crate::jobs::{
    find, follow, jobs_json, path_without, reaper, sigkill, start, text_of, with_channels,
    NTFY_TOKEN, TOKEN,
};

/// The job's log on the box.
fn log_of(test: &TestBox, id: &str) -> PathBuf {
    test.remote_dir.join("jobs").join(id).join("log")
}

fn wait_for_log(test: &TestBox, id: &str, text: &str) {
    wait_until(
        &format!("{text:?} in job {id}'s log"),
        Duration::from_secs(30),
        || std::fs::read_to_string(log_of(test, id)).is_ok_and(|l| l.contains(text)),
    );
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !matches!(
            s.rsplit(") ").next().and_then(|r| r.chars().next()),
            Some('Z')
        )
    })
}

#[test]
fn kill_gives_the_job_its_whole_grace() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);

    // A checkpoint on SIGTERM: two seconds of saving, then a last line.
    let saver = start(
        &test,
        &[
            "--name",
            "saver",
            "--",
            "sh",
            "-c",
            "trap 'echo got TERM; sleep 2; echo saved; exit 0' TERM; echo ready; while :; do sleep 0.1 & wait; done",
        ],
    );
    wait_for_log(&test, &saver, "ready");
    let out = test.run(["kill", "saver"]).ok();
    assert!(
        out.elapsed >= Duration::from_secs(2) && out.elapsed < Duration::from_secs(8),
        "kill returned after {:?}: {out:?}",
        out.elapsed
    );
    assert_eq!(out.stderr, "fenton: job saver killed\n", "{out:?}");
    assert_eq!(
        std::fs::read_to_string(log_of(&test, &saver)).unwrap(),
        "ready\ngot TERM\nsaved\n",
        "the log holds what the job printed, and only that"
    );
    let jobs = jobs_json(&test);
    assert_eq!(find(&jobs, &saver)["state"], "killed");
    assert_eq!(find(&jobs, &saver)["exit"], 0);

    // A job that ignores SIGTERM, saying the time every 0.1 s: SIGKILL comes after the 3 s.
    let stubborn = start(
        &test,
        &[
            "--name",
            "stubborn",
            "--",
            "sh",
            "-c",
            "trap '' TERM; echo ready; while :; do date +%s.%N; sleep 0.1; done",
        ],
    );
    wait_for_log(&test, &stubborn, "ready");
    let asked = now();
    let out = test.run(["kill", "stubborn", "--grace", "3"]).ok();
    assert!(
        out.elapsed >= Duration::from_secs(3) && out.elapsed < Duration::from_secs(6),
        "kill --grace 3 returned after {:?}: {out:?}",
        out.elapsed
    );
    assert!(
        out.stderr
            .contains("did not stop within 3 s of SIGTERM: killed it with SIGKILL"),
        "{out:?}"
    );
    let log = std::fs::read_to_string(log_of(&test, &stubborn)).unwrap();
    let last: f64 = log
        .lines()
        .last()
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("no time at the end of the log: {log:?}"));
    assert!(
        last - asked > 2.8,
        "the job's last sign of life came {:.2} s after the kill: {log}",
        last - asked
    );
    assert_eq!(follow(&test, &stubborn).code, Some(137));
    assert_eq!(find(&jobs_json(&test), &stubborn)["state"], "killed");

    // The job's program ends at once, a child it left ignores SIGTERM: the child gets the
    // rest of the grace, then SIGKILL.
    let dir = tempfile::Builder::new()
        .prefix("fenton-kill")
        .tempdir()
        .unwrap();
    let child_pid = dir.path().join("child.pid");
    let parent = start(
        &test,
        &[
            "--name",
            "parent",
            "--dir",
            dir.path().to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "(trap '' TERM; exec sleep 300) & echo $! > child.pid; echo ready; wait",
        ],
    );
    wait_for_log(&test, &parent, "ready");
    let child: i32 = std::fs::read_to_string(&child_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let out = test.run(["kill", "parent", "--grace", "2"]).ok();
    assert!(out.elapsed >= Duration::from_secs(2), "{out:?}");
    assert!(out.stderr.contains("with SIGKILL"), "{out:?}");
    wait_until(
        "the child to die of the SIGKILL",
        Duration::from_secs(5),
        || !alive(child),
    );
    assert_eq!(follow(&test, &parent).code, Some(143));
}

/// A tmpfs mounted for one test, unmounted when dropped (lazily if something still uses it).
pub(crate) struct Tmpfs(PathBuf);

impl Tmpfs {
    pub(crate) fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        available("mounting a tmpfs (root)", mounted).then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let clean = Command::new("umount")
            .arg(&self.0)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !clean {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Whether any file under `dir` holds a notification secret.
fn secrets_under(dir: &Path) -> String {
    let mut grep = Command::new("grep");
    grep.args(["-rl", "-e", TOKEN, "-e", NTFY_TOKEN]).arg(dir);
    run(grep, Duration::from_secs(10)).stdout
}

#[test]
fn a_job_that_fills_the_disk_still_records_its_end_and_notifies() {
    let Some(test) = TestBox::new() else { return };
    fill_the_disk(&test, "HTTP 200");
}

#[test]
fn a_job_that_fills_the_disk_still_notifies_with_wget() {
    require!("wget", installed("wget"));
    let bin = tempfile::Builder::new()
        .prefix("fenton-bin")
        .tempdir()
        .unwrap();
    let path = path_without(bin.path(), &["curl"]);
    let Some(test) = TestBox::builder().env("PATH", &path).start() else {
        return;
    };
    fill_the_disk(&test, "sent with wget");
}

/// A job on a box whose remote_dir is a 2 MB tmpfs fills it and exits 9; every channel says
/// `sent` (the end of the result line).
fn fill_the_disk(test: &TestBox, sent: &str) {
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
            "--notify",
            "--name",
            "filler",
            "--dir",
            disk,
            "--",
            "sh",
            "-c",
            "echo filling; dd if=/dev/zero of=fill bs=64k 2>/dev/null; echo 'dd ended'; exit 9",
        ],
    );
    let out = follow(test, &id);
    assert_eq!(
        out.code,
        Some(9),
        "logs -f ends with the job's status: {out:?}"
    );
    assert!(out.stdout.starts_with("filling\n"), "{out:?}");
    let filled = std::fs::metadata(test.remote_dir.join("fill"))
        .unwrap()
        .len();
    assert!(filled > 1_800_000, "the job filled {filled} bytes of 2 MB");

    let hook = server.wait_for("/hook", 1, Duration::from_secs(30))[0].json();
    assert_eq!(hook["exit"], 9, "{hook}");
    assert_eq!(hook["state"], "failed");
    assert_eq!(hook["disk_full"], true);
    assert!(
        hook["text"].as_str().unwrap().contains("disk full"),
        "{hook}"
    );
    let telegram = server.wait_for("/bot", 1, Duration::from_secs(30));
    let text = text_of(&telegram[0]);
    assert!(
        text.starts_with("filler failed (exit 9) on ") && text.contains("disk full"),
        "{text}"
    );
    let ntfy = server.wait_for("/ntfy/jobs", 1, Duration::from_secs(30));
    assert!(ntfy[0].body.contains("disk full"), "{:?}", ntfy[0]);
    wait_until("the notification results", Duration::from_secs(30), || {
        find(&jobs_json(test), &id)["notify"]["results"]
            .as_array()
            .is_some_and(|r| r.len() == 3)
    });
    let results = find(&jobs_json(test), &id)["notify"]["results"].clone();
    assert!(
        results
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.as_str().unwrap().ends_with(sent)),
        "{results}"
    );
    let job = find(&jobs_json(test), &id).clone();
    assert_eq!(
        (job["state"].as_str(), job["exit"].as_i64()),
        (Some("failed"), Some(9))
    );
    assert!(!test
        .remote_dir
        .join("jobs")
        .join(&id)
        .join("notify.d")
        .exists());

    // With the disk full from the start (what the wrapper freed taken again), every command
    // says so, at once.
    let df = test.on_box(&format!(
        "dd if=/dev/zero of={disk}/fill2 bs=4k 2>/dev/null; df -Pk {disk} | awk 'NR == 2 {{ print $4 }}'"
    ));
    assert_eq!(df.stdout.trim(), "0", "the disk is full: {df:?}");
    let want = format!("fenton: no space left on the box at {disk}");
    let out = test.run(["run", "--notify", "--", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.starts_with(&want) && out.stderr.lines().count() == 1,
        "{out:?}"
    );
    assert!(out.elapsed < Duration::from_secs(8), "{out:?}");
    let out = test.run(["notify", "test"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.starts_with(&want) && out.stderr.lines().count() == 1,
        "{out:?}"
    );
    // (The dot files are the listing's kept lines of finished jobs.)
    let jobs: Vec<_> = std::fs::read_dir(test.remote_dir.join("jobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| !name.to_string_lossy().starts_with('.'))
        .collect();
    assert_eq!(jobs, [id.as_str()], "a failed start left its directory");
    assert_eq!(
        secrets_under(&test.remote_dir),
        "",
        "a secret was left behind"
    );
    assert_eq!(server.requests().len(), 3, "one message per channel");

    // Space again: jobs start again.
    std::fs::remove_file(test.remote_dir.join("fill")).unwrap();
    std::fs::remove_file(test.remote_dir.join("fill2")).unwrap();
    let id = start(test, &["--", "echo", "room again"]);
    assert_eq!(follow(test, &id).stdout, "room again\n");
}

/// A box whose `tmux` is a stand-in that hangs (`hang` in the file `mode`) or does nothing.
fn box_with_broken_tmux() -> Option<(TestBox, tempfile::TempDir)> {
    let bin = tempfile::Builder::new()
        .prefix("fenton-bin")
        .tempdir()
        .unwrap();
    let mode = bin.path().join("mode");
    std::fs::write(&mode, "hang\n").unwrap();
    let tmux = bin.path().join("tmux");
    std::fs::write(
        &tmux,
        format!(
            // A loop, not `exec sleep`: its command line keeps naming the test's directories,
            // so the box's clean-up finds it.
            "#!/bin/sh\ncase $(cat '{}') in hang) while :; do sleep 1; done ;; esac\nexit 0\n",
            mode.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&tmux, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let test = TestBox::builder().env("PATH", &path).start()?;
    Some((test, bin))
}

/// The box's `sh -s` that runs the `fenton run` script of this test (not a copy of it forked
/// for a moment to run a program).
fn run_script_pids(test: &TestBox) -> Vec<i32> {
    let scripts: Vec<i32> = TestBox::pids_mentioning(&test.remote_dir.to_string_lossy())
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sh\0-s\0"))
        })
        .collect();
    let parent = |pid: &i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit(") ")
                    .next()?
                    .split(' ')
                    .nth(1)?
                    .parse::<i32>()
                    .ok()
            })
    };
    scripts
        .iter()
        .copied()
        .filter(|pid| !parent(pid).is_some_and(|p| scripts.contains(&p)))
        .collect()
}

#[test]
fn a_start_that_fails_leaves_no_secret_behind() {
    let Some((test, bin)) = box_with_broken_tmux() else {
        return;
    };
    let _reaper = reaper(&test);
    let server = HttpServer::start();
    with_channels(&test, &server);
    let jobs_dir = test.remote_dir.join("jobs");
    let job_dirs = || std::fs::read_dir(&jobs_dir).map(|d| d.count()).unwrap_or(0);

    // A tmux that does not answer: after 5 s the job starts under setsid, and says so.
    let out = test.run([
        "run",
        "--notify",
        "--name",
        "hung",
        "--",
        "echo",
        "ran anyway",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("did not answer within 5 s"), "{out:?}");
    assert!(out.elapsed < Duration::from_secs(15), "{out:?}");
    let id = out.stdout.trim().to_string();
    assert_eq!(follow(&test, &id).stdout, "ran anyway\n");
    let hook = server.wait_for("/hook", 1, Duration::from_secs(30))[0].json();
    assert_eq!(hook["state"], "succeeded");
    wait_until("the job's secrets to go", Duration::from_secs(30), || {
        secrets_under(&test.remote_dir).is_empty()
    });

    // The start cut short on the box (the session ended under it): nothing is left.
    std::fs::remove_dir_all(&jobs_dir).unwrap();
    let mut cut = test
        .fenton(["run", "--notify", "--name", "cut", "--", "echo", "never"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(
        "the job's secrets on the box",
        Duration::from_secs(20),
        || !secrets_under(&test.remote_dir).is_empty(),
    );
    let scripts = run_script_pids(&test);
    assert_eq!(scripts.len(), 1, "one run script on the box");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(scripts[0]),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let _ = cut.wait();
    wait_until(
        "the cut start's directory to go",
        Duration::from_secs(10),
        || job_dirs() == 0,
    );
    assert_eq!(secrets_under(&test.remote_dir), "");

    // A tmux that runs nothing: after 10 s the start is given up, and its directory removed.
    std::fs::write(bin.path().join("mode"), "nothing\n").unwrap();
    let started = Instant::now();
    let out = run(
        test.fenton(["run", "--notify", "--name", "never", "--", "echo", "never"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .starts_with("fenton: the job did not start within 10 s")
            && out.stderr.lines().count() == 1,
        "{out:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(job_dirs(), 0, "the failed start left its directory");
    assert_eq!(secrets_under(&test.remote_dir), "");
    assert!(
        server
            .requests()
            .iter()
            .all(|r: &Request| !r.body.contains("never")),
        "a job that never started sent a message"
    );

    // A remote_dir that cannot hold jobs: one line, nothing written.
    let file = test.root.join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let config = std::fs::read_to_string(&test.config).unwrap().replace(
        &format!("remote_dir = {:?}", test.remote_dir),
        &format!("remote_dir = {file:?}"),
    );
    test.write_config(&config);
    let out = test.run(["run", "--notify", "--", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.starts_with(&format!(
            "fenton: cannot write in {}/jobs on the box",
            file.display()
        )) && out.stderr.lines().count() == 1,
        "{out:?}"
    );
}

/// A process the test started, ended when dropped (even when the test fails).
struct Decoy(std::process::Child);

impl Drop for Decoy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Asserts a command failed with one line that says what is damaged.
fn says_damaged(test: &TestBox, args: &[&str], what: &str) {
    let out = test.run(args);
    assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
    assert!(
        out.stderr.starts_with("fenton: job ")
            && out.stderr.contains(" is damaged: ")
            && out.stderr.contains(what)
            && out.stderr.lines().count() == 1,
        "{args:?}: {out:?}"
    );
}

#[test]
fn damaged_job_files_give_one_clear_line_and_no_wrong_answer() {
    let Some(test) = TestBox::new() else { return };
    let _reaper = reaper(&test);
    let server = HttpServer::start();
    with_channels(&test, &server);

    // A wrapper killed under its job: the job is lost, and its tokens go at the next look.
    let lost = start(&test, &["--notify", "--name", "lost", "--", "sleep", "300"]);
    let lost_dir = test.remote_dir.join("jobs").join(&lost);
    sigkill(
        &std::fs::read_to_string(lost_dir.join("wrapper")).unwrap(),
        false,
    );
    let group = std::fs::read_to_string(lost_dir.join("pid")).unwrap();
    sigkill(&group, true);
    wait_until(
        "the lost job's processes to end",
        Duration::from_secs(10),
        || !alive(group.trim().parse().unwrap()),
    );
    assert_eq!(find(&jobs_json(&test), &lost)["state"], "lost");
    assert!(!lost_dir.join("notify.d").exists());
    assert_eq!(secrets_under(&test.remote_dir), "");

    let id = start(&test, &["--name", "victim", "--", "sleep", "300"]);
    let job = test.remote_dir.join("jobs").join(&id);
    let pid_file = job.join("pid");
    let real = std::fs::read_to_string(&pid_file).unwrap();
    let real_pid: i32 = real.trim().parse().unwrap();
    // A process of this test, leading a group of its own, which a stale pid could name.
    let decoy = Decoy(
        Command::new("sleep")
            .arg("300")
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let decoy_pid = decoy.0.id() as i32;

    let not_its = |pid: &str| format!("its pid file names process {pid}, which is not the job's");
    for (bad, what) in [
        (
            "abc".to_string(),
            "its pid file holds \"abc\", not a process id".to_string(),
        ),
        ("99999999".to_string(), not_its("99999999")),
        (decoy_pid.to_string(), not_its(&decoy_pid.to_string())),
    ] {
        std::fs::write(&pid_file, format!("{bad}\n")).unwrap();
        says_damaged(&test, &["kill", "victim"], &what);
        assert!(
            alive(real_pid),
            "the job died of a kill that said it failed"
        );
        assert!(
            alive(decoy_pid),
            "kill signalled a process that was not the job's"
        );
    }
    drop(decoy);
    std::fs::write(&pid_file, "abc\n").unwrap();
    let out = test.run(["jobs"]).ok();
    assert!(
        out.stderr.contains(&format!(
            "job {id} (victim) is damaged: its pid file holds \"abc\""
        )),
        "{out:?}"
    );
    std::fs::write(&pid_file, &real).unwrap();
    let out = test.run(["kill", "victim", "--grace", "1"]).ok();
    assert_eq!(out.stderr, "fenton: job victim killed\n");
    assert_eq!(follow(&test, &id).code, Some(143));

    // An exit file that holds no status, a log that is gone.
    std::fs::write(job.join("exit"), "abc\n").unwrap();
    says_damaged(
        &test,
        &["logs", "victim", "-f"],
        "its exit file holds \"abc\", not an exit status",
    );
    let jobs = jobs_json(&test);
    assert_eq!(find(&jobs, &id)["state"], "damaged");
    let out = test.run(["jobs"]).ok();
    assert!(out.stdout.contains("damaged"), "{out:?}");
    assert!(
        out.stderr.contains("its exit file holds \"abc\""),
        "{out:?}"
    );
    std::fs::remove_file(job.join("log")).unwrap();
    for args in [
        &["logs", "victim"][..],
        &["logs", "victim", "-f"],
        &["logs", "victim", "-n", "5"],
    ] {
        says_damaged(&test, args, "is missing");
    }
}
