//! `fenton config init | show | path | profiles`.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

use anyhow::{bail, Context, Result};

use super::Ctx;
use crate::cli::{ConfigCommand, InitArgs};
use crate::config::{mask_url, Notify, Profile, MASK};
use crate::exit::Exit;

pub fn run(ctx: &Ctx, command: ConfigCommand) -> Result<Exit> {
    match command {
        ConfigCommand::Init(args) => init(ctx, args),
        ConfigCommand::Show => show(ctx),
        ConfigCommand::Path => {
            crate::outln!(
                "{}",
                crate::config::path(ctx.global.config.as_deref())?.display()
            );
            Ok(Exit::Success)
        }
        ConfigCommand::Profiles => {
            let loaded = ctx.config()?;
            let default = loaded.profile(None).ok().map(|(name, _)| name);
            for (name, profile) in &loaded.file.profile {
                let mark = if Some(name) == default.as_ref() {
                    '*'
                } else {
                    ' '
                };
                crate::outln!("{mark} {name}\t{}", profile.host);
            }
            Ok(Exit::Success)
        }
    }
}

fn init(ctx: &Ctx, mut args: InitArgs) -> Result<Exit> {
    let path = crate::config::path(ctx.global.config.as_deref())?;
    if !valid_name(&args.name) {
        bail!(
            "profile name {:?} may hold only letters, digits, '-' and '_'",
            args.name
        );
    }
    let existing = match crate::config::read_small(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if let Some(text) = &existing {
        let file = crate::config::parse(text, &path)?;
        if file.profile.contains_key(&args.name) {
            bail!(
                "profile {:?} already exists in {}: edit it there, or pick another --name",
                args.name,
                path.display()
            );
        }
    }
    if args.host.is_none() {
        args.host = Some(ask(
            "Host of the box (a name, an address, or an ssh config alias)",
        )?);
    }
    let host = args.host.clone().unwrap_or_default();
    if host.is_empty() || host.starts_with('-') {
        bail!("--host must be a host name, an address or an ssh alias, not {host:?}");
    }

    let profile = profile_text(&args);
    let text = match &existing {
        Some(text) if args.set_default => {
            format!("{}\n{profile}", with_default(text, &args.name).trim_end())
        }
        Some(text) => format!("{}\n{profile}", text.trim_end()),
        None => format!(
            "# fenton's config. Every key is explained in fenton.example.toml.\n\
             default = {}\n\n{profile}",
            toml_string(&args.name)
        ),
    };
    // Check what we are about to write, so a bad flag cannot leave a broken file behind.
    crate::config::parse(&text, &path)?;
    if let Some(dir) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("toml.new");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    let verb = if existing.is_some() {
        "added profile"
    } else {
        "wrote"
    };
    crate::ui::info(format_args!(
        "{verb} {:?} to {}; try `fenton -p {} exec -- uname -a`",
        args.name,
        path.display(),
        args.name
    ));
    Ok(Exit::Success)
}

/// The config text with its top-level `default` naming `name`: the line replaced where there
/// is one (before the first table), else added after the opening comments.
fn with_default(text: &str, name: &str) -> String {
    let line = format!("default = {}", toml_string(name));
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let top = lines
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .unwrap_or(lines.len());
    let key = |l: &str| {
        let l = l.trim_start();
        l.strip_prefix("default")
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    match lines[..top].iter().position(|l| key(l)) {
        Some(i) => lines[i] = line,
        None => {
            let after_comments = lines[..top]
                .iter()
                .position(|l| !l.trim_start().starts_with('#'))
                .unwrap_or(top);
            lines.insert(after_comments, line);
        }
    }
    lines.join("\n") + "\n"
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

fn profile_text(args: &InitArgs) -> String {
    let line = |key: &str, value: Option<String>, example: &str| match value {
        Some(value) => format!("{key} = {value}\n"),
        None => format!("# {key} = {example}\n"),
    };
    let mut out = format!("[profile.{}]\n", args.name);
    out += &line(
        "host",
        args.host.as_deref().map(toml_string),
        "\"10.23.45.67\"",
    );
    out += &line(
        "user",
        args.user.as_deref().map(toml_string),
        "\"tom\"               # else your ssh config's, else your local user",
    );
    out += &line("port", args.port.map(|p| p.to_string()), "22");
    out += &line(
        "identity_file",
        args.identity_file.as_deref().map(toml_string),
        "\"~/.ssh/id_ed25519\"",
    );
    out += &line(
        "ssh_config",
        args.ssh_config.as_deref().map(toml_string),
        "\"~/.ssh/config\"",
    );
    out += "# remote_dir = \"~/.fenton\"     # fenton's state on the box (jobs, tokens)\n";
    out
}

/// The config as `show` prints it: every secret masked (tokens, URLs with their topic or
/// password, and `jupyter.setup`, which may export one: it says that it is set).
fn masked(notify: &Notify, mut profile: Profile) -> (Notify, Profile) {
    let mut notify = notify.clone();
    if let Some(t) = notify.telegram.as_mut() {
        if t.bot_token.is_some() {
            t.bot_token = Some(MASK.into());
        }
        t.api_url = mask_url(&t.api_url);
    }
    if let Some(n) = notify.ntfy.as_mut() {
        if n.token.is_some() {
            n.token = Some(MASK.into());
        }
        n.url = mask_url(&n.url);
    }
    if let Some(w) = notify.webhook.as_mut() {
        w.url = mask_url(&w.url);
    }
    if !profile.jupyter.setup.is_empty() {
        profile.jupyter.setup = MASK.into();
    }
    (notify, profile)
}

fn ask(question: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to ask on: give --host HOST");
    }
    eprint!("{question}: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim().to_string())
}

fn show(ctx: &Ctx) -> Result<Exit> {
    let loaded = ctx.config()?;
    let (name, profile) = loaded.profile(ctx.global.profile.as_deref())?;
    let (notify, profile) = masked(&loaded.file.notify, profile);
    crate::outln!("# profile {name:?} from {}", loaded.path.display());
    let mut out = toml::Table::new();
    let mut profiles = toml::Table::new();
    profiles.insert(name, toml::Value::try_from(&profile)?);
    out.insert("profile".into(), profiles.into());
    let notify = toml::Value::try_from(&notify)?;
    if notify.as_table().is_some_and(|t| !t.is_empty()) {
        out.insert("notify".into(), notify);
    }
    crate::out!("{}", toml::to_string_pretty(&out)?);
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_default_replaces_or_adds_the_top_level_key() {
        let text = "# mine\ndefault = \"a\"\n\n[profile.a]\nhost = \"h\"\ndefault = \"x\"\n";
        assert_eq!(
            with_default(text, "lab"),
            "# mine\ndefault = \"lab\"\n\n[profile.a]\nhost = \"h\"\ndefault = \"x\"\n"
        );
        let text = "# mine\n[profile.a]\nhost = \"h\"\n";
        assert_eq!(
            with_default(text, "lab"),
            "# mine\ndefault = \"lab\"\n[profile.a]\nhost = \"h\"\n"
        );
        assert!(!with_default("defaults_x = 1\n", "a").contains("defaults_x = \"a\""));
    }
}
