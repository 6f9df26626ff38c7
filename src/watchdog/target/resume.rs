//! A rollback that the journal shows cut short (a crash, `kill -9`, or a
//! shutdown whose grace period ended during a step), met by the next
//! start: what its open steps left running is stopped (`exec::ProcessGroup`),
//! then it goes on where that is safe (`resume_plan.rs`: from the next step,
//! from a step that only reads or waits or has retries, or after a version
//! change that the release source shows done), is verified and closed as
//! any rollback; otherwise its guaranteed steps that had not run yet run
//! now (the undrain of a drain), it is closed as interrupted and a human is
//! told. A version change is never run again: it may have happened, and
//! running it twice is what must never happen.

use super::TargetLoop;
use crate::config::StepConfig;
use crate::journal::Event;
use crate::notify::{Notification, NotifyEvent};
use crate::pipeline::{self, PipelineOutcome, ordered, step_name};
use crate::watchdog::WithVersions;
use crate::watchdog::act::{Ending, pipeline_deps, rollback_context, verify_timeout};
use crate::watchdog::bake::{Bake, BakeKind};
use crate::watchdog::recovery::{self, Unfinished};
use crate::watchdog::resume_plan::{self, Plan, Progress};
use crate::watchdog::step_hooks::{StepHooks, escalation, timeline};
use crate::watchdog::verifier::TargetVerifier;
use std::sync::Arc;

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
        let mut why_not = None;
        if leader {
            match self.plan(unfinished).await {
                Plan::Continue { from, why } => {
                    self.go_on(unfinished, from, &why).await;
                    return;
                }
                Plan::IfRestored { step, .. } => {
                    why_not = Some(format!(
                        "step {step} changes the running version and was cut short"
                    ));
                }
                Plan::RestoreOnly { why } => why_not = Some(why),
            }
        }
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
        if let Some(why) = &why_not {
            detail.push_str(&format!("; it does not go on: {why}"));
        }
        if !leader {
            detail.push_str("; this replica is not the leader, so its restore steps were not run: run them by hand");
        }
        if !stopped.is_empty() {
            let stopped = stopped.join(", ");
            detail.push_str(&format!("; stopped what was left running of: {stopped}"));
        }
        self.tell(
            unfinished,
            NotifyEvent::RollbackInterrupted,
            &detail,
            "restore steps run on restart:\n",
            &outcome,
            status_message,
        );
    }

    /// Where the rollback goes on from, the running version read when the
    /// interrupted step changed it.
    async fn plan(&self, unfinished: &Unfinished) -> Plan {
        let cut: Vec<String> = unfinished
            .open_steps
            .iter()
            .chain(&unfinished.cut_steps)
            .cloned()
            .collect();
        let progress = Progress {
            done: &unfinished.done_steps,
            open: &cut,
            failed: &unfinished.failed_steps,
        };
        match resume_plan::plan(&self.setup.target.step, progress) {
            Plan::IfRestored { step, from } => {
                let read = match &self.source {
                    Some(source) => source.current_version().await.map_err(|e| e.to_string()),
                    None => Err("the release source cannot be read".to_owned()),
                };
                match read {
                    Ok(Some(v)) if v == unfinished.restore_version => Plan::Continue {
                        from,
                        why: format!(
                            "step {step} was cut short, but {v} runs now: it had done its work, so the rollback goes on after it"
                        ),
                    },
                    Ok(Some(v)) => Plan::RestoreOnly {
                        why: format!(
                            "step {step} changes the running version and was cut short, and {v} runs, not {}: it is never run twice",
                            unfinished.restore_version
                        ),
                    },
                    Ok(None) => Plan::RestoreOnly {
                        why: format!(
                            "step {step} changes the running version and was cut short, and the release source does not say which version runs"
                        ),
                    },
                    Err(error) => Plan::RestoreOnly {
                        why: format!(
                            "step {step} changes the running version and was cut short, and the running version cannot be read: {error}"
                        ),
                    },
                }
            }
            plan => plan,
        }
    }

    /// Runs the rest of the pipeline from `from` (and the guaranteed steps
    /// not done yet), verifies, and closes the rollback as any rollback.
    async fn go_on(&self, unfinished: &Unfinished, from: usize, why: &str) {
        let name = self.name().to_owned();
        tracing::warn!(target_name = %name, release_id = %unfinished.release_id, %why, "Resuming the interrupted rollback");
        let steps = remaining(&self.setup.target.step, from, &unfinished.done_steps);
        let bake = Bake::new(
            unfinished.release_id.clone(),
            unfinished.bad_version.clone(),
            Some(unfinished.restore_version.clone()),
            unfinished.release_at.unwrap_or(unfinished.started_at),
            BakeKind::Release,
            crate::judge::Judge::new(&self.setup.target),
            self.setup.target.bake_window,
        );
        let verifier = Arc::new(TargetVerifier::new(
            self.setup.clone(),
            self.state.clone(),
            &bake,
        ));
        let reason = format!("rollguard restarted during this rollback: {why}");
        let outcome = self
            .run_steps(unfinished, &steps, &reason, Some(verifier.clone()))
            .await;
        let verification = match outcome {
            PipelineOutcome::Completed {
                verified: false, ..
            } => Some(
                verifier
                    .verify_for(verify_timeout(&self.setup.target), self.stop.clone())
                    .await,
            ),
            _ => None,
        };
        let ending = Ending::of(&outcome, verification, false);
        let finished = Event::RollbackFinished {
            release_id: unfinished.release_id.clone(),
            outcome: ending.outcome.as_str().to_owned(),
        };
        if let Err(error) = self
            .state
            .journal()
            .append_async(Some(&name), finished)
            .await
        {
            tracing::error!(target_name = %name, %error, "Cannot journal the end of the resumed rollback");
        }
        tracing::info!(target_name = %name, outcome = ending.outcome.as_str(), detail = %ending.detail, "The resumed rollback ended");
        let status_message = crate::report::on_incident(
            self.state.journal(),
            self.state.metrics(),
            &self.setup.target,
            &unfinished.release_id,
        )
        .await;
        let detail = format!("resumed after a restart ({why}); {}", ending.detail);
        self.tell(
            unfinished,
            ending.event,
            &detail,
            "",
            &outcome,
            status_message,
        );
    }

    /// The guaranteed steps of the target's pipeline that had not ended
    /// well before the restart, run as a pipeline of their own. The journal
    /// names steps: a step whose name another step shares (two unnamed
    /// `command` steps) is run again rather than skipped, since an undrain
    /// run twice does less harm than one never run.
    async fn run_restore_steps(&self, unfinished: &Unfinished) -> PipelineOutcome {
        let all = &self.setup.target.step;
        let steps = remaining(all, all.len(), &unfinished.done_steps);
        let reason = "rollguard restarted during this rollback; running its restore steps";
        self.run_steps(unfinished, &steps, reason, None).await
    }

    /// Runs `steps` under `unfinished`'s rollback, journaled as its steps.
    async fn run_steps(
        &self,
        unfinished: &Unfinished,
        steps: &[StepConfig],
        reason: &str,
        verifier: Option<Arc<TargetVerifier>>,
    ) -> PipelineOutcome {
        let ctx = rollback_context(
            &self.setup,
            &unfinished.release_id,
            &unfinished.bad_version,
            &unfinished.restore_version,
            reason,
            unfinished.started_at,
        );
        let hooks = StepHooks::new(
            self.state.journal().clone(),
            &self.setup,
            &unfinished.release_id,
            self.notification_of(NotifyEvent::RollbackStep, unfinished),
        );
        let mut deps = pipeline_deps(&self.setup);
        if let Some(verifier) = verifier {
            deps.verifier = Some(verifier);
        }
        pipeline::run(steps, &ctx, &deps, &hooks, self.stop.clone()).await
    }

    /// Notifies `event` with `detail` and the steps that ran (under
    /// `heading`), and escalates a failed restore step in a notification of
    /// its own.
    fn tell(
        &self,
        unfinished: &Unfinished,
        event: NotifyEvent,
        detail: &str,
        heading: &str,
        outcome: &PipelineOutcome,
        status_message: Option<String>,
    ) {
        let steps_run = timeline(outcome);
        let n = self
            .notification_of(event, unfinished)
            .with_detail(if steps_run.is_empty() {
                detail.to_owned()
            } else {
                format!("{detail}\n{heading}{steps_run}")
            })
            .with_status_message(status_message);
        self.notify(n);
        if let Some(escalated) = escalation(outcome, detail) {
            tracing::error!(target_name = %self.name(), detail = %escalated, "A restore step failed");
            let n = self.notification_of(NotifyEvent::RollbackFailed, unfinished);
            self.notify(n.with_detail(escalated));
        }
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

/// The steps a resumed rollback runs: the ordinary ones from position
/// `from` of the ordered pipeline, and every guaranteed step not done yet
/// (a guaranteed step whose name another shares runs again).
fn remaining(all: &[StepConfig], from: usize, done: &[String]) -> Vec<StepConfig> {
    let names: Vec<String> = all.iter().map(step_name).collect();
    let done =
        |name: &String| names.iter().filter(|n| *n == name).count() == 1 && done.contains(name);
    ordered(all)
        .into_iter()
        .enumerate()
        .filter(|(i, step)| {
            if step.common.guaranteed() {
                !done(&step_name(step))
            } else {
                *i >= from
            }
        })
        .map(|(_, step)| step.clone())
        .collect()
}
