//! Compaction: the journal rewritten without the records that are older
//! than the retention and that nothing needs any more, so that start-up
//! time and disk use follow the retention, not the daemon's age.
//!
//! # What is kept
//!
//! Every daemon-wide record written within the retention, the last pause
//! switch for every target, and per target a suffix of its records that
//! starts at a release sighting (not rollguard's own), the latest one at or
//! before the earliest of:
//!
//! - its first record written within the retention (so a report about any
//!   incident within the retention finds the whole incident, from the
//!   sighting of its release on);
//! - its last `rollback_started` (an unfinished rollback, its steps and
//!   process groups, the cooldown's start);
//! - its last `release_seen` (the version running, an open bake window).
//!
//! Before that suffix only the target's last `time_to_fix_set`,
//! `pause_changed` and automatic `rollback_started` (the cooldown's start,
//! when a manual rollback came after it) stay. A restart's fold over the kept records therefore
//! equals its fold over all of them (`recover` in `watchdog/recovery.rs`,
//! tested there against generated histories).
//!
//! # Crash safety
//!
//! The kept records and a final `compacted` record (whose seq is one more
//! than the last ever used, so seqs are never reused) go to
//! `journal.jsonl.compacting`, which is synced and then renamed over
//! `journal.jsonl`, and the directory is synced. A `kill -9` before the
//! rename leaves the old journal (the temporary file is removed at the next
//! open); after it, the new one. Either holds every record a restart needs,
//! so no rollback is started twice. Appends and queries wait for a
//! compaction (it holds both locks), and nothing acknowledged is ever only
//! in memory.
//! Lines this version could not read (damaged, or from a newer rollguard)
//! are not rewritten: the old file is kept beside the journal as
//! `journal.before-compaction-<time>` in that case.

use super::format::{self, Event, Record};
use super::{Journal, JournalError, io, lock, sync_dir};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::SystemTime;

/// The temporary file a compaction writes, beside the journal.
pub(super) const TEMP_NAME: &str = "journal.jsonl.compacting";

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compaction {
    /// Records dropped.
    pub dropped: usize,
    /// Records kept (the `compacted` record not counted).
    pub kept: usize,
    /// The file's size before.
    pub bytes_before: u64,
    /// The file's size after.
    pub bytes_after: u64,
}

/// Which of `records` (in seq order) a compaction keeps, when records
/// written before `before` may go (see the module docs).
pub(super) fn keep(records: &[Record], before: SystemTime) -> Vec<bool> {
    let mut by_target: HashMap<Option<&str>, Vec<usize>> = HashMap::new();
    for (i, record) in records.iter().enumerate() {
        by_target
            .entry(record.target.as_deref())
            .or_default()
            .push(i);
    }
    // A record whose time cannot be read is treated as recent.
    let old = |r: &Record| r.at_time().is_some_and(|at| at < before);
    let mut keep = vec![false; records.len()];
    for (target, indices) in by_target {
        let event = |p: usize| &records[indices[p]].event;
        let n = indices.len();
        let last =
            |upto: usize, wanted: fn(&Event) -> bool| (0..upto).rev().find(|&p| wanted(event(p)));
        let first_recent = (0..n).find(|&p| !old(&records[indices[p]])).unwrap_or(n);
        let cut = if target.is_none() {
            first_recent
        } else {
            let mut needed = first_recent;
            for wanted in [
                (|e| matches!(e, Event::RollbackStarted { .. })) as fn(&Event) -> bool,
                |e| matches!(e, Event::ReleaseSeen { .. }),
            ] {
                if let Some(p) = last(n, wanted) {
                    needed = needed.min(p);
                }
            }
            if needed == n {
                n
            } else {
                last(needed + 1, |e| {
                    matches!(
                        e,
                        Event::ReleaseSeen {
                            by_rollguard: false,
                            ..
                        }
                    )
                })
                .unwrap_or(0)
            }
        };
        for p in cut..n {
            keep[indices[p]] = true;
        }
        let pinned: [fn(&Event) -> bool; 3] = [
            |e| matches!(e, Event::TimeToFixSet { .. }),
            |e| matches!(e, Event::PauseChanged { .. }),
            // The cooldown's start (`Trigger::Automatic`'s word).
            |e| matches!(e, Event::RollbackStarted { trigger, .. } if trigger == "automatic"),
        ];
        for wanted in pinned {
            if let Some(p) = last(cut, wanted) {
                keep[indices[p]] = true;
            }
        }
    }
    keep
}

impl Journal {
    /// Compacts the journal when at least `min_dropped` (and at least one)
    /// of its records can go: those written before `before` that nothing
    /// needs (see the module docs). `None` when it was not worth it.
    /// Appends wait until it is done. On error the journal is unchanged
    /// (or, when only the directory sync failed, compacted).
    pub fn compact(
        &self,
        before: SystemTime,
        min_dropped: usize,
    ) -> Result<Option<Compaction>, JournalError> {
        let mut writer = lock(&self.inner.writer);
        if writer.broken {
            return Err(JournalError::Broken {
                path: self.inner.path.clone(),
            });
        }
        let mut memory = lock(&self.inner.records);
        // The file's records: memory's when it holds them all, else read
        // (appends wait on the writer lock, so the file is complete).
        let read;
        let records: &[Record] = if memory.complete {
            memory.records.make_contiguous()
        } else {
            drop(memory);
            read = self.read_file()?;
            memory = lock(&self.inner.records);
            &read
        };
        let keep = keep(records, before);
        let kept = keep.iter().filter(|k| **k).count();
        let dropped = records.len() - kept;
        if dropped == 0 || dropped < min_dropped {
            return Ok(None);
        }
        let path = &self.inner.path;
        let dir = path.parent().unwrap_or(Path::new("."));
        let marker = Record {
            seq: writer.last_seq + 1,
            at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            target: None,
            event: Event::Compacted {
                dropped: dropped as u64,
                kept: kept as u64,
                before: humantime::format_rfc3339_millis(before).to_string(),
            },
        };
        let tmp = dir.join(TEMP_NAME);
        let lines = records
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(r, _)| r)
            .chain(std::iter::once(&marker));
        let bytes_after = match write_all(&tmp, lines) {
            Ok(len) => len,
            Err(error) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(error);
            }
        };
        if writer.unreadable > 0 {
            let stamp = humantime::format_rfc3339_millis(SystemTime::now())
                .to_string()
                .replace(':', "-");
            let saved = dir.join(format!("journal.before-compaction-{stamp}"));
            std::fs::hard_link(path, &saved)
                .map_err(io(format!(
                    "keeping {} as {}",
                    path.display(),
                    saved.display()
                )))
                .inspect_err(|_| {
                    let _ = std::fs::remove_file(&tmp);
                })?;
            tracing::warn!(lines = writer.unreadable, saved = %saved.display(), "The journal has lines this version cannot read; the file before compaction is kept");
        }
        std::fs::rename(&tmp, path)
            .map_err(io(format!(
                "renaming {} to {}",
                tmp.display(),
                path.display()
            )))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })?;
        // From here on the new file is the journal.
        let synced = sync_dir(dir);
        let file = match OpenOptions::new().read(true).append(true).open(path) {
            Ok(file) => file,
            Err(source) => {
                writer.broken = true;
                let context = format!("reopening {} after compaction", path.display());
                return Err(JournalError::Io { context, source });
            }
        };
        let bytes_before = writer.len;
        writer.file = file;
        writer.len = bytes_after;
        writer.last_seq = marker.seq;
        writer.unreadable = 0;
        let kept_records: Vec<Record> = records
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(r, _)| r.clone())
            .chain(std::iter::once(marker))
            .collect();
        memory.replace(kept_records);
        if let Err(error) = synced {
            tracing::warn!(%error, "The compacted journal may not survive a power loss (the old one would come back)");
        }
        Ok(Some(Compaction {
            dropped,
            kept,
            bytes_before,
            bytes_after,
        }))
    }

    /// What the daemon does at start-up and every hour: compacts, on
    /// tokio's blocking pool, when a quarter of the records (or more) are
    /// older than `retention` and needed by nothing, so that the file is
    /// rewritten rarely and stays within about a third more than the
    /// retention's records.
    pub async fn compact_for_retention(
        &self,
        retention: std::time::Duration,
    ) -> Result<Option<Compaction>, JournalError> {
        let before = SystemTime::now()
            .checked_sub(retention)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let min_dropped = self.len().div_ceil(4).max(1);
        self.compact_async(before, min_dropped).await
    }

    /// [`compact`](Journal::compact) on tokio's blocking pool.
    pub async fn compact_async(
        &self,
        before: SystemTime,
        min_dropped: usize,
    ) -> Result<Option<Compaction>, JournalError> {
        let journal = self.clone();
        tokio::task::spawn_blocking(move || journal.compact(before, min_dropped))
            .await
            .map_err(JournalError::Task)?
    }
}

/// Writes `records` as journal lines to a new `path` and syncs it; returns
/// its length.
fn write_all<'a>(
    path: &Path,
    records: impl Iterator<Item = &'a Record>,
) -> Result<u64, JournalError> {
    let context = || format!("writing {}", path.display());
    let file = File::create(path).map_err(io(context()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut len = 0u64;
    for record in records {
        let line = format::encode_line(record).map_err(JournalError::Encode)?;
        out.write_all(&line).map_err(io(context()))?;
        len += line.len() as u64;
    }
    let file = out
        .into_inner()
        .map_err(|e| io(context())(e.into_error()))?;
    file.sync_all().map_err(io(context()))?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn old_record(seq: u64) -> Record {
        Record {
            seq,
            at: "2020-01-01T00:00:00.000Z".into(),
            target: None,
            event: Event::DaemonStopped,
        }
    }

    #[test]
    fn unreadable_lines_keep_the_old_file_and_a_stale_temp_file_goes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let json = r#"{"seq":2,"at":"2020-01-01T00:00:00.000Z","target":null,"event":{"kind":"from_the_future"}}"#;
        let unknown = format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes()));
        let bytes = [
            format::encode_line(&old_record(1)).expect("encodes"),
            unknown.into_bytes(),
            format::encode_line(&old_record(3)).expect("encodes"),
        ]
        .concat();
        std::fs::write(dir.path().join("journal.jsonl"), &bytes).expect("writes");
        std::fs::write(dir.path().join(TEMP_NAME), b"half a compaction").expect("writes");

        let (journal, recovery) = Journal::open(dir.path()).expect("opens");
        assert!(
            !dir.path().join(TEMP_NAME).exists(),
            "stale temp file removed"
        );
        assert_eq!(recovery.skipped_unknown, 1);
        let before = SystemTime::now() - Duration::from_secs(3600);
        assert_eq!(
            journal.compact(before, 3).expect("compacts"),
            None,
            "below min"
        );
        let done = journal.compact(before, 1).expect("compacts").expect("done");
        assert_eq!((done.dropped, done.kept), (2, 0));
        let saved: Vec<_> = std::fs::read_dir(dir.path())
            .expect("lists")
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("journal.before-compaction-")
            })
            .collect();
        assert_eq!(saved.len(), 1);
        assert_eq!(std::fs::read(saved[0].path()).expect("reads"), bytes);
        drop(journal);
        let (journal, recovery) = Journal::open(dir.path()).expect("reopens");
        assert_eq!((recovery.records, recovery.last_seq), (1, 4));
        assert!(matches!(
            journal.records()[0].event,
            Event::Compacted {
                dropped: 2,
                kept: 0,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn the_journal_is_compacted_once_a_quarter_of_it_has_aged_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let line = |seq: u64, at: &str| {
            let record = Record {
                seq,
                at: at.to_owned(),
                target: None,
                event: Event::DaemonStopped,
            };
            let json = serde_json::to_vec(&record).expect("encodes");
            [
                format!("{:08x} ", crc32fast::hash(&json)).into_bytes(),
                json,
                b"\n".to_vec(),
            ]
            .concat()
        };
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        // 2 old records of 10: not worth a rewrite yet.
        let mut bytes: Vec<u8> = (1..=2)
            .flat_map(|seq| line(seq, "2020-01-01T00:00:00.000Z"))
            .collect();
        bytes.extend((3..=10).flat_map(|seq| line(seq, &now)));
        std::fs::write(dir.path().join("journal.jsonl"), &bytes).expect("writes");
        let (journal, _) = Journal::open(dir.path()).expect("opens");
        let retention = Duration::from_secs(30 * 24 * 3600);
        journal
            .compact_for_retention(retention)
            .await
            .expect("compacts");
        assert_eq!(journal.len(), 10, "a fifth aged out: left alone");
        drop(journal);

        let mut more: Vec<u8> = (1..=3)
            .flat_map(|seq| line(seq, "2020-01-01T00:00:00.000Z"))
            .collect();
        more.extend((4..=10).flat_map(|seq| line(seq, &now)));
        std::fs::write(dir.path().join("journal.jsonl"), &more).expect("writes");
        let (journal, _) = Journal::open(dir.path()).expect("opens");
        journal
            .compact_for_retention(retention)
            .await
            .expect("compacts");
        let records = journal.records();
        assert_eq!(records.len(), 8, "three dropped, a compacted record added");
        assert!(matches!(
            records.last().map(|r| &r.event),
            Some(Event::Compacted {
                dropped: 3,
                kept: 7,
                ..
            })
        ));
    }
}
