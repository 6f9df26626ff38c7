//! The daemon's lifecycle: start-up, the control loop (signals, reloads,
//! systemd's watchdog), and a graceful stop.
//!
//! - SIGTERM / SIGINT: stop taking new ticks, let running work finish within
//!   `daemon.shutdown_grace`, record what was interrupted, exit 0.
//! - SIGHUP (or `POST /api/v1/reload`): re-read the file; a bad file is
//!   logged, counted and journaled, and the old configuration keeps running;
//!   a good one is applied without forgetting releases in progress.
//! - sd_notify: READY=1 once serving, WATCHDOG=1 while the control loop is
//!   alive (when systemd asked for it), RELOADING=1 / READY=1 around a
//!   reload, STOPPING=1 on the way out.

use crate::config::ProcessEnvironment;
use crate::config::{self, Config, ConfigError, ConfigErrors};
use crate::journal::{Event, Journal};
use crate::state::{ApiToken, Control, State};
use crate::watchdog::{Services, Watchdogs};
use crate::{Error, api};
use futures_util::StreamExt;
use sd_notify::NotifyState;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// OS signals as the daemon understands them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Reload,
    Shutdown,
}

/// Runs the daemon until SIGTERM or SIGINT. `config` has been loaded from
/// `config_path`, which SIGHUP re-reads.
pub async fn run(config_path: PathBuf, config: Config) -> Result<(), Error> {
    let signals =
        signal_hook_tokio::Signals::new([SIGHUP, SIGINT, SIGTERM]).map_err(|e| Error::Io {
            context: "cannot install signal handlers".to_owned(),
            source: e,
        })?;
    // Only SIGHUP, SIGINT and SIGTERM are registered.
    let mut signals = signals.map(|s| match s {
        SIGHUP => Signal::Reload,
        _ => Signal::Shutdown,
    });
    // Installed before anything is read, so that a stop during a long
    // start-up (a big journal) is honoured at once. Start-up acts on
    // nothing before it is done, and every point of it is crash-safe, so
    // dropping it half-way is a clean stop; blocking work still running is
    // left to the runtime's shutdown (see main.rs).
    let until_shutdown = async {
        while let Some(signal) = signals.next().await {
            if signal == Signal::Shutdown {
                return;
            }
            tracing::info!(
                "Reload asked for during start-up; the configuration just loaded is used"
            );
        }
        std::future::pending::<()>().await;
    };
    let daemon = tokio::select! {
        daemon = Daemon::start(config_path, config) => daemon?,
        () = until_shutdown => {
            notify(&[NotifyState::Stopping]);
            tracing::info!("Stopped during start-up, before acting on anything");
            return Ok(());
        }
    };
    daemon.serve(signals).await
}

/// Runs the daemon until `shutdown` resolves, without touching the process's
/// signals: for `rollguard demo` and for tests that embed a daemon. The
/// returned [`State`] handle is sent on `started` once the daemon serves.
pub async fn run_until(
    config_path: PathBuf,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    started: tokio::sync::oneshot::Sender<State>,
) -> Result<(), Error> {
    let daemon = Daemon::start(config_path, config).await?;
    let _ = started.send(daemon.state.clone());
    let signals = futures_util::stream::once(shutdown).map(|()| Signal::Shutdown);
    daemon.serve(Box::pin(signals)).await
}

/// A started daemon: journal open, API listening, watchdogs running.
struct Daemon {
    config_path: PathBuf,
    state: State,
    watchdogs: Watchdogs,
    control: mpsc::Receiver<Control>,
    stop_api: watch::Sender<bool>,
    api: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The leader election's stop switch and task, when configured.
    election: Option<Election>,
}

impl Daemon {
    async fn start(config_path: PathBuf, config: Config) -> Result<Daemon, Error> {
        let token = read_token(&config)?;
        crate::exec::withhold_variables(config.secret_variables());
        let state_dir = config.daemon.state_dir.clone();
        let opened = tokio::task::spawn_blocking(move || Journal::open(&state_dir))
            .await
            .map_err(|e| Error::Io {
                context: "the journal's start-up task did not finish".to_owned(),
                source: std::io::Error::other(e),
            })?;
        let (journal, recovery) = opened?;
        tracing::info!(
            path = %journal.path().display(),
            records = recovery.records,
            last_seq = recovery.last_seq,
            skipped_corrupt = recovery.skipped_corrupt,
            skipped_unknown = recovery.skipped_unknown,
            "Opened the journal"
        );
        if let Some(torn) = &recovery.torn_tail {
            tracing::warn!(
                offset = torn.offset,
                bytes = torn.bytes,
                reason = %torn.reason,
                "The journal ended in a torn record (a crash mid-write); it was set aside and the journal continues after the last good record"
            );
        }
        compact(&journal, config.daemon.journal_retention).await;
        let targets = config.targets.clone();
        let reader = journal.clone();
        let memories = tokio::task::spawn_blocking(move || {
            crate::watchdog::journal_memories(&reader, &targets, std::time::SystemTime::now())
        })
        .await
        .map_err(|e| Error::Io {
            context: "the journal's start-up task did not finish".to_owned(),
            source: std::io::Error::other(e),
        })?;
        let listener = tokio::net::TcpListener::bind(config.daemon.listen)
            .await
            .map_err(|source| Error::Listen {
                addr: config.daemon.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Listen {
            addr: config.daemon.listen,
            source,
        })?;
        let (control_tx, control) = mpsc::channel(8);
        let config = Arc::new(config);
        let state = State::new(config.clone(), token, journal, control_tx);
        record(
            &state,
            Event::DaemonStarted {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            },
        )
        .await?;

        let (stop_api, api_stopped) = watch::channel(false);
        let api = tokio::spawn(api::serve(listener, state.clone(), async move {
            let mut stopped = api_stopped;
            let _ = stopped.wait_for(|s| *s).await;
        }));
        let http = crate::http::http_client().map_err(|e| Error::Io {
            context: "cannot build the HTTP client".to_owned(),
            source: std::io::Error::other(e),
        })?;
        let kube = kube_client(&config).await;
        let election = start_election(&config, &kube, &state)?;
        let services = Services {
            http,
            env: Arc::new(ProcessEnvironment),
            systemctl: PathBuf::from("/usr/bin/systemctl"),
            delivery: crate::notify::DeliveryOptions::default(),
            kube_steps: match &kube {
                Ok(client) => crate::kubernetes::KubeClient::from_client(client.clone()),
                Err(_) => crate::kubernetes::KubeClient::from_defaults(),
            },
            kube,
            clock: crate::watchdog::Clock::system(),
        };
        crate::watchdog::restore_pauses(&state);
        let watchdogs = Watchdogs::start(state.clone(), &config, services, memories);
        // Start-up has read the whole journal; from now on memory holds the
        // newest records and older ones are read from the file.
        state
            .journal()
            .keep_in_memory(crate::journal::MEMORY_RECORDS);
        state.set_ready(true);
        let status = format!(
            "Watching {} target(s); API on http://{addr}",
            config.targets.len()
        );
        notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
        tracing::info!(
            %addr,
            targets = config.targets.len(),
            mode = %config.daemon.mode,
            "rollguard is running"
        );
        Ok(Daemon {
            config_path,
            state,
            watchdogs,
            control,
            stop_api,
            api,
            election,
        })
    }

    async fn serve(
        mut self,
        signals: impl futures_util::Stream<Item = Signal> + Unpin,
    ) -> Result<(), Error> {
        let mut signals = signals;
        // Ping at half the period systemd asked for; never when it did not.
        let watchdog_period = sd_notify::watchdog_enabled().map(|usec| usec / 2);
        let mut watchdog =
            tokio::time::interval(watchdog_period.unwrap_or(Duration::from_secs(3600)));
        // Start-up has just compacted; the first tick of an interval is at once.
        let mut compaction = tokio::time::interval_at(
            tokio::time::Instant::now() + COMPACTION_PERIOD,
            COMPACTION_PERIOD,
        );
        compaction.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                signal = signals.next() => match signal {
                    Some(Signal::Reload) => {
                        let _ = self.reload().await;
                    }
                    Some(Signal::Shutdown) | None => break,
                },
                Some(control) = self.control.recv() => match control {
                    Control::Reload { reply } => {
                        let outcome = self.reload().await;
                        let _ = reply.send(outcome);
                    }
                },
                _ = watchdog.tick(), if watchdog_period.is_some() => {
                    notify(&[NotifyState::Watchdog]);
                }
                _ = compaction.tick() => {
                    let journal = self.state.journal().clone();
                    let retention = self.state.config().daemon.journal_retention;
                    // Off the control loop: appends wait for it, signals do not.
                    tokio::spawn(async move { compact(&journal, retention).await });
                }
            }
        }
        self.stop().await
    }

    /// Re-reads the configuration file and applies it if it is valid.
    async fn reload(&mut self) -> Result<(), String> {
        notify(&[NotifyState::Reloading]);
        let outcome = load_for_reload(&self.config_path, &self.state.config());
        let result = match outcome {
            Ok((config, token)) => {
                let config = Arc::new(config);
                crate::exec::withhold_variables(config.secret_variables());
                self.state.set_config(config.clone(), token);
                self.watchdogs.apply(&config);
                tracing::info!(
                    file = %self.config_path.display(),
                    targets = config.targets.len(),
                    "Applied the reloaded configuration"
                );
                Ok(())
            }
            Err(errors) => {
                let message = errors.to_string();
                tracing::error!(
                    file = %self.config_path.display(),
                    error = %message,
                    "The new configuration is invalid; the previous one keeps running"
                );
                Err(message)
            }
        };
        self.state.metrics().reload(result.is_ok());
        let event = Event::ConfigReloaded {
            ok: result.is_ok(),
            message: result.as_ref().err().cloned(),
        };
        if let Err(error) = record(&self.state, event).await {
            tracing::error!(%error, "Cannot journal the configuration reload");
        }
        notify(&[NotifyState::Ready]);
        result
    }

    /// Stops gracefully: not ready, no new ticks, running work gets the grace
    /// period, then the API stops and the journal says so.
    async fn stop(self) -> Result<(), Error> {
        notify(&[NotifyState::Stopping]);
        self.state.set_ready(false);
        let grace = self.state.config().daemon.shutdown_grace;
        tracing::info!(grace = ?grace, "Stopping: no new ticks; running work may finish within the grace period");
        let interrupted = self.watchdogs.shutdown(grace).await;
        for target in &interrupted {
            tracing::warn!(target_name = %target, "Work still running after the grace period was interrupted");
        }
        if let Some((stop, task)) = self.election {
            // Gives the Lease up so that another replica leads at once.
            let _ = stop.send(true);
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("The leader election did not stop within 5 s");
            }
        }
        let _ = self.stop_api.send(true);
        match tokio::time::timeout(Duration::from_secs(5), self.api).await {
            Ok(Ok(Err(error))) => tracing::warn!(%error, "The HTTP API stopped with an error"),
            Err(_) => tracing::warn!("The HTTP API did not stop within 5 s"),
            _ => {}
        }
        record(&self.state, Event::DaemonStopped).await?;
        tracing::info!("rollguard stopped");
        Ok(())
    }
}

/// Loads the file for a reload and refuses settings that only a restart can
/// change, so that what runs always matches what the file says.
fn load_for_reload(
    path: &Path,
    running: &Config,
) -> Result<(Config, Option<ApiToken>), ConfigErrors> {
    let config = config::load(path)?;
    let mut errors = Vec::new();
    let daemon = (&config.daemon, &running.daemon);
    for (key, changed) in [
        ("daemon.listen", daemon.0.listen != daemon.1.listen),
        ("daemon.state_dir", daemon.0.state_dir != daemon.1.state_dir),
        (
            "daemon.kubeconfig",
            daemon.0.kubeconfig != daemon.1.kubeconfig,
        ),
        (
            "daemon.leader_election",
            daemon.0.leader_election != daemon.1.leader_election,
        ),
    ] {
        if changed {
            errors.push(ConfigError {
                path: key.to_owned(),
                line: None,
                column: None,
                message: "changed, but only a restart can apply it".to_owned(),
            });
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors {
            file: path.to_owned(),
            errors,
        });
    }
    let token = read_token(&config)?;
    Ok((config, token))
}

/// Reads `daemon.api_token_file`, if set. A file that is set but unreadable
/// or empty is a configuration error: mutating calls must never be open by
/// accident, nor silently disabled.
fn read_token(config: &Config) -> Result<Option<ApiToken>, ConfigErrors> {
    let Some(path) = &config.daemon.api_token_file else {
        return Ok(None);
    };
    let error = |message: String| ConfigErrors {
        file: path.clone(),
        errors: vec![ConfigError {
            path: "daemon.api_token_file".to_owned(),
            line: None,
            column: None,
            message,
        }],
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| error(format!("cannot read {}: {e}", path.display())))?;
    ApiToken::new(&text)
        .map(Some)
        .ok_or_else(|| error(format!("{} is empty", path.display())))
}

/// The Kubernetes client: from `daemon.kubeconfig`, else
/// kube's defaults (`KUBECONFIG`, `~/.kube/config`, in-cluster). Made only
/// when a target or leader election needs one; otherwise, or when it cannot
/// be made, the reason.
async fn kube_client(config: &Config) -> Result<kube::Client, String> {
    let needed = config.daemon.leader_election.is_some()
        || config.targets.iter().any(|t| {
            t.release.kind() == config::ReleaseKind::Kubernetes
                || t.step.iter().any(|s| s.action.deployment_keys().is_some())
        });
    if !needed {
        return Err("no target needs one".to_owned());
    }
    let client = match &config.daemon.kubeconfig {
        Some(path) => {
            let from_file = async {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let options = kube::config::KubeConfigOptions::default();
                let client_config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                kube::Client::try_from(client_config).map_err(|e| e.to_string())
            };
            from_file.await
        }
        None => kube::Client::try_default().await.map_err(|e| e.to_string()),
    };
    if let Err(error) = &client {
        tracing::error!(%error, "Cannot make a Kubernetes client");
    }
    client
}

/// A running leader election: its stop switch and its task.
type Election = (watch::Sender<bool>, tokio::task::JoinHandle<()>);

/// Starts leader election when `daemon.leader_election` is set, and mirrors
/// leadership into the `rollguard_leader` metric. Configured but without a
/// Kubernetes client, the daemon does not start: it would never lead.
fn start_election(
    config: &Config,
    kube: &Result<kube::Client, String>,
    state: &State,
) -> Result<Option<Election>, Error> {
    let Some(settings) = &config.daemon.leader_election else {
        state.metrics().leader.set(1);
        return Ok(None);
    };
    let client = kube.clone().map_err(|reason| Error::Io {
        context: "daemon.leader_election is set".to_owned(),
        source: std::io::Error::other(format!("no Kubernetes client: {reason}")),
    })?;
    let namespace = settings
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let identity = crate::leader::default_identity();
    tracing::info!(lease = %settings.lease, %namespace, %identity, duration = ?settings.duration, "Leader election: only the leader acts");
    let elector = crate::leader::LeaseElector::new(
        client,
        &namespace,
        &settings.lease,
        &identity,
        settings.duration,
    );
    let (stop, stopped) = watch::channel(false);
    let (leading, task) = elector.spawn(stopped);
    state.metrics().leader.set(0);
    state.set_leadership(leading.clone());
    let metrics_state = state.clone();
    tokio::spawn(async move {
        let mut leading = leading;
        loop {
            let now = *leading.borrow_and_update();
            metrics_state.metrics().leader.set(i64::from(now));
            if leading.changed().await.is_err() {
                break;
            }
        }
    });
    Ok(Some((stop, task)))
}

/// How often a running daemon looks whether the journal is worth compacting.
const COMPACTION_PERIOD: Duration = Duration::from_secs(3600);

/// Compacts the journal for its retention ([`Journal::compact_for_retention`]),
/// logging what it did. A failure is logged; the journal is then unchanged
/// and the daemon goes on.
async fn compact(journal: &Journal, retention: Duration) {
    let started = std::time::Instant::now();
    match journal.compact_for_retention(retention).await {
        Ok(Some(done)) => tracing::info!(
            dropped = done.dropped,
            kept = done.kept,
            bytes_before = done.bytes_before,
            bytes_after = done.bytes_after,
            took = ?started.elapsed(),
            "Compacted the journal"
        ),
        Ok(None) => {}
        Err(error) => tracing::error!(%error, "Cannot compact the journal; it is unchanged"),
    }
}

/// Appends to the journal, counting the write.
async fn record(state: &State, event: Event) -> Result<(), Error> {
    let result = state.journal().append_async(None, event).await;
    state.metrics().journal_write(result.is_ok());
    result.map(|_| ()).map_err(Error::from)
}

/// Tells systemd (when it listens) how the daemon is doing.
fn notify(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "Cannot notify systemd");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: &str = "\n[[target]]\nname = \"api\"\n[target.release]\nkind = \"announce\"\n";

    #[test]
    fn a_reload_refuses_what_only_a_restart_can_change_and_applies_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rollguard.toml");
        let running = config::parse(
            &format!("[daemon]\nlisten = \"127.0.0.1:9187\"\n{TARGET}"),
            &path,
        )
        .expect("valid");

        std::fs::write(
            &path,
            format!("[daemon]\nlisten = \"127.0.0.1:9999\"\nstate_dir = \"/tmp/other\"\n{TARGET}"),
        )
        .expect("write");
        let errors = load_for_reload(&path, &running).expect_err("refused");
        let keys: Vec<&str> = errors.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(keys, vec!["daemon.listen", "daemon.state_dir"]);
        assert!(errors.to_string().contains("only a restart can apply it"));

        std::fs::write(
            &path,
            format!("[daemon]\nlisten = \"127.0.0.1:9187\"\nmode = \"enforce\"\n{TARGET}"),
        )
        .expect("write");
        let (config, token) = load_for_reload(&path, &running).expect("applied");
        assert_eq!(config.daemon.mode, crate::model::Mode::Enforce);
        assert!(token.is_none());
    }
}
