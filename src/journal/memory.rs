//! What of the journal is kept in memory: every record until start-up has
//! read them (recovery folds over all of them), then only the newest
//! [`MEMORY_RECORDS`]. A query that reaches further back reads the file.
//!
//! Without the bound, memory grew with every record until a compaction
//! (hourly, dropping only what is older than the retention): 100 targets
//! with a release a minute held about 0.5 MiB more each minute, a month of
//! retention gigabytes.

use super::format::Record;
use super::{Journal, JournalError, Since, lock};
use std::collections::VecDeque;

/// How many records the daemon keeps in memory once started: the status,
/// `rollguard rollback`'s progress and the incident reports of the last
/// releases read them without touching the disk. A record is mostly a few
/// hundred bytes, an assessment a few KiB: about 2–8 MiB.
pub const MEMORY_RECORDS: usize = 4_096;

/// The records in memory.
#[derive(Debug)]
pub(super) struct Memory {
    /// The newest records, in seq order.
    pub(super) records: VecDeque<Record>,
    /// Whether `records` holds every readable record of the file: true
    /// until a record is dropped from memory.
    pub(super) complete: bool,
    /// Most records kept (no bound until [`Journal::keep_in_memory`]).
    cap: usize,
    /// Readable records in the file, in memory or not.
    pub(super) total: usize,
}

impl Memory {
    /// Every record read at open.
    pub(super) fn new(records: Vec<Record>) -> Memory {
        Memory {
            total: records.len(),
            records: records.into(),
            complete: true,
            cap: usize::MAX,
        }
    }

    /// A record just appended.
    pub(super) fn push(&mut self, record: Record) {
        self.records.push_back(record);
        self.total += 1;
        self.bound();
    }

    /// The file's records after a compaction rewrote it.
    pub(super) fn replace(&mut self, records: Vec<Record>) {
        self.total = records.len();
        self.records = records.into();
        self.complete = true;
        self.bound();
    }

    fn bound(&mut self) {
        if self.records.len() > self.cap {
            let excess = self.records.len() - self.cap;
            self.records.drain(..excess);
            self.complete = false;
        }
    }

    /// Whether the records after `since` are all in memory.
    fn covers(&self, since: Since) -> bool {
        self.complete
            || matches!(since, Since::Seq(seq)
                if self.records.front().is_some_and(|first| first.seq <= seq.saturating_add(1)))
    }
}

/// The records of `records` about `target` after `since`, the first `limit`.
fn select<'a>(
    records: impl Iterator<Item = &'a Record>,
    target: Option<&str>,
    since: Since,
    limit: usize,
) -> Vec<Record> {
    records
        .filter(|r| target.is_none_or(|t| r.target.as_deref() == Some(t)))
        .filter(|r| since.admits(r))
        .take(limit)
        .cloned()
        .collect()
}

/// The last `limit` of `records` about `target`, oldest first.
fn newest<'a>(
    records: impl DoubleEndedIterator<Item = &'a Record>,
    target: Option<&str>,
    limit: usize,
) -> Vec<Record> {
    let mut recent: Vec<Record> = records
        .rev()
        .filter(|r| target.is_none_or(|t| r.target.as_deref() == Some(t)))
        .take(limit)
        .cloned()
        .collect();
    recent.reverse();
    recent
}

impl Journal {
    /// From now on keeps at most `records` records in memory (the newest);
    /// the daemon calls it once start-up has read the whole journal.
    pub fn keep_in_memory(&self, records: usize) {
        let mut memory = lock(&self.inner.records);
        memory.cap = records.max(1);
        memory.bound();
        memory.records.shrink_to_fit();
    }

    /// Every readable record of the file, read from it: for a query that
    /// reaches past what memory holds.
    pub(super) fn read_file(&self) -> Result<Vec<Record>, JournalError> {
        super::read_records(&self.inner.path)
    }

    /// Every readable record, from memory when it holds them all, else from
    /// the file (memory's newest records when the file cannot be read).
    pub(super) fn all_records(&self) -> Vec<Record> {
        {
            let memory = lock(&self.inner.records);
            if memory.complete {
                return memory.records.iter().cloned().collect();
            }
        }
        match self.read_file() {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(%error, "Cannot read the journal's older records; answering with the newest only");
                lock(&self.inner.records).records.iter().cloned().collect()
            }
        }
    }

    /// Records about `target` (every target and daemon events when `None`)
    /// after `since`, oldest first, at most `limit` of them (the first
    /// `limit`, so a client pages on with `Since::Seq(last seq seen)`).
    pub fn query(&self, target: Option<&str>, since: Since, limit: usize) -> Vec<Record> {
        {
            let memory = lock(&self.inner.records);
            if memory.covers(since) {
                // Seqs are increasing, so a seq cursor is a binary search;
                // times are not (the wall clock may step back), so they are
                // filtered.
                let start = match since {
                    Since::Seq(seq) => memory.records.partition_point(|r| r.seq <= seq),
                    _ => 0,
                };
                return select(memory.records.range(start..), target, since, limit);
            }
        }
        select(self.all_records().iter(), target, since, limit)
    }

    /// The last `limit` records about `target` (all when `None`), oldest
    /// first: what a status page or `rollguard status` shows.
    pub fn recent(&self, target: Option<&str>, limit: usize) -> Vec<Record> {
        let recent = self.recent_in_memory(target, limit);
        if recent.len() >= limit || lock(&self.inner.records).complete {
            return recent;
        }
        newest(self.all_records().iter(), target, limit)
    }

    /// As [`recent`](Journal::recent), from memory alone: possibly fewer
    /// than `limit` even when the file holds more. For a caller that can
    /// tell whether it found what it needs, and reads everything if not.
    pub fn recent_in_memory(&self, target: Option<&str>, limit: usize) -> Vec<Record> {
        newest(lock(&self.inner.records).records.iter(), target, limit)
    }

    /// Every readable record, oldest first: what a restarted daemon reads to
    /// learn which rollbacks started and which finished.
    pub fn records(&self) -> Vec<Record> {
        self.all_records()
    }

    /// Calls `f` with every readable record, oldest first (without copying
    /// them while memory holds them all, as at start-up; appends wait
    /// meanwhile, so keep `f` cheap).
    pub fn for_each_record(&self, mut f: impl FnMut(&Record)) {
        {
            let memory = lock(&self.inner.records);
            if memory.complete {
                memory.records.iter().for_each(&mut f);
                return;
            }
        }
        self.all_records().iter().for_each(f);
    }

    /// How many readable records the journal holds.
    pub fn len(&self) -> usize {
        lock(&self.inner.records).total
    }

    /// Whether the journal holds no readable record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Event, Journal, Since};

    fn stepped(journal: &Journal, n: u32) {
        for attempt in 1..=n {
            let event = Event::StepStarted {
                release_id: "r".into(),
                step: "s".into(),
                attempt,
            };
            let target = if attempt % 2 == 0 { "a" } else { "b" };
            journal.append(Some(target), event).expect("append");
        }
    }

    #[test]
    fn older_records_are_read_from_the_file_once_memory_is_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (journal, _) = Journal::open(dir.path()).expect("open");
        stepped(&journal, 30);
        journal.keep_in_memory(10);
        stepped(&journal, 5);
        let memory = super::super::lock(&journal.inner.records);
        assert_eq!((memory.records.len(), memory.total), (10, 35));
        assert!(!memory.complete);
        drop(memory);

        assert_eq!(journal.len(), 35);
        let all = journal.records();
        assert_eq!(all.len(), 35, "from the file");
        assert_eq!(all.first().map(|r| r.seq), Some(1));
        let mut seen = 0;
        journal.for_each_record(|_| seen += 1);
        assert_eq!(seen, 35);
        // From memory: the last 10 (seqs 26..=35), after seq 30.
        let after = journal.query(None, Since::Seq(30), 100);
        assert_eq!(
            after.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [31, 32, 33, 34, 35]
        );
        // Past memory: from the file.
        let early = journal.query(Some("a"), Since::Seq(0), 3);
        assert_eq!(early.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 4, 6]);
        let everything = journal.query(None, Since::All, usize::MAX);
        assert_eq!(everything.len(), 35);
        // The last 8 of target a: 5 in memory would not be enough.
        let recent = journal.recent(Some("a"), 8);
        let seqs: Vec<u64> = recent.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [20, 22, 24, 26, 28, 30, 32, 34]);
    }

    /// Releases of target `a`, each followed by assessments.
    fn releases(journal: &Journal, n: u32) {
        for i in 0..n {
            let release_id = format!("r{i}");
            let seen = Event::ReleaseSeen {
                from: None,
                to: format!("v{i}"),
                source: "announce".into(),
                by_rollguard: false,
                release_id: release_id.clone(),
            };
            journal.append(Some("a"), seen).expect("append");
            for _ in 0..3 {
                let event = Event::BakeFinished {
                    release_id: release_id.clone(),
                    decision: crate::model::Decision::Healthy,
                };
                journal.append(Some("a"), event).expect("append");
            }
        }
    }

    #[test]
    fn a_bounded_journal_compacts_as_an_unbounded_one() {
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        let mut kept = Vec::new();
        for bound in [None, Some(5)] {
            let dir = tempfile::tempdir().expect("tempdir");
            let (journal, _) = Journal::open(dir.path()).expect("open");
            releases(&journal, 10);
            if let Some(bound) = bound {
                journal.keep_in_memory(bound);
            }
            let done = journal
                .compact(later, 1)
                .expect("compacts")
                .expect("worth it");
            let records = journal.records();
            assert_eq!(journal.len(), records.len(), "{bound:?}");
            assert_eq!(
                done.kept + 1,
                records.len(),
                "{bound:?}: the kept and the marker"
            );
            drop(journal);
            let (reopened, _) = Journal::open(dir.path()).expect("reopen");
            let on_disk: Vec<(u64, Event)> = reopened
                .records()
                .into_iter()
                .map(|r| (r.seq, r.event))
                .collect();
            let in_memory: Vec<(u64, Event)> =
                records.into_iter().map(|r| (r.seq, r.event)).collect();
            assert_eq!(on_disk, in_memory, "{bound:?}");
            // The marker's `before` differs from run to run: compare the rest.
            kept.push(on_disk[..on_disk.len() - 1].to_vec());
        }
        assert!(
            kept[0].len() < 40,
            "something was dropped: {}",
            kept[0].len()
        );
        assert_eq!(kept[0], kept[1]);
    }
}
