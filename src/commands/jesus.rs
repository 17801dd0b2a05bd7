//! `fenton jesus christ`: the original script's easter egg, the video fenton is named after.

use anyhow::Result;

use crate::exit::Exit;

const URL: &str = "https://www.youtube.com/watch?v=3GRSbr0EYYU";

pub fn run() -> Result<Exit> {
    if webbrowser::open(URL).is_err() {
        crate::outln!("{URL}");
    }
    Ok(Exit::Success)
}
