//! `fenton tunnel LOCAL[:HOST:PORT]` / `tunnel list` / `tunnel close LOCAL`: extra local
//! forwards (TensorBoard, a dashboard…), held like Jupyter's by fenton's forwarder on this
//! machine (`remote::holder`), which reconnects by itself after sleep or a lost connection.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;

use anyhow::{bail, Result};

use super::Ctx;
use crate::cli::{TunnelArgs, TunnelCommand};
use crate::exit::Exit;
use crate::remote::holder::{Forward, Opened};
use crate::remote::{runtime, Remote};
use crate::status::render::bytes;
use crate::ui;

/// One forward: 127.0.0.1:`local` here to `host`:`port` as the box sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tunnel {
    local: u16,
    host: String,
    port: u16,
}

impl Tunnel {
    /// `LOCAL` (the same port on the box) or `LOCAL:HOST:PORT`.
    fn parse(spec: &str) -> Result<Tunnel> {
        let bad = || {
            anyhow::anyhow!(
                "{spec:?} is not LOCAL or LOCAL:HOST:PORT (e.g. 6006, or 6006:localhost:6006)"
            )
        };
        let port = |text: &str| text.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad);
        let Some((local, rest)) = spec.split_once(':') else {
            let local = port(spec)?;
            return Ok(Tunnel {
                local,
                host: "localhost".into(),
                port: local,
            });
        };
        let (host, remote) = rest.rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        // A host name or an address: nothing the forwarder's requests would split.
        let name = |c: char| c.is_ascii_alphanumeric() || ".-_:".contains(c);
        if host.is_empty() || host.starts_with('-') || !host.chars().all(name) {
            return Err(bad());
        }
        Ok(Tunnel {
            local: port(local)?,
            host: host.to_string(),
            port: port(remote)?,
        })
    }
}

impl std::fmt::Display for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "127.0.0.1:{} -> {}:{}", self.local, self.host, self.port)
    }
}

pub fn run(ctx: &Ctx, args: TunnelArgs) -> Result<Exit> {
    let remote = ctx.remote()?;
    match (args.command, args.spec) {
        (Some(TunnelCommand::List), _) => list(&remote),
        (Some(TunnelCommand::Close { local }), _) => close(&remote, local),
        (None, Some(spec)) => runtime()?.block_on(open(&remote, Tunnel::parse(&spec)?)),
        (None, None) => bail!("give LOCAL[:HOST:PORT], `list` or `close LOCAL`"),
    }
}

/// The hidden `fenton hold-forwards --socket PATH`: the forwarder itself, started by the
/// commands that open a forward.
pub fn hold(ctx: &Ctx, socket: &Path) -> Result<Exit> {
    crate::remote::holder::serve(ctx.remote()?, socket)?;
    Ok(Exit::Success)
}

fn in_use(tunnel: &Tunnel) -> anyhow::Error {
    anyhow::anyhow!(
        "local port {} is in use here by another program: pick another, e.g. `fenton tunnel {}:{}:{}`",
        tunnel.local,
        tunnel.local.saturating_add(1),
        tunnel.host,
        tunnel.port
    )
}

async fn open(remote: &Remote, tunnel: Tunnel) -> Result<Exit> {
    // Ask the box first: a forward it cannot carry is better refused now.
    remote.connect_verified().await?;
    let forward = Forward {
        local: tunnel.local,
        host: tunnel.host.clone(),
        port: tunnel.port,
        kind: "tunnel".into(),
    };
    let held = remote.held_forwards(false)?;
    let known = held.iter().find(|l| l.forward.local == tunnel.local);
    if known.is_some_and(|l| l.forward.host == tunnel.host && l.forward.port == tunnel.port) {
        ui::info(format_args!("already open: {tunnel}"));
        crate::outln!("http://127.0.0.1:{}/", tunnel.local);
        return Ok(Exit::Success);
    }
    if known.is_none() {
        let Ok(probe) = TcpListener::bind((Ipv4Addr::LOCALHOST, tunnel.local)) else {
            return Err(in_use(&tunnel));
        };
        if onto_itself(remote, &probe, &tunnel).await? {
            bail!(
                "the box is this machine, so 127.0.0.1:{} would forward onto itself, again and again: forward another local port to it, e.g. `fenton tunnel {}:{}:{}`",
                tunnel.local,
                tunnel.local.saturating_add(1),
                tunnel.host,
                tunnel.port
            );
        }
    }
    match remote.hold_forward(&forward)? {
        Opened::Busy => return Err(in_use(&tunnel)),
        Opened::Moved => ui::info(format_args!(
            "127.0.0.1:{} now forwards to {}:{}",
            tunnel.local, tunnel.host, tunnel.port
        )),
        Opened::New | Opened::Already => {}
    }
    ui::info(format_args!(
        "forwarding {tunnel}, held by fenton here: it reconnects by itself after sleep or a lost connection; `fenton tunnel close {}` ends it",
        tunnel.local
    ));
    let answer = remote
        .held_forwards(true)?
        .into_iter()
        .find(|l| l.forward.local == tunnel.local)
        .map(|l| l.answer);
    if let Some(answer) = answer.filter(|a| a != "answers") {
        ui::warn(format_args!(
            "nothing answers at {}:{} on the box yet ({}): connections fail until something listens there",
            tunnel.host,
            tunnel.port,
            ui::clean(&answer)
        ));
    }
    crate::outln!("http://127.0.0.1:{}/", tunnel.local);
    Ok(Exit::Success)
}

/// Whether the forward's target is the listener it would make: the box is this machine (the
/// sandbox, a laptop that is its own box) and the target is this machine's loopback at the same
/// port. Every connection would then open another, until the machine runs out of sockets.
/// `probe` holds the local port meanwhile; the box is asked whether it sees that very socket
/// (the same inode) listening.
async fn onto_itself(remote: &Remote, probe: &TcpListener, tunnel: &Tunnel) -> Result<bool> {
    let loopback = ["localhost", "ip6-localhost", "::1"].contains(&tunnel.host.as_str())
        || tunnel.host.starts_with("127.");
    if !loopback || tunnel.port != tunnel.local {
        return Ok(false);
    }
    let Some(inode) = socket_inode(probe) else {
        return Ok(false);
    };
    let out = remote
        .output("sh -s", b"cat /proc/net/tcp /proc/net/tcp6 2>/dev/null\n")
        .await?;
    Ok(listens_with_inode(
        &String::from_utf8_lossy(&out.stdout),
        tunnel.port,
        &inode,
    ))
}

/// The inode of a socket of ours, as /proc names it (Linux; elsewhere no box can be this
/// machine's loopback).
fn socket_inode(socket: &TcpListener) -> Option<String> {
    use std::os::fd::AsRawFd;
    let link = fs::read_link(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok()?;
    let link = link.to_str()?;
    Some(
        link.strip_prefix("socket:[")?
            .strip_suffix(']')?
            .to_string(),
    )
}

/// Whether /proc/net/tcp{,6} text lists a socket listening on `port` with this inode.
fn listens_with_inode(table: &str, port: u16, inode: &str) -> bool {
    let port = format!(":{port:04X}");
    table.lines().any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() > 9 && f[1].ends_with(&port) && f[3] == "0A" && f[9] == inode
    })
}

fn list(remote: &Remote) -> Result<Exit> {
    let held = remote.held_forwards(true)?;
    if held.is_empty() {
        ui::info(format_args!(
            "no forwards: open one with `fenton tunnel PORT`"
        ));
    }
    for l in held {
        let f = &l.forward;
        let whose = if f.kind == "tunnel" {
            String::new()
        } else {
            format!(" ({})", f.kind)
        };
        let state = if l.answer == "answers" {
            "up".to_string()
        } else {
            format!("down: {}", ui::clean(&l.answer))
        };
        crate::outln!(
            "127.0.0.1:{} -> {}{whose}\t{state}\t{} down, {} up, {} connections ({} open, {} failed)",
            f.local,
            ui::clean(&f.target()),
            bytes(l.down),
            bytes(l.up),
            l.connections,
            l.active,
            l.failed
        );
    }
    Ok(Exit::Success)
}

fn close(remote: &Remote, local: u16) -> Result<Exit> {
    if !remote.release_forward(local)? {
        bail!("no tunnel on local port {local}: `fenton tunnel list` shows them");
    }
    ui::info(format_args!("closed the forward on 127.0.0.1:{local}"));
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_socket_is_found_by_port_and_inode() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1776 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1776 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1
";
        assert!(listens_with_inode(table, 6006, "4242"));
        assert!(!listens_with_inode(table, 6006, "4343"), "not listening");
        assert!(!listens_with_inode(table, 6007, "4242"), "another port");
        assert!(!listens_with_inode("Welcome to the box!\n", 6006, "4242"));
    }

    #[test]
    fn specs_parse() {
        let t = |local, host: &str, port| Tunnel {
            local,
            host: host.into(),
            port,
        };
        assert_eq!(Tunnel::parse("6006").unwrap(), t(6006, "localhost", 6006));
        assert_eq!(
            Tunnel::parse("7000:gpu2:6006").unwrap(),
            t(7000, "gpu2", 6006)
        );
        assert_eq!(Tunnel::parse("7000:[::1]:80").unwrap(), t(7000, "::1", 80));
        for bad in [
            "",
            "x",
            "0",
            "70000",
            "1:host",
            "1::2",
            "1:-oX:2",
            "1:h:0",
            "1:my host:2",
            "1:a;b:2",
        ] {
            assert!(Tunnel::parse(bad).is_err(), "{bad:?}");
        }
    }
}
