//! A network link a test can cut: two network namespaces joined by a veth pair, the box's
//! sshd in one (`in_box`), the client's processes in the other (`enter`, with `nsenter --net`
//! only, so a FUSE mount they make stays visible to the test), and nftables rules in the
//! client's namespace that blackhole or reject the traffic, and are lifted again.
//!
//! Addresses live only inside the namespaces made here (10.213.N.0/30), so nothing on the
//! machine sees them; Drop deletes the namespaces (and with them the veth pair).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{installed, run};

pub struct Link {
    /// The namespace the box (sshd) runs in.
    pub box_ns: String,
    /// The namespace the client (fenton, ssh, sshfs) runs in.
    pub client_ns: String,
    /// The box's address, reachable from the client's namespace only.
    pub box_addr: String,
    pub client_addr: String,
    client_dev: String,
}

impl Link {
    /// Whether this machine lets a test make namespaces: root, iproute2, nftables, nsenter, and
    /// a kernel (or container) that allows a new network namespace.
    pub fn available() -> bool {
        let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
        });
        if !(root && installed("ip") && installed("nft") && installed("nsenter")) {
            return false;
        }
        static PROBES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let probe = format!("fenton-p{}-{n}", std::process::id());
        let made = ip(&["netns", "add", &probe]);
        if made {
            ip(&["netns", "del", &probe]);
        }
        made
    }

    /// Makes the namespaces and the link between them, up. Panics when it cannot.
    pub fn new() -> Link {
        // A free pair of names; `ip netns add` fails on a taken one, so it is also the lock
        // against tests running beside this one.
        for n in 0..=250u32 {
            let client_ns = format!("fenton-c{n}");
            if !ip(&["netns", "add", &client_ns]) {
                continue;
            }
            let box_ns = format!("fenton-b{n}");
            if !ip(&["netns", "add", &box_ns]) {
                ip(&["netns", "del", &client_ns]);
                continue;
            }
            let link = Link {
                box_addr: format!("10.213.{n}.1"),
                client_addr: format!("10.213.{n}.2"),
                client_dev: format!("fc{n}"),
                box_ns,
                client_ns,
            };
            let box_dev = format!("fb{n}");
            let steps: [&[&str]; 7] = [
                &[
                    "link",
                    "add",
                    &box_dev,
                    "netns",
                    &link.box_ns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &link.client_dev,
                    "netns",
                    &link.client_ns,
                ],
                &[
                    "-n",
                    &link.box_ns,
                    "addr",
                    "add",
                    &format!("{}/30", link.box_addr),
                    "dev",
                    &box_dev,
                ],
                &[
                    "-n",
                    &link.client_ns,
                    "addr",
                    "add",
                    &format!("{}/30", link.client_addr),
                    "dev",
                    &link.client_dev,
                ],
                &["-n", &link.box_ns, "link", "set", &box_dev, "up"],
                &["-n", &link.client_ns, "link", "set", &link.client_dev, "up"],
                &["-n", &link.box_ns, "link", "set", "lo", "up"],
                &["-n", &link.client_ns, "link", "set", "lo", "up"],
            ];
            for step in steps {
                assert!(ip(step), "ip {step:?} failed");
            }
            return link;
        }
        panic!("no free network namespace name fenton-cN/fenton-bN (N up to 250): delete stale ones with `ip netns del`");
    }

    /// `cmd` run in the client's network namespace (everything else shared), with its
    /// environment kept.
    pub fn enter(&self, cmd: &Command) -> Command {
        self.in_namespace(&self.client_ns, cmd)
    }

    /// `cmd` run in the box's network namespace.
    pub fn in_box(&self, cmd: &Command) -> Command {
        self.in_namespace(&self.box_ns, cmd)
    }

    fn in_namespace(&self, ns: &str, cmd: &Command) -> Command {
        let mut wrapped = Command::new("nsenter");
        wrapped
            .arg(format!("--net={}", self.ns_path(ns).display()))
            .arg("--")
            .arg(cmd.get_program())
            .args(cmd.get_args());
        wrap_env(cmd, &mut wrapped);
        wrapped
    }

    /// Every packet between client and box silently dropped: a cable pulled, a Wi-Fi gone.
    pub fn blackhole(&self) {
        self.rules("drop");
    }

    /// Every connection refused at once (TCP reset): the box's network stack answers, sshd
    /// does not.
    pub fn reject(&self) {
        self.rules("meta l4proto tcp reject with tcp reset");
    }

    /// The link as it was.
    pub fn restore(&self) {
        let _ = self.nft("delete table inet fenton_link\n");
    }

    fn rules(&self, verdict: &str) {
        self.restore();
        let dev = &self.client_dev;
        let text = format!(
            "table inet fenton_link {{\n\
               chain out {{ type filter hook output priority 0; oifname \"{dev}\" {verdict}; }}\n\
               chain in {{ type filter hook input priority 0; iifname \"{dev}\" {verdict}; }}\n\
             }}\n"
        );
        let out = self.nft(&text);
        assert_eq!(out.code, Some(0), "nft rules: {out:#?}");
    }

    fn nft(&self, text: &str) -> super::Out {
        let script =
            std::env::temp_dir().join(format!("{}-{}.nft", self.client_ns, std::process::id()));
        std::fs::write(&script, text).unwrap();
        let mut cmd = Command::new("nft");
        cmd.arg("-f").arg(&script).stdin(Stdio::null());
        let out = run(self.enter(&cmd), Duration::from_secs(10));
        let _ = std::fs::remove_file(&script);
        out
    }

    fn ns_path(&self, name: &str) -> PathBuf {
        PathBuf::from("/run/netns").join(name)
    }
}

/// The wrapped command gets only the environment `from` sets, as `TestBox::fenton`'s
/// `env_clear` means (a Command cannot tell), plus PATH.
fn wrap_env(from: &Command, to: &mut Command) {
    to.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (key, value) in from.get_envs() {
        match value {
            Some(value) => to.env(key, value),
            None => to.env_remove(key),
        };
    }
    if let Some(dir) = from.get_current_dir() {
        to.current_dir(dir);
    }
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Drop for Link {
    fn drop(&mut self) {
        // The veth pair goes with either end's namespace; delete it first anyway, so a process
        // still inside cannot keep it.
        ip(&["-n", &self.client_ns, "link", "del", &self.client_dev]);
        ip(&["netns", "del", &self.client_ns]);
        ip(&["netns", "del", &self.box_ns]);
    }
}
