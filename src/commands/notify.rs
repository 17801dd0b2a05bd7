//! Notifications, sent by the box: what fenton hands it for each configured channel, and
//! `fenton notify test`.
//!
//! For each channel the box gets, in a 0600 directory made under `umask 077`, the files the
//! wrapper script (`job.sh`) posts with: `CH.curl` (a curl config: the URL and secret headers,
//! read with `curl -K`), `CH.url` and `CH.wgetrc` (the same for GNU wget's `-i` and
//! `--config`), and for Telegram the chat id as JSON and `telegram-edit.*` for the
//! editMessageText calls of a progress message. The Telegram URL holds the bot token, so
//! no URL or header ever goes on a command line. The files travel inside the script on
//! stdin and are deleted once the message is sent.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{jobs, Ctx};
use crate::cli::NotifyCommand;
use crate::config::{expand_home, Notify};
use crate::exit::Exit;
use crate::remote::{runtime, scripts, sh, Remote, STEP_LIMIT};
use crate::ui;

/// The files (name in `notify.d/`, content) that configure every channel; none when no
/// channel is configured.
pub fn files(notify: &Notify) -> Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    if let Some(telegram) = &notify.telegram {
        let token = match (&telegram.bot_token, &telegram.bot_token_file) {
            (Some(_), Some(_)) => bail!(
                "[notify.telegram] has both bot_token and bot_token_file: keep one (bot_token_file keeps the token out of the config)"
            ),
            (Some(token), None) => token.trim().to_string(),
            (None, Some(file)) => {
                let path = expand_home(file);
                if let Ok(meta) = std::fs::metadata(&path) {
                    use std::os::unix::fs::PermissionsExt;
                    if meta.permissions().mode() & 0o077 != 0 {
                        ui::warn(format_args!(
                            "{} holds the Telegram token and others can read it: chmod 600 {}",
                            path.display(),
                            sh::quote_path(&path)
                        ));
                    }
                }
                crate::config::read_small(&path)
                    .with_context(|| {
                        format!(
                            "cannot read notify.telegram.bot_token_file {}: fix the path in your config",
                            path.display()
                        )
                    })?
                    .trim()
                    .to_string()
            }
            (None, None) => {
                bail!("[notify.telegram] needs bot_token or bot_token_file: add one to your config")
            }
        };
        if token.is_empty() {
            bail!("the Telegram bot token is empty: set notify.telegram.bot_token");
        }
        let api = format!("{}/bot{token}", telegram.api_url.trim_end_matches('/'));
        channel(&mut files, "telegram", &format!("{api}/sendMessage"), &[])?;
        // Progress edits one message in place.
        channel(
            &mut files,
            "telegram-edit",
            &format!("{api}/editMessageText"),
            &[],
        )?;
        files.push((
            "telegram.chat".into(),
            serde_json::to_string(&telegram.chat_id)?,
        ));
    }
    if let Some(ntfy) = &notify.ntfy {
        let auth = ntfy
            .token
            .as_ref()
            .map(|t| format!("Authorization: Bearer {}", t.trim()));
        channel(&mut files, "ntfy", &ntfy.url, auth.as_slice())?;
    }
    if let Some(webhook) = &notify.webhook {
        channel(&mut files, "webhook", &webhook.url, &[])?;
    }
    Ok(files)
}

fn channel(
    files: &mut Vec<(String, String)>,
    name: &str,
    url: &str,
    headers: &[String],
) -> Result<()> {
    for value in std::iter::once(url).chain(headers.iter().map(String::as_str)) {
        if value.chars().any(char::is_control) {
            bail!("a [notify.{name}] value holds a control character (a line break?): fix it in your config");
        }
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("[notify.{name}] url must start with http:// or https://");
    }
    let mut curl = format!("url = \"{}\"\n", curl_escape(url));
    let mut wget = String::new();
    for header in headers {
        curl += &format!("header = \"{}\"\n", curl_escape(header));
        wget += &format!("header = {header}\n");
    }
    files.push((format!("{name}.curl"), curl));
    files.push((format!("{name}.url"), url.to_string()));
    files.push((format!("{name}.wgetrc"), wget));
    Ok(())
}

/// A value inside double quotes in a curl config file.
fn curl_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The script lines that write job.sh and the channel files into `$fj_files`, then check
/// that each one is whole (a full disk cuts a file short, and says so only on stderr).
pub fn write_files(files: &[(String, String)]) -> String {
    let all = std::iter::once(("job.sh".to_string(), scripts::JOB_WRAPPER))
        .chain(
            files
                .iter()
                .map(|(name, content)| (format!("notify.d/{name}"), content.as_str())),
        )
        .collect::<Vec<_>>();
    write_checked(&all)
}

/// As [`write_files`], the channels' files only (a Slurm job's `job.sh` is its batch script).
pub fn write_channel_files(files: &[(String, String)]) -> String {
    let all: Vec<(String, &str)> = files
        .iter()
        .map(|(name, content)| (format!("notify.d/{name}"), content.as_str()))
        .collect();
    write_checked(&all)
}

fn write_checked(all: &[(String, &str)]) -> String {
    let mut out = String::new();
    let mut check = vec![];
    for (name, content) in all {
        out += &sh::write_file("fj_files", name, content);
        check.push(name.clone());
        check.push(written_len(content).to_string());
    }
    out + "fj_written \"$fj_files\" " + &sh::words(&check) + "\n"
}

/// The size of a file `sh::write_file` writes: the content, ending with a newline.
fn written_len(content: &str) -> usize {
    if content.is_empty() || content.ends_with('\n') {
        content.len()
    } else {
        content.len() + 1
    }
}

pub fn run(ctx: &Ctx, command: NotifyCommand) -> Result<Exit> {
    match command {
        NotifyCommand::Test => test(ctx),
    }
}

fn test(ctx: &Ctx) -> Result<Exit> {
    let loaded = ctx.config()?;
    let remote = ctx.remote()?;
    let results = runtime()?.block_on(send_test(&remote, &loaded.file.notify))?;
    let results = results.with_context(|| {
        format!(
            "no notification channel is configured: add [notify.telegram], [notify.ntfy] or [notify.webhook] to {}",
            loaded.path.display()
        )
    })?;
    let mut failed = false;
    for line in &results {
        crate::outln!("{}", ui::clean(line));
        failed |= !jobs::sent(line);
    }
    if failed {
        ui::warn(format_args!(
            "some channels failed: check their url (and token) in {}",
            loaded.path.display()
        ));
        return Ok(Exit::Failure);
    }
    Ok(Exit::Success)
}

/// Sends a test message from the box on every configured channel: one line per channel,
/// `CHANNEL ok: …` or `CHANNEL failed: …`; None when no channel is configured.
pub async fn send_test(remote: &Remote, notify: &Notify) -> Result<Option<Vec<String>>> {
    let files = files(notify)?;
    if files.is_empty() {
        return Ok(None);
    }
    let body = format!("{}\n{}fj_go\n", scripts::NOTIFY_TEST, write_files(&files));
    // Each channel's request may take its own 30 s (curl --max-time, wget -T).
    let limit = Duration::from_secs(30 * 3) + STEP_LIMIT;
    let out = jobs::output_within(
        remote,
        &body,
        &[] as &[&str],
        limit,
        "sending the test notifications",
    )
    .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    // One line per channel, `CHANNEL ok: …` or `CHANNEL failed: …`; anything else is the
    // login shell's start-up chatter.
    let channels = ["telegram", "ntfy", "webhook"];
    let results: Vec<String> = text
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| channels.contains(&w))
        })
        .map(str::to_string)
        .collect();
    if results.is_empty() {
        return Err(jobs::failure(
            &out,
            "the box sent no result for the test message: run `fenton doctor`",
        ));
    }
    Ok(Some(results))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Ntfy, Telegram, Webhook};

    #[test]
    fn secrets_go_into_files_quoted_for_curl() {
        let notify = Notify {
            telegram: Some(Telegram {
                bot_token: Some("123:a\"b\\c".into()),
                bot_token_file: None,
                chat_id: "42".into(),
                api_url: "http://127.0.0.1:9/".into(),
            }),
            ntfy: Some(Ntfy {
                url: "https://ntfy.sh/t".into(),
                token: Some("tk_x".into()),
            }),
            webhook: Some(Webhook {
                url: "https://h/x".into(),
            }),
        };
        let files = files(&notify).unwrap();
        let get = |name: &str| &files.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(
            get("telegram.curl"),
            "url = \"http://127.0.0.1:9/bot123:a\\\"b\\\\c/sendMessage\"\n"
        );
        assert_eq!(
            get("telegram.url"),
            "http://127.0.0.1:9/bot123:a\"b\\c/sendMessage"
        );
        assert_eq!(get("telegram.chat"), "\"42\"");
        assert_eq!(
            get("ntfy.curl"),
            "url = \"https://ntfy.sh/t\"\nheader = \"Authorization: Bearer tk_x\"\n"
        );
        assert_eq!(get("ntfy.wgetrc"), "header = Authorization: Bearer tk_x\n");
        assert_eq!(get("webhook.wgetrc"), "");
    }

    #[test]
    fn line_breaks_in_values_are_refused() {
        let notify = Notify {
            webhook: Some(Webhook {
                url: "https://h/x\nheader = evil".into(),
            }),
            ..Notify::default()
        };
        assert!(files(&notify).is_err());
    }
}
