//! How fenton ends: the exit status a command asks for, and the one-line report of an error.
//!
//! 0 success; a remote command's own status for `ssh`/`exec`; 255 when ssh itself failed, as
//! ssh does; 1 for fenton's own errors; 2 for usage errors (clap's); 130 on Ctrl-C.

use std::io::Write;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// A check failed; what failed was already said.
    Failure,
    /// The remote command's own exit status.
    Remote(u8),
    Interrupted,
}

impl Exit {
    /// The exit for a remote command's status.
    pub fn from_code(code: i32) -> Exit {
        match code {
            0 => Exit::Success,
            code => Exit::Remote(u8::try_from(code).unwrap_or(255)),
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(match exit {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Remote(code) => code,
            Exit::Interrupted => 130,
        })
    }
}

/// ssh itself failed (no connection, refused key, changed host key): exit 255, as ssh does.
#[derive(Debug)]
pub struct SshFailed(pub String);

impl std::fmt::Display for SshFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SshFailed {}

/// Prints an error once, on one line with its causes, and picks the exit status for it.
pub fn report(error: &anyhow::Error) -> ExitCode {
    if let Some(io) = error.downcast_ref::<std::io::Error>() {
        if io.kind() == std::io::ErrorKind::BrokenPipe {
            return ExitCode::from(0);
        }
    }
    let text = format!("{error:#}");
    // Errors quote the box (what a script said): shown as text, on one line.
    // Where stderr itself is what failed (a full disk), there is no one to tell.
    let _ = writeln!(
        std::io::stderr(),
        "fenton: {}",
        crate::ui::clean(&text.replace('\n', " "))
    );
    if error.downcast_ref::<SshFailed>().is_some() {
        ExitCode::from(255)
    } else {
        ExitCode::from(1)
    }
}
