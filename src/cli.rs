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
    /// Interactive login shell on the box; with `-- CMD...`, run CMD there with a tty
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
    Tunnel(TunnelArgs),

    /// Open the shared connection now (later commands reuse it)
    Connect,

    /// Close the shared connection
    Disconnect,

    /// Write, show and locate the config file
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Print shell completions (bash, zsh, fish, elvish, powershell)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff)
    Man,

    /// Opens the video that gave fenton its name
    #[command(hide = true)]
    Jesus {
        #[arg(hide = true)]
        rest: Vec<OsString>,
    },
}

#[derive(Debug, Args)]
pub struct SshArgs {
    /// Command to run with a tty (after `--`); none: a login shell
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The command and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TmuxArgs {
    /// Session name; default: the profile's `tmux.session`
    pub session: Option<String>,

    /// Use tmux control mode (-CC), for iTerm2
    #[arg(long)]
    pub cc: bool,
}

#[derive(Debug, Subcommand)]
pub enum JupyterCommand {
    /// Start Jupyter on the box (or find the one running), forward it here and open the browser
    Start(JupyterStartArgs),
    /// Stop Jupyter on the box and remove its token and forward
    Stop,
    /// Whether Jupyter runs: pid, port, uptime, and the local URL (without the token)
    Status,
    /// Open the browser at the running Jupyter, re-creating the forward if it was lost
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

    /// Local port; default: the profile's `jupyter.local_port` (the next free one when busy)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub local_port: Option<u16>,
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
    /// The tunnels this machine holds, and whether each is up
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
    fn exec_keeps_hyphen_words() {
        let cli = Cli::try_parse_from(["fenton", "exec", "ls", "-la", "--", "-x"]).unwrap();
        let Some(Command::Exec(exec)) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(exec.command, ["ls", "-la", "--", "-x"]);
    }
}
