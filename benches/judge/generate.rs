//! Labelled synthetic releases: one [`Replay`] at a 10 s tick, 1 h or 30 min
//! of pre-release baseline then the 15 min bake window, drawn from a seeded
//! [`Rng`] so that a `--seed` always gives the same releases.
//!
//! Every release draws a service profile: traffic 0.02–200 requests/s
//! (log-uniform), a base error rate 0.05–2 % (log-uniform) with
//! overdispersion (each tick's rate is the base rate times a Gamma of mean 1
//! and a coefficient of variation of 0.1–0.5), and a latency distribution
//! (lognormal per request, p99 100–800 ms, p99/p50 2.5–6). A tick's p50 and
//! p99 are the sample quantiles of that tick's requests (drawn one by one
//! up to 100 requests, from the quantile estimator's normal approximation
//! above), so they are noisier, and biased low, at low traffic; a tick
//! without requests has no latency. On top of that the error rate and the
//! latency wander slowly (`--drift`, a log-scale AR(1) with a 5 min
//! correlation time, 10 % by default), as real services do over an hour:
//! without it every tick is independent, which flatters judges that assume
//! so (Mann–Whitney on ticks). The scenario then changes what happens
//! after the release (or, for scrape gaps, throughout). `label.rs` gives
//! each release its expected severity and says whether it is detectable.

use super::rng::Rng;
pub use super::scenario::{Label, Scenario, Should};
use label::{judge_label, known_rate_catches, oracle_catches, oracle_power, should};
use rollguard::backtest::{Replay, Sample};
use rollguard::model::Severity;

#[path = "label.rs"]
mod label;

pub use label::{DETECTABLE_COUNT, Z_ALPHA, Z_POWER};

/// Seconds between samples.
pub const TICK_SECONDS: f64 = 10.0;
/// Samples before the release by default: 1 h (`--baselines` adds 30 min).
pub const BASELINE_TICKS: usize = 360;
/// Samples after it: the 15 min bake window.
pub const BAKE_TICKS: usize = 90;
/// The first 150 s of the bake window: the p90 time to detect.
pub const EARLY_TICKS: usize = 15;
/// Correlation time of the drift, seconds.
const DRIFT_SECONDS: f64 = 300.0;

/// One generated release with its label.
#[derive(Debug, Clone)]
pub struct Release {
    /// Its class.
    pub scenario: Scenario,
    /// What the judges see.
    pub replay: Replay,
    /// The severity the regression should reach by the levels
    /// (true rates, not the noisy ticks); `None` for good and minor ones.
    pub expected: Severity,
    /// What should happen to it, by the table on its true rates.
    pub should: Should,
    /// Samples of baseline before the release.
    pub baseline_ticks: usize,
    /// Whether the bake window holds enough evidence to catch it
    /// (`label.rs` says when).
    pub detectable: bool,
    /// Whether it is detectable over the first [`EARLY_TICKS`] alone (the
    /// label's oracle would catch it 99% of the time by then).
    pub detectable_early: bool,
    /// For a regression: how likely an oracle better than any judge is to
    /// catch it within the first [`EARLY_TICKS`] (`label::oracle_power`).
    pub early_power: Option<f64>,
    /// For a detectable error regression: whether the label's oracle test
    /// caught it on this release's data (a check of the label).
    pub oracle: Option<bool>,
    /// For an error regression: whether that oracle, testing once at
    /// [`EARLY_TICKS`], catches it on this release's data.
    pub oracle_early: Option<bool>,
    /// For an error regression: whether an anytime-valid e-process that
    /// knew the true base rate rejects within [`EARLY_TICKS`]
    /// (`label::known_rate_catches`).
    pub known_rate_early: Option<bool>,
    /// The service's mean traffic, requests per second.
    pub rps: f64,
}

/// The service a release runs on.
#[derive(Debug, Clone, Copy)]
struct Profile {
    /// Mean requests per tick.
    requests_per_tick: f64,
    /// Base error rate.
    error_rate: f64,
    /// Gamma shape of the per-tick error-rate multiplier (1 / CV²).
    dispersion_shape: f64,
    /// Median latency, ms.
    p50_ms: f64,
    /// 99th percentile latency, ms.
    p99_ms: f64,
    /// Samples of baseline before the release.
    baseline_ticks: usize,
}

/// What the scenario does, with the parameters it drew.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Nothing.
    Nothing,
    /// Each tick is missing with this probability.
    Gaps(f64),
    /// A monitoring outage.
    Outage {
        /// First missing bake tick.
        start: usize,
        /// Missing ticks.
        len: usize,
    },
    /// A transient spike.
    Spike {
        /// First bake tick of the spike.
        start: usize,
        /// Its ticks.
        len: usize,
        /// The error rate during the spike, if errors spike.
        error_rate: Option<f64>,
        /// The latency multiplier during the spike, if latency spikes.
        latency_factor: Option<f64>,
    },
    /// The error rate after the release.
    ErrorStep(f64),
    /// After the release a canary serves `share` of the traffic at
    /// `error_rate`, beside the stable version at the base rate; both share
    /// the per-tick overdispersion and the drift (what moves a service's
    /// errors moves both versions'), and each has its own too (CV 10 %).
    Canary {
        /// The canary's share of the requests.
        share: f64,
        /// Its mean error rate.
        error_rate: f64,
    },
    /// Latency multiplied after the release.
    LatencyStep(f64),
    /// Health fails after the release.
    HealthDown,
    /// The error rate climbs linearly from the base rate.
    SlowBurn {
        /// Ticks to reach `target`.
        ramp: usize,
        /// The error rate at the end of the ramp and after.
        target: f64,
    },
}

/// The true state of one tick.
#[derive(Debug, Clone, Copy)]
struct Effect {
    /// Mean error rate (the canary's, in a canary release).
    error_rate: f64,
    /// In a canary release: the canary's share of the requests, and the
    /// stable version's mean error rate.
    canary: Option<(f64, f64)>,
    /// Latency multiplier.
    latency_factor: f64,
    /// Whether the health endpoint answers.
    healthy: bool,
    /// Whether the tick was not scraped.
    missing: bool,
}

/// Draws one release of `scenario`. `drift` is the standard deviation of
/// the slow wander of the error rate and latency (log scale, 5 min
/// correlation time): real services are not stationary over an hour.
pub fn release(
    scenario: Scenario,
    name: String,
    drift: f64,
    baseline_ticks: usize,
    rng: &mut Rng,
) -> Release {
    let p99_ms = rng.log_between(100.0, 800.0);
    let profile = Profile {
        requests_per_tick: rng.log_between(0.02, 200.0) * TICK_SECONDS,
        error_rate: rng.log_between(0.0005, 0.02),
        dispersion_shape: rng.between(0.1, 0.5).powi(-2),
        p50_ms: p99_ms / rng.between(2.5, 6.0),
        p99_ms,
        baseline_ticks,
    };
    let plan = plan(scenario, &profile, rng);
    let mut latencies = Vec::with_capacity(100);
    // AR(1) on the log scale: keeps `drift` as its stationary deviation.
    let keep = (-TICK_SECONDS / DRIFT_SECONDS).exp();
    let fresh = drift * (1.0 - keep * keep).sqrt();
    let (mut error_drift, mut latency_drift) = (drift * rng.normal(), drift * rng.normal());
    let samples = (0..baseline_ticks + BAKE_TICKS)
        .map(|t| {
            let mut effect = effect(&plan, &profile, t.checked_sub(baseline_ticks), rng);
            error_drift = keep * error_drift + fresh * rng.normal();
            latency_drift = keep * latency_drift + fresh * rng.normal();
            effect.error_rate *= error_drift.exp();
            if let Some((_, stable)) = &mut effect.canary {
                *stable *= error_drift.exp();
            }
            effect.latency_factor *= latency_drift.exp();
            sample(&profile, &effect, rng, &mut latencies)
        })
        .collect();
    // What the label's oracles see over a window: the release's requests
    // against the baseline's, which for a canary are the canary's share
    // against the stable's over the same window.
    let seen = |window: usize| match plan {
        Plan::Canary { share, .. } => Profile {
            requests_per_tick: profile.requests_per_tick * share,
            baseline_ticks: ((1.0 - share) / share * window as f64).round().max(1.0) as usize,
            ..profile
        },
        _ => profile,
    };
    let (bake, early) = (seen(BAKE_TICKS), seen(EARLY_TICKS));
    let (expected, detectable) = judge_label(scenario, &plan, &bake, BAKE_TICKS);
    let (_, detectable_early) = judge_label(scenario, &plan, &early, EARLY_TICKS);
    let early_power =
        (scenario.label() == Label::Regression).then(|| oracle_power(&plan, &early, EARLY_TICKS));
    let replay = Replay {
        name,
        interval_seconds: Some(TICK_SECONDS),
        release_index: baseline_ticks,
        samples,
    };
    let errors = scenario.label() == Label::Regression
        && matches!(
            plan,
            Plan::ErrorStep(_) | Plan::SlowBurn { .. } | Plan::Canary { .. }
        );
    Release {
        scenario,
        oracle: (errors && detectable).then(|| oracle_catches(&bake, &replay, BAKE_TICKS)),
        oracle_early: errors.then(|| oracle_catches(&early, &replay, EARLY_TICKS)),
        known_rate_early: errors.then(|| known_rate_catches(&early, &replay, EARLY_TICKS)),
        replay,
        expected,
        should: should(&plan, &profile),
        baseline_ticks,
        detectable,
        detectable_early,
        early_power,
        rps: profile.requests_per_tick / TICK_SECONDS,
    }
}

/// Draws the scenario's parameters.
fn plan(scenario: Scenario, profile: &Profile, rng: &mut Rng) -> Plan {
    let b = profile.error_rate;
    let p99 = profile.p99_ms;
    match scenario {
        Scenario::Steady => Plan::Nothing,
        Scenario::ScrapeGaps => Plan::Gaps(rng.between(0.01, 0.05)),
        Scenario::Outage => Plan::Outage {
            start: rng.int_between(0, 30),
            len: rng.int_between(18, 48),
        },
        Scenario::Spike => {
            let kind = rng.int_between(0, 2);
            Plan::Spike {
                start: rng.int_between(0, BAKE_TICKS - 2),
                len: rng.int_between(1, 2),
                error_rate: (kind != 1).then(|| (20.0 * b).max(b + 0.1).min(0.5)),
                latency_factor: (kind != 0).then(|| rng.between(5.0, 10.0)),
            }
        }
        Scenario::MinorErrors => Plan::ErrorStep(b * rng.between(1.1, 1.3)),
        Scenario::MinorLatency => Plan::LatencyStep(rng.between(1.05, 1.15)),
        Scenario::Errors2 => Plan::ErrorStep(2.0 * b),
        Scenario::Errors2Floor => Plan::ErrorStep((2.0 * b).max(b + 0.005)),
        Scenario::Errors3 => Plan::ErrorStep((3.0 * b).max(b + 0.015)),
        Scenario::Errors5 => Plan::ErrorStep(5.0 * b),
        Scenario::Errors5Floor => Plan::ErrorStep((5.0 * b).max(b + 0.02)),
        Scenario::Errors10 => Plan::ErrorStep((10.0 * b).max(b + 0.03)),
        Scenario::Errors50 => Plan::ErrorStep((50.0 * b).max(b + 0.10).min(0.95)),
        Scenario::Latency1_5 => Plan::LatencyStep(1.5),
        Scenario::Latency2 => Plan::LatencyStep(2.0),
        Scenario::Latency3 => Plan::LatencyStep(3f64.max(1.0 + 400.0 / p99)),
        Scenario::Latency10 => Plan::LatencyStep(10f64.max(1.0 + 2500.0 / p99)),
        Scenario::HealthDown => Plan::HealthDown,
        Scenario::SlowBurn4 => Plan::SlowBurn {
            ramp: rng.int_between(18, 60),
            target: 4.0 * b,
        },
        Scenario::SlowBurn => Plan::SlowBurn {
            ramp: rng.int_between(18, 60),
            target: (12.0 * b).max(b + 0.06).min(0.95),
        },
        Scenario::CanarySteady => Plan::Canary {
            share: rng.between(0.1, 0.5),
            error_rate: b,
        },
        Scenario::CanaryErrors3 => Plan::Canary {
            share: rng.between(0.1, 0.5),
            error_rate: (3.0 * b).max(b + 0.015),
        },
    }
}

/// The true state of tick `bake` (`None`: before the release).
fn effect(plan: &Plan, profile: &Profile, bake: Option<usize>, rng: &mut Rng) -> Effect {
    let mut e = Effect {
        error_rate: profile.error_rate,
        canary: None,
        latency_factor: 1.0,
        healthy: true,
        missing: false,
    };
    if let Plan::Gaps(p) = plan {
        e.missing = rng.chance(*p);
    }
    let Some(j) = bake else { return e };
    match *plan {
        Plan::Nothing | Plan::Gaps(_) => {}
        Plan::Outage { start, len } => e.missing = (start..start + len).contains(&j),
        Plan::Spike {
            start,
            len,
            error_rate,
            latency_factor,
        } => {
            if (start..start + len).contains(&j) {
                e.error_rate = error_rate.unwrap_or(e.error_rate);
                e.latency_factor = latency_factor.unwrap_or(1.0);
            }
        }
        Plan::ErrorStep(rate) => e.error_rate = rate,
        Plan::Canary { share, error_rate } => {
            e.canary = Some((share, e.error_rate));
            e.error_rate = error_rate;
        }
        Plan::LatencyStep(factor) => e.latency_factor = factor,
        Plan::HealthDown => e.healthy = false,
        Plan::SlowBurn { ramp, target } => e.error_rate = burn_rate(profile, j, ramp, target),
    }
    e
}

/// The slow burn's error rate at bake tick `j`.
fn burn_rate(profile: &Profile, j: usize, ramp: usize, target: f64) -> f64 {
    let done = ((j + 1) as f64 / ramp as f64).min(1.0);
    profile.error_rate + (target - profile.error_rate) * done
}

/// One tick's sample.
fn sample(profile: &Profile, effect: &Effect, rng: &mut Rng, buf: &mut Vec<f64>) -> Sample {
    if effect.missing {
        return Sample::default();
    }
    // Traffic itself varies a little from tick to tick (CV 10 %).
    let traffic = profile.requests_per_tick * rng.gamma(100.0) / 100.0;
    let k = profile.dispersion_shape;
    let mut stable = (None, None);
    // The draws in the order they had before the canary classes, so that a
    // seed gives the other classes the releases it always gave them.
    let (requests, errors) = match effect.canary {
        None => {
            let requests = rng.poisson(traffic);
            let rate = (effect.error_rate * rng.gamma(k) / k).min(1.0);
            (requests, rng.binomial(requests, rate))
        }
        Some((share, stable_rate)) => {
            let shared = rng.gamma(k) / k;
            let mut version = |requests: f64, rate: f64| {
                let requests = rng.poisson(requests);
                let own = rng.gamma(100.0) / 100.0;
                (
                    requests,
                    rng.binomial(requests, (rate * shared * own).min(1.0)),
                )
            };
            let (n, e) = version(traffic * (1.0 - share), stable_rate);
            stable = (Some(n as f64), Some(e as f64));
            version(traffic * share, effect.error_rate)
        }
    };
    let (p50, p99) = if requests == 0 {
        (None, None)
    } else {
        let (z50, z99) = quantiles(requests, rng, buf);
        let sigma = (profile.p99_ms / profile.p50_ms).ln() / 2.326;
        // Server-side jitter shared by both quantiles (GC, neighbours).
        let scale = profile.p50_ms * effect.latency_factor * (0.05 * rng.normal()).exp();
        (
            Some(scale * (sigma * z50).exp()),
            Some(scale * (sigma * z99).exp()),
        )
    };
    Sample {
        requests: Some(requests as f64),
        errors: Some(errors as f64),
        p50_ms: p50,
        p99_ms: p99,
        health: Some(if effect.healthy { 1.0 } else { 0.0 }),
        stable_requests: stable.0,
        stable_errors: stable.1,
    }
}

/// The sample median and 99th percentile of `n` standard normals: drawn
/// one by one up to 100, from the estimators' normal approximation above.
fn quantiles(n: u64, rng: &mut Rng, buf: &mut Vec<f64>) -> (f64, f64) {
    if n > 100 {
        let root = (n as f64).sqrt();
        // sd = sqrt(q(1-q)/n) / φ(z_q): 1.2533 for the median, 3.733 for p99.
        return (
            1.2533 * rng.normal() / root,
            2.3263 + 3.733 * rng.normal() / root,
        );
    }
    buf.clear();
    buf.extend((0..n).map(|_| rng.normal()));
    buf.sort_by(f64::total_cmp);
    (sample_quantile(buf, 0.5), sample_quantile(buf, 0.99))
}

/// Quantile `q` of sorted `x` with linear interpolation.
fn sample_quantile(x: &[f64], q: f64) -> f64 {
    let h = (x.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(x.len() - 1);
    x[lo] + (h - lo as f64) * (x[hi] - x[lo])
}
