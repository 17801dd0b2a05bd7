//! A Slurm cluster that keeps its accounting as real sites do, in slurmdbd over MariaDB
//! (tests/common/slurm.rs, `start_with_accounting`): `fenton doctor` passes on it, and jobs
//! the queue has forgotten read from plain `sacct` (there is no job completion file for
//! `sacct -c` to fall back on) as they ended: an exit code (where `logs -f` ends too), a
//! job killed for going over its memory, an array's tasks.

use std::time::Duration;

use crate::common::slurm::SlurmCluster;
use crate::common::{run, wait_until};
use crate::jobs::{find, jobs_json};

/// fenton's id and Slurm's, from `fenton run`'s output.
fn submitted(out: &crate::common::Out) -> (String, String) {
    let slurm_id = out
        .stderr
        .split("as job ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no Slurm job id in {out:?}"))
        .to_string();
    (out.stdout.trim().to_string(), slurm_id)
}

#[test]
fn with_slurmdbd_doctor_passes_and_ended_jobs_read_from_sacct() {
    // The queue forgets a finished job after 2 s: then only the accounting knows it.
    let Some(cluster) = SlurmCluster::start_with_accounting(2) else {
        return;
    };
    let Some(test) = cluster.builder().start() else {
        return;
    };
    let checks = crate::slurm_status::doctor(&test);
    for id in [
        "slurm.commands",
        "slurm.controller",
        "slurm.partition",
        "slurm.submit",
        "slurm.gpus",
    ] {
        assert_eq!(checks[id].0, "ok", "{id}: {checks:#?}");
    }

    let failed = submitted(
        &test
            .run([
                "run",
                "--name",
                "three",
                "--",
                "sh",
                "-c",
                "echo three; exit 3",
            ])
            .ok(),
    );
    // 64 MiB written (so it is resident) under a 16 MiB limit: the 1 s sample kills it.
    let hungry = submitted(
        &test
            .run([
                "run",
                "--mem",
                "16M",
                "--name",
                "hungry",
                "--",
                "python3",
                "-c",
                "import time; x = b'x' * (64 << 20); time.sleep(30)",
            ])
            .ok(),
    );
    let array = submitted(
        &test
            .run([
                "run",
                "--array",
                "0-1",
                "--name",
                "pair",
                "--",
                "sh",
                "-c",
                "exit $SLURM_ARRAY_TASK_ID",
            ])
            .ok(),
    );
    for (_, slurm_id) in [&failed, &hungry, &array] {
        wait_until(
            &format!("the queue to forget job {slurm_id}"),
            Duration::from_secs(90),
            || {
                let q = cluster.client(&format!("squeue -h -j {slurm_id} -o %T"));
                q.code == Some(1) && q.stderr.contains("Invalid job id")
            },
        );
    }
    // What fenton read came from slurmdbd: `sacct -c`, its fallback, has no job
    // completion file to read here, and sacct itself has the jobs.
    let conf = std::fs::read_to_string(&cluster.conf).unwrap();
    assert!(!conf.contains("JobComp"), "{conf}");
    let fallback = cluster.client(&format!("sacct -c -P -n -j {} -o JobID,State", failed.1));
    assert!(
        fallback.stdout.is_empty() && fallback.stderr.contains("job completion is disabled"),
        "{fallback:?}"
    );
    // (slurmctld sends a job's end to slurmdbd a moment after it ends.)
    let line = |out: &crate::common::Out, id: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{id}|")))
            .map(str::to_string)
    };
    let mut acct = cluster.client("true");
    wait_until(
        "sacct to have both jobs ended",
        Duration::from_secs(30),
        || {
            acct = cluster.client(&format!(
                "sacct -X -P -n -j {},{} -o JobID,State,ExitCode",
                failed.1, hungry.1
            ));
            [&failed.1, &hungry.1]
                .iter()
                .all(|id| line(&acct, id).is_some_and(|l| l.contains("|FAILED|")))
        },
    );
    assert_eq!(
        line(&acct, &failed.1),
        Some(format!("{}|FAILED|3:0", failed.1)),
        "{acct:?}"
    );
    let jobs = jobs_json(&test);
    let job = find(&jobs, &failed.0);
    assert_eq!(job["state"], "failed", "{job:#}");
    assert_eq!(job["exit"], 3, "{job:#}");
    let log = run(
        test.fenton(["logs", &failed.0, "-f"]),
        Duration::from_secs(60),
    );
    assert_eq!(
        (log.code, log.stdout.as_str()),
        (Some(3), "three\n"),
        "{log:?}"
    );
    // Without cgroups, Slurm kills a job over its memory from its 1 s sample and records
    // no OUT_OF_MEMORY (`FAILED|0:9`, its batch step `CANCELLED by 0`): fenton says failed
    // by signal 9, and the log's last line says why.
    let job = find(&jobs, &hungry.0);
    assert_eq!(
        (&job["state"], &job["exit"]),
        (&"failed".into(), &137.into()),
        "{job:#} (sacct: {acct:?})"
    );
    // (`StepId=3.batch exceeded memory limit (…), being killed`, or after it `Exceeded
    // job memory limit`.)
    let why = job["last_line"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        why.contains("exceeded") && why.contains("memory limit"),
        "{job:#}"
    );
    // An array's tasks, which slurmdbd names `4_0`, `4_1`, and `sacct -c` only by their
    // own job ids.
    let job = find(&jobs, &array.0);
    let mut tasks: Vec<(String, String, i64)> = job["slurm"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let text = |k: &str| t[k].as_str().unwrap_or_default().to_string();
            (
                text("index"),
                text("state"),
                t["exit"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    tasks.sort();
    assert_eq!(
        tasks,
        [
            ("0".into(), "succeeded".into(), 0),
            ("1".into(), "failed".into(), 1)
        ],
        "{job:#}"
    );
    assert_eq!(job["state"], "failed", "{job:#}");
}
