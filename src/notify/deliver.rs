//! Getting one notification to one receiver: resolving where it goes once
//! (URLs from the file, the environment or a secret file; header tokens),
//! one attempt over HTTP or through a child process ([`super::command`]), retries with
//! exponential backoff, and the journal record of the outcome.
//!
//! URLs and header values are secrets: they appear in no log line, no
//! error message and no Debug output.

use super::command::{command_env, run_command};
use super::message::{Notification, slack_payload, webhook_payload};
use crate::config::{Environment, NotifierConfig, NotifierKind};
use crate::http::{describe_error, human_duration};
use crate::journal::{Event, Journal};
use crate::metrics::NotificationLabels;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Where a notifier's messages go, resolved once when the notifiers are
/// built.
pub(super) enum Receiver {
    /// A `webhook` or `slack` notifier: POST JSON to a URL.
    Http {
        /// Slack's payload rather than the webhook's.
        slack: bool,
        /// The receiver's URL: a secret.
        url: reqwest::Url,
        /// Headers from `headers_env`, marked sensitive.
        headers: HeaderMap,
    },
    /// A `command` notifier: run a program with the JSON on stdin.
    Command {
        /// Program and arguments, `{{variables}}` still in them.
        argv: Vec<String>,
    },
    /// The notifier cannot work (its URL variable is unset, ...); every
    /// delivery fails with this reason, which never holds a secret.
    Unresolved {
        /// Why, for logs and the journal.
        reason: String,
    },
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Receiver::Http { slack, headers, .. } => f
                .debug_struct(if *slack { "Slack" } else { "Webhook" })
                .field("url", &"<redacted>")
                .field("headers", &headers.keys().collect::<Vec<_>>())
                .finish(),
            Receiver::Command { argv } => f.debug_struct("Command").field("argv", argv).finish(),
            Receiver::Unresolved { reason } => f
                .debug_struct("Unresolved")
                .field("reason", reason)
                .finish(),
        }
    }
}

impl Receiver {
    /// Resolves a notifier's configuration; problems become
    /// [`Receiver::Unresolved`] with a reason that names keys and
    /// variables, never values.
    pub(super) fn resolve(config: &NotifierConfig, env: &dyn Environment) -> Receiver {
        let resolved = match config.kind {
            NotifierKind::Command => match &config.argv {
                Some(argv) if !argv.is_empty() => Ok(Receiver::Command { argv: argv.clone() }),
                _ => Err("a command notifier needs `argv`".to_owned()),
            },
            NotifierKind::Webhook | NotifierKind::Slack => {
                resolve_url(config, env).and_then(|url| {
                    Ok(Receiver::Http {
                        slack: config.kind == NotifierKind::Slack,
                        url,
                        headers: resolve_headers(config, env)?,
                    })
                })
            }
        };
        resolved.unwrap_or_else(|reason| Receiver::Unresolved { reason })
    }
}

/// The URL from `url`, `url_env` (through `env`) or `url_file` (trimmed).
fn resolve_url(config: &NotifierConfig, env: &dyn Environment) -> Result<reqwest::Url, String> {
    let (text, source) = if let Some(url) = &config.url {
        (url.clone(), "`url`".to_owned())
    } else if let Some(var) = &config.url_env {
        let source = format!("environment variable `{var}` (url_env)");
        let value = env.var(var).ok_or_else(|| format!("{source} is not set"))?;
        (value, source)
    } else if let Some(path) = &config.url_file {
        let source = format!("file {} (url_file)", path.display());
        let value = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {source}: {error}"))?;
        (value, source)
    } else {
        return Err("none of `url`, `url_env`, `url_file` is set".to_owned());
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("the URL in {source} is empty"));
    }
    // The parser's messages ("relative URL without a base") never quote the input.
    let url = reqwest::Url::parse(text)
        .map_err(|error| format!("the URL in {source} is not a valid URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("the URL in {source} is not http:// or https://"));
    }
    Ok(url)
}

/// The headers of `headers_env`, their values read through `env`.
fn resolve_headers(config: &NotifierConfig, env: &dyn Environment) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (name, var) in &config.headers_env {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` in headers_env is not a valid header name"))?;
        let value = env.var(var).ok_or_else(|| {
            format!("environment variable `{var}` (headers_env.{name}) is not set")
        })?;
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
            format!("environment variable `{var}` (headers_env.{name}) is not a valid header value")
        })?;
        value.set_sensitive(true);
        headers.insert(header, value);
    }
    Ok(headers)
}

/// Exponential backoff between attempts: `base`, `2 × base`, `4 × base`...,
/// never more than `max`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Backoff {
    /// Wait after the first failed attempt.
    pub base: Duration,
    /// Longest wait between two attempts.
    pub max: Duration,
}

impl Backoff {
    /// The wait after the `failed`-th failed attempt (from 1).
    fn delay(self, failed: u32) -> Duration {
        2u32.checked_pow(failed.saturating_sub(1))
            .and_then(|factor| self.base.checked_mul(factor))
            .map_or(self.max, |delay| delay.min(self.max))
    }
}

/// One notifier's delivery machinery, owned by its background task.
pub(super) struct Delivery {
    /// The notifier's name, for logs, the journal and metrics.
    pub name: String,
    /// Where messages go.
    pub receiver: Receiver,
    /// Time limit of one attempt.
    pub timeout: Duration,
    /// Further attempts after a failed one.
    pub retries: u32,
    /// Waits between attempts.
    pub backoff: Backoff,
    /// The shared HTTP client.
    pub client: reqwest::Client,
    /// Where each outcome is recorded.
    pub journal: Journal,
    /// `rollguard_notifications_total{notifier, result}`.
    pub counter: Family<NotificationLabels, Counter>,
}

impl Delivery {
    /// Serves the queue until every sender is gone and it is empty, one
    /// message at a time so that messages arrive in the order they were sent.
    pub(super) async fn serve(
        self,
        mut queue: mpsc::Receiver<Notification>,
        pending: Arc<AtomicUsize>,
    ) {
        while let Some(notification) = queue.recv().await {
            self.deliver(&notification).await;
            pending.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Delivers one message with retries, then journals and counts the
    /// outcome.
    async fn deliver(&self, notification: &Notification) {
        let event = notification.event.as_str();
        let mut attempts = 0;
        let mut ok = false;
        if let Receiver::Unresolved { reason } = &self.receiver {
            tracing::warn!(notifier = %self.name, event, reason = %reason, "Notification not sent: the notifier is not usable");
        } else {
            while attempts <= self.retries {
                attempts += 1;
                match self.attempt(notification).await {
                    Ok(()) => {
                        ok = true;
                        break;
                    }
                    Err(error) if attempts <= self.retries => {
                        let retry_in = self.backoff.delay(attempts);
                        tracing::warn!(notifier = %self.name, event, attempt = attempts, error = %error, retry_in = %human_duration(retry_in), "Notification attempt failed; retrying");
                        tokio::time::sleep(retry_in).await;
                    }
                    Err(error) => {
                        tracing::error!(notifier = %self.name, event, attempts, error = %error, "Notification not delivered; giving up");
                    }
                }
            }
        }
        if ok {
            tracing::debug!(notifier = %self.name, event, attempts, "Notification delivered");
        }
        record(
            &self.journal,
            &self.counter,
            &self.name,
            notification,
            if ok { "ok" } else { "failed" },
            attempts,
        )
        .await;
    }

    /// One attempt, within the notifier's time limit.
    async fn attempt(&self, notification: &Notification) -> Result<(), String> {
        match &self.receiver {
            Receiver::Http {
                slack,
                url,
                headers,
            } => {
                let body = if *slack {
                    slack_payload(notification)
                } else {
                    webhook_payload(notification)
                };
                let response = self
                    .client
                    .post(url.clone())
                    .headers(headers.clone())
                    .json(&body)
                    .timeout(self.timeout)
                    .send()
                    .await
                    .map_err(|error| redact(&describe_error(&error.without_url()), url))?;
                // Only the status counts: the reply's body is never read,
                // and dropping the response closes the connection on it,
                // so a receiver cannot make rollguard hold its answer.
                let status = response.status();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("the receiver answered HTTP {}", status.as_u16()))
                }
            }
            Receiver::Command { argv } => {
                let vars = notification.template_variables();
                let argv = argv
                    .iter()
                    .map(|arg| crate::template::render(arg, &vars))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|error| format!("argv: {error}"))?;
                let stdin = serde_json::to_vec(&webhook_payload(notification))
                    .map_err(|error| format!("cannot encode the message: {error}"))?;
                run_command(&argv, stdin, &command_env(notification), self.timeout).await
            }
            Receiver::Unresolved { reason } => Err(reason.clone()),
        }
    }
}

/// Journals `NotificationSent` about the notification's target and counts
/// the result (`ok`, `failed`, `dropped`). A journal failure is logged: a
/// notification must never stop anything.
pub(super) async fn record(
    journal: &Journal,
    counter: &Family<NotificationLabels, Counter>,
    notifier: &str,
    notification: &Notification,
    result: &str,
    attempts: u32,
) {
    counter
        .get_or_create(&NotificationLabels {
            notifier: notifier.to_owned(),
            result: result.to_owned(),
        })
        .inc();
    let event = Event::NotificationSent {
        notifier: notifier.to_owned(),
        event: notification.event.as_str().to_owned(),
        ok: result == "ok",
        attempts,
    };
    if let Err(error) = journal
        .append_async(Some(&notification.target), event)
        .await
    {
        tracing::error!(notifier, error = %error, "Cannot journal a notification");
    }
}

/// Removes the URL (and its path, which holds a Slack webhook's secret)
/// from a message, in case an error quotes it.
fn redact(message: &str, url: &reqwest::Url) -> String {
    let mut message = message.replace(url.as_str(), "<redacted>");
    if url.path().len() > 1 {
        message = message.replace(url.path(), "<redacted>");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let backoff = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
        };
        let delays: Vec<u64> = (1..=7).map(|n| backoff.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff.delay(200), Duration::from_secs(30));
    }

    #[test]
    fn redact_removes_url_and_path() {
        let url = reqwest::Url::parse("https://hooks.example.com/services/T0/SECRET").expect("url");
        let out = redact(
            "error for https://hooks.example.com/services/T0/SECRET and /services/T0/SECRET",
            &url,
        );
        assert!(!out.contains("SECRET"), "{out}");
    }
}
