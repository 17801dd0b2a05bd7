//! The command line itself: help, version, usage errors, completions, the man page, and the
//! original script's words.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use crate::common::{run, FENTON};

fn fenton(args: &[&str]) -> crate::common::Out {
    let mut cmd = Command::new(FENTON);
    cmd.args(args)
        .env_remove("FENTON_CONFIG")
        .env_remove("FENTON_PROFILE");
    run(cmd, Duration::from_secs(10))
}

#[test]
fn help_lists_the_commands_but_not_the_easter_egg() {
    let out = fenton(&["--help"]).ok();
    for word in [
        "ssh",
        "exec",
        "tmux",
        "connect",
        "disconnect",
        "config",
        "completions",
        "man",
        "--profile",
        "-fs",
    ] {
        assert!(
            out.stdout.contains(word),
            "--help lacks {word}:\n{}",
            out.stdout
        );
    }
    assert!(!out.stdout.contains("jesus"), "{}", out.stdout);
}

#[test]
fn version_prints_the_version() {
    let out = fenton(&["--version"]).ok();
    assert_eq!(
        out.stdout.trim(),
        format!("fenton {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = fenton(&["no-such-command"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    let out = fenton(&["exec"]);
    assert_eq!(out.code, Some(2), "exec without a command: {out:?}");
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = fenton(&["completions", shell]).ok();
        assert!(out.stdout.contains("fenton"), "{shell}: {}", out.stdout);
    }
    let out = fenton(&["completions", "bash"]).ok();
    assert!(out.stdout.contains("disconnect"));
    let out = fenton(&["man"]).ok();
    assert!(
        out.stdout.starts_with(".ie") || out.stdout.contains(".TH fenton"),
        "{}",
        &out.stdout[..200.min(out.stdout.len())]
    );
}

#[test]
fn jesus_christ_opens_the_video() {
    let dir = tempfile::tempdir().unwrap();
    let browser = dir.path().join("browser");
    let seen = dir.path().join("seen");
    std::fs::write(
        &browser,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", seen.display()),
    )
    .unwrap();
    std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new(FENTON);
    cmd.args(["jesus", "christ"])
        .env("BROWSER", &browser)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
    run(cmd, Duration::from_secs(10)).ok();
    // The browser runs on its own: its record may come after fenton has exited.
    crate::common::wait_until(
        "the browser to record the URL",
        Duration::from_secs(5),
        || std::fs::read_to_string(&seen).is_ok_and(|url| url.ends_with("3GRSbr0EYYU")),
    );
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "https://www.youtube.com/watch?v=3GRSbr0EYYU"
    );
}

#[test]
fn jesus_christ_prints_the_url_without_a_browser() {
    let mut cmd = Command::new(FENTON);
    cmd.args(["jesus", "christ"])
        .env_clear()
        .env("PATH", "/nonexistent")
        .env("BROWSER", "/nonexistent/browser");
    let out = run(cmd, Duration::from_secs(10)).ok();
    assert_eq!(
        out.stdout.trim(),
        "https://www.youtube.com/watch?v=3GRSbr0EYYU"
    );
}

#[test]
fn a_typo_suggests_only_commands_help_lists() {
    let out = fenton(&["stauts"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("'status'"), "{}", out.stderr);
    assert!(!out.stderr.contains("jesus"), "{}", out.stderr);
}

#[test]
fn command_help_puts_global_options_under_their_own_heading() {
    for command in ["run", "exec", "status"] {
        let out = fenton(&[command, "--help"]).ok();
        let (own, global) = out
            .stdout
            .split_once("\nGlobal options:\n")
            .unwrap_or_else(|| panic!("{command}: {}", out.stdout));
        assert!(
            global.contains("--profile") && global.contains("--verbose"),
            "{command}: {}",
            out.stdout
        );
        assert!(!own.contains("--profile"), "{command}: {}", out.stdout);
    }
    let out = fenton(&["run", "--help"]).ok();
    assert!(
        out.stdout.contains("--name")
            && out.stdout.contains("Usage: fenton run [OPTIONS] <CMD>..."),
        "{}",
        out.stdout
    );
}

#[test]
fn man_dir_writes_every_page_the_pages_name() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let out = fenton(&["man", "--dir", pages.to_str().unwrap()]).ok();
    assert!(out.stderr.contains("wrote fenton.1"), "{out:?}");
    let files: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(files.contains(&"fenton.1".to_string()), "{files:?}");
    assert!(!files.iter().any(|f| f.contains("jesus")), "{files:?}");
    for file in &files {
        let text = std::fs::read_to_string(pages.join(file)).unwrap();
        for (i, _) in text.match_indices("(1)") {
            let name = text[..i]
                .rsplit(|c: char| c.is_whitespace() || c == '"')
                .next()
                .unwrap()
                .replace("\\-", "-");
            if name.starts_with("fenton") {
                assert!(
                    files.contains(&format!("{name}.1")),
                    "{file} names {name}(1), which is not in {files:?}"
                );
            }
        }
    }
    // A command's page holds its own options.
    let run = std::fs::read_to_string(pages.join("fenton-run.1")).unwrap();
    assert!(
        run.contains("\\-\\-name") && run.contains("\\-\\-notify"),
        "{run}"
    );
    // Without --dir, the main page goes to stdout, as before.
    let out = fenton(&["man"]).ok();
    assert!(out.stdout.contains("fenton\\-run(1)"), "{}", out.stdout);
}

/// What `shell` completes for `line` (ending where TAB is pressed), with fenton's completion
/// script loaded and fenton on PATH; `envs` as fenton should see them.
pub fn complete(shell: &str, line: &str, envs: &[(String, String)]) -> Vec<String> {
    let script = match shell {
        "bash" => format!(
            "source <(fenton completions bash); read -r -a COMP_WORDS <<< {line:?}; \
             case {line:?} in *' ') COMP_WORDS+=(''); esac; COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             _fenton_dynamic fenton \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\""
        ),
        "fish" => format!("fenton completions fish | source; complete -C {line:?}"),
        other => panic!("no driver for {other}"),
    };
    let mut cmd = Command::new(shell);
    cmd.arg("-c").arg(script).env_clear();
    let bin = std::path::Path::new(FENTON).parent().unwrap();
    let mut path = format!("{}:/usr/bin:/bin", bin.display());
    for (key, value) in envs {
        if key == "PATH" {
            path = format!("{}:{value}", bin.display());
        } else {
            cmd.env(key, value);
        }
    }
    cmd.env("PATH", path);
    let out = run(cmd, Duration::from_secs(30)).ok();
    out.stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn profile_names_complete_after_dash_p_in_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "default = \"alpha\"\n[profile.alpha]\nhost = \"a.example\"\n[profile.beta]\nhost = \"b.example\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let envs = [
        ("FENTON_CONFIG".to_string(), config.display().to_string()),
        ("HOME".to_string(), dir.path().display().to_string()),
    ];
    for shell in ["bash", "fish"] {
        if !crate::common::available(shell, crate::common::installed(shell)) {
            continue;
        }
        for line in [
            "fenton -p ",
            "fenton status --profile ",
            "fenton -v logs -p ",
        ] {
            assert_eq!(
                complete(shell, line, &envs),
                ["alpha", "beta"],
                "{shell}: {line:?}"
            );
        }
        assert_eq!(complete(shell, "fenton -p b", &envs), ["beta"], "{shell}");
    }
    // zsh completes only inside its line editor: run fenton's function with zsh's own
    // `_describe` standing in, after checking the whole script parses.
    require!("zsh", crate::common::installed("zsh"));
    let bin = std::path::Path::new(FENTON).parent().unwrap();
    let mut zsh = Command::new("zsh");
    zsh.arg("-c")
        .arg(
            "autoload -U compinit && compinit -u -d \"$HOME/.zcompdump\"; source <(fenton completions zsh) || exit 1; \
             _describe() { print -l ${(P)2}; }; _fenton_profiles",
        )
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("FENTON_CONFIG", &config)
        .env("HOME", dir.path());
    let out = run(zsh, Duration::from_secs(30)).ok();
    assert_eq!(out.stdout, "alpha\nbeta\n", "{out:?}");
}

#[test]
fn answers_to_a_closed_pipe_end_quietly_and_to_a_full_disk_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "default = \"a\"\n[profile.a]\nhost = \"a\"\n").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    for args in [
        "config profiles",
        "config path",
        "config show",
        "completions bash",
        "man",
    ] {
        let fenton = |stdout: std::process::Stdio| {
            let out = Command::new(FENTON)
                .args(args.split(' '))
                .env("FENTON_CONFIG", &config)
                .stdout(stdout)
                .output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        // A reader that went away before fenton answered, as `| head -0` does.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let (code, stderr) = fenton(writer.into());
        assert_eq!((code, stderr.as_str()), (Some(0), ""), "{args} | head -0");

        let (code, stderr) = fenton(std::fs::File::create("/dev/full").unwrap().into());
        assert_eq!(code, Some(1), "{args} > /dev/full: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args}: {stderr}");
        assert!(stderr.contains("No space left"), "{args}: {stderr}");
    }
}
