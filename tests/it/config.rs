//! The config file as a user meets it: first-time set-up, mistakes, and unsafe permissions.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{run, Out, FENTON};

/// A laptop with no fenton config yet: HOME and XDG_CONFIG_HOME in a temp dir.
struct Laptop {
    dir: tempfile::TempDir,
}

impl Laptop {
    fn new() -> Laptop {
        Laptop {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("xdg/fenton/config.toml")
    }

    fn fenton(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(FENTON);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .args(args)
            .stdin(Stdio::null());
        run(cmd, Duration::from_secs(10))
    }

    fn write(&self, text: &str, mode: u32) {
        let path = self.config();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn no_config_says_to_run_init() {
    let laptop = Laptop::new();
    let out = laptop.fenton(&["exec", "--", "true"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("run `fenton config init --host HOST`"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn init_writes_a_private_commented_config_that_show_reads_back() {
    let laptop = Laptop::new();
    laptop
        .fenton(&[
            "config",
            "init",
            "--host",
            "10.23.45.67",
            "--user",
            "tom",
            "--port",
            "2222",
            "--identity-file",
            "~/.ssh/k",
        ])
        .ok();
    let path = laptop.config();
    assert_eq!(mode(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("default = \"fenton\""), "{text}");
    assert!(text.contains("# remote_dir"), "commented keys: {text}");

    let out = laptop.fenton(&["config", "path"]).ok();
    assert_eq!(out.stdout.trim(), path.to_str().unwrap());
    let out = laptop.fenton(&["config", "show"]).ok();
    assert!(
        out.stdout.contains("host = \"10.23.45.67\""),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("port = 2222"), "{}", out.stdout);
    assert!(
        out.stdout.contains("remote_dir = \"~/.fenton\""),
        "defaults shown: {}",
        out.stdout
    );

    // A second box is added beside the first; the same name again is refused.
    laptop
        .fenton(&["config", "init", "--host", "lab", "--name", "lab"])
        .ok();
    let out = laptop.fenton(&["config", "profiles"]).ok();
    assert_eq!(out.stdout, "* fenton\t10.23.45.67\n  lab\tlab\n");
    let out = laptop.fenton(&["config", "init", "--host", "x", "--name", "lab"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    let out = laptop.fenton(&["config", "init", "--host", "x", "--name", "a b"]);
    assert_eq!(out.code, Some(1), "{out:?}");

    // --set-default moves the default to the new box, keeping the others.
    laptop
        .fenton(&[
            "config",
            "init",
            "--host",
            "gpu2",
            "--name",
            "gpu",
            "--set-default",
        ])
        .ok();
    let out = laptop.fenton(&["config", "profiles"]).ok();
    assert_eq!(
        out.stdout,
        "  fenton\t10.23.45.67\n* gpu\tgpu2\n  lab\tlab\n"
    );
}

#[test]
fn init_without_host_and_terminal_asks_for_the_flag() {
    let laptop = Laptop::new();
    let out = laptop.fenton(&["config", "init"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("--host"), "{}", out.stderr);
    assert!(!laptop.config().exists());
}

#[test]
fn mistakes_name_the_line_and_column() {
    let laptop = Laptop::new();
    laptop.write("[profile.box]\nhost = \"h\"\nhots = \"typo\"\n", 0o600);
    let out = laptop.fenton(&["exec", "--", "true"]);
    assert_eq!(out.code, Some(1));
    let want = format!(
        "fenton: {}:3:1: unknown field `hots`",
        laptop.config().display()
    );
    assert!(out.stderr.starts_with(&want), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);

    laptop.write("[profile.box]\nhost = \"h\"\nport = \"22\"\n", 0o600);
    let out = laptop.fenton(&["config", "show"]);
    assert!(out.stderr.contains("config.toml:3:8:"), "{}", out.stderr);

    laptop.write("[profile.box\nhost = \"h\"\n", 0o600);
    let out = laptop.fenton(&["config", "show"]);
    assert!(out.stderr.contains("config.toml:1:"), "{}", out.stderr);
}

#[test]
fn a_missing_profile_names_the_ones_there_are() {
    let laptop = Laptop::new();
    laptop.write(
        "default = \"a\"\n[profile.a]\nhost = \"h\"\n[profile.lab]\nhost = \"h\"\n",
        0o600,
    );
    let out = laptop.fenton(&["-p", "gpu", "exec", "--", "true"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr.trim(),
        format!(
            "fenton: profile \"gpu\" not found in {} (profiles: a, lab)",
            laptop.config().display()
        )
    );
    let mut cmd = Command::new(FENTON);
    cmd.env("FENTON_PROFILE", "nope")
        .env("FENTON_CONFIG", laptop.config())
        .args(["config", "show"]);
    let out = run(cmd, Duration::from_secs(10));
    assert!(
        out.stderr.contains("profile \"nope\" not found"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_config_others_can_write_is_refused_and_a_readable_secret_warned() {
    let laptop = Laptop::new();
    laptop.write("[profile.box]\nhost = \"h\"\n", 0o666);
    let out = laptop.fenton(&["config", "show"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("writable by others") && out.stderr.contains("chmod go-w"),
        "{}",
        out.stderr
    );

    let secret = "[profile.box]\nhost = \"h\"\n[notify.telegram]\nbot_token = \"123:SECRET\"\nchat_id = \"1\"\n";
    laptop.write(secret, 0o644);
    let out = laptop.fenton(&["config", "show"]).ok();
    assert!(
        out.stderr.contains("warning") && out.stderr.contains("chmod 600"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("SECRET"),
        "secret shown: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains("bot_token = \"********\""),
        "{}",
        out.stdout
    );

    laptop.write(secret, 0o600);
    let out = laptop.fenton(&["config", "show"]).ok();
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

#[test]
fn the_example_config_documents_every_key() {
    let example =
        std::fs::read_to_string(Path::new(crate::common::ROOT).join("fenton.example.toml"))
            .unwrap();
    let laptop = Laptop::new();
    laptop.write(&example, 0o600);
    let out = laptop.fenton(&["config", "show"]).ok();
    // Every key `show` prints (all of them, defaults included) appears in the example.
    for line in out.stdout.lines().filter(|l| l.contains(" = ")) {
        let key = line.split(" = ").next().unwrap().trim();
        assert!(
            example.contains(&format!("{key} =")) || example.contains(&format!("# {key}")),
            "{key} undocumented"
        );
    }
}

#[test]
fn a_config_that_is_a_fifo_or_a_device_or_huge_is_refused_at_once() {
    let laptop = Laptop::new();
    let fifo = laptop.dir.path().join("fifo.toml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let big = laptop.dir.path().join("big.toml");
    std::fs::write(&big, "#".repeat(2 << 20)).unwrap();
    for (path, why) in [
        (fifo.to_str().unwrap(), "not a regular file"),
        ("/dev/zero", "not a regular file"),
        (big.to_str().unwrap(), "larger than 1 MiB"),
    ] {
        for command in [&["-c", path, "status"][..], &["-c", path, "config", "show"]] {
            let out = laptop.fenton(command);
            assert_eq!(out.code, Some(1), "{command:?}: {out:?}");
            assert!(out.elapsed < Duration::from_secs(5), "{out:?}");
            assert!(out.stderr.contains(why), "{}", out.stderr);
            assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        }
    }
}

#[test]
fn show_masks_every_secret_and_an_ntfy_topic_counts_as_one() {
    let laptop = Laptop::new();
    let config = "[profile.box]\nhost = \"h\"\n[profile.box.jupyter]\nsetup = \"export HF_TOKEN=hf-SECRET-1\"\n\
        [notify.telegram]\nbot_token = \"1:SECRET-2\"\nchat_id = \"5\"\napi_url = \"https://me:SECRET-3@proxy.example\"\n\
        [notify.ntfy]\nurl = \"https://ntfy.sh/SECRET-4\"\n\
        [notify.webhook]\nurl = \"https://hooks.example/SECRET-5\"\n";
    laptop.write(config, 0o600);
    let out = laptop.fenton(&["config", "show"]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(!out.stdout.contains("SECRET"), "{}", out.stdout);
    for shown in [
        "setup = \"********\"",
        "https://********@proxy.example",
        "https://ntfy.sh/********",
        "https://hooks.example/********",
    ] {
        assert!(out.stdout.contains(shown), "{shown}: {}", out.stdout);
    }
    let out = laptop.fenton(&["doctor"]);
    assert!(!out.stdout.contains("SECRET"), "{}", out.stdout);
    assert!(!out.stderr.contains("SECRET"), "{}", out.stderr);

    // A config whose only secret is an ntfy topic, readable by others: a warning.
    laptop.write(
        "[profile.box]\nhost = \"h\"\n[notify.ntfy]\nurl = \"https://ntfy.sh/topic\"\n",
        0o644,
    );
    let out = laptop.fenton(&["config", "show"]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(
        out.stderr.contains("holds a secret and others can read it"),
        "{}",
        out.stderr
    );
}

/// A password written with a `#`, `?` or `/` it should have percent-encoded ends the
/// authority early where a URL parser reads it; shown, not a letter of it (nor the user name
/// before it) may appear.
#[test]
fn show_masks_a_password_that_holds_a_url_delimiter() {
    let laptop = Laptop::new();
    laptop.write(
        "[profile.box]\nhost = \"h\"\n\
         [notify.telegram]\nbot_token = \"1:x\"\nchat_id = \"5\"\napi_url = \"http://USER-1:SECRET#2@proxy.example:8080\"\n\
         [notify.webhook]\nurl = \"https://USER-3:SEC?RET/4@hooks.example/x\"\n",
        0o600,
    );
    let out = laptop.fenton(&["config", "show"]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    for secret in ["USER", "SEC"] {
        assert!(!out.stdout.contains(secret), "{}", out.stdout);
    }
    let out = laptop.fenton(&["doctor"]);
    for secret in ["USER", "SEC"] {
        assert!(!out.stdout.contains(secret), "{}", out.stdout);
        assert!(!out.stderr.contains(secret), "{}", out.stderr);
    }
}

#[test]
fn values_that_cannot_work_are_refused_at_load_with_line_and_column() {
    let laptop = Laptop::new();
    let cases = [
        (
            "[profile.box.tmux]\nsocket = \"a/b\"\n",
            ":4:1:",
            "tmux.socket",
        ),
        (
            "[profile.box.tmux]\nsession = \"s#(touch x)\"\n",
            ":4:1:",
            "'#'",
        ),
        ("remote_dir = \"~/x\\ny\"\n", ":3:1:", "remote_dir"),
    ];
    for (extra, at, what) in cases {
        laptop.write(&format!("[profile.box]\nhost = \"h\"\n{extra}"), 0o600);
        let out = laptop.fenton(&["exec", "--", "true"]);
        assert_eq!(out.code, Some(1), "{out:#?}");
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!("config.toml{at}")) && out.stderr.contains(what),
            "{extra:?}: {}",
            out.stderr
        );
    }
}
