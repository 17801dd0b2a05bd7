//! Local port forwards (`ssh -L`) through the shared connection. The master holds them, so they
//! outlive the fenton command that asked for one and need no handshake of their own; they end
//! with the connection (`fenton disconnect`, a reboot, the laptop's sleep), which is why the
//! commands that use them check and re-create them.

use std::net::{Ipv4Addr, TcpListener};

use anyhow::{Context, Result};
use openssh::{ForwardType, Socket};

use super::Remote;
use crate::ui;

impl Remote {
    /// Forwards 127.0.0.1:`local` on this machine to `host`:`port` as seen from the box.
    pub async fn forward_local(&self, local: u16, host: &str, port: u16) -> Result<()> {
        let session = self.session().await?;
        ui::trace_remote(&format!(
            "ssh -O forward -L 127.0.0.1:{local}:{host}:{port}"
        ));
        session
            .request_port_forward(
                ForwardType::Local,
                (Ipv4Addr::LOCALHOST, local),
                Socket::new(host, port),
            )
            .await
            .with_context(|| {
                format!(
                    "the shared connection refused to forward 127.0.0.1:{local} to {host}:{port}: is local port {local} taken (pick another), or does the box's sshd forbid forwarding (AllowTcpForwarding)?"
                )
            })
    }

    /// Ends a forward made by [`Remote::forward_local`], if the connection that holds it is up.
    pub async fn cancel_local(&self, local: u16, host: &str, port: u16) {
        let Some(session) = self.live_session().await else {
            return;
        };
        ui::trace_remote(&format!("ssh -O cancel -L 127.0.0.1:{local}:{host}:{port}"));
        let _ = session
            .close_port_forward(
                ForwardType::Local,
                (Ipv4Addr::LOCALHOST, local),
                Socket::new(host, port),
            )
            .await;
    }
}

/// The first port from `from` on that nobody listens on at 127.0.0.1.
pub fn free_local_port(from: u16) -> Result<u16> {
    (from..=from.saturating_add(100))
        .find(|&port| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok())
        .with_context(|| {
            format!(
                "no free local port in {from}..{}: close what uses them or pick another",
                from.saturating_add(100)
            )
        })
}
