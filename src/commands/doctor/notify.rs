//! Checks of the notification channels: each configured one has what it needs. Nothing goes
//! on the network unless `--notify` asks for a test message, which the box sends exactly as it
//! sends a job's (`fenton notify test`): the box is where notifications come from, so the box
//! is what the test must prove.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::{Check, Status};
use crate::commands::jobs;
use crate::config::{expand_home, Notify};

/// What `--notify` got: the box's result line for each channel, or why nothing was sent.
pub type Sent = Result<Vec<String>, String>;

/// The channels' checks; with `sent`, a channel whose settings are complete also says how
/// its test message went.
pub fn checks(notify: Option<&Notify>, sent: Option<&Sent>) -> Vec<Check> {
    let notify = notify.cloned().unwrap_or_default();
    let tested = |check: Check, channel: &str, fix: &str| match sent {
        Some(sent) if check.status == Status::Ok => test_result(check.id, sent, channel, fix),
        _ => check,
    };
    vec![
        match &notify.telegram {
            Some(t) => tested(
                telegram(t),
                "telegram",
                "check the bot token and chat_id under [notify.telegram] (message your bot first: it cannot write to you before)",
            ),
            None => Check::skipped("notify.telegram", "not configured"),
        },
        match &notify.ntfy {
            Some(n) => tested(
                url_check("notify.ntfy", "[notify.ntfy]", &n.url, true),
                "ntfy",
                "check `url` (and `token`) under [notify.ntfy]",
            ),
            None => Check::skipped("notify.ntfy", "not configured"),
        },
        match &notify.webhook {
            Some(w) => tested(
                url_check("notify.webhook", "[notify.webhook]", &w.url, false),
                "webhook",
                "check `url` under [notify.webhook]",
            ),
            None => Check::skipped("notify.webhook", "not configured"),
        },
    ]
}

/// A channel's check from the box's result lines (`CHANNEL ok: …` / `CHANNEL failed: …`).
fn test_result(id: &'static str, sent: &Sent, channel: &str, fix: &str) -> Check {
    let lines = match sent {
        Ok(lines) => lines,
        Err(why) => {
            return Check::problem(
                id,
                format!("no test message was sent: {why}"),
                "fix what the link.* checks above say, then run `fenton doctor --notify` again",
            )
        }
    };
    let line = lines
        .iter()
        .find(|l| l.split_whitespace().next() == Some(channel));
    match line {
        Some(line) if jobs::sent(line) => {
            let how = line.split_once("ok: ").map_or("", |(_, how)| how);
            Check::ok(id, format!("the box sent a test message ({how})"))
        }
        Some(line) => {
            let why = line
                .split_once("failed: ")
                .map_or(line.as_str(), |(_, why)| why);
            Check::problem(
                id,
                format!("the box could not send a test message: {why}"),
                fix,
            )
        }
        None => Check::problem(id, "the box said nothing about this channel's test", fix),
    }
}

fn is_http(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
}

fn url_check(id: &'static str, table: &str, url: &str, needs_topic: bool) -> Check {
    if !is_http(url) {
        return Check::problem(
            id,
            format!(
                "url {:?} is not an http(s) address",
                crate::config::mask_url(url)
            ),
            format!("write `url = \"https://…\"` under {table}"),
        );
    }
    let path = url.split("://").nth(1).and_then(|r| r.split_once('/'));
    if needs_topic && path.is_none_or(|(_, topic)| topic.is_empty()) {
        return Check::problem(
            id,
            format!("url {:?} names no topic", crate::config::mask_url(url)),
            format!("write `url = \"https://ntfy.sh/YOUR-TOPIC\"` under {table}"),
        );
    }
    Check::ok(id, format!("sends to {}", crate::config::mask_url(url)))
}

fn telegram(t: &crate::config::Telegram) -> Check {
    let id = "notify.telegram";
    if t.chat_id.trim().is_empty() {
        return Check::problem(
            id,
            "chat_id is empty",
            "write `chat_id = \"…\"` under [notify.telegram] (message your bot, then read it from https://api.telegram.org/botTOKEN/getUpdates)",
        );
    }
    if !is_http(&t.api_url) {
        return Check::problem(
            id,
            format!(
                "api_url {:?} is not an http(s) address",
                crate::config::mask_url(&t.api_url)
            ),
            "remove `api_url` from [notify.telegram] (it defaults to https://api.telegram.org)",
        );
    }
    match (&t.bot_token, &t.bot_token_file) {
        (Some(_), Some(_)) => Check::problem(
            id,
            "both bot_token and bot_token_file are set",
            "keep one of them under [notify.telegram] (bot_token_file keeps the token out of the config)",
        ),
        (None, None) => Check::problem(
            id,
            "no bot token",
            "write `bot_token_file = \"~/.config/fenton/telegram-token\"` under [notify.telegram] and put the token from @BotFather there (chmod 600)",
        ),
        (Some(token), None) if token.trim().is_empty() => Check::problem(
            id,
            "bot_token is empty",
            "write the token from @BotFather as `bot_token = \"…\"` under [notify.telegram]",
        ),
        (Some(_), None) => Check::ok(id, format!("chat {} via {}", t.chat_id, crate::config::mask_url(&t.api_url))),
        (None, Some(file)) => {
            let path = expand_home(file);
            let shown = path.display();
            match fs::read_to_string(&path) {
                Err(e) => Check::problem(
                    id,
                    format!("bot_token_file {shown} cannot be read: {e}"),
                    format!("put the token from @BotFather in {shown} (chmod 600), or fix `bot_token_file` under [notify.telegram]"),
                ),
                Ok(text) if text.trim().is_empty() => Check::problem(
                    id,
                    format!("bot_token_file {shown} is empty"),
                    format!("put the token from @BotFather in {shown}"),
                ),
                Ok(_) => {
                    let mode = fs::metadata(&path).map_or(0, |m| m.permissions().mode() & 0o777);
                    if mode & 0o077 != 0 {
                        Check::problem(
                            id,
                            format!("bot_token_file {shown} has mode {mode:04o}: others can read the token"),
                            format!("chmod 600 {}", crate::remote::sh::quote_path(&path)),
                        )
                    } else {
                        Check::ok(id, format!("chat {} via {}, token in {shown}", t.chat_id, crate::config::mask_url(&t.api_url)))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_results_become_checks() {
        let sent: Sent = Ok(vec![
            "telegram ok: HTTP 200".into(),
            "ntfy failed: HTTP 401".into(),
        ]);
        let ok = test_result("notify.telegram", &sent, "telegram", "fix");
        assert_eq!(ok.status, Status::Ok);
        assert_eq!(ok.message, "the box sent a test message (HTTP 200)");
        let failed = test_result("notify.ntfy", &sent, "ntfy", "fix");
        assert_eq!(failed.status, Status::Problem);
        assert_eq!(
            failed.message,
            "the box could not send a test message: HTTP 401"
        );
        let silent = test_result("notify.webhook", &sent, "webhook", "fix");
        assert_eq!(silent.status, Status::Problem);
        let unsent = test_result("notify.webhook", &Err("no link".into()), "webhook", "fix");
        assert!(unsent.message.contains("no link"), "{}", unsent.message);
    }

    #[test]
    fn urls_need_a_scheme_and_ntfy_a_topic() {
        assert_eq!(
            url_check("i", "[t]", "https://ntfy.sh/x", true).status,
            super::super::Status::Ok
        );
        assert_eq!(
            url_check("i", "[t]", "https://ntfy.sh/", true).status,
            super::super::Status::Problem
        );
        assert_eq!(
            url_check("i", "[t]", "ntfy.sh/x", true).status,
            super::super::Status::Problem
        );
        assert_eq!(
            url_check("i", "[t]", "http://127.0.0.1:9/hook", false).status,
            super::super::Status::Ok
        );
    }
}
