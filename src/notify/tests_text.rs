//! One test per event: the key facts (versions, arrow, mode, reasons)
//! appear in the text.

use super::*;
use crate::model::Severity;
use std::time::SystemTime;

fn n(event: NotifyEvent, mode: Mode) -> Notification {
    Notification::new(event, "api", mode, SystemTime::UNIX_EPOCH)
        .with_release_id("r-7")
        .with_from("v1.4.0")
        .with_to("v1.3.2")
        .with_severity(Severity::High)
        .with_reasons(["error_rate 8.2% > high threshold 2%"])
}

fn has(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "`{part}` missing in:\n{text}");
    }
}

#[test]
fn release_detected() {
    let t = text(&n(NotifyEvent::ReleaseDetected, Mode::Shadow));
    has(
        &t,
        &[
            "api: new release v1.4.0 (was v1.3.2), shadow mode",
            "bake window",
            "What happened",
            "Expected impact",
        ],
    );
}

#[test]
fn degraded() {
    let t = text(&n(NotifyEvent::Degraded, Mode::Enforce));
    has(
        &t,
        &[
            "api: v1.4.0 looks degraded (high)",
            "error_rate 8.2% > high threshold 2%",
            "no decision",
        ],
    );
}

#[test]
fn decision_depends_on_the_mode() {
    let enforce = text(&n(NotifyEvent::Decision, Mode::Enforce).with_decision(Decision::Rollback));
    has(
        &enforce,
        &[
            "decision on v1.4.0: rollback",
            "enforce mode",
            "rolling back to v1.3.2",
            "error_rate 8.2%",
        ],
    );
    let shadow = text(&n(NotifyEvent::Decision, Mode::Shadow).with_decision(Decision::Rollback));
    has(&shadow, &["shadow mode", "nothing (shadow mode)"]);
    let approve =
        text(&n(NotifyEvent::Decision, Mode::Approve).with_decision(Decision::ConsiderRollback));
    has(
        &approve,
        &["consider_rollback", "asking a human to approve"],
    );
    let fix = text(&n(NotifyEvent::Decision, Mode::Enforce).with_decision(Decision::ForwardFix));
    has(&fix, &["forward_fix", "fixing v1.4.0 forward"]);
    let unsure =
        text(&n(NotifyEvent::Decision, Mode::Enforce).with_decision(Decision::Inconclusive));
    has(&unsure, &["never acts on an inconclusive"]);
}

#[test]
fn approval_requested() {
    let t = text(&n(NotifyEvent::ApprovalRequested, Mode::Approve));
    has(
        &t,
        &[
            "approval needed to roll back v1.4.0 → v1.3.2 (approve mode)",
            "error_rate 8.2%",
            "until a human approves",
        ],
    );
}

#[test]
fn approval_expired() {
    let t = text(&n(NotifyEvent::ApprovalExpired, Mode::Approve));
    has(
        &t,
        &[
            "v1.4.0 → v1.3.2 expired; nothing was changed",
            "v1.4.0 keeps running",
        ],
    );
}

#[test]
fn rollback_started() {
    let t = text(
        &n(NotifyEvent::RollbackStarted, Mode::Enforce)
            .with_detail("running the rollback pipeline (5 steps)."),
    );
    has(
        &t,
        &[
            "api: rolling back v1.4.0 → v1.3.2 (enforce mode)",
            "What happened: severity high: error_rate 8.2% > high threshold 2%.",
            "What is being done: running the rollback pipeline (5 steps).",
            "Expected impact: a short disruption",
        ],
    );
}

#[test]
fn rollback_step() {
    let t = text(
        &n(NotifyEvent::RollbackStep, Mode::Enforce)
            .with_step("drain")
            .with_detail("drained in 4s."),
    );
    has(
        &t,
        &[
            "rollback v1.4.0 → v1.3.2: step `drain` ended",
            "What happened: drained in 4s.",
        ],
    );
}

#[test]
fn rollback_completed() {
    let t = text(&n(NotifyEvent::RollbackCompleted, Mode::Enforce));
    has(
        &t,
        &[
            "rolled back v1.4.0 → v1.3.2; v1.3.2 is running",
            "will not be rolled back automatically",
        ],
    );
}

#[test]
fn rollback_failed() {
    let t = text(
        &n(NotifyEvent::RollbackFailed, Mode::Enforce)
            .with_step("deploy")
            .with_detail("deploy-version exited with status 2."),
    );
    has(
        &t,
        &[
            "rollback v1.4.0 → v1.3.2 FAILED at step `deploy`",
            "exited with status 2",
            "A human must act now",
        ],
    );
}

#[test]
fn rollback_interrupted() {
    let t = text(&n(NotifyEvent::RollbackInterrupted, Mode::Enforce));
    has(
        &t,
        &[
            "rollback v1.4.0 → v1.3.2 was INTERRUPTED",
            "Check which version runs",
        ],
    );
}

#[test]
fn would_rollback() {
    let t = text(&n(NotifyEvent::WouldRollback, Mode::Shadow));
    has(
        &t,
        &[
            "api: WOULD roll back v1.4.0 → v1.3.2 (shadow mode; nothing was changed)",
            "error_rate 8.2%",
            "no rollback will run",
        ],
    );
}

#[test]
fn monitoring_down() {
    let t = text(
        &Notification::new(
            NotifyEvent::MonitoringDown,
            "api",
            Mode::Enforce,
            SystemTime::UNIX_EPOCH,
        )
        .with_detail("Prometheus unreachable: connection refused"),
    );
    has(
        &t,
        &[
            "api: monitoring is down (Prometheus unreachable: connection refused)",
            "rollguard holds: no automatic rollback until monitoring is back",
        ],
    );
}

#[test]
fn monitoring_recovered() {
    let t = text(&Notification::new(
        NotifyEvent::MonitoringRecovered,
        "api",
        Mode::Enforce,
        SystemTime::UNIX_EPOCH,
    ));
    has(&t, &["api: monitoring is back", "judging releases again"]);
}

#[test]
fn missing_versions_read_as_words_and_impact_overrides() {
    let bare = Notification::new(
        NotifyEvent::RollbackStarted,
        "api",
        Mode::Enforce,
        SystemTime::UNIX_EPOCH,
    )
    .with_impact("about 30 s of 503s.");
    let t = text(&bare);
    has(
        &t,
        &[
            "rolling back the new release → the previous version",
            "no reason was given",
            "Expected impact: about 30 s of 503s.",
        ],
    );
}

#[test]
fn the_status_channel_is_the_last_line_when_set_and_absent_otherwise() {
    let without = n(NotifyEvent::RollbackStarted, Mode::Enforce);
    assert!(!text(&without).contains("Status:"), "{}", text(&without));
    let with = without.with_status_channel(Some("#status-shop".to_owned()));
    let t = text(&with);
    assert!(t.ends_with("\nStatus: #status-shop"), "{t}");
    let json = crate::notify::webhook_payload(&with);
    assert_eq!(json["status_channel"], "#status-shop");
}

#[test]
fn the_status_channel_is_escaped_and_labelled_on_slack() {
    let with = n(NotifyEvent::RollbackFailed, Mode::Enforce)
        .with_status_channel(Some("<!channel> #status-shop".to_owned()));
    let slack = crate::notify::slack_payload(&with);
    let section = slack["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        section.ends_with("*Status:* &lt;!channel&gt; #status-shop"),
        "{section}"
    );
}

#[test]
fn the_estimated_completion_comes_after_what_is_being_done_when_known() {
    let without = n(NotifyEvent::RollbackStarted, Mode::Enforce);
    assert!(!text(&without).contains("Estimated completion"));
    let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    let with = without.with_estimated_completion(at);
    let t = text(&with);
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[2].starts_with("What is being done:"), "{t}");
    assert_eq!(
        lines[3],
        "Estimated completion: by 2023-11-14T22:13:20Z at the latest (every step's time limit, retries and verification)"
    );
    assert!(lines[4].starts_with("Expected impact:"), "{t}");
    let json = crate::notify::webhook_payload(&with);
    assert_eq!(json["estimated_completion"], "2023-11-14T22:13:20.000Z");
}

#[test]
fn monitoring_recovered_says_what_the_outage_was() {
    let t = text(
        &Notification::new(
            NotifyEvent::MonitoringRecovered,
            "api",
            Mode::Enforce,
            SystemTime::UNIX_EPOCH,
        )
        .with_detail("down for 45s: 5 failed ticks, 4 brief returns"),
    );
    has(
        &t,
        &[
            "api: monitoring is back (down for 45s: 5 failed ticks, 4 brief returns)",
            "judging releases again",
        ],
    );
}

#[test]
fn metric_blind() {
    let t = text(
        &Notification::new(
            NotifyEvent::MetricBlind,
            "api",
            Mode::Enforce,
            SystemTime::UNIX_EPOCH,
        )
        .with_from("v2")
        .with_to("v1")
        .with_detail("error_rate: errors_query `sum(x)` answers with no series"),
    );
    has(
        &t,
        &[
            "api: rollguard cannot see the errors of v2",
            "errors_query `sum(x)` answers with no series",
            "never healthy",
            "empty_means_zero = true",
            "a bad v2 could go unnoticed",
        ],
    );
}
