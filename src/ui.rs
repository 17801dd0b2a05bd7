//! What fenton says on the terminal: warnings, progress, and the `-vv` trace of the command
//! lines it runs. One place decides verbosity and colour for every command.

use std::ffi::OsStr;
use std::fmt::Arguments;
use std::io::IsTerminal;
use std::sync::OnceLock;

use crate::cli::{Color, Global};

struct Settings {
    verbose: u8,
    quiet: bool,
    color: bool,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

pub fn init(global: &Global) {
    let color = match global.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    };
    let _ = SETTINGS.set(Settings {
        verbose: global.verbose,
        quiet: global.quiet,
        color,
    });
}

fn settings() -> &'static Settings {
    SETTINGS.get_or_init(|| Settings {
        verbose: 0,
        quiet: false,
        color: false,
    })
}

/// Whether output may carry colour escapes.
pub fn color() -> bool {
    settings().color
}

// Every message goes through `clean`: many quote the box (a job's name, what a script said).

/// `print!` for fenton's answers on stdout. A reader that went away (`fenton jobs | head`)
/// ends fenton quietly, as a shell tool does; a stdout that cannot take them (a full disk)
/// is one line and exit 1. Never the panic `print!` gives for either.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::ui::out(format_args!($($arg)*)) };
}

/// `println!` for fenton's answers: see [`out!`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => { $crate::ui::out(format_args!("{}\n", format_args!($($arg)*))) };
}

pub fn out(args: Arguments) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        let _ = writeln!(
            std::io::stderr(),
            "fenton: cannot write the answer here: {e}"
        );
        std::process::exit(1);
    }
}

/// A line for the user about what fenton did, on stderr; silent under `-q`.
pub fn info(args: Arguments) {
    if !settings().quiet {
        eprintln!("fenton: {}", clean(&args.to_string()));
    }
}

/// Something the user should fix but that does not stop the command.
pub fn warn(args: Arguments) {
    eprintln!("fenton: warning: {}", clean(&args.to_string()));
}

/// A spinner on stderr that says what fenton waits for; only on a terminal, never under `-q`.
/// It disappears when dropped.
pub struct Spinner(Option<indicatif::ProgressBar>);

pub fn spinner(message: String) -> Spinner {
    if settings().quiet || !std::io::stderr().is_terminal() {
        return Spinner(None);
    }
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    Spinner(Some(bar))
}

impl Spinner {
    pub fn say(&self, message: String) {
        if let Some(bar) = &self.0 {
            bar.set_message(message);
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Detail shown from `-v` on.
pub fn debug(args: Arguments) {
    if settings().verbose >= 1 {
        eprintln!("fenton: {}", clean(&args.to_string()));
    }
}

/// At `-vv`, shows a local command line as a shell would need it typed.
pub fn trace_command<I, S>(program: &str, args: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    if settings().verbose >= 2 {
        let mut line =
            shlex::try_quote(program).map_or_else(|_| program.into(), |q| q.into_owned());
        for arg in args {
            let arg = arg.as_ref().to_string_lossy();
            line.push(' ');
            line.push_str(
                &shlex::try_quote(&arg).map_or_else(|_| arg.to_string(), |q| q.into_owned()),
            );
        }
        eprintln!("fenton: + {line}");
    }
}

/// At `-vv`, shows a command sent over the shared connection.
pub fn trace_remote(line: &str) {
    if settings().verbose >= 2 {
        eprintln!("fenton: + [box] {line}");
    }
}

/// Text from the box (a process name, a GPU name, a log line) made safe to draw: it can hold
/// anything, escape sequences included, and an OSC 52 in a co-tenant's process name would
/// otherwise write to this terminal's clipboard. Every control character (C0, DEL, C1, so
/// every escape sequence's introducer) is shown visibly, in caret notation (`^[`, `^?`) or as
/// `<U+009B>`, and so are the Unicode controls that reorder or hide text (bidi overrides);
/// a tab becomes a space. What is printed is then only ever text. `--json` keeps the true
/// value (JSON escapes it).
pub fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
    };
    if !text.chars().any(unsafe_char) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push(' '),
            '\0'..='\x1f' => {
                out.push('^');
                out.push(char::from(c as u8 + 0x40));
            }
            '\x7f' => out.push_str("^?"),
            c if unsafe_char(c) => out.push_str(&format!("<U+{:04X}>", c as u32)),
            c => out.push(c),
        }
    }
    out.into()
}

/// A duration as people read it, to two units: `45s`, `4m 10s`, `2h 5m`, `3d 4h`.
pub fn duration(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_text_cannot_reach_the_terminal_as_control() {
        let table = [
            ("plain GPU name", "plain GPU name"),
            ("\x1b]52;c;cHduZWQ=\x07", "^[]52;c;cHduZWQ=^G"),
            ("\x1b]0;title\x1b\\", "^[]0;title^[\\"),
            ("\x1b[2J", "^[[2J"),
            ("\u{9b}2J", "<U+009B>2J"),
            ("a\tb", "a b"),
            ("line\nnext\r", "line^Jnext^M"),
            ("del\x7f", "del^?"),
            ("\u{202e}evil", "<U+202E>evil"),
            ("ünïcödé ✓", "ünïcödé ✓"),
        ];
        for (text, shown) in table {
            assert_eq!(clean(text), shown, "cleaning {text:?}");
            assert!(!clean(text).chars().any(|c| c.is_control()));
        }
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(12), "12s");
        assert_eq!(duration(250), "4m 10s");
        assert_eq!(duration(7500), "2h 5m");
        assert_eq!(duration(3 * 86400 + 4 * 3600), "3d 4h");
    }
}
