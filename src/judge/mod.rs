//! The judge: pure functions from observations to an assessment, and from an
//! assessment to a decision. No I/O, no clock, no tokio: everything it knows
//! arrives in an [`Observation`], so the daemon, the tests and
//! `rollguard backtest` all judge the same way.
//!
//! - [`Judge`] keeps, per target, the streak of consecutive breaching ticks
//!   of every check and turns one tick into an [`Assessment`].
//! - [`severity`] judges one metric value against thresholds and baseline.
//! - [`stats`]: anytime-valid sequential tests (the error-rate e-process).
//! - [`policy`] is the decision matrix: [`decide`], [`default_rules`],
//!   [`effective_rules`].
//!
//! # The rules the judge applies
//!
//! - **Confirmation.** A metric breach counts only after `confirm`
//!   consecutive breaching ticks (default 2), a probe failure only after
//!   `failures` consecutive failures (default 3); before that the verdict is
//!   `pending` and nothing acts on it. Any tick that does not breach resets
//!   the streak, and so does a tick without data under `on_no_data = "hold"`
//!   or `"pass"` and a measurement error: a streak never spans a gap, so
//!   nothing is confirmed across a monitoring outage. Once confirmed, the
//!   severity is the mildest one seen over the last `confirm` ticks: the
//!   level the breach has *held*, not one tick's spike.
//! - **Missing data.** `hold` (the default) gives `no_data`; `pass` counts as
//!   healthy; `fail` counts as a breach at the metric's worst configured
//!   threshold, confirmed like any other breach. A failed query gives
//!   `error` whatever `on_no_data` says. A non-finite value (NaN from a
//!   division by zero requests) is no data. A count metric whose
//!   `errors_query` answers with no series while requests flow, when
//!   errors were due, is `no_data` whatever `on_no_data` says
//!   (`sequential/blind.rs`; off with `empty_means_zero = true`).
//! - **Inconclusive.** The assessment is inconclusive when some check could
//!   not be evaluated (`no_data` or `error`) *and* no evaluated check has a
//!   confirmed failure. A confirmed failure is a fact whatever the missing
//!   checks would have said, and they could only have made things worse, so
//!   rollguard judges on what is known; but it never acts on missing data
//!   alone.
//! - Checks in the observation that the config does not name are ignored; a
//!   configured check missing from the observation is an `error`.

pub mod policy;
pub mod sequential;
pub mod severity;
pub mod stats;
pub mod verification;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_blind;
#[cfg(test)]
mod tests_canary;
#[cfg(test)]
mod tests_policy;
#[cfg(test)]
mod tests_profile;
#[cfg(test)]
mod tests_sequential;
#[cfg(test)]
pub(crate) mod tests_stats;

pub use policy::{decide, default_rules, effective_rules};

use crate::config::{MetricConfig, OnNoData, ProbeConfig, TargetConfig};
use crate::model::{
    Assessment, CheckEvidence, CheckKind, DataImpact, MetricSample, Observation, ProbeResult,
    Severity, TimeToFix, Verdict,
};
use severity::{num, read_metric, worst_configured};
use std::collections::VecDeque;

/// Judges one target tick by tick; holds the streaks that confirmation needs.
///
/// Create one per release (or call [`Judge::reset`]): a streak from the
/// previous release says nothing about this one.
#[derive(Debug, Clone)]
pub struct Judge {
    /// The target's probes, in config order (the order of the evidence).
    probes: Vec<ProbeConfig>,
    /// The target's metrics, in config order.
    metrics: Vec<MetricConfig>,
    /// The target's default time to fix, for callers without an override.
    time_to_fix: TimeToFix,
    /// Consecutive failures per probe, in config order.
    probe_streaks: Vec<u32>,
    /// Consecutive breaches per metric, in config order.
    metric_streaks: Vec<Streak>,
    /// The sequential tests per metric, for this release (unused for a
    /// threshold metric).
    sequential: Vec<sequential::SequentialCheck>,
    /// Each sequential test's share of the target's `alpha`.
    alpha_per_test: f64,
}

/// A metric's run of consecutive breaching ticks.
#[derive(Debug, Clone, Default)]
struct Streak {
    /// Breaching ticks in a row, this one included.
    count: u32,
    /// Severities of the last `confirm` breaching ticks, oldest first.
    recent: VecDeque<Severity>,
}

impl Streak {
    /// Records a breach; returns the severity held over the last `needed`
    /// ticks (the mildest among them).
    fn push(&mut self, severity: Severity, needed: u32) -> Severity {
        self.count = self.count.saturating_add(1);
        self.recent.push_back(severity);
        while self.recent.len() > needed as usize {
            self.recent.pop_front();
        }
        self.recent.iter().copied().min().unwrap_or(severity)
    }
}

impl Judge {
    /// A judge for `target` with no history.
    pub fn new(target: &TargetConfig) -> Judge {
        let tests = target.metric.iter().filter(|m| m.is_sequential()).count();
        Judge {
            probes: target.probe.clone(),
            metrics: target.metric.clone(),
            time_to_fix: target.time_to_fix,
            probe_streaks: vec![0; target.probe.len()],
            metric_streaks: vec![Streak::default(); target.metric.len()],
            sequential: vec![sequential::SequentialCheck::default(); target.metric.len()],
            alpha_per_test: target.alpha / tests.max(1) as f64,
        }
    }

    /// Forgets every streak and test, as for a new release.
    pub fn reset(&mut self) {
        self.probe_streaks.fill(0);
        self.metric_streaks.fill(Streak::default());
        self.sequential.fill(sequential::SequentialCheck::default());
    }

    /// The target's configured time to fix: what to pass to
    /// [`Judge::assess`] when no operator has overridden it.
    pub fn default_time_to_fix(&self) -> TimeToFix {
        self.time_to_fix
    }

    /// Each metric's error rate since the release, in config order: a
    /// count metric's cumulative bad / total at its last tick with data;
    /// `None` for other metrics and before any data. What a rollback's
    /// verification measures the return from.
    pub fn release_rates(&self) -> Vec<Option<f64>> {
        self.metrics
            .iter()
            .zip(&self.sequential)
            .map(|(metric, check)| {
                let counts = check.last.filter(|_| metric.is_count())?;
                (counts.total > 0.0).then(|| counts.bad / counts.total)
            })
            .collect()
    }

    /// Judges one tick. `data_impact` comes from the data checks (`none`
    /// without any); `time_to_fix` is the target's or an operator's estimate.
    pub fn assess(
        &mut self,
        obs: &Observation,
        data_impact: DataImpact,
        time_to_fix: TimeToFix,
    ) -> Assessment {
        let mut evidence = Vec::with_capacity(self.probes.len() + self.metrics.len());
        for (i, probe) in self.probes.iter().enumerate() {
            let result = obs.probes.iter().find(|p| p.name == probe.name);
            let streak = &mut self.probe_streaks[i];
            evidence.push(judge_probe(probe, result, streak));
        }
        for (i, metric) in self.metrics.iter().enumerate() {
            let sample = obs.metrics.iter().find(|m| m.name == metric.name);
            if metric.is_sequential() {
                let check = &mut self.sequential[i];
                evidence.push(sequential::judge(
                    metric,
                    sample,
                    check,
                    self.alpha_per_test,
                ));
            } else {
                let streak = &mut self.metric_streaks[i];
                evidence.push(judge_metric(metric, sample, streak));
            }
        }
        let severity = evidence
            .iter()
            .filter_map(|e| match e.verdict {
                Verdict::Fail(s) => Some(s),
                _ => None,
            })
            .max()
            .unwrap_or(Severity::None);
        let unevaluated = evidence
            .iter()
            .any(|e| matches!(e.verdict, Verdict::NoData | Verdict::Error));
        Assessment {
            severity,
            data_impact,
            time_to_fix,
            inconclusive: unevaluated && severity == Severity::None,
            evidence,
        }
    }
}

/// One probe's verdict this tick.
fn judge_probe(
    probe: &ProbeConfig,
    result: Option<&ProbeResult>,
    streak: &mut u32,
) -> CheckEvidence {
    let name = &probe.name;
    let needed = probe.failures.max(1);
    let mut evidence = CheckEvidence::unknown(name, CheckKind::Probe, needed);
    let Some(result) = result else {
        *streak = 0;
        evidence.reason = format!("{name}: not probed this tick, cannot judge; streak reset");
        return evidence;
    };
    evidence.value = result.status.map(f64::from);
    let what = match (result.status, &result.error) {
        (Some(status), Some(error)) => format!("HTTP {status}, {error}"),
        (Some(status), None) => format!("HTTP {status}"),
        (None, Some(error)) => error.clone(),
        (None, None) => "no response".to_owned(),
    };
    let latency = num(result.latency_ms);
    let slow = probe
        .max_latency
        .filter(|max| result.ok && result.latency_ms > max.as_secs_f64() * 1000.0);
    if result.ok && slow.is_none() {
        *streak = 0;
        evidence.verdict = Verdict::Pass;
        evidence.reason = format!("{name}: ok ({what}, {latency} ms)");
        return evidence;
    }
    let what = match slow {
        Some(max) => format!(
            "{what} but {latency} ms, over max_latency {}",
            humantime::format_duration(max)
        ),
        None => format!("{what}, {latency} ms"),
    };
    *streak = streak.saturating_add(1);
    evidence.streak = *streak;
    evidence.breached_severity = probe.severity;
    if *streak >= needed {
        evidence.verdict = Verdict::Fail(probe.severity);
        evidence.reason = format!(
            "{name} failed: {what}, {} consecutive failures (needs {needed}) → {}",
            *streak, probe.severity
        );
    } else {
        evidence.verdict = Verdict::Pending {
            severity: probe.severity,
            streak: *streak,
            needed,
        };
        evidence.reason = format!(
            "{name} failed: {what}, {} of {needed} consecutive failures: not yet confirmed",
            *streak
        );
    }
    evidence
}

/// One metric's verdict this tick.
fn judge_metric(
    metric: &MetricConfig,
    sample: Option<&MetricSample>,
    streak: &mut Streak,
) -> CheckEvidence {
    let name = &metric.name;
    let needed = metric.confirm.max(1);
    let mut evidence = CheckEvidence::unknown(name, CheckKind::Metric, needed);
    let Some(sample) = sample else {
        *streak = Streak::default();
        evidence.reason = format!("{name}: not measured this tick, cannot judge; streak reset");
        return evidence;
    };
    evidence.value = sample.value;
    evidence.baseline = sample.baseline;
    if let Some(error) = &sample.error {
        *streak = Streak::default();
        evidence.reason = format!(
            "{name}: query failed ({error}): a monitoring problem, not a failure; streak reset"
        );
        return evidence;
    }
    let reading = match sample.value.filter(|v| v.is_finite()) {
        None => Err(format!("{name}: no data")),
        Some(value) => read_metric(metric, value, sample.baseline),
    };
    let (breach, text) = match reading {
        Ok(reading) => {
            evidence.threshold = reading.threshold;
            evidence.ratio = reading.ratio;
            (reading.severity, reading.text)
        }
        Err(why) => match metric.on_no_data {
            OnNoData::Hold => {
                *streak = Streak::default();
                evidence.verdict = Verdict::NoData;
                evidence.reason = format!("{why} (on_no_data = hold): cannot judge; streak reset");
                return evidence;
            }
            OnNoData::Pass => (
                Severity::None,
                format!("{why}, counted as healthy (on_no_data = pass)"),
            ),
            OnNoData::Fail => {
                let worst = worst_configured(metric);
                (
                    worst,
                    format!("{why}, counted as a {worst} breach (on_no_data = fail)"),
                )
            }
        },
    };
    if breach == Severity::None {
        *streak = Streak::default();
        evidence.verdict = Verdict::Pass;
        evidence.reason = text;
        return evidence;
    }
    let held = streak.push(breach, needed);
    evidence.breached_severity = breach;
    evidence.streak = streak.count;
    if streak.count >= needed {
        evidence.verdict = Verdict::Fail(held);
        let ticks = if streak.count == needed {
            format!("{needed} of {needed} ticks")
        } else {
            format!("{} ticks in a row (needs {needed})", streak.count)
        };
        evidence.reason = if held < breach {
            format!("{text}, {ticks}; held {held} over the last {needed} ticks → {held}")
        } else {
            format!("{text}, {ticks} → {held}")
        };
    } else {
        evidence.verdict = Verdict::Pending {
            severity: held,
            streak: streak.count,
            needed,
        };
        evidence.reason = format!(
            "{text}, {} of {needed} ticks: not yet confirmed",
            streak.count
        );
    }
    evidence
}
