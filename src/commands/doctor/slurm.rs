//! Checks of a Slurm cluster through its login node, for a profile with `scheduler = "slurm"`:
//! the scheduler's commands are there and answer, the partition exists, sbatch would take a
//! job with the profile's defaults (`sbatch --test-only`, which submits nothing) and the
//! partition has GPUs. One POSIX script (`scripts/slurm-doctor.sh`) answers them all.

use super::on_box::Facts;
use super::{Check, Target};
use crate::remote::{runtime, scripts, sh, Remote};
use crate::status::slurm::{self, Node};

/// sinfo, squeue and sbatch get 20 s each on the login node; this bounds the whole.
const SCRIPT_LIMIT: std::time::Duration = std::time::Duration::from_secs(90);

pub const IDS: [&str; 6] = [
    "slurm.commands",
    "slurm.controller",
    "slurm.partition",
    "slurm.submit",
    "slurm.gpus",
    "slurm.jupyter",
];

pub fn checks(target: &Target, remote: &Remote) -> Vec<Check> {
    let options = match crate::commands::cluster::profile_options(&target.profile.slurm) {
        Ok(options) => options,
        Err(e) => {
            let mut checks = vec![Check::problem(
                IDS[0],
                format!(
                    "the profile's [profile.{}.slurm] defaults are not sbatch options: {e:#}",
                    target.name
                ),
                format!("fix the value {}", target.section("slurm")),
            )];
            checks.extend(
                IDS[1..]
                    .iter()
                    .map(|id| Check::skipped(id, "the profile's Slurm defaults are wrong")),
            );
            return checks;
        }
    };
    let mut line = format!(
        "sh -s -- {} {}",
        sh::quote(slurm::SINFO_NODES),
        sh::path(&crate::commands::jupyter_slurm::state_dir(remote))
    );
    for option in &options {
        line.push(' ');
        line.push_str(&sh::quote(option));
    }
    let out = runtime().and_then(|rt| {
        rt.block_on(async {
            tokio::time::timeout(
                SCRIPT_LIMIT,
                scripts::output(remote, &line, &scripts::slurm_doctor()),
            )
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
                Ok(out) => format!(
                    "exit {}: {}",
                    out.code,
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim()
                ),
                Err(e) => format!("{e:#}"),
            };
            let mut checks = vec![Check::problem(
                IDS[0],
                format!("the Slurm check script failed on the login node ({why})"),
                "run `fenton exec -- sinfo`: the login node needs a POSIX sh and Slurm's commands",
            )];
            checks.extend(
                IDS[1..]
                    .iter()
                    .map(|id| Check::skipped(id, "the script failed")),
            );
            return checks;
        }
    };
    let mut checks = vec![commands(&facts)];
    if checks[0].status == super::Status::Problem {
        let why = "Slurm's commands are missing (see slurm.commands)";
        checks.extend(IDS[1..].iter().map(|id| Check::skipped(id, why)));
        return checks;
    }
    checks.push(controller(&facts));
    if checks[1].status == super::Status::Problem {
        let why = "the scheduler does not answer (see slurm.controller)";
        checks.extend(IDS[2..].iter().map(|id| Check::skipped(id, why)));
        return checks;
    }
    let partitions: Vec<(String, bool, String)> = facts
        .all("partition")
        .iter()
        .filter_map(|l| {
            let (name, availability) = l.split_once('|')?;
            let name = name.trim();
            Some((
                name.trim_end_matches('*').to_string(),
                name.ends_with('*'),
                availability.trim().to_string(),
            ))
        })
        .collect();
    let chosen = target
        .profile
        .slurm
        .partition
        .clone()
        // sbatch's own default from the login shell, as a job gets it.
        .or_else(|| Some(facts.get("env_partition").trim().to_string()).filter(|p| !p.is_empty()))
        .or_else(|| partitions.iter().find(|p| p.1).map(|p| p.0.clone()));
    checks.push(partition(target, &partitions, chosen.as_deref()));
    checks.push(submit(target, &facts, &options, &partitions));
    let nodes: Vec<(String, Node)> = facts
        .all("node")
        .iter()
        .filter_map(|l| slurm::parse_node(l))
        .collect();
    let known = chosen.as_deref().filter(|c| {
        c.split(',')
            .all(|one| partitions.iter().any(|p| p.0 == one))
    });
    checks.push(gpus(target, &nodes, known));
    checks.push(jupyter(&facts));
    checks
}

fn commands(facts: &Facts) -> Check {
    let missing: Vec<&str> = ["sinfo", "squeue", "sbatch"]
        .into_iter()
        .filter(|p| facts.get(&format!("path_{p}")).is_empty())
        .collect();
    if missing.is_empty() {
        return Check::ok(
            "slurm.commands",
            format!(
                "sinfo, squeue and sbatch are at {}",
                facts
                    .get("path_sbatch")
                    .rsplit_once('/')
                    .map_or("", |(d, _)| d)
            ),
        );
    }
    Check::problem(
        "slurm.commands",
        format!(
            "{} not found on the login node's PATH (for a command sent over ssh, not a login shell)",
            missing.join(", ")
        ),
        "make them found without an interactive shell: load the cluster's Slurm module in ~/.bashrc before its \"not interactive: return\" line (e.g. `module load slurm`), or ask the cluster's admins where Slurm is",
    )
}

fn controller(facts: &Facts) -> Check {
    let (sinfo, squeue) = (facts.get("partition_code"), facts.get("squeue_code"));
    let fix = "the scheduler (slurmctld) does not answer the login node: wait and retry, or see `fenton exec -- scontrol ping` and ask the cluster's admins";
    if sinfo != "0" {
        return Check::problem(
            "slurm.controller",
            format!("sinfo failed (exit {sinfo}): {}", facts.said("partition")),
            fix,
        );
    }
    if squeue != "0" {
        return Check::problem(
            "slurm.controller",
            format!("squeue failed (exit {squeue}): {}", facts.said("squeue")),
            fix,
        );
    }
    Check::ok(
        "slurm.controller",
        format!(
            "sinfo and squeue answer: {} partition(s), {} job(s) of yours in the queue",
            facts.all("partition").len(),
            facts.all("squeue").len()
        ),
    )
}

/// The name to write in a fix, quoted as TOML wants it.
fn toml_str(text: &str) -> String {
    format!("{text:?}")
}

fn partition(
    target: &Target,
    partitions: &[(String, bool, String)],
    chosen: Option<&str>,
) -> Check {
    let names: Vec<&str> = partitions.iter().map(|p| p.0.as_str()).collect();
    let list = if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    };
    let Some(chosen) = chosen else {
        return Check::problem(
            "slurm.partition",
            format!("the profile names no partition and the cluster has no default one (partitions: {list})"),
            format!(
                "write `partition = {}` {}",
                toml_str(names.first().copied().unwrap_or("PARTITION")),
                target.section("slurm")
            ),
        );
    };
    let configured = target.profile.slurm.partition.is_some();
    let whose = if configured {
        "the profile's"
    } else {
        "the cluster's default"
    };
    // A job may name several partitions (`gpu,long`): each must exist.
    for one in chosen.split(',') {
        match partitions.iter().find(|p| p.0 == one) {
            None => {
                let closest = names.first().copied().unwrap_or("PARTITION");
                return Check::problem(
                    "slurm.partition",
                    format!("{whose} partition {one:?} does not exist on this cluster (partitions: {list})"),
                    format!("write `partition = {}` {}", toml_str(closest), target.section("slurm")),
                );
            }
            Some((_, _, availability)) if availability != "up" => {
                return Check::warning(
                    "slurm.partition",
                    format!("{whose} partition {one:?} is {availability}: it takes no new jobs now"),
                    Some(format!(
                        "wait for it, or write another partition (from {list}) as `partition = \"…\"` {}",
                        target.section("slurm")
                    )),
                );
            }
            Some(_) => {}
        }
    }
    Check::ok(
        "slurm.partition",
        format!("{whose} partition {chosen:?} is up"),
    )
}

fn submit(
    target: &Target,
    facts: &Facts,
    options: &[String],
    partitions: &[(String, bool, String)],
) -> Check {
    let asked = if options.is_empty() {
        "no options (the cluster's defaults)".to_string()
    } else {
        options.join(" ")
    };
    let said = facts.said("test");
    if facts.get("test_code") == "0" {
        let when = facts
            .all("test")
            .iter()
            .find_map(|l| {
                l.split_once(" to start at ")
                    .map(|(_, w)| w.trim().to_string())
            })
            .map(|w| format!(": it would start at {w}"))
            .unwrap_or_default();
        return Check::ok(
            "slurm.submit",
            format!("sbatch --test-only takes a job with {asked}{when}"),
        );
    }
    let names: Vec<&str> = partitions.iter().map(|p| p.0.as_str()).collect();
    let typed = target
        .profile
        .slurm
        .gpus
        .as_ref()
        .is_some_and(|g| g.as_text().contains(':'));
    let fix = submit_fix(&said, &target.section("slurm"), &names, typed);
    Check::problem(
        "slurm.submit",
        format!(
            "sbatch --test-only refuses a job with {asked} (exit {}): {said}",
            facts.get("test_code")
        ),
        fix,
    )
}

/// fenton's notebook job, when one runs: a server open to the cluster's network is said.
fn jupyter(facts: &Facts) -> Check {
    let (job, state) = (facts.get("jupyter_job"), facts.get("jupyter_state"));
    if job.is_empty() || state != "RUNNING" {
        return Check::ok("slurm.jupyter", "no notebook job of fenton's runs");
    }
    let node = facts.get("jupyter_node");
    match facts.get("jupyter_bind") {
        "loopback" => Check::ok(
            "slurm.jupyter",
            format!("Jupyter (job {job}) listens on {node}'s loopback only, reached by an ssh hop from the login node"),
        ),
        addr => Check::warning(
            "slurm.jupyter",
            format!("Jupyter (job {job}) listens on {node}'s address {addr}: anyone on the cluster's network can reach it (its token still guards it), because the login node could not ssh to {node}"),
            Some("let the login node reach the node by ssh (a key of yours, or set jupyter.node_ssh_options), then `fenton jupyter stop` and `fenton jupyter start`".into()),
        ),
    }
}

/// What to change for what sbatch said when it refused the test job.
fn submit_fix(said: &str, section: &str, partitions: &[&str], typed: bool) -> String {
    let lower = said.to_ascii_lowercase();
    if lower.contains("account") {
        format!("write an account you belong to as `account = \"…\"` {section} (`fenton exec -- sacctmgr -n show assoc user=$USER format=account` lists them)")
    } else if lower.contains("partition") {
        format!(
            "write one of the partitions ({}) as `partition = \"…\"` {section}",
            partitions.join(", ")
        )
    } else if lower.contains("qos") {
        format!("write a QOS your account may use as `qos = \"…\"` {section}, or remove `qos`")
    } else if lower.contains("gres")
        || lower.contains("gpu")
        || (typed && lower.contains("node configuration"))
    {
        format!("ask for a GPU type the partition has (see slurm.gpus) as `gpus = \"TYPE:N\"` {section}, or a plain count")
    } else if lower.contains("time limit") || lower.contains("--time") {
        format!("write a shorter `time` {section}, within the partition's limit (`fenton status` shows it)")
    } else if lower.contains("node configuration is not available") {
        format!("ask for no more than one node has: fewer `gpus`, `cpus` or less `mem` {section} (`fenton status` lists the nodes)")
    } else {
        format!("fix what sbatch names {section}, or in `extra`")
    }
}

fn gpus(target: &Target, nodes: &[(String, Node)], chosen: Option<&str>) -> Check {
    let Some(chosen) = chosen else {
        return Check::skipped(
            "slurm.gpus",
            "no partition to look in (see slurm.partition)",
        );
    };
    let mut seen: Vec<&Node> = Vec::new();
    for (partition, node) in nodes {
        if chosen.split(',').any(|c| c == partition) && !seen.iter().any(|n| n.name == node.name) {
            seen.push(node);
        }
    }
    let total: u32 = seen.iter().map(|n| n.gpus_total).sum();
    let up: u32 = seen.iter().filter(|n| n.up).map(|n| n.gpus_total).sum();
    let mut types: Vec<&str> = seen
        .iter()
        .flat_map(|n| n.gpu_types.iter().map(String::as_str))
        .collect();
    types.sort_unstable();
    types.dedup();
    let wanted = target.profile.slurm.gpus.as_ref().map(|g| g.as_text());
    let typed = wanted
        .as_deref()
        .and_then(|w| w.rsplit_once(':').map(|(t, _)| t.to_string()));
    let kinds = if types.is_empty() {
        String::new()
    } else {
        format!(" ({})", types.join(", "))
    };
    if total == 0 {
        let message = format!(
            "partition {chosen:?} has no GPUs that Slurm knows of (no gpu GRES on its {} node(s))",
            seen.len()
        );
        return match wanted {
            Some(_) => Check::problem(
                "slurm.gpus",
                message,
                format!("write a partition with GPUs as `partition = \"…\"` {} (`fenton status` shows them)", target.section("slurm")),
            ),
            None => Check::warning("slurm.gpus", message, None),
        };
    }
    if let Some(kind) = typed.filter(|k| !types.iter().any(|t| t == k)) {
        let listed = if types.is_empty() {
            "none (the site does not type them)".to_string()
        } else {
            types.join(", ")
        };
        return Check::problem(
            "slurm.gpus",
            format!("partition {chosen:?} has no GPUs of type {kind:?} (types: {listed})"),
            format!(
                "write `gpus = N`, or a type it has as `gpus = \"TYPE:N\"`, {}",
                target.section("slurm")
            ),
        );
    }
    let message = format!(
        "partition {chosen:?} has {total} GPU(s){kinds} on {} node(s), {up} on nodes that are up",
        seen.len()
    );
    if up == 0 {
        return Check::warning(
            "slurm.gpus",
            format!("{message}: none can take a job now"),
            None,
        );
    }
    Check::ok("slurm.gpus", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sbatch's refusals as sites print them, each with the key to change.
    #[test]
    fn each_refusal_names_its_fix() {
        let section = "under [profile.c.slurm] in c.toml";
        for (said, typed, wanted) in [
            ("sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified", false, "`account = "),
            ("sbatch: error: invalid partition specified: nope / allocation failure: Invalid partition name specified", false, "(debug, big) as `partition = "),
            ("sbatch: error: Batch job submission failed: Invalid qos specification", false, "`qos = "),
            ("sbatch: error: Batch job submission failed: Invalid generic resource (gres) specification", false, "`gpus = \"TYPE:N\"`"),
            ("allocation failure: Requested node configuration is not available", true, "`gpus = \"TYPE:N\"`"),
            ("allocation failure: Requested node configuration is not available", false, "fewer `gpus`, `cpus` or less `mem`"),
            ("sbatch: error: Batch job submission failed: Requested time limit is invalid (missing or exceeds some limit)", false, "shorter `time`"),
            ("sbatch: error: something new", false, "fix what sbatch names"),
        ] {
            let fix = submit_fix(said, section, &["debug", "big"], typed);
            assert!(fix.contains(wanted) && fix.contains(section), "{said}: {fix}");
        }
    }
}
