//! A box whose login shell talks: a `.bashrc` that prints on stdout and stderr (a banner, a
//! conda or locale warning) must not break the scripts fenton sends, which parse what the box
//! answers.

use crate::common::http::HttpServer;
use crate::common::TestBox;

#[test]
fn a_chatty_bashrc_does_not_confuse_fenton() {
    let home = tempfile::Builder::new()
        .prefix("fenton-home")
        .tempdir()
        .unwrap();
    std::fs::write(
        home.path().join(".bashrc"),
        "echo 'Welcome to the box!'\necho 'bash: warning: setlocale: LC_ALL: cannot change locale' >&2\n",
    )
    .unwrap();
    let Some(test) = TestBox::builder()
        .env("HOME", &home.path().to_string_lossy())
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
