//! `fenton jobs` on a Slurm profile with a long history, against a real Slurm: the latest
//! jobs and every one not over, each running job's last log line, the same table from the
//! kept lines, and new ids in a second already taken.

use crate::common::slurm::SlurmCluster;
use crate::common::{wait_until, Out};
use crate::jobs::{find, jobs_json, table_without_times};
use std::time::Duration;

/// The ids of a `fenton jobs` table.
fn ids(out: &Out) -> Vec<String> {
    out.stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_slurm_list_shows_the_latest_jobs_and_every_running_one() {
    let Some(cluster) = SlurmCluster::start() else {
        return;
    };
    let Some(test) = cluster.builder().start() else {
        return;
    };
    // Two running jobs, older than the 25 over below. The first tails the other's log, as a
    // job watching others would: tail's header for that log is only a line of this one's.
    let jobs = test.remote_dir.join("jobs");
    let start = |script: &str| -> String {
        let out = test.run(["run", "--", "sh", "-c", script]).ok();
        out.stdout.trim().to_string()
    };
    let next = test.remote_dir.join("next");
    let first = start(&format!(
        "echo early; while [ ! -s '{n}' ]; do sleep 0.1; done; \
         printf '==> %s/%s/log <==\\n' '{j}' \"$(cat '{n}')\"; echo its-last; sleep 300",
        n = next.display(),
        j = jobs.display(),
    ));
    let other = start("printf 'step 1\\rstep 2\\n'; sleep 300");
    std::fs::write(&next, format!("{other}\n")).unwrap();
    for id in [&first, &other] {
        wait_until(
            &format!("job {id} to run and print"),
            Duration::from_secs(60),
            || {
                let job = find(&jobs_json(&test), id).clone();
                job["state"] == "running"
                    && ["its-last", "step 2"].contains(&job["last_line"].as_str().unwrap_or(""))
            },
        );
    }
    // 25 over, as the listing leaves a job sacct said was over.
    let old = |i: usize| format!("20991231-000000-{i:02}");
    for i in 1..=25 {
        let d = jobs.join(old(i));
        std::fs::create_dir(&d).unwrap();
        for (file, text) in [
            ("name", format!("old-{i}")),
            ("cmd", "'true'".into()),
            ("started", "4102358400".into()),
            ("slurm", format!("{}", 90000 + i)),
            (
                "final",
                format!(
                    "{}|COMPLETED|0:0|00:00:01|4102358401|4102358402|n1",
                    90000 + i
                ),
            ),
            ("log", format!("step {i}")),
        ] {
            std::fs::write(d.join(file), format!("{text}\n")).unwrap();
        }
    }
    // The one file older versions kept every job's lines in.
    std::fs::write(jobs.join(".slurm-listed"), "job x\nend\n").unwrap();

    let latest: Vec<String> = [first.clone(), other.clone()]
        .into_iter()
        .chain((6..=25).map(old))
        .collect();
    let listed = test.run(["jobs"]).ok();
    assert_eq!(ids(&listed), latest, "{listed:?}");
    assert!(
        listed.stderr.contains("5 older job(s) not shown"),
        "{listed:?}"
    );
    assert!(!jobs.join(".slurm-listed").exists());
    let row = |out: &Out, id: &str| -> String {
        out.stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_default()
            .to_string()
    };
    let r = row(&listed, &first);
    assert!(
        r.contains("running") && r.ends_with("its-last"),
        "{listed:?}"
    );
    assert!(row(&listed, &other).ends_with("step 2"), "{listed:?}");
    assert!(row(&listed, &old(25)).contains("succeeded"), "{listed:?}");
    assert!(row(&listed, &old(25)).ends_with("step 25"), "{listed:?}");

    // Again from the kept lines, and with the queue asked at the start or after the files
    // are read: the same table.
    let again = test.run(["jobs"]).ok();
    let table = table_without_times(&listed.stdout);
    assert_eq!(table_without_times(&again.stdout), table);
    assert!(jobs.join(old(25)).join("listed").exists());
    let hint = jobs.join(".slurm-active");
    assert!(hint.exists(), "two jobs are running");
    std::fs::remove_file(&hint).unwrap();
    let late = test.run(["jobs"]).ok();
    assert_eq!(table_without_times(&late.stdout), table);
    assert!(hint.exists());

    let all = test.run(["jobs", "--all"]).ok();
    assert_eq!(ids(&all).len(), 27, "{all:?}");
    assert_eq!(jobs_json(&test).len(), 27);
    let one = test.run(["jobs", "--last", "1"]).ok();
    assert_eq!(ids(&one), [first.clone(), other.clone(), old(25)]);
    assert!(one.stderr.contains("24 older job(s)"), "{one:?}");

    // Kept lines cut short by a full disk are made again, never shown half.
    let kept = jobs.join(old(25)).join("listed");
    std::fs::write(&kept, format!("job {}\nname old-25\n", old(25))).unwrap();
    let out = test.run(["jobs", "--last", "1"]).ok();
    assert!(row(&out, &old(25)).ends_with("step 25"), "{out:?}");
    assert!(std::fs::read_to_string(&kept).unwrap().ends_with("end\n"));

    // Once nothing runs, the queue is not asked at the start any more.
    for id in [&first, &other] {
        test.run(["kill", id, "--grace", "0"]).ok();
    }
    for id in [&first, &other] {
        wait_until(
            &format!("job {id} to be over"),
            Duration::from_secs(60),
            || find(&jobs_json(&test), id)["state"] == "cancelled",
        );
    }
    wait_until(
        "the listing to find nothing running",
        Duration::from_secs(30),
        || {
            test.run(["jobs"]).ok();
            !hint.exists()
        },
    );
}

#[test]
fn a_run_in_a_second_whose_ids_are_taken_gets_the_next_one() {
    let Some(cluster) = SlurmCluster::start() else {
        return;
    };
    let Some(test) = cluster.builder().start() else {
        return;
    };
    let jobs = test.remote_dir.join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    // Ids taken, with a gap, in each of the next seconds (the login node is this machine).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stamp = |t: u64| {
        let out = std::process::Command::new("date")
            .args(["-u", "-d", &format!("@{t}"), "+%Y%m%d-%H%M%S"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let stamps: Vec<String> = (now..now + 30).map(stamp).collect();
    for s in &stamps {
        for n in ["01", "02", "07"] {
            std::fs::create_dir(jobs.join(format!("{s}-{n}"))).unwrap();
        }
    }
    let a = test.run(["run", "-q", "--", "true"]).ok();
    let b = test.run(["run", "-q", "--", "true"]).ok();
    let (a, b) = (a.stdout.trim().to_string(), b.stdout.trim().to_string());
    let next = |id: &str| -> bool {
        stamps
            .iter()
            .any(|s| id == format!("{s}-08") || id == format!("{s}-09"))
    };
    assert!(next(&a) && next(&b) && a != b, "{a} {b}");
    assert!(!jobs.join(format!("{}-03", &a[..15])).exists());
}
