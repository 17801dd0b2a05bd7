//! The command line, as clap types only: what the user typed, before the config file and the
//! environment turn it into a resolved profile. No logic lives here.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "fenton",
    version,
    about = "Drive a remote GPU box from your laptop: shell, files, tmux, Jupyter, GPUs, jobs",
    long_about = "Drive a remote GPU box from your laptop.\n\n\
        With no command, fenton opens a login shell on the profile's box (same as `fenton ssh`). \
        Every command shares one ssh connection (an OpenSSH ControlMaster), so only the first \
        one pays for the handshake.",
    after_help = "The original script's words still work: `fenton -fs` mounts the box's files, \
        `fenton -jn` attaches to the tmux session.\n\
        Config: ~/.config/fenton/config.toml (run `fenton config init` to write one).",
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Profile (box) to use; default: the config's `default`
    #[arg(
        short,
        long,
        global = true,
        env = "FENTON_PROFILE",
        value_name = "NAME"
    )]
    pub profile: Option<String>,

    /// Config file; default: $XDG_CONFIG_HOME/fenton/config.toml or ~/.config/fenton/config.toml
    #[arg(short, long, global = true, env = "FENTON_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Say more; -vv shows every ssh command line fenton runs (secrets masked)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Say only errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// When to use colours (NO_COLOR is honoured under auto)
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto, value_name = "WHEN")]
    pub color: Color,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Interactive login shell on the box; with CMD, run CMD there with a tty
    Ssh(SshArgs),

    /// Run a command on the box without a tty; stdin, stdout, stderr and the exit status pass through
    ///
    /// Each word reaches the box as typed (quoted for its shell). For pipes, globs or `&&`,
    /// hand them to a shell yourself: `fenton exec -- sh -c 'nvidia-smi | head -5'`.
    Exec(ExecArgs),

    /// Attach to the persistent tmux session on the box, creating it if missing
    Tmux(TmuxArgs),

    /// Jupyter on the box, alive in a tmux window, opened here through a local forward
    #[command(subcommand)]
    Jupyter(JupyterCommand),

    /// Forward a local port to a port on (or reachable from) the box: TensorBoard and the like
    ///
    /// The forward listens on 127.0.0.1 only and is held by a small fenton process on this
    /// machine (one per profile, shared with Jupyter's forward), not by the ssh connection: it
    /// survives sleep, a network change and a killed connection, and the next connection
    /// through it opens the shared connection again by itself. That process stops with
    /// `tunnel close` of its last forward, `jupyter stop`, `disconnect --all`, after
    /// `forward_idle_timeout` seconds without a connection (when set; default: never), and
    /// with your login session (when the session's runtime directory, $XDG_RUNTIME_DIR, is
    /// removed at logout; where there is none, at reboot).
    Tunnel(TunnelArgs),
    /// Mount the box's files here with sshfs, unmount them, or say how the mount is
    #[command(subcommand)]
    Fs(FsCommand),

    /// The box at a glance: CPU, memory, disks, network, GPUs, tmux, Jupyter, jobs, mount, link
    ///
    /// One round trip: a script sent to the box's `sh` reads /proc, df, nvidia-smi and tmux.
    /// Nothing needs installing there.
    Status(StatusArgs),
    /// Start a command on the box in the background; it keeps running when the laptop goes away
    ///
    /// Each word reaches the box as typed, as with `fenton exec`; for pipes or `&&`, hand them
    /// to a shell: `fenton run -- sh -c 'python train.py | tee out.txt'`. stdout and stderr go
    /// to the job's log on the box. Prints the job's id. On a Slurm profile
    /// (`scheduler = "slurm"`) the command is submitted with sbatch instead, and fenton prints
    /// the Slurm job id too.
    Run(RunArgs),

    /// List the jobs on the box: id, name, state, start, duration, last line of the log
    Jobs(JobsArgs),

    /// Print a job's log; with -f, follow it until the job ends (then exit with its status)
    Logs(LogsArgs),

    /// Stop a job: SIGTERM to its process group, SIGKILL after a grace period
    Kill(KillArgs),

    /// Notifications sent by the box when a job ends
    #[command(subcommand)]
    Notify(NotifyCommand),

    /// A recorder on the box (a sh loop, nothing installed) for `fenton status --history`
    #[command(subcommand)]
    Monitor(MonitorCommand),

    /// Open VS Code (or another editor) on a directory of the box, over the shared connection
    ///
    /// Runs `code --remote ssh-remote+fenton-PROFILE DIR`. The host `fenton-PROFILE` is an
    /// entry fenton keeps in its own ssh config file (`fenton ssh-config` prints it): it uses
    /// fenton's shared connection, so the editor needs no second login. For the editor to find
    /// it, ~/.ssh/config must include that file: fenton adds one `Include` line at its top when
    /// you agree (--setup, or a question on a terminal, asked once), keeping a copy of the file
    /// as it was. fenton first checks that the box can run the editor's server (glibc 2.28 or
    /// newer since VS Code 1.99) and that DIR is a directory there. Needs the editor's
    /// Remote - SSH extension.
    Code(CodeArgs),

    /// Print the ssh Host entry that reaches the box over fenton's shared connection
    ///
    /// For any other tool that speaks ssh: PyCharm's SSH interpreter, JetBrains Gateway, scp,
    /// rsync (`rsync -e 'ssh -F FILE'`, or plain `ssh fenton-PROFILE` once ~/.ssh/config
    /// includes fenton's file). The entry is also written to fenton's ssh config file
    /// ($XDG_CONFIG_HOME/fenton/ssh_config or ~/.config/fenton/ssh_config), whose path
    /// `--path` prints instead.
    SshConfig(SshConfigArgs),

    /// Open the shared connection now (later commands reuse it)
    Connect,

    /// Close the shared connection; with --all, Jupyter's and the tunnels' forwards too
    ///
    /// Without --all the forwards stay: the next connection through one opens the shared
    /// connection again.
    Disconnect(DisconnectArgs),

    /// Check the laptop, the config, the link and the box; say what to fix (exit 1 on a problem)
    Doctor(DoctorArgs),

    /// Write, show and locate the config file
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Print shell completions (bash, zsh, fish, elvish, powershell)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff); with --dir, write it and one page per command there
    Man(ManArgs),

    /// Holds the profile's forwards; fenton starts it when a forward is opened
    #[command(hide = true, name = "hold-forwards")]
    HoldForwards {
        #[arg(long)]
        socket: PathBuf,
    },

    /// Opens the video that gave fenton its name
    #[command(hide = true)]
    Jesus {
        #[arg(hide = true)]
        rest: Vec<OsString>,
    },
}

#[derive(Debug, Args)]
pub struct SshArgs {
    /// The command and its arguments, run with a tty (`--` first if it starts with `-`); none: a
    /// login shell
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD",
        value_parser = clap::value_parser!(OsString)
    )]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The command and its arguments (`--` first if it starts with `-`)
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD",
        value_parser = clap::value_parser!(OsString)
    )]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct CodeArgs {
    /// Directory on the box to open (relative: to the remote home); default: the remote home
    #[arg(value_name = "DIR")]
    pub dir: Option<String>,

    /// The editor to run: code, cursor, codium, code-insiders… (default: the config's
    /// `editor`, else code)
    #[arg(long, value_name = "PROGRAM")]
    pub editor: Option<String>,

    /// Add the one `Include` line to ~/.ssh/config (a copy of it is kept) without asking
    #[arg(long)]
    pub setup: bool,
}

#[derive(Debug, Args)]
pub struct SshConfigArgs {
    /// The profile whose entry to print (default: -p, else the config's default)
    #[arg(value_name = "PROFILE")]
    pub name: Option<String>,

    /// Print the path of fenton's ssh config file instead
    #[arg(long)]
    pub path: bool,

    /// Also add the one `Include` line to ~/.ssh/config (a copy of it is kept)
    #[arg(long)]
    pub setup: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A name to find the job by (letters, digits, '.', '_', '-'); default: from the command
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Notify on every configured channel when the job ends (also: `notify_by_default`)
    #[arg(long)]
    pub notify: bool,

    /// Also send the job's progress every DURATION (30m, 2h): elapsed time, last lines, its
    /// GPUs; on Telegram one message edited in place. Implies --notify; 0 turns a profile's off.
    /// Not on a Slurm profile, whose jobs send their end message only
    #[arg(long, value_name = "DURATION")]
    pub notify_every: Option<String>,

    /// Send a log line that matches REGEX (the box's grep -E) as it appears, at most one a
    /// minute per pattern, the latest winning; repeatable. Implies --notify. Not on a Slurm
    /// profile
    #[arg(long, value_name = "REGEX")]
    pub notify_on: Vec<String>,

    /// Say once when the log has not grown for DURATION while the job runs, and once when it
    /// moves again. Implies --notify; 0 turns a profile's off. Not on a Slurm profile
    #[arg(long, value_name = "DURATION")]
    pub stall: Option<String>,

    /// No end message for a job that ran less than DURATION (also: the profile's notify.min)
    #[arg(long, value_name = "DURATION")]
    pub notify_min: Option<String>,

    /// Directory on the box to run in; default: the remote home
    #[arg(long, value_name = "DIR")]
    pub dir: Option<String>,

    /// Slurm: GPUs for the job, a count or TYPE:COUNT (default: the profile's slurm.gpus)
    #[arg(long, value_name = "N|TYPE:N", help_heading = "Slurm profiles")]
    pub gpus: Option<String>,

    /// Slurm: the time limit: minutes, 30m, 4h, 2d or D-HH:MM:SS (default: slurm.time)
    #[arg(long, value_name = "TIME", help_heading = "Slurm profiles")]
    pub time: Option<String>,

    /// Slurm: the partition (default: slurm.partition, else the cluster's default)
    #[arg(long, value_name = "P", help_heading = "Slurm profiles")]
    pub partition: Option<String>,

    /// Slurm: CPUs for the job's task (default: slurm.cpus)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Slurm profiles")]
    pub cpus: Option<u32>,

    /// Slurm: memory on the node, e.g. 32G (default: slurm.mem)
    #[arg(long, value_name = "SIZE", help_heading = "Slurm profiles")]
    pub mem: Option<String>,

    /// Slurm: an array job, one task per index: 0-9, 1,3,5, 0-99%10
    #[arg(long, value_name = "INDEXES", help_heading = "Slurm profiles")]
    pub array: Option<String>,

    /// The command and its arguments, after fenton's options (`--` first if it starts with `-`)
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD",
        value_parser = clap::value_parser!(OsString)
    )]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write fenton.1 and a page per command (fenton-run.1, fenton-jupyter-start.1, …) into
    /// DIR, e.g. ~/.local/share/man/man1, instead of printing fenton.1
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Print JSON instead of a table (every job, unless --last is given)
    #[arg(long)]
    pub json: bool,

    /// Show the N latest jobs, and any older one still running [default for the table: 20]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), conflicts_with_all = ["all", "prune"])]
    pub last: Option<u32>,

    /// Show every job, however old
    #[arg(short, long, conflicts_with = "prune")]
    pub all: bool,

    /// Remove the directories (logs included) of finished jobs that ended long ago; running
    /// jobs are never touched
    #[arg(long, conflicts_with = "json")]
    pub prune: bool,

    /// With --prune: how long ago a job must have ended (s, m, h, d or w)
    #[arg(long, value_name = "AGE", default_value = "30d", requires = "prune")]
    pub older_than: String,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The job: its id, or its name (the latest job of that name)
    pub job: String,

    /// Only the last N lines
    #[arg(short = 'n', long = "lines", value_name = "N")]
    pub lines: Option<u64>,

    /// Keep printing until the job ends, then exit with its exit status
    #[arg(short, long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// The job: its id, or its name (the latest job of that name)
    pub job: String,

    /// Seconds between SIGTERM and SIGKILL
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub grace: u64,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test message from the box on every configured channel and report each result
    Test,
}

#[derive(Debug, Args)]
pub struct TmuxArgs {
    /// Session name; default: the profile's `tmux.session`
    pub session: Option<String>,

    /// Use tmux control mode (-CC), for iTerm2
    #[arg(long)]
    pub cc: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON (schema in the README); with --watch, one object per line per frame
    #[arg(long)]
    pub json: bool,

    /// Redraw every SECS seconds (default 2) until Ctrl-C, over one connection channel
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "2", value_parser = watch_interval)]
    pub watch: Option<f64>,

    /// Every profile in the config at once; an unreachable box does not delay the others
    #[arg(long, conflicts_with = "watch")]
    pub all: bool,

    /// Graphs of what the box did over the last DURATION (default 6h; 24h, 7d), from its recorder
    #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "6h", conflicts_with_all = ["watch", "all"])]
    pub history: Option<String>,

    /// With --history: write the charts to FILE as one self-contained HTML page instead
    #[arg(long, value_name = "FILE", conflicts_with_all = ["watch", "all", "json"])]
    pub html: Option<PathBuf>,

    /// With --history: open the HTML page (--html FILE, else a private temporary file) with
    /// the system's opener
    #[arg(long, conflicts_with_all = ["watch", "all", "json"])]
    pub open: bool,
}

#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// Start the recorder (or find the running one); it keeps recording when fenton is gone
    Start {
        /// Seconds between samples (default: the profile's `monitor.every`, 10)
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
        every: Option<u64>,
    },
    /// Stop the recorder; what it recorded stays
    Stop,
    /// Whether it records, since when, how much it keeps and how big that is
    Status {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the checks as JSON (stable ids) instead of lines
    #[arg(long)]
    pub json: bool,

    /// Also have the box send a test message on each configured notification channel
    #[arg(long)]
    pub notify: bool,
}

#[derive(Debug, Subcommand)]
pub enum FsCommand {
    /// Mount the profile's `mount.remote_path` (default: the remote home) on `mount.local_path`
    Mount,
    /// Unmount; says which local processes keep it busy
    Unmount {
        /// Get the mount point back even when the link is dead or the mount is busy
        #[arg(long)]
        force: bool,
    },
    /// Say whether the files are mounted, and whether the mount answers (exit 1 when not mounted and healthy)
    Status,
}

#[derive(Debug, Subcommand)]
pub enum JupyterCommand {
    /// Start Jupyter on the box (or find the one running), forward it here and open the browser
    Start(JupyterStartArgs),
    /// Stop Jupyter on the box and close its forward (its token and local port stay for the
    /// next start: the same URL)
    Stop,
    /// Whether Jupyter runs: pid, port, uptime, and the local URL (without the token)
    Status,
    /// Open the browser at the running Jupyter, holding its forward again if it was closed
    Open,
    /// Print the local URL with its token, for pasting (the only output that shows the token)
    Url,
}

#[derive(Debug, Args)]
pub struct JupyterStartArgs {
    /// Print the URL instead of opening the browser
    #[arg(long)]
    pub no_browser: bool,

    /// Port on the box; default: the profile's `jupyter.remote_port`
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// Local port; default: the one the last start used, else the profile's
    /// `jupyter.local_port` (the next free one when busy)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub local_port: Option<u16>,

    /// Make a new token (a saved URL stops working); default: keep the one Jupyter had
    #[arg(long)]
    pub new_token: bool,
}

#[derive(Debug, Args)]
pub struct DisconnectArgs {
    /// Also close Jupyter's and the tunnels' forwards and stop the process that holds them
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct TunnelArgs {
    #[command(subcommand)]
    pub command: Option<TunnelCommand>,

    /// LOCAL (the same port on the box) or LOCAL:HOST:PORT (HOST as the box sees it)
    #[arg(required = true, value_name = "LOCAL[:HOST:PORT]")]
    pub spec: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TunnelCommand {
    /// Every forward held here (Jupyter's too), whether the box end answers, and its traffic
    List,
    /// Close the tunnel on a local port
    Close {
        #[arg(value_name = "LOCAL")]
        local: u16,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write a first config (asks for what the flags do not give, when on a terminal)
    Init(InitArgs),
    /// Print the resolved profile and notification settings (secrets masked)
    Show,
    /// Print where the config file is
    Path,
    /// List the profiles, the default one marked with *
    Profiles,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The box: a name, an address, or a Host alias from your ssh config
    #[arg(long)]
    pub host: Option<String>,
    /// Remote user (default: your ssh config's, else your local user name)
    #[arg(long)]
    pub user: Option<String>,
    /// ssh port
    #[arg(long)]
    pub port: Option<u16>,
    /// Private key to log in with
    #[arg(long, value_name = "PATH")]
    pub identity_file: Option<String>,
    /// ssh config file to use for this box (ssh -F)
    #[arg(long, value_name = "PATH")]
    pub ssh_config: Option<String>,
    /// Profile name
    #[arg(long, default_value = "fenton")]
    pub name: String,
    /// Make this profile the default one
    #[arg(long)]
    pub set_default: bool,
}

/// The original script took `-fs` and `-jn`, which clap cannot parse as short flags: turn them
/// into the subcommands they stand for, when they come before any other command word.
/// `--watch SECS`: a frame at least every hour, at most ten a second.
fn watch_interval(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if (0.1..=3600.0).contains(&secs) => Ok(secs),
        _ => Err("seconds between frames, from 0.1 to 3600 (e.g. --watch 2)".into()),
    }
}

pub fn rewrite_legacy(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let mut i = 1;
    while i < args.len() {
        let Some(word) = args[i].to_str() else { break };
        match word {
            "-fs" => {
                args.splice(i..=i, ["fs".into(), "mount".into()]);
                break;
            }
            "-jn" => {
                args[i] = "tmux".into();
                break;
            }
            "-p" | "--profile" | "-c" | "--config" | "--color" => i += 2,
            w if w.starts_with('-') && w != "--" => i += 1,
            _ => break,
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    fn rewrite(args: &[&str]) -> Vec<String> {
        rewrite_legacy(args.iter().map(OsString::from))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn legacy_words_become_commands() {
        assert_eq!(rewrite(&["fenton", "-fs"]), ["fenton", "fs", "mount"]);
        assert_eq!(rewrite(&["fenton", "-jn"]), ["fenton", "tmux"]);
        assert_eq!(
            rewrite(&["fenton", "-p", "lab", "-v", "-jn"]),
            ["fenton", "-p", "lab", "-v", "tmux"]
        );
        // After a command word, -fs is that command's business.
        assert_eq!(
            rewrite(&["fenton", "exec", "--", "ls", "-fs"]),
            ["fenton", "exec", "--", "ls", "-fs"]
        );
    }

    #[test]
    fn run_takes_the_words_after_the_separator() {
        let cli =
            Cli::try_parse_from(["fenton", "run", "--name", "t", "--", "python", "-u", "x.py"])
                .unwrap();
        let Some(Command::Run(run)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.name.as_deref(), Some("t"));
        assert_eq!(run.command, ["python", "-u", "x.py"]);
    }

    #[test]
    fn run_and_ssh_take_a_command_without_the_separator_as_exec_does() {
        let cli = Cli::try_parse_from(["fenton", "run", "--name", "t", "python", "-u", "--name"])
            .unwrap();
        let Some(Command::Run(run)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.name.as_deref(), Some("t"));
        assert_eq!(run.command, ["python", "-u", "--name"]);
        let cli = Cli::try_parse_from(["fenton", "ssh", "ls", "-la"]).unwrap();
        let Some(Command::Ssh(ssh)) = cli.command else {
            panic!("not ssh")
        };
        assert_eq!(ssh.command, ["ls", "-la"]);
        let cli = Cli::try_parse_from(["fenton", "ssh", "--", "-weird"]).unwrap();
        let Some(Command::Ssh(ssh)) = cli.command else {
            panic!("not ssh")
        };
        assert_eq!(ssh.command, ["-weird"]);
        let cli = Cli::try_parse_from(["fenton", "ssh"]).unwrap();
        let Some(Command::Ssh(ssh)) = cli.command else {
            panic!("not ssh")
        };
        assert!(ssh.command.is_empty());
    }

    #[test]
    fn every_command_shows_one_usage_for_its_command_words() {
        let mut cli = Cli::command();
        for name in ["exec", "run", "ssh"] {
            let usage = cli
                .find_subcommand_mut(name)
                .unwrap()
                .render_usage()
                .to_string();
            assert!(usage.contains("CMD") && !usage.contains("-- "), "{usage}");
        }
    }

    #[test]
    fn exec_keeps_hyphen_words() {
        let cli = Cli::try_parse_from(["fenton", "exec", "ls", "-la", "--", "-x"]).unwrap();
        let Some(Command::Exec(exec)) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(exec.command, ["ls", "-la", "--", "-x"]);
    }
}
