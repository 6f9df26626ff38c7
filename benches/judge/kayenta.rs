//! A Kayenta-style judge: Spinnaker's automated canary analysis with its
//! Mann–Whitney classifier, the pre-release hour as the control and the
//! release's samples as the experiment.
//!
//! Every 5 minutes, on a growing window (every sample since the release),
//! each metric is classified:
//!
//! - **NoData** when the window (or the control) has no value for it;
//! - **High** (failing) for `increase` metrics when a two-sided
//!   Mann–Whitney U test at 98 % confidence rejects equality *and* the
//!   window's mean is at least 1.1× the control's (Kayenta's effect size as
//!   a mean ratio); **Low** (failing) likewise for `decrease` metrics at
//!   1/1.1 or less;
//! - **Pass** otherwise.
//!
//! Metrics: error rate per tick (errors / requests; a tick without
//! requests has none, Kayenta's NaN "remove"), p99 per tick (increase), and
//! the health value per tick (decrease). The score is the percentage of
//! metrics with data that pass; a score under 75 fails, and so does an
//! analysis where half the metrics or more have no data. A failed analysis
//! rolls back at once. No "marginal" band: with three metrics the possible
//! scores are 0, 33, 50, 67 and 100, so a marginal band between 50 and 75
//! would only delay the same decision; nothing is reported as
//! consider_rollback.

use crate::generate::{BAKE_TICKS, TICK_SECONDS};
use crate::report::{Action, Verdict};
use rollguard::backtest::{Replay, Sample};
use statrs::stats_tests::Alternative;
use statrs::stats_tests::mannwhitneyu::{MannWhitneyUMethod, mannwhitneyu};

/// Ticks between analyses: 5 minutes.
pub const ANALYSIS_TICKS: usize = 30;
/// Significance of the Mann–Whitney test: 98 % confidence.
pub const ALPHA: f64 = 0.02;
/// Effect size for a significant difference to count: mean ratio.
pub const MEAN_RATIO: f64 = 1.1;
/// Lowest passing score.
pub const PASS_SCORE: f64 = 75.0;

/// Which way a metric gets worse.
#[derive(Debug, Clone, Copy)]
enum Direction {
    /// Higher is worse.
    Increase,
    /// Lower is worse.
    Decrease,
}

/// A metric's classification in one analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// No value in the window or the control.
    NoData,
    /// No significant change for the worse.
    Pass,
    /// A significant change for the worse.
    Fail,
}

/// A metric's value in one sample, when it has one.
type Read = fn(&Sample) -> Option<f64>;

/// The metrics, each a value per sample.
const METRICS: [(Read, Direction); 3] = [
    (error_rate, Direction::Increase),
    (Sample::p99, Direction::Increase),
    (Sample::health, Direction::Decrease),
];

/// A tick's error rate, when it had requests.
fn error_rate(s: &Sample) -> Option<f64> {
    s.counts().filter(|(n, _)| *n > 0.0).map(|(n, k)| k / n)
}

/// Mean of `x` (not empty).
fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Classifies one metric: `control` before the release, `window` after.
fn classify(control: &[f64], window: &[f64], direction: Direction) -> Class {
    if control.is_empty() || window.is_empty() {
        return Class::NoData;
    }
    let Ok((_, p)) = mannwhitneyu(
        window,
        control,
        MannWhitneyUMethod::AsymptoticInclContinuityCorrection,
        Alternative::TwoSided,
    ) else {
        return Class::NoData;
    };
    let (w, c) = (mean(window), mean(control));
    let worse = match direction {
        Direction::Increase => w >= MEAN_RATIO * c && w > c,
        Direction::Decrease => w * MEAN_RATIO <= c && w < c,
    };
    if p < ALPHA && worse {
        Class::Fail
    } else {
        Class::Pass
    }
}

/// Judges `replay`: rollback at the first failed analysis.
pub fn judge(replay: &Replay) -> Verdict {
    let values = |samples: &[Sample], f: Read| -> Vec<f64> {
        samples
            .iter()
            .filter_map(f)
            .filter(|v| v.is_finite())
            .collect()
    };
    let controls: Vec<Vec<f64>> = METRICS
        .iter()
        .map(|(f, _)| values(replay.baseline(), *f))
        .collect();
    let after = &replay.samples[replay.release_index..];
    for end in (ANALYSIS_TICKS..=BAKE_TICKS.min(after.len())).step_by(ANALYSIS_TICKS) {
        let window = &after[..end];
        let classes: Vec<Class> = METRICS
            .iter()
            .zip(&controls)
            .map(|((f, direction), control)| classify(control, &values(window, *f), *direction))
            .collect();
        let no_data = classes.iter().filter(|c| **c == Class::NoData).count();
        let passed = classes.iter().filter(|c| **c == Class::Pass).count();
        let judged = classes.len() - no_data;
        let score = if judged == 0 {
            0.0
        } else {
            100.0 * passed as f64 / judged as f64
        };
        if 2 * no_data >= classes.len() || score < PASS_SCORE {
            return Verdict {
                action: Action::Rollback,
                seconds: end as f64 * TICK_SECONDS,
            };
        }
    }
    Verdict::pass()
}
