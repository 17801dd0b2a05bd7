//! Checks on the box, all from one POSIX script (`src/remote/scripts/doctor.sh`) sent on stdin
//! to `sh -s`: what fenton needs there, and whether the box is safe to leave on the internet.

use std::collections::BTreeMap;

use super::{Check, Target};
use crate::config::Notify;
use crate::remote::{runtime, scripts, sh, Remote};

/// The script bounds each slow step (Jupyter, nvidia-smi) to 30 s; this bounds the whole.
const SCRIPT_LIMIT: std::time::Duration = std::time::Duration::from_secs(90);

/// Below these, training runs and checkpoints fail or soon will.
const DISK_PROBLEM_GIB: f64 = 1.0;
const DISK_WARNING_GIB: f64 = 5.0;

pub const IDS: [&str; 12] = [
    "box.tmux",
    "box.jupyter",
    "box.gpu",
    "box.fetch",
    "box.remote_dir",
    "box.disk",
    "box.sshd_password",
    "box.sshd_root",
    "box.jupyter_listen",
    "box.jupyter_auth",
    "box.jupyter_files",
    "box.monitor",
];

/// What the script said: each key with its values, in order.
pub(super) struct Facts(BTreeMap<String, Vec<String>>);

impl Facts {
    pub(super) fn parse(text: &str) -> Facts {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in text.lines() {
            if let Some((key, value)) = line.split_once('=') {
                map.entry(key.into()).or_default().push(value.into());
            }
        }
        Facts(map)
    }

    pub(super) fn get(&self, key: &str) -> &str {
        self.0
            .get(key)
            .and_then(|v| v.first())
            .map_or("", String::as_str)
    }

    pub(super) fn all(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    /// The last thing a command said, on one line.
    pub(super) fn said(&self, key: &str) -> String {
        let lines: Vec<&str> = self
            .all(key)
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect();
        match lines.len() {
            0 => "nothing".into(),
            n => lines[n.saturating_sub(2)..].join(" / "),
        }
    }
}

pub fn checks(target: &Target, remote: &Remote, notify: Option<&Notify>) -> Vec<Check> {
    let p = &target.profile;
    // The arguments travel inside the script, not on the box's command line, where `ps`
    // would show `setup` (which may export a secret).
    let script = format!(
        "set -- {} {} {}\n{}",
        sh::path(&p.remote_dir),
        sh::quote(&p.jupyter.command),
        sh::quote(&p.jupyter.setup),
        scripts::DOCTOR
    );
    let out = runtime().and_then(|rt| {
        rt.block_on(async {
            tokio::time::timeout(SCRIPT_LIMIT, scripts::output(remote, "sh -s", &script))
                .await
                .map_err(|_| anyhow::anyhow!("no answer within {} s", SCRIPT_LIMIT.as_secs()))?
        })
    });
    let facts = match out {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("\ndone=1") => {
            Facts::parse(&String::from_utf8_lossy(&out.stdout))
        }
        other => {
            let why = match other {
                Ok(out) => {
                    let err = String::from_utf8_lossy(&out.stderr);
                    let last = err.lines().last().unwrap_or("").trim().to_string();
                    format!("exit {}: {last}", out.code)
                }
                Err(e) => format!("{e:#}"),
            };
            let mut checks = vec![Check::problem(
                IDS[0],
                format!("the box's check script failed ({why})"),
                "run `fenton exec -- sh -c 'command -v sh awk sed df'`: the box needs a POSIX sh and coreutils",
            )];
            checks.extend(
                IDS[1..]
                    .iter()
                    .map(|id| Check::skipped(id, "the script failed")),
            );
            return checks;
        }
    };
    let notifying =
        notify.is_some_and(|n| n.telegram.is_some() || n.ntfy.is_some() || n.webhook.is_some());
    vec![
        tmux(&facts),
        jupyter(target, &facts),
        gpu(&facts),
        fetch(&facts, notifying),
        remote_dir(target, &facts),
        disk(&facts),
        sshd_password(&facts),
        sshd_root(&facts),
        jupyter_listen(&facts),
        jupyter_auth(&facts),
        jupyter_files(&facts),
        monitor(&facts),
    ]
}

/// `fenton monitor`'s recorder: running, never started, or gone without `monitor stop`.
fn monitor(facts: &Facts) -> Check {
    let since = facts.get("monitor_since").parse::<i64>().ok();
    let now = facts.get("monitor_now").parse::<i64>().ok();
    let ago = since
        .zip(now)
        .map(|(s, n)| format!(" since {} ago", crate::ui::duration((n - s).max(0) as u64)))
        .unwrap_or_default();
    match facts.get("monitor") {
        "running" => Check::ok("box.monitor", format!("the recorder runs{ago}")),
        "gone" => Check::warning(
            "box.monitor",
            "the recorder ended without `fenton monitor stop` (the box rebooted, or it was killed)",
            Some("fenton monitor start (or set monitor.auto = true)".into()),
        ),
        _ => Check::ok(
            "box.monitor",
            "no recorder runs (`fenton monitor start` keeps a history for `fenton status --history`)",
        ),
    }
}

fn tmux(facts: &Facts) -> Check {
    match facts.get("tmux") {
        "" => Check::problem(
            "box.tmux",
            "tmux is not installed on the box (or not on its PATH): `fenton tmux`, `fenton run` and Jupyter need it",
            "on the box: sudo apt install tmux",
        ),
        version => Check::ok("box.tmux", version),
    }
}

fn jupyter(target: &Target, facts: &Facts) -> Check {
    let command = &target.profile.jupyter.command;
    let out = facts.get("jupyter_out");
    let fix = format!(
        "install it on the box (pip install jupyterlab), or set `command` (and `setup`, e.g. \"conda activate ml\") {}",
        target.section("jupyter")
    );
    match facts.get("jupyter_code") {
        "0" => Check::ok("box.jupyter", format!("`{command} --version`: {out}")),
        "127" => Check::warning(
            "box.jupyter",
            format!("`{command}` is not found on the box: `fenton jupyter` needs it ({out})"),
            Some(fix),
        ),
        code => Check::warning(
            "box.jupyter",
            format!("`{command} --version` failed on the box (exit {code}): {out}"),
            Some(fix),
        ),
    }
}

fn gpu(facts: &Facts) -> Check {
    let out = facts.get("gpu_out");
    match facts.get("gpu_code") {
        "0" => Check::ok(
            "box.gpu",
            format!("{} GPU(s): {out}", facts.get("gpu_count")),
        ),
        "127" => Check::warning(
            "box.gpu",
            "no NVIDIA GPU (nvidia-smi is not installed)",
            None,
        ),
        code => Check::problem(
            "box.gpu",
            format!("nvidia-smi fails (exit {code}): {out}"),
            "check the NVIDIA driver on the box; after a driver update, `sudo reboot` fixes \"Driver/library version mismatch\"",
        ),
    }
}

fn fetch(facts: &Facts, notifying: bool) -> Check {
    match facts.get("fetch") {
        "" if notifying => Check::problem(
            "box.fetch",
            "neither curl nor wget is on the box: it cannot send your notifications",
            "on the box: sudo apt install curl",
        ),
        "" => Check::warning(
            "box.fetch",
            "neither curl nor wget is on the box: notifications would need one",
            Some("on the box: sudo apt install curl".into()),
        ),
        tool => Check::ok("box.fetch", format!("{tool} (sends notifications)")),
    }
}

fn remote_dir(target: &Target, facts: &Facts) -> Check {
    let dir = facts.get("remote_dir_path");
    let fix = || {
        format!(
            "on the box: sudo chown -R \"$USER\" {}; or set `remote_dir = \"…\"` {}",
            sh::quote(dir),
            target.section("")
        )
    };
    match facts.get("remote_dir") {
        "writable" => Check::ok("box.remote_dir", format!("{dir} is writable")),
        "creatable" => Check::ok(
            "box.remote_dir",
            format!("{dir} will be created on first use"),
        ),
        "not-creatable" => Check::problem(
            "box.remote_dir",
            format!(
                "{dir} cannot be created: {} is not writable",
                facts.get("remote_dir_blocker")
            ),
            fix(),
        ),
        _ => Check::problem("box.remote_dir", format!("{dir} is not writable"), fix()),
    }
}

fn disk(facts: &Facts) -> Check {
    let home = facts.get("home");
    let Ok(kb) = facts.get("home_free_kb").parse::<u64>() else {
        return Check::warning(
            "box.disk",
            format!("cannot tell the free space on {home} (df failed)"),
            None,
        );
    };
    let gib = kb as f64 / (1024.0 * 1024.0);
    let message = format!("{gib:.1} GiB free on {home}");
    let fix = "free space on the box: `du -xh ~ | sort -h | tail` shows where it went (old checkpoints, caches: `pip cache purge`, `conda clean -a`)";
    if gib < DISK_PROBLEM_GIB {
        Check::problem(
            "box.disk",
            format!("{message}: training runs and checkpoints will fail"),
            fix,
        )
    } else if gib < DISK_WARNING_GIB {
        Check::warning(
            "box.disk",
            format!("{message}: running low"),
            Some(fix.into()),
        )
    } else {
        Check::ok("box.disk", message)
    }
}

/// Where the sshd settings came from, for messages and fixes.
fn sshd_source(facts: &Facts) -> (String, String) {
    let file = facts.get("sshd_config").to_string();
    let source = if facts.get("sshd_source") == "sshd -T" {
        format!("`sshd -T -f {file}`")
    } else {
        format!("{file} (sshd -T not allowed)")
    };
    (file, source)
}

/// Whether sshd lets anyone try a password: its own, or keyboard-interactive through PAM.
fn accepts_passwords(facts: &Facts) -> bool {
    // Absent settings are sshd's defaults: passwords and keyboard-interactive on, PAM off.
    let on = |key: &str| matches!(facts.get(key), "yes" | "");
    on("sshd_passwordauthentication")
        || (on("sshd_kbdinteractiveauthentication") && facts.get("sshd_usepam") == "yes")
}

fn reload(file: &str) -> String {
    format!("at the top of {file} (sshd keeps the first value it reads), then on the box: sudo systemctl reload ssh")
}

/// sshd's settings could be neither asked (`sshd -T` needs root) nor read (a 0600 file):
/// say so, rather than judge sshd by its defaults.
fn sshd_unknown(id: &'static str, facts: &Facts) -> Option<Check> {
    (facts.get("sshd_source") == "unreadable").then(|| {
        Check::warning(
            id,
            format!(
                "not checked: {} cannot be read and `sshd -T` needs root",
                facts.get("sshd_config")
            ),
            Some(
                "on the box: sudo sshd -T | grep -Ei 'passwordauth|kbdinteractive|permitroot'"
                    .into(),
            ),
        )
    })
}

fn sshd_password(facts: &Facts) -> Check {
    if let Some(unknown) = sshd_unknown("box.sshd_password", facts) {
        return unknown;
    }
    let (file, source) = sshd_source(facts);
    if accepts_passwords(facts) {
        Check::warning(
            "box.sshd_password",
            format!("sshd accepts passwords (per {source}): anyone on the network can try to guess them"),
            Some(format!(
                "write `PasswordAuthentication no` and `KbdInteractiveAuthentication no` {}",
                reload(&file)
            )),
        )
    } else {
        Check::ok(
            "box.sshd_password",
            format!("sshd accepts keys only (per {source})"),
        )
    }
}

fn sshd_root(facts: &Facts) -> Check {
    if let Some(unknown) = sshd_unknown("box.sshd_root", facts) {
        return unknown;
    }
    let (file, source) = sshd_source(facts);
    let root = facts.get("sshd_permitrootlogin");
    if root == "yes" && accepts_passwords(facts) {
        Check::problem(
            "box.sshd_root",
            format!("root can log in with a password (PermitRootLogin yes, per {source})"),
            format!(
                "write `PermitRootLogin prohibit-password` {}",
                reload(&file)
            ),
        )
    } else {
        let root = if root.is_empty() {
            "prohibit-password"
        } else {
            root
        };
        Check::ok(
            "box.sshd_root",
            format!("no root login by password (PermitRootLogin {root})"),
        )
    }
}

fn jupyter_listen(facts: &Facts) -> Check {
    let mut open = Vec::new();
    let mut local = 0;
    for line in facts.all("jupyter_listen") {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [pid, kind, addr, port] = words[..] {
            if kind == "open" {
                open.push((pid.to_string(), addr.to_string(), port.to_string()));
            } else {
                local += 1;
            }
        }
    }
    if let Some((pid, addr, port)) = open.first() {
        let others = if open.len() > 1 {
            format!(" (and {} more)", open.len() - 1)
        } else {
            String::new()
        };
        return Check::problem(
            "box.jupyter_listen",
            format!("a Jupyter server (pid {pid}) listens on {addr} port {port}{others}: anyone who reaches the box can reach it"),
            format!("on the box: kill {pid}; start it with --ip=127.0.0.1 (`fenton jupyter start` does) and reach it through the ssh forward"),
        );
    }
    Check::ok(
        "box.jupyter_listen",
        if local == 0 {
            "no Jupyter server listens".to_string()
        } else {
            format!("{local} Jupyter socket(s), loopback only")
        },
    )
}

fn jupyter_auth(facts: &Facts) -> Check {
    match facts.all("jupyter_open").first() {
        Some(line) => {
            let (pid, why) = line.split_once(' ').unwrap_or((line, ""));
            Check::problem(
                "box.jupyter_auth",
                format!("a Jupyter server (pid {pid}) runs without a token or password: {why}"),
                format!("on the box: kill {pid}; start it with a token (`fenton jupyter start` makes one) or set a password: jupyter server password"),
            )
        }
        None => Check::ok(
            "box.jupyter_auth",
            "no Jupyter server runs without a token or password",
        ),
    }
}

fn jupyter_files(facts: &Facts) -> Check {
    let files = facts.all("exposed");
    if files.is_empty() {
        return Check::ok(
            "box.jupyter_files",
            "Jupyter tokens and configs are private",
        );
    }
    let quoted: Vec<String> = files.iter().map(|f| sh::quote(f)).collect();
    Check::problem(
        "box.jupyter_files",
        format!(
            "others on the box can read {}: they hold Jupyter tokens or passwords",
            files.join(", ")
        ),
        format!("on the box: chmod go-rwx {}", quoted.join(" ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_reports_every_key_here() {
        let dir = std::env::temp_dir().join(format!("fenton-doctor-{}", std::process::id()));
        let out = std::process::Command::new("sh")
            .args(["-c", scripts::DOCTOR, "sh"])
            .arg(&dir)
            .args(["definitely-not-jupyter-42", ""])
            .output()
            .unwrap();
        let facts = Facts::parse(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(facts.get("done"), "1", "{out:?}");
        assert_eq!(facts.get("jupyter_code"), "127");
        assert_eq!(facts.get("remote_dir"), "creatable");
        assert!(facts.get("home_free_kb").parse::<u64>().is_ok(), "{out:?}");
        assert!(!facts.get("sshd_config").is_empty());
        assert!(!dir.exists(), "doctor changes nothing on the box");
    }

    #[test]
    fn unreadable_sshd_settings_are_not_judged() {
        let facts = Facts::parse("sshd_source=unreadable\nsshd_config=/etc/ssh/sshd_config\n");
        for check in [sshd_password(&facts), sshd_root(&facts)] {
            assert_eq!(check.status, super::super::Status::Warning);
            assert!(
                check.message.starts_with("not checked"),
                "{}",
                check.message
            );
        }
    }

    #[test]
    fn passwords_follow_sshd_defaults() {
        let facts = |text: &str| Facts::parse(text);
        assert!(accepts_passwords(&facts("sshd_passwordauthentication=\n")));
        assert!(!accepts_passwords(&facts(
            "sshd_passwordauthentication=no\nsshd_kbdinteractiveauthentication=yes\nsshd_usepam=no\n"
        )));
        assert!(accepts_passwords(&facts(
            "sshd_passwordauthentication=no\nsshd_kbdinteractiveauthentication=yes\nsshd_usepam=yes\n"
        )));
    }
}
