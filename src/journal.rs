//! Journal (stub; see the helper's implementation).

use serde::{Deserialize, Serialize};
use std::path::Path;

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

/// The journal file.
#[derive(Debug, Clone)]
pub struct Journal {}

/// What opening found.
#[derive(Debug, Clone, Default)]
pub struct Recovery {}

impl Journal {
    /// Opens (creating) the journal in `state_dir`.
    pub fn open(_state_dir: &Path) -> Result<(Journal, Recovery), JournalError> {
        Ok((Journal {}, Recovery {}))
    }

    /// Appends and syncs.
    pub fn append(&self, _target: Option<&str>, _event: Event) -> Result<Record, JournalError> {
        todo!()
    }
}
