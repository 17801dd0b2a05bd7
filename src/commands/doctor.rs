//! `fenton doctor [--json]`: every check of the laptop, the config, the link and the box, one
//! line each (ok, warning or problem) with the command or config line that fixes a problem.
//!
//! Each check is a small function returning a [`Check`] with a stable id, so `--json` and
//! scripts can rely on them. Checks look at the facts directly (files, `ssh -G`, a TCP connect,
//! one POSIX script on the box) and never at another command's code, so a broken feature cannot
//! hide what is wrong.

mod laptop;
mod link;
mod notify;
mod on_box;
mod slurm;

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::cli::DoctorArgs;
use crate::config::{Profile, Scheduler};
use crate::exit::Exit;
use crate::remote::Remote;
use crate::ui;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Problem,
    /// Not run, because what it needs failed first (said by another check).
    Skipped,
}

/// One finding: `fix` says what to type or which config line to write.
#[derive(Debug, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub status: Status,
    pub message: String,
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(id: &'static str, message: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Ok,
            message: message.into(),
            fix: None,
        }
    }

    pub fn warning(id: &'static str, message: impl Into<String>, fix: Option<String>) -> Check {
        Check {
            id,
            status: Status::Warning,
            message: message.into(),
            fix,
        }
    }

    pub fn problem(id: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Problem,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn skipped(id: &'static str, why: &str) -> Check {
        Check {
            id,
            status: Status::Skipped,
            message: format!("not checked: {why}"),
            fix: None,
        }
    }
}

/// What every check of one profile may need to know.
pub struct Target {
    pub name: String,
    pub profile: Profile,
    pub config_path: PathBuf,
}

impl Target {
    /// Where to write a profile key, for fixes: `under [profile.NAME] in PATH`.
    pub fn section(&self, table: &str) -> String {
        let table = if table.is_empty() {
            format!("[profile.{}]", self.name)
        } else {
            format!("[profile.{}.{table}]", self.name)
        };
        format!("under {table} in {}", self.config_path.display())
    }
}

const LINK: [&str; 5] = [
    "link.resolve",
    "link.port",
    "link.auth",
    "link.host_key",
    "link.rtt",
];

pub fn run(ctx: &Ctx, args: DoctorArgs) -> Result<Exit> {
    let mut checks = vec![laptop::ssh(), laptop::sshfs(), laptop::fuse()];
    let (config_checks, target, notify) = laptop::config(ctx);
    checks.extend(config_checks);
    match target {
        Some(target) => checks.extend(profile_checks(&target, notify.as_ref(), args.notify)),
        None => {
            let why = "no usable profile";
            for id in ["laptop.identity", "laptop.control_dir", "laptop.ssh_config"] {
                checks.push(Check::skipped(id, why));
            }
            checks.extend(LINK.iter().map(|id| Check::skipped(id, why)));
            checks.extend(on_box::IDS.iter().map(|id| Check::skipped(id, why)));
            let sent = args.notify.then(|| Err(why.to_string()));
            checks.extend(notify::checks(notify.as_ref(), sent.as_ref()));
        }
    }
    if args.json {
        print_json(&checks)?;
    } else {
        print_text(&checks);
    }
    let failed = checks.iter().any(|c| c.status == Status::Problem);
    Ok(if failed { Exit::Failure } else { Exit::Success })
}

fn profile_checks(
    target: &Target,
    notify: Option<&crate::config::Notify>,
    send: bool,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let remote = Remote::new(target.name.clone(), target.profile.clone());
    let settings = laptop::SshSettings::resolve(target, remote.as_ref().ok());
    let identity = laptop::identity(target, settings.as_ref().ok());
    // fenton refuses a key others can read before ssh runs (as ssh would): the shared
    // connection, and with it the box's checks, wait for that fix.
    let key_refused = identity.status == Status::Problem;
    checks.push(identity);
    checks.push(laptop::control_dir(&remote));
    checks.push(laptop::ssh_config(target, &settings));
    let sent: Option<notify::Sent>;
    let cluster = target.profile.scheduler == Scheduler::Slurm;
    // The same ids on every run of a profile: a cluster's checks are skipped with the box's.
    let box_ids = || {
        let slurm_ids = if cluster { &slurm::IDS[..] } else { &[] };
        on_box::IDS.iter().chain(slurm_ids).copied()
    };
    match (&remote, &settings) {
        (Ok(remote), Ok(settings)) => {
            let (link_checks, on_box) = link::checks(target, remote, settings, key_refused, || {
                let mut checks = on_box::checks(target, remote, notify);
                if cluster {
                    login_node_gpu(&mut checks);
                    checks.extend(slurm::checks(target, remote));
                }
                checks
            });
            checks.extend(link_checks);
            match on_box {
                Some(box_checks) => {
                    checks.extend(box_checks);
                    sent = send.then(|| send_from_box(remote, notify));
                }
                None => {
                    let why = if key_refused {
                        "fenton will not connect until laptop.identity is fixed"
                    } else {
                        "no command runs on the box (see link.auth and link.rtt)"
                    };
                    checks.extend(box_ids().map(|id| Check::skipped(id, why)));
                    sent = send.then(|| Err(why.to_string()));
                }
            }
        }
        _ => {
            let why = "ssh cannot be set up for this profile";
            checks.extend(LINK.iter().map(|id| Check::skipped(id, why)));
            checks.extend(box_ids().map(|id| Check::skipped(id, why)));
            sent = send.then(|| Err(why.to_string()));
        }
    }
    checks.extend(notify::checks(notify, sent.as_ref()));
    checks
}

/// A cluster's login node rarely has a GPU: its GPUs are the nodes' (`slurm.gpus`).
fn login_node_gpu(checks: &mut [Check]) {
    for check in checks.iter_mut() {
        if check.id == "box.gpu" && check.status == Status::Warning {
            *check = Check::ok(
                "box.gpu",
                "no GPU on the login node itself (the cluster's are under slurm.gpus)",
            );
        }
    }
}

/// The box sends a test message on every configured channel, as it would for a job.
fn send_from_box(remote: &Remote, notify: Option<&crate::config::Notify>) -> notify::Sent {
    let notify = notify.cloned().unwrap_or_default();
    let sent = crate::remote::runtime()
        .and_then(|rt| rt.block_on(super::notify::send_test(remote, &notify)));
    match sent {
        Ok(lines) => Ok(lines.unwrap_or_default()),
        Err(e) => Err(format!("{e:#}")),
    }
}

fn print_json(checks: &[Check]) -> Result<()> {
    let count = |status| checks.iter().filter(|c| c.status == status).count();
    let report = serde_json::json!({
        "ok": count(Status::Problem) == 0,
        "problems": count(Status::Problem),
        "warnings": count(Status::Warning),
        "checks": checks,
    });
    crate::outln!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn print_text(checks: &[Check]) {
    let paint = |status: Status| {
        let (word, code) = match status {
            Status::Ok => ("ok", "32"),
            Status::Warning => ("warning", "33"),
            Status::Problem => ("problem", "31"),
            Status::Skipped => ("skipped", "2"),
        };
        let padded = format!("{word:<7}");
        if ui::color() {
            format!("\x1b[{code}m{padded}\x1b[0m")
        } else {
            padded
        }
    };
    let width = checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    for check in checks {
        crate::outln!(
            "{}  {:<width$}  {}",
            paint(check.status),
            check.id,
            ui::clean(&check.message)
        );
        if let Some(fix) = &check.fix {
            crate::outln!("{:7}  {:<width$}  fix: {}", "", "", ui::clean(fix));
        }
    }
    let count = |status| checks.iter().filter(|c| c.status == status).count();
    let (problems, warnings) = (count(Status::Problem), count(Status::Warning));
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    crate::outln!(
        "\n{}, {}, {} ok",
        plural(problems, "problem"),
        plural(warnings, "warning"),
        count(Status::Ok)
    );
}
