//! The checks a replay is judged with when no target config says otherwise:
//! a policy that works on any service without per-service thresholds,
//! relative to the replay's own baseline (the samples before
//! `release_index`), with absolute floors.
//!
//! | check | from | judged by |
//! |---|---|---|
//! | `health` | `health` | below 1 is a failed probe; 3 in a row → critical |
//! | `error_rate` | `requests`, `errors` (and `stable_requests`, `stable_errors` for a canary) | the sequential error-rate test against the baseline, or a canary's against the stable's counts tick by tick; severity from [`DEFAULT_RATE_LEVELS`] (low at ×2 or +0.5 points, medium at ×3 or +1 point, high at ×5 and +2 points, critical at ×10 and +5 points); the fast path at the critical level |
//! | `p99_latency` | `p99_ms` | the sequential test of ticks above 1.25 × the baseline median; severity from [`P99_LEVELS`], their absolute floors read on the pooled p99 where ticks hold a few requests each (`p99_scale`) |
//!
//! A check is only configured when the replay has data for it somewhere, so
//! a file without `health` is not inconclusive at every tick. The target's
//! `alpha` (0.01) is split across the sequential checks.

use super::replay::{Replay, Sample};
use crate::config::TargetConfig;
#[cfg(doc)]
use crate::judge::sequential::DEFAULT_RATE_LEVELS;
use crate::model::{Counts, MetricSample, Observation, ProbeResult, Severity, TimeToFix};

/// p99 latency levels: (severity, ratio to baseline, absolute increase
/// ms), each at `max(ratio × baseline, baseline + increase)`. A sustained
/// doubling of p99 is worth acting on (medium: a human is asked; read from
/// ×1.8, so that a doubling reaches it through the ticks' noise), ×1.5
/// worth a word (low), unless the whole change is a few milliseconds (the
/// floors of 10 and 25 ms); rolling back without asking takes ×5 and a
/// second more (high).
pub const P99_LEVELS: [(Severity, f64, f64); 4] = [
    (Severity::Critical, 10.0, 2000.0),
    (Severity::High, 5.0, 1000.0),
    (Severity::Medium, 1.8, 25.0),
    (Severity::Low, 1.5, 10.0),
];

/// The checks of one replay, with the baselines they compare against.
#[derive(Debug, Clone)]
pub struct ReplayChecks {
    /// A target holding the checks, for [`crate::judge::Judge::new`].
    pub target: TargetConfig,
    /// Baseline error rate, when the baseline has requests.
    pub error_baseline: Option<f64>,
    /// Baseline p99 latency (median), when the baseline has any.
    pub p99_baseline: Option<f64>,
    /// The baseline's counts per one-minute block (as the daemon counts
    /// them), oldest first.
    baseline_counts: Vec<Counts>,
    /// The baseline's p99 values, tick by tick.
    baseline_p99: Vec<f64>,
    /// Whether the replay has a health value anywhere.
    health: bool,
    /// Whether the replay has request counts anywhere.
    errors: bool,
    /// Whether the replay has the stable version's counts anywhere: a
    /// canary release, its error rate judged against the stable's.
    canary: bool,
    /// Whether the replay has a p99 anywhere.
    p99: bool,
}

impl ReplayChecks {
    /// The default checks for `replay`, with `time_to_fix` as the target's.
    pub fn for_replay(replay: &Replay, time_to_fix: TimeToFix) -> Result<ReplayChecks, String> {
        let baseline = replay.baseline();
        let interval = replay
            .interval_seconds
            .unwrap_or(super::DEFAULT_INTERVAL_SECONDS);
        let baseline_counts = blocks(baseline, (BASELINE_BLOCK_SECONDS / interval).ceil());
        let (n, k) = baseline_counts
            .iter()
            .fold((0.0, 0.0), |(n, k), c| (n + c.total, k + c.bad));
        let error_baseline = (n > 0.0).then(|| k / n);
        let baseline_p99: Vec<f64> = baseline.iter().filter_map(Sample::p99).collect();
        let p99_baseline = crate::numeric::median(&baseline_p99);
        let floor_factor = p99_baseline.map_or(1.0, |median| median / p99_scale(baseline, median));
        let health = replay.samples.iter().any(|s| s.health().is_some());
        let errors = replay.samples.iter().any(|s| s.counts().is_some());
        let canary = replay.samples.iter().any(|s| s.stable_counts().is_some());
        let p99 = replay.samples.iter().any(|s| s.p99().is_some());

        let mut toml = format!(
            "name = {:?}\ntime_to_fix = {:?}\n[release]\nkind = \"announce\"\n",
            replay.name,
            time_to_fix.as_config()
        );
        if health {
            toml.push_str(
                "[[probe]]\nname = \"health\"\nurl = \"replay:health\"\n\
                 failures = 3\nseverity = \"critical\"\n",
            );
        }
        if errors {
            toml.push_str(
                "[[metric]]\nname = \"error_rate\"\nerrors_query = \"replay:errors\"\n\
                 total_query = \"replay:requests\"\n",
            );
            if canary {
                toml.push_str(
                    "baseline = \"canary\"\nstable_errors_query = \"replay:stable_errors\"\n\
                     stable_total_query = \"replay:stable_requests\"\n",
                );
            }
        }
        if p99 {
            let thresholds: Vec<String> = levels(&P99_LEVELS, p99_baseline, floor_factor)
                .iter()
                .map(|(s, v)| format!("{s} = {v:?}"))
                .collect();
            toml.push_str(&format!(
                "[[metric]]\nname = \"p99_latency\"\nquery = \"replay:p99_ms\"\n\
                 test = \"sequential\"\nthresholds = {{ {} }}\n",
                thresholds.join(", ")
            ));
        }
        let target = toml::from_str(&toml).map_err(|e| format!("default checks: {e}"))?;
        Ok(ReplayChecks {
            target,
            error_baseline,
            p99_baseline,
            baseline_counts,
            baseline_p99,
            health,
            errors,
            canary,
            p99,
        })
    }

    /// What the daemon would have observed at `sample`, `tick` ticks after
    /// the release. `so_far` holds the counts since the release, as the
    /// daemon's `{{window}}` queries return them; it is updated. The
    /// baselines go with the first tick only: the judge keeps them.
    pub fn observe(&self, sample: &Sample, tick: u64, so_far: &mut SoFar) -> Observation {
        let mut obs = Observation {
            tick,
            ..Observation::default()
        };
        if self.health
            && let Some(h) = sample.health()
        {
            obs.probes.push(ProbeResult {
                name: "health".to_owned(),
                ok: h >= 1.0,
                status: None,
                latency_ms: 0.0,
                error: Some(format!("health = {}", crate::judge::severity::num(h))),
            });
        }
        if self.errors {
            let mut m = MetricSample::named("error_rate");
            if let Some((n, k)) = sample.counts() {
                so_far.canary.total += n;
                so_far.canary.bad += k;
                m.counts = Some(so_far.canary);
            }
            m.value = m.counts.and_then(|c| c.rate());
            m.baseline = self.error_baseline;
            if self.canary {
                if let Some((n, k)) = sample.stable_counts() {
                    so_far.stable.total += n;
                    so_far.stable.bad += k;
                    m.stable_counts = Some(so_far.stable);
                }
                m.baseline = m.stable_counts.and_then(|c| c.rate());
            } else if tick == 0 {
                m.baseline_counts.clone_from(&self.baseline_counts);
            }
            obs.metrics.push(m);
        }
        if self.p99 {
            let mut m = MetricSample::named("p99_latency");
            m.value = sample.p99();
            m.baseline = self.p99_baseline;
            if tick == 0 {
                m.baseline_series.clone_from(&self.baseline_p99);
            }
            obs.metrics.push(m);
        }
        obs
    }
}

/// A release's counts since it began, as the daemon's `{{window}}`
/// queries return them: the release's (the canary's), and the stable
/// version's beside it in a canary replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoFar {
    /// The release's requests and errors.
    pub canary: Counts,
    /// The stable version's, in a canary replay.
    pub stable: Counts,
}

impl Default for SoFar {
    /// Nothing counted yet.
    fn default() -> SoFar {
        let zero = Counts {
            total: 0.0,
            bad: 0.0,
        };
        SoFar {
            canary: zero,
            stable: zero,
        }
    }
}

/// Seconds of baseline counted together, as the daemon's baseline range
/// query does for a count metric (one point a minute at a 10 s tick).
const BASELINE_BLOCK_SECONDS: f64 = 60.0;

/// The baseline's counts in blocks of `per_block` samples, aligned on the
/// release (the last block ends at it) like the daemon's range query;
/// blocks without data are left out.
fn blocks(baseline: &[Sample], per_block: f64) -> Vec<Counts> {
    let per_block = if per_block.is_finite() && per_block >= 1.0 {
        per_block as usize
    } else {
        1
    };
    let mut out: Vec<Counts> = baseline
        .rchunks(per_block)
        .filter_map(|block| {
            let counts: Vec<(f64, f64)> = block.iter().filter_map(Sample::counts).collect();
            let (n, k) = counts
                .iter()
                .fold((0.0, 0.0), |(n, k), (dn, dk)| (n + dn, k + dk));
            (!counts.is_empty())
                .then_some(())
                .and(Counts::checked(n, k))
        })
        .collect();
    out.reverse();
    out
}

/// Absolute thresholds from `(severity, ratio, floor)` levels and a
/// baseline: each level at `max(ratio × baseline, baseline + floor ×
/// floor_factor)` (the factor from [`p99_scale`], 1 where ticks hold
/// enough requests).
fn levels(
    table: &[(Severity, f64, f64)],
    baseline: Option<f64>,
    floor_factor: f64,
) -> Vec<(Severity, f64)> {
    let b = baseline.unwrap_or(0.0);
    table
        .iter()
        .map(|&(s, ratio, floor)| (s, (ratio * b).max(b + floor * floor_factor)))
        .collect()
}

/// Requests a tick below which a tick's p99 is about the slowest of its
/// few requests rather than a 99th percentile (for a sample quantile, and
/// for Prometheus' `histogram_quantile` alike).
const FEW_REQUESTS: f64 = 20.0;

/// Baseline p99 values the pooled estimate of [`p99_scale`] needs.
const MIN_POOLED: usize = 30;

/// The scale on which the p99 levels' absolute floors are read. Where the
/// baseline's ticks hold enough requests, their median p99 (the levels'
/// own base). Where they hold a few each (`n`), a tick's p99 is about the
/// slowest of them, so its median is far below the requests' 99th
/// percentile (at one request a tick, about their median), and a slowdown
/// by a factor `r` adds only `(r − 1)` times *that* to it: the floors
/// (+250 ms for medium) would then ask for a much larger slowdown than
/// they mean. The requests' 99th percentile is estimated from the pooled
/// baseline ticks instead: the slowest of `n` is below it with
/// probability `0.99^n`, so it is that quantile of the tick values. The
/// floors are scaled by `median / scale`; the ratios are untouched.
fn p99_scale(baseline: &[Sample], median: f64) -> f64 {
    let ticks: Vec<(f64, f64)> = baseline
        .iter()
        .filter_map(|s| Some((s.p99()?, s.requests.filter(|n| n.is_finite() && *n > 0.0)?)))
        .collect();
    let requests: Vec<f64> = ticks.iter().map(|t| t.1).collect();
    let typical = crate::numeric::median(&requests).unwrap_or(f64::INFINITY);
    if ticks.len() < MIN_POOLED || typical >= FEW_REQUESTS || median <= 0.0 {
        return median;
    }
    let mut values: Vec<f64> = ticks.iter().map(|t| t.0).collect();
    values.sort_by(f64::total_cmp);
    let q = 0.99f64.powf(typical.max(1.0));
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1].max(median)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_relative_with_absolute_floors() {
        let l = levels(&P99_LEVELS, Some(100.0), 1.0);
        assert_eq!(l[0], (Severity::Critical, 2100.0), "the floor: +2 s");
        assert_eq!(l[3], (Severity::Low, 150.0), "the ratio: 1.5x");
        assert_eq!(l[2], (Severity::Medium, 180.0), "the ratio: 1.8x");
        let l = levels(&P99_LEVELS, None, 1.0);
        assert_eq!(l[3], (Severity::Low, 10.0), "no baseline: the floor alone");
        let l = levels(&P99_LEVELS, Some(5.0), 0.4);
        assert_eq!(
            l[2],
            (Severity::Medium, 15.0),
            "the floor read on a scale 2.5x the median"
        );
    }

    /// A service with one request every tick whose latency is lognormal
    /// (median 40 ms, σ 0.6: a true p99 of 162 ms), every request `factor`
    /// times slower after the release; `requests: None` drops the counts.
    fn one_request_a_tick(factor: f64, requests: Option<f64>) -> Replay {
        let mut rng = crate::numeric::SplitMix64::new(5);
        let samples = (0..450)
            .map(|i| {
                let slow = if i >= 360 { factor } else { 1.0 };
                let z = crate::judge::tests_stats::normal(&mut rng);
                Sample {
                    requests,
                    p99_ms: Some(40.0 * slow * (0.6 * z).exp()),
                    ..Sample::default()
                }
            })
            .collect();
        Replay {
            name: "trickle".to_owned(),
            interval_seconds: Some(10.0),
            release_index: 360,
            samples,
        }
    }

    #[test]
    fn at_a_few_requests_a_tick_the_floors_are_read_on_the_pooled_p99() {
        let trickle = one_request_a_tick(1.0, Some(1.0));
        let median = crate::numeric::median(
            &trickle
                .baseline()
                .iter()
                .filter_map(Sample::p99)
                .collect::<Vec<_>>(),
        )
        .expect("values");
        let scale = p99_scale(trickle.baseline(), median);
        assert!(
            (120.0..220.0).contains(&scale) && median < 50.0,
            "one request a tick: the tick values' 99th percentile ({scale}) is about the true \
             p99 of 162 ms, the median ({median}) about the requests' median"
        );
        let busy: Vec<Sample> = trickle
            .baseline()
            .iter()
            .map(|s| Sample {
                requests: Some(500.0),
                ..*s
            })
            .collect();
        assert_eq!(p99_scale(&busy, median), median, "enough requests a tick");
        assert_eq!(
            p99_scale(&busy[..20], median),
            median,
            "too few ticks to pool"
        );
        let unknown = one_request_a_tick(1.0, None);
        assert_eq!(p99_scale(unknown.baseline(), median), median, "no counts");

        // Three times slower: the true p99 goes from 162 to 486 ms, medium
        // (2x). The tick values go from about 40 to 120 ms. The daemon's
        // defaults: time to fix unknown, so medium asks a human.
        let settings = crate::backtest::Settings::default();
        let judged = |replay: &Replay| crate::backtest::run(replay, &settings).expect("judged");
        let slower = judged(&one_request_a_tick(3.0, Some(1.0)));
        assert_eq!(
            (slower.decision, slower.severity),
            (crate::model::Decision::ConsiderRollback, Severity::Medium),
            "{slower:?}"
        );
        let blind = judged(&one_request_a_tick(3.0, None));
        assert_eq!(
            blind.severity,
            Severity::Medium,
            "without counts the ratio alone reads ~120 ms values as 3x: {blind:?}"
        );
        for factor in [1.0, 1.1] {
            let o = judged(&one_request_a_tick(factor, Some(1.0)));
            assert_eq!(o.severity, Severity::None, "x{factor}: {o:?}");
        }
    }
}
