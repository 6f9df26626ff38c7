//! The loop of one target: ticks, release detection, judgement, and the
//! commands the API sends it (announce, approve, time to fix).

use super::PipeVersions;
use super::Setup;
use super::act::Actor;
use super::bake::{Bake, BakeKind};
use super::observe::{self, Window};
use super::recovery::{self, TargetMemory};
use crate::data_check;
use crate::journal::Event;
use crate::judge::{self, Judge};
use crate::metrics::DecisionLabels;
use crate::notify::{Notification, NotifyEvent};
use crate::probe::HealthProbe;
use crate::release::{ReleaseChange, ReleaseSource, ReleaseTracker, SeenBy};
use crate::state::{State, TargetCommand};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};

/// A target's loop and everything it knows.
pub(super) struct TargetLoop {
    pub state: State,
    pub setup: Arc<Setup>,
    pub source: Option<ReleaseSource>,
    pub probes: Vec<HealthProbe>,
    pub tracker: ReleaseTracker,
    pub bake: Option<Bake>,
    pub last_rollback_at: Option<SystemTime>,
    pub time_to_fix: Option<Duration>,
    pub ticks: u64,
    pub source_error: Option<String>,
    /// When the source last showed the running version: a release seen by
    /// polling happened after this, so the pre-release baseline ends here
    /// and is not tainted by the first minutes of the new version.
    pub last_seen_at: Option<SystemTime>,
    pub stop: watch::Receiver<bool>,
}

/// Runs a target until `stop` turns true.
pub(super) async fn run(
    state: State,
    mut setups: watch::Receiver<Arc<Setup>>,
    memory: TargetMemory,
    mut commands: mpsc::Receiver<TargetCommand>,
    stop: watch::Receiver<bool>,
) {
    let setup = setups.borrow_and_update().clone();
    let mut target = TargetLoop::new(state, setup, memory, stop.clone()).await;
    let mut stopped = stop;
    let mut ticker = tokio::time::interval(target.setup.target.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = async { stopped.wait_for(|stop| *stop).await.map(|_| ()) } => return,
            Ok(()) = setups.changed() => {
                let setup = setups.borrow_and_update().clone();
                if setup.target.interval != target.setup.target.interval {
                    ticker = tokio::time::interval(setup.target.interval);
                    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                }
                target.reconfigure(setup);
            }
            Some(command) = commands.recv() => target.command(command).await,
            _ = ticker.tick() => target.tick().await,
        }
    }
}

impl TargetLoop {
    async fn new(
        state: State,
        setup: Arc<Setup>,
        memory: TargetMemory,
        stop: watch::Receiver<bool>,
    ) -> TargetLoop {
        let mut target = TargetLoop {
            state,
            source: None,
            probes: Vec::new(),
            tracker: memory.tracker,
            bake: None,
            last_rollback_at: memory.last_rollback_at,
            time_to_fix: memory.time_to_fix,
            ticks: 0,
            source_error: None,
            last_seen_at: None,
            stop,
            setup: setup.clone(),
        };
        target.reconfigure(setup);
        let name = target.name().to_owned();
        if let Some(unfinished) = &memory.unfinished {
            tracing::error!(
                target_name = %name,
                release_id = %unfinished.release_id,
                open_steps = ?unfinished.open_steps,
                "A rollback was cut short when rollguard stopped; it is not started again: check the service by hand"
            );
            if let Err(error) =
                recovery::close_unfinished(target.state.journal(), &name, unfinished).await
            {
                tracing::error!(target_name = %name, %error, "Cannot journal the interrupted rollback");
            }
            target.notify(
                Notification::new(
                    NotifyEvent::RollbackInterrupted,
                    &name,
                    target.setup.mode,
                    SystemTime::now(),
                )
                .with_release_id(&unfinished.release_id)
                .pipe_versions(Some(unfinished.from.clone()), Some(unfinished.to.clone()))
                .with_detail(format!(
                    "rollguard stopped while rolling back (steps still running: {}); the rollback is not repeated automatically: check which version runs",
                    if unfinished.open_steps.is_empty() { "none".to_owned() } else { unfinished.open_steps.join(", ") }
                )),
            );
        }
        if let Some(open) = memory.open {
            let kind = if open.by_rollguard {
                BakeKind::Verification
            } else {
                BakeKind::Release
            };
            let mut bake = Bake::new(
                open.release_id,
                open.from,
                open.to,
                open.started,
                kind,
                Judge::new(&target.setup.target),
                target.setup.target.bake_window,
            );
            bake.acted = open.acted || memory.unfinished.is_some();
            tracing::info!(
                target_name = %name,
                release_id = %bake.release_id,
                version = %bake.to,
                acted = bake.acted,
                "Resuming the bake window of a release seen before the restart"
            );
            target.bake = Some(bake);
        }
        target.publish();
        target
    }

    /// The target's name.
    pub fn name(&self) -> &str {
        &self.setup.target.name
    }

    /// Takes new settings; the bake window and what was decided stay.
    fn reconfigure(&mut self, setup: Arc<Setup>) {
        let client = setup.services.http.clone();
        // A Kubernetes source watches in the background: keep it (and what
        // it has seen) when its settings did not change (rollguard-k2).
        let keep = self.source.is_some() && self.setup.target.release == setup.target.release;
        if !keep {
            self.source = match ReleaseSource::with_kube(
                &setup.target.release,
                client.clone(),
                setup.services.kube.clone(),
            ) {
                Ok(source) => Some(source),
                Err(error) => {
                    tracing::error!(target_name = %setup.target.name, %error, "Cannot watch this target's releases");
                    None
                }
            };
        }
        self.probes = setup
            .target
            .probe
            .iter()
            .map(|p| HealthProbe::new(p, client.clone()))
            .collect();
        if let Some(bake) = &mut self.bake
            && self.setup.target != setup.target
        {
            // Streaks were counted against the old thresholds.
            bake.judge = Judge::new(&setup.target);
        }
        self.setup = setup;
        self.publish();
    }

    /// One tick: release source, then the bake window.
    async fn tick(&mut self) {
        self.ticks += 1;
        self.state.metrics().tick(&self.setup.target.name);
        let now = SystemTime::now();
        self.read_source(now).await;
        if let Some(bake) = &self.bake
            && now >= bake.until
        {
            self.finish_bake().await;
        }
        if self.bake.is_some() {
            self.judge_tick().await;
        }
        self.publish();
    }

    async fn read_source(&mut self, now: SystemTime) {
        let Some(source) = &self.source else { return };
        match source.current_version().await {
            Ok(Some(version)) => {
                if self.source_error.take().is_some() {
                    tracing::info!(target_name = %self.name(), "The release source answers again");
                }
                let last_seen = self.last_seen_at.replace(now);
                if self.rolled_back_elsewhere(&version, now).await {
                    return;
                }
                if let Some(mut change) = self.tracker.observe(&version, now) {
                    if let (ReleaseChange::Release { at, .. }, Some(last_seen)) =
                        (&mut change, last_seen)
                    {
                        *at = last_seen;
                    }
                    self.on_change(change).await;
                }
            }
            Ok(None) => {}
            Err(error) => {
                let message = error.to_string();
                if self.source_error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(target_name = %self.name(), error = %message, "Cannot read the running version; releases are not seen until it answers");
                    self.source_error = Some(message);
                }
            }
        }
    }

    /// rollguard-k2: the Deployment carries rollguard's rollback mark for
    /// the version running. If this replica still runs the bad release, the
    /// change to come is rollguard's own (another replica, or this one
    /// before a restart, rolled back); if it already took that change for
    /// a release (the mark arrived after the new revision), that window
    /// becomes a verification. Returns true when the tick's change was
    /// handled here.
    async fn rolled_back_elsewhere(&mut self, version: &str, now: SystemTime) -> bool {
        let Some(mark) = self
            .source
            .as_ref()
            .and_then(ReleaseSource::kubernetes)
            .and_then(|k| k.rolled_back())
        else {
            return false;
        };
        if mark.to != version {
            return false;
        }
        if self.tracker.current() == Some(mark.from.as_str())
            && self.tracker.expected_rollback(now) != Some(version)
        {
            tracing::info!(target_name = %self.name(), release_id = %mark.release_id, from = %mark.from, to = %mark.to, "The Deployment says rollguard rolled it back; not a release");
            self.tracker.expect_rollback(&mark.to, now);
            return false;
        }
        let Some(bake) = &self.bake else { return false };
        if bake.kind != BakeKind::Release
            || bake.to != mark.to
            || bake.from.as_deref() != Some(mark.from.as_str())
        {
            return false;
        }
        tracing::info!(target_name = %self.name(), release_id = %mark.release_id, version = %mark.to, "The Deployment says this version is rollguard's rollback, not a release");
        let ms = now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let change = ReleaseChange::Rollback {
            id: format!("{}-{ms}", self.name()),
            from: Some(mark.from),
            to: mark.to,
            at: now,
        };
        self.on_change(change).await;
        true
    }

    /// A version change: a release opens a bake window, rollguard's own
    /// rollback opens a verification window.
    pub async fn on_change(&mut self, change: ReleaseChange) {
        let name = self.name().to_owned();
        let (id, from, to, at, kind, source) = match change {
            ReleaseChange::Initial { version, .. } => {
                tracing::info!(target_name = %name, %version, "Running version (not a release)");
                return;
            }
            ReleaseChange::Release {
                id,
                from,
                to,
                at,
                seen_by,
            } => {
                let source = match seen_by {
                    SeenBy::Announce => "announce",
                    SeenBy::Source => self.setup.target.release.kind().as_str(),
                };
                (id, from, to, at, BakeKind::Release, source)
            }
            ReleaseChange::Rollback { id, from, to, at } => {
                (id, from, to, at, BakeKind::Verification, "rollguard")
            }
        };
        if self.bake.is_some() {
            self.finish_bake().await;
        }
        let event = Event::ReleaseSeen {
            from: from.clone(),
            to: to.clone(),
            source: source.to_owned(),
            by_rollguard: kind == BakeKind::Verification,
            release_id: id.clone(),
        };
        if let Err(error) = self.state.journal().append_async(Some(&name), event).await {
            tracing::error!(target_name = %name, %error, "Cannot journal the release");
        }
        let mut bake = Bake::new(
            id.clone(),
            from.clone(),
            to.clone(),
            at,
            kind,
            Judge::new(&self.setup.target),
            self.setup.target.bake_window,
        );
        if kind == BakeKind::Release {
            tracing::info!(target_name = %name, release_id = %id, from = ?from, %to, bake_window = ?self.setup.target.bake_window, "Release seen; watching it closely");
            bake.data_impact = self.data_impact(&bake).await;
            // Only the leader speaks (rollguard-k2); followers keep judging.
            if self.state.is_leader() {
                self.notify(
                    Notification::new(NotifyEvent::ReleaseDetected, &name, self.setup.mode, at)
                        .with_release_id(&id)
                        // Notifications say "from" for the version judged and
                        // "to" for the one a rollback would bring back.
                        .pipe_versions(Some(to), from)
                        .with_release_at(at),
                );
            }
        } else {
            tracing::info!(target_name = %name, release_id = %id, version = %to, "The rollback's version is running; verifying it (never rolled back again automatically)");
        }
        self.bake = Some(bake);
    }

    /// Runs the target's data checks for a release.
    async fn data_impact(&self, bake: &Bake) -> (crate::model::DataImpact, Vec<String>) {
        if self.setup.target.data_check.is_empty() {
            return (crate::model::DataImpact::None, Vec::new());
        }
        let vars = BTreeMap::from([
            ("target", self.name().to_owned()),
            ("version", bake.to.clone()),
            ("previous_version", bake.from.clone().unwrap_or_default()),
            ("release_id", bake.release_id.clone()),
        ]);
        data_check::data_impact(&self.setup.target.data_check, &vars).await
    }

    /// Closes the bake window.
    async fn finish_bake(&mut self) {
        let Some(bake) = self.bake.take() else { return };
        let decision = bake
            .last
            .as_ref()
            .map(|d| d.decision)
            .unwrap_or(crate::model::Decision::Healthy);
        tracing::info!(target_name = %self.name(), release_id = %bake.release_id, %decision, "Bake window closed");
        if let Some(approval) = &bake.approval {
            tracing::warn!(target_name = %self.name(), release_id = %bake.release_id, "The rollback was never approved; the request expired with the bake window");
            self.notify(
                Notification::new(
                    NotifyEvent::ApprovalExpired,
                    self.name(),
                    self.setup.mode,
                    SystemTime::now(),
                )
                .with_release_id(&bake.release_id)
                .pipe_versions(Some(bake.to.clone()), bake.from.clone())
                .with_detail(format!("asked for because {}", approval.reason)),
            );
        }
        let event = Event::BakeFinished {
            release_id: bake.release_id.clone(),
            decision,
        };
        if let Err(error) = self
            .state
            .journal()
            .append_async(Some(self.name()), event)
            .await
        {
            tracing::error!(target_name = %self.name(), %error, "Cannot journal the end of the bake window");
        }
    }

    /// Probes, queries, judgement, decision, action.
    async fn judge_tick(&mut self) {
        let Some(bake) = &self.bake else { return };
        let window = Window {
            version: &bake.to,
            previous_version: bake.from.as_deref(),
            release_at: bake.started,
            window_start: None,
        };
        let observation =
            observe::observe(&self.state, &self.setup, &self.probes, &window, self.ticks).await;
        let time_to_fix = self.time_to_fix.unwrap_or(self.setup.target.time_to_fix);
        let Some(bake) = &mut self.bake else { return };
        let assessment = bake
            .judge
            .assess(&observation, bake.data_impact.0, time_to_fix);
        let mut record = judge::decide(&self.setup.rules, &assessment);
        record.reasons.extend(bake.data_impact.1.iter().cloned());
        self.state
            .metrics()
            .decisions
            .get_or_create(&DecisionLabels {
                target: self.setup.target.name.clone(),
                decision: record.decision.as_str().to_owned(),
            })
            .inc();
        let changed = bake.last.as_ref().is_none_or(|last| {
            last.decision != record.decision || last.severity != record.severity
        });
        let name = self.setup.target.name.clone();
        self.state.update_target(&name, |s| {
            s.last_assessment = Some(serde_json::json!({
                "at": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
                "decision": record.decision,
                "severity": record.severity,
                "data_impact": record.data_impact,
                "time_to_fix": humantime::format_duration(record.time_to_fix).to_string(),
                "rule": record.rule,
                "reasons": record.reasons,
                "evidence": assessment.evidence,
            }));
        });
        if changed {
            tracing::info!(
                target_name = %name,
                release_id = %bake.release_id,
                decision = %record.decision,
                severity = %record.severity,
                rule = ?record.rule,
                "Assessment changed"
            );
            let journal = self.state.journal();
            let evidence = serde_json::to_value(&assessment).unwrap_or_default();
            let events = [
                Event::Assessment {
                    release_id: bake.release_id.clone(),
                    severity: assessment.severity,
                    evidence,
                },
                Event::DecisionMade {
                    release_id: bake.release_id.clone(),
                    decision: record.decision,
                    severity: record.severity,
                    rule: record.rule.clone(),
                    reasons: record.reasons.clone(),
                    mode: self.setup.mode,
                },
            ];
            for event in events {
                if let Err(error) = journal.append_async(Some(&name), event).await {
                    tracing::error!(target_name = %name, %error, "Cannot journal the assessment");
                }
            }
        }
        bake.last = Some(record.clone());
        Actor::new(self).act(&assessment, &record).await;
    }

    /// Sends a notification to the target's notifiers (never waits).
    pub fn notify(&self, notification: Notification) {
        self.setup
            .notifiers
            .send(&self.setup.target.notify, notification);
    }

    /// Shows the loop's state on the API.
    pub fn publish(&self) {
        let name = self.setup.target.name.clone();
        let current = self.tracker.current().map(str::to_owned);
        let release = self.bake.as_ref().map(Bake::status);
        let approval = self
            .bake
            .as_ref()
            .and_then(|b| b.approval.as_ref())
            .and_then(|a| serde_json::to_value(a).ok());
        let time_to_fix =
            humantime::format_duration(self.time_to_fix.unwrap_or(self.setup.target.time_to_fix))
                .to_string();
        let (ticks, mode) = (self.ticks, self.setup.mode);
        self.state.update_target(&name, |s| {
            s.mode = mode;
            s.current_version = current;
            s.release = release;
            s.approval = approval;
            s.time_to_fix = Some(time_to_fix);
            s.ticks = ticks;
        });
    }
}
