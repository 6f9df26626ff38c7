//! What a restart reads back from the journal (`recovery.rs`).

use super::recovery::*;
use crate::config::TargetConfig;
use crate::exec::ProcessGroup;
use crate::journal::{Event, Journal};
use crate::model::StepOutcome;
use crate::release::ReleaseChange;
use std::time::{Duration, SystemTime};

fn target(bake_window: &str) -> TargetConfig {
    let text = format!(
        "[[target]]\nname = \"api\"\nbake_window = \"{bake_window}\"\n[target.release]\nkind = \"announce\"\n"
    );
    crate::config::parse(&text, std::path::Path::new("t.toml"))
        .expect("valid")
        .targets
        .remove(0)
}

fn journal(events: Vec<Event>) -> (tempfile::TempDir, Journal) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, _) = Journal::open(dir.path()).expect("journal");
    for event in events {
        journal.append(Some("api"), event).expect("append");
    }
    // Another target's records never leak in.
    journal
        .append(
            Some("web"),
            Event::ReleaseSeen {
                from: None,
                to: "w9".into(),
                source: "announce".into(),
                by_rollguard: false,
                release_id: "web-1".into(),
            },
        )
        .expect("append");
    (dir, journal)
}

fn seen(from: &str, to: &str, id: &str, by_rollguard: bool) -> Event {
    Event::ReleaseSeen {
        from: Some(from.into()),
        to: to.into(),
        source: "announce".into(),
        by_rollguard,
        release_id: id.into(),
    }
}

fn group(pgid: i32) -> ProcessGroup {
    ProcessGroup {
        pgid,
        started: Some(1),
        boot_id: None,
    }
}

fn started(id: &str) -> Event {
    Event::RollbackStarted {
        release_id: id.into(),
        from: "v2".into(),
        to: "v1".into(),
        trigger: "automatic".into(),
    }
}

#[test]
fn a_finished_rollback_is_remembered_and_its_arrival_is_rollguards_own() {
    let (_dir, journal) = journal(vec![
        seen("v1", "v2", "api-1", false),
        started("api-1"),
        Event::StepStarted {
            release_id: "api-1".into(),
            step: "switch".into(),
            attempt: 1,
        },
        Event::StepFinished {
            release_id: "api-1".into(),
            step: "switch".into(),
            outcome: StepOutcome::Ok,
            message: None,
        },
        Event::RollbackFinished {
            release_id: "api-1".into(),
            outcome: "completed".into(),
        },
    ]);
    let now = SystemTime::now();
    let mut memory = recover(&journal, &target("15m"), now);
    assert!(memory.unfinished.is_none());
    assert!(memory.last_rollback_at.is_some(), "cooldown survives");
    let open = memory.open.as_ref().expect("bake window still open");
    assert!(open.acted, "never acted on twice");
    assert_eq!(memory.tracker.current(), Some("v2"));
    // The source now shows v1: rollguard's own rollback, not a release.
    assert!(matches!(
        memory.tracker.observe("v1", now),
        Some(ReleaseChange::Rollback { .. })
    ));
}

#[test]
fn a_rollback_cut_short_is_unfinished_with_its_open_steps() {
    let (_dir, journal) = journal(vec![
        seen("v1", "v2", "api-1", false),
        started("api-1"),
        Event::StepStarted {
            release_id: "api-1".into(),
            step: "drain".into(),
            attempt: 1,
        },
        Event::StepProcess {
            release_id: "api-1".into(),
            step: "drain".into(),
            group: group(5),
        },
        Event::StepFinished {
            release_id: "api-1".into(),
            step: "drain".into(),
            outcome: StepOutcome::Ok,
            message: None,
        },
        Event::StepStarted {
            release_id: "api-1".into(),
            step: "deploy".into(),
            attempt: 1,
        },
        Event::StepProcess {
            release_id: "api-1".into(),
            step: "deploy".into(),
            group: group(7),
        },
    ]);
    let memory = recover(&journal, &target("15m"), SystemTime::now());
    let unfinished = memory.unfinished.expect("unfinished");
    assert_eq!(unfinished.release_id, "api-1");
    assert_eq!(unfinished.open_steps, vec!["deploy".to_owned()]);
    assert_eq!(unfinished.done_steps, vec!["drain".to_owned()]);
    assert_eq!(
        unfinished.processes,
        vec![("deploy".to_owned(), group(7))],
        "the drain's program ended with its step"
    );
    assert!(memory.open.expect("open").acted);
    assert!(
        unfinished.release_at.is_some(),
        "the release's time is known"
    );
}

#[test]
fn failed_and_interrupted_steps_are_told_apart_and_a_retry_clears_them() {
    let step = |name: &str| (name.to_owned(), "api-1".to_owned());
    let started_step = |name: &str| {
        let (step, release_id) = step(name);
        Event::StepStarted {
            release_id,
            step,
            attempt: 1,
        }
    };
    let finished = |name: &str, outcome| {
        let (step, release_id) = step(name);
        Event::StepFinished {
            release_id,
            step,
            outcome,
            message: None,
        }
    };
    let (_dir, journal) = journal(vec![
        seen("v1", "v2", "api-1", false),
        started("api-1"),
        started_step("warm"),
        finished("warm", StepOutcome::Failed),
        // The retry of warm, cut short by a shutdown.
        started_step("warm"),
        finished("warm", StepOutcome::Interrupted),
        started_step("notes"),
        finished("notes", StepOutcome::TimedOut),
    ]);
    let unfinished = recover(&journal, &target("15m"), SystemTime::now())
        .unfinished
        .expect("unfinished");
    assert_eq!(unfinished.failed_steps, vec!["notes".to_owned()]);
    assert_eq!(unfinished.cut_steps, vec!["warm".to_owned()]);
    assert!(unfinished.open_steps.is_empty());
}

#[tokio::test]
async fn closing_an_unfinished_rollback_records_the_interruption() {
    let (_dir, journal) = journal(vec![
        seen("v1", "v2", "api-1", false),
        started("api-1"),
        Event::StepStarted {
            release_id: "api-1".into(),
            step: "deploy".into(),
            attempt: 1,
        },
    ]);
    let unfinished = unfinished_now(&journal, &target("15m")).expect("unfinished");
    close_open_steps(&journal, "api", &unfinished)
        .await
        .expect("journaled");
    let still = unfinished_now(&journal, &target("15m")).expect("still open");
    assert!(still.open_steps.is_empty(), "{still:?}");
    close_rollback(&journal, "api", &unfinished)
        .await
        .expect("journaled");
    assert!(unfinished_now(&journal, &target("15m")).is_none());
    let last = journal
        .records()
        .into_iter()
        .rev()
        .find(|r| r.target.as_deref() == Some("api"));
    assert!(matches!(
        last.map(|r| r.event),
        Some(Event::RollbackFinished { outcome, .. }) if outcome == "interrupted"
    ));
}

#[test]
fn a_closed_bake_window_is_not_resumed_but_the_version_is_known() {
    let (_dir, journal) = journal(vec![
        seen("v1", "v2", "api-1", false),
        Event::TimeToFixSet {
            time_to_fix: Some("20m".into()),
        },
    ]);
    let later = SystemTime::now() + Duration::from_secs(3600);
    let memory = recover(&journal, &target("15m"), later);
    assert!(memory.open.is_none());
    assert_eq!(memory.tracker.current(), Some("v2"));
    assert_eq!(memory.time_to_fix, Some(Duration::from_secs(20 * 60)));
    assert!(memory.last_rollback_at.is_none());
}

#[test]
fn an_empty_journal_knows_nothing() {
    let (_dir, journal) = journal(Vec::new());
    let memory = recover(&journal, &target("15m"), SystemTime::now());
    assert!(memory.open.is_none() && memory.unfinished.is_none());
    assert_eq!(memory.tracker.current(), None);
}
