//! The mode gate: what a decision leads to for a target in `enforce`,
//! `shadow` or `approve` mode, paused or not, in cooldown or not; and the
//! rollback itself, journaled before each action.

use super::PipeVersions;
use super::bake::{Approval, BakeKind};
use super::step_hooks::{StepHooks, timeline};
use super::target::TargetLoop;
use super::verifier::TargetVerifier;
use crate::journal::Event;
use crate::metrics::RollbackLabels;
use crate::model::{Assessment, CheckKind, Decision, DecisionRecord, Mode, Severity, Verdict};
use crate::notify::{Notification, NotifyEvent};
use crate::pipeline::{self, JournalHooks, PipelineDeps, PipelineOutcome, RollbackContext};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Acts on one target's decisions.
pub(super) struct Actor<'a> {
    target: &'a mut TargetLoop,
}

/// Who started a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Automatic,
    Approved,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Automatic => "automatic",
            Trigger::Approved => "approved",
        }
    }
}

impl<'a> Actor<'a> {
    pub fn new(target: &'a mut TargetLoop) -> Actor<'a> {
        Actor { target }
    }

    fn notification(&self, event: NotifyEvent, record: Option<&DecisionRecord>) -> Notification {
        let t = &self.target;
        let mut n = Notification::new(event, t.name(), t.setup.mode, SystemTime::now());
        if let Some(bake) = &t.bake {
            n = n
                .with_release_id(&bake.release_id)
                .pipe_versions(Some(bake.to.clone()), bake.from.clone())
                .with_release_at(bake.started);
        }
        if let Some(record) = record {
            n = n
                .with_decision(record.decision)
                .with_severity(record.severity)
                .with_reasons(record.reasons.clone());
        }
        n
    }

    /// Acts on this tick's decision.
    pub async fn act(&mut self, assessment: &Assessment, record: &DecisionRecord) {
        // rollguard-k2: a follower judges (status stays live) but never acts
        // or notifies; the leader does both.
        if !self.target.state.is_leader() {
            if record.decision == Decision::Rollback {
                tracing::debug!(target_name = %self.target.name(), "Not the leader: the leader decides whether to roll back");
            }
            return;
        }
        self.monitoring(assessment);
        let Some(bake) = &mut self.target.bake else {
            return;
        };
        if record.severity > bake.notified_severity && !assessment.inconclusive {
            bake.notified_severity = record.severity;
            let n = self.notification(NotifyEvent::Degraded, Some(record));
            self.target.notify(n);
        }
        let Some(bake) = &mut self.target.bake else {
            return;
        };
        if bake.acted {
            return;
        }
        let kind = bake.kind;
        match (kind, record.decision) {
            (_, Decision::Healthy | Decision::Inconclusive) => {}
            (BakeKind::Verification, _) => {
                if bake.first_time(record.decision) {
                    let n = self
                        .notification(NotifyEvent::Decision, Some(record))
                        .with_detail(
                            "the version the rollback brought back is unhealthy too; rollguard takes no further automatic action".to_owned(),
                        );
                    self.target.notify(n);
                }
            }
            (BakeKind::Release, Decision::ForwardFix) => {
                if bake.first_time(record.decision) {
                    let n = self
                        .notification(NotifyEvent::Decision, Some(record))
                        .with_detail("a forward fix is preferred; no rollback".to_owned());
                    self.target.notify(n);
                }
            }
            (BakeKind::Release, Decision::ConsiderRollback) => {
                self.request_approval(record, "the decision matrix asks a human to decide")
                    .await;
            }
            (BakeKind::Release, Decision::Rollback) => self.rollback_decided(record).await,
        }
    }

    /// Says "monitoring is down" once per outage, and when it is back.
    fn monitoring(&mut self, assessment: &Assessment) {
        let errors: Vec<String> = assessment
            .evidence
            .iter()
            .filter(|e| e.kind == CheckKind::Metric && e.verdict == Verdict::Error)
            .map(|e| e.reason.clone())
            .collect();
        let Some(bake) = &mut self.target.bake else {
            return;
        };
        if !errors.is_empty() && !bake.monitoring_down {
            bake.monitoring_down = true;
            tracing::warn!(target_name = %self.target.name(), errors = ?errors, "Monitoring is down: holding, no automatic rollback until it is back");
            let n = self
                .notification(NotifyEvent::MonitoringDown, None)
                .with_detail(errors.join("; "))
                .with_reasons(errors);
            self.target.notify(n);
        } else if errors.is_empty() && bake.monitoring_down {
            bake.monitoring_down = false;
            tracing::info!(target_name = %self.target.name(), "Monitoring is back");
            let n = self.notification(NotifyEvent::MonitoringRecovered, None);
            self.target.notify(n);
        }
    }

    /// A rollback decision, through the mode gate.
    async fn rollback_decided(&mut self, record: &DecisionRecord) {
        let name = self.target.name().to_owned();
        match self.target.setup.mode {
            Mode::Shadow => {
                let Some(bake) = &mut self.target.bake else {
                    return;
                };
                bake.acted = true;
                let steps = self.planned_steps();
                // Kubernetes undo: what the API server says of a dry run.
                let dry_runs = self.undo_dry_runs().await;
                self.count_rollback("shadowed");
                tracing::warn!(target_name = %name, steps = ?steps, ?dry_runs, "Shadow mode: would roll back now");
                let n = self
                    .notification(NotifyEvent::WouldRollback, Some(record))
                    .with_detail(format!(
                        "nothing was changed (shadow mode); the pipeline would run: {}{}",
                        if steps.is_empty() {
                            "no steps are configured".to_owned()
                        } else {
                            steps.join("; ")
                        },
                        dry_runs
                            .iter()
                            .map(|answer| format!("; {answer}"))
                            .collect::<String>()
                    ));
                self.target.notify(n);
            }
            Mode::Approve => {
                self.request_approval(record, "approve mode: every rollback waits for a human")
                    .await;
            }
            Mode::Enforce => {
                if self.target.state.is_paused(&name) {
                    self.request_approval(record, "automatic action is paused")
                        .await;
                    return;
                }
                let cooldown = self.target.setup.target.cooldown;
                if let Some(last) = self.target.last_rollback_at
                    && SystemTime::now() < last + cooldown
                {
                    let reason = format!(
                        "cooldown: the last automatic rollback of {name} started {} ago (cooldown {})",
                        humantime::format_duration(round(last.elapsed().unwrap_or_default())),
                        humantime::format_duration(cooldown)
                    );
                    self.request_approval(record, &reason).await;
                    return;
                }
                self.rollback(Trigger::Automatic, record.clone()).await;
            }
        }
    }

    /// Opens an approval request (once per release).
    async fn request_approval(&mut self, record: &DecisionRecord, reason: &str) {
        let name = self.target.name().to_owned();
        let mode = self.target.setup.mode;
        let Some(bake) = &mut self.target.bake else {
            return;
        };
        if mode == Mode::Shadow {
            if bake.first_time(record.decision) {
                let n = self
                    .notification(NotifyEvent::Decision, Some(record))
                    .with_detail(format!(
                        "shadow mode: rollguard would ask for approval to roll back ({reason})"
                    ));
                self.target.notify(n);
            }
            return;
        }
        if bake.approval.is_some() {
            return;
        }
        let approval = Approval {
            requested_at: SystemTime::now(),
            expires_at: bake.until,
            reason: reason.to_owned(),
        };
        let event = Event::ApprovalRequested {
            release_id: bake.release_id.clone(),
            expires_at: humantime::format_rfc3339_seconds(bake.until).to_string(),
        };
        bake.approval = Some(approval);
        if let Err(error) = self
            .target
            .state
            .journal()
            .append_async(Some(&name), event)
            .await
        {
            tracing::error!(target_name = %name, %error, "Cannot journal the approval request");
        }
        tracing::warn!(target_name = %name, %reason, "Rollback waits for approval: rollguard approve {name}");
        let n = self
            .notification(NotifyEvent::ApprovalRequested, Some(record))
            .with_detail(format!(
                "{reason}. Approve with `rollguard approve {name}` (or POST /api/v1/targets/{name}/approve) before the bake window ends"
            ));
        self.target.notify(n);
    }

    /// A human's approval of the pending rollback: checked and journaled;
    /// the caller answers the human, then runs [`Actor::rollback_approved`].
    pub async fn approve(&mut self) -> Result<DecisionRecord, String> {
        let name = self.target.name().to_owned();
        if !self.target.state.is_leader() {
            return Err(format!(
                "this replica does not lead: approve {name} on the leader (see `leader` in its status)"
            ));
        }
        if self.target.setup.mode == Mode::Shadow {
            return Err(format!(
                "{name} is in shadow mode: nothing runs; set its mode to approve or enforce"
            ));
        }
        let Some(bake) = &mut self.target.bake else {
            return Err(format!("no release of {name} is being watched"));
        };
        if bake.acted {
            return Err(format!(
                "rollguard already acted on this release of {name}; see `rollguard status`"
            ));
        }
        let Some(approval) = &bake.approval else {
            return Err(format!("no rollback of {name} is waiting for approval"));
        };
        if SystemTime::now() >= approval.expires_at {
            bake.approval = None;
            return Err(format!(
                "the approval request for {name} expired with its bake window"
            ));
        }
        bake.approval = None;
        let release_id = bake.release_id.clone();
        let record = bake.last.clone().unwrap_or(DecisionRecord {
            decision: Decision::ConsiderRollback,
            severity: Severity::None,
            data_impact: bake.data_impact.0,
            time_to_fix: self.target.setup.target.time_to_fix,
            rule: None,
            reasons: Vec::new(),
        });
        if let Err(error) = self
            .target
            .state
            .journal()
            .append_async(
                Some(&name),
                Event::Approved {
                    release_id: release_id.clone(),
                },
            )
            .await
        {
            return Err(format!("cannot journal the approval: {error}"));
        }
        tracing::info!(target_name = %name, %release_id, "Rollback approved by an operator");
        Ok(record)
    }

    /// Runs an approved rollback.
    pub async fn rollback_approved(&mut self, record: DecisionRecord) -> String {
        self.rollback(Trigger::Approved, record).await
    }

    /// What the pipeline would run, one line per step.
    fn planned_steps(&self) -> Vec<String> {
        let Some(context) = self.context("") else {
            return Vec::new();
        };
        pipeline::ordered(&self.target.setup.target.step)
            .into_iter()
            .map(|step| pipeline::describe(step, &context))
            .collect()
    }

    /// Shadow mode, Kubernetes undo: each `kubernetes_undo` step's PATCH
    /// sent as a server-side dry run (`?dryRun=All`, nothing changes), and
    /// what came of it: "the API server accepted a rollback of prod/app to
    /// revision 4 (dry run)", or why not.
    async fn undo_dry_runs(&self) -> Vec<String> {
        let Some(context) = self.context("") else {
            return Vec::new();
        };
        let services = &self.target.setup.services;
        let mut deps = PipelineDeps::new(services.http.clone(), services.env.clone());
        deps.kube = services.kube_steps.clone();
        let undo_steps = pipeline::ordered(&self.target.setup.target.step)
            .into_iter()
            .filter(|step| step.kind() == crate::config::StepKind::KubernetesUndo);
        let mut answers = Vec::new();
        for step in undo_steps {
            let answer = pipeline::dry_run(step, &context, &deps).await;
            answers.push(answer.unwrap_or_else(|error| error));
        }
        answers
    }

    fn context(&self, reason: &str) -> Option<RollbackContext> {
        let bake = self.target.bake.as_ref()?;
        Some(RollbackContext {
            target: self.target.name().to_owned(),
            from_version: bake.to.clone(),
            to_version: bake.from.clone()?,
            release_id: bake.release_id.clone(),
            mode: self.target.setup.mode,
            reason: reason.to_owned(),
            link_hint: self.target.setup.target.release.path().map(Into::into),
            namespace_hint: self.target.setup.target.release.namespace().map(Into::into),
            deployment_hint: self
                .target
                .setup
                .target
                .release
                .deployment()
                .map(Into::into),
        })
    }

    fn count_rollback(&self, outcome: &str) {
        self.target
            .state
            .metrics()
            .rollbacks
            .get_or_create(&RollbackLabels {
                target: self.target.name().to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Runs the rollback pipeline and verifies the result. Returns a line
    /// for whoever asked.
    async fn rollback(&mut self, trigger: Trigger, record: DecisionRecord) -> String {
        let name = self.target.name().to_owned();
        let reason = record.reasons.join("; ");
        let Some(context) = self.context(&reason) else {
            let n = self
                .notification(NotifyEvent::RollbackFailed, Some(&record))
                .with_detail(
                    "the previous version is unknown, so there is nothing to roll back to"
                        .to_owned(),
                );
            self.target.notify(n);
            if let Some(bake) = &mut self.target.bake {
                bake.acted = true;
            }
            return format!("cannot roll back {name}: the previous version is unknown");
        };
        let journal = self.target.state.journal().clone();
        let started = Event::RollbackStarted {
            release_id: context.release_id.clone(),
            from: context.from_version.clone(),
            to: context.to_version.clone(),
            trigger: trigger.as_str().to_owned(),
        };
        // Synced before anything runs: a crash from here on is never
        // followed by a second rollback.
        if let Err(error) = journal.append_async(Some(&name), started).await {
            tracing::error!(target_name = %name, %error, "Cannot journal the rollback; not starting it");
            return format!("not rolling back {name}: the journal cannot be written ({error})");
        }
        if let Some(bake) = &mut self.target.bake {
            bake.acted = true;
            // A pending request is settled by this rollback: approving it
            // later must not start a second one.
            bake.approval = None;
        }
        let now = SystemTime::now();
        if trigger == Trigger::Automatic {
            self.target.last_rollback_at = Some(now);
        }
        self.target
            .tracker
            .expect_rollback(&context.to_version, now);
        let steps = self.planned_steps();
        tracing::warn!(target_name = %name, from = %context.from_version, to = %context.to_version, trigger = trigger.as_str(), "Rolling back");
        let n = self
            .notification(NotifyEvent::RollbackStarted, Some(&record))
            .with_detail(format!("pipeline: {}", steps.join("; ")));
        self.target.notify(n);

        let verifier = Arc::new(TargetVerifier::new(self.target));
        let mut deps = PipelineDeps::new(
            self.target.setup.services.http.clone(),
            self.target.setup.services.env.clone(),
        );
        deps.systemctl = self.target.setup.services.systemctl.clone();
        deps.kube = self.target.setup.services.kube_steps.clone();
        deps.verifier = Some(verifier.clone());
        let hooks = StepHooks {
            journal: JournalHooks {
                journal: journal.clone(),
                target: name.clone(),
                release_id: context.release_id.clone(),
            },
            notifiers: self.target.setup.notifiers.clone(),
            to: self.target.setup.target.notify.clone(),
            base: self.notification(NotifyEvent::RollbackStep, Some(&record)),
        };
        // rollguard-k2: shutdown or a lost lease stops the pipeline before
        // its next step.
        let stop = crate::leader::PipelineStop::new(
            self.target.stop.clone(),
            self.target.state.leadership(),
        );
        let outcome = pipeline::run(
            &self.target.setup.target.step,
            &context,
            &deps,
            &hooks,
            stop.receiver.clone(),
        )
        .await;
        let (result, event, detail) = match &outcome {
            PipelineOutcome::Completed { verified: true, .. } => (
                "completed",
                NotifyEvent::RollbackCompleted,
                "verified: probes and metrics are back to normal".to_owned(),
            ),
            PipelineOutcome::Completed {
                verified: false, ..
            } => {
                match verifier
                    .verify_for(self.verify_timeout(), stop.receiver.clone())
                    .await
                {
                    Ok(()) => (
                        "completed",
                        NotifyEvent::RollbackCompleted,
                        "verified: probes and metrics are back to normal".to_owned(),
                    ),
                    Err(why) => (
                        "unverified",
                        NotifyEvent::RollbackFailed,
                        format!("the pipeline ran but the service is not back to normal: {why}"),
                    ),
                }
            }
            PipelineOutcome::Failed { step, message, .. } => (
                "failed",
                NotifyEvent::RollbackFailed,
                format!("step {step} failed: {message}"),
            ),
            PipelineOutcome::Interrupted { .. } if stop.lost_leadership() => (
                "interrupted",
                NotifyEvent::RollbackInterrupted,
                "this replica lost the leadership; remaining steps were not run".to_owned(),
            ),
            PipelineOutcome::Interrupted { .. } => (
                "interrupted",
                NotifyEvent::RollbackInterrupted,
                "rollguard is stopping; remaining steps were not run".to_owned(),
            ),
        };
        drop(stop);
        if matches!(result, "completed" | "unverified")
            && let Some(source) = self.target.source.as_ref().and_then(|s| s.kubernetes())
        {
            // rollguard-k2: every replica, and a future leader, must know
            // this rollout is rollguard's own.
            let marked = source
                .mark_rolled_back(
                    &context.release_id,
                    &context.from_version,
                    &context.to_version,
                    SystemTime::now(),
                )
                .await;
            if let Err(error) = marked {
                tracing::error!(target_name = %name, %error, "Cannot mark the Deployment as rolled back by rollguard; other replicas may take the rollback for a release");
            }
        }
        if let Err(error) = journal
            .append_async(
                Some(&name),
                Event::RollbackFinished {
                    release_id: context.release_id.clone(),
                    outcome: result.to_owned(),
                },
            )
            .await
        {
            tracing::error!(target_name = %name, %error, "Cannot journal the end of the rollback");
        }
        self.count_rollback(result);
        tracing::info!(target_name = %name, outcome = result, %detail, "Rollback finished");
        let n = self
            .notification(event, Some(&record))
            .with_detail(format!("{detail}\n{}", timeline(&outcome)));
        self.target.notify(n);
        if self.target.setup.target.release.kind() == crate::config::ReleaseKind::Announce
            && matches!(result, "completed" | "unverified")
            && let Some(change) =
                self.target
                    .tracker
                    .announce(&context.to_version, None, SystemTime::now())
        {
            // No source will see the version change: record it here.
            self.target.on_change(change).await;
        }
        format!("rollback of {name} {result}: {detail}")
    }

    /// How long the daemon verifies a rollback whose pipeline has no
    /// verify step: ten ticks, between 30 s and 5 min.
    fn verify_timeout(&self) -> Duration {
        (self.target.setup.target.interval * 10)
            .clamp(Duration::from_secs(30), Duration::from_secs(300))
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}
