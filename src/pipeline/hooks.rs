//! What the runner tells the daemon around every attempt: the daemon
//! journals (and syncs) a step's start before the step may act.

use crate::journal::{Event, Journal, StepOutcome};
use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future: what the hook and verifier traits return so
/// that they can be used as `dyn` objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Called by [`run`](super::run) around each attempt of each step.
pub trait PipelineHooks: Send + Sync {
    /// Before an attempt (`attempt` counts from 1). `Ok` means the start is
    /// durably recorded; on `Err` the attempt does not run and the pipeline
    /// fails, since rollguard never acts without a record of it.
    fn step_started<'a>(&'a self, step: &'a str, attempt: u32)
    -> BoxFuture<'a, Result<(), String>>;

    /// After an attempt, with how it ended. On `Err` the pipeline stops
    /// (failed): the next step could not be journaled either.
    fn step_finished<'a>(
        &'a self,
        step: &'a str,
        outcome: StepOutcome,
        message: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), String>>;
}

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

impl PipelineHooks for JournalHooks {
    fn step_started<'a>(
        &'a self,
        step: &'a str,
        attempt: u32,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let event = Event::StepStarted {
                release_id: self.release_id.clone(),
                step: step.to_owned(),
                attempt,
            };
            self.journal
                .append_async(Some(&self.target), event)
                .await
                .map(|_| ())
                .map_err(|error| format!("cannot journal the start of step `{step}`: {error}"))
        })
    }

    fn step_finished<'a>(
        &'a self,
        step: &'a str,
        outcome: StepOutcome,
        message: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let event = Event::StepFinished {
                release_id: self.release_id.clone(),
                step: step.to_owned(),
                outcome,
                message: message.map(str::to_owned),
            };
            self.journal
                .append_async(Some(&self.target), event)
                .await
                .map(|_| ())
                .map_err(|error| format!("cannot journal the end of step `{step}`: {error}"))
        })
    }
}
