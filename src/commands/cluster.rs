//! `fenton status` on a Slurm profile: the cluster as its login node sees it, in one round
//! trip (one script that runs sinfo twice and squeue once, so the scheduler is asked three
//! cheap questions, never polled).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::exit::Exit;
use crate::remote::{scripts, sh, Remote};
use crate::status::render::Style;
use crate::status::slurm::{self, Cluster};

/// sinfo and squeue get 20 s each on the login node; this bounds the whole round trip.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(70);

/// Prints the cluster once (or every `watch` seconds), for a person or as JSON.
pub async fn show(remote: &Remote, style: Style, json: bool, watch: Option<f64>) -> Result<Exit> {
    loop {
        let cluster = fetch(remote).await?;
        let mut out = std::io::stdout().lock();
        if json {
            let text = match watch {
                Some(_) => serde_json::to_string(&cluster)?,
                None => serde_json::to_string_pretty(&cluster)?,
            };
            writeln!(out, "{text}")?;
        } else {
            out.write_all(slurm::render(&cluster, style).as_bytes())?;
        }
        out.flush()?;
        drop(out);
        let Some(secs) = watch else {
            // Nothing from the scheduler at all is a failure; a part of it is still an answer.
            let failed = !cluster.errors.is_empty() && cluster.partitions.is_empty();
            return Ok(if failed { Exit::Failure } else { Exit::Success });
        };
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs_f64(secs.max(1.0))) => {}
            _ = tokio::signal::ctrl_c() => return Ok(Exit::Interrupted),
        }
        if !json {
            crate::outln!("");
        }
    }
}

/// The cluster, with what only this side knows (the profile, the link's round trip).
pub async fn fetch(remote: &Remote) -> Result<Cluster> {
    remote.connect().await?;
    let line = format!(
        "sh -s -- {} {} {}",
        sh::quote(slurm::SINFO_NODES),
        sh::quote(slurm::SINFO_PARTITIONS),
        sh::quote(slurm::SQUEUE)
    );
    let start = Instant::now();
    let out = remote
        .within(
            ANSWER_TIMEOUT,
            "asking Slurm for the cluster's state",
            scripts::output(remote, &line, &scripts::slurm_status()),
        )
        .await?;
    let elapsed = start.elapsed();
    let mut cluster = slurm::parse(&String::from_utf8_lossy(&out.stdout));
    cluster.profile = remote.name.clone();
    cluster.answer_ms = Some((elapsed.as_secs_f64() * 10_000.0).round() / 10.0);
    Ok(cluster)
}

/// The profile's `[profile.x.slurm]` defaults as sbatch options, one word each, as `fenton
/// run` gives them when nothing else is asked (checked when the config was read).
pub fn profile_options(slurm: &crate::config::Slurm) -> Result<Vec<String>> {
    crate::jobs::slurm::options(slurm, &crate::jobs::slurm::Ask::default())
}
