//! The journal reader: start-up recovery (`Journal::open`), the read-only
//! reader of `rollguard report`, what a target remembers, and the incident
//! reports written from the records. A real journal is cut at any byte,
//! has bytes flipped and garbage lines put in; it always opens, keeps
//! taking records, and every record appended survives a restart.

use proptest::prelude::*;
use rollguard::config::TargetConfig;
use rollguard::journal::{self, Event, Journal};
use rollguard::model::{Decision, Mode, Severity, StepOutcome};
use std::path::Path;
use std::sync::OnceLock;
use std::time::SystemTime;

/// The target the journal is about.
fn target() -> &'static TargetConfig {
    static TARGET: OnceLock<TargetConfig> = OnceLock::new();
    TARGET.get_or_init(|| {
        let text = "[[target]]\nname = \"api\"\n[target.release]\nkind = \"announce\"\n";
        let mut config = rollguard::config::parse(text, Path::new("t.toml")).expect("config");
        config.targets.remove(0)
    })
}

/// The bytes of a journal that saw two runs: a release, its assessment, a
/// rollback with its steps, a notification, a pause and a compaction.
fn real_journal() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (journal, _) = Journal::open(dir.path()).expect("open");
        let id = "r1".to_owned();
        let api = Some("api");
        let events = [
            (
                None,
                Event::DaemonStarted {
                    version: "0.1.0".to_owned(),
                },
            ),
            (
                api,
                Event::ReleaseSeen {
                    from: Some("1.0".to_owned()),
                    to: "1.1".to_owned(),
                    source: "announce".to_owned(),
                    by_rollguard: false,
                    release_id: id.clone(),
                },
            ),
            (
                api,
                Event::Assessment {
                    release_id: id.clone(),
                    severity: Severity::High,
                    evidence: serde_json::json!({"errors": {"value": 0.2, "baseline": 0.01}}),
                },
            ),
            (
                api,
                Event::DecisionMade {
                    release_id: id.clone(),
                    decision: Decision::Rollback,
                    severity: Severity::High,
                    rule: Some("policy.rule[0]".to_owned()),
                    reasons: vec!["error rate 20x baseline".to_owned()],
                    mode: Mode::Enforce,
                },
            ),
            (
                api,
                Event::RollbackStarted {
                    release_id: id.clone(),
                    from: "1.1".to_owned(),
                    to: "1.0".to_owned(),
                    trigger: "automatic".to_owned(),
                },
            ),
            (
                api,
                Event::StepStarted {
                    release_id: id.clone(),
                    step: "undo".to_owned(),
                    attempt: 1,
                },
            ),
            (
                api,
                Event::StepFinished {
                    release_id: id.clone(),
                    step: "undo".to_owned(),
                    outcome: StepOutcome::Ok,
                    message: None,
                },
            ),
            (
                api,
                Event::NotificationSent {
                    notifier: "ops".to_owned(),
                    event: "rollback_completed".to_owned(),
                    ok: true,
                    attempts: 1,
                },
            ),
            (
                api,
                Event::RollbackFinished {
                    release_id: id.clone(),
                    outcome: "completed".to_owned(),
                },
            ),
            (api, Event::PauseChanged { paused: true }),
            (
                api,
                Event::TimeToFixSet {
                    time_to_fix: Some("20m".to_owned()),
                },
            ),
            (None, Event::DaemonStopped),
            (
                None,
                Event::DaemonStarted {
                    version: "0.1.0".to_owned(),
                },
            ),
            (
                api,
                Event::ReleaseSeen {
                    from: Some("1.0".to_owned()),
                    to: "1.2".to_owned(),
                    source: "announce".to_owned(),
                    by_rollguard: false,
                    release_id: "r2".to_owned(),
                },
            ),
            (
                api,
                Event::RollbackStarted {
                    release_id: "r2".to_owned(),
                    from: "1.2".to_owned(),
                    to: "1.0".to_owned(),
                    trigger: "automatic".to_owned(),
                },
            ),
            (
                api,
                Event::StepStarted {
                    release_id: "r2".to_owned(),
                    step: "undo".to_owned(),
                    attempt: 1,
                },
            ),
        ];
        for (target, event) in events {
            journal.append(target, event).expect("append");
        }
        drop(journal);
        std::fs::read(dir.path().join("journal.jsonl")).expect("read the journal")
    })
}

/// What is done to the bytes of the journal.
#[derive(Debug, Clone)]
enum Damage {
    /// Cut at this byte (modulo the length): a crash mid-write.
    Cut(usize),
    /// XOR this byte with a mask: a bad disk.
    Flip(usize, u8),
    /// Put these bytes and a newline at this byte: a stray writer.
    Garbage(usize, Vec<u8>),
    /// Repeat the line holding this byte: a copy gone wrong.
    Repeat(usize),
}

fn damage() -> impl Strategy<Value = Vec<Damage>> {
    let one = prop_oneof![
        any::<usize>().prop_map(Damage::Cut),
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Damage::Flip(at, mask)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 0..80)
        )
            .prop_map(|(at, bytes)| Damage::Garbage(at, bytes)),
        (any::<usize>(), "\\{\"seq\":[0-9]{1,20},[ -~]{0,60}")
            .prop_map(|(at, line)| Damage::Garbage(at, line.into_bytes())),
        any::<usize>().prop_map(Damage::Repeat),
    ];
    proptest::collection::vec(one, 1..6)
}

fn damaged(bytes: &[u8], damage: &[Damage]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    for d in damage {
        let n = bytes.len().max(1);
        match d {
            Damage::Cut(at) => bytes.truncate(at % n),
            Damage::Flip(at, mask) => {
                if let Some(b) = bytes.get_mut(at % n) {
                    *b ^= mask;
                }
            }
            Damage::Garbage(at, garbage) => {
                let at = (at % n).min(bytes.len());
                let mut line = garbage.clone();
                line.push(b'\n');
                bytes.splice(at..at, line);
            }
            Damage::Repeat(at) => {
                let at = (at % n).min(bytes.len());
                let start = bytes[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let end = bytes[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |i| at + i + 1);
                let line = bytes[start..end].to_vec();
                bytes.splice(start..start, line);
            }
        }
    }
    bytes
}

/// Reads `bytes` as a journal every way the daemon does, then appends.
fn read_everything(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("journal.jsonl"), bytes).expect("write the journal");
    let read_only = journal::read_only(dir.path());
    prop_assert!(read_only.is_ok(), "read_only: {read_only:?}");
    let (journal, _recovery) =
        Journal::open(dir.path()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let records = journal.records();
    let _ = rollguard::watchdog::journal_memory(&journal, target());
    let _ = rollguard::watchdog::journal_memories(
        &journal,
        std::slice::from_ref(target()),
        SystemTime::now(),
    );
    for incident in rollguard::report::incidents(&records) {
        let _ = rollguard::report::report_text(&incident, Some(target()), SystemTime::now());
    }
    let appended = journal.append(Some("api"), Event::DaemonStopped);
    prop_assert!(appended.is_ok(), "append after recovery: {appended:?}");
    drop(journal);
    let (again, _) = Journal::open(dir.path()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(
        again.len(),
        records.len() + 1,
        "a record appended after recovery is lost"
    );
    Ok(())
}

#[test]
fn the_undamaged_journal_reads_back_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("journal.jsonl"), real_journal()).expect("write");
    let (journal, recovery) = Journal::open(dir.path()).expect("open");
    assert_eq!(journal.len(), 16);
    assert!(recovery.torn_tail.is_none());
}

proptest! {
    #[test]
    fn a_damaged_journal_opens_and_keeps_its_records(damage in damage()) {
        read_everything(&damaged(real_journal(), &damage))?;
    }

    #[test]
    fn any_bytes_are_a_journal(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        read_everything(&bytes)?;
    }
}
