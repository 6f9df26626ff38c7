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
//!   least `min_requests` requests) for `confirm` ticks in a row, the check
//!   fails as critical.
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

use super::Streak;
use super::severity::{num, read_metric};
use super::stats::{self, ErrorBaseline, ErrorRateSettings, ErrorRateTest};
use crate::config::{BaselineKind, Direction, MetricConfig, OnNoData, Thresholds};
use crate::model::{CheckEvidence, CheckKind, Counts, MetricSample, Severity, Statistic, Verdict};
use std::collections::VecDeque;

/// Levels of a count metric without thresholds: (severity, ratio to the
/// baseline rate, absolute increase). Each level is at
/// `max(ratio × baseline, baseline + increase)`: critical at 10x and +5
/// points (failing for a large share of users), low at 1.5x and +0.5
/// points (noticeable, harmless).
pub const DEFAULT_RATE_LEVELS: [(Severity, f64, f64); 4] = [
    (Severity::Critical, 10.0, 0.05),
    (Severity::High, 5.0, 0.02),
    (Severity::Medium, 2.0, 0.01),
    (Severity::Low, 1.5, 0.005),
];

/// Standard errors of the bounds that set a count metric's severity: the
/// rate is at least this bad with 90% confidence (one-sided).
const SEVERITY_Z: f64 = 1.2816;

/// Standard errors with which one tick must prove the critical level for
/// the fast path: 99% confidence (one-sided).
const FAST_PATH_Z: f64 = 2.3263;

/// Ticks in a row the fast path needs at least (more with a larger
/// `confirm`): a one- or two-tick spike never rolls back, however bad.
const FAST_PATH_TICKS: u32 = 3;

/// The smallest increase in the share of slow ticks a value metric's test
/// looks for: 5 points more ticks above the bound than before.
const EXCEEDANCE_MIN_INCREASE: f64 = 0.05;

/// Weight of each older tick in the recent rate that sets a count
/// metric's severity: about the last ten ticks count.
const RECENT_DISCOUNT: f64 = 0.9;

/// Values whose median sets a value metric's severity: five, so that a
/// one- or two-tick spike never sets it, even on top of evidence that a
/// slow drift has built up.
const RECENT_VALUES: usize = 5;

/// Multiples of a value metric's first bound at which its further tests
/// count slow ticks: a tick far beyond the baseline is much stronger
/// evidence than one just above it, and one count of "above" cannot say so.
const BOUND_STEPS: [f64; 3] = [1.0, 2.0, 4.0];

/// A check's sequential test: one e-process, or for a value metric the
/// average of one per bound (an average of e-processes is one).
#[derive(Debug, Clone)]
struct Tests {
    /// The e-processes, with the bound each counts ticks beyond (value
    /// metrics only).
    parts: Vec<(Option<f64>, ErrorRateTest)>,
    /// Whether the average has reached the threshold on some tick.
    rejected: bool,
}

impl Tests {
    fn one(test: ErrorRateTest) -> Tests {
        Tests {
            parts: vec![(None, test)],
            rejected: false,
        }
    }

    /// The average e-value.
    fn e_value(&self) -> f64 {
        let sum: f64 = self.parts.iter().map(|(_, t)| t.e_value()).sum();
        sum / self.parts.len().max(1) as f64
    }

    /// 1/α_e, the same for every part.
    fn threshold(&self) -> f64 {
        self.parts
            .first()
            .map_or(f64::INFINITY, |(_, t)| t.threshold())
    }

    /// The first part's null rate.
    fn null_rate(&self) -> f64 {
        self.parts.first().map_or(0.0, |(_, t)| t.null_rate())
    }

    /// The first part's dispersion factor.
    fn dispersion(&self) -> f64 {
        self.parts.first().map_or(1.0, |(_, t)| t.dispersion())
    }

    /// Feeds `(events, bad)` to the only part.
    fn update_counts(&mut self, total: f64, bad: f64) {
        if let Some((_, test)) = self.parts.first_mut() {
            test.update(Some((total, bad)));
        }
        self.settle();
    }

    /// Feeds one value: one event per part, bad beyond its bound.
    fn update_value(&mut self, direction: Direction, value: f64) {
        for (bound, test) in &mut self.parts {
            let beyond = bound.is_some_and(|b| orient(direction, value) > orient(direction, b));
            test.update(Some((1.0, if beyond { 1.0 } else { 0.0 })));
        }
        self.settle();
    }

    fn settle(&mut self) {
        if self.e_value() >= self.threshold() {
            self.rejected = true;
        }
    }
}

/// One sequential check's state over one release.
#[derive(Debug, Clone, Default)]
pub(super) struct SequentialCheck {
    /// The test, once the baseline is known.
    test: Option<Tests>,
    /// The metric with the thresholds the severity is read against (the
    /// configured ones, or [`DEFAULT_RATE_LEVELS`] made absolute).
    reading: Option<MetricConfig>,
    /// The baseline: the rate of a count metric, the median of a value
    /// metric; `None` when the metric has no baseline.
    baseline: Option<f64>,
    /// A value metric's first bound: the tolerance beyond the baseline.
    bound: Option<f64>,
    /// Cumulative counts at the previous tick with data.
    last: Option<Counts>,
    /// Discounted recent `(events, bad)` of a count metric, deflated.
    recent: (f64, f64),
    /// Last values of a value metric, oldest first.
    values: VecDeque<f64>,
    /// The fast path's run of ticks that prove the critical level.
    fast: Streak,
    /// Ticks in a row with a reading above `none` before the test rejects.
    pending: u32,
}

impl SequentialCheck {
    /// Builds the test from the sample's baseline, once. `alpha` is this
    /// check's share of the target's budget.
    fn prepare(&mut self, metric: &MetricConfig, sample: &MetricSample, alpha: f64) {
        if self.test.is_some() {
            return;
        }
        let settings = ErrorRateSettings {
            delta: metric.tolerance,
            min_increase: metric.min_increase(),
            alpha,
        };
        if metric.is_count() {
            self.prepare_counts(metric, sample, &settings);
        } else {
            self.prepare_series(metric, sample, &settings);
        }
    }

    fn prepare_counts(
        &mut self,
        metric: &MetricConfig,
        sample: &MetricSample,
        settings: &ErrorRateSettings,
    ) {
        if metric.baseline == BaselineKind::None {
            let Some(&(_, mildest)) = metric.thresholds.levels().last() else {
                return;
            };
            self.test = Some(Tests::one(ErrorRateTest::against(mildest, 1.0, settings)));
            self.reading = Some(metric.clone());
            return;
        }
        let ticks: Vec<(f64, f64)> = sample
            .baseline_counts
            .iter()
            .map(|c| (c.total, c.bad))
            .collect();
        let Some(baseline) = ErrorBaseline::from_ticks(&ticks, settings.alpha) else {
            return;
        };
        self.test = Some(Tests::one(ErrorRateTest::new(&baseline, settings)));
        self.baseline = Some(baseline.rate);
        let mut reading = metric.clone();
        if reading.thresholds.levels().is_empty() {
            reading.thresholds = default_levels(baseline.rate);
        }
        self.reading = Some(reading);
    }

    fn prepare_series(
        &mut self,
        metric: &MetricConfig,
        sample: &MetricSample,
        settings: &ErrorRateSettings,
    ) {
        let Some(median) = stats::median(&sample.baseline_series) else {
            return;
        };
        let (tolerance, floor) = (metric.tolerance, metric.min_increase());
        let bound = match metric.direction {
            Direction::Increase => ((1.0 + tolerance) * median).max(median + floor),
            Direction::Decrease => (median / (1.0 + tolerance)).min(median - floor),
        };
        let series: Vec<f64> = sample
            .baseline_series
            .iter()
            .map(|&v| orient(metric.direction, v))
            .collect();
        let exceedance = ErrorRateSettings {
            delta: settings.delta,
            min_increase: EXCEEDANCE_MIN_INCREASE,
            ..*settings
        };
        // Each part's baseline bound gets α/(2J), Ville's bound on the
        // average α/2: the check's α holds as a whole.
        let per_part = settings.alpha / BOUND_STEPS.len() as f64;
        let mut parts = Vec::with_capacity(BOUND_STEPS.len());
        for step in BOUND_STEPS {
            let b = match metric.direction {
                Direction::Increase => bound * step,
                Direction::Decrease => bound / step,
            };
            let blocks = stats::exceedance_blocks(&series, orient(metric.direction, b));
            let Some(baseline) = ErrorBaseline::from_ticks(&blocks, per_part) else {
                return;
            };
            parts.push((Some(b), ErrorRateTest::new(&baseline, &exceedance)));
        }
        self.test = Some(Tests {
            parts,
            rejected: false,
        });
        self.baseline = Some(median);
        self.bound = Some(bound);
        self.reading = Some(metric.clone());
    }

    /// This tick's new events: the difference from the last cumulative
    /// counts, or the counts themselves after a restart of the window.
    fn increment(&mut self, counts: Counts) -> Counts {
        let new = match self.last {
            Some(last) if counts.total >= last.total && counts.bad >= last.bad => Counts {
                total: counts.total - last.total,
                bad: (counts.bad - last.bad).min(counts.total - last.total),
            },
            _ => counts,
        };
        self.last = Some(counts);
        new
    }
}

/// A value in "higher is worse" orientation.
fn orient(direction: Direction, value: f64) -> f64 {
    match direction {
        Direction::Increase => value,
        Direction::Decrease => -value,
    }
}

/// [`DEFAULT_RATE_LEVELS`] made absolute for a baseline rate, at most 1.
pub fn default_levels(baseline: f64) -> Thresholds {
    let level = |i: usize| {
        let (_, ratio, increase) = DEFAULT_RATE_LEVELS[i];
        Some((ratio * baseline).max(baseline + increase).min(1.0))
    };
    Thresholds {
        critical: level(0),
        high: level(1),
        medium: level(2),
        low: level(3),
    }
}

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
pub(super) fn judge(
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
    let e = format!(
        "e-value {} of {} against ≤ {}",
        num(test.e_value()),
        num(test.threshold()),
        null_text(metric, check, test.null_rate())
    );
    if reading.severity == Severity::None {
        check.pending = 0;
        evidence.verdict = Verdict::Pass;
        evidence.reason = if test.rejected {
            format!(
                "{}; worse than before the release ({e}), but below every level: not worth acting on",
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
            "{}; significantly worse than before the release ({e}) → {}",
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
        let Some(counts) = sample.counts else {
            return TickData {
                value: recent_rate(check),
                proven: None,
                any: false,
            };
        };
        let new = check.increment(counts);
        let dispersion = check.test.as_ref().map_or(1.0, Tests::dispersion);
        if let Some(test) = &mut check.test {
            test.update_counts(new.total, new.bad);
        }
        check.recent = (
            RECENT_DISCOUNT * check.recent.0 + new.total / dispersion,
            RECENT_DISCOUNT * check.recent.1 + new.bad / dispersion,
        );
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
        check.values.push_back(v);
        while check.values.len() > RECENT_VALUES {
            check.values.pop_front();
        }
    }
    let recent: Vec<f64> = check.values.iter().copied().collect();
    TickData {
        value: stats::median(&recent),
        proven: None,
        any: value.is_some(),
    }
}

/// The rate the severity is read from: the lower bound at [`SEVERITY_Z`]
/// of the recent rate or, when it says more (at low traffic, where the
/// recent ticks hold few requests), of the rate since the release; on
/// counts deflated by the dispersion factor.
fn recent_rate(check: &SequentialCheck) -> Option<f64> {
    let (total, bad) = check.recent;
    let dispersion = check.test.as_ref().map_or(1.0, Tests::dispersion);
    let since = check
        .last
        .map(|c| rate_bound(c.total / dispersion, c.bad / dispersion, SEVERITY_Z));
    (total > 0.0).then(|| rate_bound(total, bad, SEVERITY_Z).max(since.unwrap_or(0.0)))
}

/// The fast path of a count metric: this tick's errors alone prove the
/// critical level, `confirm` ticks in a row.
fn fast_path(
    metric: &MetricConfig,
    check: &mut SequentialCheck,
    tick: &TickData,
    evidence: &mut CheckEvidence,
) -> Option<CheckEvidence> {
    let critical = check
        .reading
        .as_ref()
        .and_then(|r| r.thresholds.critical)
        .or(metric.thresholds.critical)?;
    let baseline_below = check.baseline.is_none_or(|b| b < critical);
    let Some((rate, lower, total)) = tick
        .proven
        .filter(|(_, lower, _)| *lower >= critical && baseline_below)
    else {
        check.fast = Streak::default();
        return None;
    };
    let needed = metric.confirm.max(FAST_PATH_TICKS);
    check.fast.push(Severity::Critical, needed);
    if check.fast.count < needed {
        return None;
    }
    let mut out = evidence.clone();
    out.verdict = Verdict::Fail(Severity::Critical);
    out.breached_severity = Severity::Critical;
    out.threshold = Some(critical);
    out.streak = check.fast.count;
    out.reason = format!(
        "{} {} over {} requests this tick, at least {} with 99% confidence ≥ critical {}, {} ticks in a row: the fast path → critical",
        metric.name,
        num(rate),
        num(total),
        num(lower),
        num(critical),
        check.fast.count
    );
    Some(out)
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
        _ => num(null),
    }
}
