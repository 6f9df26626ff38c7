//! What a target's watchdog starts from: the journal read back after a
//! restart. The rule is simple and strict: a rollback that was started is
//! never started again. One that finished set the running version; one that
//! was cut short by a crash goes on where that is safe (`resume_plan.rs`),
//! or gets its guaranteed (restore) steps that had not run yet and is
//! closed as interrupted and left to a human: its version change is never
//! run a second time.

use super::outcome::{RollbackOutcome, Trigger};
use crate::config::TargetConfig;
use crate::exec::{Leftover, ProcessGroup};
use crate::journal::{Event, Journal, Record};
use crate::model::StepOutcome;
use crate::release::{CurrentRelease, ReleaseTracker};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// A release whose bake window was still open when the daemon stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenRelease {
    /// Its id.
    pub release_id: String,
    /// Its version.
    pub version: String,
    /// The version before it.
    pub previous_version: Option<String>,
    /// When it was seen.
    pub started: SystemTime,
    /// Whether rollguard already acted on it (a rollback started).
    pub acted: bool,
    /// Whether it was rollguard's own rollback arriving.
    pub by_rollguard: bool,
}

/// A rollback the journal shows as started but never finished.
#[derive(Debug, Clone, PartialEq)]
pub struct Unfinished {
    /// The release being rolled back.
    pub release_id: String,
    /// The version rolled back (`rollback_started.from`).
    pub bad_version: String,
    /// The version brought back (`rollback_started.to`).
    pub restore_version: String,
    /// When the rollback started (its `{{timestamp}}`, also for the restore
    /// steps a restart runs).
    pub started_at: SystemTime,
    /// Steps that had started without finishing.
    pub open_steps: Vec<String>,
    /// Steps whose last attempt ended well: a guaranteed step among them is
    /// not run again after the restart.
    pub done_steps: Vec<String>,
    /// Steps whose last attempt failed or timed out.
    pub failed_steps: Vec<String>,
    /// Steps a shutdown journaled as interrupted (cut short, like open
    /// ones).
    pub cut_steps: Vec<String>,
    /// When the release being rolled back was seen: the baseline ends
    /// there, for the verification of a resumed rollback.
    pub release_at: Option<SystemTime>,
    /// The process groups that open steps had started, by step: what the
    /// dead daemon may have left running, stopped before anything else.
    pub processes: Vec<(String, ProcessGroup)>,
}

/// What a target's watchdog knows when it starts.
#[derive(Debug, Clone)]
pub struct TargetMemory {
    /// Versions seen, seeded with the last one the journal knows.
    pub tracker: ReleaseTracker,
    /// The release to keep baking, if its window is still open.
    pub open: Option<OpenRelease>,
    /// When the last automatic rollback started (for `cooldown`).
    pub last_rollback_at: Option<SystemTime>,
    /// A time-to-fix set by an operator.
    pub time_to_fix: Option<Duration>,
    /// A rollback cut short by a crash, to be closed and reported.
    pub unfinished: Option<Unfinished>,
}

/// Reads `journal` for `target` as of `now`.
pub fn recover(journal: &Journal, target: &TargetConfig, now: SystemTime) -> TargetMemory {
    let mut fold = Fold::default();
    journal.for_each_record(|record| {
        if record.target.as_deref() == Some(target.name.as_str()) {
            fold.apply(record);
        }
    });
    fold.finish(target, now)
}

/// [`recover`] for many targets in one pass over the journal: start-up
/// reads it once, not once per target.
pub fn recover_all(
    journal: &Journal,
    targets: &[&TargetConfig],
    now: SystemTime,
) -> HashMap<String, TargetMemory> {
    let mut folds: HashMap<&str, Fold> = targets
        .iter()
        .map(|t| (t.name.as_str(), Fold::default()))
        .collect();
    journal.for_each_record(|record| {
        if let Some(fold) = record.target.as_deref().and_then(|t| folds.get_mut(t)) {
            fold.apply(record);
        }
    });
    targets
        .iter()
        .filter_map(|t| {
            Some((
                t.name.clone(),
                folds.remove(t.name.as_str())?.finish(t, now),
            ))
        })
        .collect()
}

/// What a target's records say so far, one record at a time, oldest first.
#[derive(Default)]
struct Fold {
    current: Option<String>,
    open: Option<OpenRelease>,
    last_rollback_at: Option<SystemTime>,
    time_to_fix: Option<Duration>,
    /// The last rollback started, and whether it finished.
    rollback: Option<(Unfinished, bool)>,
    expected: Option<String>,
    release: Option<CurrentRelease>,
}

impl Fold {
    fn apply(&mut self, record: &Record) {
        let Fold {
            current,
            open,
            last_rollback_at,
            time_to_fix,
            rollback,
            expected,
            release,
        } = self;
        match &record.event {
            Event::ReleaseSeen {
                from,
                to,
                by_rollguard,
                release_id,
                ..
            } => {
                *current = Some(to.clone());
                *expected = None;
                *release = (!*by_rollguard).then(|| CurrentRelease {
                    id: release_id.clone(),
                    previous: from.clone(),
                });
                *open = record.at_time().map(|at| OpenRelease {
                    release_id: release_id.clone(),
                    version: to.clone(),
                    previous_version: from.clone(),
                    started: at,
                    acted: false,
                    by_rollguard: *by_rollguard,
                });
            }
            Event::RollbackStarted {
                release_id,
                from,
                to,
                trigger,
            } => {
                if Trigger::parse(trigger) == Some(Trigger::Automatic) {
                    *last_rollback_at = record.at_time();
                }
                if let Some(open) = open.as_mut().filter(|o| &o.release_id == release_id) {
                    open.acted = true;
                }
                *rollback = Some((
                    Unfinished {
                        release_id: release_id.clone(),
                        bad_version: from.clone(),
                        restore_version: to.clone(),
                        started_at: record.at_time().unwrap_or_else(SystemTime::now),
                        open_steps: Vec::new(),
                        done_steps: Vec::new(),
                        failed_steps: Vec::new(),
                        cut_steps: Vec::new(),
                        release_at: open
                            .as_ref()
                            .filter(|o| &o.release_id == release_id)
                            .map(|o| o.started),
                        processes: Vec::new(),
                    },
                    false,
                ));
            }
            Event::StepStarted { step, .. } => {
                if let Some((unfinished, false)) = rollback.as_mut() {
                    unfinished.open_steps.push(step.clone());
                    unfinished.failed_steps.retain(|s| s != step);
                    unfinished.cut_steps.retain(|s| s != step);
                }
            }
            Event::StepProcess { step, group, .. } => {
                if let Some((unfinished, false)) = rollback.as_mut() {
                    unfinished.processes.push((step.clone(), group.clone()));
                }
            }
            Event::StepFinished { step, outcome, .. } => {
                if let Some((unfinished, false)) = rollback.as_mut() {
                    unfinished.processes.retain(|(s, _)| s != step);
                    if let Some(i) = unfinished.open_steps.iter().position(|s| s == step) {
                        unfinished.open_steps.remove(i);
                    }
                    match outcome {
                        StepOutcome::Ok => unfinished.done_steps.push(step.clone()),
                        StepOutcome::Failed | StepOutcome::TimedOut => {
                            unfinished.failed_steps.push(step.clone());
                        }
                        StepOutcome::Interrupted => unfinished.cut_steps.push(step.clone()),
                    }
                }
            }
            Event::RollbackFinished {
                release_id,
                outcome,
            } => {
                if let Some((unfinished, done)) = rollback.as_mut()
                    && &unfinished.release_id == release_id
                {
                    *done = true;
                    if RollbackOutcome::parse(outcome).is_some_and(RollbackOutcome::restored) {
                        // The previous version runs again; its arrival is
                        // rollguard's own, not a release.
                        *expected = Some(unfinished.restore_version.clone());
                    }
                }
            }
            Event::TimeToFixSet { time_to_fix: value } => {
                *time_to_fix = value
                    .as_deref()
                    .and_then(|v| humantime::parse_duration(v).ok());
            }
            _ => {}
        }
    }

    fn finish(self, target: &TargetConfig, now: SystemTime) -> TargetMemory {
        let Fold {
            current,
            open,
            last_rollback_at,
            time_to_fix,
            rollback,
            mut expected,
            release,
        } = self;
        let unfinished = match rollback {
            Some((unfinished, false)) => {
                expected = Some(unfinished.restore_version.clone());
                Some(unfinished)
            }
            _ => None,
        };
        let open = open.filter(|o| crate::time::later(o.started, target.bake_window) > now);
        let mut tracker = ReleaseTracker::new(&target.name);
        if let Some(version) = &current {
            tracker = tracker.with_current(version).with_release(release);
        }
        if let Some(restored) = &expected {
            tracker.expect_rollback(restored, now);
        }
        TargetMemory {
            tracker,
            open,
            last_rollback_at,
            time_to_fix,
            unfinished,
        }
    }
}

/// Closes a rollback that a crash cut short, once its open steps are
/// closed ([`close_open_steps`]) and its restore steps ran: journaled as
/// interrupted, so that it is never started again.
pub async fn close_rollback(
    journal: &Journal,
    target: &str,
    unfinished: &Unfinished,
) -> Result<(), crate::journal::JournalError> {
    let finished = Event::RollbackFinished {
        release_id: unfinished.release_id.clone(),
        outcome: RollbackOutcome::Interrupted.as_str().to_owned(),
    };
    journal.append_async(Some(target), finished).await?;
    Ok(())
}

/// Records every open step of `unfinished` as interrupted. The rollback
/// stays open: what a shutdown does when its grace period ended during a
/// step, so that the next start runs the restore steps and closes it.
pub async fn close_open_steps(
    journal: &Journal,
    target: &str,
    unfinished: &Unfinished,
) -> Result<(), crate::journal::JournalError> {
    for step in &unfinished.open_steps {
        journal
            .append_async(
                Some(target),
                Event::StepFinished {
                    release_id: unfinished.release_id.clone(),
                    step: step.clone(),
                    outcome: StepOutcome::Interrupted,
                    message: Some("rollguard stopped while this step ran".to_owned()),
                },
            )
            .await?;
    }
    Ok(())
}

/// The rollback of `target` that is open in the journal right now, if any
/// (used when a shutdown abandons a running pipeline).
pub fn unfinished_now(journal: &Journal, target: &TargetConfig) -> Option<Unfinished> {
    recover(journal, target, SystemTime::now()).unfinished
}

/// Stops the programs that the open steps of `unfinished` left running
/// when the daemon died or a shutdown abandoned them (each only if it is
/// still the one recorded).
/// Returns the steps whose programs were stopped.
pub async fn stop_leftovers(target: &str, unfinished: &Unfinished) -> Vec<String> {
    let mut stopped = Vec::new();
    for (step, group) in &unfinished.processes {
        let found = group.stop_leftover().await;
        tracing::warn!(target_name = %target, %step, pgid = group.pgid, ?found, "A program of the interrupted step was looked for");
        if found == Leftover::Stopped {
            stopped.push(step.clone());
        }
    }
    stopped
}
