//! `rollguard backtest --config FILE --target NAME --release-at TIME`: would
//! rollguard have caught last Tuesday's bad release, and when?
//!
//! The target's own metrics are measured from Prometheus as the daemon
//! would have measured them on each tick of the bake window after the
//! release, by the daemon's own [`MetricQuerier`] with the clock set to the
//! tick (`release_at + (t + 1) × interval`), and judged tick by tick with
//! the target's judge and the file's decision matrix. Probes are left out:
//! nothing records what a health endpoint answered in the past. Ticks not
//! yet in the past are not judged.
//!
//! `decided_at_index` counts ticks from the release (0 = the first tick),
//! which is what a replay file's index is once `release_index` is taken
//! from it.

use super::{Outcome, Settings, Tracker, bake_ticks};
use crate::config::{Config, TargetConfig};
use crate::judge::{self, Judge};
use crate::model::{DataImpact, Observation};
use crate::probe::prometheus::{BaselineCache, MetricQuerier, QueryContext};
use futures_util::future::join_all;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The past release to judge.
#[derive(Debug, Clone, PartialEq)]
pub struct PastRelease {
    /// When it was released: the end of the `pre_release` baselines.
    pub release_at: SystemTime,
    /// Its version, for `{{version}}` in queries.
    pub version: String,
    /// The version before it, for `{{previous_version}}`.
    pub previous_version: Option<String>,
}

/// Judges `release` of `target` from what `config`'s Prometheus holds.
///
/// `Err` when the target has no metrics or the file no `[prometheus]`;
/// a query that fails on a tick is a monitoring problem on that tick, as in
/// the daemon, and the outcome says so.
pub async fn run(
    config: &Config,
    target: &TargetConfig,
    release: &PastRelease,
    settings: &Settings,
    http: reqwest::Client,
) -> Result<Outcome, String> {
    let Some(prometheus) = &config.prometheus else {
        return Err("the configuration has no [prometheus] section to fetch the past from".into());
    };
    if target.metric.is_empty() {
        return Err(format!(
            "target {:?} has no [[target.metric]]: nothing Prometheus recorded to judge",
            target.name
        ));
    }
    let querier = MetricQuerier::new(prometheus, http).map_err(|e| e.to_string())?;
    let checks = TargetConfig {
        probe: Vec::new(),
        ..target.clone()
    };
    let mut judge = Judge::new(&checks);
    let ticks = bake_ticks(settings.bake_window, target.interval.as_secs_f64());
    let name = format!(
        "{}@{}",
        target.name,
        humantime::format_rfc3339_seconds(release.release_at)
    );
    let mut outcome = Tracker::new(&name);
    // Fetched once for the release, as the daemon does.
    let baselines = BaselineCache::default();
    let present = SystemTime::now();
    for tick in 0..ticks {
        let after = target
            .interval
            .saturating_mul(u32::try_from(tick + 1).unwrap_or(u32::MAX));
        let Some(now) = release
            .release_at
            .checked_add(after)
            .filter(|t| *t <= present)
        else {
            break;
        };
        let obs = observe(&querier, &checks, release, now, tick, &baselines).await;
        let assessment = judge.assess(&obs, DataImpact::None, settings.time_to_fix);
        if outcome.see(tick, judge::decide(&settings.rules, &assessment)) {
            break;
        }
    }
    Ok(outcome.finish())
}

/// Every metric of `target` as the daemon would have measured it at `now`.
async fn observe(
    querier: &MetricQuerier,
    target: &TargetConfig,
    release: &PastRelease,
    now: SystemTime,
    tick: usize,
    baselines: &BaselineCache,
) -> Observation {
    let context = QueryContext {
        target: target.name.clone(),
        version: release.version.clone(),
        previous_version: release.previous_version.clone(),
        release_at: release.release_at,
        now,
        window_start: None,
        interval: target.interval,
    };
    let metrics = join_all(
        target
            .metric
            .iter()
            .map(|metric| querier.sample(metric, &context, baselines)),
    )
    .await;
    Observation {
        tick: tick as u64,
        at_unix_ms: now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        probes: Vec::new(),
        metrics: metrics.into_iter().map(|m| m.sample).collect(),
    }
}

/// A release time from the command line: RFC 3339 (`2026-11-24T14:05:00Z`),
/// or Unix seconds.
pub fn parse_time(text: &str) -> Result<SystemTime, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        // Up to the year 9999, like RFC 3339: no overflow, no panic.
        return (seconds.is_finite() && (0.0..=253_402_300_799.0).contains(&seconds))
            .then(|| UNIX_EPOCH + Duration::from_secs_f64(seconds))
            .ok_or_else(|| {
                format!("{text:?} is not a time: Unix seconds from 0 to the year 9999")
            });
    }
    humantime::parse_rfc3339_weak(text).map_err(|e| {
        format!(
            "{text:?} is not a time: {e} (use RFC 3339, like 2026-11-24T14:05:00Z, or Unix seconds)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_unix_seconds() {
        let at = parse_time("2026-11-24T14:05:00Z").expect("rfc3339");
        assert_eq!(at, UNIX_EPOCH + Duration::from_secs(1_795_529_100));
        assert_eq!(parse_time("1795529100").expect("seconds"), at);
        let e = parse_time("last tuesday").expect_err("not a time");
        assert!(e.contains("RFC 3339"), "{e}");
        assert!(parse_time("-5").is_err());
        assert!(parse_time("1e300").is_err(), "no overflow");
        assert!(parse_time("NaN").is_err());
    }
}
