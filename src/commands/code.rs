//! `fenton code [DIR]` and `fenton ssh-config`: the editor on the box, and the ssh Host entry
//! it (or any other ssh tool) reaches the box by, over fenton's shared connection.

use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::Ctx;
use crate::cli::{CodeArgs, SshConfigArgs};
use crate::exit::Exit;
use crate::remote::{runtime, scripts, sh, ssh_config, Remote, STEP_LIMIT};
use crate::ui;

/// The oldest glibc VS Code's server runs on, since VS Code 1.99.
const GLIBC_NEEDED: (u32, u32) = (2, 28);

pub fn code(ctx: &Ctx, args: CodeArgs) -> Result<Exit> {
    let loaded = ctx.config()?;
    let (name, profile) = loaded.profile(ctx.global.profile.as_deref())?;
    let editor = args
        .editor
        .or_else(|| loaded.file.editor.clone())
        .unwrap_or_else(|| "code".into());
    check_editor(&editor)?;
    let remote = Remote::new(name, profile)?;
    let alias = ssh_config::alias(&remote.name)?;
    let managed = write_entry(&remote)?;

    let dir = args.dir.unwrap_or_else(|| "~".into());
    let line = format!("sh -s -- {}", sh::path(&dir));
    let rt = runtime()?;
    let out = rt.block_on(remote.within(
        STEP_LIMIT,
        "looking for the editor's directory",
        scripts::output(&remote, &line, scripts::CODE),
    ))?;
    let facts = Facts::parse(&String::from_utf8_lossy(&out.stdout));
    if facts.os.as_deref() == Some("Linux") {
        match libc(&facts) {
            Libc::Glibc(have) if have < GLIBC_NEEDED => bail!(
                "{} has glibc {}.{}, and the editor's server needs {}.{} or newer since VS Code 1.99: use VS Code 1.98 or older for this box, or a newer Linux there (Ubuntu 20.04, Debian 10, RHEL 8 or later)",
                remote.profile.host,
                have.0,
                have.1,
                GLIBC_NEEDED.0,
                GLIBC_NEEDED.1
            ),
            Libc::Glibc(_) | Libc::Musl => {}
            Libc::Unknown => ui::debug(format_args!(
                "could not tell the C library of {} (getconf said {:?}, ldd {:?}); trying anyway",
                remote.profile.host,
                facts.getconf.as_deref().unwrap_or(""),
                facts.ldd.as_deref().unwrap_or("")
            )),
        }
    }
    let remote_dir = match (&facts.dir, facts.dir_problem.as_deref()) {
        (Some(found), None) => found.clone(),
        (_, problem) => {
            let why = match problem {
                Some("missing") => "does not exist",
                Some("not_a_directory") => "is not a directory",
                Some("denied") => "cannot be entered (permissions)",
                _ => "could not be looked at",
            };
            bail!(
                "{} on {} {why}: give a directory that is there (relative to the remote home, or absolute)",
                ui::clean(&dir),
                remote.profile.host
            );
        }
    };

    include(&managed, &alias, args.setup, true)?;
    let mut cmd = std::process::Command::new(&editor);
    cmd.arg("--remote")
        .arg(format!("ssh-remote+{alias}"))
        .arg(&remote_dir);
    ui::trace_command(&editor, cmd.get_args());
    let error = cmd.exec();
    Err(error).with_context(|| format!("cannot run {editor}"))
}

pub fn ssh_config(ctx: &Ctx, args: SshConfigArgs) -> Result<Exit> {
    let managed = ssh_config::managed_path()?;
    if args.path {
        crate::outln!("{}", managed.display());
        return Ok(Exit::Success);
    }
    let loaded = ctx.config()?;
    let wanted = args.name.as_deref().or(ctx.global.profile.as_deref());
    let (name, profile) = loaded.profile(wanted)?;
    let remote = Remote::new(name, profile)?;
    let alias = ssh_config::alias(&remote.name)?;
    let entry = ssh_config::entry(&remote)?;
    ssh_config::store(&managed, &alias, &entry)?;
    crate::out!("{entry}");
    if args.setup {
        include(&managed, &alias, true, false)?;
    }
    Ok(Exit::Success)
}

/// Writes the profile's entry into fenton's ssh config file; answers the file's path.
fn write_entry(remote: &Remote) -> Result<PathBuf> {
    let managed = ssh_config::managed_path()?;
    let alias = ssh_config::alias(&remote.name)?;
    ssh_config::store(&managed, &alias, &ssh_config::entry(remote)?)?;
    Ok(managed)
}

/// Makes ~/.ssh/config include fenton's file, with the user's consent: `setup` (they asked),
/// or a question on a terminal, asked once (`may_ask`). Without it, a line says how.
fn include(managed: &Path, alias: &str, setup: bool, may_ask: bool) -> Result<()> {
    let home = dirs::home_dir().context("cannot tell your home directory: set HOME")?;
    let config = home.join(".ssh/config");
    let text = std::fs::read(&config)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    if ssh_config::includes(&text, managed, &home) {
        if setup {
            ui::info(format_args!(
                "~/.ssh/config already includes {}",
                managed.display()
            ));
        }
        return Ok(());
    }
    let line = ssh_config::include_line(managed, &home);
    let agreed = if setup {
        true
    } else if may_ask && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        ask_once(managed, alias, &line)?
    } else {
        false
    };
    if !agreed {
        ui::warn(format_args!(
            "~/.ssh/config does not include fenton's ssh config, so the editor may not know host {alias}: run `fenton code --setup` once to add the line `{line}` at its top (or point the editor's remote.SSH.configFile at {})",
            managed.display()
        ));
        return Ok(());
    }
    match ssh_config::add_include(&config, managed, &home)? {
        ssh_config::Added::Already => {}
        ssh_config::Added::Added(backup) => ui::info(format_args!(
            "added `{line}` at the top of ~/.ssh/config{}",
            backup
                .map(|b| format!(" (as it was: {})", b.display()))
                .unwrap_or_default()
        )),
    }
    Ok(())
}

/// Asks whether to add the Include line, unless asked before (the answer is kept beside
/// fenton's file): true for yes.
fn ask_once(managed: &Path, alias: &str, line: &str) -> Result<bool> {
    let asked = managed.with_file_name("ssh_config.asked");
    if asked.exists() {
        return Ok(false);
    }
    eprint!(
        "fenton: add the line `{line}` at the top of ~/.ssh/config, so that the editor (and ssh, scp, rsync) know host {alias}? A copy of the file is kept. [y/N] "
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    let yes = matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES");
    if let Some(dir) = asked.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&asked, if yes { "yes\n" } else { "no\n" })
        .with_context(|| format!("cannot write {}", asked.display()))?;
    Ok(yes)
}

/// Refuses an editor that cannot be run, before anything happens on the box.
fn check_editor(editor: &str) -> Result<()> {
    if editor.is_empty() || editor.starts_with('-') || editor.chars().any(char::is_control) {
        bail!("{editor:?} cannot name an editor: give a program, e.g. --editor code");
    }
    let found = if editor.contains('/') {
        std::fs::metadata(editor).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    } else {
        crate::remote::on_path(editor)
    };
    if !found {
        let hint = if editor == "code" {
            "in VS Code, run \"Shell Command: Install 'code' command in PATH\", or name another editor with --editor"
        } else {
            "install it, or name another editor with --editor (or `editor` in the config)"
        };
        bail!("the editor `{}` is not on PATH: {hint}", ui::clean(editor));
    }
    Ok(())
}

/// What the box's script said.
#[derive(Debug, Default, PartialEq)]
struct Facts {
    os: Option<String>,
    getconf: Option<String>,
    ldd: Option<String>,
    dir: Option<String>,
    dir_problem: Option<String>,
}

impl Facts {
    /// `key=value` lines; `dir=` is the last and runs to the end (a name may hold newlines).
    fn parse(text: &str) -> Facts {
        let mut facts = Facts::default();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(dir) = rest.strip_prefix("dir=") {
                facts.dir = Some(dir.strip_suffix('\n').unwrap_or(dir).to_string());
                break;
            }
            let (line, next) = rest.split_once('\n').unwrap_or((rest, ""));
            rest = next;
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = Some(value.to_string());
            match key {
                "os" => facts.os = value,
                "getconf" => facts.getconf = value,
                "ldd" => facts.ldd = value,
                "dir_problem" => facts.dir_problem = value,
                _ => {}
            }
        }
        facts
    }
}

/// The box's C library.
#[derive(Debug, PartialEq)]
enum Libc {
    Glibc((u32, u32)),
    Musl,
    Unknown,
}

/// The C library from `getconf GNU_LIBC_VERSION` (`glibc 2.31`), else from the first line of
/// `ldd --version` (`ldd (Ubuntu GLIBC 2.35-0ubuntu3.8) 2.35`, `musl libc (x86_64)`).
fn libc(facts: &Facts) -> Libc {
    let getconf = facts.getconf.as_deref().unwrap_or("").trim();
    if let Some(version) = getconf.strip_prefix("glibc ").and_then(version) {
        return Libc::Glibc(version);
    }
    let ldd = facts.ldd.as_deref().unwrap_or("");
    let lower = ldd.to_ascii_lowercase();
    if lower.contains("musl") {
        return Libc::Musl;
    }
    if lower.contains("glibc") || lower.contains("gnu libc") || lower.contains("gnu c library") {
        if let Some(v) = ldd.split_whitespace().last().and_then(version) {
            return Libc::Glibc(v);
        }
    }
    Libc::Unknown
}

/// `2.28` (or `2.28.9000`, `2.35-0ubuntu3`) as (2, 28).
fn version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_box_answer_is_read_as_data() {
        let facts = Facts::parse(
            "os=Linux\ngetconf=glibc 2.31\nldd=ldd (GNU libc) 2.31\nnoise\ndir=/home/t/a\nb=c\n",
        );
        assert_eq!(facts.os.as_deref(), Some("Linux"));
        assert_eq!(facts.dir.as_deref(), Some("/home/t/a\nb=c"));
        assert_eq!(libc(&facts), Libc::Glibc((2, 31)));
        let missing = Facts::parse("os=Linux\ndir_problem=missing\n");
        assert_eq!(missing.dir, None);
        assert_eq!(missing.dir_problem.as_deref(), Some("missing"));
    }

    #[test]
    fn glibc_versions_are_read_defensively() {
        let facts = |getconf: &str, ldd: &str| Facts {
            getconf: Some(getconf.into()),
            ldd: Some(ldd.into()),
            ..Facts::default()
        };
        assert_eq!(libc(&facts("glibc 2.17", "")), Libc::Glibc((2, 17)));
        assert_eq!(
            libc(&facts("", "ldd (Ubuntu GLIBC 2.35-0ubuntu3.8) 2.35")),
            Libc::Glibc((2, 35))
        );
        assert_eq!(
            libc(&facts("", "ldd (GNU libc) 2.28.9000")),
            Libc::Glibc((2, 28))
        );
        assert_eq!(libc(&facts("", "musl libc (x86_64)")), Libc::Musl);
        for unknown in [
            ("", ""),
            ("glibc", "ldd: not found"),
            ("glibc x.y", "ldd (GNU libc) two"),
            ("glibc 99999999999.1", "sh: ldd: command not found"),
        ] {
            assert_eq!(
                libc(&facts(unknown.0, unknown.1)),
                Libc::Unknown,
                "{unknown:?}"
            );
        }
        assert!((2, 27) < GLIBC_NEEDED && (2, 28) >= GLIBC_NEEDED && (3, 0) > GLIBC_NEEDED);
    }
}
