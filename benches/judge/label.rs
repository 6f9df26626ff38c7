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
//!   [`DETECTABLE_COUNT`] errors and by at least `z_α · sd₀ + z_power ·
//!   sd₁` ([`Z_ALPHA`], [`Z_POWER`]): the oracle's threshold is `z_α`
//!   standard deviations of the difference *without* a regression (`sd₀`),
//!   and the count must clear it 99% of the time, which takes `z_power`
//!   standard deviations of the difference *with* the regression (`sd₁`;
//!   more errors vary more). Each is the window's own count (Poisson plus
//!   the per-tick overdispersion) and the baseline's estimate of the rate
//!   (one hour of baseline, scaled to the window), in quadrature.
//!   At 0.02 rps and 0.05 %, a ×50 step gives about 1.8 extra errors: not
//!   detectable.
//!
//!   Until this version the label used `sd₀` for both terms; at a ×3–×9
//!   step that oracle caught only 84–96% of the "detectable" regressions,
//!   not 99% (the count's variance under the regression is 3–9 times the
//!   null's). The bench now checks the label: its "label check" line
//!   (`oracle_caught` of `oracle_checked` in the JSON) counts the
//!   detectable error regressions that the oracle's test catches on the
//!   release's own data.
//! - A latency regression (every request slower by the same factor) is
//!   detectable when the window holds at least [`DETECTABLE_COUNT`]
//!   requests and the shift of the median log latency beyond `ln(1 + δ)` is
//!   at least `z_α + z_power` standard deviations of the difference of two
//!   sample medians (the window's requests and the baseline's; a shift
//!   does not change that spread).
//! - A failed health endpoint is always detectable: probes do not depend
//!   on traffic.
//! - A canary's error regression is labelled as an error step seen on the
//!   canary's share of the traffic, against a baseline of the stable's
//!   requests over the same window (`generate::release` passes that
//!   profile in); its shared overdispersion is counted as noise, which
//!   the conditional test does not pay for (the label errs on the side of
//!   fewer detectable ones).

use super::{Plan, Profile, Scenario, burn_rate};
use crate::generate::{Label, Should};
use rollguard::backtest::{Replay, Sample};
use rollguard::judge::stats::{ErrorRateSettings, ErrorRateTest};
use rollguard::model::Severity;
use statrs::distribution::{ContinuousCDF, DiscreteCDF, Normal, Poisson};

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

/// The oracle's one-sided level: z at α = 0.0025, the share of a target's
/// α = 0.01 that one of the default policy's two sequential checks had
/// for Ville's bound when the label was set (half of its 0.005).
pub const Z_ALPHA: f64 = 2.81;

/// z at 99% power: the oracle catches a detectable regression 99% of the
/// time. At a lower bar ("3 sd") it would catch only about 60%, and "99% of
/// those" would be out of any valid judge's reach.
pub const Z_POWER: f64 = 2.33;

/// The better oracle's level (`oracle_power`): the whole share of a
/// target's α = 0.01 that each of the default policy's two sequential
/// checks has now, so that the oracle is not held to a stricter level than
/// the judge it bounds.
const ORACLE_ALPHA: f64 = 0.005;

/// One-sided z at [`ORACLE_ALPHA`].
const ORACLE_Z: f64 = 2.5758;

/// The severity `value` reaches against `baseline` by `levels`.
fn level(levels: &[(Severity, f64, f64)], baseline: f64, value: f64) -> Severity {
    levels
        .iter()
        .find(|&&(_, ratio, floor)| value >= (ratio * baseline).max(baseline + floor))
        .map_or(Severity::None, |&(s, _, _)| s)
}

/// The oracle's view of a window without a regression.
struct Null {
    /// Errors the bake window would see at the baseline rate.
    base_errors: f64,
    /// The variance of the baseline's estimate of that number, times
    /// `(1 + δ)²` (an hour of baseline, scaled to the window).
    var_estimate: f64,
    /// The standard deviation of the window's count less `(1 + δ)` times
    /// the estimate: the count's own variance (Poisson plus the per-tick
    /// overdispersion) and the estimate's, in quadrature.
    sd: f64,
}

/// The null over the first `window` ticks of the bake window.
fn null(profile: &Profile, window: usize) -> Null {
    let (b, lambda) = (profile.error_rate, profile.requests_per_tick);
    let (ticks, baseline_ticks) = (window as f64, profile.baseline_ticks as f64);
    let base_errors = ticks * lambda * b;
    let var_window = base_errors + ticks * (lambda * b).powi(2) / profile.dispersion_shape;
    let var_baseline = (ticks / baseline_ticks).powi(2)
        * (baseline_ticks * lambda * b
            + baseline_ticks * (lambda * b).powi(2) / profile.dispersion_shape);
    let var_estimate = (1.0 + TOLERANCE).powi(2) * var_baseline;
    Null {
        base_errors,
        var_estimate,
        sd: (var_window + var_estimate).sqrt(),
    }
}

/// Whether the oracle's fixed-horizon test catches an error regression on
/// the release's own data: the bake window's errors exceed `(1 + δ)` times
/// what the baseline's rate predicts by `z_α` standard deviations (the
/// oracle knows the noise, and that the regression starts at the release).
/// For detectable regressions it should say yes 99% of the time: the bench
/// reports how often it does, as a check of the label.
pub(super) fn oracle_catches(profile: &Profile, replay: &Replay, window: usize) -> bool {
    let sum = |samples: &[Sample]| {
        samples
            .iter()
            .filter_map(Sample::counts)
            .fold((0.0, 0.0), |(n, k), (dn, dk)| (n + dn, k + dk))
    };
    let after = &replay.samples[replay.release_index..];
    let window_samples = &after[..after.len().min(window)];
    // A canary's baseline is the stable beside it over the same window.
    let stable: Vec<Sample> = window_samples
        .iter()
        .filter(|s| s.stable_counts().is_some())
        .map(|s| Sample {
            requests: s.stable_requests,
            errors: s.stable_errors,
            ..Sample::default()
        })
        .collect();
    let (n_b, k_b) = if stable.is_empty() {
        sum(replay.baseline())
    } else {
        sum(&stable)
    };
    let (n, k) = sum(window_samples);
    if n_b <= 0.0 {
        return false;
    }
    k - (1.0 + TOLERANCE) * k_b / n_b * n >= Z_ALPHA * null(profile, window).sd
}

/// Whether an anytime-valid judge that knew the true base rate would have
/// caught an error regression within the first `window` ticks, on the
/// release's own data: rollguard's e-process ([`ErrorRateTest`], the whole
/// [`ORACLE_ALPHA`] for Ville's bound) against the judge's null at that
/// rate, `max((1 + δ) b, b + 0.001)`, with the true dispersion of a tick.
/// Between the oracle above and rollguard, it shows what watching every
/// tick costs apart from estimating the baseline.
pub(super) fn known_rate_catches(profile: &Profile, replay: &Replay, window: usize) -> bool {
    let b = profile.error_rate;
    let p0 = ((1.0 + TOLERANCE) * b).max(b + 0.001);
    let dispersion = 1.0 + profile.requests_per_tick * b / profile.dispersion_shape;
    let settings = ErrorRateSettings {
        alpha: 2.0 * ORACLE_ALPHA,
        ..ErrorRateSettings::default()
    };
    let mut test = ErrorRateTest::against(p0, dispersion, &settings);
    let after = &replay.samples[replay.release_index..];
    for sample in &after[..after.len().min(window)] {
        test.update(sample.counts());
    }
    test.rejected()
}

/// The expected severity of a release and whether it is detectable over
/// the first `window` ticks of the bake window (all 90 for the label;
/// fewer to ask whether it can be caught that early at all).
pub(super) fn judge_label(
    scenario: Scenario,
    plan: &Plan,
    profile: &Profile,
    window: usize,
) -> (Severity, bool) {
    if scenario.label() != Label::Regression {
        return (Severity::None, false);
    }
    let b = profile.error_rate;
    let lambda = profile.requests_per_tick;
    let ticks = window as f64;
    let Null {
        base_errors,
        var_estimate,
        sd: sd_null,
    } = null(profile, window);
    // `extra`: the regression's expected extra errors over the window;
    // `var_regressed`: the variance of the window's count under it.
    let errors_detectable = |extra: f64, var_regressed: f64| {
        let beyond = extra - TOLERANCE * base_errors;
        let sd_regressed = (var_regressed + var_estimate).sqrt();
        beyond >= DETECTABLE_COUNT && beyond >= Z_ALPHA * sd_null + Z_POWER * sd_regressed
    };
    // One tick's count at `rate`: Poisson plus the overdispersion.
    let tick_variance =
        |rate: f64| lambda * rate + (lambda * rate).powi(2) / profile.dispersion_shape;
    let requests = ticks * lambda;
    let latency_detectable = |factor: f64| {
        requests >= DETECTABLE_COUNT
            && beyond_tolerance(factor) >= (Z_ALPHA + Z_POWER) * median_shift_sd(profile, window)
    };
    match *plan {
        Plan::ErrorStep(rate)
        | Plan::Canary {
            error_rate: rate, ..
        } => (
            level(&ERROR_LEVELS, b, rate),
            errors_detectable(ticks * lambda * (rate - b), ticks * tick_variance(rate)),
        ),
        Plan::SlowBurn { ramp, target } => {
            let rates = (0..window).map(|j| burn_rate(profile, j, ramp, target));
            let extra = burn_errors(profile, window, ramp, target) - base_errors;
            let variance: f64 = rates.map(tick_variance).sum();
            (
                level(&ERROR_LEVELS, b, target),
                errors_detectable(extra, variance),
            )
        }
        Plan::LatencyStep(factor) => (
            level(&P99_LEVELS, profile.p99_ms, profile.p99_ms * factor),
            latency_detectable(factor),
        ),
        Plan::HealthDown => (Severity::Critical, true),
        _ => (Severity::None, false),
    }
}

/// The log-latency shift of a latency step beyond the tolerance.
fn beyond_tolerance(factor: f64) -> f64 {
    factor.ln() - (1.0 + TOLERANCE).ln()
}

/// The standard deviation of the difference between the sample medians of
/// log latency over the first `window` ticks and over the baseline. A
/// latency step moves every request's log latency by ln(factor); a median
/// over N requests has a standard deviation of 1.2533 σ / √N (σ: the
/// per-request log-latency spread).
fn median_shift_sd(profile: &Profile, window: usize) -> f64 {
    median_sd(profile, window) * (1.0 + window as f64 / profile.baseline_ticks as f64).sqrt()
}

/// The standard deviation of the sample median of log latency over the
/// first `window` ticks' requests.
fn median_sd(profile: &Profile, window: usize) -> f64 {
    let sigma = (profile.p99_ms / profile.p50_ms).ln() / 2.326;
    1.2533 * sigma / (window as f64 * profile.requests_per_tick).sqrt()
}

/// The errors a slow burn is expected to make over the first `window`
/// ticks.
fn burn_errors(profile: &Profile, window: usize, ramp: usize, target: f64) -> f64 {
    (0..window)
        .map(|j| profile.requests_per_tick * burn_rate(profile, j, ramp, target))
        .sum()
}

/// How likely a better oracle than the label's is to catch a regression
/// over the first `window` ticks. It knows the true base rate, not just the
/// baseline's estimate, and when the regression started; it tests once, at
/// [`ORACLE_ALPHA`]: an exact Poisson test of the window's errors against
/// `(1 + δ)` times the base rate, or the shift of the requests' median log
/// latency from the true one. Everything it leaves out would only make it
/// slower: overdispersion, the absolute floor of the null, and the
/// severity a judge must also establish before it acts. A judge that keeps
/// its level cannot expect to catch more by then, whatever it does: the
/// bench reads the mean of this over the regressions a judge acted on as
/// the most it could have caught within the 150 s.
pub(super) fn oracle_power(plan: &Plan, profile: &Profile, window: usize) -> f64 {
    let base = window as f64 * profile.requests_per_tick * profile.error_rate;
    let errors = |mean: f64| {
        let (Ok(null), Ok(regressed)) =
            (Poisson::new((1.0 + TOLERANCE) * base), Poisson::new(mean))
        else {
            return 0.0;
        };
        // It rejects above `c`, the fewest errors with P(K > c) <= α.
        let mut c = base.floor() as u64;
        while null.sf(c) > ORACLE_ALPHA {
            c += 1;
        }
        regressed.sf(c)
    };
    match *plan {
        Plan::ErrorStep(rate)
        | Plan::Canary {
            error_rate: rate, ..
        } => errors(window as f64 * profile.requests_per_tick * rate),
        Plan::SlowBurn { ramp, target } => errors(burn_errors(profile, window, ramp, target)),
        Plan::LatencyStep(factor) => {
            if window as f64 * profile.requests_per_tick < 1.0 {
                return 0.0;
            }
            let z = beyond_tolerance(factor) / median_sd(profile, window) - ORACLE_Z;
            Normal::standard().cdf(z)
        }
        Plan::HealthDown => 1.0,
        _ => 0.0,
    }
}

/// What should happen to a release by the table, on its true
/// rates (not the noisy ticks): act on errors at least ×3 or +1 point, p99
/// at least ×2, health down; at least report errors ×2 and p99 ×1.5;
/// nothing otherwise (good releases, errors ×1.2, p99 +10 %). A slow burn
/// is judged on the rate it reaches.
pub(super) fn should(plan: &Plan, profile: &Profile) -> Should {
    let b = profile.error_rate;
    let errors = |rate: f64| {
        if rate >= 3.0 * b || rate >= b + 0.01 {
            Should::Act
        } else if rate >= 2.0 * b {
            Should::Report
        } else {
            Should::Nothing
        }
    };
    match *plan {
        Plan::ErrorStep(rate)
        | Plan::Canary {
            error_rate: rate, ..
        } => errors(rate),
        Plan::SlowBurn { target, .. } => errors(target),
        Plan::LatencyStep(factor) if factor >= 2.0 => Should::Act,
        Plan::LatencyStep(factor) if factor >= 1.5 => Should::Report,
        Plan::HealthDown => Should::Act,
        _ => Should::Nothing,
    }
}
