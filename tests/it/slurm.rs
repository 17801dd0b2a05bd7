//! `fenton run`, `jobs`, `logs` and `kill` on a Slurm profile, against a real two-node Slurm
//! (tests/common/slurm.rs) whose login node is the test's sshd box: GPUs reach the job, exit
//! codes, time limits, cancels and arrays read as they happened, a job that cannot start says
//! why, sbatch's refusals come with their fix, and `logs -f` outlives the link.

use std::time::{Duration, Instant};

use crate::common::http::HttpServer;
use crate::common::slurm::SlurmCluster;
use crate::common::{run, wait_until, Out, TestBox};
use crate::jobs::{channels, find, jobs_json, laptop_pids, start, Follow, TOKEN};

/// A cluster and its login node (declared in this order, so the box goes first).
fn cluster() -> Option<(SlurmCluster, TestBox)> {
    let cluster = SlurmCluster::start()?;
    let test = cluster.builder().start()?;
    Some((cluster, test))
}

/// A Slurm profile (with `profile`'s own lines) whose watcher looks every second and whose
/// messages go to `server`.
fn notifying(test: &TestBox, server: &HttpServer, profile: &str) {
    test.write_config(
        &(test.default_config(&format!("scheduler = \"slurm\"\n{profile}"))
            + "[profile.box.slurm]\nwatch_every = 1\n"
            + &channels(server)),
    );
}

/// `fenton logs JOB -f`, for a job that ends within `secs`.
fn follow(test: &TestBox, job: &str, secs: u64) -> Out {
    run(test.fenton(["logs", job, "-f"]), Duration::from_secs(secs))
}

/// Waits until `fenton jobs --json` shows the job in `state`, and returns it.
fn wait_state(test: &TestBox, id: &str, state: &str, secs: u64) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    wait_until(
        &format!("job {id} to be {state}"),
        Duration::from_secs(secs),
        || {
            last = find(&jobs_json(test), id).clone();
            last["state"] == state
        },
    );
    last
}

#[test]
fn the_login_node_reaches_the_cluster() {
    let Some((_cluster, test)) = cluster() else {
        return;
    };
    let out = test
        .run(["exec", "--", "sinfo", "-h", "-o", "%P %D %G"])
        .ok();
    assert!(out.stdout.contains("debug* 2 gpu:2"), "{out:?}");
    assert!(out.stdout.contains("big 1 gpu:4"), "{out:?}");
}

#[test]
fn a_gpu_job_gets_its_gpu_and_a_failure_its_exit_code() {
    let Some((cluster, test)) = cluster() else {
        return;
    };
    let out = test
        .run([
            "run",
            "--gpus",
            "1",
            "--name",
            "gpu",
            "--",
            "sh",
            "-c",
            "echo \"gpus=$CUDA_VISIBLE_DEVICES\"; echo \"it's here\"",
        ])
        .ok();
    let id = out.stdout.trim().to_string();
    let slurm_id = out
        .stderr
        .split("as job ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no Slurm job id said: {out:?}"))
        .trim_end_matches(';')
        .to_string();
    let failing = start(&test, &["--", "sh", "-c", "echo bye; exit 3"]);
    // The words reach the node as typed: none is read as code by the batch script.
    let words = start(
        &test,
        &["--", "printf", "%s|", "$(touch pwned)", "a'b\\c", "*", ""],
    );

    let log = follow(&test, &id, 60);
    assert_eq!(log.code, Some(0), "{log:?}");
    assert!(
        log.stdout == "gpus=0\nit's here\n" || log.stdout == "gpus=1\nit's here\n",
        "{log:?}"
    );
    let log = follow(&test, &failing, 60);
    assert_eq!(log.code, Some(3), "{log:?}");
    assert_eq!(log.stdout, "bye\n");
    assert!(log.stderr.contains("ended: failed (3)"), "{log:?}");

    let log = follow(&test, &words, 60);
    assert_eq!(log.stdout, "$(touch pwned)|a'b\\c|*||", "{log:?}");
    assert!(!test.root.join("box/home/pwned").exists());

    // The scheduler agrees, and the list says so.
    let job = wait_state(&test, &id, "succeeded", 30);
    assert_eq!(job["slurm"]["job_id"], slurm_id.as_str());
    assert_eq!(job["exit"], 0);
    // Times are the epoch's seconds, whatever the cluster's time zone.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let start = job["slurm"]["start"].as_u64().unwrap_or(0);
    assert!(start + 300 > now && start <= now + 5, "{job:#}");
    let job = wait_state(&test, &failing, "failed", 30);
    assert_eq!(job["exit"], 3);
    let listed = cluster.client(&format!("squeue -h -t all -j {slurm_id} -o %T"));
    assert_eq!(listed.stdout.trim(), "COMPLETED", "{listed:?}");
    let table = test.run(["jobs"]).ok();
    let row = table
        .stdout
        .lines()
        .find(|l| l.starts_with(&failing))
        .unwrap();
    assert!(row.contains("failed (3)"), "{table:?}");
}

#[test]
fn a_job_past_its_time_limit_times_out() {
    let Some((_cluster, test)) = cluster() else {
        return;
    };
    let id = start(
        &test,
        &[
            "--time",
            "1",
            "--",
            "sh",
            "-c",
            "echo started; exec sleep 600",
        ],
    );
    // Slurm counts limits in minutes and looks every 30 s or so.
    let log = follow(&test, &id, 180);
    assert_eq!(log.code, Some(1), "{log:?}");
    assert!(log.stdout.starts_with("started\n"), "{log:?}");
    assert!(log.stdout.contains("DUE TO TIME LIMIT"), "{log:?}");
    assert!(log.stderr.contains("ended: timeout"), "{log:?}");
    let job = wait_state(&test, &id, "timeout", 30);
    assert_eq!(job["slurm"]["state"], "TIMEOUT");
}

#[test]
fn kill_lets_a_job_checkpoint_and_then_it_is_cancelled() {
    let Some((_cluster, test)) = cluster() else {
        return;
    };
    let id = start(
        &test,
        &[
            "--name",
            "ckpt",
            "--",
            "sh",
            "-c",
            "trap 'echo checkpoint saved; exit 0' TERM; echo started; while :; do sleep 0.2; done",
        ],
    );
    wait_until("the job to start", Duration::from_secs(60), || {
        test.run(["logs", &id]).stdout.contains("started")
    });
    let out = run(
        test.fenton(["kill", "ckpt", "--grace", "20"]),
        Duration::from_secs(90),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("stopped: cancelled"), "{out:?}");
    // (Slurm notes the cancel in the log too, and sh that its sleep was terminated.)
    let log = test.run(["logs", &id]).ok();
    assert!(log.stdout.starts_with("started\n"), "{log:?}");
    assert!(log.stdout.ends_with("checkpoint saved\n"), "{log:?}");
    wait_state(&test, &id, "cancelled", 30);
    // Killing it again says it had ended; an unknown job is an error, not a quiet 0.
    let again = run(test.fenton(["kill", &id]), Duration::from_secs(60)).ok();
    assert!(again.stderr.contains("had already ended"), "{again:?}");
    let none = test.run(["kill", "nosuchjob"]);
    assert_eq!(none.code, Some(1), "{none:?}");
    assert!(none.stderr.contains("no job nosuchjob"), "{none:?}");
}

#[test]
fn a_job_killed_by_the_signal_reads_cancelled_and_one_that_failed_first_failed() {
    let Some((_cluster, test)) = cluster() else {
        return;
    };
    let server = HttpServer::start();
    notifying(&test, &server, "");
    // No TERM handler: the job dies of the signal, which Slurm may call FAILED.
    let id = start(
        &test,
        &[
            "--notify",
            "--name",
            "nap",
            "--",
            "sh",
            "-c",
            "echo up; exec sleep 600",
        ],
    );
    let failed = start(
        &test,
        &["--name", "oops", "--", "sh", "-c", "echo oops; exit 3"],
    );
    wait_until("the job to start", Duration::from_secs(60), || {
        test.run(["logs", &id]).stdout.contains("up")
    });
    let out = run(
        test.fenton(["kill", &id, "--grace", "5"]),
        Duration::from_secs(90),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("cancelled"), "{out:?}");
    let job = wait_state(&test, &id, "cancelled", 30);
    assert!(job["exit"].is_null(), "{job:#}");
    let table = test.run(["jobs"]).ok();
    let row = table.stdout.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        row.contains("cancelled") && !row.contains("failed"),
        "{table:?}"
    );
    let end = follow(&test, &id, 60);
    assert_eq!(end.code, Some(1), "{end:?}");
    assert!(end.stderr.contains("ended: cancelled"), "{end:?}");
    let hooks = server.wait_for("/hook", 1, Duration::from_secs(60));
    let message = hooks[0].json();
    assert_eq!(message["state"], "cancelled", "{message}");
    assert!(
        message["text"]
            .as_str()
            .unwrap()
            .starts_with("nap was cancelled"),
        "{message}"
    );

    // A job that failed by itself stays failed when it is killed afterwards.
    wait_state(&test, &failed, "failed", 60);
    let again = run(test.fenton(["kill", &failed]), Duration::from_secs(60)).ok();
    assert!(
        again.stderr.contains("had already ended: failed (3)"),
        "{again:?}"
    );
    let job = wait_state(&test, &failed, "failed", 10);
    assert_eq!(job["exit"], 3, "{job:#}");
}

#[test]
fn killing_an_array_keeps_the_failure_of_a_task_that_ended_before() {
    let Some((_cluster, test)) = cluster() else {
        return;
    };
    let server = HttpServer::start();
    notifying(&test, &server, "");
    let script = "if [ \"$SLURM_ARRAY_TASK_ID\" = 1 ]; then echo broken; exit 3; fi; \
        sleep 2; echo up; exec sleep 600";
    let id = start(
        &test,
        &[
            "--notify", "--array", "0-1", "--name", "pair", "--", "sh", "-c", script,
        ],
    );
    let task = |job: &serde_json::Value, i: &str| {
        job["slurm"]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["index"] == i)
            .cloned()
            .unwrap_or_default()
    };
    wait_until(
        "task 1 to fail while task 0 runs",
        Duration::from_secs(60),
        || {
            let job = find(&jobs_json(&test), &id).clone();
            task(&job, "1")["state"] == "failed"
                && test.run(["logs", &format!("{id}.0")]).stdout.contains("up")
        },
    );
    let out = run(
        test.fenton(["kill", &id, "--grace", "5"]),
        Duration::from_secs(90),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let job = wait_state(&test, &id, "cancelled", 30);
    assert_eq!(task(&job, "1")["state"], "failed", "{job:#}");
    assert_eq!(task(&job, "1")["exit"], 3, "{job:#}");
    assert_eq!(task(&job, "0")["state"], "cancelled", "{job:#}");
    let one = follow(&test, &format!("{id}.1"), 60);
    assert_eq!(one.code, Some(3), "{one:?}");
    assert!(one.stderr.contains("ended: failed"), "{one:?}");
    let zero = follow(&test, &format!("{id}.0"), 60);
    assert!(zero.stderr.contains("ended: cancelled"), "{zero:?}");
    let hooks = server.wait_for("/hook", 1, Duration::from_secs(60));
    let message = hooks[0].json();
    assert_eq!(message["state"], "cancelled", "{message}");
    let text = message["text"].as_str().unwrap();
    assert!(
        text.contains("2 tasks: 1 failed (task 1: exit 3), 1 cancelled (task 0)"),
        "{text}"
    );
    assert!(text.contains("broken"), "{text}");
}

#[test]
fn an_array_is_one_job_of_four_tasks() {
    let Some((_cluster, test)) = cluster() else {
        return;
    };
    let id = start(
        &test,
        &[
            "--array",
            "0-3",
            "--name",
            "sweep",
            "--",
            "sh",
            "-c",
            "echo \"task $SLURM_ARRAY_TASK_ID\"",
        ],
    );
    let job = wait_state(&test, &id, "succeeded", 60);
    let tasks = job["slurm"]["tasks"].as_array().unwrap();
    let mut indexes: Vec<&str> = tasks.iter().map(|t| t["index"].as_str().unwrap()).collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2", "3"], "{job:#}");
    let table = test.run(["jobs"]).ok();
    assert_eq!(
        table.stdout.lines().filter(|l| l.contains("sweep")).count(),
        1,
        "{table:?}"
    );
    assert!(
        table.stdout.contains("succeeded (4 tasks: 4 succeeded)"),
        "{table:?}"
    );
    let log = test.run(["logs", &format!("{id}.2")]).ok();
    assert_eq!(log.stdout, "task 2\n");
    let whole = test.run(["logs", &id]);
    assert_eq!(whole.code, Some(1));
    assert!(
        whole.stderr.contains(&format!("fenton logs {id}.0")),
        "{whole:?}"
    );
}

#[test]
fn a_job_that_cannot_start_says_why_and_a_refused_one_how_to_fix_it() {
    let Some((_cluster, test)) = cluster() else {
        return;
    };
    // Partition big's only node (four GPUs) has no slurmd: the job waits, with a reason.
    let id = start(&test, &["--partition", "big", "--gpus", "4", "--", "true"]);
    let job = wait_state(&test, &id, "pending", 30);
    let reason = job["slurm"]["reason"].as_str().unwrap_or("");
    assert!(!reason.is_empty(), "{job:#}");
    let table = test.run(["jobs"]).ok();
    assert!(table.stdout.contains("pending ("), "{table:?}");
    let out = run(test.fenton(["kill", &id]), Duration::from_secs(60)).ok();
    assert!(out.stderr.contains("cancelled"), "{out:?}");

    // More GPUs than any node of the default partition has: sbatch refuses at once.
    let before = std::fs::read_dir(test.remote_dir.join("jobs"))
        .unwrap()
        .count();
    let out = test.run(["run", "--gpus", "3", "--", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(
        out.stderr
            .contains("Requested node configuration is not available")
            && out.stderr.contains("debug: gpu:2"),
        "{out:?}"
    );
    let out = test.run(["run", "--partition", "nope", "--", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("nope") && out.stderr.contains("sinfo lists debug*, big"),
        "{out:?}"
    );
    let out = test.run(["run", "--time", "forever", "--", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("--time \"forever\" is not a time limit"),
        "{out:?}"
    );
    let after = std::fs::read_dir(test.remote_dir.join("jobs"))
        .unwrap()
        .count();
    assert_eq!(before, after, "a refused job leaves nothing behind");
}

#[test]
fn following_a_slurm_job_survives_the_master_dying() {
    let Some((_cluster, test)) = cluster() else {
        return;
    };
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
    let follow = Follow::start(&test, &id);
    wait_until("50 lines", Duration::from_secs(60), || follow.lines() >= 50);
    let masters: Vec<i32> = laptop_pids(&test)
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|w| w == b"-M"))
        })
        .collect();
    assert_eq!(masters.len(), 1, "one shared connection");
    crate::jobs::sigkill(&masters[0].to_string(), false);
    follow.ends_with_every_line_once(300, Duration::from_secs(90));
}

#[test]
fn the_login_node_tells_the_phone_how_a_job_ended() {
    let Some((_cluster, test)) = cluster() else {
        return;
    };
    let server = HttpServer::start();
    notifying(&test, &server, "");
    let failing = start(
        &test,
        &[
            "--notify",
            "--name",
            "bad",
            "--",
            "sh",
            "-c",
            "sleep 2; echo oops; exit 3",
        ],
    );
    let fine = start(
        &test,
        &["--notify", "--name", "good", "--", "sh", "-c", "echo fine"],
    );
    let hooks = server.wait_for("/hook", 2, Duration::from_secs(90));
    let by_id = |id: &str| {
        hooks
            .iter()
            .map(|h| h.json())
            .find(|j| j["id"] == id)
            .unwrap_or_else(|| panic!("no message for {id}: {hooks:?}"))
    };
    let bad = by_id(&failing);
    assert_eq!(bad["state"], "failed");
    assert_eq!(bad["exit"], 3);
    assert_eq!(bad["log_tail"], "oops");
    assert!(bad["text"].as_str().unwrap().contains("Slurm job"), "{bad}");
    let good = by_id(&fine);
    assert_eq!(good["state"], "succeeded");
    let telegram = server.wait_for(
        &format!("/bot{TOKEN}/sendMessage"),
        2,
        Duration::from_secs(30),
    );
    assert_eq!(telegram.len(), 2);

    // Once nothing is left to watch the watcher goes, with the secrets; it asked the queue
    // once a round, and the accounting only for the job whose exit code it needed.
    let jobs_dir = test.remote_dir.join("jobs");
    wait_until("the watcher to end", Duration::from_secs(30), || {
        !jobs_dir.join(".watch.pid").exists()
    });
    for id in [&failing, &fine] {
        assert!(
            !jobs_dir.join(id).join("notify.d").exists(),
            "{id} kept its secrets"
        );
    }
    let log = std::fs::read_to_string(jobs_dir.join(".watch.log")).unwrap();
    let squeue = log.lines().filter(|l| l.ends_with(" squeue")).count();
    let sacct = log.lines().filter(|l| l.ends_with(" sacct")).count();
    assert!(squeue >= 1 && sacct <= 2 * 2, "{log}");
    let seconds: Vec<u64> = log
        .lines()
        .filter(|l| l.ends_with(" squeue"))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    let span = seconds.last().unwrap() - seconds.first().unwrap();
    assert!(
        squeue as u64 <= span + 2,
        "more than one squeue a second: {log}"
    );
    let job = find(&jobs_json(&test), &failing).clone();
    assert_eq!(
        job["notify"]["results"].as_array().unwrap().len(),
        3,
        "{job:#}"
    );
    assert!(
        TestBox::pids_mentioning(&jobs_dir.join(".watch.sh").to_string_lossy()).is_empty(),
        "the watcher is still running"
    );
}

#[test]
fn an_arrays_end_message_names_the_task_that_failed_and_shows_its_log() {
    let Some((_cluster, test)) = cluster() else {
        return;
    };
    let server = HttpServer::start();
    notifying(&test, &server, "");
    let script = "echo \"task $SLURM_ARRAY_TASK_ID starts\"; sleep 1; \
        if [ \"$SLURM_ARRAY_TASK_ID\" = 1 ]; then echo 'loss diverged at step 7'; exit 3; fi; \
        echo \"task $SLURM_ARRAY_TASK_ID done\"";
    let id = start(
        &test,
        &[
            "--notify", "--array", "0-2", "--name", "sweep", "--", "sh", "-c", script,
        ],
    );
    let hooks = server.wait_for("/hook", 1, Duration::from_secs(90));
    let jobs_dir = test.remote_dir.join("jobs");
    wait_until("the watcher to end", Duration::from_secs(30), || {
        !jobs_dir.join(".watch.pid").exists()
    });
    // One message for the array, not one a task.
    assert_eq!(
        server.wait_for("/hook", 1, Duration::ZERO).len(),
        1,
        "{hooks:?}"
    );
    let message = hooks[0].json();
    assert_eq!(message["id"], id.as_str(), "{message}");
    assert_eq!(message["state"], "failed", "{message}");
    assert_eq!(message["exit"], 3, "{message}");
    assert!(
        message["log_tail"]
            .as_str()
            .unwrap()
            .ends_with("loss diverged at step 7"),
        "{message}"
    );
    let text = message["text"].as_str().unwrap();
    assert!(text.contains("sweep failed (exit 3): task 1 on "), "{text}");
    assert!(
        text.contains("3 tasks: 2 succeeded, 1 failed (task 1: exit 3)"),
        "{text}"
    );
    assert!(
        text.contains("last lines of task 1's log:\ntask 1 starts\nloss diverged at step 7"),
        "{text}"
    );
    assert!(!text.contains("log is empty"), "{text}");
    // The telegram message says the same.
    let telegram = server.wait_for(
        &format!("/bot{TOKEN}/sendMessage"),
        1,
        Duration::from_secs(30),
    );
    assert!(
        telegram[0].json()["text"]
            .as_str()
            .unwrap()
            .contains("task 1: exit 3"),
        "{telegram:?}"
    );
}

#[test]
fn a_job_the_queue_has_forgotten_is_read_from_the_accounting() {
    let Some(cluster) = SlurmCluster::start_with(2) else {
        return;
    };
    let Some(test) = cluster.builder().start() else {
        return;
    };
    // A name with "error" in it is the user's text, not sacct's complaint.
    let out = test
        .run([
            "run",
            "--name",
            "find-errors",
            "--",
            "sh",
            "-c",
            "echo gone; exit 3",
        ])
        .ok();
    let id = out.stdout.trim().to_string();
    let slurm_id = out
        .stderr
        .split("as job ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    wait_until(
        "the queue to forget the job",
        Duration::from_secs(60),
        || {
            let q = cluster.client(&format!("squeue -h -j {slurm_id} -o %T"));
            q.code == Some(1) && q.stderr.contains("Invalid job id")
        },
    );
    let job = find(&jobs_json(&test), &id).clone();
    assert_eq!(job["state"], "failed", "{job:#}");
    assert_eq!(job["exit"], 3, "{job:#}");
    // Kept beside the job: the next listing asks nobody about it.
    let kept =
        std::fs::read_to_string(test.remote_dir.join("jobs").join(&id).join("final")).unwrap();
    assert!(kept.starts_with(&format!("{slurm_id}|")), "{kept}");
    let log = follow(&test, &id, 60);
    assert_eq!(
        (log.code, log.stdout.as_str()),
        (Some(3), "gone\n"),
        "{log:?}"
    );
}

#[test]
fn a_remote_dir_with_percent_signs_keeps_its_logs_where_fenton_reads_them() {
    let Some((_cluster, test)) = cluster() else {
        return;
    };
    // `%j` and `%u` are the job's id and the user to the node writing the log.
    let dir = test.root.join("re%jmote%u%%x");
    std::fs::create_dir_all(&dir).unwrap();
    let config = test.default_config("scheduler = \"slurm\"").replace(
        &format!("remote_dir = {:?}", test.remote_dir),
        &format!("remote_dir = {dir:?}"),
    );
    assert!(config.contains("re%jmote"), "{config}");
    test.write_config(&config);
    let id = start(&test, &["--", "echo", "here"]);
    let log = follow(&test, &id, 60);
    assert_eq!(
        (log.code, log.stdout.as_str()),
        (Some(0), "here\n"),
        "{log:?}"
    );
    assert!(dir.join("jobs").join(&id).join("log").is_file());
    let array = start(
        &test,
        &[
            "--array",
            "0-1",
            "--",
            "sh",
            "-c",
            "echo task $SLURM_ARRAY_TASK_ID",
        ],
    );
    let log = follow(&test, &format!("{array}.1"), 60);
    assert_eq!(
        (log.code, log.stdout.as_str()),
        (Some(0), "task 1\n"),
        "{log:?}"
    );
    // A backslash would change how Slurm reads the whole path: said, and nothing submitted.
    let dir = test.root.join("back\\slash");
    std::fs::create_dir_all(&dir).unwrap();
    test.write_config(&config.replace("re%jmote%u%%x", "back\\\\slash"));
    let out = test.run(["run", "--", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("backslash"), "{out:?}");
    assert_eq!(
        std::fs::read_dir(dir.join("jobs"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
}

/// A login shell that sets, for the user's own use of Slurm, every variable that would change
/// what fenton's sbatch, squeue, sacct, scancel and sinfo do or print.
const HOSTILE_ENV: &str = "\
export SBATCH_OUTPUT=\"$HOME/stolen-%j.out\" SBATCH_ERROR=\"$HOME/stolen-%j.err\"
export SBATCH_OPEN_MODE=truncate SBATCH_JOB_NAME=hijacked SBATCH_ARRAY_INX=0-1
export SBATCH_WAIT=1 SBATCH_DEBUG=3 SBATCH_INPUT=/etc/hostname SLURM_EXIT_ERROR=0
export SQUEUE_STATES=PENDING SQUEUE_PARTITION=big SQUEUE_USERS=nobody SQUEUE_NAMES=other
export SQUEUE_FORMAT='%i %j' SQUEUE_FORMAT2='jobid:5,name:5' SQUEUE_SORT=-i
export SQUEUE_ARRAY=1 SQUEUE_PRIORITY=1 SQUEUE_ACCOUNT=other SQUEUE_QOS=other
export SACCT_FORMAT=JobName%50 SLURM_TIME_FORMAT=relative SLURM_BITSTR_LEN=2
export SINFO_FORMAT='%N' SINFO_PARTITION=big SINFO_SORT=-P
export SCANCEL_STATE=PENDING SCANCEL_USER=nobody SCANCEL_NAME=other SCANCEL_PARTITION=big
export SCANCEL_BATCH=1 SCANCEL_INTERACTIVE=1 SCANCEL_VERBOSE=1 SCANCEL_HURRY=1
export SBATCH_TIMELIMIT=7
";

#[test]
fn the_login_shells_slurm_variables_change_nothing_fenton_relies_on() {
    let Some(cluster) = SlurmCluster::start() else {
        return;
    };
    let Some(test) = cluster.builder().bashrc(HOSTILE_ENV).start() else {
        return;
    };
    let quick = run(
        test.fenton([
            "run",
            "--name",
            "quick",
            "--",
            "sh",
            "-c",
            "echo \"out $SLURM_TIME_FORMAT\"; echo err >&2",
        ]),
        Duration::from_secs(30),
    )
    .ok();
    let quick = quick.stdout.trim().to_string();
    let long = start(
        &test,
        &[
            "--name",
            "long",
            "--",
            "sh",
            "-c",
            "echo started; exec sleep 600",
        ],
    );
    // Both streams land in the log fenton reads, which follows the job to its end; the job
    // keeps the user's own time format.
    let log = follow(&test, &quick, 60);
    assert_eq!(
        (log.code, log.stdout.as_str()),
        (Some(0), "out relative\nerr\n"),
        "{log:?}"
    );
    let file = test.remote_dir.join("jobs").join(&quick).join("log");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "out relative\nerr\n"
    );
    let stolen: Vec<_> = std::fs::read_dir(test.box_home())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("stolen"))
        .collect();
    assert!(stolen.is_empty(), "{stolen:?}");

    let job = wait_state(&test, &quick, "succeeded", 30);
    assert_eq!(job["exit"], 0, "{job:#}");
    assert_eq!(
        job["slurm"]["tasks"],
        serde_json::json!([]),
        "not an array: {job:#}"
    );
    let job = wait_state(&test, &long, "running", 60);
    // A default the user set for their cluster is kept: fenton asked for no time limit.
    assert_eq!(job["slurm"]["time_limit"], "7:00", "{job:#}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let started = job["slurm"]["start"].as_u64().unwrap_or(0);
    assert!(started + 300 > now && started <= now + 5, "{job:#}");
    let name = cluster.client(&format!(
        "squeue -h -j {} -o %j",
        job["slurm"]["job_id"].as_str().unwrap()
    ));
    assert_eq!(name.stdout.trim(), "long", "{name:?}");

    let status = test.run(["status", "--json"]).ok();
    let s: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(s["errors"], serde_json::json!([]), "{s:#}");
    let partitions: Vec<&str> = s["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(partitions, ["debug", "big"], "{s:#}");
    let listed: Vec<&str> = s["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(listed, ["long"], "{s:#}");

    let checks = crate::slurm_status::doctor(&test);
    for id in ["slurm.controller", "slurm.partition", "slurm.submit"] {
        assert_eq!(checks[id].0, "ok", "{id}: {checks:#?}");
    }

    let out = run(test.fenton(["kill", &long]), Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("stopped: cancelled"), "{out:?}");
    let job = wait_state(&test, &long, "cancelled", 30);
    let left = cluster.client(&format!(
        "squeue -h -t all -j {} -o %T",
        job["slurm"]["job_id"].as_str().unwrap()
    ));
    // (Its sleep died of the TERM: Slurm says FAILED, or CANCELLED once it cancels.)
    assert!(
        ["FAILED", "CANCELLED"]
            .iter()
            .any(|s| left.stdout.trim().starts_with(s)),
        "{left:?}"
    );
}

#[test]
fn a_controller_that_does_not_answer_is_said_and_nothing_is_taken_for_an_end() {
    let Some(mut cluster) = SlurmCluster::start() else {
        return;
    };
    let Some(test) = cluster.builder().start() else {
        return;
    };
    let id = start(
        &test,
        &[
            "--name",
            "ticks",
            "--",
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo \"tick $i\"; sleep 0.2; done",
        ],
    );
    let mut follow = Follow::start(&test, &id);
    wait_until("the job's first ticks", Duration::from_secs(60), || {
        follow.lines() >= 3
    });
    cluster.stop_controller();
    let at = follow.lines();

    // kill: refused on one line, the job left alone.
    let out = run(test.fenton(["kill", &id]), Duration::from_secs(90));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(
        out.stderr.contains("did not answer") && out.stderr.contains("nothing was cancelled"),
        "{out:?}"
    );
    // jobs: says so, and shows no state it cannot know.
    let list = run(test.fenton(["jobs", "--json"]), Duration::from_secs(90));
    assert!(list.stderr.contains("did not answer"), "{list:?}");
    let jobs: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let job = find(jobs.as_array().unwrap(), &id);
    assert_eq!(job["state"], "unknown", "{job:#}");
    let table = run(test.fenton(["jobs"]), Duration::from_secs(90));
    assert!(table.stderr.contains("did not answer"), "{table:?}");
    let row = table.stdout.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(row.contains("unknown"), "{table:?}");

    // logs -f: still following, and the job still writing, its lines arriving as they are
    // written (a tick every 0.2 s), not in bursts between squeues that wait for an answer.
    wait_until(
        "more ticks while the controller is down",
        Duration::from_secs(30),
        || follow.lines() >= at + 20,
    );
    let (mut seen, mut since, mut gap) = (follow.lines(), Instant::now(), Duration::ZERO);
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(15) {
        let now = follow.lines();
        if now > seen {
            (seen, since) = (now, Instant::now());
        }
        gap = gap.max(since.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        gap < Duration::from_secs(4),
        "logs -f printed nothing for {gap:?} while the controller was down"
    );
    assert!(!follow.ended(), "logs -f ended while the job ran");

    cluster.start_controller();
    let out = run(test.fenton(["kill", &id]), Duration::from_secs(90));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("cancelled"), "{out:?}");
    let (code, text, stderr) = follow.finish(Duration::from_secs(60));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("ended: cancelled"), "{stderr}");
    // The controller's silence said once, however many squeues it left unanswered.
    let said = "fenton: the Slurm controller does not answer; still following the log";
    assert_eq!(stderr.matches(said).count(), 1, "{stderr}");
    let ticks: Vec<&str> = text.lines().filter(|l| l.starts_with("tick ")).collect();
    let want: Vec<String> = (1..=ticks.len()).map(|i| format!("tick {i}")).collect();
    assert_eq!(ticks, want, "{text}");
}

#[test]
fn kill_says_when_a_cancel_is_not_seen_through() {
    let Some(mut cluster) = SlurmCluster::start() else {
        return;
    };
    let Some(test) = cluster.builder().start() else {
        return;
    };
    // Both jobs on n1, whose slurmd is then wedged: Slurm marks them cancelled, but they
    // stay completing while the node does not answer.
    test.write_config(
        &(test.default_config("scheduler = \"slurm\"\n")
            + "[profile.box.slurm]\nextra = [\"--nodelist=n1\"]\n"),
    );
    let ids: Vec<String> = ["stuck", "blind"]
        .iter()
        .map(|name| {
            start(
                &test,
                &["--name", name, "--", "sh", "-c", "echo up; exec sleep 120"],
            )
        })
        .collect();
    wait_until("both jobs to start", Duration::from_secs(60), || {
        ids.iter()
            .all(|id| test.run(["logs", id]).stdout.contains("up"))
    });
    let slurm_id = |id: &str| {
        find(&jobs_json(&test), id)["slurm"]["job_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let blind = slurm_id(&ids[1]);
    cluster.pause("slurmd n1");

    // Still in the queue once the (shortened) wait is over: said, with what to do.
    let mut kill = test.fenton(["kill", &ids[0], "--grace", "1"]);
    kill.env("FENTON_SLURM_CANCEL_WAIT", "3");
    let out = run(kill, Duration::from_secs(120));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(
        out.stderr
            .contains("is still \"COMPLETING\" 3 s after scancel")
            && out.stderr.contains("fenton kill it again"),
        "{out:?}"
    );

    // The controller gone while fenton waits for the job to leave the queue: nobody can say
    // it ended, and fenton does not.
    let mut kill = test.fenton(["kill", &ids[1], "--grace", "1"]);
    kill.env("FENTON_SLURM_CANCEL_WAIT", "20");
    let killing = std::thread::spawn(move || run(kill, Duration::from_secs(180)));
    wait_until(
        "the second job to be cancelled and completing",
        Duration::from_secs(60),
        || {
            cluster
                .client(&format!("squeue -h -j {blind} -o %T"))
                .stdout
                .contains("COMPLETING")
        },
    );
    cluster.stop_controller();
    let out = killing.join().unwrap();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(
        out.stderr
            .contains("stopped answering squeue after the cancel")
            && out.stderr.contains("whether it ended is not known"),
        "{out:?}"
    );

    // Once the node and the controller are back, both end as cancelled.
    cluster.start_controller();
    cluster.resume("slurmd n1");
    for id in &ids {
        wait_state(&test, id, "cancelled", 120);
    }
}

#[test]
fn a_slurm_job_promises_only_the_messages_the_login_node_sends() {
    let Some((_cluster, test)) = cluster() else {
        return;
    };
    let server = HttpServer::start();
    notifying(&test, &server, "notify_by_default = true\n");
    // Progress cannot be sent from the queue: said at once, the end message still sent.
    let out = test
        .run([
            "run",
            "--notify-every",
            "1m",
            "--name",
            "ticking",
            "--",
            "sh",
            "-c",
            "sleep 1; echo done",
        ])
        .ok();
    let ticking = out.stdout.trim().to_string();
    assert!(
        out.stderr
            .contains("only the end message is sent, not every 1m"),
        "{out:?}"
    );
    assert!(out.stderr.contains("tell you when it ends ("), "{out:?}");
    // A minimum is kept: a job shorter than it sends nothing, and says why.
    let out = test
        .run(["run", "--notify-min", "1h", "--name", "brief", "--", "true"])
        .ok();
    let brief = out.stdout.trim().to_string();
    assert!(!out.stderr.contains("only the end message"), "{out:?}");
    assert!(out.stderr.contains("when it ends, if over 1h"), "{out:?}");

    let hooks = server.wait_for("/hook", 1, Duration::from_secs(90));
    assert_eq!(hooks[0].json()["id"], ticking.as_str(), "{hooks:?}");
    assert_eq!(hooks[0].json()["event"], "end", "{hooks:?}");
    let mut job = serde_json::Value::Null;
    wait_until("brief's end to be skipped", Duration::from_secs(60), || {
        job = find(&jobs_json(&test), &brief).clone();
        job["notify"]["results"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    let results = job["notify"]["results"][0].as_str().unwrap();
    assert!(
        results.starts_with("not sent: it ran ") && results.contains("minimum"),
        "{job:#}"
    );
    assert_eq!(job["notify"]["what"], "end if over 1h", "{job:#}");
    let jobs_dir = test.remote_dir.join("jobs");
    wait_until("the watcher to end", Duration::from_secs(30), || {
        !jobs_dir.join(".watch.pid").exists()
    });
    let all = server.wait_for("/hook", 1, Duration::from_secs(1));
    assert_eq!(all.len(), 1, "only ticking's end: {all:?}");
}
