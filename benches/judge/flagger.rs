//! A Flagger-style judge, as a careful operator would configure Flagger's
//! canary analysis for this service: one analysis run a minute, each
//! checking the last minute's metrics against thresholds; a run fails when
//! any check fails, **no data fails the check** (Flagger's "no values
//! found"), and the release is rolled back after [`FAILED_CHECKS`] failed
//! runs (Flagger's cumulative `threshold`, not a streak).
//!
//! Checks, each over the last minute (6 ticks):
//!
//! - error rate: Σ errors / Σ requests; no requests is no data;
//! - p99: the highest tick p99 of the minute;
//! - health: fails when more than half of the minute's probes failed.
//!
//! Thresholds come from the hour before the release, cut into the same
//! 1-minute windows: the **highest** pre-release value plus a 10 % margin,
//! and for the error rate at least the hour's pooled rate + 0.5 points, so
//! that a baseline without a single error does not fail on the first one.
//! A pre-release hour that never had the value gives no threshold, and the
//! check then fails like missing data.

use crate::generate::{BAKE_TICKS, TICK_SECONDS};
use crate::report::{Action, Verdict};
use rollguard::backtest::{Replay, Sample};

/// Ticks per analysis run: one minute.
pub const CHECK_TICKS: usize = 6;
/// Failed runs before the rollback (Flagger's `threshold`).
pub const FAILED_CHECKS: u32 = 5;
/// Margin over the highest pre-release minute.
pub const MARGIN: f64 = 1.1;
/// Least error-rate headroom over the pre-release hour's pooled rate.
pub const ERROR_RATE_FLOOR: f64 = 0.005;

/// One minute's values; `None` is no data.
#[derive(Debug, Clone, Copy)]
struct Minute {
    /// Σ errors / Σ requests.
    error_rate: Option<f64>,
    /// The highest tick p99, ms.
    p99_ms: Option<f64>,
    /// Whether at least half of the probes succeeded.
    healthy: Option<bool>,
}

/// The minute made of `ticks`.
fn minute(ticks: &[Sample]) -> Minute {
    let (n, k) = ticks
        .iter()
        .filter_map(Sample::counts)
        .fold((0.0, 0.0), |(n, k), (dn, dk)| (n + dn, k + dk));
    let p99_ms = ticks.iter().filter_map(Sample::p99).reduce(f64::max);
    let probes: Vec<f64> = ticks.iter().filter_map(Sample::health).collect();
    let ok = probes.iter().filter(|h| **h >= 1.0).count();
    Minute {
        error_rate: (n > 0.0).then(|| k / n),
        p99_ms,
        healthy: (!probes.is_empty()).then(|| 2 * ok >= probes.len()),
    }
}

/// Judges `replay`: rollback at the [`FAILED_CHECKS`]th failed run.
pub fn judge(replay: &Replay) -> Verdict {
    let baseline = replay.baseline();
    let minutes: Vec<Minute> = baseline.chunks_exact(CHECK_TICKS).map(minute).collect();
    let (n, k) = baseline
        .iter()
        .filter_map(Sample::counts)
        .fold((0.0, 0.0), |(n, k), (dn, dk)| (n + dn, k + dk));
    let pooled = (n > 0.0).then(|| k / n);
    let max_error = minutes.iter().filter_map(|m| m.error_rate).reduce(f64::max);
    let error_threshold = max_error
        .zip(pooled)
        .map(|(max, pooled)| (max * MARGIN).max(pooled + ERROR_RATE_FLOOR));
    let p99_threshold = minutes
        .iter()
        .filter_map(|m| m.p99_ms)
        .reduce(f64::max)
        .map(|max| max * MARGIN);

    let after = &replay.samples[replay.release_index..];
    let mut failed = 0;
    for (run, ticks) in after.chunks_exact(CHECK_TICKS).enumerate() {
        if (run + 1) * CHECK_TICKS > BAKE_TICKS {
            break;
        }
        let m = minute(ticks);
        let over = |value: Option<f64>, threshold: Option<f64>| match (value, threshold) {
            (Some(v), Some(t)) => v > t,
            _ => true,
        };
        let fails = over(m.error_rate, error_threshold)
            || over(m.p99_ms, p99_threshold)
            || m.healthy != Some(true);
        if fails {
            failed += 1;
            if failed >= FAILED_CHECKS {
                return Verdict {
                    action: Action::Rollback,
                    seconds: ((run + 1) * CHECK_TICKS) as f64 * TICK_SECONDS,
                };
            }
        }
    }
    Verdict::pass()
}
