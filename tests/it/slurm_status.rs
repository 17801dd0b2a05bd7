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
pub(crate) fn doctor(
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

/// The Jupyter that scripts/test installs.
fn jupyter() -> std::path::PathBuf {
    std::path::Path::new(crate::common::ROOT).join("target/jupyter-venv/bin/jupyter")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The HTTP status of GET /api/status at a local port, with or without a token.
fn api_status(port: u16, token: Option<&str>) -> Option<u16> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut request = agent.get(format!("http://127.0.0.1:{port}/api/status"));
    if let Some(token) = token {
        request = request.header("Authorization", format!("token {token}"));
    }
    request.call().ok().map(|r| r.status().as_u16())
}

/// A cluster whose login node runs the venv's `jupyter server` as a Slurm job. The login
/// node reaches the nodes (this host) by ssh with `node_ssh` (the test box's own key and
/// port, through an ssh config for every host), as a site's login node does with a key of
/// the user's.
struct Notebook {
    test: crate::common::TestBox,
    local_port: u16,
    cluster: SlurmCluster,
}

impl Notebook {
    fn start(extra: &str, reach_nodes: bool) -> Option<Notebook> {
        Notebook::start_with(extra, reach_nodes, &[])
    }

    /// With `sshd_options` in the login node's sshd_config.
    fn start_with(extra: &str, reach_nodes: bool, sshd_options: &[&str]) -> Option<Notebook> {
        if !crate::common::available(
            "jupyter-server (scripts/test installs it)",
            jupyter().is_file(),
        ) {
            return None;
        }
        let cluster = SlurmCluster::start()?;
        let test = sshd_options
            .iter()
            .fold(cluster.builder(), |b, o| b.sshd_option(o))
            .start()?;
        let nodes = test.root.join("node_ssh_config");
        let login = std::fs::read_to_string(test.sshd.ssh_config()).unwrap();
        std::fs::write(&nodes, login.replace("Host fenton-sandbox", "Host *")).unwrap();
        // Without a way in, the hop's ssh meets a port where nothing listens.
        let node_ssh = if reach_nodes {
            format!("[\"-F\", {:?}]", nodes.display())
        } else {
            format!(
                "[\"-F\", {:?}, \"-p\", \"{}\"]",
                nodes.display(),
                free_port()
            )
        };
        let (remote_port, local_port) = (free_port(), free_port());
        let jr = test.root.join("jupyter-home");
        let nb = test.root.join("notebooks");
        std::fs::create_dir_all(&nb).unwrap();
        let setup = format!(
            "export JUPYTER_RUNTIME_DIR={0}/run JUPYTER_DATA_DIR={0}/data JUPYTER_CONFIG_DIR={0}/config",
            jr.display()
        );
        test.write_config(&test.default_config(&format!(
            "scheduler = \"slurm\"\n[profile.box.slurm]\ntime = \"10m\"\n{extra}\n[profile.box.jupyter]\ncommand = \"{} server\"\nsetup = {setup:?}\ndir = {:?}\nremote_port = {remote_port}\nlocal_port = {local_port}\nstart_timeout = 60\nnode_ssh_options = {node_ssh}\n",
            jupyter().display(),
            nb.display()
        )));
        Some(Notebook {
            test,
            local_port,
            cluster,
        })
    }

    fn run(&self, args: &[&str]) -> crate::common::Out {
        crate::common::run(self.test.fenton(args), Duration::from_secs(120))
    }

    fn state(&self, file: &str) -> std::path::PathBuf {
        self.test.remote_dir.join("jupyter-slurm").join(file)
    }

    fn squeue(&self, job: &str) -> String {
        self.cluster
            .client(&format!("squeue -h -j {job} -o %T 2>/dev/null"))
            .stdout
            .trim()
            .to_string()
    }
}

#[test]
fn jupyter_on_a_node_answers_through_the_login_node_and_stop_cancels_its_job() {
    let Some(nb) = Notebook::start("", true) else {
        return;
    };
    let start = nb.run(&["jupyter", "start", "--no-browser"]).ok();
    assert!(
        start
            .stdout
            .contains(&format!("http://127.0.0.1:{}/", nb.local_port)),
        "{start:?}"
    );
    assert!(
        start.stderr.contains("listens on n1's loopback only")
            || start.stderr.contains("listens on n2's loopback only"),
        "{start:?}"
    );
    let token = std::fs::read_to_string(nb.state("token")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(nb.state("token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        api_status(nb.local_port, Some(&token)),
        Some(200),
        "{start:?}"
    );
    assert_eq!(api_status(nb.local_port, None), Some(403));
    // The token is on no command line here, on the login node or on the node (one machine).
    assert_eq!(
        crate::common::TestBox::pids_mentioning(&token),
        Vec::<i32>::new()
    );
    assert!(!start.stdout.contains(&token) && !start.stderr.contains(&token));

    let job = std::fs::read_to_string(nb.state("job"))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(nb.squeue(&job), "RUNNING");
    let status = nb.run(&["jupyter", "status"]).ok();
    assert!(
        status
            .stdout
            .contains(&format!("running in Slurm job {job}")),
        "{status:?}"
    );
    assert!(
        status
            .stdout
            .contains("loopback only, reached by an ssh hop"),
        "{status:?}"
    );
    assert!(status.stdout.contains("left of 10m 0s"), "{status:?}");
    assert!(
        status
            .stdout
            .contains(&format!("url:       http://127.0.0.1:{}/", nb.local_port)),
        "{status:?}"
    );
    let checks = doctor(&nb.test);
    assert_eq!(checks["slurm.jupyter"].0, "ok", "{checks:#?}");
    assert!(
        checks["slurm.jupyter"].1.contains("loopback"),
        "{checks:#?}"
    );
    // A second start finds the same server.
    let again = nb.run(&["jupyter", "start", "--no-browser"]).ok();
    assert!(
        again.stderr.contains(&format!("job {job} on"))
            && again.stderr.contains("was already running"),
        "{again:?}"
    );

    let hop = nb.state("hop.sock").to_string_lossy().into_owned();
    assert!(
        !crate::common::TestBox::pids_mentioning(&hop).is_empty(),
        "no hop runs"
    );
    let stop = nb.run(&["jupyter", "stop"]).ok();
    assert!(
        stop.stderr
            .contains(&format!("cancelled Jupyter's Slurm job {job}")),
        "{stop:?}"
    );
    let left = nb.squeue(&job);
    assert!(
        left.is_empty() || left.starts_with("CANCELLED"),
        "squeue still lists job {job}: {left}"
    );
    wait_until("the hop to end", Duration::from_secs(10), || {
        crate::common::TestBox::pids_mentioning(&hop).is_empty()
    });
    assert_eq!(
        api_status(nb.local_port, None),
        None,
        "the forward is still up"
    );
    assert!(!nb.state("token").exists());
    let status = nb.run(&["jupyter", "status"]);
    assert_eq!(status.code, Some(1), "{status:?}");
}

/// The URL saved for a notebook on a node keeps working after the shared connection is
/// killed: fenton's forwarder holds the local port, opens the connection again and makes its
/// forward to the hop's socket again, with no fenton command between.
#[test]
fn the_saved_url_of_a_notebook_on_a_node_answers_again_after_a_killed_master() {
    let Some(nb) = Notebook::start("", true) else {
        return;
    };
    nb.run(&["jupyter", "start", "--no-browser"]).ok();
    let url = nb.run(&["jupyter", "url"]).ok().stdout;
    let token = std::fs::read_to_string(nb.state("token")).unwrap();
    let local = nb.local_port;
    assert_eq!(api_status(local, Some(&token)), Some(200));
    assert_eq!(nb.test.forwarders().len(), 1, "one forwarder holds it");

    let masters = nb.test.masters();
    assert!(!masters.is_empty());
    for pid in masters {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    wait_until("the master to die", Duration::from_secs(5), || {
        nb.test.masters().is_empty()
    });
    // Twenty requests at once, as a browser tab's reload sends: one handshake for all.
    let before = nb.test.sshd.accepted();
    let answers: Vec<Option<u16>> = std::thread::scope(|s| {
        let asks: Vec<_> = (0..20)
            .map(|_| s.spawn(|| api_status(local, Some(&token))))
            .collect();
        asks.into_iter().map(|a| a.join().unwrap()).collect()
    });
    assert_eq!(answers, vec![Some(200); 20]);
    assert_eq!(api_status(local, None), Some(403));
    assert_eq!(nb.test.sshd.accepted(), before + 1, "one new handshake");
    assert_eq!(nb.run(&["jupyter", "url"]).ok().stdout, url);

    // A file larger than any buffer on the way comes through whole.
    let big: Vec<u8> = (0..8 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(nb.test.root.join("notebooks/big.bin"), &big).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let got = agent
        .get(format!("http://127.0.0.1:{local}/files/big.bin"))
        .header("Authorization", format!("token {token}"))
        .call()
        .unwrap()
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap();
    assert!(
        got == big,
        "{} bytes came, {} were sent",
        got.len(),
        big.len()
    );

    let hop = nb.state("hop.sock").to_string_lossy().into_owned();
    let list = nb.run(&["tunnel", "list"]).ok();
    assert!(
        list.stdout
            .contains(&format!("127.0.0.1:{local} -> {hop} (jupyter)\tup\t")),
        "{list:?}"
    );
    let status = nb.run(&["jupyter", "status"]).ok();
    assert!(
        status
            .stdout
            .contains(&format!("url:       http://127.0.0.1:{local}/")),
        "{status:?}"
    );

    nb.run(&["jupyter", "stop"]).ok();
    assert_eq!(api_status(local, None), None, "the forward is still up");
    wait_until("the forwarder to stop", Duration::from_secs(5), || {
        nb.test.forwarders().is_empty()
    });
}

/// A login node whose sshd forbids forwarding to Unix sockets is named as the reason at
/// once, not as a server that did not answer within the start timeout.
#[test]
fn a_login_node_that_forbids_forwarding_to_sockets_is_named() {
    let Some(nb) = Notebook::start_with("", true, &["AllowStreamLocalForwarding no"]) else {
        return;
    };
    let out = nb.run(&["jupyter", "start", "--no-browser"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("forbids forwarding to Unix sockets (AllowStreamLocalForwarding")
            && !out.stderr.contains("did not answer"),
        "{out:?}"
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out:?}");
    nb.run(&["jupyter", "stop"]).ok();
    wait_until("the forwarder to stop", Duration::from_secs(5), || {
        nb.test.forwarders().is_empty()
    });
}

#[test]
fn without_ssh_to_the_node_jupyter_listens_on_its_address_and_says_so() {
    let Some(nb) = Notebook::start("", false) else {
        return;
    };
    let start = nb.run(&["jupyter", "start", "--no-browser"]).ok();
    assert!(
        start
            .stderr
            .contains("address 127.0.0.1: anyone on the cluster's network can reach it"),
        "{start:?}"
    );
    let token = std::fs::read_to_string(nb.state("token")).unwrap();
    assert_eq!(
        api_status(nb.local_port, Some(&token)),
        Some(200),
        "{start:?}"
    );
    assert_eq!(api_status(nb.local_port, None), Some(403));
    let status = nb.run(&["jupyter", "status"]).ok();
    assert!(
        status.stdout.contains("anyone on the cluster's network"),
        "{status:?}"
    );
    let checks = doctor(&nb.test);
    let (state, message, fix) = &checks["slurm.jupyter"];
    assert_eq!(state, "warning", "{checks:#?}");
    assert!(message.contains("could not ssh to n"), "{message}");
    assert!(fix.contains("jupyter.node_ssh_options"), "{fix}");
    let job = std::fs::read_to_string(nb.state("job"))
        .unwrap()
        .trim()
        .to_string();
    nb.run(&["jupyter", "stop"]).ok();
    let left = nb.squeue(&job);
    assert!(left.is_empty() || left.starts_with("CANCELLED"), "{left}");
}

#[test]
fn a_notebook_that_cannot_leave_the_queue_is_cancelled_after_queue_timeout() {
    // Partition big's only node never comes up.
    let Some(nb) = Notebook::start("partition = \"big\"", true) else {
        return;
    };
    let config = std::fs::read_to_string(&nb.test.config).unwrap();
    nb.test.write_config(&config.replace(
        "start_timeout = 60",
        "start_timeout = 60\nqueue_timeout = 4",
    ));
    let start = nb.run(&["jupyter", "start", "--no-browser"]);
    assert_eq!(start.code, Some(1), "{start:?}");
    assert!(
        start
            .stderr
            .contains("past jupyter.queue_timeout (4 s), so fenton cancelled it"),
        "{start:?}"
    );
    let jobs = nb.cluster.client("squeue -h -o '%i %T'").stdout;
    assert!(jobs.trim().is_empty(), "{jobs}");
}

#[test]
fn a_notebook_near_its_time_limit_warns_and_notifies() {
    let Some(nb) = Notebook::start("", true) else {
        return;
    };
    let server = crate::common::http::HttpServer::start();
    let config = std::fs::read_to_string(&nb.test.config).unwrap();
    // A one-minute allocation is within its last minute from the start.
    nb.test.write_config(&format!(
        "{}\n[notify.ntfy]\nurl = {:?}\n",
        config.replace("time = \"10m\"", "time = \"1m\""),
        server.url("/topic")
    ));
    nb.run(&["jupyter", "start", "--no-browser"]).ok();
    let sent = server.wait_for("/topic", 1, Duration::from_secs(30));
    let text = &sent[0].body;
    assert!(
        text.contains("ends in about 1 min") && text.contains("save your notebooks"),
        "{text}"
    );
    assert!(
        sent[0]
            .header("title")
            .is_some_and(|t| t.contains("Jupyter on n")),
        "{sent:#?}"
    );
    let status = nb.run(&["jupyter", "status"]).ok();
    assert!(
        status.stdout.contains("warned:") && status.stdout.contains("ends soon"),
        "{status:?}"
    );
    // Once, not at every look of the watcher.
    std::thread::sleep(Duration::from_secs(16));
    assert_eq!(server.requests().len(), 1, "{:#?}", server.requests());
    nb.run(&["jupyter", "stop"]).ok();
}

#[test]
fn status_all_shows_a_cluster_beside_a_box() {
    let Some(cluster) = SlurmCluster::start() else {
        return;
    };
    let Some(test) = cluster.builder().start() else {
        return;
    };
    let config = std::fs::read_to_string(&test.config).unwrap();
    test.write_config(&format!(
        "{config}\n[profile.plain]\nhost = \"fenton-sandbox\"\nssh_config = {:?}\nremote_dir = {:?}\nconnect_timeout = 5\n",
        test.sshd.ssh_config(),
        test.remote_dir
    ));
    let out = test.run(["status", "--all", "--json"]).ok();
    let all: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let by = |name: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|a| a["profile"] == name)
            .unwrap_or_else(|| panic!("{name}: {all:#}"))
            .clone()
    };
    let (slurm, plain) = (by("box"), by("plain"));
    assert_eq!(slurm["status"]["scheduler"], "slurm", "{all:#}");
    assert_eq!(slurm["status"]["partitions"][0]["name"], "debug", "{all:#}");
    assert!(
        plain["status"]["kernel"].is_string() && plain["status"].get("scheduler").is_none(),
        "{all:#}"
    );
    let out = test.run(["status", "--all"]).ok();
    assert!(
        out.stdout.contains("[box] ") && out.stdout.contains("Slurm login node"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("debug (default)") && out.stdout.contains("[plain] "),
        "{}",
        out.stdout
    );
}

#[test]
fn a_chatty_login_shell_is_not_taken_for_the_scheduler() {
    let Some(cluster) = SlurmCluster::start() else {
        return;
    };
    // Lines shaped like sinfo's and squeue's, and like the script's own sections.
    let Some(test) = cluster
        .builder()
        .bashrc("echo 'ghost|debug|idle|0/4/0/4|gpu:8|gpu:0|none'\necho '@@fenton:squeue'\necho '99|RUNNING|debug|0:01|1:00|0:59|ghost|0|None|N/A|fake'\necho 'welcome' >&2\n")
        .start()
    else {
        return;
    };
    let out = test.run(["status", "--json"]).ok();
    let s: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(s["errors"], serde_json::json!([]), "{s:#}");
    assert!(
        !out.stdout.contains("ghost") && !out.stdout.contains("fake"),
        "{s:#}"
    );
    assert_eq!(s["partitions"][0]["gpus_total"], 4, "{s:#}");
    assert_eq!(s["jobs"], serde_json::json!([]), "{s:#}");
    let checks = doctor(&test);
    assert_eq!(checks["slurm.submit"].0, "ok", "{checks:#?}");
}
