//! What the running daemon knows, shared between the watchdogs (writers)
//! and the HTTP API (reader). Cheap to clone: one `Arc` inside.

use crate::config::Config;
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::model::Mode;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::{mpsc, oneshot, watch};

/// A request from the API to the daemon's control loop.
#[derive(Debug)]
pub enum Control {
    /// Re-read the configuration file, as SIGHUP does; the answer says
    /// whether it was applied and, if not, why.
    Reload {
        /// Where the outcome goes.
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// A request from the API to one target's watchdog.
#[derive(Debug)]
pub enum TargetCommand {
    /// CI announces a release (`POST /api/v1/releases`).
    Announce {
        /// The new version.
        version: String,
        /// The version it replaced, if the announcer knows.
        previous: Option<String>,
        /// The release id, or why the announcement was not taken.
        reply: oneshot::Sender<Result<String, CommandError>>,
    },
    /// A human approves the pending rollback.
    Approve {
        /// What happened, or why nothing did.
        reply: oneshot::Sender<Result<String, CommandError>>,
    },
    /// A person asks for a rollback of the running release
    /// (`rollguard rollback`), or only for what it would do.
    Rollback {
        /// What was asked.
        request: RollbackRequest,
        /// The plan (of a dry run, or of the rollback once journaled as
        /// started), or why nothing runs.
        reply: oneshot::Sender<Result<RollbackPlan, CommandError>>,
    },
    /// An operator sets (or clears) the time-to-fix estimate.
    SetTimeToFix {
        /// The new estimate; `None` returns to the configured one.
        time_to_fix: Option<std::time::Duration>,
        /// Confirmation.
        reply: oneshot::Sender<Result<String, CommandError>>,
    },
}

/// A person's rollback request (`POST /api/v1/targets/{name}/rollback`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollbackRequest {
    /// The version to bring back; the one before the running release
    /// when absent.
    pub to: Option<String>,
    /// Only say what would run; change nothing, journal no rollback.
    pub dry_run: bool,
    /// The versions the person confirmed (from, to): refused when the
    /// daemon would now roll back from or to another (a release came in
    /// between the dry run and the answer).
    pub expected: Option<(String, String)>,
}

/// One step of a rollback plan, in the order it runs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PlannedStep {
    /// Its name in the pipeline (and in the journal's step records).
    pub name: String,
    /// What it does, in one line.
    pub description: String,
}

/// What a manual rollback does: the answer of a dry run, or of a rollback
/// journaled as started (the pipeline then runs in the daemon; follow it
/// in `GET /api/v1/events` after `journal_seq`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RollbackPlan {
    /// The target.
    pub target: String,
    /// The release rolled back; `None` in a dry run when the running
    /// version was not brought by a release rollguard saw (a new id is
    /// given when it runs).
    pub release_id: Option<String>,
    /// The version running now, rolled back.
    pub from: String,
    /// The version brought back.
    pub to: String,
    /// The target's mode.
    pub mode: Mode,
    /// Whether automatic action is paused (a manual rollback runs anyway).
    pub paused: bool,
    /// Whether this is only a dry run: nothing ran, nothing was journaled.
    pub dry_run: bool,
    /// The steps, in the order they run.
    pub steps: Vec<PlannedStep>,
    /// What the servers said of each step's dry run (dry runs only).
    pub dry_runs: Vec<String>,
    /// A dry run's word on why running it would be refused now (shadow
    /// mode, another replica leads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The journal's seq of `rollback_started`, once started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_seq: Option<u64>,
    /// By when the pipeline is over at the latest (RFC 3339), once started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_completion: Option<String>,
}

/// A rollback running now (any trigger), shown in the status; a manual
/// rollback is refused while there is one.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunningRollback {
    /// The release rolled back.
    pub release_id: String,
    /// The version rolled back.
    pub from: String,
    /// The version brought back.
    pub to: String,
    /// `automatic`, `approved` or `manual`.
    pub trigger: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// The journal's seq of its `rollback_started`.
    pub journal_seq: u64,
}

/// Why a target's loop did not carry out a command, in words for the
/// person who asked; the API answers 409 for a refusal, 500 for a failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The command does not apply now (nothing to approve, the version
    /// already runs, the wrong release source): asking again will not help.
    #[error("{0}")]
    Refused(String),
    /// rollguard could not do it (the journal refused the record), so
    /// nothing changed.
    #[error("{0}")]
    Failed(String),
}

/// What the API shows about one target.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TargetStatus {
    /// Target name.
    pub name: String,
    /// Effective mode.
    pub mode: Mode,
    /// Version running now, once known.
    pub current_version: Option<String>,
    /// The release being baked, if any.
    pub release: Option<serde_json::Value>,
    /// The last assessment, with its evidence.
    pub last_assessment: Option<serde_json::Value>,
    /// Ticks run since the daemon started.
    pub ticks: u64,
    /// Whether automatic action is paused for this target (or for all).
    pub paused: bool,
    /// A rollback waiting for a human's approval, if any.
    pub approval: Option<serde_json::Value>,
    /// The time-to-fix estimate in force, like "1h".
    pub time_to_fix: Option<String>,
    /// Why the running version cannot be read now (the source is down, or
    /// answers a version rollguard refuses), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_error: Option<String>,
    /// The target's watcher stopped unexpectedly at least once since the
    /// daemon started (and was started again), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watcher_failure: Option<WatcherFailure>,
    /// The rollback running now, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RunningRollback>,
}

/// A target's watcher that ended while nobody asked it to stop.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WatcherFailure {
    /// How many times it ended unexpectedly since the daemon started.
    pub failures: u64,
    /// Why it ended the last time ("panic: ...").
    pub last_failure: String,
    /// When it ended the last time (RFC 3339).
    pub last_failure_at: String,
    /// True while it waits to start again: the target is not watched.
    pub down: bool,
}

/// The bearer token of mutating API calls. Its Debug output never shows it.
#[derive(Clone)]
pub struct ApiToken(Arc<str>);

impl ApiToken {
    /// Wraps a token read from `daemon.api_token_file` (trimmed).
    pub fn new(token: &str) -> Option<ApiToken> {
        let token = token.trim();
        (!token.is_empty()).then(|| ApiToken(Arc::from(token)))
    }

    /// Compares in constant time (for equal lengths) with a presented token.
    pub fn matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

struct Inner {
    config: RwLock<Arc<Config>>,
    targets: RwLock<BTreeMap<String, TargetStatus>>,
    api_token: RwLock<Option<ApiToken>>,
    ready: AtomicBool,
    metrics: Metrics,
    journal: Journal,
    control: mpsc::Sender<Control>,
    commands: RwLock<BTreeMap<String, mpsc::Sender<TargetCommand>>>,
    paused_all: AtomicBool,
    paused: RwLock<BTreeSet<String>>,
    /// Whether this replica leads: only the leader acts.
    leader: RwLock<watch::Receiver<bool>>,
}

/// Shared daemon state.
#[derive(Clone)]
pub struct State {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

impl State {
    /// Creates the state of a daemon that runs `config`; control requests
    /// go to `control`.
    pub fn new(
        config: Arc<Config>,
        api_token: Option<ApiToken>,
        journal: Journal,
        control: mpsc::Sender<Control>,
    ) -> State {
        State {
            inner: Arc::new(Inner {
                config: RwLock::new(config),
                targets: RwLock::new(BTreeMap::new()),
                api_token: RwLock::new(api_token),
                ready: AtomicBool::new(false),
                metrics: Metrics::new(),
                journal,
                control,
                commands: RwLock::new(BTreeMap::new()),
                paused_all: AtomicBool::new(false),
                paused: RwLock::new(BTreeSet::new()),
                leader: RwLock::new(crate::leader::single_instance()),
            }),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.inner
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts a new configuration (and its token) in force.
    pub fn set_config(&self, config: Arc<Config>, api_token: Option<ApiToken>) {
        *self.inner.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        *self
            .inner
            .api_token
            .write()
            .unwrap_or_else(|e| e.into_inner()) = api_token;
    }

    /// The API token in force, if any.
    pub fn api_token(&self) -> Option<ApiToken> {
        self.inner
            .api_token
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the daemon is serving (watchdogs started).
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    /// Marks the daemon ready or not (not ready while shutting down).
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::Release);
    }

    /// rollguard's own metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    /// Sends a control request to the daemon.
    pub fn control(&self) -> &mpsc::Sender<Control> {
        &self.inner.control
    }

    /// Every target's status, by name.
    pub fn targets(&self) -> Vec<TargetStatus> {
        self.inner
            .targets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Changes one target's status (creating it when new).
    pub fn update_target(&self, name: &str, update: impl FnOnce(&mut TargetStatus)) {
        let paused = self.is_paused(name);
        let mut targets = self
            .inner
            .targets
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let status = targets
            .entry(name.to_owned())
            .or_insert_with(|| TargetStatus {
                name: name.to_owned(),
                mode: Mode::default(),
                current_version: None,
                release: None,
                last_assessment: None,
                ticks: 0,
                paused,
                approval: None,
                time_to_fix: None,
                version_error: None,
                watcher_failure: None,
                rollback: None,
            });
        update(status);
    }

    /// Forgets targets that are no longer configured.
    pub fn retain_targets(&self, keep: impl Fn(&str) -> bool) {
        self.inner
            .targets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|name, _| keep(name));
        self.inner
            .commands
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|name, _| keep(name));
    }

    /// Registers the command channel of a target's watchdog.
    pub fn set_commands(&self, target: &str, sender: mpsc::Sender<TargetCommand>) {
        self.inner
            .commands
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(target.to_owned(), sender);
    }

    /// The command channel of a target's watchdog, if the target exists.
    pub fn commands(&self, target: &str) -> Option<mpsc::Sender<TargetCommand>> {
        self.inner
            .commands
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(target)
            .cloned()
    }

    /// Pauses or resumes automatic action for one target, or for every
    /// target (`None`: the global kill switch).
    pub fn set_paused(&self, target: Option<&str>, paused: bool) {
        match target {
            None => self.inner.paused_all.store(paused, Ordering::Release),
            Some(name) => {
                let mut set = self.inner.paused.write().unwrap_or_else(|e| e.into_inner());
                if paused {
                    set.insert(name.to_owned());
                } else {
                    set.remove(name);
                }
            }
        }
        let all = self.inner.paused_all.load(Ordering::Acquire);
        let set = self
            .inner
            .paused
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut targets = self
            .inner
            .targets
            .write()
            .unwrap_or_else(|e| e.into_inner());
        for (name, status) in targets.iter_mut() {
            status.paused = all || set.contains(name);
        }
    }

    /// Whether automatic action is paused for `target` (by itself or by the
    /// global switch).
    pub fn is_paused(&self, target: &str) -> bool {
        self.inner.paused_all.load(Ordering::Acquire)
            || self
                .inner
                .paused
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains(target)
    }

    /// Puts a leadership channel in force (from leader election); until
    /// then this replica is a single instance and always leads.
    pub fn set_leadership(&self, leader: watch::Receiver<bool>) {
        *self.inner.leader.write().unwrap_or_else(|e| e.into_inner()) = leader;
    }

    /// The leadership channel: `true` while this replica leads.
    pub fn leadership(&self) -> watch::Receiver<bool> {
        self.inner
            .leader
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether this replica leads now (and so may act).
    pub fn is_leader(&self) -> bool {
        *self.leadership().borrow()
    }

    /// Whether the global kill switch is on.
    pub fn is_paused_all(&self) -> bool {
        self.inner.paused_all.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_compares_exactly_and_hides_itself() {
        let token = ApiToken::new("  s3cret\n").expect("non-empty");
        assert!(token.matches("s3cret"));
        assert!(!token.matches("s3cret "));
        assert!(!token.matches("s3cre"));
        assert!(!token.matches(""));
        assert!(!format!("{token:?}").contains("s3cret"));
        assert!(ApiToken::new(" \n").is_none());
    }
}
