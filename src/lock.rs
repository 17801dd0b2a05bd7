//! A lock between fenton commands on this machine, for work that two must not do at once
//! (mounting one mount point, making one Jupyter forward): the second waits for the first,
//! for a bounded time, and then finds what the first did.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};

/// Takes the lock at `path`, waiting up to `limit` (none: as long as it takes, for a first
/// command that waits on a person) for another fenton `doing` the same work to finish.
pub fn exclusive(path: &Path, limit: Option<Duration>, doing: &str) -> Result<Flock<File>> {
    let mut file =
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let start = Instant::now();
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((busy, nix::errno::Errno::EWOULDBLOCK)) => file = busy,
            Err((_, e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
        if let Some(limit) = limit.filter(|&l| start.elapsed() > l) {
            bail!(
                "another fenton has been {doing} for {} s: wait for it to finish, or end it",
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
