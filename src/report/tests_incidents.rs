//! Which releases are incidents (shadow mode, an unapproved rollback,
//! never rollguard's own), status messages, file names and files.

use super::tests::{Records, assessment, completed, decision, report_of, seen};
use super::*;
use crate::journal::Event;
use crate::model::{Decision, Mode, Severity};
use std::path::Path;

#[test]
fn shadow_mode_and_an_unapproved_rollback_are_incidents_and_healthy_releases_are_not() {
    let mut j = Records::new();
    j.at(0, seen("shop-1", "v1", "v2", false))
        .at(1_000, decision("shop-1", Decision::Healthy, Mode::Shadow))
        .at(3_000, assessment("shop-1", Severity::High))
        .at(3_001, decision("shop-1", Decision::Rollback, Mode::Shadow))
        .at(9_000, seen("shop-3", "v2", "v3", false))
        .at(9_500, decision("shop-3", Decision::Healthy, Mode::Enforce))
        .at(10_000, seen("shop-4", "v3", "v4", false))
        .at(
            11_000,
            decision("shop-4", Decision::ConsiderRollback, Mode::Enforce),
        )
        .at(
            11_001,
            Event::ApprovalRequested {
                release_id: "shop-4".into(),
                expires_at: "2026-12-04T03:42:00Z".into(),
            },
        )
        .at(12_000, seen("shop-5", "v4", "v3", true))
        .at(
            12_500,
            decision("shop-5", Decision::Rollback, Mode::Enforce),
        );
    let found = incidents(&j.records);
    let kinds: Vec<_> = found
        .iter()
        .map(|i| (i.release_id.as_str(), i.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("shop-1", IncidentKind::WouldHaveRolledBack),
            ("shop-4", IncidentKind::Considered)
        ]
    );
    let shadow = status_message(&found[0], None);
    assert_eq!(
        shadow,
        "We identified a problem with the latest release of shop (v2) at 03:12 UTC. Our engineers are looking into it."
    );
    let text = report_of(&j.records[..4], &[]).1;
    assert!(
        text.contains("# Incident: shop v2 would have been rolled back (shadow mode)"),
        "{text}"
    );
    assert!(
        text.contains("Nothing was changed (shadow mode): v2 still runs"),
        "{text}"
    );
    assert!(!text.contains("## Pipeline"), "{text}");
    let considered = report_of(&j.records[6..10], &[]).1;
    assert!(
        considered.contains("| Approval requested | until 2026-12-04T03:42:00Z |"),
        "{considered}"
    );
    assert!(
        considered.contains("Approve it (`rollguard approve shop`)"),
        "{considered}"
    );
    assert!(incidents(&j.records[4..6]).is_empty());
    // Shadow mode asks nobody: it says it would have.
    let mut shadow = Records::new();
    shadow.at(0, seen("shop-6", "v1", "v2", false)).at(
        1_000,
        decision("shop-6", Decision::ConsiderRollback, Mode::Shadow),
    );
    let text = report_of(&shadow.records, &[]).1;
    assert!(
        text.contains("would have asked for approval to roll back; nothing was changed"),
        "{text}"
    );
    assert!(
        text.contains("Nothing was changed (shadow mode): v2 still runs"),
        "{text}"
    );
    assert!(!text.contains("rollguard approve"), "{text}");
}

#[test]
fn a_target_s_template_makes_the_status_message() {
    let incident = incidents(&completed()).remove(0);
    let message = status_message(
        &incident,
        Some(
            "{{target}}: {{version}} → {{previous_version}} ({{outcome}}), found {{date}} {{detected_at}}, back {{restored_at}} [{{release_id}}]",
        ),
    );
    assert_eq!(
        message,
        "shop: v2 → v1 (completed), found 2026-12-04 03:12 UTC, back 03:12 UTC [shop-1]"
    );
    // An unknown variable (a newer file) gives the built-in message.
    assert!(status_message(&incident, Some("{{mood}}")).starts_with("We identified"));
    let unverified: Vec<Record> = completed()
        .into_iter()
        .map(|mut r| {
            if let Event::RollbackFinished { outcome, .. } = &mut r.event {
                *outcome = "unverified".into();
            }
            r
        })
        .collect();
    let incident = incidents(&unverified).remove(0);
    assert!(
        status_message(&incident, None)
            .ends_with("We are still confirming that the service is back to normal."),
    );
}

#[test]
fn file_names_say_target_time_and_release() {
    let incident = incidents(&completed()).remove(0);
    assert_eq!(file_name(&incident), "shop-20261204T031200Z-shop-1.md");
    let odd = Incident {
        release_id: "../x/y".into(),
        ..incident
    };
    assert_eq!(file_name(&odd), "shop-20261204T031200Z-.._x_y.md");
}

#[test]
fn a_report_file_is_replaced_by_its_own_incident_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target: TargetConfig = toml::from_str(
        "name = \"shop\"\nrelease = { kind = \"symlink\", path = \"/srv/current\" }\n",
    )
    .expect("target");
    let records = completed();
    let now = SystemTime::now();
    let written =
        write_for_release(dir.path(), &records, &target, "shop-1", now).expect("incident");
    let path = written.file.expect("written");
    assert_eq!(
        path,
        dir.path().join("reports/shop-20261204T031200Z-shop-1.md")
    );
    let first = std::fs::read_to_string(&path).expect("reads");
    assert!(first.contains("# Incident: shop v2 rolled back"));
    assert!(written.status_message.starts_with("We identified"));
    // Healthy or rollguard's own: nothing written.
    assert!(write_for_release(dir.path(), &records, &target, "shop-2", now).is_none());
    // A second write of the same incident replaces its file; nothing else
    // is in the directory (no temporary file left behind).
    let written =
        write_for_release(dir.path(), &records[..12], &target, "shop-1", now).expect("incident");
    assert_eq!(written.file.expect("written"), path);
    let entries: Vec<_> = std::fs::read_dir(dir.path().join("reports"))
        .expect("lists")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_ne!(std::fs::read_to_string(&path).expect("reads"), first);
}

#[test]
fn the_report_command_picks_by_target_and_release_and_says_when_there_is_nothing() {
    let now = SystemTime::now();
    let records = completed();
    let query = |target, release, list| Query {
        target,
        release,
        list,
    };
    let latest = select(&records, &[], &query(Some("shop"), None, false), now).expect("report");
    assert!(
        latest.starts_with("# Incident: shop v2 rolled back"),
        "{latest}"
    );
    let by_id = select(&records, &[], &query(None, Some("shop-1"), false), now).expect("report");
    assert_eq!(by_id, latest);
    let listed = select(&records, &[], &query(None, None, true), now).expect("list");
    assert_eq!(
        listed,
        "2026-12-04 03:12:00  shop  shop-1  completed  v2 → v1  reports/shop-20261204T031200Z-shop-1.md\n"
    );
    assert_eq!(
        select(&records, &[], &query(Some("cart"), None, false), now),
        Err(SelectError::UnknownTarget("cart".into()))
    );
    let Err(SelectError::UnknownRelease(id, why)) =
        select(&records, &[], &query(None, Some("shop-2"), false), now)
    else {
        panic!("shop-2 is rollguard's own release, not an incident");
    };
    assert_eq!(id, "shop-2");
    assert!(why.contains("not rolled back"), "{why}");
    assert!(matches!(
        select(&records, &[], &query(Some("shop"), Some("shop-9"), false), now),
        Err(SelectError::UnknownRelease(_, why)) if why.is_empty()
    ));
    let healthy = &records[..3];
    assert_eq!(
        select(healthy, &[], &query(Some("shop"), None, false), now).expect("text"),
        "No incident of shop in the journal: no rollback ran, and no decision called for one.\n"
    );
    assert_eq!(
        select(healthy, &[], &query(None, None, true), now).expect("text"),
        "No incidents of any target in the journal.\n"
    );
}

#[test]
fn a_rollback_still_running_is_in_progress() {
    let records = completed();
    let running = &records[..10];
    let incident = incidents(running).remove(0);
    assert_eq!(incident.outcome_word(), "in_progress");
    assert_eq!(incident.restored_at(), None);
    assert_eq!(
        status_message(&incident, None),
        "We identified a problem with the latest release of shop (v2) at 03:12 UTC and are rolling it back to v1."
    );
    let text = report_of(running, &[]).1;
    assert!(
        text.contains("- The rollback has not finished: watch it"),
        "{text}"
    );
    assert!(!text.contains("Rollback took"), "{text}");
}

/// Journals `records`' events about `shop` into a journal in `dir`.
fn journal_in(dir: &Path, records: &[Record]) -> Journal {
    let (journal, _) = Journal::open(dir).expect("opens");
    for record in records {
        journal
            .append(record.target.as_deref(), record.event.clone())
            .expect("appends");
    }
    journal
}

fn target() -> TargetConfig {
    toml::from_str(
        "name = \"shop\"\nrelease = { kind = \"symlink\", path = \"/srv/current\" }\nstatus_message = \"{{target}}: {{outcome}}\"\n",
    )
    .expect("target")
}

fn reports_counted(metrics: &Metrics, result: &str) -> u64 {
    metrics
        .reports
        .get_or_create(&ResultLabels {
            result: result.to_owned(),
        })
        .get()
}

#[tokio::test]
async fn the_daemon_s_hook_writes_counts_and_gives_the_status_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = journal_in(dir.path(), &completed());
    let metrics = Metrics::new();
    let message = on_incident(&journal, &metrics, &target(), "shop-1").await;
    assert_eq!(message.as_deref(), Some("shop: completed"));
    assert_eq!(reports_counted(&metrics, "ok"), 1);
    let files = std::fs::read_dir(dir.path().join("reports"))
        .expect("reports dir")
        .count();
    assert_eq!(files, 1);
    // Not an incident: nothing written, nothing counted.
    assert_eq!(
        on_incident(&journal, &metrics, &target(), "shop-2").await,
        None
    );
    assert_eq!(reports_counted(&metrics, "ok"), 1);
    assert_eq!(reports_counted(&metrics, "error"), 0);
}

#[tokio::test]
async fn a_report_that_cannot_be_written_is_counted_and_the_message_still_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = journal_in(dir.path(), &completed());
    std::fs::write(
        dir.path().join("reports"),
        "a file where the directory goes",
    )
    .expect("writes");
    let metrics = Metrics::new();
    let message = on_incident(&journal, &metrics, &target(), "shop-1").await;
    assert_eq!(message.as_deref(), Some("shop: completed"));
    assert_eq!(reports_counted(&metrics, "error"), 1);
    assert_eq!(reports_counted(&metrics, "ok"), 0);
}

#[test]
fn evidence_is_kept_for_the_decision_acted_on_and_a_report_reads_from_its_release_on() {
    let incident = incidents(&completed()).remove(0);
    let kept: Vec<bool> = incident
        .decisions
        .iter()
        .map(|d| d.assessment.is_some())
        .collect();
    assert_eq!(kept, [false, true]);
    assert_eq!(incident.acted_on, Some(1));

    // A second bad release after the first: its report starts at its own
    // sighting, not at the first record of the journal.
    let mut records = completed();
    let mut later = Records::new();
    later.at(30_000, seen("shop-3", "v1", "v5", false)).at(
        31_000,
        decision("shop-3", Decision::ConsiderRollback, Mode::Enforce),
    );
    let offset = records.len() as u64;
    let first = offset + 1;
    for mut record in later.records {
        record.seq += offset;
        records.push(record);
    }
    // Only its own part of the journal is read.
    assert_eq!(since_release(&records, "shop-3")[0].seq, first);
    assert_eq!(since_release(&records, "shop-1").len(), records.len());
    assert_eq!(since_release(&records, "shop-9").len(), records.len());
    let dir = tempfile::tempdir().expect("tempdir");
    let written = write_for_release(dir.path(), &records, &target(), "shop-3", SystemTime::now())
        .expect("an incident");
    let text = std::fs::read_to_string(written.file.expect("written")).expect("reads");
    assert!(
        text.contains(&format!("from journal records {first} to {}", first + 1)),
        "{text}"
    );
    assert!(
        text.starts_with("# Incident: shop v5 rollback considered"),
        "{text}"
    );
    assert_eq!(written.status_message, "shop: considered");
}
