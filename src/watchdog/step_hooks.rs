//! What the rollback pipeline tells the rest of rollguard around each step:
//! the journal (synced before a step acts) and the notifiers
//! (`rollback_step`), and the timeline of an incident summary.

use crate::exec::ProcessGroup;
use crate::journal::{Event, Journal};
use crate::model::StepOutcome;
use crate::notify::{Notification, Notifiers};
use crate::pipeline::{BoxFuture, PipelineHooks, PipelineOutcome};
use std::sync::Arc;
use std::time::Duration;

/// Hooks that append `step_started` and `step_finished` to the journal,
/// each synced before the call returns.
#[derive(Debug, Clone)]
pub struct JournalHooks {
    /// The daemon's journal.
    pub journal: Journal,
    /// The target the pipeline belongs to (the records' target).
    pub target: String,
    /// The bad release's id (in each event).
    pub release_id: String,
}

impl JournalHooks {
    /// Appends `event` (synced); `what` names the record in the error.
    fn record(&self, event: Event, what: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.journal
                .append_async(Some(&self.target), event)
                .await
                .map(|_| ())
                .map_err(|error| format!("cannot journal {what}: {error}"))
        })
    }
}

impl PipelineHooks for JournalHooks {
    fn step_started<'a>(
        &'a self,
        step: &'a str,
        attempt: u32,
    ) -> BoxFuture<'a, Result<(), String>> {
        let event = Event::StepStarted {
            release_id: self.release_id.clone(),
            step: step.to_owned(),
            attempt,
        };
        self.record(event, format!("the start of step `{step}`"))
    }

    fn step_spawned<'a>(
        &'a self,
        step: &'a str,
        group: ProcessGroup,
    ) -> BoxFuture<'a, Result<(), String>> {
        let event = Event::StepProcess {
            release_id: self.release_id.clone(),
            step: step.to_owned(),
            group,
        };
        self.record(event, format!("the process group of step `{step}`"))
    }

    fn step_finished<'a>(
        &'a self,
        step: &'a str,
        outcome: StepOutcome,
        message: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), String>> {
        let event = Event::StepFinished {
            release_id: self.release_id.clone(),
            step: step.to_owned(),
            outcome,
            message: message.map(str::to_owned),
        };
        self.record(event, format!("the end of step `{step}`"))
    }
}

/// Journals every step (synced before it acts) and tells the notifiers how
/// each one ended (`rollback_step`), without waiting for them.
pub(super) struct StepHooks {
    /// Journals each step.
    pub journal: JournalHooks,
    /// Where `rollback_step` goes.
    pub notifiers: Arc<Notifiers>,
    /// The target's notifier names.
    pub to: Vec<String>,
    /// The rollback's notification, which each step's copies.
    pub base: Notification,
    /// Dates each step's notification.
    pub clock: super::Clock,
}

impl StepHooks {
    /// The hooks of a rollback of `release_id` on `setup`'s target; `base`
    /// is the rollback's notification.
    pub(super) fn new(
        journal: Journal,
        setup: &super::Setup,
        release_id: &str,
        base: Notification,
    ) -> StepHooks {
        StepHooks {
            journal: JournalHooks {
                journal,
                target: setup.target.name.clone(),
                release_id: release_id.to_owned(),
            },
            notifiers: setup.notifiers.clone(),
            to: setup.target.notify.clone(),
            base,
            clock: setup.services.clock,
        }
    }
}

impl PipelineHooks for StepHooks {
    fn step_started<'a>(
        &'a self,
        step: &'a str,
        attempt: u32,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.journal.step_started(step, attempt)
    }

    fn step_spawned<'a>(
        &'a self,
        step: &'a str,
        group: ProcessGroup,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.journal.step_spawned(step, group)
    }

    fn step_finished<'a>(
        &'a self,
        step: &'a str,
        outcome: StepOutcome,
        message: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let journaled = self.journal.step_finished(step, outcome, message).await;
            let mut n = self.base.clone().with_step(step);
            n.at = self.clock.now();
            n = n.with_detail(match message {
                Some(message) => format!("step {step}: {outcome} ({message})"),
                None => format!("step {step}: {outcome}"),
            });
            self.notifiers.send(&self.to, n);
            journaled
        })
    }
}

/// The steps that ran, one line each, for the incident summary.
pub(super) fn timeline(outcome: &PipelineOutcome) -> String {
    outcome
        .steps()
        .iter()
        .enumerate()
        .map(|(i, step)| {
            format!(
                "{}. {} — {} after {} attempt(s), {}{}",
                i + 1,
                step.description,
                step.outcome,
                step.attempts,
                humantime::format_duration(Duration::from_millis(step.duration.as_millis() as u64)),
                step.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The escalation of the guaranteed steps that failed (the service may be
/// left drained): a message of its own that names them and then, unhidden,
/// how the rollback itself ended (`rollback`). `None` when every one of
/// them went well.
pub(super) fn escalation(outcome: &PipelineOutcome, rollback: &str) -> Option<String> {
    let failures: Vec<String> = outcome
        .restore_failures()
        .map(|step| {
            let why = step.message.as_deref().unwrap_or("no message");
            format!("restore step `{}` {}: {why}", step.name, step.outcome)
        })
        .collect();
    if failures.is_empty() {
        return None;
    }
    Some(format!(
        "{}; check the service by hand. The rollback itself: {rollback}",
        failures.join("; ")
    ))
}
