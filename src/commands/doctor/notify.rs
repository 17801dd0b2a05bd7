//! Checks of the notification channels: each configured one has what it needs. Nothing goes
//! on the network unless `--notify` asks for a test message, sent with the laptop's curl: its
//! settings (token included) reach curl as a config on stdin, never on a command line.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::{Check, Status};
use crate::config::{expand_home, Notify};

/// The channels' checks; with `send`, a channel whose settings are complete also gets that
/// text as a test message, and its check says how that went.
pub fn checks(notify: Option<&Notify>, send: Option<&str>) -> Vec<Check> {
    let notify = notify.cloned().unwrap_or_default();
    let tested = |check: Check, request: &dyn Fn(&str) -> Request| match send {
        Some(text) if check.status == Status::Ok => deliver(check.id, &request(text)),
        _ => check,
    };
    vec![
        match &notify.telegram {
            Some(t) => tested(telegram(t), &|text| telegram_request(t, text)),
            None => Check::skipped("notify.telegram", "not configured"),
        },
        match &notify.ntfy {
            Some(n) => tested(
                url_check("notify.ntfy", "[notify.ntfy]", &n.url, true),
                &|text| Request {
                    url: n.url.clone(),
                    headers: n
                        .token
                        .iter()
                        .map(|t| format!("Authorization: Bearer {}", t.trim()))
                        .collect(),
                    form: vec![],
                    body: Some(text.into()),
                    fix: "check `url` (and `token`) under [notify.ntfy]",
                },
            ),
            None => Check::skipped("notify.ntfy", "not configured"),
        },
        match &notify.webhook {
            Some(w) => tested(
                url_check("notify.webhook", "[notify.webhook]", &w.url, false),
                &|text| Request {
                    url: w.url.clone(),
                    headers: vec!["Content-Type: application/json".into()],
                    form: vec![],
                    body: Some(
                        serde_json::json!({ "title": "fenton", "text": text, "test": true })
                            .to_string(),
                    ),
                    fix: "check `url` under [notify.webhook]",
                },
            ),
            None => Check::skipped("notify.webhook", "not configured"),
        },
    ]
}

/// One HTTP POST, as curl config lines.
struct Request {
    url: String,
    headers: Vec<String>,
    form: Vec<String>,
    body: Option<String>,
    fix: &'static str,
}

fn telegram_request(t: &crate::config::Telegram, text: &str) -> Request {
    let token = match (&t.bot_token, &t.bot_token_file) {
        (Some(token), _) => token.trim().to_string(),
        (None, Some(file)) => fs::read_to_string(expand_home(file))
            .unwrap_or_default()
            .trim()
            .to_string(),
        (None, None) => String::new(),
    };
    Request {
        url: format!(
            "{}/bot{token}/sendMessage",
            t.api_url.trim_end_matches('/')
        ),
        headers: vec![],
        form: vec![format!("chat_id={}", t.chat_id), format!("text={text}")],
        body: None,
        fix: "check the bot token and chat_id under [notify.telegram] (message your bot first: it cannot write to you before)",
    }
}

/// A value for a curl config file: double-quoted, with `\`, `"` and control characters escaped.
fn curl_quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Sends the request with curl, its config (secrets included) on stdin.
fn deliver(id: &'static str, request: &Request) -> Check {
    use std::io::Write;
    let mut config = format!("url = {}\n", curl_quote(&request.url));
    for header in &request.headers {
        config += &format!("header = {}\n", curl_quote(header));
    }
    for field in &request.form {
        config += &format!("data-urlencode = {}\n", curl_quote(field));
    }
    if let Some(body) = &request.body {
        config += &format!("data-binary = {}\n", curl_quote(body));
    }
    let args = [
        "--silent",
        "--show-error",
        "--max-time",
        "20",
        "--output",
        "/dev/null",
        "--write-out",
        "%{http_code}",
        "--config",
        "-",
    ];
    crate::ui::trace_command("curl", args);
    let child = std::process::Command::new("curl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            return Check::problem(
                id,
                format!("cannot run curl to send a test: {e}"),
                "install curl on this machine (e.g. sudo apt install curl)",
            )
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(config.as_bytes());
    }
    let out = match child.wait_with_output() {
        Ok(out) => out,
        Err(e) => return Check::problem(id, format!("curl failed: {e}"), request.fix),
    };
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && code.starts_with('2') {
        return Check::ok(id, format!("sent a test message (HTTP {code})"));
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let why = match err.lines().next().map(str::trim) {
        Some(line) if !line.is_empty() => line.to_string(),
        _ => format!("HTTP {code}"),
    };
    Check::problem(
        id,
        format!("the test message was not accepted: {why}"),
        request.fix,
    )
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
            format!("url {url:?} is not an http(s) address"),
            format!("write `url = \"https://…\"` under {table}"),
        );
    }
    let path = url.split("://").nth(1).and_then(|r| r.split_once('/'));
    if needs_topic && path.is_none_or(|(_, topic)| topic.is_empty()) {
        return Check::problem(
            id,
            format!("url {url:?} names no topic"),
            format!("write `url = \"https://ntfy.sh/YOUR-TOPIC\"` under {table}"),
        );
    }
    Check::ok(id, format!("sends to {url}"))
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
            format!("api_url {:?} is not an http(s) address", t.api_url),
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
        (Some(_), None) => Check::ok(id, format!("chat {} via {}", t.chat_id, t.api_url)),
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
                            format!("chmod 600 '{shown}'"),
                        )
                    } else {
                        Check::ok(id, format!("chat {} via {}, token in {shown}", t.chat_id, t.api_url))
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
    fn curl_config_values_are_quoted() {
        assert_eq!(curl_quote("plain"), "\"plain\"");
        assert_eq!(curl_quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
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
