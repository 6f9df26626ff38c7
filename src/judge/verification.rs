//! Whether a rolled-back target is back to its pre-release baseline: the
//! evidence a rollback needs before rollguard calls it complete.
//!
//! Verification is not the bake window's question ("is it significantly
//! worse?"), which a handful of requests always answers "not yet". It asks
//! the opposite, and needs evidence for it:
//!
//! - **Probes**: every probe passes on [`PROBE_PASSES`] rounds in a row.
//! - **Count metrics** (error rate), over the errors and requests counted
//!   since the rollback began:
//!   - the observed rate is at most the *normal limit*,
//!     `max(BACK_RATIO × baseline, baseline + max(min_increase, 0.1 points))`: the complement
//!     of the mildest regression the default severities report (errors
//!     ×2), so no reportable regression is left;
//!   - and, with [`CONFIDENCE`] (the one-sided Clopper-Pearson upper bound),
//!     the rate is at most the normal limit or [`RELEASE_SHARE`] of the
//!     rate the bad release had, whichever is more: the regression is gone,
//!     with evidence in proportion to how bad it was. After a release that
//!     failed 40% of its requests, 30 clean requests show that; after
//!     one that took 0.1% to 0.5%, it takes about 3 / 0.2% = 1,500.
//!
//!   While there are too few requests, the reason says how many are needed.
//! - **Other metrics** (latency, thresholds): no breach of their own
//!   thresholds and `min_ratio` (the metric's definition of worse) or, for
//!   a metric judged by the sequential test against the default levels
//!   alone, at most [`BACK_VALUE_RATIO`] × the baseline, on
//!   [`VALUE_PASSES`] rounds in a row.
//!   Informational metrics (no thresholds, no `min_ratio`) are not waited
//!   for.
//! - Missing data or a monitoring error is never "back": the round is
//!   unknown, and verification keeps waiting until its time runs out.
//!
//! Pure: the daemon's verifier feeds it each round's observation and the
//! judge's assessment of it.

use crate::config::{Direction, MetricConfig, TargetConfig};
use crate::model::{Assessment, CheckEvidence, MetricSample, Observation, Severity, Verdict};
use statrs::distribution::{Beta, ContinuousCDF};

/// Consecutive passing rounds a probe needs.
pub const PROBE_PASSES: u32 = 3;
/// Consecutive rounds a non-count metric must be back.
pub const VALUE_PASSES: u32 = 3;
/// Confidence of the error rate's upper bound.
pub const CONFIDENCE: f64 = 0.95;
/// An error rate is back when it is at most this multiple of the baseline
/// (or the baseline plus the metric's `min_increase`, whichever is more):
/// errors ×2 is the mildest regression the default severities report.
pub const BACK_RATIO: f64 = 2.0;
/// The smallest absolute excess over the baseline that still counts as
/// back (0.1 points of error rate), or the metric's `min_increase` where
/// that is more: the test's default floor (0.02 points) is for seeing a
/// regression early, not for calling a recovery incomplete.
pub const VERIFY_MIN_INCREASE: f64 = 0.001;
/// Share of the bad release's error rate that the rate since the rollback
/// must be below, with [`CONFIDENCE`], when that is more than the normal
/// limit.
pub const RELEASE_SHARE: f64 = 0.25;
/// A value metric (p99) is back when at most this multiple of its baseline:
/// p99 ×1.5 is the mildest latency regression the defaults report.
pub const BACK_VALUE_RATIO: f64 = 1.5;

/// What one round of verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round {
    /// Every check is back, with the evidence in one line.
    Back(String),
    /// Some check is not back (or has too little evidence yet), and why.
    NotYet(String),
    /// Some check could not be measured; never counts as back.
    Unknown(String),
}

/// One check's standing in a round.
enum Standing {
    Back(String),
    NotYet(String),
    Unknown(String),
}

/// Verification of one rollback: the streaks across its rounds.
#[derive(Debug, Clone)]
pub struct Verification {
    probes: Vec<(String, u32)>,
    metrics: Vec<(MetricConfig, u32)>,
    release_rates: Vec<Option<f64>>,
}

impl Verification {
    /// A verification of `target`'s checks, before any round.
    pub fn new(target: &TargetConfig) -> Verification {
        Verification {
            probes: target.probe.iter().map(|p| (p.name.clone(), 0)).collect(),
            metrics: target.metric.iter().map(|m| (m.clone(), 0)).collect(),
            release_rates: Vec::new(),
        }
    }

    /// The bad release's error rate per metric, in config order
    /// ([`crate::judge::Judge::release_rates`]): the return from it is
    /// what needs evidence.
    pub fn with_release_rates(mut self, rates: Vec<Option<f64>>) -> Verification {
        self.release_rates = rates;
        self
    }

    /// Takes in one round: the observation since the rollback began and
    /// the judge's assessment of it (evidence: probes first, then metrics,
    /// in config order, as [`crate::judge::Judge::assess`] gives it).
    pub fn round(&mut self, observation: &Observation, assessment: &Assessment) -> Round {
        let mut standings = Vec::new();
        let probe_count = self.probes.len();
        for (i, (name, streak)) in self.probes.iter_mut().enumerate() {
            let evidence = assessment.evidence.get(i);
            standings.push(probe(name, evidence, streak));
        }
        for (j, (metric, streak)) in self.metrics.iter_mut().enumerate() {
            let evidence = assessment.evidence.get(probe_count + j);
            let sample = observation.metrics.iter().find(|m| m.name == metric.name);
            if metric.is_count() {
                let release = self.release_rates.get(j).copied().flatten();
                standings.push(count_metric(metric, evidence, sample, release));
            } else if judged(metric) {
                standings.push(value_metric(metric, evidence, streak));
            }
        }
        let (mut back, mut not_yet, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
        for standing in standings {
            match standing {
                Standing::Back(s) => back.push(s),
                Standing::NotYet(s) => not_yet.push(s),
                Standing::Unknown(s) => unknown.push(s),
            }
        }
        if !not_yet.is_empty() {
            Round::NotYet(not_yet.join("; "))
        } else if !unknown.is_empty() {
            Round::Unknown(unknown.join("; "))
        } else if back.is_empty() {
            Round::Back("no probes or metrics to verify with".to_owned())
        } else {
            Round::Back(back.join("; "))
        }
    }
}

fn probe(name: &str, evidence: Option<&CheckEvidence>, streak: &mut u32) -> Standing {
    let Some(evidence) = evidence else {
        *streak = 0;
        return Standing::Unknown(format!("probe {name} was not run"));
    };
    match evidence.verdict {
        Verdict::Pass => {
            *streak += 1;
            if *streak >= PROBE_PASSES {
                Standing::Back(format!("probe {name} passed {streak} times in a row"))
            } else {
                Standing::NotYet(format!(
                    "probe {name} passed {streak} of the {PROBE_PASSES} times in a row needed"
                ))
            }
        }
        Verdict::Fail(_) | Verdict::Pending { .. } => {
            *streak = 0;
            Standing::NotYet(evidence.reason.clone())
        }
        Verdict::NoData | Verdict::Error => {
            *streak = 0;
            Standing::Unknown(evidence.reason.clone())
        }
    }
}

/// Whether a value metric can breach at all: an informational one (no
/// thresholds, no `min_ratio`, no sequential test) never holds
/// verification up.
fn judged(metric: &MetricConfig) -> bool {
    metric.is_sequential() || metric.min_ratio.is_some() || !metric.thresholds.levels().is_empty()
}

fn value_metric(
    metric: &MetricConfig,
    evidence: Option<&CheckEvidence>,
    streak: &mut u32,
) -> Standing {
    let name = &metric.name;
    let Some(evidence) = evidence else {
        *streak = 0;
        return Standing::Unknown(format!("{name} was not measured"));
    };
    match evidence.verdict {
        Verdict::NoData | Verdict::Error => {
            *streak = 0;
            return Standing::Unknown(evidence.reason.clone());
        }
        Verdict::Fail(_) | Verdict::Pending { .. } => {
            *streak = 0;
            return Standing::NotYet(evidence.reason.clone());
        }
        Verdict::Pass => {}
    }
    if evidence.breached_severity > Severity::None {
        *streak = 0;
        return Standing::NotYet(evidence.reason.clone());
    }
    // A metric with thresholds or `min_ratio` is back when it no longer
    // breaches them (its owner's definition of worse); one judged by the
    // sequential test alone against its default levels must also be
    // within BACK_VALUE_RATIO of its baseline.
    let own_levels = metric.min_ratio.is_some() || !metric.thresholds.levels().is_empty();
    let ratio = evidence.ratio.filter(|r| r.is_finite() && !own_levels);
    let far = match (ratio, metric.direction) {
        (Some(r), Direction::Increase) => r > BACK_VALUE_RATIO,
        (Some(r), Direction::Decrease) => r < 1.0 / BACK_VALUE_RATIO,
        (None, _) => false,
    };
    if far {
        *streak = 0;
        return Standing::NotYet(format!(
            "{name} is {} the baseline {} (back means within {BACK_VALUE_RATIO}x)",
            times(ratio.unwrap_or(f64::NAN)),
            num(evidence.baseline.unwrap_or(f64::NAN)),
        ));
    }
    *streak += 1;
    let against = match (evidence.value, evidence.baseline) {
        (Some(v), Some(b)) => format!("{} against baseline {}", num(v), num(b)),
        (Some(v), None) => num(v),
        _ => "no breach".to_owned(),
    };
    if *streak >= VALUE_PASSES {
        Standing::Back(format!("{name} {against}, {streak} rounds in a row"))
    } else {
        Standing::NotYet(format!(
            "{name} {against}: {streak} of the {VALUE_PASSES} rounds in a row needed"
        ))
    }
}

fn count_metric(
    metric: &MetricConfig,
    evidence: Option<&CheckEvidence>,
    sample: Option<&MetricSample>,
    release_rate: Option<f64>,
) -> Standing {
    let name = &metric.name;
    if let Some(e) = evidence {
        match e.verdict {
            Verdict::Fail(_) | Verdict::Pending { .. } => {
                return Standing::NotYet(e.reason.clone());
            }
            Verdict::Error => return Standing::Unknown(e.reason.clone()),
            Verdict::NoData | Verdict::Pass => {}
        }
    }
    let Some(sample) = sample else {
        return Standing::Unknown(format!("{name} was not measured"));
    };
    if let Some(error) = &sample.error {
        return Standing::Unknown(format!("{name}: {error}"));
    }
    let Some(counts) = sample.counts else {
        return Standing::Unknown(format!("{name}: no counts since the rollback"));
    };
    let (n, k) = (counts.total, counts.bad);
    // The pre-release baseline or, for `baseline = "canary"`, the stable
    // version's counts over the same window.
    let (base_n, base_k) = sample
        .baseline_counts
        .iter()
        .chain(&sample.stable_counts)
        .fold((0.0, 0.0), |(n, k), c| (n + c.total, k + c.bad));
    let baseline = (base_n > 0.0).then(|| base_k / base_n);
    let limit = rate_limit(baseline, metric.min_increase().max(VERIFY_MIN_INCREASE));
    let baseline_text =
        baseline.map_or("no baseline".to_owned(), |b| format!("baseline {}", pct(b)));
    if n < 1.0 {
        return Standing::NotYet(format!(
            "{name}: no requests since the rollback yet ({baseline_text})"
        ));
    }
    let rate = k / n;
    let upper = upper_bound(k, n);
    let bound = release_rate
        .filter(|r| r.is_finite())
        .map_or(limit, |r| (r * RELEASE_SHARE).max(limit));
    let so_far = format!(
        "{name}: {} errors in {} requests since the rollback ({})",
        count(k),
        count(n),
        pct(rate)
    );
    let from = release_rate.map_or(String::new(), |r| {
        format!(", {} before the rollback", pct(r))
    });
    if rate > limit {
        return Standing::NotYet(format!(
            "{so_far}: above {} ({baseline_text}{from})",
            pct(limit)
        ));
    }
    if upper <= bound {
        return Standing::Back(format!(
            "{so_far}, at most {} with {:.0}% confidence ({baseline_text}{from})",
            pct(upper),
            CONFIDENCE * 100.0,
        ));
    }
    let needed = requests_needed(rate.max(baseline.unwrap_or(0.0)), bound);
    let more = needed.map_or("many more requests".to_owned(), |m| {
        format!("about {} requests in all", count(m.max(n + 1.0)))
    });
    Standing::NotYet(format!(
        "{so_far}: too few requests to show it is at most {} with {:.0}% confidence \
         ({baseline_text}{from}); needs {more}",
        pct(bound),
        CONFIDENCE * 100.0,
    ))
}

/// The highest error rate still "back": `max(BACK_RATIO × baseline,
/// baseline + min_increase)`, or `min_increase` without a baseline.
pub fn rate_limit(baseline: Option<f64>, min_increase: f64) -> f64 {
    let b = baseline
        .filter(|b| b.is_finite() && *b >= 0.0)
        .unwrap_or(0.0);
    (BACK_RATIO * b).max(b + min_increase).min(1.0)
}

/// The one-sided Clopper-Pearson upper bound at [`CONFIDENCE`] of a rate
/// with `k` bad events in `n`.
pub fn upper_bound(k: f64, n: f64) -> f64 {
    if n.is_nan() || n <= 0.0 || k >= n {
        return 1.0;
    }
    let k = k.max(0.0);
    Beta::new(k + 1.0, n - k)
        .map(|b| b.inverse_cdf(CONFIDENCE))
        .ok()
        .filter(|u| u.is_finite())
        .unwrap_or(1.0)
}

/// Requests needed, at `rate`, for the upper bound to reach `limit`;
/// `None` when the rate is too close to the limit for that to be useful
/// (more than 100 million requests).
pub fn requests_needed(rate: f64, limit: f64) -> Option<f64> {
    if rate.is_nan() || rate >= limit {
        return None;
    }
    let mut n = 16.0_f64;
    while n <= 1e8 {
        if upper_bound((rate * n).round(), n) <= limit {
            return Some(n);
        }
        n *= 2.0;
    }
    None
}

fn pct(rate: f64) -> String {
    let p = rate * 100.0;
    if p != 0.0 && p.abs() < 0.01 {
        format!("{p:.4}%")
    } else {
        format!("{p:.2}%")
    }
}

fn count(x: f64) -> String {
    format!("{}", x.round() as i64)
}

fn num(x: f64) -> String {
    format!("{}", (x * 1000.0).round() / 1000.0)
}

fn times(r: f64) -> String {
    format!("{:.1}x", r)
}

#[cfg(test)]
#[path = "tests_verification.rs"]
mod tests;
