//! `fenton code` and `fenton ssh-config` against a real sshd: the editor (a stand-in `code`
//! that records its arguments) is sent to the right host and directory, that host reuses
//! fenton's shared connection for plain ssh and scp, ~/.ssh/config changes only with consent
//! and by one line, and a box the editor's server cannot run on is said so.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{run, wait_until, Out, Terminal, TestBox};

/// A stand-in editor in `dir/bin`, which writes its arguments to `dir/argv`, one a line.
fn stand_in_editor(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let code = bin.join("code");
    std::fs::write(
        &code,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > {}\n",
            dir.join("argv").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&code, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// `fenton ARGS` with the stand-in editor first on PATH.
fn fenton_code(test: &TestBox, args: &[&str]) -> Out {
    let bin = stand_in_editor(&test.root);
    let mut cmd = test.fenton(args);
    cmd.env(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
    run(cmd, Duration::from_secs(30))
}

fn editor_argv(test: &TestBox) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(test.root.join("argv")).ok()?;
    Some(text.lines().map(str::to_string).collect())
}

/// fenton's own ssh config file in the test's XDG config directory.
fn managed(test: &TestBox) -> PathBuf {
    test.root.join("xdg/fenton/ssh_config")
}

/// Plain `ssh -F CONFIG HOST CMD` (never a password prompt), as another tool would run it.
fn plain_ssh(test: &TestBox, config: &Path, line: &str) -> Out {
    let mut cmd = Command::new("ssh");
    cmd.arg("-F")
        .arg(config)
        .args(["-o", "BatchMode=yes", "fenton-box", line])
        .stdin(Stdio::null());
    run(test.client(cmd), Duration::from_secs(30))
}

#[test]
fn the_editor_opens_the_box_dir_over_the_shared_connection() {
    let Some(test) = TestBox::new() else { return };
    test.on_box("cd \"$HOME\" && mkdir 'proj dir' && echo hello > 'proj dir/f.txt'")
        .ok();
    let where_ = test.on_box("cd \"$HOME/proj dir\" && pwd").ok().stdout;
    let ssh_dir = test.root.join("home/.ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let mine = "Host elsewhere\n  User someone\n";
    std::fs::write(ssh_dir.join("config"), mine).unwrap();

    // DIR is data: a name that would run something in a shell is only a missing directory.
    let out = fenton_code(&test, &["code", "$(touch pwned)"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    let listing = test.on_box("ls -a \"$HOME\"").ok().stdout;
    assert!(listing.lines().all(|l| l != "pwned"), "{listing}");
    assert_eq!(
        editor_argv(&test),
        None,
        "the editor ran for a missing directory"
    );

    // Every handshake so far: fenton's one and those of the checks above.
    let handshakes = test.sshd.accepted();
    let out = fenton_code(&test, &["code", "proj dir"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        editor_argv(&test).unwrap(),
        ["--remote", "ssh-remote+fenton-box", where_.trim_end()]
    );
    assert_eq!(test.sshd.accepted(), handshakes, "{}", test.sshd.log());

    // Without consent (no terminal, no --setup) ~/.ssh/config stays as it was, and fenton
    // says how to add the line.
    assert!(out.stderr.contains("--setup"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(ssh_dir.join("config")).unwrap(),
        mine
    );
    assert_eq!(std::fs::read_dir(&ssh_dir).unwrap().count(), 1);

    // fenton's own file is private, and plain ssh and scp through it reuse the connection.
    let file = managed(&test);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let out = plain_ssh(&test, &file, "cat \"$HOME/proj dir/f.txt\"").ok();
    assert_eq!(out.stdout, "hello\n");
    let copy = test.root.join("copy.txt");
    let mut scp = Command::new("scp");
    scp.arg("-F")
        .arg(&file)
        .args(["-o", "BatchMode=yes", "fenton-box:proj dir/f.txt"])
        .arg(&copy)
        .stdin(Stdio::null());
    run(test.client(scp), Duration::from_secs(30)).ok();
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "hello\n");
    assert_eq!(
        test.sshd.accepted(),
        handshakes,
        "ssh and scp must reuse fenton's connection: {}",
        test.sshd.log()
    );

    // `fenton ssh-config` prints the very entry that file holds.
    let printed = test.run(["ssh-config"]).ok().stdout;
    assert!(printed.starts_with("Host fenton-box\n"), "{printed}");
    assert!(std::fs::read_to_string(&file).unwrap().contains(&printed));
    let socket = &test.control_sockets()[0];
    assert!(
        printed
            .lines()
            .any(|l| l.trim() == format!("ControlPath {}", socket.display())),
        "{printed}"
    );
    let path = test.run(["ssh-config", "--path"]).ok().stdout;
    assert_eq!(path.trim_end(), file.to_string_lossy());

    // With the connection gone, the entry's ssh opens one that fenton's commands then reuse.
    test.run(["disconnect"]).ok();
    plain_ssh(&test, &file, "true").ok();
    test.run(["exec", "--", "true"]).ok();
    assert_eq!(test.sshd.accepted(), handshakes + 1, "{}", test.sshd.log());
}

#[test]
fn setup_adds_one_include_line_once() {
    let Some(test) = TestBox::new() else { return };
    let ssh_dir = test.root.join("home/.ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let config = ssh_dir.join("config");
    let mine = "# my hosts\nHost elsewhere\n  User someone\n";
    std::fs::write(&config, mine).unwrap();

    let home = test.on_box("cd \"$HOME\" && pwd").ok().stdout;
    let handshakes = test.sshd.accepted() + 1;
    let out = fenton_code(&test, &["code", "--setup"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        editor_argv(&test).unwrap(),
        ["--remote", "ssh-remote+fenton-box", home.trim_end()]
    );
    let text = std::fs::read_to_string(&config).unwrap();
    let include = format!("Include {}\n", managed(&test).display());
    assert_eq!(text, format!("{include}{mine}"));
    let backups: Vec<_> = std::fs::read_dir(&ssh_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p != &config)
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(std::fs::read_to_string(&backups[0]).unwrap(), mine);

    // Again: nothing added, no second copy.
    let out = fenton_code(&test, &["code", "--setup"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    test.run(["ssh-config", "--setup"]).ok();
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
    assert_eq!(std::fs::read_dir(&ssh_dir).unwrap().count(), 2);

    // The line at the top serves fenton's host and leaves the others as they were.
    plain_ssh(&test, &config, "true").ok();
    assert_eq!(test.sshd.accepted(), handshakes, "{}", test.sshd.log());
    let other = Command::new("ssh")
        .arg("-F")
        .arg(&config)
        .args(["-G", "elsewhere"])
        .output()
        .unwrap();
    let other = String::from_utf8_lossy(&other.stdout);
    assert!(other.lines().any(|l| l == "user someone"), "{other}");
    assert!(!other.contains("controlpath"), "{other}");
}

#[test]
fn a_terminal_is_asked_once() {
    const T: Duration = Duration::from_secs(30);
    let ask = |test: &TestBox, answer: Option<&str>| -> Option<String> {
        let bin = stand_in_editor(&test.root);
        let mut cmd = test.fenton(["code"]);
        cmd.env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        );
        let term = Terminal::start(test, &cmd)?;
        if let Some(answer) = answer {
            term.wait_for("[y/N]", T);
            term.line(answer);
        }
        wait_until("fenton code to end", T, || term.exited());
        // tmux keeps no status for a program that ends as it starts: the editor's record
        // says that fenton went on to run it.
        let screen = term.screen();
        assert!(
            editor_argv(test).is_some(),
            "the editor did not run: {screen}"
        );
        let _ = std::fs::remove_file(test.root.join("argv"));
        drop(term);
        // The next terminal gets a server of its own, not this one as it ends.
        let _ = std::fs::remove_file(test.root.join("term.sock"));
        Some(screen)
    };
    let Some(test) = TestBox::new() else { return };
    let config = test.root.join("home/.ssh/config");
    let Some(_) = ask(&test, Some("n")) else {
        return;
    };
    assert!(!config.exists(), "~/.ssh/config was made after a no");
    let screen = ask(&test, None).unwrap();
    assert!(!screen.contains("[y/N]"), "asked twice: {screen}");
    assert!(screen.contains("--setup"), "{screen}");
    assert!(!config.exists());

    let Some(test) = TestBox::new() else { return };
    let config = test.root.join("home/.ssh/config");
    ask(&test, Some("y")).unwrap();
    let include = format!("Include {}\n", managed(&test).display());
    assert_eq!(std::fs::read_to_string(&config).unwrap(), include);
}

#[test]
fn a_box_with_an_old_glibc_is_refused_in_one_line() {
    // The box's own tools say glibc 2.17 (CentOS 7), as stand-ins first on its PATH.
    let bin = tempfile::tempdir().unwrap();
    for (name, says) in [("getconf", "glibc 2.17"), ("ldd", "ldd (GNU libc) 2.17")] {
        let path = bin.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\necho '{says}'\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let Some(test) = TestBox::builder()
        .env(
            "PATH",
            &format!("{}:/usr/local/bin:/usr/bin:/bin", bin.path().display()),
        )
        .start()
    else {
        return;
    };
    let out = fenton_code(&test, &["code"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.contains("--setup"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].contains("glibc 2.17")
            && lines[0].contains("2.28")
            && lines[0].contains("VS Code 1.98"),
        "{}",
        lines[0]
    );
    assert_eq!(
        editor_argv(&test),
        None,
        "the editor ran on a box it cannot run on"
    );
}

#[test]
fn a_hostile_profile_name_adds_no_directive() {
    let Some(test) = TestBox::new() else { return };
    let evil = format!(
        "x\n  ProxyCommand touch {}",
        test.root.join("pwned").display()
    );
    let text = test
        .default_config("")
        .replace("[profile.box", &format!("[profile.{evil:?}"));
    let text = text.replace("default = \"box\"", &format!("default = {evil:?}"));
    test.write_config(&text);
    for args in [
        &["code", "--setup"][..],
        &["ssh-config"],
        &["ssh-config", "--setup"],
    ] {
        let out = fenton_code(&test, args);
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains("cannot name an ssh host"),
            "{args:?}: {}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
    assert!(!managed(&test).exists(), "an entry was written");
    assert!(!test.root.join("home/.ssh/config").exists());
    assert_eq!(editor_argv(&test), None);

    // A newline in a value would be a line of ssh's settings of its own: refused too.
    let text = test.default_config("").replace(
        "connect_timeout",
        "user = \"me\\nproxycommand touch pwned\"\nconnect_timeout",
    );
    test.write_config(&text);
    let out = test.run(["ssh-config"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("`user`"), "{}", out.stderr);
    assert!(!managed(&test).exists(), "an entry was written");
    assert!(!test.root.join("pwned").exists());
}
