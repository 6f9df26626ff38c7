//! `wait` and `verify` steps: the two that only wait, and so the two that
//! end early when the daemon is stopping.
//!
//! `verify` asks a [`Verifier`] (the daemon re-runs the target's probes and
//! metrics against the baseline) every poll interval until it says
//! healthy, or the step's timeout passes: a rollback is complete only when
//! verified. The pipeline never runs probes itself.

use super::{BoxFuture, PipelineDeps, StepError, StepResult, stopped};
use crate::config::WaitStep;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// What one verification round found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyResult {
    /// Probes pass and metrics are back to baseline, with the evidence in
    /// one line.
    Healthy(String),
    /// Not yet back to baseline, and why.
    NotYet(String),
    /// Cannot tell (no data, monitoring down); never counts as healthy.
    Unknown(String),
}

/// Re-checks a target after a rollback; implemented by the daemon over its
/// probes and metrics, and by fakes in tests.
pub trait Verifier: Send + Sync {
    /// One round of checks.
    fn verify_once(&self) -> BoxFuture<'_, VerifyResult>;
}

/// Sleeps the step's `duration`, or until the daemon stops.
pub(super) async fn wait(step: &WaitStep, mut stop: watch::Receiver<bool>) -> StepResult {
    let duration = step.duration;
    tokio::select! {
        () = tokio::time::sleep(duration) => {
            Ok(Some(format!("waited {}", humantime::format_duration(duration))))
        }
        () = stopped(&mut stop) => Err(StepError::interrupted(
            "the wait was cut short: rollguard is shutting down",
        )),
    }
}

/// Polls the verifier until healthy, `timeout` (the step's), or a stop.
pub(super) async fn verify(
    timeout: Duration,
    deps: &PipelineDeps,
    mut stop: watch::Receiver<bool>,
) -> StepResult {
    let verifier = deps
        .verifier
        .as_ref()
        .ok_or_else(|| StepError::permanent("no verifier is available to this pipeline"))?;
    let started = Instant::now();
    let deadline = crate::time::deadline(started, timeout);
    let mut rounds = 0u32;
    let mut last = String::from("no round finished");
    loop {
        let round = tokio::select! {
            result = tokio::time::timeout_at(deadline, verifier.verify_once()) => result.ok(),
            () = stopped(&mut stop) => {
                return Err(StepError::interrupted(format!(
                    "verification was cut short: rollguard is shutting down (last: {last})"
                )));
            }
        };
        match round {
            Some(VerifyResult::Healthy(evidence)) => {
                return Ok(Some(format!(
                    "back to baseline after {} ({} rounds): {evidence}",
                    humantime::format_duration(round_millis(started.elapsed())),
                    rounds + 1
                )));
            }
            Some(VerifyResult::NotYet(why)) => last = format!("not yet: {why}"),
            Some(VerifyResult::Unknown(why)) => last = format!("unknown: {why}"),
            None => {}
        }
        tracing::debug!(round = rounds + 1, %last, "Not back to baseline yet");
        rounds += 1;
        if Instant::now() + deps.poll_interval >= deadline {
            return Err(StepError::failed(format!(
                "not back to baseline within {} ({last})",
                humantime::format_duration(timeout)
            )));
        }
        tokio::select! {
            () = tokio::time::sleep(deps.poll_interval) => {}
            () = stopped(&mut stop) => {
                return Err(StepError::interrupted(format!(
                    "verification was cut short: rollguard is shutting down (last: {last})"
                )));
            }
        }
    }
}

/// A duration to whole milliseconds, for readable messages.
fn round_millis(duration: Duration) -> Duration {
    Duration::from_millis(duration.as_millis().try_into().unwrap_or(u64::MAX))
}
