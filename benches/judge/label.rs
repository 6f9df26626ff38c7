//! A release's label: the severity the levels give it (on the true
//! rates, not the noisy ticks) and whether it is detectable at all.
//!
//! **Detectable**, honestly: an oracle that knew when the regression
//! started and tested the null hypothesis once, at the end of the
//! bake window, at the judge's α, with the same baseline and window as the
//! judge, would catch it 99% of the time. Concretely:
//!
//! - An error-rate regression (step or slow burn) is detectable when its
//!   expected errors over the 15 min window exceed `(1 + δ)` times what the
//!   baseline rate predicts (δ = 0.25, the tolerance) by at least
//!   [`DETECTABLE_COUNT`] errors and by at least [`DETECTABLE_SD`] standard
//!   deviations of that difference: the window's own count (Poisson plus the
//!   per-tick overdispersion) and the baseline's estimate of the rate (one
//!   hour of baseline, scaled to the window), in quadrature.
//!   At 0.02 rps and 0.05 %, a ×50 step gives about 1.8 extra errors: not
//!   detectable.
//! - A latency regression (every request slower by the same factor) is
//!   detectable when the window holds at least [`DETECTABLE_COUNT`]
//!   requests and the shift of the median log latency beyond `ln(1 + δ)` is
//!   at least [`DETECTABLE_SD`] standard deviations of the difference of two
//!   sample medians (the window's requests and the baseline's).
//! - A failed health endpoint is always detectable: probes do not depend
//!   on traffic.

use super::{BAKE_TICKS, BASELINE_TICKS, Plan, Profile, Scenario, burn_rate};
use crate::generate::Label;
use rollguard::model::Severity;

/// The error-rate levels: (severity, ratio to baseline, absolute
/// increase). A copy, so that labels do not move when the judge changes.
const ERROR_LEVELS: [(Severity, f64, f64); 4] = [
    (Severity::Critical, 10.0, 0.05),
    (Severity::High, 5.0, 0.02),
    (Severity::Medium, 2.0, 0.01),
    (Severity::Low, 1.5, 0.005),
];
/// The p99 levels: (severity, ratio to baseline, absolute ms).
const P99_LEVELS: [(Severity, f64, f64); 4] = [
    (Severity::Critical, 10.0, 2000.0),
    (Severity::High, 5.0, 1000.0),
    (Severity::Medium, 2.0, 250.0),
    (Severity::Low, 1.5, 50.0),
];

/// Least evidence a regression needs over the bake window to be called
/// detectable: extra errors for an error regression, requests for a
/// latency one.
pub const DETECTABLE_COUNT: f64 = 10.0;
/// The tolerance δ: "no worse" is up to 1.25 times the baseline.
const TOLERANCE: f64 = 0.25;

/// Least signal-to-noise ratio, in standard deviations: z at one-sided
/// α = 0.0025 (2.81, the share of a target's α = 0.01 that one of the
/// default policy's two sequential checks gets for Ville's bound) plus z at
/// 99% power (2.33). An oracle that knew the true baseline rate and tested
/// once, at the end of the window, at that α, would catch 99% of the
/// regressions at this size and more; at 3 sd it would catch only about
/// 60%, so "99% of those" would be out of any valid judge's reach.
pub const DETECTABLE_SD: f64 = 5.14;

/// The severity `value` reaches against `baseline` by `levels`.
fn level(levels: &[(Severity, f64, f64)], baseline: f64, value: f64) -> Severity {
    levels
        .iter()
        .find(|&&(_, ratio, floor)| value >= (ratio * baseline).max(baseline + floor))
        .map_or(Severity::None, |&(s, _, _)| s)
}

/// The expected severity and detectability of a release.
pub(super) fn judge_label(scenario: Scenario, plan: &Plan, profile: &Profile) -> (Severity, bool) {
    if scenario.label() != Label::Regression {
        return (Severity::None, false);
    }
    let b = profile.error_rate;
    let lambda = profile.requests_per_tick;
    let ticks = BAKE_TICKS as f64;
    let baseline_ticks = BASELINE_TICKS as f64;
    // Errors the bake window would see at the baseline rate, their
    // variance (Poisson plus the per-tick overdispersion), and the variance
    // of the baseline's estimate of that number (an hour of baseline,
    // scaled to the window).
    let base_errors = ticks * lambda * b;
    let var_window = base_errors + ticks * (lambda * b).powi(2) / profile.dispersion_shape;
    let var_baseline = (ticks / baseline_ticks).powi(2)
        * (baseline_ticks * lambda * b
            + baseline_ticks * (lambda * b).powi(2) / profile.dispersion_shape);
    let sd = (var_window + (1.0 + TOLERANCE).powi(2) * var_baseline).sqrt();
    let errors_detectable = |extra: f64| {
        let beyond = extra - TOLERANCE * base_errors;
        beyond >= DETECTABLE_COUNT && beyond >= DETECTABLE_SD * sd
    };
    // A latency step moves every request's log latency by ln(factor); a
    // median over N requests has a standard deviation of 1.2533 σ / √N (σ:
    // the per-request log-latency spread).
    let requests = ticks * lambda;
    let sigma = (profile.p99_ms / profile.p50_ms).ln() / 2.326;
    let latency_detectable = |factor: f64| {
        let sd = 1.2533 * sigma * (1.0 / requests + 1.0 / (baseline_ticks * lambda)).sqrt();
        requests >= DETECTABLE_COUNT && (factor.ln() - (1.0 + TOLERANCE).ln()) >= DETECTABLE_SD * sd
    };
    match *plan {
        Plan::ErrorStep(rate) => (
            level(&ERROR_LEVELS, b, rate),
            errors_detectable(BAKE_TICKS as f64 * lambda * (rate - b)),
        ),
        Plan::SlowBurn { ramp, target } => {
            let extra: f64 = (0..BAKE_TICKS)
                .map(|j| lambda * (burn_rate(profile, j, ramp, target) - b))
                .sum();
            (level(&ERROR_LEVELS, b, target), errors_detectable(extra))
        }
        Plan::LatencyStep(factor) => (
            level(&P99_LEVELS, profile.p99_ms, profile.p99_ms * factor),
            latency_detectable(factor),
        ),
        Plan::HealthDown => (Severity::Critical, true),
        _ => (Severity::None, false),
    }
}
