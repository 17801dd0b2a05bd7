//! `fenton connect` / `fenton disconnect`: the shared connection, opened or closed on purpose.

use anyhow::Result;

use super::Ctx;
use crate::exit::Exit;
use crate::remote::runtime;
use crate::ui;

pub fn connect(ctx: &Ctx) -> Result<Exit> {
    let remote = ctx.remote()?;
    let opened = runtime()?.block_on(remote.connect_verified())?;
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

pub fn disconnect(ctx: &Ctx) -> Result<Exit> {
    let remote = ctx.remote()?;
    let host = &remote.profile.host;
    if runtime()?.block_on(remote.disconnect())? {
        ui::info(format_args!("disconnected from {host}"));
    } else {
        ui::info(format_args!("no connection to {host} was open"));
    }
    Ok(Exit::Success)
}
