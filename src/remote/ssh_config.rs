//! The ssh Host entry fenton keeps for each profile, so that other programs (an editor's
//! remote extension, scp, rsync, JetBrains Gateway) reach the box over fenton's shared
//! connection: the same control socket, so no second handshake or password prompt.
//!
//! The entry is made from ssh's own reading (`ssh -G`) of the very options fenton's commands
//! give ssh, plus fenton's shared options ([`Remote::shared_options`]): the two cannot
//! disagree. Entries live in a file of fenton's own (0600), which `~/.ssh/config` may include
//! with one line at its top, added only when the user agrees.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::Remote;
use crate::ui;

/// The Host alias of a profile's entry. Only characters that ssh takes as a plain host name
/// (no pattern, no space, nothing that could end the line) may make it, so that no profile
/// name can add a directive to the file.
pub fn alias(profile: &str) -> Result<String> {
    let plain = !profile.is_empty()
        && !profile.starts_with(['-', '.'])
        && profile
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !plain {
        bail!(
            "the profile name {profile:?} cannot name an ssh host (letters, digits, '.', '_' and '-' only, not first): rename the profile in the config"
        );
    }
    Ok(format!("fenton-{profile}"))
}

/// Keys of `ssh -G` copied into the entry when the profile's settings make them differ from
/// ssh's defaults, with how each is written back.
const COPIED: [(&str, &str, Kind); 10] = [
    ("identityfile", "IdentityFile", Kind::Raw),
    ("identitiesonly", "IdentitiesOnly", Kind::Raw),
    ("certificatefile", "CertificateFile", Kind::Raw),
    ("identityagent", "IdentityAgent", Kind::Raw),
    ("proxyjump", "ProxyJump", Kind::Raw),
    ("proxycommand", "ProxyCommand", Kind::Line),
    (
        "userknownhostsfile",
        "UserKnownHostsFile",
        Kind::ExpandedList,
    ),
    (
        "globalknownhostsfile",
        "GlobalKnownHostsFile",
        Kind::ExpandedList,
    ),
    ("hostkeyalias", "HostKeyAlias", Kind::Raw),
    ("forwardagent", "ForwardAgent", Kind::Raw),
];

/// How a value that `ssh -G` printed goes back into a config file.
#[derive(Clone, Copy)]
enum Kind {
    /// One value as the config had it (`%h` still a token): quoted when it holds a space.
    Raw,
    /// One value ssh has already expanded: `%` doubled so it stays a `%`.
    Expanded,
    /// Several expanded values, space-separated, as ssh printed them.
    ExpandedList,
    /// The rest of the line, as ssh takes it (a command).
    Line,
}

/// ssh's own reading of the options fenton gives ssh for this profile, or of none at all
/// (`baseline`: what ssh does by default for the same host name).
fn resolved(remote: &Remote, baseline: bool) -> Result<String> {
    let mut cmd = Command::new("ssh");
    cmd.arg("-G");
    if baseline {
        cmd.args(["-F", "/dev/null"]);
    } else {
        cmd.args(remote.ssh_options());
    }
    cmd.args(remote.destination())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    ui::trace_command("ssh", cmd.get_args());
    match ssh_g(cmd)? {
        Ok(stdout) => Ok(String::from_utf8_lossy(&stdout).into_owned()),
        Err(said) => bail!(
            "ssh cannot read the settings for {}: {said}",
            remote.profile.host
        ),
    }
}

/// Runs an `ssh -G` (stderr piped), bounded: its stdout, or the last line it complained
/// with, made safe for a terminal.
fn ssh_g(cmd: Command) -> Result<std::result::Result<Vec<u8>, String>> {
    let out = crate::proc::run_bounded(cmd, Some(Duration::from_secs(10)))
        .context("cannot run ssh")?
        .context("`ssh -G` did not answer within 10 s")?;
    if out.status.success() {
        return Ok(Ok(out.stdout));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    Ok(Err(ui::clean(said.trim()).to_string()))
}

/// The Host entry of a profile, as ssh_config text.
pub fn entry(remote: &Remote) -> Result<String> {
    let alias = alias(&remote.name)?;
    // ssh prints its settings a line each: a newline in a value would make a line of its own.
    let p = &remote.profile;
    for (key, value) in [
        ("user", p.user.as_deref()),
        ("identity_file", p.identity_file.as_deref()),
        ("ssh_config", p.ssh_config.as_deref()),
    ] {
        if value.is_some_and(|v| v.chars().any(char::is_control)) {
            bail!("the profile's `{key}` holds a control character (a newline?): fix it in the config");
        }
    }
    let mut options = remote.shared_options(remote.control_path());
    // The editor may come after the shared connection has gone: it opens one that fenton's
    // next command reuses, as fenton's own would.
    options.push(("ControlMaster", "auto".into()));
    options.push(("ControlPersist", remote.profile.control_persist.to_string()));
    render(
        &alias,
        &remote.name,
        &resolved(remote, false)?,
        &resolved(remote, true)?,
        &options,
    )
}

/// The entry from `ssh -G`'s answers (`resolved` for the profile, `baseline` for ssh's
/// defaults) and fenton's own options. Pure, for tests.
fn render(
    alias: &str,
    profile: &str,
    resolved: &str,
    baseline: &str,
    ours: &[(&str, String)],
) -> Result<String> {
    let values = |text: &str, key: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .map(str::to_string)
            .collect()
    };
    let one = |key: &str| values(resolved, key).into_iter().next();
    let mut lines = vec![
        format!("Host {alias}"),
        format!("  # fenton's profile {profile:?}: written by fenton, which replaces this entry; change the profile instead"),
    ];
    let mut add = |keyword: &str, value: &str, kind: Kind| -> Result<()> {
        lines.push(format!("  {keyword} {}", written(keyword, value, kind)?));
        Ok(())
    };
    let host = one("hostname").context("`ssh -G` named no host name")?;
    add("HostName", &host, Kind::Expanded)?;
    if let Some(user) = one("user") {
        add("User", &user, Kind::Raw)?;
    }
    if let Some(port) = one("port") {
        add("Port", &port, Kind::Raw)?;
    }
    for (key, keyword, kind) in COPIED {
        let (mine, default) = (values(resolved, key), values(baseline, key));
        if mine == default {
            continue;
        }
        for value in mine {
            add(keyword, &value, kind)?;
        }
    }
    for (keyword, value) in ours {
        // Ours are written as ssh's command line takes them: `%` already doubled.
        add(keyword, value, Kind::Raw)?;
    }
    Ok(lines.join("\n") + "\n")
}

/// A value as a config line takes it; one that no config line can hold is refused.
fn written(keyword: &str, value: &str, kind: Kind) -> Result<String> {
    if value.chars().any(char::is_control) {
        bail!("the ssh setting {keyword} holds a control character, which no ssh config line can: fix the profile");
    }
    match kind {
        Kind::Raw => Ok(quoted(value)),
        Kind::Expanded => Ok(quoted(&value.replace('%', "%%"))),
        // ssh prints a list space-separated, so a path with a space in it is told from two
        // paths by whether it is there.
        Kind::ExpandedList if Path::new(value).exists() => Ok(quoted(&value.replace('%', "%%"))),
        Kind::ExpandedList => Ok(value
            .split_whitespace()
            .map(|one| quoted(&one.replace('%', "%%")))
            .collect::<Vec<_>>()
            .join(" ")),
        Kind::Line => Ok(value.to_string()),
    }
}

/// One word as ssh's config reader takes it: in double quotes, with `\` and `"` escaped, when
/// it holds anything that reader gives a meaning (a space, a quote, `#`, `=`, a backslash).
fn quoted(value: &str) -> String {
    if value.is_empty() || value.contains([' ', '\t', '#', '=', '\'', '"', '\\']) {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        value.to_string()
    }
}

/// fenton's own ssh config file: `$XDG_CONFIG_HOME/fenton/ssh_config`, else
/// `~/.config/fenton/ssh_config` (beside the default config file).
pub fn managed_path() -> Result<PathBuf> {
    let dir = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(xdg) => PathBuf::from(xdg),
        None => dirs::home_dir()
            .context("cannot tell your home directory: set HOME")?
            .join(".config"),
    };
    Ok(dir.join("fenton/ssh_config"))
}

const HEADER: &str =
    "# fenton's ssh Host entries, one per profile (`fenton ssh-config` prints one).\n\
# Each reaches its box over fenton's shared connection. fenton rewrites this file: change the\n\
# profile in fenton's config instead.\n";

/// Writes `entry` (the Host `alias`) into fenton's ssh config file at `path`, keeping the
/// other profiles' entries: the file is replaced whole, 0600, never left half written.
pub fn store(path: &Path, alias: &str, entry: &str) -> Result<()> {
    let dir = path
        .parent()
        .context("fenton's ssh config has no directory")?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    // Two profiles written at once both keep their entry.
    let _lock = crate::lock::exclusive(
        &dir.join(".ssh_config.lock"),
        Some(Duration::from_secs(10)),
        "writing fenton's ssh config",
    )?;
    let old = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let new = merged(&old, alias, entry);
    if new == old {
        return Ok(());
    }
    // ssh reads the file as it will be before it replaces the one every other ssh reads.
    let check = dir.join(format!(".ssh_config.check-{}", std::process::id()));
    replace(&check, new.as_bytes(), 0o600)?;
    let read = readable(&check, alias);
    let _ = fs::remove_file(&check);
    read?;
    replace(path, new.as_bytes(), 0o600)
}

/// Whether ssh reads `file` without an error for the Host `alias`; its complaint if not.
fn readable(file: &Path, alias: &str) -> Result<()> {
    let mut cmd = Command::new("ssh");
    cmd.arg("-G")
        .arg("-F")
        .arg(file)
        .arg(alias)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Err(said) = ssh_g(cmd)? {
        bail!(
            "ssh could not read the entry fenton made for {alias} ({said}): nothing was written; fix the profile's ssh settings"
        );
    }
    Ok(())
}

/// Writes `bytes` to `path` through a file beside it renamed over it, with `mode`.
fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.fenton-{}", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// fenton's file with `alias`'s entry replaced (or added), the others as they were. Pure.
fn merged(old: &str, alias: &str, entry: &str) -> String {
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in old.split_inclusive('\n') {
        if let Some(name) = line.strip_prefix("Host ") {
            blocks.push((name.trim().to_string(), String::new()));
        }
        if let Some((_, text)) = blocks.last_mut() {
            text.push_str(line);
        }
    }
    match blocks.iter_mut().find(|(name, _)| name == alias) {
        Some((_, text)) => *text = entry.to_string(),
        None => blocks.push((alias.to_string(), entry.to_string())),
    }
    let mut out = HEADER.to_string();
    for (_, text) in blocks {
        out.push('\n');
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// The line that makes `~/.ssh/config` read fenton's file: `~/…` where it is under `home`.
pub fn include_line(managed: &Path, home: &Path) -> String {
    let shown = match managed.strip_prefix(home) {
        Ok(rest) => format!("~/{}", rest.display()),
        Err(_) => managed.display().to_string(),
    };
    if shown.contains([' ', '\t', '#']) {
        format!("Include \"{shown}\"")
    } else {
        format!("Include {shown}")
    }
}

/// Whether `text` (an ssh config) includes `managed` for every host: in an Include line
/// before its first Host or Match line. Pure.
pub fn includes(text: &str, managed: &Path, home: &Path) -> bool {
    for line in text.lines() {
        let line = line.trim();
        let (keyword, rest) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, rest)) => (
                k,
                rest.trim_start_matches(|c: char| c.is_whitespace() || c == '='),
            ),
            None => (line, ""),
        };
        if keyword.eq_ignore_ascii_case("host") || keyword.eq_ignore_ascii_case("match") {
            return false;
        }
        if !keyword.eq_ignore_ascii_case("include") {
            continue;
        }
        let words = shlex::split(rest).unwrap_or_default();
        let hit = words.iter().any(|word| {
            let path = match word.strip_prefix("~/") {
                Some(rest) => home.join(rest),
                None => PathBuf::from(word),
            };
            path == managed
        });
        if hit {
            return true;
        }
    }
    false
}

/// What [`add_include`] did.
pub enum Added {
    /// The line was there already.
    Already,
    /// Added; the file as it was is kept at the path, if there was one.
    Added(Option<PathBuf>),
}

/// Puts [`include_line`] at the top of the ssh config `config` (through a link, where it is
/// one), unless it includes `managed` already; what was there is copied aside first and
/// nothing else changes.
pub fn add_include(config: &Path, managed: &Path, home: &Path) -> Result<Added> {
    let real = fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf());
    let (old, mode) = match fs::read(&real) {
        Ok(bytes) => {
            let mode = fs::metadata(&real)?.permissions().mode() & 0o7777;
            (Some(bytes), mode)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, 0o600),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", config.display())),
    };
    let text = old
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    if includes(&text, managed, home) {
        return Ok(Added::Already);
    }
    let dir = real.parent().context("the ssh config has no directory")?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut backup = None;
    if let Some(old) = &old {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = real.file_name().unwrap_or_default().to_string_lossy();
        let path = dir.join(format!("{name}.before-fenton-{stamp}"));
        replace(&path, old, mode & 0o600)?;
        backup = Some(path);
    }
    let mut new = include_line(managed, home).into_bytes();
    new.push(b'\n');
    new.extend_from_slice(old.as_deref().unwrap_or_default());
    replace(&real, &new, mode)?;
    Ok(Added::Added(backup))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_profile_names_make_an_alias() {
        assert_eq!(alias("gpu").unwrap(), "fenton-gpu");
        assert_eq!(alias("lab_2.a-b").unwrap(), "fenton-lab_2.a-b");
        for bad in [
            "",
            "x\n  ProxyCommand evil",
            "a b",
            "*",
            "a?",
            "!a",
            "-o",
            ".x",
            "x\"y",
            "x#y",
            "é",
            "x=y",
        ] {
            let err = alias(bad).unwrap_err().to_string();
            assert!(err.contains("cannot name an ssh host"), "{bad:?}: {err}");
        }
    }

    const RESOLVED: &str = "user tom\nhostname 10.0.0.%1\nport 2222\nidentityfile /keys/my key\nidentityfile ~/.ssh/id_%h\nidentitiesonly yes\nproxyjump jump.example.org\nproxycommand none\nuserknownhostsfile /tmp/kh_10.0.0.%1 /tmp/b\nglobalknownhostsfile /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2\nforwardagent no\n";
    const BASELINE: &str = "user root\nhostname box\nport 22\nidentityfile ~/.ssh/id_rsa\nidentitiesonly no\nproxycommand none\nuserknownhostsfile /root/.ssh/known_hosts /root/.ssh/known_hosts2\nglobalknownhostsfile /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2\nforwardagent no\n";

    #[test]
    fn the_entry_says_what_fentons_ssh_does() {
        let ours = [
            ("ControlPath", "/run/fenton/ab%%c".to_string()),
            ("ControlMaster", "auto".to_string()),
        ];
        let text = render("fenton-gpu", "gpu", RESOLVED, BASELINE, &ours).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Host fenton-gpu");
        assert!(lines[1].trim_start().starts_with('#'));
        assert_eq!(
            &lines[2..],
            [
                "  HostName 10.0.0.%%1",
                "  User tom",
                "  Port 2222",
                "  IdentityFile \"/keys/my key\"",
                "  IdentityFile ~/.ssh/id_%h",
                "  IdentitiesOnly yes",
                "  ProxyJump jump.example.org",
                "  UserKnownHostsFile /tmp/kh_10.0.0.%%1 /tmp/b",
                "  ControlPath /run/fenton/ab%%c",
                "  ControlMaster auto",
            ]
        );
    }

    /// What ssh makes of the Host `alias` in `file` (`ssh -G`, through fenton's own bounded
    /// runner); a complaint from ssh fails the test.
    fn read_back(file: &Path, alias: &str) -> String {
        let mut cmd = Command::new("ssh");
        cmd.arg("-G")
            .arg("-F")
            .arg(file)
            .arg(alias)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = ssh_g(cmd)
            .expect("ssh, OpenSSH's client")
            .unwrap_or_else(|said| panic!("ssh -G {alias} refused {}: {said}", file.display()));
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn ssh_reads_the_entry_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let ours = [("ControlPath", "/run/fenton/a b%%c".to_string())];
        let text = render("fenton-gpu", "gpu", RESOLVED, BASELINE, &ours).unwrap();
        let file = dir.path().join("config");
        fs::write(&file, &text).unwrap();
        let got = read_back(&file, "fenton-gpu");
        for want in [
            "hostname 10.0.0.%1",
            "port 2222",
            "identityfile /keys/my key",
            "proxyjump jump.example.org",
            "controlpath /run/fenton/a b%c",
        ] {
            assert!(got.lines().any(|l| l == want), "{want:?} in {got}");
        }
    }

    #[test]
    fn quotes_and_backslashes_in_values_reach_ssh_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        // A path with a space, read as one known-hosts file because it is there.
        let spaced = dir.path().join("my kh");
        fs::write(&spaced, "").unwrap();
        let resolved = format!(
            "hostname box\nuser x\nport 22\nidentityfile /keys/bob's key\nidentityfile /keys/a\"b\\c\nuserknownhostsfile {}\n",
            spaced.display()
        );
        let text = render("fenton-x", "x", &resolved, "", &[]).unwrap();
        let file = dir.path().join("config");
        fs::write(&file, &text).unwrap();
        let got = read_back(&file, "fenton-x");
        for want in [
            "identityfile /keys/bob's key".to_string(),
            "identityfile /keys/a\"b\\c".to_string(),
            format!("userknownhostsfile {}", spaced.display()),
        ] {
            assert!(got.lines().any(|l| l == want), "{want:?} in {got}");
        }
    }

    #[test]
    fn a_profile_entry_replaces_only_its_own() {
        let one = "Host fenton-a\n  HostName a\n";
        let two = "Host fenton-b\n  HostName b\n";
        let file = merged(&merged("", "fenton-a", one), "fenton-b", two);
        assert!(file.starts_with(HEADER));
        let again = merged(&file, "fenton-a", "Host fenton-a\n  HostName a2\n");
        assert!(again.contains("HostName a2") && again.contains("HostName b"));
        assert!(!again.contains("HostName a\n"));
        assert_eq!(merged(&again, "fenton-b", two), again);
    }

    #[test]
    fn only_an_include_before_any_host_counts() {
        let home = Path::new("/home/u");
        let managed = Path::new("/home/u/.config/fenton/ssh_config");
        let line = include_line(managed, home);
        assert_eq!(line, "Include ~/.config/fenton/ssh_config");
        assert!(includes(&format!("{line}\nHost x\n"), managed, home));
        assert!(includes(
            "# mine\ninclude=\"/home/u/.config/fenton/ssh_config\"\n",
            managed,
            home
        ));
        assert!(includes(
            "Include /a ~/.config/fenton/ssh_config\n",
            managed,
            home
        ));
        assert!(!includes(&format!("Host x\n  {line}\n"), managed, home));
        assert!(!includes(&format!("Match all\n{line}\n"), managed, home));
        assert!(!includes("Include ~/.ssh/other\n", managed, home));
        assert_eq!(
            include_line(Path::new("/srv/my cfg/ssh_config"), home),
            "Include \"/srv/my cfg/ssh_config\""
        );
    }

    #[test]
    fn the_include_goes_on_top_once_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        fs::create_dir_all(home.join(".ssh")).unwrap();
        fs::create_dir_all(home.join("dots")).unwrap();
        let real = home.join("dots/ssh_config");
        let old = "# mine\nHost a\n  User b\n";
        fs::write(&real, old).unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        let config = home.join(".ssh/config");
        std::os::unix::fs::symlink(&real, &config).unwrap();
        let managed = home.join(".config/fenton/ssh_config");
        let Added::Added(Some(backup)) = add_include(&config, &managed, home).unwrap() else {
            panic!("no copy of the file was kept");
        };
        assert!(fs::symlink_metadata(&config).unwrap().is_symlink());
        let new = fs::read_to_string(&real).unwrap();
        assert_eq!(new, format!("Include ~/.config/fenton/ssh_config\n{old}"));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&real), 0o640);
        assert_eq!(fs::read_to_string(&backup).unwrap(), old);
        assert_eq!(mode(&backup), 0o600);
        assert!(matches!(
            add_include(&config, &managed, home).unwrap(),
            Added::Already
        ));
        assert_eq!(fs::read_to_string(&real).unwrap(), new);

        let fresh = tempfile::tempdir().unwrap();
        let config = fresh.path().join(".ssh/config");
        let Added::Added(None) = add_include(&config, &managed, fresh.path()).unwrap() else {
            panic!("a copy of nothing was kept");
        };
        assert_eq!(mode(&config), 0o600);
        assert_eq!(mode(config.parent().unwrap()), 0o700);
        let line = format!("Include {}\n", managed.display());
        assert_eq!(fs::read_to_string(&config).unwrap(), line);
    }
}
