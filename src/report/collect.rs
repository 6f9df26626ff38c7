//! From journal records to incidents ([`incidents`]): which releases were
//! (or would have been) rolled back, and everything the journal says about
//! each. Pure: the records in, the incidents out.

use super::incident::{
    DecisionEntry, Incident, IncidentKind, NotificationEntry, RollbackRun, StepRun,
};
use crate::journal::{Event, Record};
use crate::model::{Decision, Mode, Severity};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// What is being gathered about one release.
#[derive(Debug, Default)]
struct Draft {
    target: String,
    release_id: String,
    by_rollguard: bool,
    version: Option<String>,
    previous_version: Option<String>,
    source: Option<String>,
    released_at: Option<SystemTime>,
    first_failing: Option<(Option<SystemTime>, Severity)>,
    /// Where in the records the last assessment is: evidence is copied
    /// only for the decision acted on, not for every decision.
    last_assessment: Option<usize>,
    /// For each of `decisions`, where its assessment is.
    assessments: Vec<Option<usize>>,
    decisions: Vec<DecisionEntry>,
    approval_requested: Option<(Option<SystemTime>, String)>,
    approved_at: Option<SystemTime>,
    rollback: Option<(u64, RollbackRun)>,
    restored_seen_at: Option<SystemTime>,
    bake_finished_at: Option<SystemTime>,
    notifications: Vec<NotificationEntry>,
    seqs: (u64, u64),
}

impl Draft {
    /// The incident, when the release is one; `records` are those the
    /// draft was made from.
    fn finish(mut self, records: &[Record]) -> Option<Incident> {
        if self.by_rollguard {
            return None;
        }
        let (kind, acted_on) = match &self.rollback {
            Some((seq, _)) => (
                IncidentKind::RolledBack,
                self.decisions.iter().rposition(|d| d.seq < *seq),
            ),
            None => {
                let shadow = self
                    .decisions
                    .iter()
                    .position(|d| d.decision == Decision::Rollback && d.mode == Mode::Shadow);
                let asks = self.decisions.iter().position(|d| {
                    matches!(d.decision, Decision::Rollback | Decision::ConsiderRollback)
                });
                match (shadow, asks) {
                    (Some(i), _) => (IncidentKind::WouldHaveRolledBack, Some(i)),
                    (None, Some(i)) => (IncidentKind::Considered, Some(i)),
                    (None, None) => return None,
                }
            }
        };
        if let Some(i) = acted_on
            && let Some(Some(at)) = self.assessments.get(i)
            && let Some(Event::Assessment { evidence, .. }) = records.get(*at).map(|r| &r.event)
        {
            self.decisions[i].assessment = Some(evidence.clone());
        }
        Some(Incident {
            version: self.version.unwrap_or_else(|| "unknown".to_owned()),
            target: self.target,
            release_id: self.release_id,
            kind,
            previous_version: self.previous_version,
            source: self.source,
            released_at: self.released_at,
            first_failing: self.first_failing,
            decisions: self.decisions,
            acted_on,
            approval_requested: self.approval_requested,
            approved_at: self.approved_at,
            rollback: self.rollback.map(|(_, run)| run),
            restored_seen_at: self.restored_seen_at,
            bake_finished_at: self.bake_finished_at,
            notifications: self.notifications,
            seqs: self.seqs,
        })
    }
}

/// Every incident in `records` (a whole journal, or one target's records),
/// oldest first. A release is an incident when a rollback of it started,
/// or a decision about it called for one (shadow mode's "would roll back",
/// `consider_rollback`); rollguard's own releases (a rollback's version
/// coming back) never are.
pub fn incidents(records: &[Record]) -> Vec<Incident> {
    let mut drafts: BTreeMap<(String, String), Draft> = BTreeMap::new();
    // Per target: the release a notification is about (the last seen that
    // is not rollguard's own).
    let mut current: BTreeMap<String, String> = BTreeMap::new();
    for (index, record) in records.iter().enumerate() {
        let Some(target) = record.target.clone() else {
            continue;
        };
        let at = record.at_time();
        let release_id = match &record.event {
            Event::ReleaseSeen { release_id, .. }
            | Event::Assessment { release_id, .. }
            | Event::DecisionMade { release_id, .. }
            | Event::StepStarted { release_id, .. }
            | Event::StepFinished { release_id, .. }
            | Event::RollbackStarted { release_id, .. }
            | Event::RollbackFinished { release_id, .. }
            | Event::ApprovalRequested { release_id, .. }
            | Event::Approved { release_id, .. }
            | Event::BakeFinished { release_id, .. } => release_id.clone(),
            Event::NotificationSent { .. } => match current.get(&target) {
                Some(id) => id.clone(),
                None => continue,
            },
            _ => continue,
        };
        if let Event::ReleaseSeen {
            by_rollguard: true,
            to,
            ..
        } = &record.event
            && let Some(bad) = current
                .get(&target)
                .and_then(|id| drafts.get_mut(&(target.clone(), id.clone())))
            && bad.previous_version.as_ref() == Some(to)
            && bad.rollback.is_some()
        {
            bad.restored_seen_at = bad.restored_seen_at.or(at);
        }
        let draft = drafts
            .entry((target.clone(), release_id.clone()))
            .or_insert_with(|| Draft {
                target: target.clone(),
                release_id: release_id.clone(),
                seqs: (record.seq, record.seq),
                ..Draft::default()
            });
        draft.seqs.1 = record.seq;
        take(draft, record, index, at);
        if let Event::ReleaseSeen {
            by_rollguard: false,
            ..
        } = &record.event
        {
            current.insert(target, release_id);
        }
    }
    let mut found: Vec<Incident> = drafts
        .into_values()
        .filter_map(|draft| draft.finish(records))
        .collect();
    found.sort_by_key(|i| i.seqs.0);
    found
}

/// Adds what `record` says to the release's draft.
fn take(draft: &mut Draft, record: &Record, index: usize, at: Option<SystemTime>) {
    match &record.event {
        Event::ReleaseSeen {
            from,
            to,
            source,
            by_rollguard,
            ..
        } => {
            draft.by_rollguard = *by_rollguard;
            draft.version = Some(to.clone());
            draft.previous_version = from.clone().or(draft.previous_version.take());
            draft.source = Some(source.clone());
            draft.released_at = at;
        }
        Event::Assessment { severity, .. } => {
            if *severity > Severity::None && draft.first_failing.is_none() {
                draft.first_failing = Some((at, *severity));
            }
            draft.last_assessment = Some(index);
        }
        Event::DecisionMade {
            decision,
            severity,
            rule,
            reasons,
            mode,
            ..
        } => {
            draft.decisions.push(DecisionEntry {
                seq: record.seq,
                at,
                decision: *decision,
                severity: *severity,
                rule: rule.clone(),
                reasons: reasons.clone(),
                mode: *mode,
                assessment: None,
            });
            draft.assessments.push(draft.last_assessment);
        }
        Event::ApprovalRequested { expires_at, .. } => {
            draft.approval_requested = Some((at, expires_at.clone()));
        }
        Event::Approved { .. } => draft.approved_at = at,
        Event::RollbackStarted {
            from, to, trigger, ..
        } => {
            draft.version = Some(from.clone());
            draft.previous_version = Some(to.clone());
            let run = RollbackRun {
                started_at: at,
                trigger: trigger.clone(),
                steps: Vec::new(),
                finished: None,
            };
            draft.rollback = Some((record.seq, run));
        }
        Event::StepStarted { step, attempt, .. } => {
            if let Some((_, run)) = &mut draft.rollback {
                run.steps.push(StepRun {
                    name: step.clone(),
                    attempt: *attempt,
                    started_at: at,
                    finished_at: None,
                    outcome: None,
                    message: None,
                });
            }
        }
        Event::StepFinished {
            step,
            outcome,
            message,
            ..
        } => {
            if let Some((_, run)) = &mut draft.rollback {
                let open = run
                    .steps
                    .iter()
                    .rposition(|s| &s.name == step && s.outcome.is_none());
                let index = open.unwrap_or_else(|| {
                    run.steps.push(StepRun {
                        name: step.clone(),
                        attempt: 0,
                        started_at: None,
                        finished_at: None,
                        outcome: None,
                        message: None,
                    });
                    run.steps.len() - 1
                });
                let run_of_step = &mut run.steps[index];
                run_of_step.finished_at = at;
                run_of_step.outcome = Some(*outcome);
                run_of_step.message = message.clone();
            }
        }
        Event::RollbackFinished { outcome, .. } => {
            if let Some((_, run)) = &mut draft.rollback {
                run.finished = Some((at, outcome.clone()));
            }
        }
        Event::BakeFinished { .. } => draft.bake_finished_at = at,
        Event::NotificationSent {
            notifier,
            event,
            ok,
            attempts,
        } => draft.notifications.push(NotificationEntry {
            at,
            notifier: notifier.clone(),
            event: event.clone(),
            ok: *ok,
            attempts: *attempts,
        }),
        _ => {}
    }
}
