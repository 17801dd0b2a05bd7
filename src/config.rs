//! The config file: where it is, what it may hold, and the profile it resolves to.
//!
//! `parse` is pure (text in, typed config or a `file:line:col` error out) so it can be tested
//! without files; `load` adds the file system: finding the file and refusing unsafe permissions.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Profile used when `-p` is not given.
    pub default: Option<String>,
    /// The editor `fenton code` opens (`code`, `cursor`, `codium`…), when `--editor` is not given.
    pub editor: Option<String>,
    #[serde(default)]
    pub profile: BTreeMap<String, Profile>,
    #[serde(default)]
    pub notify: Notify,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub host: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_file: Option<String>,
    pub ssh_config: Option<String>,
    #[serde(default = "default_remote_dir")]
    pub remote_dir: String,
    /// Seconds to wait for the box to answer before giving up.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: u64,
    /// Seconds the shared connection stays open after the last command ends.
    #[serde(default = "default_control_persist")]
    pub control_persist: u64,
    /// Seconds without a connection after which the forwarder (Jupyter's and the tunnels'
    /// forwards) stops; 0: as long as the forwards are wanted.
    #[serde(default)]
    pub forward_idle_timeout: u64,
    /// `fenton run` notifies without `--notify`.
    #[serde(default)]
    pub notify_by_default: bool,
    /// What `fenton run` sends besides the end message when it notifies.
    #[serde(default)]
    pub notify: ProfileNotify,
    #[serde(default)]
    pub mount: Mount,
    #[serde(default)]
    pub tmux: Tmux,
    #[serde(default)]
    pub jupyter: Jupyter,
    #[serde(default)]
    pub monitor: Monitor,
    /// What runs `fenton run`'s jobs: the box itself, or the Slurm cluster whose login node
    /// `host` is.
    #[serde(default)]
    pub scheduler: Scheduler,
    #[serde(default)]
    pub slurm: Slurm,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    /// Jobs run on the box, in the background (tmux or setsid).
    #[default]
    Box,
    /// Jobs go to Slurm through the login node (`sbatch`, `squeue`, `sacct`, `scancel`).
    Slurm,
}

/// `[profile.x.slurm]`: what a job asks for unless `fenton run`'s options say otherwise.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Slurm {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// A count (`2`) or `TYPE:COUNT` (`"a100:2"`).
    pub gpus: Option<crate::jobs::resources::GpusValue>,
    pub cpus: Option<i64>,
    /// Memory per node: `32G`.
    pub mem: Option<String>,
    /// Time limit: minutes, `4h`, `2d` or `D-HH:MM:SS`.
    pub time: Option<String>,
    /// Raw sbatch options, one per entry: `["--constraint=a100", "--exclusive"]`.
    #[serde(default)]
    pub extra: Vec<String>,
    /// Seconds between the end-message watcher's looks at the queue (one squeue each).
    pub watch_every: Option<u64>,
}

/// The watcher's interval unless `slurm.watch_every` says otherwise.
pub const SLURM_WATCH_EVERY: u64 = 30;

impl Slurm {
    /// The first value that sbatch would refuse or fenton must not pass, as (key, why).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        use crate::jobs::resources as r;
        let named = [
            ("slurm.partition", "a partition", &self.partition),
            ("slurm.account", "an account", &self.account),
            ("slurm.qos", "a QOS", &self.qos),
        ];
        for (key, what, value) in named {
            if let Some(Err(why)) = value.as_deref().map(|v| r::name(what, v)) {
                return Some((key, why));
            }
        }
        let checks = [
            (
                "slurm.gpus",
                self.gpus.as_ref().map(|g| r::gpus(&g.as_text())),
            ),
            ("slurm.cpus", self.cpus.map(r::cpus)),
            ("slurm.mem", self.mem.as_deref().map(r::mem)),
            ("slurm.time", self.time.as_deref().map(r::time)),
            (
                "slurm.extra",
                self.extra.iter().map(|e| r::extra(e)).find(Result::is_err),
            ),
            (
                "slurm.watch_every",
                self.watch_every
                    .filter(|s| !(1..=3600).contains(s))
                    .map(|_| Err("must be 1 to 3600 seconds".to_string())),
            ),
        ];
        checks.into_iter().find_map(|(key, check)| match check {
            Some(Err(why)) => Some((key, why)),
            _ => None,
        })
    }
}

/// `[profile.x.notify]`: defaults for `fenton run`'s `--notify-every`, `--notify-on`,
/// `--stall` and `--notify-min` (durations such as "30m"), used when a job notifies.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileNotify {
    pub every: Option<String>,
    #[serde(default)]
    pub on: Vec<String>,
    pub stall: Option<String>,
    pub min: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// Default: the remote home.
    pub remote_path: Option<String>,
    /// Default: `~/fenton` for the profile named fenton, else `~/fenton-NAME`.
    pub local_path: Option<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tmux {
    #[serde(default = "default_session")]
    pub session: String,
    /// tmux -L socket name; empty: tmux's default server.
    #[serde(default)]
    pub socket: String,
    #[serde(default)]
    pub control_mode: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Jupyter {
    #[serde(default = "default_jupyter_command")]
    pub command: String,
    #[serde(default)]
    pub setup: String,
    #[serde(default = "default_jupyter_dir")]
    pub dir: String,
    #[serde(default = "default_jupyter_port")]
    pub remote_port: u16,
    #[serde(default = "default_jupyter_port")]
    pub local_port: u16,
    /// Seconds to wait for the server to answer.
    #[serde(default = "default_jupyter_timeout")]
    pub start_timeout: u64,
    /// On a Slurm profile: seconds the notebook's job may wait in the queue before it is
    /// cancelled (apart from `start_timeout`, which counts from when it runs).
    #[serde(default = "default_jupyter_queue_timeout")]
    pub queue_timeout: u64,
    /// On a Slurm profile: options for the ssh the login node runs to reach the notebook's
    /// node (`["-i", "~/.ssh/id_cluster"]`), one word per entry.
    #[serde(default)]
    pub node_ssh_options: Vec<String>,
}

/// The recorder on the box (`fenton monitor`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Monitor {
    /// Start the recorder on first use (status, run, connect) when it does not run.
    #[serde(default)]
    pub auto: bool,
    /// Seconds between samples.
    #[serde(default = "default_monitor_every")]
    pub every: u64,
    /// How long samples are kept: `7d`, `24h`…
    #[serde(default = "default_monitor_retention")]
    pub retention: String,
    /// Conditions the box alerts on, through the `[notify.*]` channels.
    #[serde(default = "default_monitor_alerts")]
    pub alerts: Vec<String>,
    /// `gpu_idle`: a GPU at or below this utilisation…
    #[serde(default = "default_gpu_idle_percent")]
    pub gpu_idle_percent: u32,
    /// …for this long while a fenton job runs.
    #[serde(default = "default_gpu_idle_after")]
    pub gpu_idle_after: String,
    /// `gpu_temp`: at or above this many °C.
    #[serde(default = "default_gpu_temp_c")]
    pub gpu_temp_c: u32,
    /// `disk`: a disk that matters (/, home) at or above this use.
    #[serde(default = "default_disk_percent")]
    pub disk_percent: u32,
}

/// What `monitor.alerts` may name.
pub const MONITOR_ALERTS: [&str; 5] = ["gpu_idle", "gpu_temp", "disk", "oom", "reboot"];

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    pub telegram: Option<Telegram>,
    pub ntfy: Option<Ntfy>,
    pub webhook: Option<Webhook>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Telegram {
    pub bot_token: Option<String>,
    pub bot_token_file: Option<String>,
    pub chat_id: String,
    #[serde(default = "default_telegram_api")]
    pub api_url: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ntfy {
    pub url: String,
    pub token: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
}

fn default_remote_dir() -> String {
    "~/.fenton".into()
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_control_persist() -> u64 {
    600
}
fn default_session() -> String {
    "fenton".into()
}
fn default_jupyter_command() -> String {
    "jupyter lab".into()
}
fn default_jupyter_dir() -> String {
    "~".into()
}
fn default_jupyter_port() -> u16 {
    8888
}
fn default_jupyter_timeout() -> u64 {
    60
}
fn default_jupyter_queue_timeout() -> u64 {
    1800
}
fn default_monitor_every() -> u64 {
    10
}
fn default_monitor_retention() -> String {
    "7d".into()
}
fn default_monitor_alerts() -> Vec<String> {
    MONITOR_ALERTS.iter().map(|a| a.to_string()).collect()
}
fn default_gpu_idle_percent() -> u32 {
    5
}
fn default_gpu_idle_after() -> String {
    "10m".into()
}
fn default_gpu_temp_c() -> u32 {
    85
}
fn default_disk_percent() -> u32 {
    95
}
fn default_telegram_api() -> String {
    "https://api.telegram.org".into()
}

impl Mount {
    /// The mount point as configured, or its default for the profile `name`: `~/fenton` for
    /// the profile named fenton, else `~/fenton-NAME`.
    pub fn local_path_or_default(&self, name: &str) -> String {
        match &self.local_path {
            Some(path) => path.clone(),
            None if name == "fenton" => "~/fenton".into(),
            None => format!("~/fenton-{name}"),
        }
    }
}

impl Default for Tmux {
    fn default() -> Self {
        Tmux {
            session: default_session(),
            socket: String::new(),
            control_mode: false,
        }
    }
}

impl Default for Jupyter {
    fn default() -> Self {
        Jupyter {
            command: default_jupyter_command(),
            setup: String::new(),
            dir: default_jupyter_dir(),
            remote_port: default_jupyter_port(),
            local_port: default_jupyter_port(),
            start_timeout: default_jupyter_timeout(),
            queue_timeout: default_jupyter_queue_timeout(),
            node_ssh_options: Vec::new(),
        }
    }
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor {
            auto: false,
            every: default_monitor_every(),
            retention: default_monitor_retention(),
            alerts: default_monitor_alerts(),
            gpu_idle_percent: default_gpu_idle_percent(),
            gpu_idle_after: default_gpu_idle_after(),
            gpu_temp_c: default_gpu_temp_c(),
            disk_percent: default_disk_percent(),
        }
    }
}

impl ConfigFile {
    /// Whether the file itself holds a secret (not one kept in a file of its own). A webhook
    /// URL counts: Slack's and Discord's carry their token in the path.
    pub fn holds_secret(&self) -> bool {
        let telegram = self.notify.telegram.as_ref();
        // An ntfy topic is its only lock: whoever knows it reads and writes it. A URL with a
        // password in it (a proxy in `api_url`) is a secret too.
        telegram.is_some_and(|t| t.bot_token.is_some() || mask_url(&t.api_url) != t.api_url)
            || self.notify.ntfy.is_some()
            || self.notify.webhook.is_some()
    }
}

/// The mask that stands for a secret wherever fenton shows one.
pub const MASK: &str = "********";

/// A URL fit to show: scheme and host kept; user-info, and a path or query
/// (where webhooks keep their token and ntfy its topic) masked. Every printer of a URL from
/// the config uses this.
pub fn mask_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    // User-info is a password, or a token given as the user name. An `@` further on may end
    // one that holds a `/`, `?` or `#` it should have percent-encoded: then all of it is
    // masked, host included, rather than show what came before that character.
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{MASK}@{host}"),
        None if path.contains('@') => MASK.to_string(),
        None => authority.to_string(),
    };
    let path = if path.len() > 1 {
        format!("/{MASK}")
    } else {
        path.to_string()
    };
    format!("{scheme}{authority}{path}")
}

/// Parses config text. Errors read `PATH:LINE:COL: what is wrong`.
pub fn parse(text: &str, path: &Path) -> Result<ConfigFile> {
    let file: ConfigFile = toml::from_str(text).map_err(|e| {
        let (line, col) = e
            .span()
            .map(|span| line_col(text, span.start))
            .unwrap_or((1, 1));
        anyhow!("{}:{line}:{col}: {}", path.display(), e.message().trim())
    })?;
    for (name, profile) in &file.profile {
        if let Some((key, problem)) = problem(profile) {
            let at = locate_key(text, name, key);
            bail!(
                "{}:{}:{}: profile {name:?}: `{key}` {problem}",
                path.display(),
                at.0,
                at.1
            );
        }
    }
    if let Some(default) = &file.default {
        if !file.profile.contains_key(default) {
            let at = locate(text, "default").unwrap_or((1, 1));
            bail!(
                "{}:{}:{}: default profile {default:?} is not defined (profiles: {})",
                path.display(),
                at.0,
                at.1,
                names(&file)
            );
        }
    }
    Ok(file)
}

/// The first value of a profile that cannot work, as (key, what is wrong with it).
fn problem(p: &Profile) -> Option<(&'static str, String)> {
    use crate::remote::sh;
    let control = |value: &str| value.chars().any(char::is_control);
    let checks: [(&'static str, Option<String>); 19] = [
        ("host", p.host.trim().is_empty().then(|| "is empty".into())),
        (
            "host",
            p.host
                .starts_with('-')
                .then(|| "may not start with '-'".into()),
        ),
        (
            "host",
            control(&p.host).then(|| "holds a control character".into()),
        ),
        ("port", (p.port == Some(0)).then(|| "may not be 0".into())),
        (
            "connect_timeout",
            (p.connect_timeout == 0).then(|| "must be at least 1 second".into()),
        ),
        (
            "remote_dir",
            (p.remote_dir.is_empty() || p.remote_dir.starts_with('-'))
                .then(|| "must name a directory (and not start with '-')".into()),
        ),
        (
            "remote_dir",
            control(&p.remote_dir).then(|| "holds a control character (a newline?)".into()),
        ),
        (
            "mount.remote_path",
            p.mount
                .remote_path
                .as_deref()
                .is_some_and(control)
                .then(|| "holds a control character (a newline?)".into()),
        ),
        (
            "tmux.session",
            sh::tmux_session_problem(&p.tmux.session)
                .map(|why| format!("{:?} cannot be a tmux session name: {why}", p.tmux.session)),
        ),
        (
            "tmux.socket",
            sh::tmux_socket_problem(&p.tmux.socket)
                .map(|why| format!("{:?} cannot be a tmux socket name: {why}", p.tmux.socket)),
        ),
        (
            "jupyter.dir",
            control(&p.jupyter.dir).then(|| "holds a control character (a newline?)".into()),
        ),
        (
            "jupyter.command",
            control(&p.jupyter.command)
                .then(|| "must be one line: put what comes first in `jupyter.setup`".into()),
        ),
        (
            "jupyter.remote_port",
            (p.jupyter.remote_port == 0 || p.jupyter.local_port == 0)
                .then(|| "and `jupyter.local_port` may not be 0".into()),
        ),
        (
            "monitor.every",
            (p.monitor.every == 0 || p.monitor.every > 3600)
                .then(|| "must be 1 to 3600 seconds".into()),
        ),
        (
            "monitor.retention",
            crate::monitor::parse_duration(&p.monitor.retention)
                .err()
                .map(|e| e.to_string()),
        ),
        (
            "monitor.gpu_idle_after",
            crate::monitor::parse_duration(&p.monitor.gpu_idle_after)
                .err()
                .map(|e| e.to_string()),
        ),
        (
            "monitor.alerts",
            p.monitor
                .alerts
                .iter()
                .find(|a| !MONITOR_ALERTS.contains(&a.as_str()))
                .map(|a| format!("names {a:?}: choose from {}", MONITOR_ALERTS.join(", "))),
        ),
        (
            "monitor.gpu_idle_percent",
            (p.monitor.gpu_idle_percent > 100 || p.monitor.disk_percent > 100)
                .then(|| "and `monitor.disk_percent` are percentages, 0 to 100".into()),
        ),
        (
            "monitor.gpu_temp_c",
            (p.monitor.gpu_temp_c == 0 || p.monitor.gpu_temp_c > 200)
                .then(|| "must be 1 to 200 °C".into()),
        ),
    ];
    checks
        .into_iter()
        .find_map(|(key, problem)| problem.map(|p| (key, p)))
        .or_else(|| p.slurm.problem())
}

/// Where a profile's key is written: `key` under `[profile.NAME.TABLE]`, or `TABLE.key` under
/// `[profile.NAME]`; else the profile's header; else the top of the file.
fn locate_key(text: &str, profile: &str, key: &str) -> (usize, usize) {
    let (table, leaf) = match key.split_once('.') {
        Some((table, leaf)) => (format!("[profile.{profile}.{table}]"), leaf),
        None => (format!("[profile.{profile}]"), key),
    };
    let header = format!("[profile.{profile}]");
    let in_section = |section: &str, key: &str| {
        let start = text.find(section)?;
        let mut offset = start;
        for (i, line) in text[start..].split_inclusive('\n').enumerate() {
            let trimmed = line.trim_start();
            if i > 0 && trimmed.starts_with('[') {
                break;
            }
            let value = trimmed.strip_prefix(key).map(str::trim_start);
            if i > 0 && value.is_some_and(|rest| rest.starts_with('=')) {
                return Some(line_col(text, offset + line.len() - trimmed.len()));
            }
            offset += line.len();
        }
        None
    };
    in_section(&table, leaf)
        .or_else(|| in_section(&header, key))
        .or_else(|| locate(text, &header))
        .unwrap_or((1, 1))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn locate(text: &str, needle: &str) -> Option<(usize, usize)> {
    text.find(needle).map(|offset| line_col(text, offset))
}

fn names(file: &ConfigFile) -> String {
    if file.profile.is_empty() {
        return "none".into();
    }
    file.profile.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// Where the config file is: `--config`/`FENTON_CONFIG` (already merged by clap), else
/// `$XDG_CONFIG_HOME/fenton/config.toml`, else `~/.config/fenton/config.toml`, on macOS too.
pub fn path(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("fenton/config.toml"));
    }
    let home = dirs::home_dir().context("cannot tell your home directory: set HOME")?;
    Ok(home.join(".config/fenton/config.toml"))
}

/// A config read from disk.
pub struct Loaded {
    pub path: PathBuf,
    pub file: ConfigFile,
}

/// The most a config, or a file it names, may hold: they are kilobytes.
const MAX_FILE: u64 = 1 << 20;

/// Reads a small text file a person wrote (the config, a token file). A FIFO or a device in
/// its place would hang or never end: anything but a regular file is refused, and so is one
/// past [`MAX_FILE`].
pub fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    use std::os::unix::fs::OpenOptionsExt;
    // Opening a FIFO for reading waits for a writer, unless non-blocking.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)?;
    let meta = file.metadata()?;
    let refuse = |why: &str| Err(Error::new(ErrorKind::InvalidInput, why.to_string()));
    if !meta.is_file() {
        return refuse("it is not a regular file; give the path of a text file");
    }
    let too_big = "it is larger than 1 MiB, which no such file is; give the path of a text file";
    if meta.len() > MAX_FILE {
        return refuse(too_big);
    }
    let mut text = String::new();
    file.take(MAX_FILE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE {
        return refuse(too_big);
    }
    Ok(text)
}

/// Reads and checks the config file, refusing one that others can write (as OpenSSH does).
pub fn load(explicit: Option<&Path>) -> Result<Loaded> {
    let path = path(explicit)?;
    let text = match read_small(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no config at {}: run `fenton config init --host HOST` to write one",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mode = std::fs::metadata(&path)?.permissions().mode();
    if mode & 0o022 != 0 {
        bail!(
            "{} is writable by others, so anyone could change what fenton runs: chmod go-w {}",
            path.display(),
            crate::remote::sh::quote_path(&path)
        );
    }
    let file = parse(&text, &path)?;
    if mode & 0o044 != 0 && file.holds_secret() {
        crate::ui::warn(format_args!(
            "{} holds a secret and others can read it: chmod 600 {}",
            path.display(),
            crate::remote::sh::quote_path(&path)
        ));
    }
    Ok(Loaded { path, file })
}

impl Loaded {
    /// Picks the profile: `-p NAME`, else the config's `default`, else the only one there is.
    pub fn profile(&self, name: Option<&str>) -> Result<(String, Profile)> {
        let name = match (name, &self.file.default) {
            (Some(name), _) => name.to_string(),
            (None, Some(default)) => default.clone(),
            (None, None) if self.file.profile.len() == 1 => {
                self.file.profile.keys().next().unwrap().clone()
            }
            (None, None) if self.file.profile.is_empty() => bail!(
                "{} has no profiles: run `fenton config init --host HOST` to add one",
                self.path.display()
            ),
            (None, None) => bail!(
                "{} has several profiles and no `default`: pick one with -p NAME (profiles: {})",
                self.path.display(),
                names(&self.file)
            ),
        };
        match self.file.profile.get(&name) {
            Some(profile) => Ok((name, profile.clone())),
            None => bail!(
                "profile {name:?} not found in {} (profiles: {})",
                self.path.display(),
                names(&self.file)
            ),
        }
    }
}

/// Expands a leading `~` to the local home directory.
pub fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => match dirs::home_dir() {
            Some(home) => home.join(rest.trim_start_matches('/')),
            None => PathBuf::from(path),
        },
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        parse(text, Path::new("c.toml")).unwrap_err().to_string()
    }

    #[test]
    fn minimal_profile_gets_defaults() {
        let file = parse("[profile.box]\nhost = \"10.0.0.2\"\n", Path::new("c.toml")).unwrap();
        let p = &file.profile["box"];
        assert_eq!(p.host, "10.0.0.2");
        assert_eq!(p.remote_dir, "~/.fenton");
        assert_eq!(p.connect_timeout, 10);
        assert_eq!(p.tmux.session, "fenton");
        assert_eq!(p.jupyter.remote_port, 8888);
        assert_eq!(p.jupyter.command, "jupyter lab");
    }

    #[test]
    fn unknown_key_has_line_and_column() {
        let err = parse_err("[profile.box]\nhost = \"h\"\n  hots = \"x\"\n");
        assert!(err.starts_with("c.toml:3:3: unknown field `hots`"), "{err}");
    }

    #[test]
    fn malformed_toml_has_line_and_column() {
        let err = parse_err("default = \"a\"\n[profile.a\nhost = 1\n");
        assert!(err.starts_with("c.toml:2:"), "{err}");
    }

    #[test]
    fn wrong_type_has_line_and_column() {
        let err = parse_err("[profile.box]\nhost = \"h\"\nport = \"22\"\n");
        assert!(err.starts_with("c.toml:3:8:"), "{err}");
        assert!(err.contains("u16") || err.contains("integer"), "{err}");
    }

    #[test]
    fn nested_unknown_key_is_refused() {
        let err = parse_err("[profile.box]\nhost = \"h\"\n[profile.box.tmux]\nsesion = \"x\"\n");
        assert!(
            err.starts_with("c.toml:4:1: unknown field `sesion`"),
            "{err}"
        );
    }

    #[test]
    fn host_with_leading_dash_is_refused() {
        let err = parse_err("[profile.box]\nhost = \"-oProxyCommand=x\"\n");
        assert!(err.contains("may not start with '-'"), "{err}");
        assert!(err.starts_with("c.toml:2:1:"), "{err}");
    }

    #[test]
    fn values_that_cannot_work_are_refused_where_they_are() {
        let cases = [
            (
                "[profile.box]\nhost = \"h\"\n[profile.box.tmux]\nsocket = \"a/b\"\n",
                "c.toml:4:1: profile \"box\": `tmux.socket` \"a/b\" cannot be a tmux socket name",
            ),
            (
                "[profile.box]\nhost = \"h\"\ntmux.session = \"s#(touch x)\"\n",
                "c.toml:3:1: profile \"box\": `tmux.session` \"s#(touch x)\" cannot be a tmux session name: tmux reads '#'",
            ),
            (
                "[profile.box]\nhost = \"h\"\n  remote_dir = \"~/x\\n/y\"\n",
                "c.toml:3:3: profile \"box\": `remote_dir` holds a control character",
            ),
            (
                "[profile.box]\nhost = \"h\"\n[profile.box.mount]\nremote_path = \"/a\\nb\"\n",
                "c.toml:4:1: profile \"box\": `mount.remote_path` holds a control character",
            ),
            (
                "[profile.box]\nhost = \"h\"\n[profile.box.jupyter]\ncommand = \"a\\nb\"\n",
                "c.toml:4:1: profile \"box\": `jupyter.command` must be one line",
            ),
        ];
        for (text, want) in cases {
            let err = parse_err(text);
            assert!(err.starts_with(want), "{err}\nwanted: {want}");
        }
        // `#` in a directory is harmless now: fenton never gives tmux a directory.
        parse(
            "[profile.box]\nhost = \"h\"\nremote_dir = \"~/x#S ##\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
    }

    #[test]
    fn slurm_defaults_are_read_and_checked_where_they_are() {
        let text = "[profile.c]\nhost = \"login\"\nscheduler = \"slurm\"\n[profile.c.slurm]\n\
            partition = \"gpu\"\naccount = \"lab\"\ngpus = \"a100:2\"\ncpus = 8\nmem = \"32G\"\n\
            time = \"4h\"\nextra = [\"--constraint=a100\"]\n";
        let file = parse(text, Path::new("c.toml")).unwrap();
        let p = &file.profile["c"];
        assert_eq!(p.scheduler, Scheduler::Slurm);
        assert_eq!(p.slurm.partition.as_deref(), Some("gpu"));
        assert_eq!(p.slurm.gpus.as_ref().unwrap().as_text(), "a100:2");
        let count = parse(
            "[profile.c]\nhost = \"h\"\nslurm.gpus = 2\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(
            count.profile["c"].slurm.gpus.as_ref().unwrap().as_text(),
            "2"
        );
        assert_eq!(
            parse("[profile.b]\nhost = \"h\"\n", Path::new("c.toml"))
                .unwrap()
                .profile["b"]
                .scheduler,
            Scheduler::Box
        );
        let cases = [
            (
                "[profile.c]\nhost = \"h\"\nscheduler = \"pbs\"\n",
                "c.toml:3:13: unknown variant `pbs`, expected `box` or `slurm`",
            ),
            (
                "[profile.c]\nhost = \"h\"\n[profile.c.slurm]\ngpus = \"a100\"\n",
                "c.toml:4:1: profile \"c\": `slurm.gpus` \"a100\" is not a GPU request",
            ),
            (
                "[profile.c]\nhost = \"h\"\n[profile.c.slurm]\npartition = \"gpu\"\ntime = \"forever\"\n",
                "c.toml:5:1: profile \"c\": `slurm.time` \"forever\" is not a time limit",
            ),
            (
                "[profile.c]\nhost = \"h\"\n[profile.c.slurm]\naccount = \"-x\"\n",
                "c.toml:4:1: profile \"c\": `slurm.account` \"-x\" is not an account name",
            ),
            (
                "[profile.c]\nhost = \"h\"\n[profile.c.slurm]\nextra = [\"--output=/tmp/x\"]\n",
                "c.toml:4:1: profile \"c\": `slurm.extra` \"--output=/tmp/x\": fenton sets --output itself",
            ),
            (
                "[profile.c]\nhost = \"h\"\n[profile.c.slurm]\nmem = \"lots\"\n",
                "c.toml:4:1: profile \"c\": `slurm.mem` \"lots\" is not an amount of memory",
            ),
            (
                "[profile.c]\nhost = \"h\"\n[profile.c.slurm]\ncpus = 0\n",
                "c.toml:4:1: profile \"c\": `slurm.cpus` 0 is not a CPU count",
            ),
            (
                "[profile.c]\nhost = \"h\"\n[profile.c.slurm]\nparition = \"gpu\"\n",
                "c.toml:4:1: unknown field `parition`",
            ),
        ];
        for (text, want) in cases {
            let err = parse_err(text);
            assert!(err.starts_with(want), "{err}\nwanted: {want}");
        }
    }

    #[test]
    fn port_zero_is_refused() {
        let err = parse_err("[profile.box]\nhost = \"h\"\n[profile.box.jupyter]\nlocal_port = 0\n");
        assert!(err.contains("may not be 0"), "{err}");
    }

    #[test]
    fn undefined_default_names_the_profiles() {
        let err =
            parse_err("default = \"gpu\"\n[profile.a]\nhost = \"h\"\n[profile.b]\nhost = \"h\"\n");
        assert!(
            err.contains("\"gpu\" is not defined (profiles: a, b)"),
            "{err}"
        );
    }

    #[test]
    fn missing_profile_names_the_others() {
        let loaded = Loaded {
            path: "c.toml".into(),
            file: parse("[profile.a]\nhost = \"h\"\n", Path::new("c.toml")).unwrap(),
        };
        let err = loaded.profile(Some("gpu")).unwrap_err().to_string();
        assert_eq!(err, "profile \"gpu\" not found in c.toml (profiles: a)");
        assert_eq!(loaded.profile(None).unwrap().0, "a");
    }

    #[test]
    fn webhook_paths_are_masked() {
        assert_eq!(
            mask_url("https://hooks.slack.com/services/T0/B0/XYZ"),
            "https://hooks.slack.com/********"
        );
        assert_eq!(mask_url("https://example.com"), "https://example.com");
        assert_eq!(mask_url("https://example.com/"), "https://example.com/");
        assert_eq!(
            mask_url("https://ntfy.sh/my-topic"),
            "https://ntfy.sh/********"
        );
        assert_eq!(
            mask_url("https://user:PASS@proxy.example:8080"),
            "https://********@proxy.example:8080"
        );
        assert_eq!(
            mask_url("http://u:p@w@h/x?token=T"),
            "http://********@h/********"
        );
        assert_eq!(mask_url("https://h?token=T"), "https://h/********");
        assert_eq!(mask_url("http://u:p#w@h:1"), "http://********/********");
        assert_eq!(mask_url("http://u:p/w@h/x"), "http://********/********");
    }

    #[test]
    fn secrets_are_noticed() {
        let file = parse(
            "[notify.telegram]\nbot_token = \"1:x\"\nchat_id = \"5\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert!(file.holds_secret());
        let file = parse(
            "[notify.telegram]\nbot_token_file = \"~/t\"\nchat_id = \"5\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert!(!file.holds_secret());
        let file = parse(
            "[notify.ntfy]\nurl = \"https://ntfy.sh/my-topic\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert!(file.holds_secret(), "an ntfy topic is a secret");
    }

    #[test]
    fn example_config_parses() {
        let text = include_str!("../fenton.example.toml");
        let file = parse(text, Path::new("fenton.example.toml")).unwrap();
        assert!(file.profile.contains_key("fenton"));
    }
}
