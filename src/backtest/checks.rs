//! The checks a replay is judged with when no target config says otherwise:
//! a policy that works on any service, relative to the replay's own
//! baseline (the samples before `release_index`), with absolute floors.
//!
//! | check | from | breach |
//! |---|---|---|
//! | `health` | `health` | below 1 is a failed probe; 2 in a row → critical |
//! | `error_rate` | `errors / requests` | each level at `ratio × baseline` *and* `baseline + floor` (table below); 2 ticks in a row |
//! | `p99_latency` | `p99_ms` | each level at `ratio × baseline` *and* `baseline + floor` ms; 2 ticks in a row |
//!
//! The baseline error rate is Σ errors / Σ requests over the baseline
//! samples; the baseline p99 is their median p99. Without a baseline a level
//! is its floor alone. A tick with fewer than [`MIN_REQUESTS`] requests has
//! no error rate (too few requests to say anything): it holds, like a gap.
//! A check is only configured when the replay has data for it somewhere, so
//! a file without `health` is not inconclusive at every tick.

use super::replay::{Replay, Sample};
use crate::config::TargetConfig;
use crate::model::{MetricSample, Observation, ProbeResult, Severity};
use std::time::Duration;

/// Requests a tick needs before its error rate means anything.
pub const MIN_REQUESTS: f64 = 20.0;

/// Error-rate levels: (severity, ratio to baseline, absolute increase).
/// Critical at 10x and +5 points: the service is failing for a large share
/// of users; low at 1.5x and +0.5 points: noticeable, harmless.
pub const ERROR_RATE_LEVELS: [(Severity, f64, f64); 4] = [
    (Severity::Critical, 10.0, 0.05),
    (Severity::High, 5.0, 0.02),
    (Severity::Medium, 2.0, 0.01),
    (Severity::Low, 1.5, 0.005),
];

/// p99 latency levels: (severity, ratio to baseline, absolute increase ms).
pub const P99_LEVELS: [(Severity, f64, f64); 4] = [
    (Severity::Critical, 10.0, 2000.0),
    (Severity::High, 5.0, 1000.0),
    (Severity::Medium, 2.0, 250.0),
    (Severity::Low, 1.5, 50.0),
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
    /// Whether the replay has a health value anywhere.
    health: bool,
    /// Whether the replay has request counts anywhere.
    errors: bool,
    /// Whether the replay has a p99 anywhere.
    p99: bool,
}

impl ReplayChecks {
    /// The default checks for `replay`, with `time_to_fix` as the target's.
    pub fn for_replay(replay: &Replay, time_to_fix: Duration) -> Result<ReplayChecks, String> {
        let baseline = replay.baseline();
        let (n, k) = baseline
            .iter()
            .filter_map(Sample::counts)
            .fold((0.0, 0.0), |(n, k), (dn, dk)| (n + dn, k + dk));
        let error_baseline = (n > 0.0).then(|| k / n);
        let mut p99s: Vec<f64> = baseline.iter().filter_map(Sample::p99).collect();
        p99s.sort_by(f64::total_cmp);
        let p99_baseline = (!p99s.is_empty()).then(|| p99s[p99s.len() / 2]);
        let health = replay.samples.iter().any(|s| s.health().is_some());
        let errors = replay.samples.iter().any(|s| s.counts().is_some());
        let p99 = replay.samples.iter().any(|s| s.p99().is_some());

        let mut toml = format!(
            "name = {:?}\ntime_to_fix = \"{}s\"\n[release]\nkind = \"announce\"\n",
            replay.name,
            time_to_fix.as_secs()
        );
        if health {
            toml.push_str(
                "[[probe]]\nname = \"health\"\nurl = \"replay:health\"\n\
                 failures = 2\nseverity = \"critical\"\n",
            );
        }
        if errors {
            toml.push_str(&metric_toml(
                "error_rate",
                &levels(&ERROR_RATE_LEVELS, error_baseline, 1.0),
            ));
        }
        if p99 {
            toml.push_str(&metric_toml(
                "p99_latency",
                &levels(&P99_LEVELS, p99_baseline, f64::INFINITY),
            ));
        }
        let target = toml::from_str(&toml).map_err(|e| format!("default checks: {e}"))?;
        Ok(ReplayChecks {
            target,
            error_baseline,
            p99_baseline,
            health,
            errors,
            p99,
        })
    }

    /// What the daemon would have observed at `sample`, `tick` ticks after
    /// the release.
    pub fn observe(&self, sample: &Sample, tick: u64) -> Observation {
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
            let rate = sample
                .counts()
                .filter(|(n, _)| *n >= MIN_REQUESTS)
                .map(|(n, k)| k / n);
            obs.metrics
                .push(metric_sample("error_rate", rate, self.error_baseline));
        }
        if self.p99 {
            obs.metrics.push(metric_sample(
                "p99_latency",
                sample.p99(),
                self.p99_baseline,
            ));
        }
        obs
    }
}

/// Absolute thresholds from `(severity, ratio, floor)` levels and a
/// baseline: each level at `max(ratio × baseline, baseline + floor)`, at most
/// `cap`.
fn levels(table: &[(Severity, f64, f64)], baseline: Option<f64>, cap: f64) -> Vec<(Severity, f64)> {
    let b = baseline.unwrap_or(0.0);
    table
        .iter()
        .map(|&(s, ratio, floor)| (s, (ratio * b).max(b + floor).min(cap)))
        .collect()
}

fn metric_toml(name: &str, levels: &[(Severity, f64)]) -> String {
    let thresholds: Vec<String> = levels.iter().map(|(s, v)| format!("{s} = {v:?}")).collect();
    format!(
        "[[metric]]\nname = \"{name}\"\nquery = \"replay:{name}\"\nconfirm = 2\n\
         thresholds = {{ {} }}\n",
        thresholds.join(", ")
    )
}

fn metric_sample(name: &str, value: Option<f64>, baseline: Option<f64>) -> MetricSample {
    MetricSample {
        name: name.to_owned(),
        value,
        baseline,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_relative_with_absolute_floors() {
        let l = levels(&ERROR_RATE_LEVELS, Some(0.01), 1.0);
        assert_eq!(l[0], (Severity::Critical, 0.1));
        assert!((l[3].1 - 0.015).abs() < 1e-12, "{l:?}");
        let l = levels(&ERROR_RATE_LEVELS, None, 1.0);
        assert_eq!(l[0], (Severity::Critical, 0.05));
        let l = levels(&ERROR_RATE_LEVELS, Some(0.2), 1.0);
        assert_eq!(l[0], (Severity::Critical, 1.0), "capped at 100%");
    }
}
