//! A rollback that the journal shows cut short (a crash, `kill -9`, or a
//! shutdown whose grace period ended during a step), met by the next
//! start: what its open steps left running is stopped (`exec::ProcessGroup`),
//! its guaranteed steps that had not run yet run now (the undrain
//! of a drain), then it is closed as interrupted and a human is told. The
//! version change is never run again: it may have happened, and running it
//! twice is what must never happen.

use super::TargetLoop;
use crate::notify::{Notification, NotifyEvent};
use crate::pipeline::{self, PipelineOutcome, step_name};
use crate::watchdog::WithVersions;
use crate::watchdog::act::{pipeline_deps, rollback_context};
use crate::watchdog::recovery::{self, Unfinished};
use crate::watchdog::step_hooks::{StepHooks, escalation, timeline};

impl TargetLoop {
    /// Runs what is left of `unfinished`'s guaranteed steps, journals the
    /// rollback as interrupted and notifies.
    pub(super) async fn resume_interrupted(&self, unfinished: &Unfinished) {
        let name = self.name().to_owned();
        tracing::error!(
            target_name = %name,
            release_id = %unfinished.release_id,
            open_steps = ?unfinished.open_steps,
            "A rollback was cut short when rollguard stopped; it is not started again, its restore steps run now: check the service by hand"
        );
        let stopped = recovery::stop_leftovers(&name, unfinished).await;
        let journal = self.state.journal();
        if let Err(error) = recovery::close_open_steps(journal, &name, unfinished).await {
            tracing::error!(target_name = %name, %error, "Cannot journal the interrupted steps; no restore step runs without a record");
            return;
        }
        // Only the leader acts: a replica that restarts as a follower
        // leaves its restore steps to a human, and says so.
        let leader = self.state.is_leader();
        let outcome = if leader {
            self.run_restore_steps(unfinished).await
        } else {
            tracing::error!(target_name = %name, "Not the leader: the interrupted rollback's restore steps are not run; run them by hand");
            PipelineOutcome::Completed {
                verified: false,
                steps: Vec::new(),
            }
        };
        if let Err(error) = recovery::close_rollback(journal, &name, unfinished).await {
            tracing::error!(target_name = %name, %error, "Cannot journal the interrupted rollback");
        }
        let status_message = crate::report::on_incident(
            journal,
            self.state.metrics(),
            &self.setup.target,
            &unfinished.release_id,
        )
        .await;
        let running = if unfinished.open_steps.is_empty() {
            "none".to_owned()
        } else {
            unfinished.open_steps.join(", ")
        };
        let mut detail = format!(
            "rollguard stopped while rolling back (steps still running: {running}); the rollback is not repeated automatically: check which version runs"
        );
        if !leader {
            detail.push_str("; this replica is not the leader, so its restore steps were not run: run them by hand");
        }
        if !stopped.is_empty() {
            let stopped = stopped.join(", ");
            detail.push_str(&format!("; stopped what was left running of: {stopped}"));
        }
        let restored = timeline(&outcome);
        let n = self
            .notification_of(NotifyEvent::RollbackInterrupted, unfinished)
            .with_detail(if restored.is_empty() {
                detail.clone()
            } else {
                format!("{detail}\nrestore steps run on restart:\n{restored}")
            })
            .with_status_message(status_message);
        self.notify(n);
        if let Some(escalated) = escalation(&outcome, &detail) {
            tracing::error!(target_name = %name, detail = %escalated, "A restore step failed");
            let n = self.notification_of(NotifyEvent::RollbackFailed, unfinished);
            self.notify(n.with_detail(escalated));
        }
    }

    /// The guaranteed steps of the target's pipeline that had not ended
    /// well before the restart, run as a pipeline of their own. The journal
    /// names steps: a step whose name another step shares (two unnamed
    /// `command` steps) is run again rather than skipped, since an undrain
    /// run twice does less harm than one never run.
    async fn run_restore_steps(&self, unfinished: &Unfinished) -> PipelineOutcome {
        let all = &self.setup.target.step;
        let names: Vec<String> = all.iter().map(step_name).collect();
        let done = |name: &String| {
            names.iter().filter(|n| *n == name).count() == 1 && unfinished.done_steps.contains(name)
        };
        let steps: Vec<_> = all
            .iter()
            .filter(|step| step.common.guaranteed() && !done(&step_name(step)))
            .cloned()
            .collect();
        let ctx = rollback_context(
            &self.setup,
            &unfinished.release_id,
            &unfinished.bad_version,
            &unfinished.restore_version,
            "rollguard restarted during this rollback; running its restore steps",
            unfinished.started_at,
        );
        let hooks = StepHooks::new(
            self.state.journal().clone(),
            &self.setup,
            &unfinished.release_id,
            self.notification_of(NotifyEvent::RollbackStep, unfinished),
        );
        let deps = pipeline_deps(&self.setup);
        pipeline::run(&steps, &ctx, &deps, &hooks, self.stop.clone()).await
    }

    /// A notification of `event` about `unfinished`.
    fn notification_of(&self, event: NotifyEvent, unfinished: &Unfinished) -> Notification {
        self.setup
            .notification(event, self.now())
            .with_release_id(&unfinished.release_id)
            .with_versions(
                Some(unfinished.bad_version.clone()),
                Some(unfinished.restore_version.clone()),
            )
    }
}
