//! The runner: steps in phase order, each attempt journaled first, retries
//! with doubling backoff, `on_failure`, and a stop signal that lets no new
//! step or attempt start.

use super::{
    PipelineDeps, PipelineHooks, PipelineOutcome, RollbackContext, StepError, StepReport,
    StepResult, bluegreen, command, config_restore, describe, http, kubernetes, ordered, precheck,
    step_name, stopped, swarm, swarm_precheck, symlink, systemd, wait,
};
use crate::config::bounds::STEP_BACKOFF;
use crate::config::{OnFailure, StepAction, StepConfig};
use crate::exec::ProcessGroup;
use crate::model::StepOutcome;
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

/// Time past a step's own limit after which an attempt is abandoned. Each
/// kind enforces the step's `timeout` itself (a command's whole process
/// group is stopped); this only guards against a kind that hangs anyway.
const BACKSTOP: Duration = Duration::from_secs(5);

/// Runs the rollback pipeline; see the module docs of
/// [`pipeline`](super). Call it only when the rollback is to happen for real:
/// shadow mode uses [`preview()`](super::preview()) alone.
///
/// When `stop` turns true no new step or attempt starts (the outcome is
/// `Interrupted`); a running step is not cancelled, except that `wait`,
/// `verify` and `kubernetes_rollout_status`, which only wait, end early. The daemon aborts a step that
/// outlives its shutdown grace period and journals it as interrupted.
///
/// Guaranteed steps ([`StepCommon::guaranteed`](crate::config::StepCommon::guaranteed):
/// the `restore` and `cleanup` phases, and `always = true`) run however the
/// pipeline ends: after an aborting failure, and after `stop` too (they do
/// not listen to it; the daemon's grace period still bounds them). The
/// outcome names the first failure, never a guaranteed step's later one.
pub async fn run(
    steps: &[StepConfig],
    ctx: &RollbackContext,
    deps: &PipelineDeps,
    hooks: &dyn PipelineHooks,
    stop: watch::Receiver<bool>,
) -> PipelineOutcome {
    let mut reports = Vec::new();
    let mut verified = false;
    // Set by the first abort or stop: from then on only guaranteed steps run.
    let mut cut: Option<Cut> = None;
    for step in ordered(steps) {
        let guaranteed = step.common.guaranteed();
        if cut.is_some() && !guaranteed {
            continue;
        }
        let name = step_name(step);
        let step_stop = if guaranteed {
            never_stops()
        } else {
            stop.clone()
        };
        let report = match run_step(step, &name, ctx, deps, hooks, step_stop).await {
            StepRun::Ran(report) => report,
            StepRun::NotStarted => {
                cut.get_or_insert(Cut::Interrupted { step: name });
                continue;
            }
            StepRun::Unrecorded { report, message } => {
                reports.extend(report);
                cut.get_or_insert(Cut::Failed {
                    step: name,
                    message,
                });
                continue;
            }
        };
        let outcome = report.outcome;
        let message = report.message.clone().unwrap_or_default();
        reports.push(report);
        match outcome {
            StepOutcome::Ok => verified |= matches!(step.action, StepAction::Verify(_)),
            StepOutcome::Interrupted => {
                cut.get_or_insert(Cut::Interrupted { step: name });
            }
            // `on_failure()`: a failed backup aborts whatever the step says.
            StepOutcome::Failed | StepOutcome::TimedOut => match step.on_failure() {
                OnFailure::Continue => {
                    tracing::warn!(step = %name, %message, "Rollback step failed; continuing");
                }
                OnFailure::Abort => {
                    cut.get_or_insert(Cut::Failed {
                        step: name,
                        message,
                    });
                }
            },
        }
    }
    let steps = reports;
    match cut {
        None => PipelineOutcome::Completed { verified, steps },
        Some(Cut::Failed { step, message }) => PipelineOutcome::Failed {
            step,
            message,
            steps,
        },
        Some(Cut::Interrupted { step }) => PipelineOutcome::Interrupted { step, steps },
    }
}

/// Why the pipeline stopped running its ordinary steps.
enum Cut {
    /// A step failed with `on_failure = "abort"`, or could not be journaled.
    Failed { step: String, message: String },
    /// The daemon is stopping.
    Interrupted { step: String },
}

/// A stop signal that never turns true: a guaranteed step runs to its end
/// even while the daemon stops.
fn never_stops() -> watch::Receiver<bool> {
    watch::channel(false).1
}

/// How one step's attempts went.
enum StepRun {
    /// The step ran to a final outcome.
    Ran(StepReport),
    /// Stop was asked before its first attempt.
    NotStarted,
    /// A hook could not record an attempt's start or end.
    Unrecorded {
        /// The timeline entry, when some attempt ran.
        report: Option<StepReport>,
        /// The hook's error.
        message: String,
    },
}

/// All attempts of one step.
async fn run_step(
    step: &StepConfig,
    name: &str,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
    hooks: &dyn PipelineHooks,
    mut stop: watch::Receiver<bool>,
) -> StepRun {
    let started = Instant::now();
    let mut report = StepReport {
        name: name.to_owned(),
        kind: step.kind(),
        description: describe(step, ctx),
        outcome: StepOutcome::Interrupted,
        attempts: 0,
        duration: Duration::ZERO,
        message: None,
        guaranteed: step.common.guaranteed(),
    };
    let max_attempts = step.common.retries.saturating_add(1);
    let mut backoff = step.common.backoff;
    loop {
        if *stop.borrow() {
            if report.attempts == 0 {
                return StepRun::NotStarted;
            }
            report.message = Some(format!(
                "stopped before attempt {}: rollguard is shutting down",
                report.attempts + 1
            ));
            report.outcome = StepOutcome::Interrupted;
            report.duration = started.elapsed();
            return StepRun::Ran(report);
        }
        let attempt = report.attempts + 1;
        if let Err(message) = hooks.step_started(name, attempt).await {
            report.duration = started.elapsed();
            let report = (attempt > 1).then_some(report);
            return StepRun::Unrecorded { report, message };
        }
        report.attempts = attempt;
        tracing::info!(step = %name, attempt, kind = step.kind().as_str(), "Rollback step starting");
        let (spawned, group) = oneshot::channel();
        let once = attempt_once(step, ctx, deps, stop.clone(), spawned);
        let result = recording_group(once, group, name, hooks).await;
        let (outcome, message, retryable) = match result {
            Ok(message) => (StepOutcome::Ok, message, false),
            Err(error) => (error.outcome, Some(error.message), error.retryable),
        };
        report.outcome = outcome;
        report.message = message;
        report.duration = started.elapsed();
        if let Err(message) = hooks
            .step_finished(name, outcome, report.message.as_deref())
            .await
        {
            return StepRun::Unrecorded {
                report: Some(report),
                message,
            };
        }
        if outcome == StepOutcome::Ok || !retryable || attempt >= max_attempts {
            return StepRun::Ran(report);
        }
        tracing::warn!(
            step = %name,
            attempt,
            retry_in = %humantime::format_duration(backoff),
            message = report.message.as_deref().unwrap_or(""),
            "Rollback step failed; retrying"
        );
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stopped(&mut stop) => {}
        }
        backoff = next_backoff(backoff, step);
    }
}

/// The wait before the retry after one that waited `backoff`: doubled, but
/// never longer than the longest backoff one may configure.
fn next_backoff(backoff: Duration, step: &StepConfig) -> Duration {
    backoff
        .saturating_mul(2)
        .min(STEP_BACKOFF.max.max(step.common.backoff))
}

/// How long one attempt of `step` may run before it is abandoned: its
/// `timeout` (a `wait` step at least its `duration`), plus the backstop.
fn attempt_limit(step: &StepConfig) -> Duration {
    let own_limit = match &step.action {
        StepAction::Wait(w) => w.duration.max(step.common.timeout),
        _ => step.common.timeout,
    };
    own_limit.saturating_add(BACKSTOP)
}

/// The longest [`run`] can take on `steps` followed by the daemon's own
/// verification (`verification`, needed unless a `verify` step that aborts
/// on failure passed): every step run, every attempt at its time limit, every
/// retry's backoff waited. An upper bound, for "Estimated completion"; a
/// pipeline that goes well ends far sooner. The journal's writes and a step
/// cut short by a shutdown are not counted.
pub fn upper_bound(steps: &[StepConfig], verification: Duration) -> Duration {
    let verifies = steps.iter().any(|step| {
        matches!(step.action, StepAction::Verify(_)) && step.on_failure() == OnFailure::Abort
    });
    let daemon = if verifies {
        Duration::ZERO
    } else {
        verification
    };
    steps
        .iter()
        .map(|step| {
            let attempts = step.common.retries.saturating_add(1);
            let mut total = attempt_limit(step);
            let mut backoff = step.common.backoff;
            for _ in 1..attempts {
                total = total
                    .saturating_add(backoff)
                    .saturating_add(attempt_limit(step));
                backoff = next_backoff(backoff, step);
            }
            total
        })
        .fold(daemon, Duration::saturating_add)
}

/// Runs `attempt`; when it starts a program, journals the program's
/// process group through `hooks` while it runs.
async fn recording_group(
    attempt: impl Future<Output = StepResult>,
    group: oneshot::Receiver<ProcessGroup>,
    name: &str,
    hooks: &dyn PipelineHooks,
) -> StepResult {
    tokio::pin!(attempt);
    // The group first: once the attempt waits for its program, the group
    // has been sent, so it is recorded before the step's end.
    tokio::select! {
        biased;
        Ok(group) = group => {
            if let Err(message) = hooks.step_spawned(name, group).await {
                tracing::warn!(step = %name, %message, "The step's program runs unrecorded: a crash now would leave it running");
            }
            attempt.await
        }
        result = &mut attempt => result,
    }
}

/// One attempt, dispatched on the kind, with the backstop time limit; a
/// command step sends its program's process group on `spawned`.
async fn attempt_once(
    step: &StepConfig,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
    stop: watch::Receiver<bool>,
    spawned: oneshot::Sender<ProcessGroup>,
) -> StepResult {
    let timeout = step.common.timeout;
    let limit = attempt_limit(step);
    let attempt = async {
        match &step.action {
            StepAction::Command(s) | StepAction::Backup(s) => {
                command::execute(s, timeout, ctx, spawned).await
            }
            StepAction::Http(s) => http::execute(s, timeout, ctx, deps).await,
            StepAction::SymlinkSwitch(s) => symlink::execute(s, ctx).await,
            StepAction::SystemdRestart(s) => systemd::execute(s, timeout, deps).await,
            StepAction::Wait(s) => wait::wait(s, stop).await,
            StepAction::Verify(_) => wait::verify(timeout, deps, stop).await,
            StepAction::KubernetesUndo(s) => kubernetes::undo(s, timeout, ctx, deps).await,
            StepAction::KubernetesSetImage(s) => kubernetes::set_image(s, timeout, ctx, deps).await,
            StepAction::KubernetesScale(s) => kubernetes::scale(s, timeout, ctx, deps).await,
            StepAction::KubernetesRolloutStatus(s) => {
                kubernetes::rollout_status(s, timeout, ctx, deps, stop).await
            }
            StepAction::Precheck(s) => precheck::check(s, timeout, ctx, deps).await,
            StepAction::SwarmPrecheck(s) => swarm_precheck::check(s, timeout, ctx).await,
            StepAction::SwarmRollback(s) => swarm::rollback(s, timeout, deps).await,
            StepAction::SwarmSetImage(s) => swarm::set_image(s, timeout, ctx, deps).await,
            StepAction::BluegreenSwitch(s) => bluegreen::execute(s, timeout, ctx, deps, stop).await,
            StepAction::ConfigRestore(s) => config_restore::execute(s, timeout, ctx).await,
        }
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => Err(StepError::timed_out(format!(
            "abandoned after {}",
            humantime::format_duration(limit.saturating_sub(BACKSTOP))
        ))),
    }
}
