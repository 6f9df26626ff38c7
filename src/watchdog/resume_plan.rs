//! Where a rollback cut short by a crash goes on from, decided from the
//! journal alone (pure; `target/resume.rs` carries it out).
//!
//! The rules, for the first step in run order that had not ended well:
//!
//! - It never started (the daemon died between two steps): go on from it.
//! - It was running, and only reads or waits (`wait`, `verify`,
//!   `precheck`, `swarm_precheck`, `kubernetes_rollout_status`) or writes
//!   the same again (`config_restore`), or has
//!   `retries` (its author declared it safe to repeat): run it again and
//!   go on.
//! - It was running and changes the running version: never run it again.
//!   Read the release source: when it now reports the version being
//!   brought back, the step did its work, and the pipeline goes on after
//!   it; otherwise (or when the version cannot be read) only the restore
//!   steps run and a human is told.
//! - It was running and may not be repeated (a `command` or `http` step
//!   without `retries`), or an earlier step had failed with `on_failure =
//!   "abort"`: only the restore steps run, as before this rule existed.

use crate::config::{OnFailure, StepConfig, StepKind};
use crate::pipeline::{ordered, step_name};

/// What a restart does with an unfinished rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Run the ordinary steps from position `from` of the ordered pipeline
    /// (and every guaranteed step not done yet).
    Continue {
        /// Index in [`ordered`] order.
        from: usize,
        /// Why, in words for the journal and the notification.
        why: String,
    },
    /// The interrupted step changed the running version: go on after it
    /// (from `from`) only if the source now reports the restore version.
    IfRestored {
        /// The step that was cut short.
        step: String,
        /// Index after it, in [`ordered`] order.
        from: usize,
    },
    /// Only the restore steps run; the reason is said to a human.
    RestoreOnly {
        /// Why the pipeline does not go on.
        why: String,
    },
}

/// The journal's view of the unfinished rollback's steps.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Steps whose last attempt ended well.
    pub done: &'a [String],
    /// Steps that were running when the daemon died, or that a shutdown
    /// journaled as interrupted.
    pub open: &'a [String],
    /// Steps whose last attempt failed or timed out.
    pub failed: &'a [String],
}

/// Kinds that only read or wait, or whose work is idempotent
/// (`config_restore` writes the same directory again), and so may run
/// again after a crash.
fn repeatable_kind(kind: StepKind) -> bool {
    matches!(
        kind,
        StepKind::ConfigRestore
            | StepKind::Wait
            | StepKind::Verify
            | StepKind::Precheck
            | StepKind::SwarmPrecheck
            | StepKind::KubernetesRolloutStatus
    )
}

/// The plan for `steps` (the target's pipeline, in file order) given what
/// the journal says of them.
pub fn plan(steps: &[StepConfig], progress: Progress<'_>) -> Plan {
    let ordered = ordered(steps);
    let names: Vec<String> = ordered.iter().map(|s| step_name(s)).collect();
    // A name the journal cannot tell apart (two unnamed `command` steps)
    // makes the journal ambiguous: do not go on past it.
    let unique = |name: &String| names.iter().filter(|n| *n == name).count() == 1;
    for (i, step) in ordered.iter().enumerate() {
        if step.common.guaranteed() {
            continue;
        }
        let name = &names[i];
        let done = progress.done.contains(name);
        let failed = progress.failed.contains(name);
        let open = progress.open.contains(name);
        if !unique(name) && (done || failed || open) {
            return Plan::RestoreOnly {
                why: format!(
                    "several steps are named {name}, so the journal cannot tell which ran: name them to let a restart go on"
                ),
            };
        }
        if done {
            continue;
        }
        if failed && !open {
            if step.on_failure() == OnFailure::Continue {
                continue;
            }
            return Plan::RestoreOnly {
                why: format!("step {name} had failed, which aborts the pipeline"),
            };
        }
        if !open {
            return Plan::Continue {
                from: i,
                why: format!("rollguard stopped between steps; going on from {name}"),
            };
        }
        if step.kind().changes_version() && !repeatable_kind(step.kind()) {
            return Plan::IfRestored {
                step: name.clone(),
                from: i + 1,
            };
        }
        if repeatable_kind(step.kind()) || step.common.retries > 0 {
            return Plan::Continue {
                from: i,
                why: format!(
                    "step {name} was cut short; it is safe to repeat ({}), so it runs again",
                    if repeatable_kind(step.kind()) {
                        "it only reads, waits or writes the same again"
                    } else {
                        "it has retries"
                    }
                ),
            };
        }
        return Plan::RestoreOnly {
            why: format!(
                "step {name} was cut short and may not be safe to repeat (give it retries to declare it is)"
            ),
        };
    }
    Plan::Continue {
        from: ordered.len(),
        why: "every step had ended; verifying".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps() -> Vec<StepConfig> {
        [
            "name = 'drain'\nphase = 'traffic'\nkind = 'command'\nargv = ['true']",
            "name = 'switch'\nphase = 'rollback'\nkind = 'symlink_switch'\nlink = '/srv/current'\nreleases_dir = '/srv/releases'",
            "name = 'settle'\nphase = 'verify'\nkind = 'wait'\nduration = '1s'",
            "name = 'warm'\nphase = 'verify'\nkind = 'http'\nurl = 'http://127.0.0.1:1/warm'\nretries = 2",
            "name = 'notes'\nphase = 'report'\nkind = 'command'\nargv = ['true']",
            "name = 'undrain'\nphase = 'restore'\nkind = 'command'\nargv = ['true']",
        ]
        .iter()
        .map(|text| toml::from_str(text).expect("step parses"))
        .collect()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn plan_of(done: &[&str], open: &[&str], failed: &[&str]) -> Plan {
        let (done, open, failed) = (names(done), names(open), names(failed));
        plan(
            &steps(),
            Progress {
                done: &done,
                open: &open,
                failed: &failed,
            },
        )
    }

    #[test]
    fn between_steps_it_goes_on_from_the_next() {
        assert!(matches!(
            plan_of(&["drain"], &[], &[]),
            Plan::Continue { from: 1, .. }
        ));
        assert!(matches!(
            plan_of(&["drain", "switch", "settle"], &[], &[]),
            Plan::Continue { from: 3, .. }
        ));
    }

    #[test]
    fn an_interrupted_version_change_goes_on_only_if_the_version_is_restored() {
        assert_eq!(
            plan_of(&["drain"], &["switch"], &[]),
            Plan::IfRestored {
                step: "switch".into(),
                from: 2
            }
        );
    }

    #[test]
    fn a_wait_or_a_step_with_retries_runs_again() {
        assert!(matches!(
            plan_of(&["drain", "switch"], &["settle"], &[]),
            Plan::Continue { from: 2, .. }
        ));
        assert!(matches!(
            plan_of(&["drain", "switch", "settle"], &["warm"], &[]),
            Plan::Continue { from: 3, .. }
        ));
    }

    #[test]
    fn a_command_without_retries_is_not_repeated() {
        let Plan::RestoreOnly { why } = plan_of(&[], &["drain"], &[]) else {
            panic!("a drain cut short is not run again");
        };
        assert!(why.contains("give it retries"), "{why}");
        assert!(matches!(
            plan_of(&["drain", "switch", "settle", "warm"], &["notes"], &[]),
            Plan::RestoreOnly { .. }
        ));
    }

    #[test]
    fn a_failed_aborting_step_stops_the_pipeline() {
        assert!(matches!(
            plan_of(&[], &[], &["drain"]),
            Plan::RestoreOnly { .. }
        ));
    }

    #[test]
    fn when_every_step_ended_only_verification_is_left() {
        assert!(matches!(
            plan_of(&["drain", "switch", "settle", "warm", "notes"], &[], &[]),
            Plan::Continue { from: 6, .. }
        ));
    }
}
