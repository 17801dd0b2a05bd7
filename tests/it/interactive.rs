//! Interactive commands driven like a person would, in a terminal: a shell prompt on the box,
//! and tmux sessions that outlive the connection.

use std::time::Duration;

use crate::common::{wait_until, Terminal, TestBox};

const T: Duration = Duration::from_secs(15);

#[test]
fn fenton_alone_is_a_shell_on_the_box() {
    let Some(test) = TestBox::new() else { return };
    let Some(term) = Terminal::start(&test, &test.fenton(Vec::<&str>::new())) else {
        return;
    };
    term.line("echo on-the-box-$((6*7)) $SSH_CONNECTION");
    term.wait_for("on-the-box-42 127.0.0.1", T);
    term.line("exit 3");
    wait_until("the shell to end", T, || term.exited());
    assert_eq!(term.status(), Some(3), "{}", term.screen());
}

#[test]
fn ssh_with_a_command_gets_a_tty() {
    let Some(test) = TestBox::new() else { return };
    let cmd = test.fenton([
        "ssh",
        "--",
        "sh",
        "-c",
        "test -t 0 && echo has-tty; sleep 30",
    ]);
    let Some(term) = Terminal::start(&test, &cmd) else {
        return;
    };
    term.wait_for("has-tty", T);
}

#[test]
fn tmux_sessions_outlive_the_connection() {
    let Some(test) = TestBox::new() else { return };
    let has_session = |name: &str| {
        test.on_box(&format!(
            "tmux -L {} has-session -t '{name}'",
            test.tmux_socket
        ))
        .code
            == Some(0)
    };
    // Without a terminal it says so, before reaching the box.
    let out = test.run(["-jn"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        out.stderr.contains("fenton tmux needs a terminal")
            && !out.stderr.contains("open terminal failed"),
        "{out:#?}"
    );
    // The original script's -jn; the profile's session, created.
    let Some(term) = Terminal::start(&test, &test.fenton(["-jn"])) else {
        return;
    };
    term.line("echo marker-$((40+2)) > /dev/null; tmux display-message -p 'in:#{session_name}'");
    term.wait_for("in:fenton", T);
    term.keys(&["C-b", "d"]);
    wait_until("fenton tmux to end on detach", T, || term.exited());
    drop(term);
    assert!(
        has_session("fenton"),
        "detaching must leave the session running"
    );

    // A second attach finds the same session, with its history.
    let Some(term) = Terminal::start(&test, &test.fenton(["tmux"])) else {
        return;
    };
    term.wait_for("in:fenton", T);
    term.keys(&["C-b", "d"]);
    wait_until("fenton tmux to end on detach", T, || term.exited());
    drop(term);

    // Names with spaces and quotes are names, not shell.
    let name = "my 'odd\" session";
    let Some(term) = Terminal::start(&test, &test.fenton(["tmux", name])) else {
        return;
    };
    term.line("tmux display-message -p 'named:#{session_name}'");
    term.wait_for("named:my 'odd\" session", T);
    term.keys(&["C-b", "d"]);
    wait_until("fenton tmux to end on detach", T, || term.exited());
    let out = test.on_box(&format!(
        "tmux -L {} list-sessions -F '#{{session_name}}'",
        test.tmux_socket
    ));
    assert_eq!(out.stdout, "fenton\nmy 'odd\" session\n");
}

#[test]
fn ctrl_c_ends_exec_with_130() {
    let Some(test) = TestBox::new() else { return };
    let cmd = test.fenton(["exec", "--", "sh", "-c", "echo started; sleep 60"]);
    let Some(term) = Terminal::start(&test, &cmd) else {
        return;
    };
    term.wait_for("started", T);
    term.keys(&["C-c"]);
    wait_until("fenton exec to end on Ctrl-C", T, || term.exited());
    assert_eq!(term.status(), Some(130));
}

#[test]
fn vv_shows_the_ssh_command_lines() {
    let Some(test) = TestBox::new() else { return };
    let out = test.run(["-vv", "exec", "--", "echo", "a b"]).ok();
    assert!(
        out.stderr.contains("fenton: + ssh -M -f -N"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("fenton: + [box] 'echo' 'a b'"),
        "{}",
        out.stderr
    );
    let out = test.run(["exec", "--", "echo", "quiet"]).ok();
    assert_eq!(out.stderr, "", "no chatter without -v");
}
