//! The third table: the same scores by traffic decade, since how much a
//! judge can see depends first of all on how many requests it sees.

use crate::generate::Label;
use crate::grade::BANDS;
use crate::report::{JUDGES, Scored};
use serde::Serialize;
use std::fmt::Write as _;

/// One traffic band.
#[derive(Debug, Serialize)]
pub struct Band {
    /// Lowest traffic, requests per second.
    pub from_rps: f64,
    /// Highest traffic (exclusive).
    pub to_rps: f64,
    /// Good releases in the band.
    pub good: usize,
    /// Detectable regressions in the band.
    pub detectable: usize,
    /// All regressions in the band.
    pub regressions: usize,
    /// Per judge: % of good ones flagged at all (rolled back, sent to a
    /// human, or reported as a forward fix).
    pub false_alarm_pct: Vec<f64>,
    /// Per judge: % of detectable regressions acted on.
    pub detected_detectable_pct: Vec<f64>,
    /// Per judge: % of all regressions acted on.
    pub detected_all_pct: Vec<f64>,
}

/// Percentage of `scored` for which `f` holds (0 when empty).
fn pct(scored: &[&Scored], f: impl Fn(&Scored) -> bool) -> f64 {
    if scored.is_empty() {
        return 0.0;
    }
    100.0 * scored.iter().filter(|s| f(s)).count() as f64 / scored.len() as f64
}

/// The bands.
pub fn bands(scored: &[Scored]) -> Vec<Band> {
    BANDS
        .iter()
        .map(|&(from, to)| {
            let inside: Vec<&Scored> = scored
                .iter()
                .filter(|s| (from..to).contains(&s.release.rps))
                .collect();
            let of = |label: Label, detectable_only: bool| -> Vec<&Scored> {
                inside
                    .iter()
                    .copied()
                    .filter(|s| s.release.scenario.label() == label)
                    .filter(|s| s.release.detectable || !detectable_only)
                    .collect()
            };
            let (good, detectable, all) = (
                of(Label::Good, false),
                of(Label::Regression, true),
                of(Label::Regression, false),
            );
            let per_judge = |rows: &[&Scored], flagged: bool| -> Vec<f64> {
                (0..JUDGES.len())
                    .map(|j| {
                        pct(rows, |s| {
                            let v = s.verdicts[j];
                            if flagged { v.flagged() } else { v.acted() }
                        })
                    })
                    .collect()
            };
            Band {
                from_rps: from,
                to_rps: to,
                good: good.len(),
                detectable: detectable.len(),
                regressions: all.len(),
                false_alarm_pct: per_judge(&good, true),
                detected_detectable_pct: per_judge(&detectable, false),
                detected_all_pct: per_judge(&all, false),
            }
        })
        .collect()
}

/// The table: per judge, false alarms on good releases, then detection of
/// the detectable and of all regressions.
pub fn render(bands: &[Band]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:>5} {:>5} {:>5} | {:>20} | {:>20} | {:>20}",
        "", "", "", "", "FALSE_AL% (good)", "DET% (detectable)", "DET% (all regr)"
    );
    let _ = writeln!(
        out,
        "{:<14} {:>5} {:>5} {:>5} | {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6}",
        "RPS",
        "GOOD",
        "DETBL",
        "REGR",
        "rg",
        "flag",
        "kay",
        "rg",
        "flag",
        "kay",
        "rg",
        "flag",
        "kay"
    );
    for b in bands {
        let _ = write!(
            out,
            "{:<14} {:>5} {:>5} {:>5}",
            format!("{}-{}", b.from_rps, b.to_rps),
            b.good,
            b.detectable,
            b.regressions
        );
        for column in [
            &b.false_alarm_pct,
            &b.detected_detectable_pct,
            &b.detected_all_pct,
        ] {
            out.push_str(" |");
            for v in column {
                let _ = write!(out, " {v:>6.1}");
            }
        }
        out.push('\n');
    }
    out
}
