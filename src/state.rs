//! What the running daemon knows, shared between the watchdogs (writers)
//! and the HTTP API (reader). Cheap to clone: one `Arc` inside.

use crate::config::Config;
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::model::Mode;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::{mpsc, oneshot};

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
