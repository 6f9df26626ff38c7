//! Scoring the judges' verdicts against the labels: the per-judge table
//! with rollguard's targets and the per-class table.

use crate::generate::{EARLY_TICKS, Label, Release, Scenario, TICK_SECONDS};
use rollguard::model::Severity;
use serde::Serialize;
use std::fmt::Write as _;

/// The judges, in column order.
pub const JUDGES: [&str; 3] = ["rollguard", "flagger-style", "kayenta-style"];

/// The p90 time to detect, seconds: the first [`EARLY_TICKS`].
const EARLY_SECONDS: f64 = EARLY_TICKS as f64 * TICK_SECONDS;

/// What a judge did about a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing (healthy, forward fix, inconclusive).
    Pass,
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
    /// % of good releases rolled back or sent to a human.
    pub false_alarm_pct: f64,
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

/// One scenario class: the second table's row.
#[derive(Debug, Serialize)]
pub struct ClassRow {
    /// The class.
    pub class: &'static str,
    /// The severities its regressions are expected to reach.
    pub expected: String,
    /// Releases.
    pub releases: usize,
    /// Detectable ones (regressions only).
    pub detectable: usize,
    /// Regressions only: the mean chance that an oracle better than any
    /// judge catches one within 150 s (`Release::early_power`), %.
    pub oracle_early_pct: Option<f64>,
    /// Per judge, in [`JUDGES`] order.
    pub judges: Vec<ClassJudge>,
}

/// One judge on one class.
#[derive(Debug, Serialize)]
pub struct ClassJudge {
    /// The judge.
    pub judge: &'static str,
    /// % of the class rolled back or sent to a human.
    pub acted_pct: f64,
    /// % of the class rolled back.
    pub rollback_pct: f64,
    /// % of the detectable ones acted on (regressions only).
    pub detectable_acted_pct: Option<f64>,
    /// Median seconds to act, over those acted on.
    pub median_s: Option<f64>,
    /// 90th percentile of the same.
    pub p90_s: Option<f64>,
    /// % of the class acted on within 150 s.
    pub early_pct: f64,
}

/// Percentage of `part` in `whole` (0 for an empty whole).
fn pct(part: usize, whole: usize) -> f64 {
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
            let false_alarms = count(&mut of(Label::Good), &Verdict::acted);
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

/// Short name of a severity for the class table.
fn short(s: Severity) -> &'static str {
    match s {
        Severity::None => "-",
        Severity::Low => "low",
        Severity::Medium => "med",
        Severity::High => "high",
        Severity::Critical => "crit",
    }
}

/// The second table.
pub fn classes(scored: &[Scored]) -> Vec<ClassRow> {
    Scenario::ALL
        .iter()
        .map(|&scenario| {
            let rows: Vec<&Scored> = scored
                .iter()
                .filter(|s| s.release.scenario == scenario)
                .collect();
            let mut expected: Vec<Severity> = rows.iter().map(|s| s.release.expected).collect();
            expected.sort();
            expected.dedup();
            let expected: Vec<&str> = expected.into_iter().map(short).collect();
            let regression = scenario.label() == Label::Regression;
            let detectable = rows.iter().filter(|s| s.release.detectable).count();
            let judges = JUDGES
                .iter()
                .enumerate()
                .map(|(j, &judge)| {
                    let acted: Vec<f64> = rows
                        .iter()
                        .map(|s| s.verdicts[j])
                        .filter(|v| v.acted())
                        .map(|v| v.seconds)
                        .collect();
                    let rolled = rows
                        .iter()
                        .filter(|s| s.verdicts[j].action == Action::Rollback)
                        .count();
                    let detected = rows
                        .iter()
                        .filter(|s| s.release.detectable && s.verdicts[j].acted())
                        .count();
                    ClassJudge {
                        judge,
                        acted_pct: pct(acted.len(), rows.len()),
                        rollback_pct: pct(rolled, rows.len()),
                        detectable_acted_pct: regression.then(|| pct(detected, detectable)),
                        median_s: quantile(&acted, 0.5),
                        p90_s: quantile(&acted, 0.9),
                        early_pct: pct(
                            acted.iter().filter(|&&t| t <= EARLY_SECONDS).count(),
                            rows.len(),
                        ),
                    }
                })
                .collect();
            let power: f64 = rows.iter().filter_map(|s| s.release.early_power).sum();
            ClassRow {
                class: scenario.name(),
                expected: expected.join("/"),
                releases: rows.len(),
                detectable,
                oracle_early_pct: regression.then(|| 100.0 * power / rows.len().max(1) as f64),
                judges,
            }
        })
        .collect()
}

/// A number or `-`.
fn opt(v: Option<f64>, decimals: usize) -> String {
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

/// rollguard's targets: (what, met, value, goal).
pub fn targets(rollguard: &Summary) -> Vec<(&'static str, bool, String, &'static str)> {
    let at_most = |v: Option<f64>, goal: f64| v.is_some_and(|v| v <= goal);
    vec![
        (
            "false rollbacks",
            rollguard.false_rollback_pct <= 1.0,
            format!("{:.1} %", rollguard.false_rollback_pct),
            "<= 1 %",
        ),
        (
            "false alarms",
            rollguard.false_alarm_pct <= 2.0,
            format!("{:.1} %", rollguard.false_alarm_pct),
            "<= 2 %",
        ),
        (
            "detectable regressions caught",
            rollguard.detected_detectable_pct >= 99.0,
            format!("{:.1} %", rollguard.detected_detectable_pct),
            ">= 99 %",
        ),
        (
            "median time to detect",
            at_most(rollguard.ttd_median_s, 60.0),
            format!("{} s", opt(rollguard.ttd_median_s, 0)),
            "<= 60 s",
        ),
        (
            "p90 time to detect",
            at_most(rollguard.ttd_p90_s, 150.0),
            format!("{} s", opt(rollguard.ttd_p90_s, 0)),
            "<= 150 s",
        ),
    ]
}

/// The second table: per judge, % acted on, % of detectable acted on,
/// median seconds (rollguard also % rolled back, the 90th percentile, and
/// % acted on within 150 s next to what the oracle would catch by then).
pub fn render_classes(rows: &[ClassRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<19} {:<9} {:>4} {:>4} | {:>43} | {:>18} | {:>18}",
        "", "", "", "", "rollguard", "flagger-style", "kayenta-style"
    );
    let _ = write!(
        out,
        "{:<19} {:<9} {:>4} {:>4} | {:>5} {:>5} {:>6} {:>5} {:>5} {:>6} {:>5}",
        "CLASS", "EXPECTED", "N", "DET", "RB%", "ACT%", "DET%", "P50s", "P90s", "150s%", "ORC%"
    );
    for _ in 1..JUDGES.len() {
        let _ = write!(out, " | {:>5} {:>6} {:>5}", "ACT%", "DET%", "P50s");
    }
    out.push('\n');
    for r in rows {
        let _ = write!(
            out,
            "{:<19} {:<9} {:>4} {:>4} | {:>5.1}",
            r.class, r.expected, r.releases, r.detectable, r.judges[0].rollback_pct
        );
        for (i, j) in r.judges.iter().enumerate() {
            let sep = if i == 0 { " " } else { " | " };
            let _ = write!(
                out,
                "{sep}{:>5.1} {:>6} {:>5}",
                j.acted_pct,
                opt(j.detectable_acted_pct, 1),
                opt(j.median_s, 0)
            );
            if i == 0 {
                let _ = write!(
                    out,
                    " {:>5} {:>6.1} {:>5}",
                    opt(j.p90_s, 0),
                    j.early_pct,
                    opt(r.oracle_early_pct, 1)
                );
            }
        }
        out.push('\n');
    }
    out
}
