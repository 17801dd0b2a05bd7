//! `fenton connect` / `fenton disconnect`: the shared connection, opened or closed on purpose.

use anyhow::Result;

use super::Ctx;
use crate::cli::DisconnectArgs;
use crate::exit::Exit;
use crate::remote::runtime;
use crate::ui;

pub fn connect(ctx: &Ctx) -> Result<Exit> {
    let remote = ctx.remote()?;
    let rt = runtime()?;
    let opened = rt.block_on(remote.connect_verified())?;
    rt.block_on(super::monitor::auto_start(ctx, &remote));
    let host = &remote.profile.host;
    if opened {
        ui::info(format_args!(
            "connected to {} ({host}); the connection stays open {} s after the last command",
            remote.name, remote.profile.control_persist
        ));
    } else {
        ui::info(format_args!("already connected to {host}"));
    }
    Ok(Exit::Success)
}

pub fn disconnect(ctx: &Ctx, args: DisconnectArgs) -> Result<Exit> {
    let remote = ctx.remote()?;
    let host = &remote.profile.host;
    // The forwards first: one could open the connection again as it closes.
    let forwards = if args.all {
        if remote.stop_forwarder()? {
            ui::info(format_args!("closed the forwards to {host}"));
        }
        vec![]
    } else {
        remote.held_forwards(false)?
    };
    if runtime()?.block_on(remote.disconnect())? {
        ui::info(format_args!("disconnected from {host}"));
    } else {
        ui::info(format_args!("no connection to {host} was open"));
    }
    if !forwards.is_empty() {
        let ports: Vec<String> = forwards
            .iter()
            .map(|l| l.forward.local.to_string())
            .collect();
        ui::info(format_args!(
            "the forwards on 127.0.0.1 ({}) stay, and connect again when used: `fenton disconnect --all` closes them too",
            ports.join(", ")
        ));
    }
    Ok(Exit::Success)
}
