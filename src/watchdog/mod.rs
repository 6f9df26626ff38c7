//! One task per target. Every `interval` it reads the release source; a new
//! release opens a bake window during which each tick runs the probes and
//! queries, the judge and the decision matrix, and acts as the target's mode
//! allows: `gate.rs` decides (a pure function), `act.rs` carries it out.
//!
//! The [`Watchdogs`] supervisor owns the tasks. A configuration reload hands
//! each running task its new [`Setup`] between two ticks, never in the middle
//! of a rollback, so that what is known about a release in progress (its
//! bake window, approvals, cooldown) survives a reload. This is the only
//! module that spawns long-lived tasks.

mod act;
mod bake;
mod clock;
mod gate;
mod monitoring;
mod observe;
mod outcome;
mod phase;
mod recovery;
mod resume_plan;
mod step_hooks;
mod supervise;
mod target;
#[cfg(test)]
mod tests_compaction;
#[cfg(test)]
mod tests_recovery;
mod verifier;

pub use bake::{Bake, BakeKind};
pub use clock::Clock;
pub use recovery::TargetMemory;
pub use step_hooks::JournalHooks;

use crate::config::{Config, Environment, PolicyRule, TargetConfig};
use crate::journal::Journal;
use crate::judge;
use crate::model::Mode;
use crate::notify::{DeliveryOptions, Notification, Notifiers, NotifyEvent};
use crate::probe::prometheus::MetricQuerier;
use crate::state::State;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

/// Process-wide services every target uses, made once at start.
#[derive(Clone)]
pub struct Services {
    /// The HTTP client of probes, version URLs, webhooks and http steps.
    pub http: reqwest::Client,
    /// Where `url_env`, `headers_env` and programs are looked up.
    pub env: Arc<dyn Environment + Send + Sync>,
    /// The `systemctl` that systemd_restart steps run.
    pub systemctl: PathBuf,
    /// Retry timing of notifications.
    pub delivery: DeliveryOptions,
    /// The Kubernetes client of `kubernetes` release sources, or why there
    /// is none.
    pub kube: Result<kube::Client, String>,
    /// The same client for `kubernetes_*` steps and shadow-mode dry runs
    /// (or, when none could be made at start, one built on first use).
    pub kube_steps: crate::kubernetes::KubeClient,
    /// The wall clock of bake windows, cooldowns and approvals: the
    /// system's, or one that tests move with tokio's paused clock.
    pub clock: Clock,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("systemctl", &self.systemctl)
            .finish_non_exhaustive()
    }
}

/// Everything a target's loop needs that comes from the configuration;
/// rebuilt on every reload.
pub struct Setup {
    /// The target's own section.
    pub target: TargetConfig,
    /// Its effective mode.
    pub mode: Mode,
    /// The decision matrix in force.
    pub rules: Vec<PolicyRule>,
    /// Prometheus, when configured.
    pub querier: Option<Arc<MetricQuerier>>,
    /// Why Prometheus cannot be queried (a token file that cannot be read),
    /// said in every metric's evidence.
    pub querier_error: Option<String>,
    /// Every notifier.
    pub notifiers: Arc<Notifiers>,
    /// Permits for health probes and version reads, shared by every target
    /// (`daemon.max_concurrent_probes`): what bounds the connections a
    /// burst of releases opens to the services.
    pub probe_permits: Arc<Semaphore>,
    /// `daemon.monitoring_notice_after`: how long an outage lasts before
    /// it is told, and a return before that is.
    pub monitoring_notice_after: std::time::Duration,
    /// Shared services.
    pub services: Services,
}

struct Running {
    config: TargetConfig,
    setup: watch::Sender<Arc<Setup>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The per-target tasks of a running daemon.
pub struct Watchdogs {
    state: State,
    services: Services,
    running: BTreeMap<String, Running>,
    notifiers: Option<Arc<Notifiers>>,
}

impl std::fmt::Debug for Watchdogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdogs")
            .field("targets", &self.running.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Watchdogs {
    /// Starts one task per target of `config`, each resuming from what the
    /// journal says about it: from `memories` (what [`journal_memories`]
    /// read, off the async threads) when it has the target, else read now.
    pub fn start(
        state: State,
        config: &Config,
        services: Services,
        memories: HashMap<String, TargetMemory>,
    ) -> Watchdogs {
        let mut watchdogs = Watchdogs {
            state,
            services,
            running: BTreeMap::new(),
            notifiers: None,
        };
        watchdogs.apply_with(config, memories);
        watchdogs
    }

    /// Names of the targets being watched.
    pub fn targets(&self) -> Vec<String> {
        self.running.keys().cloned().collect()
    }

    /// Brings the tasks in line with a new configuration: removed targets
    /// stop, new ones start, the others get their new settings between two
    /// ticks and keep everything they know.
    pub fn apply(&mut self, config: &Config) {
        self.apply_with(config, HashMap::new());
    }

    fn apply_with(&mut self, config: &Config, mut memories: HashMap<String, TargetMemory>) {
        let notifiers = Arc::new(Notifiers::new(
            &config.notifiers,
            self.services.env.as_ref(),
            self.services.http.clone(),
            self.state.journal().clone(),
            self.state.metrics().notifications.clone(),
            self.services.delivery,
        ));
        if let Some(old) = self.notifiers.replace(notifiers.clone()) {
            // The old notifiers finish what they have queued, then stop.
            drop(old);
        }
        let (querier, querier_error) = match config
            .prometheus
            .as_ref()
            .map(|p| MetricQuerier::new(p, self.services.http.clone()))
        {
            None => (None, None),
            Some(Ok(querier)) => (Some(Arc::new(querier)), None),
            Some(Err(error)) => {
                tracing::error!(%error, "Cannot query Prometheus; every metric check holds");
                (None, Some(format!("cannot query Prometheus: {error}")))
            }
        };
        let rules = judge::effective_rules(&config.policy);
        let probe_permits = Arc::new(Semaphore::new(config.daemon.max_concurrent_probes.max(1)));
        let wanted: BTreeMap<&str, &TargetConfig> = config
            .targets
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        let removed: Vec<String> = self
            .running
            .keys()
            .filter(|name| !wanted.contains_key(name.as_str()))
            .cloned()
            .collect();
        for name in removed {
            if let Some(running) = self.running.remove(&name) {
                let _ = running.stop.send(true);
                tracing::info!(target_name = %name, "Stopped watching a target removed from the configuration");
            }
        }
        // New targets not in `memories` are read in one pass over the journal.
        let unread: Vec<&TargetConfig> = wanted
            .iter()
            .filter(|(name, _)| {
                !self.running.contains_key(**name) && !memories.contains_key(**name)
            })
            .map(|(_, target)| *target)
            .collect();
        if !unread.is_empty() {
            let now = std::time::SystemTime::now();
            memories.extend(recovery::recover_all(self.state.journal(), &unread, now));
        }
        for (name, target) in wanted {
            let mode = config.mode_of(target);
            self.state.update_target(name, |s| s.mode = mode);
            let setup = Arc::new(Setup {
                target: target.clone(),
                mode,
                rules: rules.clone(),
                querier: querier.clone(),
                querier_error: querier_error.clone(),
                notifiers: notifiers.clone(),
                probe_permits: probe_permits.clone(),
                monitoring_notice_after: config.daemon.monitoring_notice_after,
                services: self.services.clone(),
            });
            if let Some(running) = self.running.get_mut(name) {
                if running.config != *target {
                    tracing::info!(target_name = %name, "The target's new settings apply from its next tick");
                }
                running.config = target.clone();
                let _ = running.setup.send(setup);
                continue;
            }
            tracing::info!(target_name = %name, %mode, "Watching a new target");
            let mut memory = memories.remove(name);
            let (setup_tx, setup_rx) = watch::channel(setup);
            let (stop, stopped) = watch::channel(false);
            let state = self.state.clone();
            let loop_stop = stopped.clone();
            let target_name = name.to_owned();
            // Each run of the loop gets a fresh command channel (a panic
            // drops the old receiver) and, after a failure, what the
            // journal says now.
            let start = move |_run| {
                let setups = setup_rx.clone();
                let memory = memory.take().unwrap_or_else(|| {
                    let target = &setups.borrow().target;
                    recovery::recover(state.journal(), target, std::time::SystemTime::now())
                });
                let (commands_tx, commands_rx) = mpsc::channel(16);
                state.set_commands(&target_name, commands_tx);
                target::run(
                    state.clone(),
                    setups,
                    memory,
                    commands_rx,
                    loop_stop.clone(),
                )
            };
            let task = tokio::spawn(supervise::supervise(
                self.state.clone(),
                name.to_owned(),
                stopped,
                start,
            ));
            self.running.insert(
                name.to_owned(),
                Running {
                    config: target.clone(),
                    setup: setup_tx,
                    stop,
                    task,
                },
            );
        }
        self.state
            .retain_targets(|name| self.running.contains_key(name));
        self.state.metrics().targets.set(self.running.len() as i64);
    }

    /// Stops every task: no new tick or step starts; work in progress may
    /// finish within `grace`, after which it is abandoned. Returns the
    /// targets whose work was interrupted.
    pub async fn shutdown(self, grace: Duration) -> Vec<String> {
        for running in self.running.values() {
            let _ = running.stop.send(true);
        }
        let deadline = tokio::time::Instant::now() + grace;
        let mut interrupted = Vec::new();
        for (name, running) in self.running {
            let mut task = running.task;
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
                if let Some(unfinished) =
                    recovery::unfinished_now(self.state.journal(), &running.config)
                {
                    tracing::warn!(target_name = %name, release_id = %unfinished.release_id, steps = ?unfinished.open_steps, "A rollback step was still running after the grace period; recorded as interrupted, the restore steps run on the next start");
                    // Dropping the step's child killed it, not its group.
                    recovery::stop_leftovers(&name, &unfinished).await;
                    if let Err(error) =
                        recovery::close_open_steps(self.state.journal(), &name, &unfinished).await
                    {
                        tracing::error!(target_name = %name, %error, "Cannot journal the interruption");
                    }
                }
                interrupted.push(name);
            }
        }
        // The tasks are gone, so the last reference is ours: deliver what
        // is queued, briefly.
        if let Some(notifiers) = self.notifiers.and_then(Arc::into_inner) {
            notifiers.shutdown(Duration::from_secs(2)).await;
        }
        interrupted
    }
}

/// Reads the journal for what a target was doing; used by the daemon at
/// start and by tests.
pub fn journal_memory(journal: &Journal, target: &TargetConfig) -> TargetMemory {
    recovery::recover(journal, target, std::time::SystemTime::now())
}

/// What the journal says about each of `targets` as of `now`, read in one
/// pass: what the daemon hands [`Watchdogs::start`].
pub fn journal_memories(
    journal: &Journal,
    targets: &[TargetConfig],
    now: std::time::SystemTime,
) -> HashMap<String, TargetMemory> {
    let targets: Vec<&TargetConfig> = targets.iter().collect();
    recovery::recover_all(journal, &targets, now)
}

/// Restores the pause switches journaled by the API, so that a kill switch
/// survives a restart.
pub fn restore_pauses(state: &State) {
    let mut pauses = Vec::new();
    state.journal().for_each_record(|record| {
        if let crate::journal::Event::PauseChanged { paused } = record.event {
            pauses.push((record.target.clone(), paused));
        }
    });
    for (target, paused) in pauses {
        state.set_paused(target.as_deref(), paused);
    }
}

impl Setup {
    /// A notification of `event` about this target happening `at`, in its
    /// mode, naming its status channel.
    fn notification(&self, event: NotifyEvent, at: std::time::SystemTime) -> Notification {
        Notification::new(event, &self.target.name, self.mode, at)
            .with_status_channel(self.target.status_channel.clone())
    }
}

/// Sets a notification's versions when they are known. Notifications say
/// `from` for the version judged (or rolled back) and `to` for the one a
/// rollback brings back.
trait WithVersions {
    fn with_versions(self, judged: Option<String>, restore: Option<String>) -> Self;
}

impl WithVersions for Notification {
    fn with_versions(self, judged: Option<String>, restore: Option<String>) -> Self {
        let n = match judged {
            Some(judged) => self.with_from(judged),
            None => self,
        };
        match restore {
            Some(restore) => n.with_to(restore),
            None => n,
        }
    }
}
