//! What the runner tells the daemon around every attempt: the daemon
//! journals (and syncs) a step's start before the step may act. The
//! journaling itself is the watchdog's (`watchdog::JournalHooks`): the
//! pipeline knows only this trait.

use crate::exec::ProcessGroup;
use crate::model::StepOutcome;
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

    /// The attempt started a program, whose process group is `group`
    /// (`command` steps). Recorded so that a restart after a crash stops
    /// what is left of it; on `Err` the attempt goes on (it already runs)
    /// and the runner warns. Does nothing by default.
    fn step_spawned<'a>(
        &'a self,
        step: &'a str,
        group: ProcessGroup,
    ) -> BoxFuture<'a, Result<(), String>> {
        let _ = (step, group);
        Box::pin(async { Ok(()) })
    }

    /// After an attempt, with how it ended. On `Err` the pipeline stops
    /// (failed): the next step could not be journaled either.
    fn step_finished<'a>(
        &'a self,
        step: &'a str,
        outcome: StepOutcome,
        message: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), String>>;
}
