//! A release's label: the severity the levels give it (on the true
//! rates, not the noisy ticks) and whether it is detectable at all.
//!
//! **Detectable**, honestly: the bake window must hold enough evidence that
//! a careful statistician could tell, whatever the judge.
//!
//! - An error-rate regression (step or slow burn) is detectable when its
//!   expected extra errors over the 15 min window are at least
//!   [`DETECTABLE_COUNT`] and at least [`DETECTABLE_SD`] standard deviations of the
//!   window's baseline error count (Poisson plus the per-tick
//!   overdispersion). At 0.02 rps and 0.05 %, a ×50 step gives about 1.8
//!   extra errors: not detectable.
//! - A latency regression (every request slower by the same factor) is
//!   detectable when the window holds at least [`DETECTABLE_COUNT`]
//!   requests and the shift of their median log latency is at least
//!   [`DETECTABLE_SD`] standard deviations. Every ×3 and ×10 step of this
//!   bench passes (even 0.02 rps gives 18 requests): the tick p50s show it,
//!   though a minute's p99 at that traffic is little more than its slowest
//!   request.
//! - A failed health endpoint is always detectable: probes do not depend
//!   on traffic.

use super::{BAKE_TICKS, Plan, Profile, Scenario, burn_rate};
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
/// Least signal-to-noise ratio, in standard deviations.
pub const DETECTABLE_SD: f64 = 3.0;

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
    // Errors the bake window would see without the regression, and their
    // standard deviation: Poisson plus the per-tick overdispersion.
    let base_errors = BAKE_TICKS as f64 * lambda * b;
    let sd =
        (base_errors + BAKE_TICKS as f64 * (lambda * b).powi(2) / profile.dispersion_shape).sqrt();
    let errors_detectable = |extra: f64| extra >= DETECTABLE_COUNT && extra >= DETECTABLE_SD * sd;
    // A latency step moves every request's log latency by ln(factor); the
    // window's median over N requests has a standard deviation of
    // 1.2533 σ / √N (σ: the per-request log-latency spread).
    let requests = BAKE_TICKS as f64 * lambda;
    let sigma = (profile.p99_ms / profile.p50_ms).ln() / 2.326;
    let latency_detectable = |factor: f64| {
        requests >= DETECTABLE_COUNT
            && factor.ln() * requests.sqrt() / (1.2533 * sigma) >= DETECTABLE_SD
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
