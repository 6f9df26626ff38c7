//! The per-class table: for each scenario class, what each judge did
//! (acted on, rolled back, of the detectable, how fast).

use crate::generate::{Label, Scenario};
use crate::report::{Action, EARLY_SECONDS, JUDGES, Scored, opt, pct, quantile};
use rollguard::model::Severity;
use serde::Serialize;
use std::fmt::Write as _;

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
