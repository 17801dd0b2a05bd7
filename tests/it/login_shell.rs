//! A box whose login shell talks: a `.bashrc` that prints on stdout and stderr (a banner, a
//! conda or locale warning) must not break the scripts fenton sends, which parse what the box
//! answers.

use crate::common::http::HttpServer;
use crate::common::TestBox;

#[test]
fn a_chatty_bashrc_does_not_confuse_fenton() {
    let Some(test) = TestBox::builder()
        .bashrc("echo 'Welcome to the box!'\necho 'bash: warning: setlocale: LC_ALL: cannot change locale' >&2\n")
        .start()
    else {
        return;
    };
    // The banner really is there, for every command, as ssh shows it.
    let out = test.run(["exec", "--", "echo", "hi"]).ok();
    assert_eq!(out.stdout, "Welcome to the box!\nhi\n");

    let out = test.run(["status", "--json"]).ok();
    let status: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        status["memory"]["total_mib"].as_u64().unwrap() > 0,
        "{status}"
    );

    let out = test
        .run(["run", "--name", "quiet", "--", "echo", "done"])
        .ok();
    let id = out.stdout.trim();
    assert!(
        id.chars().all(|c| c.is_ascii_digit() || c == '-'),
        "{out:?}"
    );
    let out = test.run(["logs", id, "-f"]).ok();
    assert_eq!(out.stdout, "done\n");
    let out = test.run(["jobs", "--json"]).ok();
    let jobs: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(jobs[0]["state"], "succeeded", "{jobs}");

    let out = test.run(["jupyter", "status"]);
    assert!(out.stdout.contains("not running"), "{out:?}");
    assert!(!out.stderr.contains("Welcome"), "{out:?}");

    let server = HttpServer::start();
    let mut config = std::fs::read_to_string(&test.config).unwrap();
    config.push_str(&format!(
        "\n[notify.webhook]\nurl = {:?}\n",
        server.url("/hook")
    ));
    test.write_config(&config);
    let out = test.run(["notify", "test"]).ok();
    assert_eq!(out.stdout, "webhook ok: HTTP 200\n");

    let out = test.run(["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let check = |id: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap()
    };
    for id in ["box.tmux", "box.remote_dir", "box.disk"] {
        assert_eq!(check(id)["status"], "ok", "{}", check(id));
    }

    let out = test.run(["run", "--dir", "/no/such/dir", "--", "true"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot enter /no/such/dir"),
        "{}",
        out.stderr
    );
}

/// A box whose login shell runs `bashrc` first, for every command.
fn box_with_bashrc(bashrc: &str) -> Option<TestBox> {
    TestBox::builder().bashrc(bashrc).start()
}

#[test]
fn banners_shaped_like_fentons_own_answers_are_not_taken_for_them() {
    // A line of each of fenton's formats: jobs, logs, status, doctor, jupyter, run, marks.
    let banner = [
        "job queue: empty (slurm)",
        "now 99",
        "job fake",
        "name fake",
        "started 1",
        "end",
        "fenton-offset 99 fake",
        "@@fenton:hello 1",
        "@@fenton:tmux",
        "1|1|1|fake",
        "@@fenton:end",
        "@@fenton-0123456789abcdef01234567",
        "tmux=fake 9.9",
        "done=1",
        "running",
        "pid 1",
        "port 1",
        "log-begin",
        "20991231-000000-01",
        "tmux",
    ];
    let mut bashrc: String = banner.iter().map(|l| format!("echo '{l}'\n")).collect();
    // And one without a newline, as a window-title escape or `echo -n` leaves.
    bashrc.push_str("printf 'no newline'\n");
    let Some(test) = box_with_bashrc(&bashrc) else {
        return;
    };
    let out = test.run(["jobs", "--json"]).ok();
    assert_eq!(out.stdout.trim(), "[]", "a phantom job: {out:#?}");
    let out = test.run(["jobs"]).ok();
    assert!(out.stderr.contains("no jobs"), "{out:#?}");

    let out = test.run(["run", "--", "echo", "hi"]).ok();
    let id = out.stdout.trim().to_string();
    assert!(test.remote_dir.join("jobs").join(&id).is_dir(), "{out:#?}");
    let out = test.run(["logs", &id, "-f"]).ok();
    assert_eq!(out.stdout, "hi\n");
    let out = test.run(["jobs", "--json"]).ok();
    let jobs: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    assert_eq!(jobs[0]["id"], id.as_str(), "{jobs}");

    let out = test.run(["status", "--json"]).ok();
    let status: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(status["memory"]["total_mib"].as_u64().unwrap() > 0);
    assert!(
        !status["tmux"].to_string().contains("fake"),
        "{}",
        status["tmux"]
    );

    let out = test.run(["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let tmux = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "box.tmux")
        .unwrap();
    assert_eq!(tmux["status"], "ok", "{tmux}");
    assert!(!tmux["message"].to_string().contains("fake"), "{tmux}");

    let out = test.run(["jupyter", "status"]);
    assert!(out.stdout.contains("not running"), "{out:#?}");
}

#[test]
fn a_bashrc_that_reads_stdin_is_told_from_an_empty_answer() {
    for bashrc in ["read -r line\n", "cat >/dev/null\n"] {
        let Some(test) = box_with_bashrc(bashrc) else {
            return;
        };
        test.run(["exec", "--", "true"]).ok();
        for args in [
            &["jobs"][..],
            &["logs", "x"],
            &["status"],
            &["run", "--", "true"],
        ] {
            let out = test.run(args);
            assert_eq!(out.code, Some(1), "{bashrc:?} {args:?}: {out:#?}");
            // logs passes the box's stderr through: what the rest of a script cut short
            // said may come first; fenton's own word is the last line.
            let last = out.stderr.lines().last().unwrap_or("");
            assert!(
                last.contains("did not run fenton's script") && last.contains("reads stdin"),
                "{bashrc:?} {args:?}: {}",
                out.stderr
            );
        }
    }
}

/// A `.bashrc` that reads a line of stdin takes the first line of the script: fenton then
/// says the script did not run, and no part of it may have run, or a job starts on the box
/// while fenton reports a failure (and the user's second try starts another).
#[test]
fn a_bashrc_that_reads_a_line_runs_no_part_of_the_script() {
    let Some(test) = box_with_bashrc("read -r line\n") else {
        return;
    };
    let ran = test.root.join("ran");
    let out = test.run(["run", "--", "touch", ran.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        out.stderr.contains("did not run fenton's script"),
        "{}",
        out.stderr
    );
    let jobs = std::fs::read_dir(test.remote_dir.join("jobs"))
        .map(|dir| dir.count())
        .unwrap_or(0);
    assert_eq!(jobs, 0, "a job directory was made");
    assert!(!ran.exists(), "the job ran");
}

#[test]
fn a_bashrc_that_exits_is_named_by_doctor_not_taken_for_a_refused_login() {
    let Some(test) = box_with_bashrc("exit 1\n") else {
        return;
    };
    let out = test.run(["doctor", "--json"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let check = |id: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(check("link.auth")["status"], "ok", "{}", check("link.auth"));
    let rtt = check("link.rtt");
    assert_eq!(rtt["status"], "problem", "{rtt}");
    assert!(rtt["message"].to_string().contains("login shell"), "{rtt}");
    assert!(rtt["fix"].to_string().contains(".bashrc"), "{rtt}");
    let out = test.run(["jobs"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        out.stderr.contains("did not run fenton's script (exit 1"),
        "{}",
        out.stderr
    );
}

/// A box whose login shell is fish, which reads `\\` and `\'` inside single quotes as escapes:
/// what fenton puts on the command line (a `--dir`, a command's words) arrives as it is and
/// never runs. sshd hands every command to fish as a fish login shell would get it.
#[test]
fn a_fish_login_shell_gets_values_not_code() {
    require!("fish", crate::common::installed("fish"));
    let Some(test) = TestBox::builder()
        .sshd_option("ForceCommand exec fish -c \"$SSH_ORIGINAL_COMMAND\"")
        .start()
    else {
        return;
    };
    let pwned = test.root.join("pwned");
    let word = format!("\\'; touch {}; echo \\'", pwned.display());
    let out = test
        .run(["exec", "--", "printf", "%s|", &word, "a\\\\b", "\\"])
        .ok();
    assert_eq!(out.stdout, format!("{word}|a\\\\b|\\|"));
    let out = test.run(["run", "--dir", &word, "--", "true"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(out.stderr.contains("cannot enter"), "{out:#?}");
    assert!(!pwned.exists(), "a --dir value ran as code");
}
