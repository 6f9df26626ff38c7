//! A person's rollback (`rollguard rollback`, `POST
//! /api/v1/targets/{name}/rollback`): the release running now, whether or
//! not its bake window is open, rolled back to the version before it (or
//! to the one asked for), through the same journal, pipeline and
//! verification as an automatic rollback, with the trigger `manual`.
//!
//! What it does not share with an automatic rollback: the pause (the kill
//! switch stops rollguard acting by itself, not a person) and the cooldown
//! (a manual rollback neither waits for it nor starts it). What it shares:
//! only the leader acts, shadow mode never changes anything, and a
//! rollback is journaled as started before its first step, so that a
//! restart never runs it twice.

use super::TargetLoop;
use crate::model::{Decision, DecisionRecord, Mode, Severity};
use crate::pipeline::{self, RollbackContext};
use crate::state::{CommandError, PlannedStep, RollbackPlan, RollbackRequest};
use crate::watchdog::act::{Actor, pipeline_deps, rollback_context};
use crate::watchdog::bake::{Bake, BakeKind};
use crate::watchdog::outcome::Trigger;
use std::time::SystemTime;
use tokio::sync::oneshot;

/// What a manual rollback would undo and bring back.
struct Manual {
    /// The release rolled back, if one brought the running version.
    release_id: Option<String>,
    /// The running version.
    from: String,
    /// The version brought back.
    to: String,
    /// When the release was seen (now, when no release is known).
    started: SystemTime,
    /// Why running it would be refused now (not leader, shadow mode),
    /// though a dry run may still show it.
    refused: Option<String>,
}

impl TargetLoop {
    /// A person's rollback request: the plan of a dry run, or the rollback
    /// itself (answered once journaled as started, then run here).
    pub(super) async fn manual_rollback(
        &mut self,
        request: RollbackRequest,
        reply: oneshot::Sender<Result<RollbackPlan, CommandError>>,
    ) {
        if reply.is_closed() {
            // The API gave up waiting (this loop was busy): nobody would
            // hear what happens, so nothing happens.
            tracing::warn!(target_name = %self.name(), "A manual rollback request waited too long and its caller is gone; not acting on it");
            return;
        }
        let manual = match self.manual_plan(&request) {
            Ok(manual) => manual,
            Err(why) => {
                tracing::info!(target_name = %self.name(), reason = %why, "Manual rollback refused");
                let _ = reply.send(Err(CommandError::Refused(why)));
                return;
            }
        };
        let now = self.now();
        if request.dry_run {
            let plan = self.dry_run(&manual, now).await;
            let _ = reply.send(Ok(plan));
            return;
        }
        if let Some(why) = manual.refused {
            tracing::info!(target_name = %self.name(), reason = %why, "Manual rollback refused");
            let _ = reply.send(Err(CommandError::Refused(why)));
            return;
        }
        let release_id = match &manual.release_id {
            Some(id) => id.clone(),
            None => self.tracker.new_id(now),
        };
        let record = self.manual_record();
        let mut bake = self.manual_bake(&release_id, &manual);
        let ctx = rollback_context(
            &self.setup,
            &release_id,
            &manual.from,
            &manual.to,
            &record.reasons.join("; "),
            now,
        );
        let begun = match self
            .manual_actor(&mut bake)
            .begin(Trigger::Manual, &record, &ctx)
            .await
        {
            Ok(begun) => begun,
            Err(error) => {
                tracing::error!(target_name = %self.name(), %error, "Cannot journal the manual rollback; not starting it");
                let _ = reply.send(Err(CommandError::Failed(format!(
                    "cannot journal the rollback, so nothing was changed: {error}"
                ))));
                return;
            }
        };
        let plan = RollbackPlan {
            release_id: Some(release_id.clone()),
            steps: self.planned_steps(begun.steps),
            dry_runs: Vec::new(),
            journal_seq: Some(begun.journal_seq),
            estimated_completion: Some(
                humantime::format_rfc3339_seconds(begun.estimated_completion).to_string(),
            ),
            ..self.plan_of(&manual, false)
        };
        tracing::warn!(target_name = %self.name(), %release_id, from = %manual.from, to = %manual.to, "Manual rollback asked for by a person; running it");
        let _ = reply.send(Ok(plan));
        // The release's own window, if open, is settled as the bake was:
        // rollguard never acts on it again by itself.
        if let Some(open) = self.bake.as_mut().filter(|b| b.release_id == release_id) {
            open.acted = true;
            open.rolled_back = true;
            open.approval = None;
        }
        let restored = self.manual_actor(&mut bake).carry_out(&ctx, record).await;
        if let Some(change) = restored {
            self.on_change(change).await;
        }
    }

    /// The actor of a manual rollback: the loop's parts, and `bake`, the
    /// release as the rollback sees it.
    fn manual_actor<'a>(&'a mut self, bake: &'a mut Bake) -> Actor<'a> {
        Actor {
            state: &self.state,
            setup: &self.setup,
            bake,
            last_automatic_rollback: &mut self.last_automatic_rollback,
            tracker: &mut self.tracker,
            source: self.source.as_ref(),
            stop: &self.stop,
        }
    }

    /// What a manual rollback would do now, or why there is none to do.
    fn manual_plan(&self, request: &RollbackRequest) -> Result<Manual, String> {
        let name = self.name();
        let now = self.now();
        if let (None, Some(expected)) = (&request.to, self.tracker.expected_rollback(now)) {
            return Err(format!(
                "a rollback of {name} to {expected} ran and is not seen running yet: wait for the next check and see `rollguard status`; pass --to {expected} to run it again anyway"
            ));
        }
        let Some(from) = self.tracker.current().map(str::to_owned) else {
            return Err(format!(
                "the running version of {name} is not known yet{}",
                self.source_error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ));
        };
        if self.version_refused {
            return Err(format!(
                "the running version of {name} cannot be read now; rollguard does not roll back what it cannot see"
            ));
        }
        // The window of the running version, unless it is rollguard's own
        // rollback arriving (its "previous" is the release rolled back).
        let bake = self
            .bake
            .as_ref()
            .filter(|b| b.version == from && b.kind == BakeKind::Release);
        let verifying = self
            .bake
            .as_ref()
            .is_some_and(|b| b.version == from && b.kind == BakeKind::Verification);
        let release = self.tracker.release().filter(|_| !verifying);
        let previous = release.and_then(|r| r.previous.clone());
        let to = match (&request.to, previous) {
            (Some(to), _) => to.clone(),
            (None, Some(previous)) => previous,
            (None, None) => {
                return Err(format!(
                    "rollguard does not know the version that ran before {from} on {name} (it already ran when rollguard started, or rollguard's own rollback brought it back): pass --to VERSION"
                ));
            }
        };
        if to == from {
            return Err(format!(
                "{to} is already the running version of {name}: nothing to roll back"
            ));
        }
        if let Some((expected_from, expected_to)) = &request.expected
            && (expected_from != &from || expected_to != &to)
        {
            return Err(format!(
                "{name} changed since the plan was shown: it would now roll back from {from} to {to}, not from {expected_from} to {expected_to}; look again"
            ));
        }
        let refused = if !self.state.is_leader() {
            Some(format!(
                "this replica does not lead: roll back {name} on the leader (see `leader` in its status)"
            ))
        } else if self.setup.mode == Mode::Shadow {
            Some(format!(
                "{name} is in shadow mode, in which rollguard never changes anything: `rollguard rollback {name} --dry-run` shows what would run; set its mode to approve or enforce to roll back"
            ))
        } else {
            None
        };
        Ok(Manual {
            release_id: release.map(|r| r.id.clone()),
            from,
            to,
            started: bake.map_or(now, |b| b.started),
            refused,
        })
    }

    /// The plan of `manual` with the preview's dry runs (shadow mode's,
    /// whatever the target's mode): nothing runs, nothing is journaled.
    async fn dry_run(&self, manual: &Manual, now: SystemTime) -> RollbackPlan {
        let release_id = manual.release_id.as_deref().unwrap_or("");
        let mut ctx: RollbackContext = rollback_context(
            &self.setup,
            release_id,
            &manual.from,
            &manual.to,
            "dry run of a manual rollback",
            now,
        );
        ctx.mode = Mode::Shadow;
        let deps = pipeline_deps(&self.setup);
        let preview = pipeline::preview(&self.setup.target.step, &ctx, &deps).await;
        RollbackPlan {
            steps: self.planned_steps(preview.steps),
            dry_runs: preview.dry_runs,
            refused: manual.refused.clone(),
            ..self.plan_of(manual, true)
        }
    }

    /// A plan without steps.
    fn plan_of(&self, manual: &Manual, dry_run: bool) -> RollbackPlan {
        RollbackPlan {
            target: self.name().to_owned(),
            release_id: manual.release_id.clone(),
            from: manual.from.clone(),
            to: manual.to.clone(),
            mode: self.setup.mode,
            paused: self.state.is_paused(self.name()),
            dry_run,
            steps: Vec::new(),
            dry_runs: Vec::new(),
            refused: None,
            journal_seq: None,
            estimated_completion: None,
        }
    }

    /// The pipeline's step names beside the preview's lines (both in the
    /// order the steps run).
    fn planned_steps(&self, descriptions: Vec<String>) -> Vec<PlannedStep> {
        pipeline::ordered(&self.setup.target.step)
            .into_iter()
            .map(pipeline::step_name)
            .zip(descriptions)
            .map(|(name, description)| PlannedStep { name, description })
            .collect()
    }

    /// The decision a manual rollback carries (notifications, the steps'
    /// `ROLLGUARD_REASON`).
    fn manual_record(&self) -> DecisionRecord {
        let last = self.bake.as_ref().and_then(|b| b.last.as_ref());
        DecisionRecord {
            decision: Decision::Rollback,
            severity: last.map_or(Severity::None, |l| l.severity),
            data_impact: last.map_or(crate::model::DataImpact::None, |l| l.data_impact),
            time_to_fix: self.time_to_fix(),
            rule: None,
            reasons: vec!["a person asked for this rollback (rollguard rollback)".to_owned()],
        }
    }

    /// The release as the actor sees it: the running version, rolled back
    /// to `manual.to`.
    fn manual_bake(&self, release_id: &str, manual: &Manual) -> Bake {
        Bake::new(
            release_id.to_owned(),
            manual.from.clone(),
            Some(manual.to.clone()),
            manual.started,
            BakeKind::Release,
            crate::judge::Judge::new(&self.setup.target),
            self.setup.target.bake_window,
        )
    }
}
