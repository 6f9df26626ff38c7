//! Scoring the judges' verdicts against the labels: the per-judge table
//! with rollguard's targets (the per-class table is in `classes.rs`).

use crate::generate::{EARLY_TICKS, Label, Release, Should, TICK_SECONDS};
use serde::Serialize;
use std::fmt::Write as _;

/// The judges, in column order.
pub const JUDGES: [&str; 3] = ["rollguard", "flagger-style", "kayenta-style"];

/// The first 150 s of the bake window, seconds: [`EARLY_TICKS`].
pub const EARLY_SECONDS: f64 = EARLY_TICKS as f64 * TICK_SECONDS;

/// What a judge did about a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing (healthy, inconclusive).
    Pass,
    /// Reported a forward fix in a notification (rollguard only).
    ForwardFix,
    /// Asked a human (rollguard's `consider_rollback`).
    ConsiderRollback,
    /// Rolled back.
    Rollback,
}

/// A judge's verdict on one release.
#[derive(Debug, Clone, Copy)]
pub struct Verdict {
    /// What it did.
    pub action: Action,
    /// Seconds from the release to the action (0 for [`Action::Pass`]).
    pub seconds: f64,
}

impl Verdict {
    /// No action.
    pub fn pass() -> Verdict {
        Verdict {
            action: Action::Pass,
            seconds: 0.0,
        }
    }

    /// Whether it rolled back or asked to.
    pub fn acted(self) -> bool {
        matches!(self.action, Action::Rollback | Action::ConsiderRollback)
    }

    /// Whether it said anything at all: acted, or reported a forward fix.
    pub fn flagged(self) -> bool {
        self.action != Action::Pass
    }
}

/// One release with every judge's verdict, in [`JUDGES`] order.
#[derive(Debug)]
pub struct Scored<'a> {
    /// The release.
    pub release: &'a Release,
    /// The verdicts.
    pub verdicts: [Verdict; 3],
    /// rollguard's outcome, with its reasons.
    pub outcome: rollguard::backtest::Outcome,
}

/// One judge over the whole bench: the first table's row.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// The judge.
    pub judge: &'static str,
    /// Good releases.
    pub good: usize,
    /// Minor ones.
    pub minor: usize,
    /// Regressions.
    pub regressions: usize,
    /// Of which detectable.
    pub detectable: usize,
    /// % of good + minor releases rolled back.
    pub false_rollback_pct: f64,
    /// % of good releases flagged at all: rolled back, sent to a human or
    /// reported as a forward fix.
    pub false_alarm_pct: f64,
    /// % of the detectable regressions that should be acted on (errors ×3
    /// or +1 point, p99 ×2, health down, burns to ×4) that were.
    pub serious_acted_pct: f64,
    /// % of the detectable regressions that were at least reported.
    pub reported_pct: f64,
    /// What the judge got within 150 s over what the better oracle catches
    /// by then, over every regression (`grade::early_ratio`).
    pub early_ratio: Option<f64>,
    /// % of detectable regressions rolled back or sent to a human.
    pub detected_detectable_pct: f64,
    /// % of all regressions rolled back or sent to a human.
    pub detected_all_pct: f64,
    /// Median seconds from release to action over detected regressions.
    pub ttd_median_s: Option<f64>,
    /// 90th percentile of the same.
    pub ttd_p90_s: Option<f64>,
    /// % of the regressions acted on that are not detectable (by the
    /// label's oracle, at 99% power) within their first 150 s.
    pub late_only_pct: f64,
    /// 90th percentile of seconds to act over the regressions acted on that
    /// are detectable within 150 s.
    pub ttd_p90_early_s: Option<f64>,
    /// The mean, over the regressions acted on, of the chance that an
    /// oracle better than any judge catches them within 150 s
    /// (`early_power`), %: the most a judge could expect to have acted on
    /// by then. A p90 time to detect of 150 s needs 90.
    pub oracle_early_pct: f64,
    /// % of the regressions acted on that the judge acted on within 150 s.
    pub acted_early_pct: f64,
    /// Error regressions (steps and slow burns) acted on.
    pub errors_acted: usize,
    /// % of those that the label's oracle, testing once at 150 s and
    /// knowing when the regression started, catches on their own data.
    pub errors_oracle_early_pct: f64,
    /// % of those that an anytime-valid e-process knowing the true base
    /// rate catches within 150 s (`known_rate_early`).
    pub errors_known_rate_early_pct: f64,
    /// % of those the judge acted on within 150 s.
    pub errors_early_pct: f64,
}

/// Percentage of `part` in `whole` (0 for an empty whole).
pub fn pct(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// Quantile `q` (nearest rank) of `values`, `None` when empty.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1));
    v.get(rank - 1).copied()
}

/// The first table.
pub fn summaries(scored: &[Scored]) -> Vec<Summary> {
    let of = |label: Label| {
        scored
            .iter()
            .filter(move |s| s.release.scenario.label() == label)
    };
    JUDGES
        .iter()
        .enumerate()
        .map(|(j, &judge)| {
            let count = |it: &mut dyn Iterator<Item = &Scored>, f: &dyn Fn(Verdict) -> bool| {
                it.filter(|s| f(s.verdicts[j])).count()
            };
            let good = of(Label::Good).count();
            let minor = of(Label::Minor).count();
            let regressions = of(Label::Regression).count();
            let detectable = of(Label::Regression)
                .filter(|s| s.release.detectable)
                .count();
            let rollback = |v: Verdict| v.action == Action::Rollback;
            let false_rollbacks = count(&mut of(Label::Good).chain(of(Label::Minor)), &rollback);
            let false_alarms = count(&mut of(Label::Good), &Verdict::flagged);
            let detectable_should = |should: Option<Should>| {
                of(Label::Regression)
                    .filter(move |s| s.release.detectable)
                    .filter(move |s| should.is_none_or(|w| s.release.should == w))
            };
            let serious = detectable_should(Some(Should::Act)).count();
            let serious_acted = count(&mut detectable_should(Some(Should::Act)), &Verdict::acted);
            let reported = count(&mut detectable_should(None), &Verdict::flagged);
            let early_ratio = crate::grade::early_ratio(scored, j);
            let caught = count(
                &mut of(Label::Regression).filter(|s| s.release.detectable),
                &Verdict::acted,
            );
            let caught_all = count(&mut of(Label::Regression), &Verdict::acted);
            let acted: Vec<&Scored> = of(Label::Regression)
                .filter(|s| s.verdicts[j].acted())
                .collect();
            let ttd: Vec<f64> = acted.iter().map(|s| s.verdicts[j].seconds).collect();
            let early: Vec<f64> = acted
                .iter()
                .filter(|s| s.release.detectable_early)
                .map(|s| s.verdicts[j].seconds)
                .collect();
            let power: f64 = acted.iter().filter_map(|s| s.release.early_power).sum();
            let errors: Vec<&Scored> = acted
                .iter()
                .copied()
                .filter(|s| s.release.oracle_early.is_some())
                .collect();
            let oracle_early = errors
                .iter()
                .filter(|s| s.release.oracle_early == Some(true))
                .count();
            let known_rate_early = errors
                .iter()
                .filter(|s| s.release.known_rate_early == Some(true))
                .count();
            let judge_early = errors
                .iter()
                .filter(|s| s.verdicts[j].seconds <= EARLY_SECONDS)
                .count();
            Summary {
                judge,
                good,
                minor,
                regressions,
                detectable,
                false_rollback_pct: pct(false_rollbacks, good + minor),
                false_alarm_pct: pct(false_alarms, good),
                serious_acted_pct: pct(serious_acted, serious),
                reported_pct: pct(reported, detectable),
                early_ratio,
                detected_detectable_pct: pct(caught, detectable),
                detected_all_pct: pct(caught_all, regressions),
                ttd_median_s: quantile(&ttd, 0.5),
                ttd_p90_s: quantile(&ttd, 0.9),
                late_only_pct: pct(acted.len() - early.len(), acted.len()),
                ttd_p90_early_s: quantile(&early, 0.9),
                oracle_early_pct: 100.0 * power / acted.len().max(1) as f64,
                acted_early_pct: pct(
                    ttd.iter().filter(|&&t| t <= EARLY_SECONDS).count(),
                    acted.len(),
                ),
                errors_acted: errors.len(),
                errors_oracle_early_pct: pct(oracle_early, errors.len()),
                errors_known_rate_early_pct: pct(known_rate_early, errors.len()),
                errors_early_pct: pct(judge_early, errors.len()),
            }
        })
        .collect()
}

/// A number or `-`.
pub fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

/// The first table, then rollguard's targets.
pub fn render_summaries(rows: &[Summary]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:>5} {:>5} {:>5} {:>5}  {:>9} {:>9}  {:>9} {:>9}  {:>7} {:>7}",
        "JUDGE",
        "GOOD",
        "MINOR",
        "REGR",
        "DETBL",
        "FALSE_RB%",
        "FALSE_AL%",
        "DET%DETBL",
        "DET%ALL",
        "TTD_P50",
        "TTD_P90"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<14} {:>5} {:>5} {:>5} {:>5}  {:>9.1} {:>9.1}  {:>9.1} {:>9.1}  {:>7} {:>7}",
            r.judge,
            r.good,
            r.minor,
            r.regressions,
            r.detectable,
            r.false_rollback_pct,
            r.false_alarm_pct,
            r.detected_detectable_pct,
            r.detected_all_pct,
            opt(r.ttd_median_s, 0),
            opt(r.ttd_p90_s, 0),
        );
    }
    out
}

/// rollguard's targets, issue #12's: (what, met, value, goal).
pub fn targets(rollguard: &Summary) -> Vec<(&'static str, bool, String, &'static str)> {
    let at_most = |v: Option<f64>, goal: f64| v.is_some_and(|v| v <= goal);
    vec![
        (
            "good+minor rolled back",
            rollguard.false_rollback_pct <= 1.0,
            format!("{:.1} %", rollguard.false_rollback_pct),
            "<= 1 %",
        ),
        (
            "good flagged at all",
            rollguard.false_alarm_pct <= 2.0,
            format!("{:.1} %", rollguard.false_alarm_pct),
            "<= 2 %",
        ),
        (
            "serious regressions acted on",
            rollguard.serious_acted_pct >= 99.0,
            format!("{:.1} %", rollguard.serious_acted_pct),
            ">= 99 %",
        ),
        (
            "detectable regressions reported",
            rollguard.reported_pct >= 97.0,
            format!("{:.1} %", rollguard.reported_pct),
            ">= 97 %",
        ),
        (
            "median time to act",
            at_most(rollguard.ttd_median_s, 60.0),
            format!("{} s", opt(rollguard.ttd_median_s, 0)),
            "<= 60 s",
        ),
        (
            "150 s: got / better oracle",
            rollguard.early_ratio.is_some_and(|r| r >= 0.95),
            opt(rollguard.early_ratio, 2),
            ">= 0.95",
        ),
    ]
}
