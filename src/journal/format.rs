//! What a journal line holds and how the file is read back: the record
//! types, the `<crc32> <json>\n` line format, and the scan that sorts the
//! lines of a file into records, skipped lines and a torn tail. No I/O here,
//! so every damaged-file case is a plain unit test.

use crate::model::{Decision, Mode, Severity, StepOutcome};
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// One journaled event. Serialised internally tagged by `kind`, snake_case,
/// so a line reads `{"kind":"decision_made", ...}` and greps well. Adding a
/// variant is forward compatible for readers of this version only in one
/// direction: an older rollguard skips a kind it does not know (see
/// [`Recovery::skipped_unknown`](super::Recovery::skipped_unknown)).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The daemon started; marks the boundary between two runs when a
    /// restart reads the journal.
    DaemonStarted {
        /// rollguard's version, to tell which code wrote what follows.
        version: String,
    },
    /// The daemon stopped cleanly; its absence before the next
    /// `daemon_started` means the previous run crashed or was killed.
    DaemonStopped,
    /// A configuration reload was tried.
    ConfigReloaded {
        /// Whether the new file was applied.
        ok: bool,
        /// Errors, when it was not.
        message: Option<String>,
    },
    /// A release source saw a target change version; opens a bake window.
    ReleaseSeen {
        /// The version before, when the source knows it.
        from: Option<String>,
        /// The version now running.
        to: String,
        /// Which source saw it (`kubernetes`, `version_url`, `announce`...).
        source: String,
        /// Whether rollguard made this release itself (a rollback); such a
        /// release is never rolled back again automatically.
        by_rollguard: bool,
        /// rollguard's id for the release; every later event about it
        /// carries the same id.
        release_id: String,
    },
    /// The judge assessed a release; the evidence is what an incident
    /// report quotes.
    Assessment {
        /// The release assessed.
        release_id: String,
        /// How bad the release is.
        severity: Severity,
        /// Values, baselines, thresholds and statistics behind the severity.
        evidence: serde_json::Value,
    },
    /// The policy decided what to do about a release. Journaled before the
    /// daemon acts on it, so a restart knows the decision was taken.
    DecisionMade {
        /// The release decided about.
        release_id: String,
        /// What the decision matrix said.
        decision: Decision,
        /// The severity it was based on.
        severity: Severity,
        /// The policy rule that matched, if one did.
        rule: Option<String>,
        /// Why, in words for a human.
        reasons: Vec<String>,
        /// The target's mode at the time: in `shadow` nothing was run.
        mode: Mode,
    },
    /// A rollback step began; a start without a finish means the daemon
    /// died during the step.
    StepStarted {
        /// The release being rolled back.
        release_id: String,
        /// The step's name in the pipeline.
        step: String,
        /// Which attempt this is, from 1.
        attempt: u32,
    },
    /// A rollback step's program started (`command` steps): its process
    /// group, so that a restart after a crash stops what the dead daemon
    /// left running of it instead of leaving an orphan.
    StepProcess {
        /// The release being rolled back.
        release_id: String,
        /// The step's name in the pipeline.
        step: String,
        /// The program's process group and what identifies it.
        group: crate::exec::ProcessGroup,
    },
    /// A rollback step ended.
    StepFinished {
        /// The release being rolled back.
        release_id: String,
        /// The step's name in the pipeline.
        step: String,
        /// How it ended.
        outcome: StepOutcome,
        /// Error or output worth keeping, if any.
        message: Option<String>,
    },
    /// The whole rollback pipeline ended; what a restart checks so it never
    /// rolls back twice.
    RollbackFinished {
        /// The release rolled back.
        release_id: String,
        /// How it ended (`ok`, `aborted`, ...).
        outcome: String,
    },
    /// A notifier was called.
    NotificationSent {
        /// The notifier's name in the config.
        notifier: String,
        /// What the notification was about.
        event: String,
        /// Whether it was delivered in the end.
        ok: bool,
        /// How many tries it took (or were spent).
        attempts: u32,
    },
    /// rollguard is about to run a rollback pipeline. Synced before the
    /// first step: a restart that finds this without a `rollback_finished`
    /// knows a rollback was under way and never starts it a second time.
    RollbackStarted {
        /// The release being rolled back.
        release_id: String,
        /// The version being rolled back.
        from: String,
        /// The version being brought back.
        to: String,
        /// `automatic`, `approved` or `manual` (`rollguard rollback`).
        trigger: String,
    },
    /// A human's approval is awaited before a rollback.
    ApprovalRequested {
        /// The release the approval is about.
        release_id: String,
        /// When the request lapses (the end of the bake window), RFC 3339.
        expires_at: String,
    },
    /// A human approved the rollback of a release.
    Approved {
        /// The release approved for rollback.
        release_id: String,
    },
    /// Automatic action was paused or resumed (for the record's target, or
    /// for every target when the record has none).
    PauseChanged {
        /// Whether automatic action is now paused.
        paused: bool,
    },
    /// An operator changed the time-to-fix estimate of a target.
    TimeToFixSet {
        /// The new estimate (like "20m"); `None` returns to the configured one.
        time_to_fix: Option<String>,
    },
    /// A bake window closed.
    BakeFinished {
        /// The release that was baked.
        release_id: String,
        /// The last decision of the window.
        decision: Decision,
    },
    /// The journal was compacted: records older than the retention that no
    /// restart and no report within the retention needs were dropped. The
    /// last record of a compacted file, so that its seq stays the highest
    /// ever used.
    Compacted {
        /// How many records were dropped.
        dropped: u64,
        /// How many were kept (this one not counted).
        kept: u64,
        /// The retention's start (RFC 3339): only records written before it
        /// could be dropped.
        before: String,
    },
}

/// One line of the journal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// Position in the journal, from 1, never reused: a client pages with
    /// [`Since::Seq`](super::Since::Seq) and misses nothing.
    pub seq: u64,
    /// When it was written, RFC 3339 UTC with milliseconds (wall clock, so
    /// it may step backwards; order by `seq`, not by `at`).
    pub at: String,
    /// The target it is about, if any; daemon events have none.
    pub target: Option<String>,
    /// What happened.
    pub event: Event,
}

impl Record {
    /// `at` as a time; `None` if the line was edited into something that is
    /// not RFC 3339.
    pub fn at_time(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339(&self.at).ok()
    }
}

/// A part of the file that could not be read as records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Byte offset where the unreadable part starts (the end of the last
    /// good line).
    pub offset: u64,
    /// How many bytes were unreadable, up to the end of the file.
    pub bytes: u64,
    /// What was wrong with the first unreadable line.
    pub reason: String,
}

/// Encodes a record as one full line, ready for a single `write_all`.
pub(crate) fn encode_line(record: &Record) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(record)?;
    let mut line = format!("{:08x} ", crc32fast::hash(&json)).into_bytes();
    line.extend_from_slice(&json);
    line.push(b'\n');
    Ok(line)
}

/// What reading a journal file found.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// The readable records, in seq order.
    pub records: Vec<Record>,
    /// The highest seq seen in an intact line, readable or not.
    pub last_seq: u64,
    /// Length of the file up to the end of the last intact line.
    pub good_len: u64,
    /// Intact lines (checksum right) this version cannot read.
    pub skipped_unknown: usize,
    /// Damaged lines followed by intact ones, skipped but left in place.
    pub skipped_corrupt: usize,
    /// Damaged bytes after the last intact line.
    pub torn_tail: Option<TornTail>,
}

/// One line, sorted.
enum Line {
    /// Checksum and record are fine.
    Record(Record),
    /// Checksum is fine (the write completed) but this version cannot read
    /// it; its seq, if one can be found, is still taken.
    Unknown { seq: Option<u64>, reason: String },
    /// The line is damaged.
    Damaged(String),
}

fn parse_line(line: &[u8]) -> Line {
    let (Some(hex), Some(b' '), Some(json)) = (line.get(..8), line.get(8), line.get(9..)) else {
        return Line::Damaged("line too short for a checksum".into());
    };
    let stored = std::str::from_utf8(hex)
        .ok()
        .filter(|h| h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .and_then(|h| u32::from_str_radix(h, 16).ok());
    let Some(stored) = stored else {
        return Line::Damaged("no checksum at the start of the line".into());
    };
    if crc32fast::hash(json) != stored {
        return Line::Damaged("checksum mismatch".into());
    }
    match serde_json::from_slice::<Record>(json) {
        Ok(record) => Line::Record(record),
        Err(error) => {
            let value = serde_json::from_slice::<serde_json::Value>(json).ok();
            let seq = value.as_ref().and_then(|v| v.get("seq")?.as_u64());
            let kind = value
                .as_ref()
                .and_then(|v| v.pointer("/event/kind")?.as_str());
            let reason = match kind {
                Some(kind) => format!("cannot read event kind {kind:?}: {error}"),
                None => format!("cannot read record: {error}"),
            };
            Line::Unknown { seq, reason }
        }
    }
}

/// Sorts the bytes of a journal file into records and damage. A damaged
/// line followed by an intact one is corruption in the middle: skipped,
/// counted, warned about, and left in the file so no good record after it
/// is lost. Damage after the last intact line is a torn tail: the caller
/// saves and truncates it.
pub(super) fn scan(bytes: &[u8]) -> Scan {
    let mut scan = Scan::default();
    // Damaged lines not yet known to be in the middle: (offset, length, reason).
    let mut damaged: Vec<(u64, u64, String)> = Vec::new();
    let mut offset = 0usize;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let (line, len) = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => (parse_line(&rest[..end]), end + 1),
            None => (Line::Damaged("last line has no newline".into()), rest.len()),
        };
        let at = offset as u64;
        offset += len;
        let seq = match line {
            Line::Damaged(reason) => {
                damaged.push((at, len as u64, reason));
                continue;
            }
            Line::Unknown { seq, reason } => {
                tracing::warn!(offset = at, seq, %reason, "Skipping a journal line this version cannot read");
                scan.skipped_unknown += 1;
                seq
            }
            Line::Record(record) if record.seq <= scan.last_seq => {
                tracing::warn!(
                    offset = at,
                    seq = record.seq,
                    last_seq = scan.last_seq,
                    "Skipping a journal record whose seq is out of order"
                );
                scan.skipped_corrupt += 1;
                None
            }
            Line::Record(record) => {
                let seq = record.seq;
                scan.records.push(record);
                Some(seq)
            }
        };
        scan.last_seq = scan.last_seq.max(seq.unwrap_or(0));
        scan.good_len = offset as u64;
        for (offset, bytes, reason) in damaged.drain(..) {
            tracing::warn!(offset, bytes, %reason, "Skipping a corrupt journal line; later records are kept");
            scan.skipped_corrupt += 1;
        }
    }
    if let Some((_, _, reason)) = damaged.into_iter().next() {
        scan.torn_tail = Some(TornTail {
            offset: scan.good_len,
            bytes: bytes.len() as u64 - scan.good_len,
            reason,
        });
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, target: Option<&str>) -> Record {
        Record {
            seq,
            at: "2026-01-02T03:04:05.678Z".into(),
            target: target.map(str::to_owned),
            event: Event::StepStarted {
                release_id: "r1".into(),
                step: "rollback".into(),
                attempt: 1,
            },
        }
    }

    fn line(seq: u64) -> Vec<u8> {
        encode_line(&record(seq, Some("web"))).expect("encodes")
    }

    #[test]
    fn a_line_is_checksum_space_json_newline() {
        let line = line(1);
        let text = std::str::from_utf8(&line).expect("utf-8");
        assert!(text.ends_with('\n'));
        assert_eq!(text.matches('\n').count(), 1);
        let (hex, json) = text.trim_end().split_once(' ').expect("space");
        assert_eq!(hex, format!("{:08x}", crc32fast::hash(json.as_bytes())));
        assert!(json.contains(r#""kind":"step_started""#));
    }

    #[test]
    fn every_event_round_trips() {
        let events = vec![
            Event::DaemonStarted {
                version: "0.1.0".into(),
            },
            Event::DaemonStopped,
            Event::ConfigReloaded {
                ok: false,
                message: Some("bad\nfile".into()),
            },
            Event::ReleaseSeen {
                from: None,
                to: "v2".into(),
                source: "announce".into(),
                by_rollguard: false,
                release_id: "r1".into(),
            },
            Event::Assessment {
                release_id: "r1".into(),
                severity: Severity::High,
                evidence: serde_json::json!({"error_rate": 0.2}),
            },
            Event::DecisionMade {
                release_id: "r1".into(),
                decision: Decision::Rollback,
                severity: Severity::Critical,
                rule: Some("critical".into()),
                reasons: vec!["health down".into()],
                mode: Mode::Enforce,
            },
            Event::StepFinished {
                release_id: "r1".into(),
                step: "kubectl".into(),
                outcome: StepOutcome::TimedOut,
                message: None,
            },
            Event::RollbackFinished {
                release_id: "r1".into(),
                outcome: "ok".into(),
            },
            Event::StepProcess {
                release_id: "r1".into(),
                step: "deploy".into(),
                group: crate::exec::ProcessGroup {
                    pgid: 4242,
                    started: Some(17),
                    boot_id: None,
                },
            },
            Event::NotificationSent {
                notifier: "slack".into(),
                event: "rollback".into(),
                ok: true,
                attempts: 2,
            },
            Event::Compacted {
                dropped: 10,
                kept: 2,
                before: "2026-01-01T00:00:00.000Z".into(),
            },
        ];
        let mut bytes = Vec::new();
        for (i, event) in events.iter().enumerate() {
            let r = Record {
                event: event.clone(),
                ..record(i as u64 + 1, None)
            };
            bytes.extend(encode_line(&r).expect("encodes"));
        }
        let scan = scan(&bytes);
        assert_eq!(
            scan.records.iter().map(|r| &r.event).collect::<Vec<_>>(),
            events.iter().collect::<Vec<_>>()
        );
        assert_eq!(scan.good_len, bytes.len() as u64);
        assert!(scan.torn_tail.is_none());
    }

    #[test]
    fn damage_after_the_last_good_line_is_a_torn_tail() {
        let good = [line(1), line(2)].concat();
        let mut bad_checksum = line(3);
        bad_checksum[0] = if bad_checksum[0] == b'0' { b'1' } else { b'0' };
        let full = line(3);
        let cases: [(&[u8], &str); 4] = [
            (&full[..full.len() / 2], "no newline"),
            (&full[..full.len() - 1], "no newline"),
            (&bad_checksum, "checksum"),
            (b"garbage\n\0\0\0", "too short"),
        ];
        for (tail, reason) in cases {
            let scan = scan(&[&good[..], tail].concat());
            assert_eq!(scan.records.len(), 2);
            assert_eq!(scan.last_seq, 2);
            let torn = scan.torn_tail.expect("torn tail");
            assert_eq!(
                (torn.offset, torn.bytes),
                (good.len() as u64, tail.len() as u64)
            );
            assert!(
                torn.reason.contains(reason),
                "{} lacks {reason}",
                torn.reason
            );
        }
    }

    #[test]
    fn a_corrupt_middle_line_is_skipped_and_later_lines_kept() {
        let mut middle = line(2);
        middle[20] ^= 0x01;
        let bytes = [line(1), middle, b"\n".to_vec(), line(3)].concat();
        let scan = scan(&bytes);
        assert_eq!(
            scan.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 3]
        );
        assert_eq!(scan.skipped_corrupt, 2);
        assert_eq!(scan.good_len, bytes.len() as u64);
        assert!(scan.torn_tail.is_none());
    }

    #[test]
    fn an_unknown_kind_is_skipped_but_its_seq_is_taken() {
        let json = r#"{"seq":2,"at":"2026-01-02T03:04:05.678Z","target":null,"event":{"kind":"from_the_future"}}"#;
        let unknown = format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes()));
        let scan = scan(&[line(1), unknown.into_bytes()].concat());
        assert_eq!(scan.records.len(), 1);
        assert_eq!(
            (scan.skipped_unknown, scan.skipped_corrupt, scan.last_seq),
            (1, 0, 2)
        );
        assert!(scan.torn_tail.is_none());
    }

    #[test]
    fn an_out_of_order_seq_is_skipped() {
        let scan = scan(&[line(1), line(2), line(2), line(3)].concat());
        assert_eq!(
            scan.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(scan.skipped_corrupt, 1);
    }
}
