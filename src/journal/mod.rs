//! The journal: rollguard's durable, append-only record of every event
//! (releases, assessments, decisions, rollback steps, notifications,
//! reloads, start and stop). A record is written and synced to disk
//! *before* the daemon acts on it, so a `kill -9` at any moment leaves a
//! journal from which a restart knows what was done and never rolls back
//! twice.
//!
//! # Format
//!
//! `<state_dir>/journal.jsonl`, one record per line:
//! `<crc32 of the JSON, 8 lowercase hex> <JSON>\n`. Checksummed JSON lines
//! rather than SQLite because:
//!
//! - no C dependency and no extra build time;
//! - an operator reads it with `less`, `grep` and `jq` (`cut -d' ' -f2- |
//!   jq`) during an incident, without rollguard;
//! - the access pattern is append-only, which a log file fits exactly;
//! - durability is one `write` plus one `fdatasync` per record;
//! - recovery is simple: keep everything up to the last good line.
//!
//! # Recovery
//!
//! [`Journal::open`] reads the whole file and checks every line (a complete
//! line, its checksum, its JSON). Damage after the last intact line is a
//! torn tail (a write cut short by a power loss): it is copied to
//! `journal.torn-<time>` beside the journal for forensics, the journal is
//! truncated to the last good byte and synced, and start-up goes on with a
//! warning. A damaged line *followed* by intact ones is corruption, not a
//! torn write: it is skipped with a warning and left in place, and the good
//! records after it are kept. An intact line this version cannot read (an
//! event kind from a newer rollguard) is skipped with a warning, but its seq
//! is never reused. None of these stops the daemon from starting.
//!
//! # Memory
//!
//! Every readable record is in memory while the daemon starts (recovery
//! folds over all of them), then only the newest
//! [`MEMORY_RECORDS`](memory::MEMORY_RECORDS): a query reaching further
//! back reads the file (`memory.rs`). The records are mostly a few hundred
//! bytes each (assessments, with their evidence, a few KiB).
//! [`Journal::compact`] (`compact.rs`) drops what is older than the
//! retention and needed by nothing, so the file follows
//! `daemon.journal_retention`, not the daemon's age.
//!
//! # Concurrency
//!
//! One writer at a time inside the process (a mutex around the file; seqs
//! are handed out under it), and one process per journal: an exclusive
//! advisory lock on `<state_dir>/journal.lock`, released by the kernel when
//! the process dies however it dies.

mod compact;
mod format;
mod memory;

pub use compact::Compaction;
#[cfg(test)]
pub(crate) use format::encode_line;
pub use format::{Event, Record, TornTail};
pub use memory::MEMORY_RECORDS;

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

/// Why the journal failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// I/O on the journal file; the record was not acknowledged.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// Another process (a second rollguard on the same state directory)
    /// holds the journal: two writers would interleave seqs and both act.
    #[error(
        "journal {path} is locked by another process ({holder}); is another rollguard running?"
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as written in the lock file (its pid), if known.
        holder: String,
    },
    /// A failed append could not be undone, so the file may end in a partial
    /// line; writing more would glue records to it. Restart the daemon: the
    /// next open repairs the file.
    #[error("journal {path} is unusable after a failed write; restart to repair it")]
    Broken {
        /// The journal file.
        path: PathBuf,
    },
    /// A record could not be encoded (should not happen: events are plain
    /// data).
    #[error("cannot encode journal record: {0}")]
    Encode(#[source] serde_json::Error),
    /// The blocking task of [`Journal::append_async`] did not finish (the
    /// runtime is shutting down); whether the record was written is unknown.
    #[error("journal write task did not finish: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// Where a query starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// From the first record.
    All,
    /// Records with a seq greater than this one: the cursor of a client
    /// that pages through the journal (pass the last seq it saw).
    Seq(u64),
    /// Records written at or after this time (by their `at`).
    Time(SystemTime),
}

impl Since {
    fn admits(&self, record: &Record) -> bool {
        match self {
            Since::All => true,
            Since::Seq(seq) => record.seq > *seq,
            Since::Time(time) => record.at_time().is_some_and(|at| at >= *time),
        }
    }
}

/// What opening the journal found; the daemon logs it and exposes it so an
/// operator can see a crash was recovered from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Readable records now in the journal.
    pub records: usize,
    /// The last seq used; the next record gets `last_seq + 1`.
    pub last_seq: u64,
    /// The torn tail that was cut off (and saved beside the journal), if any.
    pub torn_tail: Option<TornTail>,
    /// Intact lines this version cannot read (usually an event kind from a
    /// newer rollguard); skipped, left in the file.
    pub skipped_unknown: usize,
    /// Damaged lines in the middle of the file; skipped, left in the file.
    pub skipped_corrupt: usize,
}

/// The journal: cheap to clone (an `Arc` inside); every clone appends to the
/// same file.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    /// The journal file.
    path: PathBuf,
    /// The file and where it ends; appends hold this lock through the sync.
    writer: Mutex<Writer>,
    /// The records in memory (all of them until start-up is done, then the
    /// newest); queries take only this lock, so they never wait for an
    /// fsync.
    records: Mutex<memory::Memory>,
    /// Held open for the process's lifetime: dropping it releases the lock.
    _lock: File,
}

struct Writer {
    /// Opened for append.
    file: File,
    /// Length of the file after the last acknowledged record.
    len: u64,
    /// The last seq used, readable or not.
    last_seq: u64,
    /// Set when a failed append could not be undone.
    broken: bool,
    /// Lines of the file that were skipped as unreadable: a compaction
    /// keeps the old file beside the journal rather than lose them.
    unreadable: usize,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// Locks a mutex; a panic elsewhere while holding it leaves consistent data
/// here (the writer's state changes only after a successful sync), so
/// poisoning is ignored rather than spread.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> JournalError {
    let context = context.into();
    move |source| JournalError::Io { context, source }
}

/// Syncs a directory so a file created in it survives a power loss.
fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing directory {}", dir.display())))
}

impl Journal {
    /// Opens the journal in `state_dir`, creating both if missing, takes the
    /// journal lock, and recovers from a torn tail (see the module docs).
    /// Fails only when the directory or file cannot be used, or another
    /// process holds the lock ([`JournalError::Locked`]).
    pub fn open(state_dir: &Path) -> Result<(Journal, Recovery), JournalError> {
        std::fs::create_dir_all(state_dir).map_err(io(format!(
            "creating state directory {}",
            state_dir.display()
        )))?;
        let lock_file = take_lock(&state_dir.join("journal.lock"))?;

        // A compaction cut short by a crash: the journal is still whole.
        let unfinished = state_dir.join(compact::TEMP_NAME);
        if unfinished.exists() {
            tracing::warn!(path = %unfinished.display(), "Removing a compaction cut short by a crash; the journal is unchanged");
            std::fs::remove_file(&unfinished)
                .map_err(io(format!("removing {}", unfinished.display())))?;
        }
        let path = state_dir.join("journal.jsonl");
        let existed = path
            .try_exists()
            .map_err(io(format!("checking {}", path.display())))?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        if !existed {
            sync_dir(state_dir)?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(io(format!("reading {}", path.display())))?;

        let scan = format::scan(&bytes);
        if let Some(torn) = &scan.torn_tail {
            let saved = save_torn_tail(state_dir, torn, &bytes[scan.good_len as usize..]);
            tracing::warn!(
                path = %path.display(),
                offset = torn.offset,
                bytes = torn.bytes,
                reason = %torn.reason,
                saved_to = saved.as_deref().map(|p| p.display().to_string()),
                "Cutting a torn tail off the journal"
            );
            file.set_len(scan.good_len)
                .and_then(|()| file.sync_all())
                .map_err(io(format!("truncating {}", path.display())))?;
        }

        let recovery = Recovery {
            records: scan.records.len(),
            last_seq: scan.last_seq,
            torn_tail: scan.torn_tail,
            skipped_unknown: scan.skipped_unknown,
            skipped_corrupt: scan.skipped_corrupt,
        };
        let writer = Writer {
            file,
            len: scan.good_len,
            last_seq: scan.last_seq,
            broken: false,
            unreadable: scan.skipped_unknown + scan.skipped_corrupt,
        };
        let inner = Inner {
            path,
            writer: Mutex::new(writer),
            records: Mutex::new(memory::Memory::new(scan.records)),
            _lock: lock_file,
        };
        Ok((
            Journal {
                inner: Arc::new(inner),
            },
            recovery,
        ))
    }

    /// Appends a record about `target` (`None` for daemon-wide events),
    /// giving it the next seq and the current time, and returns only once it
    /// is on disk (`fdatasync`). On error nothing was acknowledged and the
    /// seq is not used: do not act on the event.
    pub fn append(&self, target: Option<&str>, event: Event) -> Result<Record, JournalError> {
        let mut writer = lock(&self.inner.writer);
        if writer.broken {
            return Err(JournalError::Broken {
                path: self.inner.path.clone(),
            });
        }
        let record = Record {
            seq: writer.last_seq + 1,
            at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            target: target.map(str::to_owned),
            event,
        };
        let line = format::encode_line(&record).map_err(JournalError::Encode)?;
        let written = writer
            .file
            .write_all(&line)
            .and_then(|()| writer.file.sync_data());
        if let Err(source) = written {
            // Cut off whatever part of the line reached the file, so the
            // next record does not start in the middle of this one.
            let len = writer.len;
            if let Err(undo) = writer
                .file
                .set_len(len)
                .and_then(|()| writer.file.sync_data())
            {
                writer.broken = true;
                tracing::error!(path = %self.inner.path.display(), error = %undo, "Cannot undo a failed journal write; refusing further writes");
            }
            let context = format!("appending to {}", self.inner.path.display());
            return Err(JournalError::Io { context, source });
        }
        writer.len += line.len() as u64;
        writer.last_seq = record.seq;
        lock(&self.inner.records).push(record.clone());
        Ok(record)
    }

    /// [`append`](Journal::append) on tokio's blocking pool, since the fsync
    /// blocks for milliseconds; for use from async tasks.
    pub async fn append_async(
        &self,
        target: Option<&str>,
        event: Event,
    ) -> Result<Record, JournalError> {
        let journal = self.clone();
        let target = target.map(str::to_owned);
        tokio::task::spawn_blocking(move || journal.append(target.as_deref(), event))
            .await
            .map_err(JournalError::Task)?
    }

    /// The journal file's size after the last acknowledged record.
    pub fn file_len(&self) -> u64 {
        lock(&self.inner.writer).len
    }

    /// The journal file's path, for logs and error messages.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }
}

/// Reads the journal in `state_dir` without opening it for writing: no
/// lock, no repair, nothing created or changed, so it is safe beside a
/// running daemon (`rollguard report`). Damaged lines are left out as
/// [`Journal::open`] would leave them; a torn tail is ignored. Fails when
/// the file cannot be read (a missing file included).
pub fn read_only(state_dir: &Path) -> Result<Vec<Record>, JournalError> {
    read_records(&state_dir.join("journal.jsonl"))
}

/// The readable records of the journal file at `path`, read whole.
fn read_records(path: &Path) -> Result<Vec<Record>, JournalError> {
    let bytes = std::fs::read(path).map_err(io(format!("reading {}", path.display())))?;
    Ok(format::scan(&bytes).records)
}

/// Takes the exclusive advisory lock and writes our pid into the lock file,
/// so the error a second daemon gets names the first one.
fn take_lock(path: &Path) -> Result<File, JournalError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io(format!("opening {}", path.display())))?;
    let locked = file.try_lock();
    match locked {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "unknown pid".to_owned(),
                pid => format!("pid {pid}"),
            };
            return Err(JournalError::Locked {
                path: path.to_owned(),
                holder,
            });
        }
        Err(TryLockError::Error(source)) => {
            return Err(io(format!("locking {}", path.display()))(source));
        }
    }
    // The pid is only a hint for the error above; failing to write it is
    // not worth refusing to start.
    let _ = file
        .set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    Ok(file)
}

/// Copies a torn tail to `journal.torn-<time>` beside the journal and syncs
/// it, so truncating loses nothing an investigator might want. Returns where
/// it went, or `None` (after a warning) if it could not be saved: the tail
/// was never acknowledged, so start-up goes on.
fn save_torn_tail(dir: &Path, torn: &TornTail, bytes: &[u8]) -> Option<PathBuf> {
    let stamp = humantime::format_rfc3339_millis(SystemTime::now())
        .to_string()
        .replace(':', "-");
    let path = dir.join(format!("journal.torn-{stamp}-{}", torn.offset));
    let saved = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(io(format!("saving torn tail to {}", path.display())))
        .and_then(|()| sync_dir(dir));
    match saved {
        Ok(()) => Some(path),
        Err(error) => {
            tracing::warn!(%error, "Cannot save the journal's torn tail; cutting it anyway");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn started(attempt: u32) -> Event {
        Event::StepStarted {
            release_id: "r1".into(),
            step: "rollback".into(),
            attempt,
        }
    }

    fn journal_bytes(dir: &Path) -> Vec<u8> {
        std::fs::read(dir.join("journal.jsonl")).expect("reads journal")
    }

    fn torn_files(dir: &Path) -> Vec<PathBuf> {
        let entries = std::fs::read_dir(dir).expect("lists dir");
        let mut found: Vec<PathBuf> = entries
            .map(|e| e.expect("entry").path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("journal.torn-"))
            })
            .collect();
        found.sort();
        found
    }

    #[test]
    fn records_survive_a_reopen_and_seqs_continue() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let (journal, recovery) = Journal::open(&state).expect("opens");
        assert_eq!(recovery, Recovery::default());
        let first = journal
            .append(
                None,
                Event::DaemonStarted {
                    version: "0.1.0".into(),
                },
            )
            .expect("appends");
        let second = journal.append(Some("web"), started(1)).expect("appends");
        assert_eq!((first.seq, second.seq), (1, 2));
        assert!(first.at_time().is_some());
        drop(journal);

        let (journal, recovery) = Journal::open(&state).expect("reopens");
        assert_eq!(
            (recovery.records, recovery.last_seq, recovery.torn_tail),
            (2, 2, None)
        );
        assert_eq!(journal.records(), [first, second]);
        assert_eq!(
            journal
                .append(None, Event::DaemonStopped)
                .expect("appends")
                .seq,
            3
        );
    }

    #[test]
    fn a_second_opener_is_told_the_journal_is_locked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_journal, _) = Journal::open(dir.path()).expect("opens");
        match Journal::open(dir.path()) {
            Err(JournalError::Locked { holder, .. }) => {
                assert_eq!(holder, format!("pid {}", std::process::id()));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
    }

    #[test]
    fn a_torn_tail_is_saved_cut_off_and_appends_go_on() {
        type MakeTail = fn(&[u8]) -> Vec<u8>;
        let tails: [MakeTail; 3] = [
            |line| line[..line.len() / 2].to_vec(),
            |line| line[..line.len() - 1].to_vec(),
            |line| [b"00000000", &line[8..]].concat(),
        ];
        for make_tail in tails {
            let dir = tempfile::tempdir().expect("tempdir");
            let (journal, _) = Journal::open(dir.path()).expect("opens");
            journal.append(Some("web"), started(1)).expect("appends");
            let good = journal_bytes(dir.path());
            journal.append(Some("web"), started(2)).expect("appends");
            drop(journal);
            let tail = make_tail(&journal_bytes(dir.path())[good.len()..]);
            std::fs::write(
                dir.path().join("journal.jsonl"),
                [&good[..], &tail].concat(),
            )
            .expect("writes");

            let (journal, recovery) = Journal::open(dir.path()).expect("opens despite the tail");
            let torn = recovery.torn_tail.expect("torn tail reported");
            assert_eq!(
                (torn.offset, torn.bytes),
                (good.len() as u64, tail.len() as u64)
            );
            assert_eq!((recovery.records, recovery.last_seq), (1, 1));
            assert_eq!(
                journal_bytes(dir.path()),
                good,
                "truncated to the last good line"
            );
            let saved = torn_files(dir.path());
            assert_eq!(saved.len(), 1);
            assert_eq!(std::fs::read(&saved[0]).expect("reads"), tail);

            assert_eq!(
                journal
                    .append(Some("web"), started(3))
                    .expect("appends")
                    .seq,
                2
            );
            drop(journal);
            let (journal, recovery) = Journal::open(dir.path()).expect("reopens");
            assert_eq!((recovery.records, recovery.torn_tail), (2, None));
            assert_eq!(journal.records()[1].event, started(3));
        }
    }

    #[test]
    fn a_corrupt_middle_line_is_skipped_and_the_rest_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (journal, _) = Journal::open(dir.path()).expect("opens");
        for attempt in 1..=3 {
            journal
                .append(Some("web"), started(attempt))
                .expect("appends");
        }
        drop(journal);
        let mut bytes = journal_bytes(dir.path());
        let second = bytes.iter().position(|&b| b == b'\n').expect("newline") + 1;
        bytes[second + 30] ^= 0x20;
        std::fs::write(dir.path().join("journal.jsonl"), &bytes).expect("writes");

        let (journal, recovery) = Journal::open(dir.path()).expect("opens");
        assert_eq!(
            (
                recovery.records,
                recovery.last_seq,
                recovery.skipped_corrupt
            ),
            (2, 3, 1)
        );
        assert!(recovery.torn_tail.is_none());
        assert_eq!(journal_bytes(dir.path()), bytes, "nothing cut");
        assert_eq!(
            journal.records().iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 3]
        );
        assert_eq!(
            journal
                .append(None, Event::DaemonStopped)
                .expect("appends")
                .seq,
            4
        );
    }

    #[test]
    fn an_unknown_kind_is_skipped_without_reusing_its_seq() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (journal, _) = Journal::open(dir.path()).expect("opens");
        journal.append(None, Event::DaemonStopped).expect("appends");
        drop(journal);
        let json = r#"{"seq":2,"at":"2030-01-01T00:00:00.000Z","target":null,"event":{"kind":"quantum_rollback","qubits":3}}"#;
        let line = format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes()));
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join("journal.jsonl"))
            .expect("opens");
        file.write_all(line.as_bytes()).expect("writes");
        drop(file);

        let (journal, recovery) = Journal::open(dir.path()).expect("opens");
        assert_eq!(
            (
                recovery.records,
                recovery.last_seq,
                recovery.skipped_unknown
            ),
            (1, 2, 1)
        );
        assert!(recovery.torn_tail.is_none());
        assert_eq!(
            journal
                .append(None, Event::DaemonStopped)
                .expect("appends")
                .seq,
            3
        );
    }

    #[test]
    fn queries_filter_by_target_seq_time_and_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (journal, _) = Journal::open(dir.path()).expect("opens");
        for attempt in 1..=6 {
            let target = if attempt % 2 == 0 { "api" } else { "web" };
            journal
                .append(Some(target), started(attempt))
                .expect("appends");
        }
        journal.append(None, Event::DaemonStopped).expect("appends");
        let seqs = |records: Vec<Record>| records.iter().map(|r| r.seq).collect::<Vec<_>>();

        assert_eq!(
            seqs(journal.query(None, Since::All, usize::MAX)),
            [1, 2, 3, 4, 5, 6, 7]
        );
        assert_eq!(
            seqs(journal.query(Some("web"), Since::All, usize::MAX)),
            [1, 3, 5]
        );
        assert_eq!(
            seqs(journal.query(Some("api"), Since::Seq(2), usize::MAX)),
            [4, 6]
        );
        assert_eq!(seqs(journal.query(None, Since::Seq(3), 2)), [4, 5]);
        assert_eq!(
            seqs(journal.query(None, Since::Seq(7), 10)),
            Vec::<u64>::new()
        );
        assert_eq!(
            seqs(journal.query(Some("nobody"), Since::All, 10)),
            Vec::<u64>::new()
        );
        assert_eq!(seqs(journal.recent(Some("web"), 2)), [3, 5]);
        assert_eq!(seqs(journal.recent(None, 2)), [6, 7]);

        // Millisecond stamps: earlier records may share the fourth's stamp.
        let fourth = journal.records()[3].at_time().expect("parses");
        let expected: Vec<u64> = journal
            .records()
            .iter()
            .filter(|r| r.at_time().is_some_and(|at| at >= fourth))
            .map(|r| r.seq)
            .collect();
        assert!(expected.ends_with(&[4, 5, 6, 7]), "{expected:?}");
        assert_eq!(
            seqs(journal.query(None, Since::Time(fourth), usize::MAX)),
            expected
        );
        let future = SystemTime::now() + Duration::from_secs(3600);
        assert!(journal.query(None, Since::Time(future), 10).is_empty());
        let past = SystemTime::now() - Duration::from_secs(3600);
        assert_eq!(journal.query(None, Since::Time(past), 10).len(), 7);
    }

    #[test]
    fn read_only_reads_beside_the_writer_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            read_only(dir.path()),
            Err(JournalError::Io { .. })
        ));
        let (journal, _) = Journal::open(dir.path()).expect("opens");
        journal.append(Some("web"), started(1)).expect("appends");
        let mut bytes = journal_bytes(dir.path());
        bytes.extend_from_slice(b"0000");
        std::fs::write(dir.path().join("journal.jsonl"), &bytes).expect("writes");
        let lock = std::fs::read(dir.path().join("journal.lock")).expect("lock file");
        assert_eq!(read_only(dir.path()).expect("reads"), journal.records());
        assert_eq!(journal_bytes(dir.path()), bytes, "the torn tail is left");
        assert_eq!(
            std::fs::read(dir.path().join("journal.lock")).expect("lock file"),
            lock
        );
        assert!(torn_files(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn append_async_writes_like_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (journal, _) = Journal::open(dir.path()).expect("opens");
        let record = journal
            .append_async(Some("web"), started(1))
            .await
            .expect("appends");
        assert_eq!(record.seq, 1);
        assert_eq!(journal.records(), [record]);
    }
}
