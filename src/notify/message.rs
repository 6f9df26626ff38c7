//! What a notification says, as data: the event, the versions, the decision
//! and why; and the bodies each kind of notifier sends (webhook JSON, Slack
//! incoming-webhook JSON, the command notifier's argv variables).

use super::text::{headline, text};
use crate::model::{Decision, Mode, Severity};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// A new release of the target was seen; its bake window opens.
    ReleaseDetected,
    /// The release looks worse than its baseline, before any decision.
    Degraded,
    /// The policy reached a decision about the release.
    Decision,
    /// A rollback waits for a human's approval.
    ApprovalRequested,
    /// A requested approval was not given in time; nothing was changed.
    ApprovalExpired,
    /// The rollback pipeline started.
    RollbackStarted,
    /// One step of the rollback pipeline ended (or is worth telling about).
    RollbackStep,
    /// The rollback pipeline finished; the previous version runs.
    RollbackCompleted,
    /// The rollback pipeline failed; a human must act.
    RollbackFailed,
    /// The rollback pipeline was cut short (shutdown, crash found on start).
    RollbackInterrupted,
    /// Shadow mode: a rollback would have run; nothing was changed.
    WouldRollback,
    /// Monitoring (Prometheus, probes) cannot be read; rollguard holds.
    MonitoringDown,
    /// Monitoring can be read again.
    MonitoringRecovered,
    /// A count metric cannot see the release's errors: its `errors_query`
    /// answers with no series while requests flow and errors were due (a
    /// renamed or relabelled error metric). Once per metric and release.
    MetricBlind,
}

impl NotifyEvent {
    /// Every event, in the order of a release's life.
    pub const ALL: [NotifyEvent; 14] = [
        NotifyEvent::ReleaseDetected,
        NotifyEvent::Degraded,
        NotifyEvent::Decision,
        NotifyEvent::ApprovalRequested,
        NotifyEvent::ApprovalExpired,
        NotifyEvent::RollbackStarted,
        NotifyEvent::RollbackStep,
        NotifyEvent::RollbackCompleted,
        NotifyEvent::RollbackFailed,
        NotifyEvent::RollbackInterrupted,
        NotifyEvent::WouldRollback,
        NotifyEvent::MonitoringDown,
        NotifyEvent::MonitoringRecovered,
        NotifyEvent::MetricBlind,
    ];

    /// The snake_case name used in payloads, the journal and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::ReleaseDetected => "release_detected",
            NotifyEvent::Degraded => "degraded",
            NotifyEvent::Decision => "decision",
            NotifyEvent::ApprovalRequested => "approval_requested",
            NotifyEvent::ApprovalExpired => "approval_expired",
            NotifyEvent::RollbackStarted => "rollback_started",
            NotifyEvent::RollbackStep => "rollback_step",
            NotifyEvent::RollbackCompleted => "rollback_completed",
            NotifyEvent::RollbackFailed => "rollback_failed",
            NotifyEvent::RollbackInterrupted => "rollback_interrupted",
            NotifyEvent::WouldRollback => "would_rollback",
            NotifyEvent::MonitoringDown => "monitoring_down",
            NotifyEvent::MonitoringRecovered => "monitoring_recovered",
            NotifyEvent::MetricBlind => "metric_blind",
        }
    }
}

impl fmt::Display for NotifyEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One notification: everything a receiver needs to know what happened,
/// what rollguard is doing about it and what to expect. Built with
/// [`Notification::new`] and the `with_*` methods.
///
/// Serialises (the webhook body, with `text` and `headline` added) with
/// every field present, `null` when unknown, and times in RFC 3339 UTC.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// What happened.
    pub event: NotifyEvent,
    /// The target's name.
    pub target: String,
    /// rollguard's id of the release concerned, as in the journal.
    pub release_id: Option<String>,
    /// The version being judged, or rolled back from (the new release).
    pub from: Option<String>,
    /// The version rolled back to (the one before the release).
    pub to: Option<String>,
    /// The decision, for `decision` and the rollback events.
    pub decision: Option<Decision>,
    /// How bad the release is, when assessed.
    pub severity: Option<Severity>,
    /// Why, in words for a human (one reason per failed check).
    pub reasons: Vec<String>,
    /// The target's mode: in `shadow` nothing was changed.
    pub mode: Mode,
    /// When the event happened.
    #[serde(serialize_with = "rfc3339")]
    pub at: SystemTime,
    /// When the release was seen, if known.
    #[serde(serialize_with = "rfc3339_opt")]
    pub release_at: Option<SystemTime>,
    /// The pipeline step concerned (`rollback_step`, `rollback_failed`).
    pub step: Option<String>,
    /// More about what is being done or what went wrong (a step's outcome,
    /// why monitoring is down, how to approve).
    pub detail: Option<String>,
    /// The expected impact on users and data; a sensible default per event
    /// is written in the text when absent.
    pub impact: Option<String>,
    /// Where people follow the incident (the target's `status_channel`).
    pub status_channel: Option<String>,
    /// When what is being done will be over at the latest
    /// (`rollback_started`: the pipeline's time limits summed), if known.
    #[serde(serialize_with = "rfc3339_opt")]
    pub estimated_completion: Option<SystemTime>,
    /// The short plain-text message for a status page (the target's
    /// `status_message`), on `rollback_completed`, `rollback_failed` and
    /// `rollback_interrupted`, as in the incident report.
    pub status_message: Option<String>,
}

fn rfc3339<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_rfc3339_millis(*time))
}

fn rfc3339_opt<S: Serializer>(time: &Option<SystemTime>, serializer: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => rfc3339(time, serializer),
        None => serializer.serialize_none(),
    }
}

impl Notification {
    /// A notification of `event` about `target`, in `mode`, happening `at`;
    /// the other fields start empty.
    pub fn new(event: NotifyEvent, target: impl Into<String>, mode: Mode, at: SystemTime) -> Self {
        Notification {
            event,
            target: target.into(),
            release_id: None,
            from: None,
            to: None,
            decision: None,
            severity: None,
            reasons: Vec::new(),
            mode,
            at,
            release_at: None,
            step: None,
            detail: None,
            impact: None,
            status_channel: None,
            estimated_completion: None,
            status_message: None,
        }
    }

    /// Sets the release id.
    pub fn with_release_id(mut self, release_id: impl Into<String>) -> Self {
        self.release_id = Some(release_id.into());
        self
    }

    /// Sets the version being judged or rolled back from.
    pub fn with_from(mut self, from: impl Into<String>) -> Self {
        self.from = Some(from.into());
        self
    }

    /// Sets the version rolled back to.
    pub fn with_to(mut self, to: impl Into<String>) -> Self {
        self.to = Some(to.into());
        self
    }

    /// Sets the decision.
    pub fn with_decision(mut self, decision: Decision) -> Self {
        self.decision = Some(decision);
        self
    }

    /// Sets the severity.
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = Some(severity);
        self
    }

    /// Sets the reasons (replacing any set before).
    pub fn with_reasons<I, S>(mut self, reasons: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.reasons = reasons.into_iter().map(Into::into).collect();
        self
    }

    /// Sets when the release was seen.
    pub fn with_release_at(mut self, release_at: SystemTime) -> Self {
        self.release_at = Some(release_at);
        self
    }

    /// Sets the pipeline step concerned.
    pub fn with_step(mut self, step: impl Into<String>) -> Self {
        self.step = Some(step.into());
        self
    }

    /// Sets the detail (what is being done, or what went wrong).
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the expected impact.
    pub fn with_impact(mut self, impact: impl Into<String>) -> Self {
        self.impact = Some(impact.into());
        self
    }

    /// Sets when what is being done will be over at the latest.
    pub fn with_estimated_completion(mut self, at: SystemTime) -> Self {
        self.estimated_completion = Some(at);
        self
    }

    /// Sets the status page message; `None` leaves it unsaid.
    pub fn with_status_message(mut self, status_message: Option<String>) -> Self {
        self.status_message = status_message;
        self
    }

    /// Sets where people follow the incident; `None` leaves it unsaid.
    pub fn with_status_channel(mut self, status_channel: Option<String>) -> Self {
        self.status_channel = status_channel;
        self
    }

    /// The variables of a command notifier's argv (the names of
    /// [`crate::template::STEP_VARIABLES`], with the meaning they have in
    /// rollback steps): `target`; `version` = [`from`](Self::from), the
    /// release being judged or rolled back from; `previous_version` =
    /// [`to`](Self::to), the version rolled back to; `release_id`; `mode`;
    /// `timestamp` = [`at`](Self::at) in UTC as `YYYYMMDDTHHMMSSZ`.
    /// Unknown values are empty strings.
    pub fn template_variables(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("target", self.target.clone()),
            ("version", self.from.clone().unwrap_or_default()),
            ("previous_version", self.to.clone().unwrap_or_default()),
            ("release_id", self.release_id.clone().unwrap_or_default()),
            ("mode", self.mode.as_str().to_owned()),
            ("timestamp", crate::time::compact_utc(self.at)),
        ])
    }
}

/// The keys of every [`webhook_payload`], present even when null: the
/// contract receivers rely on (docs/configuration.md lists them too, under
/// `[[notifier]]`).
pub const WEBHOOK_FIELDS: [&str; 19] = [
    "event",
    "target",
    "release_id",
    "from",
    "to",
    "decision",
    "severity",
    "reasons",
    "mode",
    "at",
    "release_at",
    "step",
    "detail",
    "impact",
    "status_channel",
    "estimated_completion",
    "status_message",
    "headline",
    "text",
];

/// The JSON a `webhook` notifier POSTs and a `command` notifier gets on its
/// standard input: every field of the notification plus `headline` (one
/// line) and `text` (the full message).
pub fn webhook_payload(notification: &Notification) -> serde_json::Value {
    let mut value = serde_json::to_value(notification).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(object) = value.as_object_mut() {
        object.insert("headline".to_owned(), headline(notification).into());
        object.insert("text".to_owned(), text(notification).into());
    }
    value
}

/// The JSON a `slack` notifier POSTs, for Slack incoming webhooks (and the
/// many chat tools that accept their format): `text` is the headline (what
/// phone notifications show), `blocks` hold the whole message in mrkdwn
/// and a context line with the event, mode and release.
pub fn slack_payload(notification: &Notification) -> serde_json::Value {
    let head = slack_escape(&headline(notification));
    let body = text(notification);
    let body = body.split_once('\n').map_or("", |(_, rest)| rest);
    let mut context = format!(
        "rollguard · event `{}` · mode `{}`",
        notification.event, notification.mode
    );
    if let Some(release_id) = &notification.release_id {
        context.push_str(&format!(" · release `{}`", slack_escape(release_id)));
    }
    context.push_str(&format!(
        " · {}",
        humantime::format_rfc3339_seconds(notification.at)
    ));
    serde_json::json!({
        "text": head,
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": format!("*{head}*\n{}", slack_body(body))}
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": context}]
            }
        ]
    })
}

/// The body lines in mrkdwn, escaped, their labels in bold.
fn slack_body(body: &str) -> String {
    let mut out = slack_escape(body);
    for label in super::text::LABELS {
        out = out.replace(label, &format!("*{label}*"));
    }
    out
}

/// Escapes the three characters Slack's mrkdwn gives a meaning to (`<@U1>`
/// mentions, `<url|link>`), so a version string cannot ping a channel.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
#[path = "tests_message.rs"]
mod tests;
