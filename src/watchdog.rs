//! One task per target: every `interval` it runs a tick (probes, queries,
//! judgement: filled in by the release-watching work) and records it.
//!
//! The [`Watchdogs`] supervisor owns the tasks. What is known about a target
//! (its current version, the release being baked) lives in a
//! [`TargetMemory`] that outlives its task, so that a configuration reload
//! restarts the loop with new settings without forgetting a release in
//! progress. This is the only module that spawns long-lived tasks.

use crate::config::{Config, TargetConfig};
use crate::state::State;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What rollguard knows about one target, kept across reloads.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TargetMemory {
    /// Version running now, once seen.
    pub current_version: Option<String>,
    /// Ticks run since the daemon started.
    pub ticks: u64,
}

struct Running {
    config: TargetConfig,
    memory: Arc<Mutex<TargetMemory>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The per-target tasks of a running daemon.
pub struct Watchdogs {
    state: State,
    running: BTreeMap<String, Running>,
}

impl std::fmt::Debug for Watchdogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdogs")
            .field("targets", &self.running.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Watchdogs {
    /// Starts one task per target of `config`.
    pub fn start(state: State, config: &Config) -> Watchdogs {
        let mut watchdogs = Watchdogs {
            state,
            running: BTreeMap::new(),
        };
        watchdogs.apply(config);
        watchdogs
    }

    /// Names of the targets being watched.
    pub fn targets(&self) -> Vec<String> {
        self.running.keys().cloned().collect()
    }

    /// Brings the tasks in line with a new configuration: removed targets
    /// stop, new ones start, changed ones restart with their memory kept,
    /// unchanged ones are left alone.
    pub fn apply(&mut self, config: &Config) {
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
        for (name, target) in wanted {
            let mode = config.mode_of(target);
            self.state.update_target(name, |s| s.mode = mode);
            let memory = match self.running.remove(name) {
                Some(running) if running.config == *target => {
                    self.running.insert(name.to_owned(), running);
                    continue;
                }
                Some(running) => {
                    let _ = running.stop.send(true);
                    tracing::info!(target_name = %name, "Restarting a target's watch with its new settings");
                    running.memory
                }
                None => {
                    tracing::info!(target_name = %name, %mode, "Watching a new target");
                    Arc::new(Mutex::new(TargetMemory::default()))
                }
            };
            let (stop, stopped) = watch::channel(false);
            let task = tokio::spawn(watch_target(
                self.state.clone(),
                target.clone(),
                memory.clone(),
                stopped,
            ));
            self.running.insert(
                name.to_owned(),
                Running {
                    config: target.clone(),
                    memory,
                    stop,
                    task,
                },
            );
        }
        self.state
            .retain_targets(|name| self.running.contains_key(name));
        self.state.metrics().targets.set(self.running.len() as i64);
    }

    /// The memory of a target, for tests and status.
    pub fn memory(&self, target: &str) -> Option<TargetMemory> {
        self.running
            .get(target)
            .map(|r| r.memory.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Stops every task: no new ticks start; a tick in progress may finish
    /// within `grace`, after which it is abandoned. Returns the targets
    /// whose work was interrupted.
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
                interrupted.push(name);
            }
        }
        interrupted
    }
}

/// The loop of one target, until `stopped` turns true.
async fn watch_target(
    state: State,
    target: TargetConfig,
    memory: Arc<Mutex<TargetMemory>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(target.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stopped.wait_for(|stop| *stop) => return,
            _ = ticker.tick() => {}
        }
        let ticks = {
            let mut memory = memory.lock().unwrap_or_else(|e| e.into_inner());
            memory.ticks += 1;
            memory.ticks
        };
        state.metrics().tick(&target.name);
        state.update_target(&target.name, |s| s.ticks = ticks);
        tracing::trace!(target_name = %target.name, ticks, "Tick");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Journal;
    use std::path::Path;

    fn config(text: &str) -> Config {
        crate::config::parse(text, Path::new("test.toml")).expect("valid test config")
    }

    const ONE: &str = r#"
[[target]]
name = "api"
interval = "1s"
bake_window = "1m"
[target.release]
kind = "announce"
"#;

    fn state(config: &Config, dir: &Path) -> State {
        let (journal, _) = Journal::open(dir).expect("journal");
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        State::new(Arc::new(config.clone()), None, journal, tx)
    }

    #[tokio::test(start_paused = true)]
    async fn reload_keeps_what_is_known_about_a_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = config(ONE);
        let state = state(&first, dir.path());
        let mut watchdogs = Watchdogs::start(state.clone(), &first);
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert_eq!(watchdogs.memory("api").map(|m| m.ticks), Some(4));

        // Same target with a new interval, plus a new one.
        let second = config(&format!(
            "{}\n[[target]]\nname = \"web\"\n[target.release]\nkind = \"announce\"\n",
            ONE.replace("interval = \"1s\"", "interval = \"2s\"")
        ));
        watchdogs.apply(&second);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        // Kept its 4 ticks, then ticked at 0 s and 2 s of the new interval.
        assert_eq!(watchdogs.memory("api").map(|m| m.ticks), Some(6));
        assert_eq!(watchdogs.targets(), vec!["api", "web"]);
        let names: Vec<String> = state.targets().into_iter().map(|t| t.name).collect();
        assert_eq!(names, vec!["api", "web"]);

        // Removing a target stops it and forgets its status.
        watchdogs.apply(&config(ONE));
        assert_eq!(watchdogs.targets(), vec!["api"]);
        assert_eq!(state.targets().len(), 1);
        let interrupted = watchdogs.shutdown(Duration::from_secs(1)).await;
        assert!(interrupted.is_empty());
    }
}
