//! `fenton tunnel LOCAL[:HOST:PORT]` / `tunnel list` / `tunnel close LOCAL`: extra local
//! forwards (TensorBoard, a dashboard…) held by the shared connection, like Jupyter's. This
//! machine keeps the list, beside the connection's socket, so `list` and `close` know them.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::Ctx;
use crate::cli::{TunnelArgs, TunnelCommand};
use crate::exit::Exit;
use crate::remote::{runtime, Remote};
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
        // A host name or an address: nothing ssh's forward spec (or the list file) would split.
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

    fn up(&self) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.local));
        TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
    }
}

impl std::fmt::Display for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "127.0.0.1:{} -> {}:{}", self.local, self.host, self.port)
    }
}

pub fn run(ctx: &Ctx, args: TunnelArgs) -> Result<Exit> {
    let remote = ctx.remote()?;
    let runtime = runtime()?;
    match (args.command, args.spec) {
        (Some(TunnelCommand::List), _) => list(&remote),
        (Some(TunnelCommand::Close { local }), _) => runtime.block_on(close(&remote, local)),
        (None, Some(spec)) => runtime.block_on(open(&remote, Tunnel::parse(&spec)?)),
        (None, None) => bail!("give LOCAL[:HOST:PORT], `list` or `close LOCAL`"),
    }
}

fn load(remote: &Remote) -> Vec<Tunnel> {
    let text = fs::read_to_string(remote.state_file("tunnels")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut words = line.split(' ');
            Some(Tunnel {
                local: words.next()?.parse().ok()?,
                host: words.next()?.to_string(),
                port: words.next()?.parse().ok()?,
            })
        })
        .collect()
}

fn save(remote: &Remote, tunnels: &[Tunnel]) -> Result<()> {
    let path = remote.state_file("tunnels");
    let text: String = tunnels
        .iter()
        .map(|t| format!("{} {} {}\n", t.local, t.host, t.port))
        .collect();
    fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

async fn open(remote: &Remote, tunnel: Tunnel) -> Result<Exit> {
    // The master takes a forward without asking the box: ask it first, reconnecting if the
    // link has died under the master.
    remote.connect_verified().await?;
    let mut tunnels = load(remote);
    if let Some(known) = tunnels.iter().find(|t| t.local == tunnel.local) {
        if known == &tunnel && tunnel.up() && remote.live_session().await.is_some() {
            ui::info(format_args!("already open: {tunnel}"));
            return Ok(Exit::Success);
        }
        // Lost with the connection that held it, or pointing elsewhere: replace it.
        remote
            .cancel_local(known.local, &known.host, known.port)
            .await;
        tunnels.retain(|t| t.local != tunnel.local);
    }
    let Ok(probe) = TcpListener::bind((Ipv4Addr::LOCALHOST, tunnel.local)) else {
        bail!(
            "local port {} is in use here: pick another, e.g. `fenton tunnel {}:{}:{}`",
            tunnel.local,
            tunnel.local.saturating_add(1),
            tunnel.host,
            tunnel.port
        );
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
    drop(probe);
    remote
        .forward_local(tunnel.local, &tunnel.host, tunnel.port)
        .await?;
    ui::info(format_args!(
        "forwarding {tunnel} on the box, held by the shared connection: it closes with it ({} s after the last use; run this again to restore it)",
        remote.profile.control_persist
    ));
    crate::outln!("http://127.0.0.1:{}/", tunnel.local);
    tunnels.push(tunnel);
    save(remote, &tunnels)?;
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
    let tunnels = load(remote);
    if tunnels.is_empty() {
        ui::info(format_args!(
            "no tunnels: open one with `fenton tunnel PORT`"
        ));
    }
    for tunnel in tunnels {
        let state = if tunnel.up() {
            "up"
        } else {
            "down (`fenton tunnel` it again)"
        };
        crate::outln!("{tunnel}\t{state}");
    }
    Ok(Exit::Success)
}

async fn close(remote: &Remote, local: u16) -> Result<Exit> {
    let mut tunnels = load(remote);
    let Some(tunnel) = tunnels.iter().find(|t| t.local == local).cloned() else {
        bail!("no tunnel on local port {local}: `fenton tunnel list` shows them");
    };
    remote
        .cancel_local(tunnel.local, &tunnel.host, tunnel.port)
        .await;
    tunnels.retain(|t| t.local != local);
    save(remote, &tunnels)?;
    ui::info(format_args!("closed {tunnel}"));
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
