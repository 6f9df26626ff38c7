//! A compacted journal tells a restart exactly what the whole one did
//! (`journal/compact.rs`), and the reports within the retention are the
//! same: checked on generated histories of several targets.

use super::recovery::*;
use crate::config::TargetConfig;
use crate::exec::ProcessGroup;
use crate::journal::{Event, Journal, Record};
use crate::model::{Decision, Mode, Severity, StepOutcome};
use std::path::Path;
use std::time::{Duration, SystemTime};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const TARGETS: [&str; 5] = ["api", "web", "db", "cache", "queue"];

fn target(name: &str) -> TargetConfig {
    let text = format!(
        "[[target]]\nname = \"{name}\"\nbake_window = \"2h\"\n[target.release]\nkind = \"announce\"\n"
    );
    crate::config::parse(&text, Path::new("t.toml"))
        .expect("valid")
        .targets
        .remove(0)
}

/// A small deterministic random source.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Per target, the release and rollback in progress while generating.
#[derive(Default, Clone)]
struct Gen {
    release: u32,
    version: u32,
    rollback: Option<String>,
}

/// `count` records over the 90 days before `end`, about every target and
/// the daemon: releases (some rollguard's own), assessments, decisions,
/// rollbacks with steps, processes and every outcome, some left unfinished,
/// pauses and time-to-fix changes.
fn history(seed: u64, count: u64, end: SystemTime) -> Vec<Record> {
    let mut rng = Lcg(seed);
    let mut state = vec![Gen::default(); TARGETS.len()];
    let start = end - 90 * DAY;
    let step = (90 * DAY).as_secs() / count;
    let mut records = Vec::new();
    for seq in 1..=count {
        let at = start + Duration::from_secs(seq * step);
        let t = rng.below(TARGETS.len() as u64 + 1) as usize;
        let (target, event) = if t == TARGETS.len() {
            let event = match rng.below(3) {
                0 => Event::DaemonStarted {
                    version: "0.1.0".into(),
                },
                1 => Event::PauseChanged {
                    paused: rng.below(2) == 0,
                },
                _ => Event::DaemonStopped,
            };
            (None, event)
        } else {
            let g = &mut state[t];
            let id = format!("{}-{}", TARGETS[t], g.release);
            let event = match (rng.below(12), &g.rollback) {
                (0 | 1, _) => {
                    g.release += 1;
                    g.version += 1;
                    Event::ReleaseSeen {
                        from: Some(format!("v{}", g.version - 1)),
                        to: format!("v{}", g.version),
                        source: "announce".into(),
                        by_rollguard: rng.below(4) == 0,
                        release_id: format!("{}-{}", TARGETS[t], g.release),
                    }
                }
                (2, None) => {
                    g.rollback = Some(id.clone());
                    let trigger = ["automatic", "manual", "approved"][rng.below(3) as usize];
                    Event::RollbackStarted {
                        release_id: id,
                        from: format!("v{}", g.version),
                        to: format!("v{}", g.version.saturating_sub(1)),
                        trigger: trigger.into(),
                    }
                }
                (3, Some(rb)) => Event::StepStarted {
                    release_id: rb.clone(),
                    step: format!("s{}", rng.below(3)),
                    attempt: 1,
                },
                (4, Some(rb)) => Event::StepProcess {
                    release_id: rb.clone(),
                    step: format!("s{}", rng.below(3)),
                    group: ProcessGroup {
                        pgid: 100 + rng.below(100) as i32,
                        started: Some(1),
                        boot_id: None,
                    },
                },
                (5, Some(rb)) => Event::StepFinished {
                    release_id: rb.clone(),
                    step: format!("s{}", rng.below(3)),
                    outcome: [
                        StepOutcome::Ok,
                        StepOutcome::Failed,
                        StepOutcome::TimedOut,
                        StepOutcome::Interrupted,
                    ][rng.below(4) as usize],
                    message: None,
                },
                (6, Some(rb)) => {
                    let release_id = rb.clone();
                    g.rollback = None;
                    let outcome = ["ok", "failed", "aborted", "interrupted"][rng.below(4) as usize];
                    Event::RollbackFinished {
                        release_id,
                        outcome: outcome.into(),
                    }
                }
                (7, _) => Event::TimeToFixSet {
                    time_to_fix: (rng.below(3) > 0).then(|| format!("{}m", rng.below(90) + 1)),
                },
                (8, _) => Event::PauseChanged {
                    paused: rng.below(2) == 0,
                },
                (9, _) => Event::DecisionMade {
                    release_id: id,
                    decision: Decision::Rollback,
                    severity: Severity::High,
                    rule: None,
                    reasons: vec!["errors".into()],
                    mode: if rng.below(2) == 0 {
                        Mode::Shadow
                    } else {
                        Mode::Enforce
                    },
                },
                _ => Event::Assessment {
                    release_id: id,
                    severity: Severity::Low,
                    evidence: serde_json::json!({"n": seq}),
                },
            };
            (Some(TARGETS[t].to_owned()), event)
        };
        records.push(Record {
            seq,
            at: humantime::format_rfc3339_millis(at).to_string(),
            target,
            event,
        });
    }
    records
}

fn write_journal(dir: &Path, records: &[Record]) {
    let mut bytes = Vec::new();
    for record in records {
        bytes.extend(crate::journal::encode_line(record).expect("encodes"));
    }
    std::fs::write(dir.join("journal.jsonl"), bytes).expect("writes");
}

/// What a restart learns about every target and the pause switches, as
/// text (a `TargetMemory` has no `PartialEq`).
fn restart_view(journal: &Journal, now: SystemTime) -> Vec<String> {
    let configs: Vec<TargetConfig> = TARGETS.iter().map(|t| target(t)).collect();
    let mut view: Vec<String> = configs
        .iter()
        .map(|t| format!("{:?}", recover(journal, t, now)))
        .collect();
    let mut pauses = std::collections::BTreeMap::new();
    journal.for_each_record(|r| {
        if let Event::PauseChanged { paused } = r.event {
            pauses.insert(r.target.clone(), paused);
        }
    });
    view.push(format!("{pauses:?}"));
    view
}

/// The incidents whose release was seen at or after `since`.
fn incidents_since(journal: &Journal, since: SystemTime) -> Vec<crate::report::Incident> {
    crate::report::incidents(&journal.records())
        .into_iter()
        .filter(|i| i.released_at.is_some_and(|at| at >= since))
        .collect()
}

#[test]
fn a_compacted_journal_recovers_exactly_like_the_whole_one() {
    let end = SystemTime::now();
    let cutoff = end - 30 * DAY;
    for seed in 1..=12 {
        let dir = tempfile::tempdir().expect("tempdir");
        write_journal(dir.path(), &history(seed, 3_000, end));
        let (journal, _) = Journal::open(dir.path()).expect("opens");
        // Several moments: the last records' bake windows open and closed.
        let nows = [end, end + Duration::from_secs(30 * 60), end + DAY];
        let before: Vec<Vec<String>> = nows.iter().map(|&n| restart_view(&journal, n)).collect();
        let incidents = incidents_since(&journal, cutoff);
        let last_seq = journal.records().last().map(|r| r.seq).unwrap_or(0);

        let done = journal
            .compact(cutoff, 1)
            .expect("compacts")
            .expect("worth it");
        assert!(done.dropped > 1_000, "seed {seed}: {done:?}");
        assert!(done.bytes_after < done.bytes_before);
        assert!(!dir.path().join("journal.jsonl.compacting").exists());
        for (now, expected) in nows.iter().zip(&before) {
            assert_eq!(&restart_view(&journal, *now), expected, "seed {seed}");
        }
        assert_eq!(incidents_since(&journal, cutoff), incidents, "seed {seed}");
        drop(journal);

        // The same from the file, and seqs go on after the last one used.
        let (journal, recovery) = Journal::open(dir.path()).expect("reopens");
        assert_eq!(recovery.last_seq, last_seq + 1, "the compacted record");
        assert_eq!(recovery.records, done.kept + 1);
        for (now, expected) in nows.iter().zip(&before) {
            assert_eq!(&restart_view(&journal, *now), expected, "seed {seed}");
        }
        assert_eq!(incidents_since(&journal, cutoff), incidents, "seed {seed}");
        let next = journal.append(None, Event::DaemonStopped).expect("appends");
        assert_eq!(next.seq, last_seq + 2);
        // Nothing more to drop until more records age.
        assert_eq!(journal.compact(cutoff, 1).expect("compacts"), None);
    }
}

#[test]
fn an_unfinished_rollback_older_than_the_retention_is_kept_whole() {
    let end = SystemTime::now();
    let old = end - 60 * DAY;
    let at = |days: u32| humantime::format_rfc3339_millis(old + DAY * days).to_string();
    let events = [
        Event::ReleaseSeen {
            from: Some("v1".into()),
            to: "v2".into(),
            source: "announce".into(),
            by_rollguard: false,
            release_id: "api-1".into(),
        },
        Event::RollbackStarted {
            release_id: "api-1".into(),
            from: "v2".into(),
            to: "v1".into(),
            trigger: "automatic".into(),
        },
        Event::StepStarted {
            release_id: "api-1".into(),
            step: "deploy".into(),
            attempt: 1,
        },
    ];
    let mut records: Vec<Record> = (1..=200)
        .map(|seq| Record {
            seq,
            at: at(0),
            target: Some("api".into()),
            event: Event::Assessment {
                release_id: "api-0".into(),
                severity: Severity::None,
                evidence: serde_json::Value::Null,
            },
        })
        .collect();
    for (i, event) in events.into_iter().enumerate() {
        records.push(Record {
            seq: 201 + i as u64,
            at: at(1),
            target: Some("api".into()),
            event,
        });
    }
    let dir = tempfile::tempdir().expect("tempdir");
    write_journal(dir.path(), &records);
    let (journal, _) = Journal::open(dir.path()).expect("opens");
    let done = journal
        .compact(end - 30 * DAY, 1)
        .expect("compacts")
        .expect("worth it");
    assert_eq!((done.dropped, done.kept), (200, 3));
    let unfinished = unfinished_now(&journal, &target("api")).expect("still unfinished");
    assert_eq!(unfinished.open_steps, ["deploy"]);
    assert!(unfinished.release_at.is_some());
}

#[test]
fn one_pass_for_all_targets_finds_what_one_pass_per_target_does() {
    let end = SystemTime::now();
    let dir = tempfile::tempdir().expect("tempdir");
    write_journal(dir.path(), &history(7, 2_000, end));
    let (journal, _) = Journal::open(dir.path()).expect("opens");
    let configs: Vec<TargetConfig> = TARGETS
        .iter()
        .map(|t| target(t))
        .chain([target("never-seen")])
        .collect();
    let refs: Vec<&TargetConfig> = configs.iter().collect();
    let all = recover_all(&journal, &refs, end);
    assert_eq!(all.len(), configs.len());
    for config in &configs {
        assert_eq!(
            format!("{:?}", all[&config.name]),
            format!("{:?}", recover(&journal, config, end)),
            "{}",
            config.name
        );
    }
}
