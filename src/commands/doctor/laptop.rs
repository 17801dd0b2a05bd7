//! Checks of this machine: the ssh and sshfs it will run, the config file, the private key, the
//! directory that holds the shared connection's socket, and the ssh config the profile uses.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Check, Ctx, Target};
use crate::commands::fs::{INSTALL_FUSE, INSTALL_SSHFS};
use crate::config::{self, expand_home, Notify};
use crate::remote::{sh, Remote};
use crate::ui;

/// The longest Unix socket path macOS takes (Linux: 108).
const SOCKET_PATH_MAX: usize = 104;
/// ssh creates the control socket under a temporary name: the path plus `.` and 16 characters.
const SOCKET_TEMP_SUFFIX: usize = 17;

/// The full path of a program on PATH, if it is there.
fn which(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0))
}

/// The line a program prints for its version (on stdout or stderr): the first that names
/// `word`, else the first.
fn version(program: &Path, flag: &str, word: &str) -> Option<String> {
    ui::trace_command(&program.to_string_lossy(), [flag]);
    let out = Command::new(program)
        .arg(flag)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = [out.stdout, out.stderr].concat();
    let text = String::from_utf8_lossy(&text);
    let mut lines = text.lines().map(str::trim);
    let first = lines.clone().next();
    lines
        .find(|l| l.contains(word))
        .or(first)
        .map(str::to_string)
}

fn install(linux: &str, macos: &str) -> String {
    if cfg!(target_os = "macos") {
        macos.into()
    } else {
        linux.into()
    }
}

pub fn ssh() -> Check {
    let id = "laptop.ssh";
    match which("ssh") {
        Some(path) => {
            let version = version(&path, "-V", "OpenSSH").unwrap_or_default();
            let version = version.split(',').next().unwrap_or("").trim();
            Check::ok(id, format!("{} ({version})", path.display()))
        }
        None => Check::problem(
            id,
            "ssh is not installed or not on PATH",
            install("sudo apt install openssh-client", "xcode-select --install"),
        ),
    }
}

pub fn sshfs() -> Check {
    let id = "laptop.sshfs";
    match which("sshfs") {
        Some(path) => {
            let version = version(&path, "-V", "SSHFS").unwrap_or_default();
            Check::ok(id, format!("{} ({version})", path.display()))
        }
        None => Check::warning(
            id,
            "sshfs is not installed: `fenton fs mount` needs it",
            Some(INSTALL_SSHFS.into()),
        ),
    }
}

pub fn fuse() -> Check {
    let id = "laptop.fuse";
    if cfg!(target_os = "macos") {
        let found = [
            "/Library/Filesystems/macfuse.fs",
            "/usr/local/lib/libfuse-t.dylib",
            "/opt/homebrew/lib/libfuse-t.dylib",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists());
        return match found {
            Some(path) => Check::ok(id, path),
            None => Check::warning(
                id,
                "neither macFUSE nor FUSE-T is installed: `fenton fs mount` needs one",
                Some(INSTALL_FUSE.into()),
            ),
        };
    }
    let Some(fusermount) = which("fusermount3").or_else(|| which("fusermount")) else {
        return Check::warning(
            id,
            "fusermount is not installed: `fenton fs mount` needs FUSE",
            Some(INSTALL_FUSE.into()),
        );
    };
    if !Path::new("/dev/fuse").exists() {
        return Check::warning(
            id,
            "/dev/fuse is missing, so nothing can be mounted (a container without FUSE?)",
            Some("sudo modprobe fuse".into()),
        );
    }
    Check::ok(id, format!("{} and /dev/fuse", fusermount.display()))
}

/// The config file's checks, and the profile they resolve to when it is usable. Unlike every
/// other command, doctor reads a config that others could write, to say so instead of dying.
pub fn config(ctx: &Ctx) -> (Vec<Check>, Option<Target>, Option<Notify>) {
    let path = match config::path(ctx.global.config.as_deref()) {
        Ok(path) => path,
        Err(e) => {
            return (
                vec![
                    Check::problem(
                        "config.file",
                        format!("{e:#}"),
                        "set HOME, or pass --config PATH",
                    ),
                    Check::skipped("config.profile", "no config file"),
                ],
                None,
                None,
            )
        }
    };
    let shown = path.display();
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            let (message, fix) = if e.kind() == std::io::ErrorKind::NotFound {
                (
                    format!("no config at {shown}"),
                    "fenton config init --host HOST".to_string(),
                )
            } else {
                (
                    format!("cannot read {shown}: {e}"),
                    format!("chmod 600 {}", sh::quote_path(&path)),
                )
            };
            return (
                vec![
                    Check::problem("config.file", message, fix),
                    Check::skipped("config.profile", "no config file"),
                ],
                None,
                None,
            );
        }
    };
    let mode = fs::metadata(&path).map_or(0, |m| m.mode() & 0o777);
    let parsed = config::parse(&text, &path);
    let file_check = match &parsed {
        Err(e) => Check::problem(
            "config.file",
            format!("{e:#}"),
            format!("edit {shown} at the line and column given (see fenton.example.toml for every key)"),
        ),
        Ok(_) if mode & 0o022 != 0 => Check::problem(
            "config.file",
            format!("{shown} has mode {mode:04o}: others can write it, so they could change what fenton runs"),
            format!("chmod go-w {}", sh::quote_path(&path)),
        ),
        Ok(file) if mode & 0o044 != 0 && file.holds_secret() => Check::warning(
            "config.file",
            format!("{shown} holds a secret and has mode {mode:04o}: others can read it"),
            Some(format!("chmod 600 {}", sh::quote_path(&path))),
        ),
        Ok(_) => Check::ok("config.file", format!("{shown} (mode {mode:04o})")),
    };
    let Ok(file) = parsed else {
        return (
            vec![
                file_check,
                Check::skipped("config.profile", "the config does not parse"),
            ],
            None,
            None,
        );
    };
    let notify = Some(file.notify.clone());
    let loaded = config::Loaded { path, file };
    match loaded.profile(ctx.global.profile.as_deref()) {
        Ok((name, profile)) => {
            let who = profile
                .user
                .as_ref()
                .map_or(String::new(), |u| format!("{u}@"));
            let check = Check::ok(
                "config.profile",
                format!("profile {name:?}: {who}{}", profile.host),
            );
            let target = Target {
                name,
                profile,
                config_path: loaded.path,
            };
            (vec![file_check, check], Some(target), notify)
        }
        Err(e) => (
            vec![
                file_check,
                Check::problem(
                    "config.profile",
                    format!("{e:#}"),
                    "pick a profile with -p NAME, or set `default = \"NAME\"` at the top of the config",
                ),
            ],
            None,
            notify,
        ),
    }
}

/// What ssh will really use for this profile: `ssh -G` with fenton's own options.
pub struct SshSettings {
    values: BTreeMap<String, Vec<String>>,
}

impl SshSettings {
    pub fn resolve(target: &Target, remote: Option<&Remote>) -> Result<SshSettings, String> {
        let Some(remote) = remote else {
            return Err("no control directory".into());
        };
        let mut cmd = Command::new("ssh");
        cmd.arg("-G")
            .args(remote.ssh_options())
            .args(remote.destination());
        ui::trace_command("ssh", cmd.get_args());
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run ssh: {e}"))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            let line = text.lines().next().unwrap_or("ssh -G failed").trim();
            return Err(format!(
                "ssh cannot read the settings of {}: {line}",
                target.profile.host
            ));
        }
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((key, value)) = line.split_once(' ') {
                values
                    .entry(key.to_string())
                    .or_default()
                    .push(value.to_string());
            }
        }
        Ok(SshSettings { values })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key)?.first().map(String::as_str)
    }

    pub fn all(&self, key: &str) -> &[String] {
        self.values.get(key).map_or(&[], Vec::as_slice)
    }
}

pub fn identity(target: &Target, settings: Option<&SshSettings>) -> Check {
    let id = "laptop.identity";
    let section = target.section("");
    if let Some(configured) = &target.profile.identity_file {
        let path = expand_home(configured);
        if !path.is_file() {
            return Check::problem(
                id,
                format!("identity_file {} does not exist", path.display()),
                format!(
                    "fix `identity_file` {section}, or make a key: ssh-keygen -t ed25519 -f {}",
                    sh::quote_path(&path)
                ),
            );
        }
    }
    let mut keys: Vec<PathBuf> = target
        .profile
        .identity_file
        .iter()
        .map(|f| expand_home(f))
        .collect();
    for file in settings.map_or(&[][..], |s| s.all("identityfile")) {
        let path = expand_home(file);
        if !file.contains('%') && path.is_file() && !keys.contains(&path) {
            keys.push(path);
        }
    }
    let mut fine = Vec::new();
    for key in &keys {
        let mode = fs::metadata(key).map_or(0, |m| m.permissions().mode() & 0o777);
        if mode & 0o077 != 0 {
            return Check::problem(
                id,
                format!(
                    "private key {} has mode {mode:04o}: ssh refuses a key others can read",
                    key.display()
                ),
                format!("chmod 600 {}", sh::quote_path(key)),
            );
        }
        fine.push(format!("{} ({mode:04o})", key.display()));
    }
    if !fine.is_empty() {
        return Check::ok(id, fine.join(", "));
    }
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        return Check::ok(id, "no key file: ssh-agent offers the keys");
    }
    Check::warning(
        id,
        "no private key found and no ssh-agent: ssh can only ask for a password",
        Some(format!(
            "ssh-keygen -t ed25519 -f ~/.ssh/fenton_ed25519, copy it to the box with ssh-copy-id -i ~/.ssh/fenton_ed25519, and write `identity_file = \"~/.ssh/fenton_ed25519\"` {section}"
        )),
    )
}

pub fn control_dir(remote: &anyhow::Result<Remote>) -> Check {
    let id = "laptop.control_dir";
    let remote = match remote {
        Ok(remote) => remote,
        Err(e) => {
            return Check::problem(
                id,
                format!("{e:#}"),
                "remove that path, or set XDG_RUNTIME_DIR to a private directory of yours",
            )
        }
    };
    let socket = remote.control_path();
    let dir = socket.parent().unwrap_or(Path::new("/"));
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) => {
            return Check::problem(
                id,
                format!("cannot read {}: {e}", dir.display()),
                format!("mkdir -m 700 {}", sh::quote_path(dir)),
            )
        }
    };
    let mode = meta.mode() & 0o777;
    if meta.uid() != nix::unistd::getuid().as_raw() || mode & 0o077 != 0 {
        return Check::problem(
            id,
            format!(
                "{} (mode {mode:04o}) is not private to you: others could use your connection",
                dir.display()
            ),
            format!("chmod 700 {}", sh::quote_path(dir)),
        );
    }
    let length = socket.as_os_str().len() + SOCKET_TEMP_SUFFIX;
    if length > SOCKET_PATH_MAX {
        return Check::problem(
            id,
            format!(
                "socket paths in {} are {length} bytes, over the {SOCKET_PATH_MAX} a Unix socket may have",
                dir.display()
            ),
            "set XDG_RUNTIME_DIR to a shorter directory (or unset it: fenton then uses /tmp/fenton-UID)",
        );
    }
    Check::ok(
        id,
        format!(
            "{} (mode {mode:04o}, socket paths {length} of {SOCKET_PATH_MAX} bytes)",
            dir.display()
        ),
    )
}

/// Points out a `Host *` block that comes before the profile's own `Host` block and sets what
/// that block sets: ssh takes the first value it reads, so the host's own lines are ignored.
pub fn ssh_config(target: &Target, settings: &Result<SshSettings, String>) -> Check {
    let id = "laptop.ssh_config";
    let section = target.section("");
    let path = match &target.profile.ssh_config {
        Some(file) => expand_home(file),
        None => expand_home("~/.ssh/config"),
    };
    if target.profile.ssh_config.is_some() && !path.is_file() {
        return Check::problem(
            id,
            format!("ssh_config {} does not exist", path.display()),
            format!("fix or remove `ssh_config` {section}"),
        );
    }
    if let Err(e) = settings {
        return Check::problem(id, e.clone(), format!("fix {}", path.display()));
    }
    let Ok(text) = fs::read_to_string(&path) else {
        return Check::ok(id, format!("no {} (ssh's defaults)", path.display()));
    };
    let shown = path.display();
    match overrides(&text, &target.profile.host) {
        Some(found) => Check::warning(
            id,
            format!(
                "{shown}:{} `Host *` sets {} before `Host {}` (line {}), so that block's values are ignored",
                found.wildcard_line,
                found.keys.join(", "),
                target.profile.host,
                found.host_line
            ),
            Some(format!("move the `Host *` block to the end of {shown}")),
        ),
        None => Check::ok(id, format!("{shown}: no `Host *` block overrides {}", target.profile.host)),
    }
}

#[derive(Debug, PartialEq)]
struct Override {
    wildcard_line: usize,
    host_line: usize,
    keys: Vec<String>,
}

/// ssh keywords whose values add up instead of the first one winning.
const CUMULATIVE: [&str; 6] = [
    "identityfile",
    "certificatefile",
    "localforward",
    "remoteforward",
    "dynamicforward",
    "sendenv",
];

/// The first `Host *` block before `host`'s own block that sets one of its keywords.
fn overrides(text: &str, host: &str) -> Option<Override> {
    struct Block {
        line: usize,
        wildcard: bool,
        matches: bool,
        keys: Vec<String>,
    }
    let mut blocks: Vec<Block> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, rest) = line
            .split_once(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or((line, ""));
        let key = key.to_ascii_lowercase();
        match key.as_str() {
            "host" => {
                let patterns: Vec<&str> = rest.split_whitespace().collect();
                blocks.push(Block {
                    line: number + 1,
                    wildcard: patterns.contains(&"*"),
                    matches: host_matches(&patterns, host),
                    keys: Vec::new(),
                });
            }
            "match" => blocks.push(Block {
                line: number + 1,
                wildcard: false,
                matches: false,
                keys: Vec::new(),
            }),
            _ => {
                if let Some(block) = blocks.last_mut() {
                    if !CUMULATIVE.contains(&key.as_str()) {
                        block.keys.push(key);
                    }
                }
            }
        }
    }
    let host_block = blocks.iter().position(|b| b.matches && !b.wildcard)?;
    blocks[..host_block]
        .iter()
        .filter(|b| b.wildcard)
        .find_map(|wildcard| {
            let keys: Vec<String> = wildcard
                .keys
                .iter()
                .filter(|k| blocks[host_block].keys.contains(k))
                .cloned()
                .collect();
            (!keys.is_empty()).then(|| Override {
                wildcard_line: wildcard.line,
                host_line: blocks[host_block].line,
                keys,
            })
        })
}

/// ssh's `Host` matching: any pattern matches and no negated one does.
fn host_matches(patterns: &[&str], host: &str) -> bool {
    let mut matched = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated, host) => return false,
            Some(_) => {}
            None => matched |= glob(pattern, host),
        }
    }
    matched
}

fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first().is_some_and(|x| x.eq_ignore_ascii_case(c)) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_before_the_host_block_is_found() {
        let text = "Host *\n  User nobody\n  ServerAliveInterval 30\n  IdentityFile ~/.ssh/x\n\nHost gpu box\n  User tom\n  IdentityFile ~/.ssh/y\n";
        assert_eq!(
            overrides(text, "box"),
            Some(Override {
                wildcard_line: 1,
                host_line: 6,
                keys: vec!["user".into()],
            })
        );
    }

    #[test]
    fn wildcard_after_the_host_block_is_fine() {
        let text = "Host box\n  User tom\nHost *\n  User nobody\n";
        assert_eq!(overrides(text, "box"), None);
        assert_eq!(
            overrides("Host *\n  User x\nHost other\n  User y\n", "box"),
            None
        );
    }

    #[test]
    fn host_patterns_follow_ssh() {
        assert!(host_matches(&["*.lab", "gpu?"], "gpu1"));
        assert!(host_matches(&["*.LAB"], "a.lab"));
        assert!(!host_matches(&["*", "!box"], "box"));
        assert!(!host_matches(&["other"], "box"));
    }
}
