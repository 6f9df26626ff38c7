//! The rollback, once the gate said to run it: journaled before anything
//! runs ([`Actor::begin`]), the pipeline and the verification
//! ([`Actor::run_pipeline`]), then the end journaled, counted, notified
//! and, for Kubernetes, marked on the Deployment ([`Actor::finish`]).

use super::{Actor, Counted};
use crate::journal::Event;
use crate::model::DecisionRecord;
use crate::notify::NotifyEvent;
use crate::pipeline::{self, PipelineOutcome, RollbackContext};
use crate::release::ReleaseChange;
use crate::state::RunningRollback;
use crate::watchdog::outcome::{RollbackOutcome, Trigger};
use crate::watchdog::step_hooks::{StepHooks, escalation, timeline};
use crate::watchdog::verifier::{TargetVerifier, Unverified};
use std::sync::Arc;
use std::time::Duration;

/// A rollback journaled as started, as [`Actor::begin`] says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::watchdog) struct Begun {
    /// The seq of its `rollback_started` record.
    pub journal_seq: u64,
    /// The steps that will run, one line each, in order.
    pub steps: Vec<String>,
    /// By when the pipeline is over at the latest.
    pub estimated_completion: std::time::SystemTime,
}

/// How a rollback ended, as the journal, the metric and people hear it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::watchdog) struct Ending {
    pub outcome: RollbackOutcome,
    pub event: NotifyEvent,
    pub detail: String,
}

impl Ending {
    /// From the pipeline's outcome; `verification` is the daemon's own,
    /// run when the pipeline had no `verify` step that passed.
    pub(in crate::watchdog) fn of(
        outcome: &PipelineOutcome,
        verification: Option<Result<String, Unverified>>,
        lost_leadership: bool,
    ) -> Ending {
        let ending = |outcome, event, detail: &str| Ending {
            outcome,
            event,
            detail: detail.to_owned(),
        };
        let verified = ending(
            RollbackOutcome::Completed,
            NotifyEvent::RollbackCompleted,
            "verified: probes and metrics are back to normal",
        );
        match (outcome, verification) {
            (PipelineOutcome::Completed { verified: true, .. }, _) => verified,
            (PipelineOutcome::Completed { .. }, Some(Ok(evidence))) => ending(
                RollbackOutcome::Completed,
                NotifyEvent::RollbackCompleted,
                &format!("verified: back to the pre-release baseline ({evidence})"),
            ),
            (PipelineOutcome::Completed { .. }, Some(Err(why))) => ending(
                RollbackOutcome::Unverified,
                NotifyEvent::RollbackFailed,
                &format!("the pipeline ran but the service is not back to normal: {why}"),
            ),
            (PipelineOutcome::Completed { .. }, None) => ending(
                RollbackOutcome::Unverified,
                NotifyEvent::RollbackFailed,
                "the pipeline ran but the service was not verified",
            ),
            (PipelineOutcome::Failed { step, message, .. }, _) => ending(
                RollbackOutcome::Failed,
                NotifyEvent::RollbackFailed,
                &format!("step {step} failed: {message}"),
            ),
            (PipelineOutcome::Interrupted { .. }, _) if lost_leadership => ending(
                RollbackOutcome::Interrupted,
                NotifyEvent::RollbackInterrupted,
                "this replica lost the leadership; remaining steps were not run, only the restore steps",
            ),
            (PipelineOutcome::Interrupted { .. }, _) => ending(
                RollbackOutcome::Interrupted,
                NotifyEvent::RollbackInterrupted,
                "rollguard is stopping; remaining steps were not run, only the restore steps",
            ),
        }
    }
}

impl Actor<'_> {
    /// Runs the rollback pipeline and verifies the result. Returns the
    /// version change the loop must take in (an `announce` target's
    /// restored version, which no source reports).
    pub(super) async fn rollback(
        &mut self,
        trigger: Trigger,
        record: DecisionRecord,
    ) -> Option<ReleaseChange> {
        let name = self.name();
        let Some(ctx) = self.context(&record.reasons.join("; ")) else {
            tracing::error!(target_name = %name, "Cannot roll back: the previous version is unknown");
            let n = self
                .notification(NotifyEvent::RollbackFailed, Some(&record))
                .with_detail(
                    "the previous version is unknown, so there is nothing to roll back to"
                        .to_owned(),
                );
            self.notify(n);
            self.bake.acted = true;
            return None;
        };
        if let Err(error) = self.begin(trigger, &record, &ctx).await {
            tracing::error!(target_name = %name, %error, "Cannot journal the rollback; not starting it");
            return None;
        }
        self.carry_out(&ctx, record).await
    }

    /// Runs a rollback that [`Actor::begin`] journaled: the pipeline, the
    /// verification, the end. Returns what [`Actor::rollback`] does.
    pub(in crate::watchdog) async fn carry_out(
        &mut self,
        ctx: &RollbackContext,
        record: DecisionRecord,
    ) -> Option<ReleaseChange> {
        let verifier = Arc::new(TargetVerifier::new(
            self.setup.clone(),
            self.state.clone(),
            self.bake,
        ));
        let (outcome, ending) = self.run_pipeline(ctx, &record, verifier).await;
        self.finish(ctx, &record, &outcome, ending).await
    }

    /// Journals the start of the rollback `ctx` (synced before anything
    /// runs, so that a crash from here on is never followed by a second
    /// rollback), settles the release, shows it in the status and says
    /// what will run. Nothing may run when it fails.
    pub(in crate::watchdog) async fn begin(
        &mut self,
        trigger: Trigger,
        record: &DecisionRecord,
        ctx: &RollbackContext,
    ) -> Result<Begun, crate::journal::JournalError> {
        let name = self.name();
        let started = Event::RollbackStarted {
            release_id: ctx.release_id.clone(),
            from: ctx.bad_version.clone(),
            to: ctx.restore_version.clone(),
            trigger: trigger.as_str().to_owned(),
        };
        let journaled = self
            .state
            .journal()
            .append_async(Some(name), started)
            .await?;
        self.state.update_target(name, |s| {
            s.rollback = Some(RunningRollback {
                release_id: ctx.release_id.clone(),
                from: ctx.bad_version.clone(),
                to: ctx.restore_version.clone(),
                trigger: trigger.as_str().to_owned(),
                started_at: journaled.at.clone(),
                journal_seq: journaled.seq,
            });
        });
        self.bake.acted = true;
        self.bake.rolled_back = true;
        // A pending request is settled by this rollback: approving it later
        // must not start a second one.
        self.bake.approval = None;
        let now = self.now();
        if trigger == Trigger::Automatic {
            *self.last_automatic_rollback = Some(now);
        }
        self.tracker.expect_rollback(&ctx.restore_version, now);
        let preview = pipeline::preview(&self.setup.target.step, ctx, &self.deps()).await;
        tracing::warn!(target_name = %name, from = %ctx.bad_version, to = %ctx.restore_version, trigger = trigger.as_str(), "Rolling back");
        let bound = pipeline::upper_bound(&self.setup.target.step, self.verify_timeout());
        let n = self
            .notification(NotifyEvent::RollbackStarted, Some(record))
            .with_detail(format!("pipeline: {}", preview.steps.join("; ")));
        let eta = n.at + bound;
        let n = n.with_estimated_completion(eta);
        self.notify(n);
        Ok(Begun {
            journal_seq: journaled.seq,
            steps: preview.steps,
            estimated_completion: eta,
        })
    }

    /// The pipeline, then the daemon's own verification when no `verify`
    /// step saw the target back to normal.
    async fn run_pipeline(
        &self,
        ctx: &RollbackContext,
        record: &DecisionRecord,
        verifier: Arc<TargetVerifier>,
    ) -> (PipelineOutcome, Ending) {
        let mut deps = self.deps();
        deps.verifier = Some(verifier.clone());
        let hooks = StepHooks::new(
            self.state.journal().clone(),
            self.setup,
            &ctx.release_id,
            self.notification(NotifyEvent::RollbackStep, Some(record)),
        );
        // Shutdown or a lost lease stops the pipeline before
        // its next step.
        let stop = crate::leader::PipelineStop::new(self.stop.clone(), self.state.leadership());
        let steps = &self.setup.target.step;
        let outcome = pipeline::run(steps, ctx, &deps, &hooks, stop.receiver.clone()).await;
        let verification = match outcome {
            PipelineOutcome::Completed {
                verified: false, ..
            } => Some(
                verifier
                    .verify_for(self.verify_timeout(), stop.receiver.clone())
                    .await,
            ),
            _ => None,
        };
        let ending = Ending::of(&outcome, verification, stop.lost_leadership());
        (outcome, ending)
    }

    /// Marks, journals, counts and notifies the end.
    async fn finish(
        &mut self,
        ctx: &RollbackContext,
        record: &DecisionRecord,
        outcome: &PipelineOutcome,
        ending: Ending,
    ) -> Option<ReleaseChange> {
        let name = self.name();
        let restored = ending.outcome.restored();
        if restored && let Some(source) = self.source.and_then(|s| s.kubernetes()) {
            // Every replica, and a future leader, must know
            // this rollout is rollguard's own.
            let marked = source
                .mark_rolled_back(
                    &ctx.release_id,
                    &ctx.bad_version,
                    &ctx.restore_version,
                    self.now(),
                )
                .await;
            if let Err(error) = marked {
                tracing::error!(target_name = %name, %error, "Cannot mark the Deployment as rolled back by rollguard; other replicas may take the rollback for a release");
            }
        }
        let finished = Event::RollbackFinished {
            release_id: ctx.release_id.clone(),
            outcome: ending.outcome.as_str().to_owned(),
        };
        if let Err(error) = self
            .state
            .journal()
            .append_async(Some(name), finished)
            .await
        {
            tracing::error!(target_name = %name, %error, "Cannot journal the end of the rollback");
        }
        self.state.update_target(name, |s| s.rollback = None);
        self.count_rollback(Counted::Ended(ending.outcome));
        tracing::info!(target_name = %name, outcome = ending.outcome.as_str(), detail = %ending.detail, "Rollback finished");
        let status_message = self.incident_report().await;
        let n = self
            .notification(ending.event, Some(record))
            .with_detail(format!("{}\n{}", ending.detail, timeline(outcome)))
            .with_status_message(status_message);
        self.notify(n);
        if let Some(detail) = escalation(outcome, &ending.detail) {
            tracing::error!(target_name = %name, %detail, "A restore step failed");
            let n = self
                .notification(NotifyEvent::RollbackFailed, Some(record))
                .with_detail(detail);
            self.notify(n);
        }
        let announced = self.setup.target.release.kind() == crate::config::ReleaseKind::Announce;
        if !(announced && restored) {
            return None;
        }
        // No source will see the version change: the loop records it.
        self.tracker
            .announce(&ctx.restore_version, None, self.now())
    }

    fn verify_timeout(&self) -> Duration {
        verify_timeout(&self.setup.target)
    }
}

/// How long the daemon verifies a rollback whose pipeline has no verify
/// step: `verify_timeout`, or ten ticks, between 30 s and 5 min.
pub(in crate::watchdog) fn verify_timeout(target: &crate::config::TargetConfig) -> Duration {
    target.verify_timeout.unwrap_or_else(|| {
        (target.interval * 10).clamp(Duration::from_secs(30), Duration::from_secs(300))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StepOutcome;
    use crate::pipeline::StepReport;

    fn completed(verified: bool) -> PipelineOutcome {
        PipelineOutcome::Completed {
            verified,
            steps: Vec::<StepReport>::new(),
        }
    }

    fn unverified() -> Unverified {
        Unverified::NotBack {
            within: Duration::from_secs(30),
            last: "error rate 5x".into(),
        }
    }

    #[test]
    fn endings_follow_the_pipeline_and_the_verification() {
        let failed = PipelineOutcome::Failed {
            step: "deploy".into(),
            message: "exit 1".into(),
            steps: Vec::new(),
        };
        let interrupted = PipelineOutcome::Interrupted {
            step: "deploy".into(),
            steps: Vec::new(),
        };
        use NotifyEvent as E;
        use RollbackOutcome as O;
        let cases = [
            (
                completed(true),
                None,
                false,
                O::Completed,
                E::RollbackCompleted,
            ),
            (
                completed(false),
                Some(Ok("probe health passed 3 times in a row".to_owned())),
                false,
                O::Completed,
                E::RollbackCompleted,
            ),
            (
                completed(false),
                Some(Err(unverified())),
                false,
                O::Unverified,
                E::RollbackFailed,
            ),
            (
                completed(false),
                None,
                false,
                O::Unverified,
                E::RollbackFailed,
            ),
            (failed, None, false, O::Failed, E::RollbackFailed),
            (
                interrupted.clone(),
                None,
                false,
                O::Interrupted,
                E::RollbackInterrupted,
            ),
            (
                interrupted,
                None,
                true,
                O::Interrupted,
                E::RollbackInterrupted,
            ),
        ];
        for (outcome, verification, lost, expected, event) in cases {
            let ending = Ending::of(&outcome, verification, lost);
            assert_eq!(
                (ending.outcome, ending.event),
                (expected, event),
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn endings_say_why() {
        let ending = Ending::of(
            &completed(false),
            Some(Ok("error_rate: 2 errors in 5000 requests".to_owned())),
            false,
        );
        assert_eq!(
            ending.detail,
            "verified: back to the pre-release baseline (error_rate: 2 errors in 5000 requests)"
        );
        let ending = Ending::of(&completed(false), Some(Err(unverified())), false);
        assert_eq!(
            ending.detail,
            "the pipeline ran but the service is not back to normal: not back to normal within 30s: error rate 5x"
        );
        let interrupted = PipelineOutcome::Interrupted {
            step: "deploy".into(),
            steps: Vec::new(),
        };
        assert!(
            Ending::of(&interrupted, None, true)
                .detail
                .contains("lost the leadership")
        );
        assert!(
            Ending::of(&interrupted, None, false)
                .detail
                .contains("is stopping")
        );
    }

    #[test]
    fn a_failed_restore_step_is_escalated_without_hiding_the_failure() {
        let report = |name: &str, outcome, guaranteed| StepReport {
            name: name.into(),
            kind: crate::config::StepKind::Command,
            description: format!("command: {name}"),
            outcome,
            attempts: 1,
            duration: Duration::ZERO,
            message: Some(format!("{name} said no")),
            guaranteed,
        };
        let failed = PipelineOutcome::Failed {
            step: "deploy".into(),
            message: "exit code 1".into(),
            steps: vec![
                report("deploy", StepOutcome::Failed, false),
                report("undrain", StepOutcome::TimedOut, true),
                report("tidy", StepOutcome::Ok, true),
            ],
        };
        let ending = Ending::of(&failed, None, false);
        assert_eq!(
            escalation(&failed, &ending.detail).as_deref(),
            Some(
                "restore step `undrain` timed_out: undrain said no; check the service by hand. \
                 The rollback itself: step deploy failed: exit code 1"
            )
        );
        let fine = PipelineOutcome::Completed {
            verified: true,
            steps: vec![report("undrain", StepOutcome::Ok, true)],
        };
        assert_eq!(escalation(&fine, "verified"), None);
    }
}
