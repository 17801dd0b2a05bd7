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

/// A line for the user about what fenton did, on stderr; silent under `-q`.
pub fn info(args: Arguments) {
    if !settings().quiet {
        eprintln!("fenton: {args}");
    }
}

/// Something the user should fix but that does not stop the command.
pub fn warn(args: Arguments) {
    eprintln!("fenton: warning: {args}");
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
        eprintln!("fenton: {args}");
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
    fn durations_read_well() {
        assert_eq!(duration(12), "12s");
        assert_eq!(duration(250), "4m 10s");
        assert_eq!(duration(7500), "2h 5m");
        assert_eq!(duration(3 * 86400 + 4 * 3600), "3d 4h");
    }
}
