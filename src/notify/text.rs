//! The words of a notification, in the runbook's spirit: a headline that
//! says what happened to which versions in which mode, then three lines:
//! what happened, what is being done, and the expected impact.

use super::message::{Notification, NotifyEvent};
use crate::model::{Decision, Mode};

/// One line: the target, what happened, the versions (`from → to`) and the
/// mode when it changes the meaning. What chat tools and phones show.
pub fn headline(n: &Notification) -> String {
    let t = &n.target;
    let from = from(n);
    let to = to(n);
    let mode = n.mode;
    match n.event {
        NotifyEvent::ReleaseDetected => match &n.to {
            Some(previous) => format!("{t}: new release {from} (was {previous}), {mode} mode"),
            None => format!("{t}: new release {from}, {mode} mode"),
        },
        NotifyEvent::Degraded => {
            let severity = n.severity.map_or(String::new(), |s| format!(" ({s})"));
            format!("{t}: {from} looks degraded{severity}")
        }
        NotifyEvent::Decision => {
            let decision = n.decision.map_or("undecided", Decision::as_str);
            let severity = n
                .severity
                .map_or(String::new(), |s| format!("severity {s}, "));
            format!("{t}: decision on {from}: {decision} ({severity}{mode} mode)")
        }
        NotifyEvent::ApprovalRequested => {
            format!("{t}: approval needed to roll back {from} → {to} ({mode} mode)")
        }
        NotifyEvent::ApprovalExpired => {
            format!("{t}: approval to roll back {from} → {to} expired; nothing was changed")
        }
        NotifyEvent::RollbackStarted => format!("{t}: rolling back {from} → {to} ({mode} mode)"),
        NotifyEvent::RollbackStep => match &n.step {
            Some(step) => format!("{t}: rollback {from} → {to}: step `{step}` ended"),
            None => format!("{t}: rollback {from} → {to}: a step ended"),
        },
        NotifyEvent::RollbackCompleted => {
            format!("{t}: rolled back {from} → {to}; {to} is running")
        }
        NotifyEvent::RollbackFailed => match &n.step {
            Some(step) => format!("{t}: rollback {from} → {to} FAILED at step `{step}`"),
            None => format!("{t}: rollback {from} → {to} FAILED"),
        },
        NotifyEvent::RollbackInterrupted => {
            format!("{t}: rollback {from} → {to} was INTERRUPTED")
        }
        NotifyEvent::WouldRollback => {
            format!("{t}: WOULD roll back {from} → {to} ({mode} mode; nothing was changed)")
        }
        NotifyEvent::MonitoringDown => match &n.detail {
            Some(why) => format!("{t}: monitoring is down ({why})"),
            None => format!("{t}: monitoring is down"),
        },
        NotifyEvent::MonitoringRecovered => match &n.detail {
            Some(outage) => format!("{t}: monitoring is back ({outage})"),
            None => format!("{t}: monitoring is back"),
        },
        NotifyEvent::MetricBlind => format!("{t}: rollguard cannot see the errors of {from}"),
    }
}

/// The labels of the message's lines, in order (shown in bold on Slack).
pub(super) const LABELS: [&str; 5] = [
    "What happened:",
    "What is being done:",
    "Estimated completion:",
    "Expected impact:",
    "Status:",
];

/// The whole message: the [`headline`], then "What happened", "What is
/// being done", "Estimated completion" (when known), "Expected impact",
/// one line each, and "Status: ..." when the target has a `status_channel`.
pub fn text(n: &Notification) -> String {
    let (happened, doing, impact) = body(n);
    let impact = n.impact.clone().unwrap_or(impact);
    let [
        happened_label,
        doing_label,
        eta_label,
        impact_label,
        status_label,
    ] = LABELS;
    let mut text = format!(
        "{}.\n{happened_label} {happened}\n{doing_label} {doing}",
        headline(n)
    );
    if let Some(at) = n.estimated_completion {
        text.push_str(&format!(
            "\n{eta_label} by {} at the latest (every step's time limit, retries and verification)",
            humantime::format_rfc3339_seconds(at)
        ));
    }
    text.push_str(&format!("\n{impact_label} {impact}"));
    if let Some(channel) = &n.status_channel {
        text.push_str(&format!("\n{status_label} {channel}"));
    }
    text
}

/// What happened, what is being done, the default expected impact.
fn body(n: &Notification) -> (String, String, String) {
    let from = from(n);
    let to = to(n);
    let mode = n.mode;
    let detail = |default: &str| n.detail.clone().unwrap_or_else(|| default.to_owned());
    match n.event {
        NotifyEvent::ReleaseDetected => {
            let seen = n
                .release_at
                .map(|at| format!(" at {}", humantime::format_rfc3339_seconds(at)))
                .unwrap_or_default();
            (
                format!("{from} replaced {}{seen}.", n.to.as_deref().unwrap_or("the previous version")),
                detail(&format!(
                    "watching probes and metrics closely during the bake window; {}",
                    mode_promise(mode)
                )),
                "none from rollguard while the release is healthy.".to_owned(),
            )
        }
        NotifyEvent::Degraded => (
            reasons(n),
            detail("watching closely; no decision has been taken yet."),
            "users of the target may see errors or slowness.".to_owned(),
        ),
        NotifyEvent::Decision => (
            reasons(n),
            detail(&decision_action(n)),
            decision_impact(n),
        ),
        NotifyEvent::ApprovalRequested => (
            reasons(n),
            detail(&format!(
                "nothing changes until a human approves rolling back to {to} or rejects it."
            )),
            format!("{from} keeps serving, with its problems, until someone decides."),
        ),
        NotifyEvent::ApprovalExpired => (
            format!("nobody approved the rollback of {from} → {to} in time."),
            detail(&format!("nothing: {from} keeps running; the request is closed.")),
            format!("{from} keeps serving, with its problems, until someone acts."),
        ),
        NotifyEvent::RollbackStarted => (
            reasons(n),
            detail(&format!(
                "running the rollback pipeline to bring back {to}."
            )),
            rollback_impact(n),
        ),
        NotifyEvent::RollbackStep => (
            detail(&match &n.step {
                Some(step) => format!("step `{step}` of the rollback {from} → {to} ended."),
                None => format!("a step of the rollback {from} → {to} ended."),
            }),
            "the rollback pipeline goes on with its next step.".to_owned(),
            rollback_impact(n),
        ),
        NotifyEvent::RollbackCompleted => (
            format!("every step of the rollback {from} → {to} succeeded."),
            detail(&format!(
                "watching {to}; it will not be rolled back automatically. Fix {from} forward and release again."
            )),
            format!("what {from} brought is gone until a new release; {to} serves again."),
        ),
        NotifyEvent::RollbackFailed => (
            detail(&format!("the rollback {from} → {to} failed.")),
            "nothing more: rollguard stopped the pipeline. A human must act now.".to_owned(),
            "the target may run neither version cleanly; users may be affected until it is fixed."
                .to_owned(),
        ),
        NotifyEvent::RollbackInterrupted => (
            detail(&format!(
                "the rollback {from} → {to} was cut short before it finished."
            )),
            "nothing: rollguard will not resume it on its own. Check which version runs.".to_owned(),
            "the target may be half rolled back; check it now.".to_owned(),
        ),
        NotifyEvent::WouldRollback => (
            reasons(n),
            match &n.detail {
                Some(plan) => format!(
                    "nothing ({mode} mode). In enforce mode rollguard would now bring back {to} with: {plan}"
                ),
                None => format!(
                    "nothing ({mode} mode). In enforce mode rollguard would now run the rollback pipeline to bring back {to}."
                ),
            },
            format!("{from} keeps serving, with its problems; no rollback will run."),
        ),
        NotifyEvent::MonitoringDown => (
            "rollguard cannot read its probes or metrics, so it cannot judge releases.".to_owned(),
            "rollguard holds: no automatic rollback until monitoring is back; a missing measurement is never taken as a failure."
                .to_owned(),
            "none from rollguard; a bad release would go unnoticed meanwhile, so watch by hand."
                .to_owned(),
        ),
        NotifyEvent::MonitoringRecovered => (
            match &n.detail {
                Some(outage) => format!("rollguard reads its probes and metrics again ({outage})."),
                None => "rollguard reads its probes and metrics again.".to_owned(),
            },
            "judging releases again on every tick.".to_owned(),
            "none.".to_owned(),
        ),
        NotifyEvent::MetricBlind => (
            detail("a count metric's errors query answers with no series while requests flow."),
            "rollguard holds on this metric: it is no_data, never healthy, while its error series is missing, and a bake window that ends so ends inconclusive. Fix the query (or the release's metrics); if an empty answer can only mean zero errors, set `empty_means_zero = true` on the metric."
                .to_owned(),
            format!("a bad {from} could go unnoticed on this metric; watch its errors by hand."),
        ),
    }
}

/// The version being judged, or a placeholder.
fn from(n: &Notification) -> &str {
    n.from.as_deref().unwrap_or("the new release")
}

/// The version rolled back to, or a placeholder.
fn to(n: &Notification) -> &str {
    n.to.as_deref().unwrap_or("the previous version")
}

/// The reasons as one sentence, with the severity when known.
fn reasons(n: &Notification) -> String {
    let severity = n
        .severity
        .map(|s| format!("severity {s}: "))
        .unwrap_or_default();
    if n.reasons.is_empty() {
        format!("{severity}no reason was given.")
    } else {
        format!("{severity}{}.", n.reasons.join("; "))
    }
}

/// What a mode means for what happens next.
fn mode_promise(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce => {
            "if it breaks the service, rollguard rolls it back by itself (enforce mode)."
        }
        Mode::Shadow => "rollguard only says what it would do (shadow mode).",
        Mode::Approve => "any rollback waits for a human's approval (approve mode).",
    }
}

/// What is done about a decision, given the mode.
fn decision_action(n: &Notification) -> String {
    let from = from(n);
    let to = to(n);
    let mode = n.mode;
    match (n.decision, mode) {
        (Some(Decision::Rollback), Mode::Enforce) => format!("rolling back to {to}."),
        (Some(Decision::Rollback | Decision::ConsiderRollback), Mode::Shadow) => {
            format!("nothing (shadow mode); enforce mode would act on it, rolling back to {to}.")
        }
        (Some(Decision::Rollback | Decision::ConsiderRollback), _) => {
            format!("asking a human to approve rolling back to {to} ({mode} mode).")
        }
        (Some(Decision::ForwardFix), _) => {
            format!("no rollback: fixing {from} forward is the better way.")
        }
        (Some(Decision::Healthy), _) => format!("nothing: {from} keeps running."),
        (Some(Decision::Inconclusive), _) | (None, _) => {
            "nothing: rollguard never acts on an inconclusive assessment.".to_owned()
        }
    }
}

/// The default impact of a decision.
fn decision_impact(n: &Notification) -> String {
    match (n.decision, n.mode) {
        (Some(Decision::Rollback), Mode::Enforce) => rollback_impact(n),
        (Some(Decision::Healthy), _) => "none.".to_owned(),
        _ => format!(
            "{} keeps serving as it does now until someone acts.",
            from(n)
        ),
    }
}

/// The default impact of a rollback.
fn rollback_impact(n: &Notification) -> String {
    format!(
        "a short disruption while {to} replaces {from}; what {from} brought is gone until a new release.",
        from = from(n),
        to = to(n)
    )
}

#[cfg(test)]
#[path = "tests_text.rs"]
mod tests;
