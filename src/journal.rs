//! Journal (stub; see the helper's implementation).

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Why the journal failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// I/O on the journal file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// One journaled event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The daemon started.
    DaemonStarted {
        /// rollguard's version.
        version: String,
    },
    /// The daemon stopped cleanly.
    DaemonStopped,
    /// A configuration reload was tried.
    ConfigReloaded {
        /// Whether the new file was applied.
        ok: bool,
        /// Errors, when it was not.
        message: Option<String>,
    },
}

/// One line of the journal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// Position in the journal, from 1, never reused.
    pub seq: u64,
    /// When it was written, RFC 3339 UTC.
    pub at: String,
    /// The target it is about, if any.
    pub target: Option<String>,
    /// What happened.
    pub event: Event,
}

/// Where a journal query starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// From the first record.
    All,
    /// Records after this sequence number.
    Seq(u64),
    /// Records written at or after this time.
    Time(SystemTime),
}

/// The journal file (stub: records kept in memory, no file).
#[derive(Debug, Clone, Default)]
pub struct Journal {
    records: Arc<Mutex<Vec<Record>>>,
}

/// What opening found.
#[derive(Debug, Clone, Default)]
pub struct Recovery {}

impl Journal {
    /// Opens (creating) the journal in `state_dir`.
    pub fn open(_state_dir: &Path) -> Result<(Journal, Recovery), JournalError> {
        Ok((Journal::default(), Recovery {}))
    }

    /// Appends and syncs.
    pub fn append(&self, target: Option<&str>, event: Event) -> Result<Record, JournalError> {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let record = Record {
            seq: records.len() as u64 + 1,
            at: humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
            target: target.map(str::to_owned),
            event,
        };
        records.push(record.clone());
        Ok(record)
    }

    /// Up to `limit` records about `target` (any target when None) from
    /// `since`, in journal order.
    pub fn query(&self, target: Option<&str>, since: Since, limit: usize) -> Vec<Record> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records
            .iter()
            .filter(|r| target.is_none_or(|t| r.target.as_deref() == Some(t)))
            .filter(|r| match since {
                Since::All => true,
                Since::Seq(seq) => r.seq > seq,
                Since::Time(time) => {
                    humantime::parse_rfc3339_weak(&r.at).is_ok_and(|at| at >= time)
                }
            })
            .take(limit)
            .cloned()
            .collect()
    }
}
