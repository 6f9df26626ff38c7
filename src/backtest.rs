//! `rollguard backtest --replay FILE...`: the judge and the decision matrix
//! run over recorded releases, tick by tick, exactly as the daemon runs them
//! ([`Judge::assess`] over an [`Observation`](crate::model::Observation), then [`judge::decide`]), so
//! that a policy can be tried on past releases before it is trusted.
//!
//! - [`replay`]: the replay file.
//! - [`checks`]: the default checks, relative to the replay's baseline.
//! - [`prometheus`]: `--config FILE --target NAME --release-at TIME`, a past
//!   release fetched from Prometheus and judged with the target's own checks.
//!
//! The outcome of a release is the first `rollback` or `consider_rollback`
//! reached (what the daemon would have acted on); where none is reached,
//! the last decision of the bake window. `decided_at_index` is the sample at
//! which that decision was reached (for the last decision: where its final
//! unbroken run began).

pub mod checks;
pub mod prometheus;
pub mod replay;

use crate::config::PolicyRule;
use crate::judge::{self, Judge};
use crate::model::{DataImpact, Decision, DecisionRecord, Severity, TimeToFix};
use checks::ReplayChecks;
pub use replay::{Replay, ReplayError, Sample};
use serde::Serialize;
use std::fmt::Write as _;
use std::time::Duration;

/// Interval assumed for a replay without `interval_seconds`: the daemon's
/// default.
pub const DEFAULT_INTERVAL_SECONDS: f64 = 10.0;

/// What a backtest judges with besides the checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The decision matrix.
    pub rules: Vec<PolicyRule>,
    /// The estimated time to a forward fix the matrix weighs (unknown by
    /// default, as in the daemon).
    pub time_to_fix: TimeToFix,
    /// How long after the release the daemon watches: samples after it are
    /// not judged.
    pub bake_window: Duration,
}

impl Default for Settings {
    /// The runbook's matrix and the daemon's defaults for a target.
    fn default() -> Settings {
        Settings {
            rules: judge::default_rules(),
            time_to_fix: crate::config::defaults::time_to_fix(),
            bake_window: crate::config::defaults::bake_window(),
        }
    }
}

/// The verdict on one recorded release: one line of `backtest`'s output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The replay's name.
    pub name: String,
    /// The first `rollback` or `consider_rollback` reached, else the last
    /// decision of the bake window; `inconclusive` when nothing was judged.
    pub decision: Decision,
    /// The severity that decision was reached on.
    pub severity: Severity,
    /// The sample (index into `samples`) where the decision was reached;
    /// `null` when no sample after the release was judged.
    pub decided_at_index: Option<usize>,
    /// The first sample where a `forward_fix` was decided, if any: the
    /// daemon notifies it once, so the release was reported even when it
    /// turned healthy again or was acted on later.
    pub reported_at_index: Option<usize>,
    /// Why: the matched rule, then the evidence of every check that did not
    /// plainly pass.
    pub reasons: Vec<String>,
}

/// Judges `replay` tick by tick under `settings` with the default checks.
pub fn run(replay: &Replay, settings: &Settings) -> Result<Outcome, String> {
    let checks = ReplayChecks::for_replay(replay, settings.time_to_fix)?;
    let mut judge = Judge::new(&checks.target);
    let interval = replay
        .interval_seconds
        .unwrap_or(DEFAULT_INTERVAL_SECONDS)
        .max(f64::MIN_POSITIVE);
    let ticks = bake_ticks(settings.bake_window, interval);
    let start = replay.release_index;
    let end = replay.samples.len().min(start.saturating_add(ticks));

    let mut outcome = Tracker::new(&replay.name);
    let mut so_far = checks::SoFar::default();
    for (index, sample) in replay.samples.iter().enumerate().take(end).skip(start) {
        let obs = checks.observe(sample, (index - start) as u64, &mut so_far);
        let assessment = judge.assess(&obs, DataImpact::None, settings.time_to_fix);
        if outcome.see(index, judge::decide(&settings.rules, &assessment)) {
            break;
        }
    }
    Ok(outcome.finish())
}

/// Ticks in a bake window of `interval_seconds` ticks (at least one).
pub fn bake_ticks(bake_window: Duration, interval_seconds: f64) -> usize {
    (bake_window.as_secs_f64() / interval_seconds.max(f64::MIN_POSITIVE))
        .ceil()
        .max(1.0) as usize
}

/// Follows the decisions of one release to its outcome: the first
/// `rollback` or `consider_rollback`, else the last decision and where its
/// final unbroken run began.
#[derive(Debug)]
pub struct Tracker {
    /// The release's name.
    name: String,
    /// The decision that acts, once reached.
    acted: Option<(usize, DecisionRecord)>,
    /// The latest decision and the index its run began at.
    last: Option<(usize, DecisionRecord)>,
    /// The first index with a `forward_fix`.
    reported: Option<usize>,
}

impl Tracker {
    /// A tracker for the release `name`.
    pub fn new(name: &str) -> Tracker {
        Tracker {
            name: name.to_owned(),
            acted: None,
            last: None,
            reported: None,
        }
    }

    /// Takes the decision at `index`; `true` once one that acts is reached
    /// (nothing after it matters).
    pub fn see(&mut self, index: usize, record: DecisionRecord) -> bool {
        if self.acted.is_some() {
            return true;
        }
        if record.decision == Decision::ForwardFix {
            self.reported.get_or_insert(index);
        }
        if matches!(
            record.decision,
            Decision::Rollback | Decision::ConsiderRollback
        ) {
            self.acted = Some((index, record));
            return true;
        }
        let since = match &self.last {
            Some((since, last)) if last.decision == record.decision => *since,
            _ => index,
        };
        self.last = Some((since, record));
        false
    }

    /// The outcome: `inconclusive` when no tick was judged.
    pub fn finish(self) -> Outcome {
        match self.acted.or(self.last) {
            Some((index, record)) => Outcome {
                name: self.name,
                decision: record.decision,
                severity: record.severity,
                decided_at_index: Some(index),
                reported_at_index: self.reported,
                reasons: record.reasons,
            },
            None => Outcome {
                name: self.name,
                decision: Decision::Inconclusive,
                severity: Severity::None,
                decided_at_index: None,
                reported_at_index: None,
                reasons: vec!["no sample after the release: nothing to judge".to_owned()],
            },
        }
    }
}

/// Outcomes as a table for people: one row per release, its first reason.
pub fn render_table(outcomes: &[Outcome]) -> String {
    let name_width = outcomes
        .iter()
        .map(|o| o.name.chars().count())
        .chain([4])
        .max()
        .unwrap_or(4);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<name_width$}  {:<17}  {:<8}  {:>5}  REASON",
        "NAME", "DECISION", "SEVERITY", "AT"
    );
    for o in outcomes {
        let at = o
            .decided_at_index
            .map_or_else(|| "-".to_owned(), |i| i.to_string());
        let reason = o.reasons.first().map_or("", String::as_str);
        let _ = writeln!(
            out,
            "{:<name_width$}  {:<17}  {:<8}  {:>5}  {reason}",
            o.name,
            o.decision.as_str(),
            o.severity.as_str(),
            at
        );
        for more in o.reasons.iter().skip(1) {
            let _ = writeln!(out, "{:<name_width$}  {:>36}{more}", "", "");
        }
    }
    out
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_canary;
#[cfg(test)]
mod tests_sim;
