//! Acting on a decision: the I/O side of the mode gate. The actor reads
//! what the gate needs from the target's loop, asks [`gate`], and carries
//! out its answer: a notification (each once per release), a journaled
//! approval request, shadow mode's report of what would run, or the
//! rollback itself (`act/rollback.rs`).
//!
//! The actor borrows the parts of the loop it changes and hands back what
//! the loop must apply (a version change no source will see), so that it
//! never calls into the loop.

mod notices;
mod rollback;
pub(super) use rollback::{Ending, verify_timeout};
#[cfg(test)]
mod tests;

use super::bake::{Approval, Bake};
use super::gate::{self, ApprovalReason, ApproveInput, GateAction, GateInput, Refusal};
use super::outcome::Trigger;
use super::{Setup, WithVersions};
use crate::journal::{Event, JournalError};
use crate::metrics::RollbackLabels;
use crate::model::{Assessment, Decision, DecisionRecord, Severity};
use crate::notify::{Notification, NotifyEvent};
use crate::pipeline::{self, PipelineDeps, Preview, RollbackContext};
use crate::release::{ReleaseChange, ReleaseSource, ReleaseTracker};
use crate::state::{CommandError, State};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::watch;

/// Acts on the decisions about one release: the parts of a target's loop
/// that acting reads or changes, borrowed for one tick or one command.
pub(super) struct Actor<'a> {
    /// The daemon's state: leadership, pause switches, journal, metrics.
    pub state: &'a State,
    /// The target's settings.
    pub setup: &'a Arc<Setup>,
    /// The release being acted on.
    pub bake: &'a mut Bake,
    /// When the target's last automatic rollback started (the cooldown).
    pub last_automatic_rollback: &'a mut Option<SystemTime>,
    /// Versions seen: told of the rollback's version before it arrives.
    pub tracker: &'a mut ReleaseTracker,
    /// The release source, which a Kubernetes rollback marks.
    pub source: Option<&'a ReleaseSource>,
    /// Turns true when the daemon stops: the pipeline starts no new step.
    pub stop: &'a watch::Receiver<bool>,
}

/// Why an approval did not start a rollback.
#[derive(Debug)]
pub(super) enum ApproveError {
    /// The gate refused it.
    Refused(Refusal),
    /// The approval could not be journaled, so nothing runs.
    Journal(JournalError),
}

impl ApproveError {
    /// The answer to the person who approved.
    pub fn command_error(&self, target: &str) -> CommandError {
        match self {
            ApproveError::Refused(refusal) => CommandError::Refused(refusal.text(target)),
            ApproveError::Journal(error) => {
                CommandError::Failed(format!("cannot journal the approval: {error}"))
            }
        }
    }
}

/// What the gate needs to judge an approval of `bake` (`None`: no release
/// is being watched).
pub(super) fn approve_input(state: &State, setup: &Setup, bake: Option<&Bake>) -> ApproveInput {
    ApproveInput {
        leader: state.is_leader(),
        mode: setup.mode,
        release: bake.map(|b| (b.acted, b.approval.as_ref().map(|a| a.expires_at))),
    }
}

/// What the rollbacks counter counts (its `outcome` label).
#[derive(Debug, Clone, Copy)]
enum Counted {
    /// Shadow mode would have rolled back.
    Shadowed,
    /// A rollback ended so.
    Ended(super::outcome::RollbackOutcome),
}

impl<'a> Actor<'a> {
    fn name(&self) -> &'a str {
        &self.setup.target.name
    }

    fn now(&self) -> SystemTime {
        self.setup.services.clock.now()
    }

    fn notify(&self, notification: Notification) {
        self.setup
            .notifiers
            .send(&self.setup.target.notify, notification);
    }

    fn notification(&self, event: NotifyEvent, record: Option<&DecisionRecord>) -> Notification {
        let bake = &self.bake;
        let mut n = self
            .setup
            .notification(event, self.now())
            .with_release_id(&bake.release_id)
            .with_versions(Some(bake.version.clone()), bake.previous_version.clone())
            .with_release_at(bake.started);
        if let Some(record) = record {
            n = n
                .with_decision(record.decision)
                .with_severity(record.severity)
                .with_reasons(record.reasons.clone());
        }
        n
    }

    /// Acts on this tick's decision. Returns the version change the loop
    /// must take in when a rollback brought back a version that no release
    /// source will report.
    pub async fn act(
        &mut self,
        assessment: &Assessment,
        record: &DecisionRecord,
    ) -> Option<ReleaseChange> {
        // A follower judges (status stays live) but never acts
        // or notifies; the leader does both.
        if !self.state.is_leader() {
            if record.decision == Decision::Rollback {
                tracing::debug!(target_name = %self.name(), "Not the leader: the leader decides whether to roll back");
            }
            return None;
        }
        self.monitoring(assessment);
        self.blind(assessment);
        if record.severity > self.bake.notified_severity && !assessment.inconclusive {
            self.bake.notified_severity = record.severity;
            self.notify(self.notification(NotifyEvent::Degraded, Some(record)));
        }
        let input = GateInput {
            decision: record.decision,
            kind: self.bake.kind,
            mode: self.setup.mode,
            paused: self.state.is_paused(self.name()),
            acted: self.bake.acted,
            approval_pending: self.bake.approval.is_some(),
            last_automatic_rollback: *self.last_automatic_rollback,
            cooldown: self.setup.target.cooldown,
        };
        match gate::gate(input, self.now()) {
            GateAction::Nothing => {}
            GateAction::Notify(notice) => self.say_once(record, notice.text().to_owned()),
            GateAction::WouldAskApproval(reason) => {
                let reason = reason.text(self.name());
                self.say_once(
                    record,
                    format!(
                        "shadow mode: rollguard would ask for approval to roll back ({reason})"
                    ),
                );
            }
            GateAction::AskApproval(reason) => self.request_approval(record, reason).await,
            GateAction::WouldRollBack => self.would_roll_back(record).await,
            GateAction::RollBack => return self.rollback(Trigger::Automatic, record.clone()).await,
        }
        None
    }

    /// Notifies the decision with `detail`, the first time it is reached
    /// in this window.
    fn say_once(&mut self, record: &DecisionRecord, detail: String) {
        if self.bake.first_time(record.decision) {
            let n = self
                .notification(NotifyEvent::Decision, Some(record))
                .with_detail(detail);
            self.notify(n);
        }
    }

    /// Shadow mode: says what the rollback would do, changing nothing.
    async fn would_roll_back(&mut self, record: &DecisionRecord) {
        self.bake.acted = true;
        let preview = self.preview().await;
        self.count_rollback(Counted::Shadowed);
        self.incident_report().await;
        tracing::warn!(target_name = %self.name(), steps = ?preview.steps, dry_runs = ?preview.dry_runs, "Shadow mode: would roll back now");
        let n = self
            .notification(NotifyEvent::WouldRollback, Some(record))
            .with_detail(format!(
                "nothing was changed (shadow mode); the pipeline would run: {}",
                preview.summary()
            ));
        self.notify(n);
    }

    /// Opens an approval request; the gate asks only when none is pending.
    async fn request_approval(&mut self, record: &DecisionRecord, reason: ApprovalReason) {
        let name = self.name();
        let reason = reason.text(name);
        let approval = Approval {
            requested_at: self.now(),
            expires_at: self.bake.until,
            reason: reason.clone(),
        };
        let event = Event::ApprovalRequested {
            release_id: self.bake.release_id.clone(),
            expires_at: humantime::format_rfc3339_seconds(self.bake.until).to_string(),
        };
        self.bake.approval = Some(approval);
        if let Err(error) = self.state.journal().append_async(Some(name), event).await {
            tracing::error!(target_name = %name, %error, "Cannot journal the approval request");
        }
        tracing::warn!(target_name = %name, %reason, "Rollback waits for approval: rollguard approve {name}");
        let n = self
            .notification(NotifyEvent::ApprovalRequested, Some(record))
            .with_detail(format!(
                "{reason}. Approve with `rollguard approve {name}` (or POST /api/v1/targets/{name}/approve) before the bake window ends"
            ));
        self.notify(n);
    }

    /// A human's approval of the pending rollback: checked by the gate and
    /// journaled; the caller answers the human, then runs
    /// [`Actor::rollback_approved`].
    pub async fn approve(&mut self) -> Result<DecisionRecord, ApproveError> {
        let input = approve_input(self.state, self.setup, Some(self.bake));
        if let Err(refusal) = gate::check_approval(input, self.now()) {
            if refusal == Refusal::Expired {
                self.bake.approval = None;
            }
            return Err(ApproveError::Refused(refusal));
        }
        self.bake.approval = None;
        let release_id = self.bake.release_id.clone();
        let record = self.bake.last.clone().unwrap_or(DecisionRecord {
            decision: Decision::ConsiderRollback,
            severity: Severity::None,
            data_impact: self.bake.data_impact.0,
            time_to_fix: self.setup.target.time_to_fix,
            rule: None,
            reasons: Vec::new(),
        });
        let event = Event::Approved {
            release_id: release_id.clone(),
        };
        let name = self.name();
        self.state
            .journal()
            .append_async(Some(name), event)
            .await
            .map_err(ApproveError::Journal)?;
        tracing::info!(target_name = %name, %release_id, "Rollback approved by an operator");
        Ok(record)
    }

    /// Runs an approved rollback; returns what [`Actor::act`] does.
    pub async fn rollback_approved(&mut self, record: DecisionRecord) -> Option<ReleaseChange> {
        self.rollback(Trigger::Approved, record).await
    }

    /// What the pipeline would do (in shadow mode, with its dry runs);
    /// nothing when the version to bring back is unknown.
    async fn preview(&self) -> Preview {
        match self.context("") {
            Some(ctx) => pipeline::preview(&self.setup.target.step, &ctx, &self.deps()).await,
            None => Preview::default(),
        }
    }

    /// The pipeline's dependencies, without a verifier.
    fn deps(&self) -> PipelineDeps {
        pipeline_deps(self.setup)
    }

    /// The rollback of this release, or `None` when the version to bring
    /// back is unknown.
    fn context(&self, reason: &str) -> Option<RollbackContext> {
        Some(rollback_context(
            self.setup,
            &self.bake.release_id,
            &self.bake.version,
            self.bake.previous_version.as_deref()?,
            reason,
            self.now(),
        ))
    }

    /// Writes the incident report of this release (see [`crate::report`]);
    /// its status message, for the notification.
    async fn incident_report(&self) -> Option<String> {
        let (journal, metrics) = (self.state.journal(), self.state.metrics());
        crate::report::on_incident(journal, metrics, &self.setup.target, &self.bake.release_id)
            .await
    }

    fn count_rollback(&self, counted: Counted) {
        let outcome = match counted {
            Counted::Shadowed => "shadowed",
            Counted::Ended(outcome) => outcome.as_str(),
        };
        self.state
            .metrics()
            .rollbacks
            .get_or_create(&RollbackLabels {
                target: self.name().to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

/// The pipeline's dependencies for a target, without a verifier.
pub(super) fn pipeline_deps(setup: &Setup) -> PipelineDeps {
    let services = &setup.services;
    let mut deps = PipelineDeps::new(services.http.clone(), services.env.clone());
    deps.systemctl = services.systemctl.clone();
    deps.kube = services.kube_steps.clone();
    deps
}

/// What the steps of a rollback of `release_id` (from `bad_version` back
/// to `restore_version`) are told, with the release source's hints.
pub(super) fn rollback_context(
    setup: &Setup,
    release_id: &str,
    bad_version: &str,
    restore_version: &str,
    reason: &str,
    started_at: std::time::SystemTime,
) -> RollbackContext {
    RollbackContext::for_target(
        &setup.target,
        release_id,
        (bad_version, restore_version),
        setup.mode,
        reason,
        started_at,
    )
}
