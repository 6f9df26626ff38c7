//! A count metric's error budget: how fast the increase over the baseline
//! burns it, read against the metric's burn levels (docs/judge.md).

use crate::config::MetricConfig;
use crate::judge::severity::num;
use crate::model::Severity;

/// What the error budget says of a count metric's reading.
pub(super) struct Burn {
    /// The severity its burn rate reaches (`none` below every level).
    pub(super) severity: Severity,
    /// The error rate at which the burn reaches that level.
    pub(super) threshold: Option<f64>,
    /// In words.
    pub(super) text: String,
}

/// With an `slo`: how fast the increase of `rate` (a lower bound) over the
/// baseline burns the error budget, and the severity that reaches by the
/// metric's burn levels. The baseline's own burn is left out: it was there
/// before the release, and rolling back would not stop it. Without a
/// baseline (`baseline = "none"`), the whole rate counts.
pub(super) fn budget_burn(metric: &MetricConfig, rate: f64, baseline: Option<f64>) -> Option<Burn> {
    let slo = metric.slo.filter(|_| metric.is_count())?;
    let budget = 1.0 - slo;
    if !(budget > 0.0 && budget < 1.0) {
        return None;
    }
    let base = baseline.filter(|b| b.is_finite()).unwrap_or(0.0);
    let burn = (rate - base).max(0.0) / budget;
    let reached = metric
        .burn_levels()
        .into_iter()
        .find(|&(_, level)| burn >= level);
    let (severity, threshold, level) = match reached {
        Some((severity, level)) => (
            severity,
            Some(base + level * budget),
            format!(" (≥ {severity} at {}×)", num(level)),
        ),
        None => (Severity::None, None, String::new()),
    };
    let what = if baseline.is_some() {
        "the increase over the baseline"
    } else {
        "the error rate"
    };
    Some(Burn {
        severity,
        threshold,
        text: format!(
            "{what} burns the error budget of SLO {}% at {}×{level}",
            num(slo * 100.0),
            num(burn)
        ),
    })
}
