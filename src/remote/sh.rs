//! The only place that writes shell text for the box. Every value a user or a config gave is
//! single-quoted here; callers assemble commands from these pieces and never format raw text.

/// Quotes one word for the login shell that reads the command line: `'…'`, with `'` written
/// as `'\''`, `\` as `'\\'`, and `''` for empty. A POSIX shell keeps a backslash inside single
/// quotes as it is, but fish (the login shell of some boxes) reads `\\` and `\'` there as
/// escapes, so a word holding them would change, or end its quotes early and have the rest
/// run as code; outside quotes, every shell reads `\\` as one backslash.
pub fn quote(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        match c {
            '\'' => out.push_str("'\\''"),
            '\\' => out.push_str("'\\\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A local path as a shell line names it, for the fix lines fenton prints (`chmod 600 …`).
pub fn quote_path(path: &std::path::Path) -> String {
    quote(&path.to_string_lossy())
}

/// Quotes each word and joins them: the remote shell sees exactly these words.
pub fn words<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes a word that may not be UTF-8 (an argument as the laptop's shell passed it): UTF-8
/// runs single-quoted, every other byte written as `"$(printf '\NNN')"`, so the remote shell
/// rebuilds the word byte for byte (a byte of 0x80 or more is never a newline, which `$(…)`
/// would strip). POSIX has no other way to write a byte in a word.
pub fn quote_os(word: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in word.as_bytes().utf8_chunks() {
        if !chunk.valid().is_empty() {
            out.push_str(&quote(chunk.valid()));
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\"$(printf '\\{byte:03o}')\""));
        }
    }
    if out.is_empty() {
        out.push_str("''");
    }
    out
}

/// Quotes each word, UTF-8 or not, and joins them (see [`quote_os`]).
pub fn words_os<S: AsRef<std::ffi::OsStr>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote_os(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A remote path: `~` and `~/…` refer to the remote home (which quoting alone would hide),
/// everything else is quoted as is.
pub fn path(path: &str) -> String {
    match path.strip_prefix('~') {
        Some("") => "\"$HOME\"".into(),
        Some(rest) if rest.starts_with('/') => {
            let rest = rest.trim_start_matches('/');
            if rest.is_empty() {
                "\"$HOME\"".into()
            } else {
                format!("\"$HOME\"/{}", quote(rest))
            }
        }
        _ => quote(path),
    }
}

/// Why tmux cannot take `name` as a session name as it is, if it cannot. tmux reads a
/// session name (like a window name and a start directory) as a format, where `#(…)` runs a
/// shell command and `#S`, `#{…}` are replaced; it turns `:` and `.`, its target separators,
/// into `_`, and keeps `$`, `\` and control characters escaped (`\$`), so that the session
/// could not be named again. So quoting for sh is not enough: every session name fenton hands tmux (from the
/// config or the command line) is checked here. Job names are stricter (`jobs::check_name`)
/// and fenton gives tmux no directory at all: a window starts in one through `sh -c`.
pub fn tmux_session_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.contains('#') {
        Some("tmux reads '#' in a name as a format (`#(…)` would run a command)")
    } else if name.contains([':', '.']) {
        Some("tmux uses ':' and '.' to name windows and panes")
    } else if name.contains(['$', '\\']) {
        Some("tmux keeps '$' and '\\' in a name escaped, so it could not find the session again")
    } else if name.chars().any(char::is_control) {
        Some("it holds a control character")
    } else {
        None
    }
}

/// Why tmux cannot use `name` as a `-L` socket name (a file in tmux's own directory), if not.
pub fn tmux_socket_problem(name: &str) -> Option<&'static str> {
    if name.contains('/') {
        Some("it is a file name in tmux's socket directory, so it may not hold '/'")
    } else if name == "." || name == ".." {
        Some("it is a file name in tmux's socket directory")
    } else if name.chars().any(char::is_control) {
        Some("it holds a control character")
    } else {
        None
    }
}

/// `tmux`, on the profile's own server socket when it names one.
pub fn tmux(socket: &str) -> String {
    if socket.is_empty() {
        "tmux".into()
    } else {
        format!("tmux -L {}", quote(socket))
    }
}

/// `name='value'`: a shell variable set to a value, for a script that reads it.
pub fn assign(name: &str, value: &str) -> String {
    debug_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    format!("{name}={}", quote(value))
}

/// A line that stops with a clear message when `program` is missing on the box.
pub fn require(program: &str, install_hint: &str) -> String {
    let message = format!("fenton: {program} is not installed on the box: {install_hint}");
    format!(
        "command -v {} >/dev/null 2>&1 || {{ printf '%s\\n' {} >&2; exit 127; }}",
        quote(program),
        quote(&message)
    )
}

/// Lines that write `content` to the file `name` in the directory named by the shell variable
/// `dir_var`, through a quoted here-document in a script fed to `sh -s`: the content (a
/// secret, say) never reaches a command line, and no line of it can end the here-document.
/// The file ends with a newline.
pub fn write_file(dir_var: &str, name: &str, content: &str) -> String {
    assert!(
        dir_var
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "not a shell variable name: {dir_var}"
    );
    let mut delimiter = String::from("FENTON_EOF");
    while content.lines().any(|line| line == delimiter) {
        delimiter.push('_');
    }
    let newline = if content.ends_with('\n') || content.is_empty() {
        ""
    } else {
        "\n"
    };
    format!(
        "cat > \"${dir_var}\"/{} <<'{delimiter}'\n{content}{newline}{delimiter}\n",
        quote(name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_table() {
        let table = [
            ("", "''"),
            ("plain", "'plain'"),
            ("a b", "'a b'"),
            ("it's", "'it'\\''s'"),
            ("$(rm -rf ~)", "'$(rm -rf ~)'"),
            ("`id`", "'`id`'"),
            ("a;b", "'a;b'"),
            ("*", "'*'"),
            ("{a,b}", "'{a,b}'"),
            ("line\nnext", "'line\nnext'"),
            ("-n", "'-n'"),
            ("\"q\"", "'\"q\"'"),
            ("a\\b", r"'a'\\'b'"),
            ("\\'", r"''\\''\'''"),
        ];
        for (word, quoted) in table {
            assert_eq!(quote(word), quoted, "quoting {word:?}");
        }
    }

    /// The login shell reads the command line: every one installed here (fish reads
    /// backslashes in single quotes) sees exactly the words.
    #[test]
    fn words_round_trip_through_every_real_shell() {
        let args = [
            "printf",
            "%s\\0",
            "a b",
            "it's",
            "$(echo x)",
            "`id`",
            ";",
            "*",
            "{a,b}",
            "l1\nl2",
            "-n",
            "",
            "a\\b",
            "a\\\\b",
            "\\'; echo ran; echo \\'",
            "\\",
            "'\\''",
        ];
        let mut tried = 0;
        for shell in ["sh", "dash", "bash", "zsh", "fish"] {
            let Ok(out) = std::process::Command::new(shell)
                .arg("-c")
                .arg(words(&args))
                .output()
            else {
                continue;
            };
            tried += 1;
            let got: Vec<&str> = std::str::from_utf8(&out.stdout)
                .unwrap()
                .split_terminator('\0')
                .collect();
            assert_eq!(got, &args[2..], "through {shell}");
        }
        assert!(tried > 0);
    }

    #[test]
    fn words_that_are_not_utf8_arrive_byte_for_byte() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let args: [&OsStr; 5] = [
            OsStr::from_bytes(b"caf\xe9"),
            OsStr::from_bytes(b"\xff"),
            OsStr::from_bytes(b"a'\xfe\xfd b\n"),
            OsStr::new("plain $(id)"),
            OsStr::new(""),
        ];
        let line = format!("printf '%s\\0' {}", words_os(&args));
        assert!(std::str::from_utf8(line.as_bytes()).is_ok());
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .output()
            .unwrap();
        let want: Vec<u8> = args
            .iter()
            .flat_map(|a| a.as_bytes().iter().copied().chain([0]))
            .collect();
        assert_eq!(out.stdout, want, "{line}");
    }

    #[test]
    fn paths_keep_the_remote_home() {
        assert_eq!(path("~"), "\"$HOME\"");
        assert_eq!(path("~/"), "\"$HOME\"");
        assert_eq!(path("~/.fenton"), "\"$HOME\"/'.fenton'");
        assert_eq!(path("~/my dir/x"), "\"$HOME\"/'my dir/x'");
        assert_eq!(path("/data/$x"), "'/data/$x'");
        assert_eq!(path("~other"), "'~other'");
    }

    #[test]
    fn written_files_hold_their_content_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let contents = [
            "plain",
            "two\nlines\n",
            "$(touch pwned) `id` ${HOME} \\ '\"",
            "FENTON_EOF\nFENTON_EOF_\nafter",
            "",
        ];
        let mut script = String::from("set -e\n");
        for (i, content) in contents.iter().enumerate() {
            script += &write_file("d", &format!("f {i}"), content);
        }
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("d=\"$1\"\n{script}"))
            .arg("sh")
            .arg(dir.path())
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        for (i, content) in contents.iter().enumerate() {
            let got = std::fs::read_to_string(dir.path().join(format!("f {i}"))).unwrap();
            let want = if content.ends_with('\n') || content.is_empty() {
                content.to_string()
            } else {
                format!("{content}\n")
            };
            assert_eq!(got, want);
        }
        assert!(!dir.path().join("pwned").exists());
    }

    #[test]
    fn fix_lines_quote_local_paths() {
        let path = std::path::Path::new("/home/o'neil/my key");
        assert_eq!(quote_path(path), "'/home/o'\\''neil/my key'");
    }

    #[test]
    fn tmux_names_that_would_run_or_change_are_refused() {
        for bad in [
            "",
            "s#(touch x)",
            "#S",
            "a##b",
            "a:b",
            "a.b",
            "a\nb",
            "$(id)",
            "x$y",
            "a\\b",
        ] {
            assert!(tmux_session_problem(bad).is_some(), "{bad:?} was accepted");
        }
        for good in ["fenton", "my session", "it's", "`id`", "a;b|c", "-x", "ünï"] {
            assert_eq!(tmux_session_problem(good), None, "{good:?}");
        }
        for bad in ["a/b", "/tmp/x", "..", "x\n"] {
            assert!(tmux_socket_problem(bad).is_some(), "{bad:?} was accepted");
        }
        assert_eq!(tmux_socket_problem(""), None);
        assert_eq!(tmux_socket_problem("my sock#1"), None);
    }

    #[test]
    fn tmux_names_its_socket() {
        assert_eq!(tmux(""), "tmux");
        assert_eq!(tmux("my sock"), "tmux -L 'my sock'");
    }

    #[test]
    fn require_is_valid_sh() {
        let line = format!(
            "{}; echo ok",
            require("definitely-not-here-42", "apt install it")
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(127));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "fenton: definitely-not-here-42 is not installed on the box: apt install it\n"
        );
        let line = format!("{}; echo ok", require("sh", "x"));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    }
}
