//! What a Slurm job asks for (GPUs, time, memory, where it is charged), from the profile's
//! `[profile.x.slurm]` table and `fenton run`'s options, checked before anything reaches the
//! cluster. Each check is pure and answers with the value as sbatch takes it, or a sentence
//! that says what is wrong and how to write it.

use serde::{Deserialize, Serialize};

/// `gpus` as a config writes it: `2` or `"a100:2"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum GpusValue {
    Count(i64),
    Text(String),
}

impl GpusValue {
    pub fn as_text(&self) -> String {
        match self {
            GpusValue::Count(n) => n.to_string(),
            GpusValue::Text(text) => text.clone(),
        }
    }
}

/// `N` or `TYPE:N` (the type as `sinfo -o %G` lists it), for `sbatch --gpus`.
pub fn gpus(text: &str) -> Result<String, String> {
    let (kind, count) = match text.rsplit_once(':') {
        Some((kind, count)) => (Some(kind), count),
        None => (None, text),
    };
    let bad = || format!("{text:?} is not a GPU request: give a count (2) or TYPE:COUNT (a100:2)");
    match count.parse::<u32>() {
        Ok(n) if n > 0 && count.bytes().all(|b| b.is_ascii_digit()) => {}
        _ => return Err(bad()),
    }
    if let Some(kind) = kind {
        if kind.is_empty() || kind.starts_with('-') || !kind.chars().all(name_char) {
            return Err(bad());
        }
    }
    Ok(text.to_string())
}

/// A time limit: minutes as sbatch counts them (`90`), a duration (`30m`, `4h`, `2d`,
/// seconds rounded up to a minute), or Slurm's own `[D-]HH:MM[:SS]`. Given to sbatch as
/// `D-HH:MM:SS` or Slurm's form as written. "unlimited" is refused: a site's scheduler
/// rarely starts a job that has no end.
pub fn time(text: &str) -> Result<String, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "{text:?} is not a time limit: give minutes (90), a duration (30m, 4h, 2d) \
             or Slurm's D-HH:MM:SS"
        )
    };
    if t.eq_ignore_ascii_case("unlimited") || t.eq_ignore_ascii_case("infinite") {
        return Err(format!(
            "{text:?}: an unlimited job is rarely scheduled; give a limit such as 4h or 2d"
        ));
    }
    if t.contains(':') || t.contains('-') {
        let (days, clock) = match t.split_once('-') {
            Some((days, clock)) => (Some(days), clock),
            None => (None, t),
        };
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit());
        let parts: Vec<&str> = clock.split(':').collect();
        if days.is_some_and(|d| !digits(d)) || parts.len() > 3 || !parts.iter().all(|p| digits(p)) {
            return Err(bad());
        }
        if parts
            .iter()
            .chain(days.iter())
            .all(|p| p.bytes().all(|b| b == b'0'))
        {
            return Err(bad());
        }
        return Ok(t.to_string());
    }
    let (number, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => t.split_at(at),
        None => (t, "m"),
    };
    let scale: u64 = match unit {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(bad()),
    };
    let seconds = match number.parse::<u64>() {
        Ok(n) if n > 0 && n <= 3650 * 86400 / scale => n * scale,
        _ => return Err(bad()),
    };
    let minutes = seconds.div_ceil(60);
    let (days, hours, mins) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    Ok(format!("{days}-{hours:02}:{mins:02}:00"))
}

/// Memory per node as sbatch's `--mem` takes it: a number with an optional K, M, G or T
/// (megabytes without one).
pub fn mem(text: &str) -> Result<String, String> {
    let t = text.trim();
    let number = t.trim_end_matches(|c: char| "kKmMgGtT".contains(c));
    let ok = !number.is_empty()
        && t.len() - number.len() <= 1
        && number.bytes().all(|b| b.is_ascii_digit())
        && number.bytes().any(|b| b != b'0');
    if ok {
        Ok(t.to_ascii_uppercase())
    } else {
        Err(format!(
            "{text:?} is not an amount of memory: give a number and K, M, G or T, e.g. 32G"
        ))
    }
}

/// CPUs per task.
pub fn cpus(n: i64) -> Result<String, String> {
    if (1..=100_000).contains(&n) {
        Ok(n.to_string())
    } else {
        Err(format!("{n} is not a CPU count: give 1 or more"))
    }
}

/// A partition, account or QOS name (a partition may be a comma-separated list).
pub fn name(what: &str, text: &str) -> Result<String, String> {
    if text.is_empty() || text.starts_with('-') || !text.chars().all(|c| name_char(c) || c == ',') {
        return Err(format!(
            "{text:?} is not {what} name: letters, digits, '_', '.', '-' (not first)"
        ));
    }
    Ok(text.to_string())
}

/// An array spec for `sbatch --array`: `0-9`, `1,3,5`, `0-15:4`, `0-99%10`.
pub fn array(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b",-:%".contains(&b))
        && text.bytes().next().is_some_and(|b| b.is_ascii_digit());
    if ok {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{text:?} is not an array: give indexes such as 0-9, 1,3,5, 0-15:4 or 0-99%10"
        ))
    }
}

/// The options fenton sets itself (or that would take the job out of its hands: `--wait`
/// holds `fenton run`, `--test-only` submits nothing), which an `extra` entry may not change.
/// sbatch takes any unambiguous prefix of a long option (`--out=/x` is `--output=/x`).
const OWN_OPTIONS: [&str; 10] = [
    "--output",
    "--error",
    "--wrap",
    "--parsable",
    "--chdir",
    "--job-name",
    "--array",
    "--open-mode",
    "--wait",
    "--test-only",
];

/// Their short forms (`-o`, `-e`, `-D`, `-J`, `-a`, `-W`), each with the long one it stands for.
const OWN_SHORT: [(char, &str); 6] = [
    ('o', "--output"),
    ('e', "--error"),
    ('D', "--chdir"),
    ('J', "--job-name"),
    ('a', "--array"),
    ('W', "--wait"),
];

/// sbatch's short options that take no argument: in `-vJx` the `v` is one and `J` the next
/// option, while in `-Cgpu_o` everything after the `C` is its argument.
const SHORT_WITHOUT_ARGUMENT: &str = "hHOsQvV";

/// The option of fenton's own that this entry would set, if any.
fn own_option(text: &str) -> Option<&'static str> {
    if let Some(long) = text.strip_prefix("--") {
        let name = long.split('=').next().unwrap_or(long);
        if name.is_empty() {
            return None;
        }
        return OWN_OPTIONS
            .iter()
            .find(|own| own[2..].starts_with(name))
            .copied();
    }
    for c in text[1..].chars() {
        if let Some((_, own)) = OWN_SHORT.iter().find(|(s, _)| *s == c) {
            return Some(own);
        }
        if !SHORT_WITHOUT_ARGUMENT.contains(c) {
            return None;
        }
    }
    None
}

/// One raw sbatch option from `extra`: one word that starts with `-`, given to sbatch as it is.
pub fn extra(text: &str) -> Result<String, String> {
    if !text.starts_with('-') || text == "-" || text.chars().any(char::is_control) {
        return Err(format!(
            "{text:?} is not an sbatch option: one option per entry, e.g. \"--constraint=a100\""
        ));
    }
    if let Some(own) = own_option(text) {
        return Err(format!(
            "{text:?}: fenton sets {own} itself (use `fenton run --dir`/`--name`/`--array`; the log is under remote_dir/jobs)"
        ));
    }
    Ok(text.to_string())
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.-".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_are_a_count_or_a_typed_count() {
        assert_eq!(gpus("2").unwrap(), "2");
        assert_eq!(gpus("a100:2").unwrap(), "a100:2");
        assert_eq!(gpus("nvidia_a100-80g:1").unwrap(), "nvidia_a100-80g:1");
        for bad in [
            "", "0", "a100", "a100:", ":2", "-x:1", "a b:1", "2;id", "+1", "a:b:1",
        ] {
            assert!(gpus(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times_become_what_sbatch_reads() {
        let cases = [
            ("1", "0-00:01:00"),
            ("90", "0-01:30:00"),
            ("30m", "0-00:30:00"),
            ("4h", "0-04:00:00"),
            ("2d", "2-00:00:00"),
            ("90s", "0-00:02:00"),
            ("1-12:00:00", "1-12:00:00"),
            ("12:00", "12:00"),
        ];
        for (given, want) in cases {
            assert_eq!(time(given).unwrap(), want, "{given}");
        }
        for bad in [
            "",
            "0",
            "0:00",
            "4x",
            "-1",
            "1.5h",
            "a:b",
            "1:2:3:4",
            "unlimited",
            "$(id)",
        ] {
            assert!(time(bad).is_err(), "{bad:?}");
        }
        assert!(time("UNLIMITED").unwrap_err().contains("rarely scheduled"));
    }

    #[test]
    fn memory_has_a_unit_or_is_megabytes() {
        assert_eq!(mem("32G").unwrap(), "32G");
        assert_eq!(mem("500m").unwrap(), "500M");
        assert_eq!(mem("4000").unwrap(), "4000");
        for bad in ["", "G", "0G", "32GB", "1.5G", "-1G", "32 G"] {
            assert!(mem(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_arrays_and_extras_are_single_safe_words() {
        assert!(name("a partition", "gpu,debug").is_ok());
        for bad in ["", "-x", "a b", "a\nb", "$(id)"] {
            assert!(name("a partition", bad).is_err(), "{bad:?}");
        }
        for good in ["0-9", "1,3,5", "0-15:4", "0-99%10"] {
            assert!(array(good).is_ok(), "{good}");
        }
        for bad in ["", "-1", "a", "0-9;id"] {
            assert!(array(bad).is_err(), "{bad:?}");
        }
        for good in [
            "--constraint=a100",
            "--exclusive",
            "-Cgpu_o",
            "-vCa100",
            "--wait-all-nodes=1",
            "--comment=-o /x",
            "-kJ",
            "--nodes=2",
        ] {
            assert!(extra(good).is_ok(), "{good:?}");
        }
        for bad in [
            "constraint",
            "-",
            "--x\ny",
            "--output=/tmp/x",
            "--out=/x",
            "--o=/x",
            "--ch=/x",
            "--job=x",
            "--wra=id",
            "--pars",
            "--open=truncate",
            "--arr=0-3",
            "--wait",
            "--test",
            "-o/tmp/x",
            "-o /x",
            "-Jname",
            "-vJname",
            "-QvD/x",
            "-e/x",
            "-a0-3",
            "-W",
            "--wrap=id",
            "--chdir=/",
        ] {
            assert!(extra(bad).is_err(), "{bad:?}");
        }
        assert!(extra("--ch=/x").unwrap_err().contains("--chdir"));
        assert!(cpus(0).is_err() && cpus(4).is_ok());
    }
}
