//! The loop of one target: ticks, release detection (`target/releases.rs`),
//! judgement, and the commands the API sends it (announce, approve, time to
//! fix, a manual rollback; `target/commands.rs`, `target/manual.rs`).
//! Acting on a decision is the [`Actor`]'s, which borrows the parts of the
//! loop it needs and hands back what the loop must take in.

mod commands;
mod manual;
mod releases;
mod resume;

use super::Setup;
use super::act::Actor;
use super::bake::{Bake, BakeKind};
use super::observe::{self, Window};
use super::recovery::TargetMemory;
use crate::journal::Event;
use crate::judge::{self, Judge};
use crate::metrics::DecisionLabels;
use crate::model::{Decision, TimeToFix};
use crate::notify::Notification;
use crate::probe::HealthProbe;
use crate::release::{ReleaseSource, ReleaseTracker};
use crate::state::{State, TargetCommand};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};

/// A target's loop and everything it knows.
pub(super) struct TargetLoop {
    state: State,
    setup: Arc<Setup>,
    source: Option<ReleaseSource>,
    probes: Vec<HealthProbe>,
    tracker: ReleaseTracker,
    bake: Option<Bake>,
    last_automatic_rollback: Option<SystemTime>,
    time_to_fix: Option<Duration>,
    ticks: u64,
    source_error: Option<String>,
    /// The source answered a version rollguard refuses (a newline, 10,000
    /// characters, a bidi control): the running version is unknown.
    version_refused: bool,
    /// When the source last showed the running version: a release seen by
    /// polling happened after this, so the pre-release baseline ends here
    /// and is not tainted by the first minutes of the new version.
    last_seen_at: Option<SystemTime>,
    stop: watch::Receiver<bool>,
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
    let mut period = target.tick_period();
    let mut ticker = target.ticker(period);
    loop {
        tokio::select! {
            biased;
            _ = async { stopped.wait_for(|stop| *stop).await.map(|_| ()) } => return,
            Ok(()) = setups.changed() => {
                let setup = setups.borrow_and_update().clone();
                target.reconfigure(setup);
            }
            Some(command) = commands.recv() => target.command(command).await,
            _ = ticker.tick() => target.tick().await,
        }
        // A bake window opened or closed, or the settings changed: tick at
        // the period that fits, on the target's phase.
        let wanted = target.tick_period();
        if wanted != period {
            period = wanted;
            ticker = target.ticker(period);
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
            last_automatic_rollback: memory.last_rollback_at,
            time_to_fix: memory.time_to_fix,
            ticks: 0,
            source_error: None,
            version_refused: false,
            last_seen_at: None,
            stop,
            setup: setup.clone(),
        };
        target.reconfigure(setup);
        let name = target.name().to_owned();
        // A loop that starts runs no rollback (one that a failed run of
        // the loop left shown is over).
        target.state.update_target(&name, |s| s.rollback = None);
        if let Some(unfinished) = &memory.unfinished {
            target.resume_interrupted(unfinished).await;
        }
        if let Some(open) = memory.open {
            let kind = if open.by_rollguard {
                BakeKind::Verification
            } else {
                BakeKind::Release
            };
            let mut bake = Bake::new(
                open.release_id,
                open.version,
                open.previous_version,
                open.started,
                kind,
                Judge::new(&target.setup.target),
                target.setup.target.bake_window,
            );
            bake.acted = open.acted || memory.unfinished.is_some();
            bake.rolled_back = open.acted;
            tracing::info!(
                target_name = %name,
                release_id = %bake.release_id,
                version = %bake.version,
                acted = bake.acted,
                "Resuming the bake window of a release seen before the restart"
            );
            target.bake = Some(bake);
        }
        target.publish();
        target
    }

    /// The time to fix in force: the operator's (`rollguard eta`) or the
    /// target's.
    fn time_to_fix(&self) -> TimeToFix {
        self.time_to_fix
            .map_or(self.setup.target.time_to_fix, TimeToFix::Known)
    }

    /// A ticker of `period` on the target's phase.
    fn ticker(&self, period: Duration) -> tokio::time::Interval {
        super::phase::ticker(self.name(), period, &self.setup.services.clock)
    }

    /// The target's name.
    fn name(&self) -> &str {
        &self.setup.target.name
    }

    /// The time of day, from the injected clock.
    fn now(&self) -> SystemTime {
        self.setup.services.clock.now()
    }

    /// The actor for the release being watched, if any.
    fn actor(&mut self) -> Option<Actor<'_>> {
        Some(Actor {
            state: &self.state,
            setup: &self.setup,
            bake: self.bake.as_mut()?,
            last_automatic_rollback: &mut self.last_automatic_rollback,
            tracker: &mut self.tracker,
            source: self.source.as_ref(),
            stop: &self.stop,
        })
    }

    /// Takes new settings; the bake window and what was decided stay.
    fn reconfigure(&mut self, setup: Arc<Setup>) {
        let client = setup.services.http.clone();
        // A Kubernetes source watches in the background: keep it (and what
        // it has seen) when its settings did not change.
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

    /// How often this loop ticks now: every `interval` during a bake window
    /// (and while a rollback may be approved), every
    /// `release.poll_interval` (when set) while only the version is read.
    fn tick_period(&self) -> Duration {
        let target = &self.setup.target;
        match (&self.bake, target.release.poll_interval()) {
            (None, Some(poll)) => poll,
            _ => target.interval,
        }
    }

    /// One tick: release source, then the bake window.
    async fn tick(&mut self) {
        self.ticks += 1;
        self.state.metrics().tick(&self.setup.target.name);
        let now = self.now();
        self.read_source(now).await;
        // A version rollguard refuses is an unknown version: what runs may
        // not be the release being baked, so its window neither acts nor
        // ends until the version can be read again.
        if self.version_refused {
            self.publish();
            return;
        }
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

    /// Probes, queries, judgement, decision, action.
    async fn judge_tick(&mut self) {
        let Some(bake) = &self.bake else { return };
        let window = Window {
            version: &bake.version,
            previous_version: bake.previous_version.as_deref(),
            release_at: bake.started,
            window_start: None,
            baselines: &bake.baselines,
        };
        let observation =
            observe::observe(&self.state, &self.setup, &self.probes, &window, self.ticks).await;
        let time_to_fix = self.time_to_fix();
        let Some(bake) = &mut self.bake else { return };
        let assessment = bake
            .judge
            .assess(&observation, bake.data_impact.0, time_to_fix);
        let mut record = judge::decide(&self.setup.rules, &assessment);
        record.reasons.extend(bake.data_impact.1.iter().cloned());
        // The evidence of a tick that would act must be about the release
        // being baked: a deploy between the version read and the probes
        // would blame this release for the next one's failures (and roll
        // back the wrong version). The next tick sees the new release.
        let acts = !matches!(record.decision, Decision::Healthy | Decision::Inconclusive);
        let version = bake.version.clone();
        if acts && let Some(now_running) = self.version_moved(&version).await {
            tracing::info!(
                target_name = %self.setup.target.name,
                judged = %version,
                now_running = %now_running,
                decision = %record.decision,
                "The version changed during the tick; its evidence is set aside and the next tick judges the new release"
            );
            return;
        }
        let Some(bake) = &mut self.bake else { return };
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
                "at": humantime::format_rfc3339_seconds(self.setup.services.clock.now()).to_string(),
                "decision": record.decision,
                "severity": record.severity,
                "data_impact": record.data_impact,
                "time_to_fix": record.time_to_fix.as_config(),
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
        let restored = match self.actor() {
            Some(mut actor) => actor.act(&assessment, &record).await,
            None => None,
        };
        if let Some(change) = restored {
            self.on_change(change).await;
        }
    }

    /// Sends a notification to the target's notifiers (never waits).
    fn notify(&self, notification: Notification) {
        self.setup
            .notifiers
            .send(&self.setup.target.notify, notification);
    }

    /// Shows the loop's state on the API.
    fn publish(&self) {
        let name = self.setup.target.name.clone();
        let current = self.tracker.current().map(str::to_owned);
        let release = self.bake.as_ref().map(Bake::status);
        let approval = self
            .bake
            .as_ref()
            .and_then(|b| b.approval.as_ref())
            .and_then(|a| serde_json::to_value(a).ok());
        let time_to_fix = self.time_to_fix().as_config();
        let (ticks, mode) = (self.ticks, self.setup.mode);
        let version_error = self.source_error.clone();
        self.state.update_target(&name, |s| {
            s.version_error = version_error;
            s.mode = mode;
            s.current_version = current;
            s.release = release;
            s.approval = approval;
            s.time_to_fix = Some(time_to_fix);
            s.ticks = ticks;
        });
    }
}
