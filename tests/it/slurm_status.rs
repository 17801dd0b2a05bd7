//! `fenton status`, `doctor` and `jupyter` on a Slurm profile, against a real two-node Slurm
//! (tests/common/slurm.rs) whose login node is the test's sshd box.

use std::time::Duration;

use crate::common::slurm::SlurmCluster;
use crate::common::wait_until;

/// Submits `sleep` as a batch job here (as another of the user's tools would), and waits
/// until Slurm runs it; returns its job id.
fn running_job(cluster: &SlurmCluster, options: &str) -> String {
    let out = cluster.client(&format!(
        "sbatch --parsable --chdir={0} --output={0}/job-%j.out {options} --wrap 'exec sleep 300'",
        cluster.root.display()
    ));
    assert_eq!(out.code, Some(0), "{out:?}");
    let id = out.stdout.trim().to_string();
    wait_until("the job to run", Duration::from_secs(30), || {
        cluster
            .client(&format!("squeue -h -j {id} -o %T"))
            .stdout
            .trim()
            == "RUNNING"
    });
    id
}

#[test]
fn status_shows_both_nodes_their_gpus_and_a_running_job() {
    let Some(cluster) = SlurmCluster::start() else {
        return;
    };
    let Some(test) = cluster.builder().start() else {
        return;
    };
    let id = running_job(&cluster, "--job-name=train --gres=gpu:1 --time=30");
    let out = test.run(["status", "--json"]).ok();
    let s: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(s["scheduler"], "slurm", "{s:#}");
    assert_eq!(s["errors"], serde_json::json!([]), "{s:#}");
    let debug = s["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "debug")
        .expect("partition debug");
    assert_eq!(debug["default"], true, "{s:#}");
    assert_eq!(
        (&debug["nodes_up"], &debug["nodes_down"]),
        (&2.into(), &0.into()),
        "{s:#}"
    );
    assert_eq!(
        (&debug["gpus_total"], &debug["gpus_allocated"]),
        (&4.into(), &1.into()),
        "{s:#}"
    );
    let names: Vec<&str> = debug["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["n1", "n2"], "{s:#}");
    assert!(
        debug["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["gpus_total"] == 2 && n["up"] == true),
        "{s:#}"
    );
    // n3 never got a slurmd: its partition shows it down.
    let big = s["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "big")
        .expect("partition big");
    assert_eq!(
        (&big["nodes_up"], &big["nodes_down"], &big["gpus_total"]),
        (&0.into(), &1.into(), &4.into()),
        "{s:#}"
    );
    let jobs = s["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{s:#}");
    let job = &jobs[0];
    assert_eq!(
        (
            job["id"].as_str(),
            job["name"].as_str(),
            job["state"].as_str()
        ),
        (Some(id.as_str()), Some("train"), Some("RUNNING")),
        "{s:#}"
    );
    let node = job["nodes"].as_str().unwrap().to_string();
    assert!(node == "n1" || node == "n2", "{s:#}");
    assert_eq!(job["time_limit_seconds"], 1800, "{s:#}");
    let left = job["time_left_seconds"].as_u64().unwrap();
    assert!(left > 1700 && left <= 1800, "{s:#}");
    assert_eq!(job["ending_soon"], false, "{s:#}");
    assert!(s["login"]["cpu_count"].as_u64().unwrap() > 0, "{s:#}");

    let out = test.run(["status"]).ok();
    assert!(
        out.stdout
            .contains("debug (default) · no time limit · nodes 2 up, 0 down · GPUs 1 of 4 in use"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("big · no time limit · nodes 0 up, 1 down"),
        "{}",
        out.stdout
    );
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains(&format!("{id} train running on {node}")))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        line.contains("of 30m 0s") && line.contains("left"),
        "{line}"
    );
}

/// `fenton doctor --json`'s checks by id: (status, message, fix).
fn doctor(
    test: &crate::common::TestBox,
) -> std::collections::BTreeMap<String, (String, String, String)> {
    let out = test.run(["doctor", "--json"]);
    let report: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or("").to_string();
            (text("id"), (text("status"), text("message"), text("fix")))
        })
        .collect()
}

#[test]
fn doctor_passes_on_a_good_profile_and_names_the_fix_for_a_bad_one() {
    let Some(cluster) = SlurmCluster::start() else {
        return;
    };
    let Some(test) = cluster
        .builder()
        .profile("[profile.box.slurm]\npartition = \"debug\"\ngpus = 1\ntime = \"30m\"")
        .start()
    else {
        return;
    };
    let checks = doctor(&test);
    for id in [
        "slurm.commands",
        "slurm.controller",
        "slurm.partition",
        "slurm.submit",
        "slurm.gpus",
    ] {
        assert_eq!(checks[id].0, "ok", "{id}: {checks:#?}");
    }
    assert!(
        checks["slurm.gpus"].1.contains("4 GPU(s) on 2 node(s)"),
        "{checks:#?}"
    );
    assert!(
        checks["slurm.submit"].1.contains("--gpus=1")
            && checks["slurm.submit"].1.contains("in partition debug"),
        "{checks:#?}"
    );
    // The login node has no GPU of its own, and that is no warning on a cluster.
    assert_eq!(checks["box.gpu"].0, "ok", "{checks:#?}");

    let config = test.config.clone();
    let good = std::fs::read_to_string(&config).unwrap();
    test.write_config(&good.replace("partition = \"debug\"", "partition = \"nope\""));
    let checks = doctor(&test);
    let (status, message, fix) = &checks["slurm.partition"];
    assert_eq!(status, "problem", "{checks:#?}");
    assert!(
        message.contains("\"nope\" does not exist") && message.contains("debug, big"),
        "{message}"
    );
    assert!(
        fix.contains("partition = \"debug\"") && fix.contains("[profile.box.slurm]"),
        "{fix}"
    );
    let (status, message, fix) = &checks["slurm.submit"];
    assert_eq!(status, "problem", "{checks:#?}");
    assert!(
        message.contains("invalid partition specified: nope"),
        "{message}"
    );
    assert!(fix.contains("as `partition = "), "{fix}");
    assert_eq!(checks["slurm.gpus"].0, "skipped", "{checks:#?}");

    // A GPU type the partition does not have.
    test.write_config(&good.replace("gpus = 1", "gpus = \"a100:1\""));
    let checks = doctor(&test);
    let (status, message, fix) = &checks["slurm.gpus"];
    assert_eq!(status, "problem", "{checks:#?}");
    assert!(message.contains("no GPUs of type \"a100\""), "{message}");
    assert!(fix.contains("gpus = N"), "{fix}");
    assert_eq!(checks["slurm.submit"].0, "problem", "{checks:#?}");
    // The partition that never has a node up: its GPUs cannot take a job.
    test.write_config(&good.replace("partition = \"debug\"", "partition = \"big\""));
    let checks = doctor(&test);
    assert_eq!(checks["slurm.gpus"].0, "warning", "{checks:#?}");
    assert!(
        checks["slurm.gpus"].1.contains("none can take a job now"),
        "{checks:#?}"
    );
}
