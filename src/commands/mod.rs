//! One module per command; this one resolves what every command shares (the config and the
//! profile) and dispatches.

mod cluster;
mod code;
mod completions;
mod config;
mod connect;
mod doctor;
mod exec;
mod fs;
mod jesus;
mod jobs;
mod jupyter;
pub mod jupyter_slurm;
mod kill;
mod logs;
mod monitor;
mod notify;
mod run;
mod ssh;
mod status;
mod tmux;
mod tunnel;

use anyhow::Result;

use crate::cli::{Cli, Command, Global, SshArgs};
use crate::config::Loaded;
use crate::exit::Exit;
use crate::remote::Remote;

/// What a command may ask for: the global options, and from them the config and the box.
pub struct Ctx {
    pub global: Global,
}

impl Ctx {
    pub fn config(&self) -> Result<Loaded> {
        crate::config::load(self.global.config.as_deref())
    }

    /// The selected profile's box.
    pub fn remote(&self) -> Result<Remote> {
        let loaded = self.config()?;
        let (name, profile) = loaded.profile(self.global.profile.as_deref())?;
        let mut remote = Remote::new(name, profile)?;
        remote.config_path = Some(loaded.path);
        Ok(remote)
    }
}

pub fn run(cli: Cli) -> Result<Exit> {
    let ctx = Ctx { global: cli.global };
    let command = cli
        .command
        .unwrap_or(Command::Ssh(SshArgs { command: vec![] }));
    match command {
        Command::Ssh(args) => ssh::run(&ctx, args),
        Command::Exec(args) => exec::run(&ctx, args),
        Command::Tmux(args) => tmux::run(&ctx, args),
        Command::Fs(command) => fs::run(&ctx, command),
        Command::Status(args) => status::run(&ctx, args),
        Command::Run(args) => run::run(&ctx, args),
        Command::Jobs(args) => jobs::run(&ctx, args),
        Command::Logs(args) => logs::run(&ctx, args),
        Command::Kill(args) => kill::run(&ctx, args),
        Command::Notify(command) => notify::run(&ctx, command),
        Command::Monitor(command) => monitor::run(&ctx, command),
        Command::Jupyter(command) => jupyter::run(&ctx, command),
        Command::Tunnel(args) => tunnel::run(&ctx, args),
        Command::Code(args) => code::code(&ctx, args),
        Command::SshConfig(args) => code::ssh_config(&ctx, args),
        Command::Connect => connect::connect(&ctx),
        Command::Disconnect(args) => connect::disconnect(&ctx, args),
        Command::HoldForwards { socket } => tunnel::hold(&ctx, &socket),
        Command::Doctor(args) => doctor::run(&ctx, args),
        Command::Config(command) => config::run(&ctx, command),
        Command::Completions { shell } => completions::completions(shell),
        Command::Man(args) => completions::man(args),
        Command::Jesus { .. } => jesus::run(),
    }
}
