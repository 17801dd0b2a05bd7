//! `fenton jobs [--last N | --all] [--json]`: the profile's latest jobs and how each one stands, from whichever
//! backend runs them (`crate::jobs`). `--prune` clears old ones from the box.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::{Context, Result};

use super::Ctx;
use crate::cli::JobsArgs;
use crate::exit::Exit;
pub use crate::jobs::boxed::{failure, line, output, output_within};
pub use crate::jobs::{check_name, default_name, sent};
use crate::jobs::{Backend, Job, Listing};

/// How many jobs the table shows without --last or --all.
const LAST: usize = 20;
use crate::remote::{runtime, scripts, Remote};
use crate::ui;

/// Tabs as a terminal shows them: spaces to the next multiple of 8 columns.
fn expand_tabs(line: &str) -> String {
    let mut out = String::new();
    let mut column = 0;
    for c in line.chars() {
        if c == '\t' {
            let next = (column / 8 + 1) * 8;
            out.extend(std::iter::repeat_n(' ', next - column));
            column = next;
        } else {
            out.push(c);
            column += 1;
        }
    }
    out
}

pub fn run(ctx: &Ctx, args: JobsArgs) -> Result<Exit> {
    let remote = ctx.remote()?;
    if args.prune {
        return prune(&remote, &args.older_than);
    }
    // The table shows the latest jobs (a long history scrolls the new ones away, and costs a
    // listing that grows with it); JSON, read by programs, every one unless asked.
    let last = match (args.last, args.all || args.json) {
        (Some(n), _) => Some(n as usize),
        (None, true) => None,
        (None, false) => Some(LAST),
    };
    let Listing { jobs, older } = runtime()?.block_on(Backend::of(&remote).list(&remote, last))?;
    // Written, not printed: a reader that went away (`| head`) or a full disk is an error
    // that `exit::report` says (or, for the reader, keeps quiet about), not a panic.
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&jobs)?)
            .context("cannot write the list of jobs")?;
        return Ok(Exit::Success);
    }
    if jobs.is_empty() {
        ui::info(format_args!(
            "no jobs on {} yet: start one with `fenton run -- CMD...`",
            remote.profile.host
        ));
        return Ok(Exit::Success);
    }
    out.write_all(table(&jobs).as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write the list of jobs")?;
    if older > 0 {
        ui::info(format_args!(
            "{older} older job(s) not shown: `fenton jobs --all` lists them, `fenton jobs --prune` removes those that ended over 30 days ago"
        ));
    }
    for job in &jobs {
        for what in &job.damaged {
            ui::warn(format_args!(
                "job {} ({}) is damaged: {what}",
                job.id, job.name
            ));
        }
        for failure in job.notify.failed() {
            ui::warn(format_args!(
                "job {} ({}): notification {failure}",
                job.id, job.name
            ));
        }
    }
    Ok(Exit::Success)
}

/// `--older-than`: a number of seconds, minutes, hours, days or weeks (`30d`).
fn age(text: &str) -> Result<u64> {
    let bad = || {
        anyhow::anyhow!(
            "--older-than {text:?} is not an age like 30d, 12h or 90m (s, m, h, d or w)"
        )
    };
    let unit = text.chars().last().ok_or_else(bad)?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        'w' => 7 * 86400,
        _ => return Err(bad()),
    };
    let n: u64 = text[..text.len() - 1].parse().map_err(|_| bad())?;
    n.checked_mul(scale).ok_or_else(bad)
}

fn prune(remote: &Remote, older_than: &str) -> Result<Exit> {
    let seconds = age(older_than)?;
    let out = runtime()?.block_on(output(remote, scripts::JOB_PRUNE, &[seconds.to_string()]))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let pruned = text.lines().filter(|l| l.starts_with("pruned ")).count();
    let kept = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("kept "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .context("the box's prune script did not finish")?;
    ui::info(format_args!(
        "removed {pruned} finished job(s) that ended over {older_than} ago; {kept} kept"
    ));
    Ok(Exit::Success)
}

fn table(jobs: &[Job]) -> String {
    let notify = jobs.iter().any(|j| j.notify.requested);
    let mut rows: Vec<Vec<String>> = vec![["ID", "NAME", "STATE", "STARTED", "DURATION"]
        .iter()
        .map(|s| s.to_string())
        .collect()];
    if notify {
        rows[0].push("NOTIFY".into());
    }
    // A Slurm profile's jobs: the scheduler's id, and the node a job runs (or ran) on.
    let slurm = jobs.iter().any(|j| j.slurm.is_some());
    if slurm {
        rows[0].insert(1, "SLURM".into());
        rows[0].insert(4, "NODE".into());
    }
    rows[0].push("LAST LINE".into());
    for job in jobs {
        let mut row = vec![
            ui::clean(&job.id).into_owned(),
            ui::clean(&job.name).into_owned(),
            job.state_text(),
            format!("{} ago", ui::duration(job.age_s)),
            ui::duration(job.duration_s),
        ];
        if slurm {
            let info = job.slurm.as_ref();
            let id = info.map_or("-", |s| s.job_id.as_str());
            let node = info.and_then(|s| s.node.as_deref()).unwrap_or("-");
            row.insert(1, ui::clean(id).into_owned());
            row.insert(4, ui::clean(node).into_owned());
        }
        if notify {
            row.push(
                ui::clean(&job.notify.summary(
                    job.exit.is_some() || job.ended.is_some(),
                    job.started + job.age_s,
                ))
                .into_owned(),
            );
        }
        row.push(
            ui::clean(&expand_tabs(&job.last_line))
                .chars()
                .take(60)
                .collect(),
        );
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == columns {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::boxed::parse;

    #[test]
    fn ages_read_as_people_write_them() {
        assert_eq!(age("30d").unwrap(), 30 * 86400);
        assert_eq!(age("12h").unwrap(), 12 * 3600);
        assert_eq!(age("90m").unwrap(), 5400);
        assert_eq!(age("2w").unwrap(), 14 * 86400);
        assert_eq!(age("0s").unwrap(), 0);
        for bad in [
            "",
            "30",
            "d",
            "-1d",
            "1.5d",
            "30 d",
            "99999999999999999999d",
        ] {
            assert!(age(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_table_keeps_a_log_lines_tabs_as_a_terminal_shows_them() {
        let text = "now 1000\njob 1\nname a\nstarted 900\nended 950\nexit 0\nlast epoch\t3\tloss 0.25\nend\n";
        let jobs = parse(text);
        assert_eq!(jobs[0].last_line, "epoch\t3\tloss 0.25");
        let table = table(&jobs);
        assert!(table.contains("epoch   3       loss 0.25"), "{table}");
    }
}
