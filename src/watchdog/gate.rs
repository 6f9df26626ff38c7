//! The mode gate: what a decision leads to for a target, given its mode,
//! the pause switch, the cooldown, the kind of bake window and the time.
//!
//! Pure: no I/O, no clock of its own, no tokio. The actor ([`super::act`])
//! reads the inputs, asks [`gate`] (or [`check_approval`] when a human
//! approves), and carries out the answer. Keeping the rules here, apart
//! from journaling and notifying, is what lets every combination of inputs
//! be tested (`tests_gate.rs`).

use super::bake::BakeKind;
use crate::model::{Decision, Mode};
use std::time::{Duration, SystemTime};

/// Everything the gate looks at, read by the actor from the target's loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateInput {
    /// This tick's decision.
    pub decision: Decision,
    /// A release, or the verification of rollguard's own rollback.
    pub kind: BakeKind,
    /// The target's effective mode.
    pub mode: Mode,
    /// Whether automatic action is paused for the target (or for all).
    pub paused: bool,
    /// Whether rollguard already acted on this release (a rollback started,
    /// or shadow mode said it would): never twice per release.
    pub acted: bool,
    /// Whether a rollback of this release already waits for approval.
    pub approval_pending: bool,
    /// When the target's last automatic rollback started.
    pub last_automatic_rollback: Option<SystemTime>,
    /// The target's `cooldown` between automatic rollbacks.
    pub cooldown: Duration,
}

/// What the actor is to do about this tick's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateAction {
    /// Nothing: healthy, inconclusive, already acted on, or already asked.
    Nothing,
    /// Say something once per release, and do nothing else.
    Notify(Notice),
    /// Ask a human to approve a rollback (shadow mode never asks).
    AskApproval(ApprovalReason),
    /// Shadow mode: say that rollguard would ask for approval.
    WouldAskApproval(ApprovalReason),
    /// Shadow mode: say what the rollback would do, and change nothing.
    WouldRollBack,
    /// Roll back now, automatically.
    RollBack,
}

/// What [`GateAction::Notify`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The version a rollback brought back is unhealthy too; rollguard
    /// never rolls back a rollback by itself.
    VerificationUnhealthy,
    /// The decision matrix prefers a forward fix.
    ForwardFix,
}

impl Notice {
    /// The notification's detail.
    pub fn text(self) -> &'static str {
        match self {
            Notice::VerificationUnhealthy => {
                "the version the rollback brought back is unhealthy too; rollguard takes no further automatic action"
            }
            Notice::ForwardFix => "a forward fix is preferred; no rollback",
        }
    }
}

/// Why a rollback waits for a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalReason {
    /// The decision is `consider_rollback`.
    MatrixAsks,
    /// The target is in `approve` mode.
    ApproveMode,
    /// Automatic action is paused.
    Paused,
    /// The last automatic rollback is too recent.
    Cooldown {
        /// How long ago it started.
        elapsed: Duration,
        /// The target's cooldown.
        cooldown: Duration,
    },
}

impl ApprovalReason {
    /// The reason as people read it (in the approval request, the status
    /// and notifications).
    pub fn text(self, target: &str) -> String {
        match self {
            ApprovalReason::MatrixAsks => "the decision matrix asks a human to decide".to_owned(),
            ApprovalReason::ApproveMode => {
                "approve mode: every rollback waits for a human".to_owned()
            }
            ApprovalReason::Paused => "automatic action is paused".to_owned(),
            ApprovalReason::Cooldown { elapsed, cooldown } => format!(
                "cooldown: the last automatic rollback of {target} started {} ago (cooldown {})",
                humantime::format_duration(Duration::from_secs(elapsed.as_secs())),
                humantime::format_duration(cooldown)
            ),
        }
    }
}

/// The gate: what `input`'s decision leads to at `now`.
pub fn gate(input: GateInput, now: SystemTime) -> GateAction {
    if input.acted {
        return GateAction::Nothing;
    }
    let reason = match (input.kind, input.decision) {
        (_, Decision::Healthy | Decision::Inconclusive) => return GateAction::Nothing,
        (BakeKind::Verification, _) => return GateAction::Notify(Notice::VerificationUnhealthy),
        (BakeKind::Release, Decision::ForwardFix) => return GateAction::Notify(Notice::ForwardFix),
        (BakeKind::Release, Decision::ConsiderRollback) => ApprovalReason::MatrixAsks,
        (BakeKind::Release, Decision::Rollback) => match input.mode {
            Mode::Shadow => return GateAction::WouldRollBack,
            Mode::Approve => ApprovalReason::ApproveMode,
            Mode::Enforce if input.paused => ApprovalReason::Paused,
            Mode::Enforce => match cooling_down(&input, now) {
                Some(elapsed) => ApprovalReason::Cooldown {
                    elapsed,
                    cooldown: input.cooldown,
                },
                None => return GateAction::RollBack,
            },
        },
    };
    if input.mode == Mode::Shadow {
        GateAction::WouldAskApproval(reason)
    } else if input.approval_pending {
        GateAction::Nothing
    } else {
        GateAction::AskApproval(reason)
    }
}

/// How long ago the last automatic rollback started, when that is within
/// the cooldown. A start in the future (the wall clock went back) counts as
/// just now. Never overflows, whatever the cooldown.
fn cooling_down(input: &GateInput, now: SystemTime) -> Option<Duration> {
    let last = input.last_automatic_rollback?;
    let elapsed = now.duration_since(last).unwrap_or(Duration::ZERO);
    (elapsed < input.cooldown).then_some(elapsed)
}

/// What [`check_approval`] looks at when a human approves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApproveInput {
    /// Whether this replica leads (only the leader acts).
    pub leader: bool,
    /// The target's effective mode.
    pub mode: Mode,
    /// The release being watched, if any: whether rollguard already acted on
    /// it, and when its pending approval request lapses.
    pub release: Option<(bool, Option<SystemTime>)>,
}

/// Why an approval is refused; each says what to do instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Another replica leads.
    NotLeader,
    /// Shadow mode never runs a rollback.
    Shadow,
    /// No release is being watched.
    NoRelease,
    /// rollguard already acted on this release.
    AlreadyActed,
    /// Nothing waits for approval.
    NothingPending,
    /// The request lapsed with its bake window.
    Expired,
}

impl Refusal {
    /// The answer to the person who approved.
    pub fn text(self, target: &str) -> String {
        match self {
            Refusal::NotLeader => format!(
                "this replica does not lead: approve {target} on the leader (see `leader` in its status)"
            ),
            Refusal::Shadow => format!(
                "{target} is in shadow mode: nothing runs; set its mode to approve or enforce"
            ),
            Refusal::NoRelease => format!("no release of {target} is being watched"),
            Refusal::AlreadyActed => format!(
                "rollguard already acted on this release of {target}; see `rollguard status`"
            ),
            Refusal::NothingPending => format!("no rollback of {target} is waiting for approval"),
            Refusal::Expired => {
                format!("the approval request for {target} expired with its bake window")
            }
        }
    }
}

/// Whether a human's approval at `now` may start the pending rollback.
pub fn check_approval(input: ApproveInput, now: SystemTime) -> Result<(), Refusal> {
    if !input.leader {
        return Err(Refusal::NotLeader);
    }
    if input.mode == Mode::Shadow {
        return Err(Refusal::Shadow);
    }
    let (acted, expires_at) = input.release.ok_or(Refusal::NoRelease)?;
    if acted {
        return Err(Refusal::AlreadyActed);
    }
    match expires_at {
        None => Err(Refusal::NothingPending),
        Some(expires_at) if now >= expires_at => Err(Refusal::Expired),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
#[path = "tests_gate.rs"]
mod tests;
