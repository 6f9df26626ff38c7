//! The report from hand-built journal records: every section, hostile
//! values escaped, an interrupted pipeline, a failed restore step. The
//! builders here serve `tests_incidents.rs` too.

use super::*;
use crate::journal::Event;
use crate::model::{
    Assessment, CheckEvidence, CheckKind, DataImpact, Decision, Mode, Severity, StepOutcome,
    TimeToFix, Verdict,
};
use std::time::Duration;

const T: &str = "shop";

/// Builds a target's records one event at a time, `ms` after 03:12:00.
pub(super) struct Records {
    pub(super) records: Vec<Record>,
}

impl Records {
    pub(super) fn new() -> Records {
        Records {
            records: Vec::new(),
        }
    }

    pub(super) fn at(&mut self, ms: u64, event: Event) -> &mut Records {
        let base = humantime::parse_rfc3339("2026-12-04T03:12:00Z").expect("time");
        let at = base + Duration::from_millis(ms);
        self.records.push(Record {
            seq: self.records.len() as u64 + 1,
            at: humantime::format_rfc3339_millis(at).to_string(),
            target: Some(T.to_owned()),
            event,
        });
        self
    }
}

pub(super) fn seen(id: &str, from: &str, to: &str, by_rollguard: bool) -> Event {
    Event::ReleaseSeen {
        from: Some(from.to_owned()),
        to: to.to_owned(),
        source: "symlink".into(),
        by_rollguard,
        release_id: id.into(),
    }
}

pub(super) fn assessment(id: &str, severity: Severity) -> Event {
    let evidence = CheckEvidence {
        verdict: Verdict::Fail(Severity::High),
        value: Some(0.4),
        baseline: Some(0.01),
        ratio: Some(40.0),
        threshold: Some(0.1),
        breached_severity: Severity::High,
        streak: 2,
        needed: 2,
        reason: "error_rate 0.4 ≥ high threshold 0.1 and 40x baseline 0.01".into(),
        ..CheckEvidence::unknown("error_rate", CheckKind::Metric, 2)
    };
    let a = Assessment {
        severity,
        data_impact: DataImpact::None,
        time_to_fix: TimeToFix::Known(Duration::from_secs(3600)),
        inconclusive: false,
        evidence: vec![evidence],
    };
    Event::Assessment {
        release_id: id.into(),
        severity,
        evidence: serde_json::to_value(a).expect("serialises"),
    }
}

pub(super) fn decision(id: &str, decision: Decision, mode: Mode) -> Event {
    Event::DecisionMade {
        release_id: id.into(),
        decision,
        severity: Severity::High,
        rule: Some("policy.rule[0]: high or worse → rollback".into()),
        reasons: vec!["error_rate 0.4 ≥ high threshold 0.1".into()],
        mode,
    }
}

pub(super) fn step(
    id: &str,
    name: &str,
    outcome: Option<StepOutcome>,
    message: Option<&str>,
) -> Event {
    match outcome {
        None => Event::StepStarted {
            release_id: id.into(),
            step: name.into(),
            attempt: 1,
        },
        Some(outcome) => Event::StepFinished {
            release_id: id.into(),
            step: name.into(),
            outcome,
            message: message.map(str::to_owned),
        },
    }
}

pub(super) fn started(id: &str, from: &str, to: &str, trigger: &str) -> Event {
    Event::RollbackStarted {
        release_id: id.into(),
        from: from.into(),
        to: to.into(),
        trigger: trigger.into(),
    }
}

pub(super) fn finished(id: &str, outcome: &str) -> Event {
    Event::RollbackFinished {
        release_id: id.into(),
        outcome: outcome.into(),
    }
}

pub(super) fn sent(event: &str, ok: bool) -> Event {
    Event::NotificationSent {
        notifier: "on-call".into(),
        event: event.into(),
        ok,
        attempts: 1,
    }
}

/// A release of v2 over v1, bad from 3 s on, rolled back from 5 s by a
/// switch step and verified, then v1 seen again.
pub(super) fn completed() -> Vec<Record> {
    let id = "shop-1";
    let mut j = Records::new();
    j.at(0, seen(id, "v1", "v2", false))
        .at(1_000, assessment(id, Severity::None))
        .at(1_001, decision(id, Decision::Healthy, Mode::Enforce))
        .at(3_000, assessment(id, Severity::High))
        .at(3_001, decision(id, Decision::Rollback, Mode::Enforce))
        .at(3_100, started(id, "v2", "v1", "automatic"))
        .at(3_200, sent("rollback_started", true))
        .at(3_300, step(id, "switch", None, None))
        .at(
            4_500,
            step(id, "switch", Some(StepOutcome::Ok), Some("current → v1")),
        )
        .at(4_600, step(id, "verify", None, None))
        .at(20_000, step(id, "verify", Some(StepOutcome::Ok), None))
        .at(20_100, finished(id, "completed"))
        .at(20_300, sent("rollback_completed", false))
        .at(21_000, seen("shop-2", "v2", "v1", true));
    j.records.clone()
}

pub(super) fn report_of(records: &[Record], restore: &[String]) -> (Incident, String) {
    let found = incidents(records);
    assert_eq!(found.len(), 1, "{found:#?}");
    let incident = found.into_iter().next().expect("one");
    let message = status_message(&incident, None);
    let text = render(&ReportInput {
        incident: &incident,
        status_message: &message,
        restore_steps: restore,
        generated_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_400_000),
    });
    (incident, text)
}

/// The cells of a Markdown table row, split on unescaped `|`.
pub(super) fn cells(line: &str) -> usize {
    let mut count: usize = 0;
    let mut escaped = false;
    for c in line.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => count += 1,
            _ => escaped = false,
        }
    }
    count.saturating_sub(1)
}

#[test]
fn a_completed_rollback_has_every_section() {
    let (incident, text) = report_of(&completed(), &[]);
    assert_eq!(incident.kind, IncidentKind::RolledBack);
    assert_eq!(incident.release_id, "shop-1");
    for section in [
        "# Incident: shop v2 rolled back",
        "## Summary",
        "## Status message",
        "## Timeline (UTC)",
        "## Pipeline",
        "## Decision evidence",
        "## What remains for humans",
    ] {
        assert!(text.contains(section), "no {section:?} in:\n{text}");
    }
    for line in [
        "- **Bad version → restored:** v2 → v1",
        "- **Outcome:** completed (the previous version runs and the service was verified back to normal)",
        "- **Trigger:** automatic (rollguard, on the decision matrix)",
        "- **Time to detect:** 3s 1ms (release seen → decision)",
        "- **Time to recover:** 20s (release seen → previous version back)",
        "- **Rollback took:** 17s",
        "| 2026-12-04 03:12:00 | Release detected | v1 → v2, seen by symlink |",
        "| 2026-12-04 03:12:03 | First failing tick | severity high |",
        "| 2026-12-04 03:12:03 | Decision | rollback (severity high, mode enforce): policy.rule\\[0\\]: high or worse → rollback |",
        "| 2026-12-04 03:12:03 | Rollback started | trigger automatic, v2 → v1 |",
        "| 2026-12-04 03:12:04 | Step finished | switch: ok: current → v1 |",
        "| 2026-12-04 03:12:20 | Rollback finished | completed |",
        "| 2026-12-04 03:12:21 | Restored version running | v1 seen again; verified as rollguard's own release |",
        "| 2026-12-04 03:12:20 | Notification | rollback\\_completed to on-call: not delivered (1 attempt(s)) |",
        "| 1 | switch | 1 | 2026-12-04 03:12:03 | 2026-12-04 03:12:04 | 1s 200ms | ok | current → v1 |",
        "| 2 | verify | 1 | 2026-12-04 03:12:04 | 2026-12-04 03:12:20 | 15s | ok |  |",
        "- **Matrix rule:** policy.rule\\[0\\]: high or worse → rollback",
        "- **Data impact:** none · **Time to fix:** 1h · **Inconclusive:** no",
        "  - error\\_rate 0.4 ≥ high threshold 0.1",
        "| error\\_rate | metric | fail (high) | 0.4 | 0.01 | 40 | 0.1 | — | 2 of 2 | error\\_rate 0.4 ≥ high threshold 0.1 and 40x baseline 0.01 |",
        "We identified a problem with the latest release of shop (v2) at 03:12 UTC and rolled it back to v1 at 03:12 UTC. The service is back to normal.",
        "- Notification rollback\\_completed to on-call was not delivered: tell people another way",
        "- Fix forward: find and fix the cause in v2",
    ] {
        assert!(text.contains(line), "no line {line:?} in:\n{text}");
    }
    // The timeline is in time order.
    let timeline = text.split("## Timeline").nth(1).expect("timeline");
    let first = timeline.find("Release detected").expect("release row");
    let last = timeline
        .find("Restored version running")
        .expect("restored row");
    assert!(first < last);
    assert!(!text.contains("ended failed"), "{text}");
}

#[test]
fn hostile_values_cannot_break_the_markdown() {
    let id = "shop-1";
    let bad = "v2|`rm -rf`<script>*x*_[y](z)";
    let mut j = Records::new();
    j.at(0, seen(id, "v1\n# owned", bad, false))
        .at(3_000, assessment(id, Severity::High))
        .at(3_001, decision(id, Decision::Rollback, Mode::Enforce))
        .at(3_100, started(id, bad, "v1\n# owned", "automatic"))
        .at(3_300, step(id, "sw|tch", None, None))
        .at(
            4_500,
            step(
                id,
                "sw|tch",
                Some(StepOutcome::Failed),
                Some("exit 1\n| a | b |\n`x`"),
            ),
        )
        .at(4_600, finished(id, "failed"));
    let (_, text) = report_of(&j.records, &[]);
    // With every backslash escape taken out, no markup is left.
    let mut unescaped = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            chars.next();
        } else {
            unescaped.push(c);
        }
    }
    for raw in ["`rm", "`x`", "<script>", "*x*", "[y]", "| a | b |"] {
        assert!(!unescaped.contains(raw), "{raw:?} unescaped in:\n{text}");
    }
    assert!(!text.lines().any(|l| l.starts_with("# owned")), "{text}");
    assert!(
        text.contains(r"v2\|\`rm -rf\`\<script\>\*x\*\_\[y\](z)"),
        "{text}"
    );
    // Every table row keeps its column count.
    for line in text.lines().filter(|l| l.starts_with('|')) {
        assert!(
            [3, 8, 10].contains(&cells(line)),
            "{} cells: {line}",
            cells(line)
        );
    }
    let pipeline_row = text
        .lines()
        .find(|l| l.starts_with("| 1 |"))
        .expect("pipeline row");
    assert_eq!(cells(pipeline_row), 8, "{pipeline_row}");
    let timeline_rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| 2026-")).collect();
    assert!(timeline_rows.len() >= 5);
    for row in timeline_rows {
        assert_eq!(cells(row), 3, "{row}");
    }
}

#[test]
fn an_interrupted_pipeline_names_the_step_that_never_finished() {
    let id = "shop-1";
    let mut j = Records::new();
    j.at(0, seen(id, "v1", "v2", false))
        .at(3_000, assessment(id, Severity::Critical))
        .at(3_001, decision(id, Decision::Rollback, Mode::Enforce))
        .at(3_100, started(id, "v2", "v1", "automatic"))
        .at(3_300, step(id, "drain", None, None))
        .at(3_400, step(id, "drain", Some(StepOutcome::Ok), None))
        .at(3_500, step(id, "switch", None, None))
        .at(60_000, finished(id, "interrupted"));
    let (incident, text) = report_of(&j.records, &[]);
    assert_eq!(incident.outcome_word(), "interrupted");
    assert_eq!(incident.restored_at(), None);
    for line in [
        "- **Outcome:** interrupted (rollguard stopped",
        "- **Time to recover:** not recovered by rollguard",
        "| 2 | switch | 1 | 2026-12-04 03:12:03 | — | unknown | never finished |  |",
        "- Step switch started and was never journaled as finished: check what it did",
        "- The rollback did not finish: check which version runs; v2 may still be running",
        "Rolling it back to v1 was interrupted; our engineers are working on it.",
    ] {
        assert!(text.contains(line), "no line {line:?} in:\n{text}");
    }
}

#[test]
fn a_failed_restore_step_is_left_to_humans() {
    let id = "shop-1";
    let mut j = Records::new();
    j.at(0, seen(id, "v1", "v2", false))
        .at(3_000, assessment(id, Severity::High))
        .at(3_001, decision(id, Decision::Rollback, Mode::Enforce))
        .at(3_100, started(id, "v2", "v1", "approved"))
        .at(3_200, step(id, "switch", None, None))
        .at(
            3_300,
            step(
                id,
                "switch",
                Some(StepOutcome::Failed),
                Some("no such link"),
            ),
        )
        .at(3_400, step(id, "undrain", None, None))
        .at(
            4_400,
            step(
                id,
                "undrain",
                Some(StepOutcome::TimedOut),
                Some("lb did not answer"),
            ),
        )
        .at(4_500, finished(id, "failed"));
    let (_, text) = report_of(&j.records, &["undrain".to_owned()]);
    for line in [
        "| 2 | undrain (restore) | 1 |",
        "- Restore step undrain ended timed_out: lb did not answer: the service may be left as the rollback left it (drained, paused); put it back by hand",
        "- Step switch ended failed: no such link: check what it did and finish its work by hand",
        "- **Trigger:** approved (by a human at unknown UTC)",
        "Rolling it back to v1 did not complete; our engineers are working on it.",
    ] {
        assert!(text.contains(line), "no line {line:?} in:\n{text}");
    }
}

#[test]
fn a_retried_step_that_ended_well_is_not_left_to_humans() {
    let id = "shop-1";
    let mut j = Records::new();
    j.at(0, seen(id, "v1", "v2", false))
        .at(3_001, decision(id, Decision::Rollback, Mode::Enforce))
        .at(3_100, started(id, "v2", "v1", "automatic"))
        .at(3_200, step(id, "switch", None, None))
        .at(
            3_300,
            step(id, "switch", Some(StepOutcome::Failed), Some("busy")),
        )
        .at(
            3_400,
            Event::StepStarted {
                release_id: id.into(),
                step: "switch".into(),
                attempt: 2,
            },
        )
        .at(3_500, step(id, "switch", Some(StepOutcome::Ok), None))
        .at(3_600, finished(id, "unverified"));
    let (_, text) = report_of(&j.records, &[]);
    assert!(text.contains("| 2 | switch | 2 |"), "{text}");
    assert!(!text.contains("ended failed"), "{text}");
    assert!(
        text.contains("rollguard could not verify the service back to normal"),
        "{text}"
    );
    assert!(text.contains("The journal holds no assessment"), "{text}");
}
