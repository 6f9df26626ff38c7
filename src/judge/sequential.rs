//! Metrics judged by a sequential test: significance says whether the
//! release is worse than its baseline, the thresholds say how much worse.
//!
//! - **Count metrics** (`errors_query` and `total_query`): the error-rate
//!   e-process of [`super::stats`] on each tick's new events. The severity
//!   comes from the recent rate's lower confidence bound (so that a handful
//!   of requests cannot look like a disaster) read against the thresholds,
//!   or against [`DEFAULT_RATE_LEVELS`] relative to the baseline when the
//!   metric has none. A **fast path** needs no test: when one tick's errors
//!   alone prove the rate is at the critical level (its lower bound, with at
//!   least `min_requests` requests) for `confirm` ticks in a row, and at
//!   least three, the check fails as critical.
//! - **Value metrics** with `test = "sequential"` (a latency quantile per
//!   tick): each tick is one event, bad when the value is above
//!   `max((1 + tolerance) × baseline median, median + min_increase)`; the
//!   same e-process tests that such ticks are no more frequent than before
//!   the release. The severity is the median of the last five values read
//!   against the thresholds, so that one or two slow ticks never set it.
//!
//! A check fails when its test has rejected **and** the current severity is
//! above `none`: a release that is significantly but only slightly worse
//! (below every level) passes, and one whose regression has gone away
//! passes again. Before the test rejects, a reading above `none` is
//! `pending`.

mod blind;
mod burn;
mod check;
mod estimate;
mod fast;
mod levels;

use burn::budget_burn;
pub(in crate::judge) use check::SequentialCheck;
use check::Tests;
use estimate::best_estimate;
use fast::fast_path;
pub use levels::{DEFAULT_RATE_LEVELS, RateLevel, default_levels};

use super::Streak;
use super::severity::{num, read_metric};
use crate::config::{BaselineKind, MetricConfig, OnNoData};
use crate::model::{CheckEvidence, CheckKind, MetricSample, Severity, Statistic, Verdict};

/// Standard errors of the bounds that set a count metric's severity: the
/// rate is at least this bad with 90% confidence (one-sided).
const SEVERITY_Z: f64 = 1.2816;

/// Standard errors with which one tick must prove the critical level for
/// the fast path: 99% confidence (one-sided).
const FAST_PATH_Z: f64 = 2.3263;

/// Ticks in a row the fast path needs at least (more with a larger
/// `confirm`): a one- or two-tick spike never rolls back, however bad.
const FAST_PATH_TICKS: u32 = 3;

/// Weight of each older tick in the recent rate that sets a count
/// metric's severity: about the last ten ticks count.
const RECENT_DISCOUNT: f64 = 0.9;

/// Values whose median sets a value metric's severity: five, so that a
/// one- or two-tick spike never sets it, even on top of evidence that a
/// slow drift has built up.
const RECENT_VALUES: usize = 5;

/// The Wilson score bound of a rate from `bad` of `total` events: the
/// lower bound at `z` standard errors (negative `z`: the upper one). Closed
/// form, so that a tick of a thousand targets stays cheap, and increasing
/// in `bad`.
fn rate_bound(total: f64, bad: f64, z: f64) -> f64 {
    if total <= 0.0 {
        return 0.0;
    }
    let p = (bad / total).clamp(0.0, 1.0);
    let z2 = z * z;
    let centre = p + z2 / (2.0 * total);
    let spread = z * (p * (1.0 - p) / total + z2 / (4.0 * total * total)).sqrt();
    ((centre - spread) / (1.0 + z2 / total)).clamp(0.0, 1.0)
}

/// What one tick brought: the value the severity is read from and whether
/// the tick had data at all.
struct TickData {
    /// The value to read against the thresholds.
    value: Option<f64>,
    /// A count metric's tick alone: its rate, the rate proven at the fast
    /// path's confidence, and its events.
    proven: Option<(f64, f64, f64)>,
    /// Whether the tick had data.
    any: bool,
}

/// One sequential metric's verdict this tick.
pub(in crate::judge) fn judge(
    metric: &MetricConfig,
    sample: Option<&MetricSample>,
    check: &mut SequentialCheck,
    alpha: f64,
) -> CheckEvidence {
    let name = &metric.name;
    let needed = metric.confirm.max(1);
    let mut evidence = CheckEvidence::unknown(name, CheckKind::Metric, needed);
    let Some(sample) = sample else {
        check.fast = Streak::default();
        evidence.reason = format!("{name}: not measured this tick, cannot judge; streak reset");
        return evidence;
    };
    if let Some(error) = &sample.error {
        check.fast = Streak::default();
        evidence.reason = format!(
            "{name}: query failed ({error}): a monitoring problem, not a failure; the test waits"
        );
        return evidence;
    }
    check.prepare(metric, sample, alpha);
    if let Some(why) = blind::blind(metric, sample, check) {
        // Not fed to the test: a zero nobody measured is no evidence of
        // health. Held whatever `on_no_data` says, since the requests
        // flow; `empty_means_zero` is the way to say empty is zero.
        check.fast = Streak::default();
        evidence.baseline = sample.baseline.or(check.baseline);
        evidence.verdict = Verdict::NoData;
        evidence.reason = format!("{why}; cannot judge, the test waits for data");
        evidence.blind = metric.errors_query.clone();
        return evidence;
    }
    let tick = take_tick(metric, sample, check);
    evidence.baseline = check.baseline;
    evidence.value = tick.value;
    evidence.statistic = check.test.as_ref().map(|t| Statistic {
        e_value: t.e_value(),
        threshold: t.threshold(),
        null_rate: t.null_rate(),
        rejected: t.rejected,
    });

    if !tick.any && check.test.as_ref().is_none_or(|t| !t.rejected) {
        check.fast = Streak::default();
        return no_data(metric, evidence, format!("{name}: no data"));
    }
    if let Some(fast) = fast_path(metric, check, &tick, &mut evidence) {
        return fast;
    }
    let (Some(test), Some(reading_config)) = (&check.test, &check.reading) else {
        return no_data(
            metric,
            evidence,
            format!("{name}: no baseline data before the release, the test cannot start"),
        );
    };
    let Some(value) = tick.value else {
        return no_data(metric, evidence, format!("{name}: no data yet"));
    };
    let reading = match read_metric(reading_config, value, check.baseline) {
        Ok(reading) => reading,
        Err(why) => return no_data(metric, evidence, why),
    };
    evidence.threshold = reading.threshold;
    evidence.ratio = reading.ratio;
    let mut reading = reading;
    let canary = metric.is_count() && metric.baseline == BaselineKind::Canary;
    if let (true, Some(so_far)) = (metric.is_count(), check.last) {
        // The value read is a lower bound, not the rate itself: say so,
        // with what was counted.
        let stable = match check.stable_last.filter(|_| canary) {
            Some(s) => format!("; the stable version: {} of {}", num(s.bad), num(s.total)),
            None => String::new(),
        };
        reading.text = format!(
            "{} (the rate's 90% lower bound; {} of {} requests failed since the release{stable})",
            reading.text,
            num(so_far.bad),
            num(so_far.total)
        );
    }
    if metric.is_count() && test.rejected {
        best_estimate(reading_config, check, &mut reading);
        evidence.threshold = reading.threshold;
    }
    if let Some(burn) = budget_burn(metric, value, check.baseline) {
        reading.text = format!("{}; {}", reading.text, burn.text);
        if burn.severity > reading.severity {
            reading.severity = burn.severity;
            evidence.threshold = burn.threshold;
        }
    }
    // A canary's null has no absolute floor (the split cannot test one):
    // the floor is a condition beside the test.
    let short = canary
        .then(|| below_floor(metric, check))
        .flatten()
        .filter(|_| reading.severity > Severity::None);
    if let Some(short) = &short {
        reading.text = format!("{}; {short}", reading.text);
        reading.severity = Severity::None;
    }
    let e = format!(
        "e-value {} of {} against ≤ {}",
        num(test.e_value()),
        num(test.threshold()),
        null_text(metric, check, test.null_rate())
    );
    let than = if canary {
        "the stable version"
    } else {
        "before the release"
    };
    if reading.severity == Severity::None {
        check.pending = 0;
        evidence.verdict = Verdict::Pass;
        let why = if short.is_some() {
            "but by too little"
        } else {
            "but below every level"
        };
        evidence.reason = if test.rejected {
            format!(
                "{}; worse than {than} ({e}), {why}: not worth acting on",
                reading.text
            )
        } else {
            format!("{}; {e}", reading.text)
        };
        return evidence;
    }
    evidence.breached_severity = reading.severity;
    if test.rejected {
        check.pending = 0;
        evidence.verdict = Verdict::Fail(reading.severity);
        evidence.reason = format!(
            "{}; significantly worse than {than} ({e}) → {}",
            reading.text, reading.severity
        );
    } else {
        check.pending = check.pending.saturating_add(1);
        evidence.streak = check.pending;
        evidence.verdict = Verdict::Pending {
            severity: reading.severity,
            streak: check.pending,
            needed,
        };
        evidence.reason = format!("{}; not yet significant ({e})", reading.text);
    }
    evidence
}

/// Feeds this tick's data to the test; what it brought.
fn take_tick(
    metric: &MetricConfig,
    sample: &MetricSample,
    check: &mut SequentialCheck,
) -> TickData {
    if metric.is_count() {
        let canary = metric.baseline == BaselineKind::Canary;
        // A canary's tick counts only with the stable's beside it: both
        // versions' increments then span the same ticks, and what moves
        // both together cancels in the split.
        let (Some(counts), stable) = (sample.counts, sample.stable_counts) else {
            return TickData {
                value: recent_rate(check),
                proven: None,
                any: false,
            };
        };
        if canary && stable.is_none() {
            return TickData {
                value: recent_rate(check),
                proven: None,
                any: false,
            };
        }
        let new = check.increment(counts);
        let dispersion = check.test.as_ref().map_or(1.0, Tests::dispersion);
        if let Some(stable) = stable.filter(|_| canary) {
            let new_stable = check.increment_stable(stable);
            if let Some(test) = &mut check.test {
                test.update_split(Some(new), Some(new_stable));
            }
            check.follow_stable(metric);
        } else if let Some(test) = &mut check.test {
            test.update_counts(new.total, new.bad);
        }
        check.recent = (
            RECENT_DISCOUNT * check.recent.0 + new.total / dispersion,
            RECENT_DISCOUNT * check.recent.1 + new.bad / dispersion,
        );
        if new.total > 0.0 {
            remember(
                check,
                rate_bound(new.total / dispersion, new.bad / dispersion, SEVERITY_Z),
            );
        }
        let proven = (new.total >= metric.min_requests.max(1.0)).then(|| {
            let lower = rate_bound(new.total, new.bad, FAST_PATH_Z);
            (new.bad / new.total, lower, new.total)
        });
        return TickData {
            value: recent_rate(check),
            proven,
            any: true,
        };
    }
    let value = sample.value.filter(|v| v.is_finite());
    if let Some(v) = value {
        if let Some(test) = &mut check.test {
            test.update_value(metric.direction, v);
        }
        remember(check, v);
    }
    let recent: Vec<f64> = check.values.iter().copied().collect();
    TickData {
        value: crate::numeric::median(&recent),
        proven: None,
        any: value.is_some(),
    }
}

/// Keeps `value` among the last [`RECENT_VALUES`] of the check.
fn remember(check: &mut SequentialCheck, value: f64) {
    check.values.push_back(value);
    while check.values.len() > RECENT_VALUES {
        check.values.pop_front();
    }
}

/// The rate the severity is read from: the highest of three lower bounds
/// at [`SEVERITY_Z`], on counts deflated by the dispersion factor:
///
/// - the median of the last five ticks' own bounds, which follows a rate
///   that climbs (a slow burn) within three ticks at high traffic, and
///   which one or two spiking ticks cannot set;
/// - the discounted recent rate's, which pools about ten ticks at moderate
///   traffic;
/// - the rate since the release's, which says the most at low traffic.
fn recent_rate(check: &SequentialCheck) -> Option<f64> {
    let (total, bad) = check.recent;
    let dispersion = check.test.as_ref().map_or(1.0, Tests::dispersion);
    let since = check
        .last
        .map(|c| rate_bound(c.total / dispersion, c.bad / dispersion, SEVERITY_Z));
    let ticks: Vec<f64> = check.values.iter().copied().collect();
    let per_tick = if ticks.len() == RECENT_VALUES {
        crate::numeric::median(&ticks)
    } else {
        None
    };
    (total > 0.0).then(|| {
        rate_bound(total, bad, SEVERITY_Z)
            .max(since.unwrap_or(0.0))
            .max(per_tick.unwrap_or(0.0))
    })
}

/// No data, as `on_no_data` says.
fn no_data(metric: &MetricConfig, mut evidence: CheckEvidence, why: String) -> CheckEvidence {
    match metric.on_no_data {
        OnNoData::Hold | OnNoData::Fail => {
            // A sequential check never fails on missing data: the test
            // simply gets no evidence. `fail` makes no sense for it.
            evidence.verdict = Verdict::NoData;
            evidence.reason = format!("{why}: cannot judge, the test waits for data");
        }
        OnNoData::Pass => {
            evidence.verdict = Verdict::Pass;
            evidence.reason = format!("{why}, counted as healthy (on_no_data = pass)");
        }
    }
    evidence
}

/// The null's boundary in words: a rate, or a share of slow ticks.
fn null_text(metric: &MetricConfig, check: &SequentialCheck, null: f64) -> String {
    match check.bound {
        Some(bound) if !metric.is_count() => {
            format!("{}% of ticks beyond {}", num(null * 100.0), num(bound))
        }
        _ if metric.baseline == BaselineKind::Canary => format!(
            "{}, {}× the stable's rate",
            num(null),
            num(1.0 + metric.tolerance)
        ),
        _ => num(null),
    }
}

/// A canary whose rate since the release is not `min_increase` above the
/// stable's (on both best estimates): in words, why that is not worth
/// acting on; `None` when it is above the floor.
fn below_floor(metric: &MetricConfig, check: &SequentialCheck) -> Option<String> {
    let canary = check.last.and_then(|c| c.rate())?;
    let stable = check.baseline?;
    let floor = metric.min_increase();
    (canary < stable + floor).then(|| {
        format!(
            "the canary's rate since the release, {}, is less than min_increase {} above the stable's {}",
            num(canary),
            num(floor),
            num(stable)
        )
    })
}
