//! The gate's tables. [`RULES`] says, row by row, what each combination of
//! inputs leads to (`None` in a column: any value); the sweep checks the
//! gate against the first matching row for every combination of every
//! input, and that no row is dead.

use super::*;

const COOLDOWN: Duration = Duration::from_secs(600);

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
}

/// When the last automatic rollback started, relative to the cooldown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Never.
    Never,
    /// A minute ago: within the cooldown.
    Within,
    /// Eleven minutes ago: past it.
    Past,
    /// A minute from now (the wall clock went back): within it.
    Future,
}

impl Last {
    const ALL: [Last; 4] = [Last::Never, Last::Within, Last::Past, Last::Future];

    fn at(self) -> Option<SystemTime> {
        match self {
            Last::Never => None,
            Last::Within => Some(now() - Duration::from_secs(60)),
            Last::Past => Some(now() - Duration::from_secs(660)),
            Last::Future => Some(now() + Duration::from_secs(60)),
        }
    }
}

const MODES: [Mode; 3] = [Mode::Enforce, Mode::Shadow, Mode::Approve];
const KINDS: [BakeKind; 2] = [BakeKind::Release, BakeKind::Verification];
const DECISIONS: [Decision; 5] = [
    Decision::Healthy,
    Decision::ForwardFix,
    Decision::ConsiderRollback,
    Decision::Rollback,
    Decision::Inconclusive,
];
const BOOLS: [bool; 2] = [false, true];

/// One row: mode, paused, last rollback, kind, decision, acted, approval
/// pending; then the action.
type Row = (
    Option<Mode>,
    Option<bool>,
    Option<Last>,
    Option<BakeKind>,
    Option<Decision>,
    Option<bool>,
    Option<bool>,
    GateAction,
);

use ApprovalReason as R;
use BakeKind::{Release, Verification};
use Decision::{ConsiderRollback, ForwardFix, Healthy, Inconclusive, Rollback};
use GateAction as A;
use Mode::{Approve, Enforce, Shadow};

const fn cooldown(elapsed_secs: u64) -> GateAction {
    A::AskApproval(R::Cooldown {
        elapsed: Duration::from_secs(elapsed_secs),
        cooldown: COOLDOWN,
    })
}

#[rustfmt::skip]
const RULES: &[Row] = &[
    // mode          paused       last                kind                decision                acted        pending
    // Acted on once: never again, whatever else.
    (None,          None,        None,               None,               None,                   Some(true),  None,        A::Nothing),
    // Nothing to act on.
    (None,          None,        None,               None,               Some(Healthy),          None,        None,        A::Nothing),
    (None,          None,        None,               None,               Some(Inconclusive),     None,        None,        A::Nothing),
    // A rollback is never rolled back by itself.
    (None,          None,        None,               Some(Verification), None,                   None,        None,        A::Notify(Notice::VerificationUnhealthy)),
    (None,          None,        None,               Some(Release),      Some(ForwardFix),       None,        None,        A::Notify(Notice::ForwardFix)),
    // consider_rollback asks a human, in every mode but shadow, paused or not.
    (Some(Shadow),  None,        None,               Some(Release),      Some(ConsiderRollback), None,        None,        A::WouldAskApproval(R::MatrixAsks)),
    (None,          None,        None,               Some(Release),      Some(ConsiderRollback), None,        Some(true),  A::Nothing),
    (None,          None,        None,               Some(Release),      Some(ConsiderRollback), None,        None,        A::AskApproval(R::MatrixAsks)),
    // rollback: shadow only says so, whatever the pause and cooldown.
    (Some(Shadow),  None,        None,               Some(Release),      Some(Rollback),         None,        None,        A::WouldRollBack),
    // approve mode asks, once.
    (Some(Approve), None,        None,               Some(Release),      Some(Rollback),         None,        Some(true),  A::Nothing),
    (Some(Approve), None,        None,               Some(Release),      Some(Rollback),         None,        None,        A::AskApproval(R::ApproveMode)),
    // enforce: the pause, then the cooldown, make it ask (once).
    (Some(Enforce), Some(true),  None,               Some(Release),      Some(Rollback),         None,        Some(true),  A::Nothing),
    (Some(Enforce), Some(true),  None,               Some(Release),      Some(Rollback),         None,        None,        A::AskApproval(R::Paused)),
    (Some(Enforce), None,        Some(Last::Within), Some(Release),      Some(Rollback),         None,        Some(true),  A::Nothing),
    (Some(Enforce), None,        Some(Last::Within), Some(Release),      Some(Rollback),         None,        None,        cooldown(60)),
    (Some(Enforce), None,        Some(Last::Future), Some(Release),      Some(Rollback),         None,        Some(true),  A::Nothing),
    (Some(Enforce), None,        Some(Last::Future), Some(Release),      Some(Rollback),         None,        None,        cooldown(0)),
    // Otherwise enforce rolls back, even when a request is pending (a
    // consider_rollback that became a rollback).
    (Some(Enforce), None,        None,               Some(Release),      Some(Rollback),         None,        None,        A::RollBack),
];

fn matches<T: PartialEq>(pattern: Option<T>, value: T) -> bool {
    pattern.is_none_or(|p| p == value)
}

fn first_rule(input: &GateInput, last: Last) -> Option<usize> {
    RULES
        .iter()
        .position(|&(mode, paused, l, kind, decision, acted, pending, _)| {
            matches(mode, input.mode)
                && matches(paused, input.paused)
                && matches(l, last)
                && matches(kind, input.kind)
                && matches(decision, input.decision)
                && matches(acted, input.acted)
                && matches(pending, input.approval_pending)
        })
}

fn every_input() -> Vec<(GateInput, Last)> {
    let mut inputs = Vec::new();
    for mode in MODES {
        for paused in BOOLS {
            for last in Last::ALL {
                for kind in KINDS {
                    for decision in DECISIONS {
                        for acted in BOOLS {
                            for approval_pending in BOOLS {
                                let input = GateInput {
                                    decision,
                                    kind,
                                    mode,
                                    paused,
                                    acted,
                                    approval_pending,
                                    last_automatic_rollback: last.at(),
                                    cooldown: COOLDOWN,
                                };
                                inputs.push((input, last));
                            }
                        }
                    }
                }
            }
        }
    }
    inputs
}

#[test]
fn every_combination_does_what_its_row_says() {
    let inputs = every_input();
    assert_eq!(inputs.len(), 3 * 2 * 4 * 2 * 5 * 2 * 2);
    let mut used = vec![0usize; RULES.len()];
    for (input, last) in inputs {
        let row = first_rule(&input, last).unwrap_or_else(|| panic!("no row for {input:?}"));
        used[row] += 1;
        assert_eq!(
            gate(input, now()),
            RULES[row].7,
            "row {row} for {input:?} (last rollback {last:?})"
        );
    }
    for (row, count) in used.iter().enumerate() {
        assert!(*count > 0, "row {row} never applies: {:?}", RULES[row]);
    }
}

#[test]
fn only_enforce_rolls_back_by_itself() {
    for (input, _) in every_input() {
        if gate(input, now()) == GateAction::RollBack {
            assert_eq!(
                (
                    input.mode,
                    input.kind,
                    input.decision,
                    input.paused,
                    input.acted
                ),
                (Enforce, Release, Rollback, false, false)
            );
        }
    }
}

fn enforce_rollback(last: SystemTime, cooldown: Duration) -> GateInput {
    GateInput {
        decision: Rollback,
        kind: Release,
        mode: Enforce,
        paused: false,
        acted: false,
        approval_pending: false,
        last_automatic_rollback: Some(last),
        cooldown,
    }
}

#[test]
fn the_cooldown_ends_exactly_when_it_has_passed() {
    let last = now() - COOLDOWN;
    assert_eq!(gate(enforce_rollback(last, COOLDOWN), now()), A::RollBack);
    let just_before = now() - Duration::from_millis(1);
    assert_eq!(
        gate(enforce_rollback(last, COOLDOWN), just_before),
        A::AskApproval(R::Cooldown {
            elapsed: COOLDOWN - Duration::from_millis(1),
            cooldown: COOLDOWN
        })
    );
}

#[test]
fn a_cooldown_of_any_length_is_safe() {
    let input = enforce_rollback(now(), Duration::MAX);
    let later = now() + Duration::from_secs(86_400 * 365);
    assert!(matches!(
        gate(input, later),
        A::AskApproval(R::Cooldown { .. })
    ));
    assert_eq!(
        gate(enforce_rollback(now(), Duration::ZERO), now()),
        A::RollBack
    );
}

#[test]
fn reasons_read_well() {
    let reason = R::Cooldown {
        elapsed: Duration::from_millis(61_700),
        cooldown: COOLDOWN,
    };
    assert_eq!(
        reason.text("api"),
        "cooldown: the last automatic rollback of api started 1m 1s ago (cooldown 10m)"
    );
    assert_eq!(R::Paused.text("api"), "automatic action is paused");
}

#[test]
fn approvals_are_checked_in_order() {
    let later = now() + Duration::from_secs(60);
    let before = now() - Duration::from_secs(60);
    let input = |leader, mode, release| ApproveInput {
        leader,
        mode,
        release,
    };
    let cases = [
        (
            input(false, Enforce, Some((false, Some(later)))),
            Err(Refusal::NotLeader),
        ),
        (
            input(true, Shadow, Some((false, Some(later)))),
            Err(Refusal::Shadow),
        ),
        (input(true, Enforce, None), Err(Refusal::NoRelease)),
        (
            input(true, Approve, Some((true, Some(later)))),
            Err(Refusal::AlreadyActed),
        ),
        (
            input(true, Approve, Some((false, None))),
            Err(Refusal::NothingPending),
        ),
        (
            input(true, Enforce, Some((false, Some(before)))),
            Err(Refusal::Expired),
        ),
        (
            input(true, Enforce, Some((false, Some(now())))),
            Err(Refusal::Expired),
        ),
        (input(true, Approve, Some((false, Some(later)))), Ok(())),
        (input(true, Enforce, Some((false, Some(later)))), Ok(())),
    ];
    for (input, expected) in cases {
        assert_eq!(check_approval(input, now()), expected, "{input:?}");
    }
    assert_eq!(
        Refusal::NothingPending.text("api"),
        "no rollback of api is waiting for approval"
    );
}
