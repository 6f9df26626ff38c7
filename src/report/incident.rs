//! An incident as data: a release that was (or would have been) rolled
//! back, and everything the journal says about it. `collect.rs` finds them
//! in journal records.

use crate::model::{Decision, Mode, Severity, StepOutcome};
use std::time::SystemTime;

/// What made a release an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentKind {
    /// rollguard ran its rollback pipeline.
    RolledBack,
    /// Shadow mode: the decision was `rollback`; nothing was changed.
    WouldHaveRolledBack,
    /// The decision was `consider_rollback` (or `rollback` while the
    /// target waited for approval) and no rollback ran.
    Considered,
}

/// One decision journaled about the release.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionEntry {
    /// Its journal position.
    pub seq: u64,
    /// When it was taken.
    pub at: Option<SystemTime>,
    /// What the matrix said.
    pub decision: Decision,
    /// The severity it was based on.
    pub severity: Severity,
    /// The rule that matched.
    pub rule: Option<String>,
    /// Why, in words.
    pub reasons: Vec<String>,
    /// The target's mode then.
    pub mode: Mode,
    /// The assessment journaled just before it (the same tick): the
    /// evidence, as the journal holds it. Filled for the decision acted on
    /// only (a release may have hundreds of decisions).
    pub assessment: Option<serde_json::Value>,
}

/// One attempt of one pipeline step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRun {
    /// The step's name in the pipeline.
    pub name: String,
    /// Which attempt, from 1 (0 when only its end was journaled).
    pub attempt: u32,
    /// When it started.
    pub started_at: Option<SystemTime>,
    /// When it ended; `None` while (or if never) journaled as ended.
    pub finished_at: Option<SystemTime>,
    /// How it ended.
    pub outcome: Option<StepOutcome>,
    /// Its error or output worth keeping.
    pub message: Option<String>,
}

/// The rollback pipeline's run.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackRun {
    /// When it started.
    pub started_at: Option<SystemTime>,
    /// Who started it (`automatic`, `approved`, ...), as journaled.
    pub trigger: String,
    /// Every step attempt, in order.
    pub steps: Vec<StepRun>,
    /// When it ended and the journal's word for how; `None` while running
    /// (or cut short by a crash not yet recovered from).
    pub finished: Option<(Option<SystemTime>, String)>,
}

impl RollbackRun {
    /// The journal's word for how it ended, if it did.
    pub fn outcome(&self) -> Option<&str> {
        self.finished.as_ref().map(|(_, word)| word.as_str())
    }

    /// Whether the whole pipeline ran, so that the previous version runs
    /// again (`completed` or `unverified`, the journal's words).
    pub fn restored(&self) -> bool {
        matches!(self.outcome(), Some("completed" | "unverified"))
    }
}

/// A notification rollguard tried to deliver during the incident.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationEntry {
    /// When the delivery ended.
    pub at: Option<SystemTime>,
    /// The notifier's name.
    pub notifier: String,
    /// The event (`rollback_started`, ...).
    pub event: String,
    /// Whether it was delivered.
    pub ok: bool,
    /// Tries spent.
    pub attempts: u32,
}

/// Everything the journal says about one bad release.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// The target.
    pub target: String,
    /// rollguard's id of the release.
    pub release_id: String,
    /// What made it an incident.
    pub kind: IncidentKind,
    /// The bad version.
    pub version: String,
    /// The version before it (the one a rollback brings back), if known.
    pub previous_version: Option<String>,
    /// Which release source saw it.
    pub source: Option<String>,
    /// When the release was seen.
    pub released_at: Option<SystemTime>,
    /// The first journaled assessment with a confirmed severity: when and
    /// how bad.
    pub first_failing: Option<(Option<SystemTime>, Severity)>,
    /// Every decision journaled about the release.
    pub decisions: Vec<DecisionEntry>,
    /// Which of `decisions` was acted on (the last before the rollback, or
    /// the first that called for one).
    pub acted_on: Option<usize>,
    /// An approval request: when, and until when (RFC 3339, as journaled).
    pub approval_requested: Option<(Option<SystemTime>, String)>,
    /// When a human approved the rollback.
    pub approved_at: Option<SystemTime>,
    /// The rollback, when one ran.
    pub rollback: Option<RollbackRun>,
    /// When the restored version was seen running (rollguard's own
    /// release, which opens the verification window).
    pub restored_seen_at: Option<SystemTime>,
    /// When the release's bake window closed.
    pub bake_finished_at: Option<SystemTime>,
    /// Notifications delivered (or not) from the release until the next one.
    pub notifications: Vec<NotificationEntry>,
    /// The journal positions of the first and last record used.
    pub seqs: (u64, u64),
}

impl Incident {
    /// The decision acted on.
    pub fn decision(&self) -> Option<&DecisionEntry> {
        self.acted_on.and_then(|i| self.decisions.get(i))
    }

    /// When rollguard found the problem: the decision acted on, else the
    /// first failing tick.
    pub fn detected_at(&self) -> Option<SystemTime> {
        self.decision()
            .and_then(|d| d.at)
            .or(self.first_failing.and_then(|(at, _)| at))
    }

    /// When the previous version was back: the end of a rollback that ran
    /// its pipeline to the end.
    pub fn restored_at(&self) -> Option<SystemTime> {
        let rollback = self.rollback.as_ref().filter(|r| r.restored())?;
        rollback.finished.as_ref()?.0
    }

    /// The outcome's word: a rollback's (`completed`, `unverified`,
    /// `failed`, `interrupted`, or `in_progress`), `would_roll_back` or
    /// `considered`.
    pub fn outcome_word(&self) -> String {
        match (&self.kind, &self.rollback) {
            (IncidentKind::RolledBack, Some(run)) => match &run.finished {
                Some((_, word)) => word.clone(),
                None => "in_progress".to_owned(),
            },
            (IncidentKind::WouldHaveRolledBack, _) => "would_roll_back".to_owned(),
            _ => "considered".to_owned(),
        }
    }
}
