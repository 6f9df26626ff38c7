//! A sequential check's state over one release: its test, built once from
//! the baseline, and what the judge remembers from tick to tick.

use super::super::Streak;
use super::super::stats::{
    self, CanaryTest, ErrorBaseline, ErrorRateSettings, ErrorRateTest, ProfiledTest,
};
use super::levels::default_levels;
use crate::config::{BaselineKind, Direction, MetricConfig};
use crate::model::{Counts, MetricSample};
use std::collections::VecDeque;

/// The smallest increase in the share of slow ticks a value metric's test
/// looks for: 5 points more ticks above the bound than before.
const EXCEEDANCE_MIN_INCREASE: f64 = 0.05;

/// Multiples of a value metric's first bound at which its further tests
/// count slow ticks: a tick far beyond the baseline is much stronger
/// evidence than one just above it, and one count of "above" cannot say so.
const BOUND_STEPS: [f64; 3] = [1.0, 2.0, 4.0];

/// One e-process of a check.
#[derive(Debug, Clone)]
pub(super) enum Process {
    /// Against a fixed null rate (an upper bound of the baseline's, or the
    /// mildest threshold). Boxed: its alternatives are inline.
    Bound(Box<ErrorRateTest>),
    /// Against the baseline, its rate profiled out.
    Profiled(ProfiledTest),
    /// A canary against the stable version beside it: fed through
    /// [`Tests::update_split`], never one count alone.
    Canary(CanaryTest),
}

impl Process {
    fn update(&mut self, counts: (f64, f64)) {
        match self {
            Process::Bound(t) => t.update(Some(counts)),
            Process::Profiled(t) => t.update(Some(counts)),
            // One version's counts say nothing about the split.
            Process::Canary(_) => {}
        }
    }

    fn e_value(&self) -> f64 {
        match self {
            Process::Bound(t) => t.e_value(),
            Process::Profiled(t) => t.e_value(),
            Process::Canary(t) => t.e_value(),
        }
    }

    fn threshold(&self) -> f64 {
        match self {
            Process::Bound(t) => t.threshold(),
            Process::Profiled(t) => t.threshold(),
            Process::Canary(t) => t.threshold(),
        }
    }

    fn null_rate(&self) -> f64 {
        match self {
            Process::Bound(t) => t.null_rate(),
            Process::Profiled(t) => t.null_rate(),
            Process::Canary(t) => t.null_rate(),
        }
    }

    fn dispersion(&self) -> f64 {
        match self {
            Process::Bound(t) => t.dispersion(),
            Process::Profiled(t) => t.dispersion(),
            Process::Canary(_) => 1.0,
        }
    }
}

/// A check's sequential test: one e-process, or for a value metric the
/// average of one per bound (an average of e-processes is one).
#[derive(Debug, Clone)]
pub(super) struct Tests {
    /// The e-processes, with the bound each counts ticks beyond (value
    /// metrics only).
    pub(super) parts: Vec<(Option<f64>, Process)>,
    /// Whether the average has reached the threshold on some tick.
    pub(super) rejected: bool,
}

impl Tests {
    fn one(test: Process) -> Tests {
        Tests {
            parts: vec![(None, test)],
            rejected: false,
        }
    }

    /// The average e-value.
    pub(super) fn e_value(&self) -> f64 {
        let sum: f64 = self.parts.iter().map(|(_, t)| t.e_value()).sum();
        sum / self.parts.len().max(1) as f64
    }

    /// 1/α_e, the same for every part.
    pub(super) fn threshold(&self) -> f64 {
        self.parts
            .first()
            .map_or(f64::INFINITY, |(_, t)| t.threshold())
    }

    /// The first part's null rate.
    pub(super) fn null_rate(&self) -> f64 {
        self.parts.first().map_or(0.0, |(_, t)| t.null_rate())
    }

    /// The first part's dispersion factor.
    pub(super) fn dispersion(&self) -> f64 {
        self.parts.first().map_or(1.0, |(_, t)| t.dispersion())
    }

    /// Feeds `(events, bad)` to the only part.
    pub(super) fn update_counts(&mut self, total: f64, bad: f64) {
        if let Some((_, test)) = self.parts.first_mut() {
            test.update((total, bad));
        }
        self.settle();
    }

    /// Feeds a canary's and its stable's new `(events, bad)` to the only
    /// part; `None`: that side had no data this tick.
    pub(super) fn update_split(&mut self, canary: Option<Counts>, stable: Option<Counts>) {
        if let Some((_, Process::Canary(test))) = self.parts.first_mut() {
            let pair = |c: Counts| (c.total, c.bad);
            test.update(canary.map(pair), stable.map(pair));
        }
        self.settle();
    }

    /// The canary test, for a check with `baseline = "canary"`.
    pub(super) fn canary(&self) -> Option<&CanaryTest> {
        match self.parts.first() {
            Some((_, Process::Canary(test))) => Some(test),
            _ => None,
        }
    }

    /// Feeds one value: one event per part, bad beyond its bound.
    pub(super) fn update_value(&mut self, direction: Direction, value: f64) {
        for (bound, test) in &mut self.parts {
            let beyond = bound.is_some_and(|b| orient(direction, value) > orient(direction, b));
            test.update((1.0, if beyond { 1.0 } else { 0.0 }));
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
pub(in crate::judge) struct SequentialCheck {
    /// The test, once the baseline is known.
    pub(super) test: Option<Tests>,
    /// The metric with the thresholds the severity is read against (the
    /// configured ones, or [`super::DEFAULT_RATE_LEVELS`] made absolute).
    pub(super) reading: Option<MetricConfig>,
    /// The baseline: the rate of a count metric, the median of a value
    /// metric; `None` when the metric has no baseline.
    pub(super) baseline: Option<f64>,
    /// A value metric's first bound: the tolerance beyond the baseline.
    pub(super) bound: Option<f64>,
    /// Cumulative counts at the previous tick with data.
    pub(in crate::judge) last: Option<Counts>,
    /// The stable version's cumulative counts at the previous tick with
    /// data (`baseline = "canary"`).
    pub(super) stable_last: Option<Counts>,
    /// Discounted recent `(events, bad)` of a count metric, deflated.
    pub(super) recent: (f64, f64),
    /// Last values of a value metric, or a count metric's per-tick rate
    /// bounds, oldest first.
    pub(super) values: VecDeque<f64>,
    /// The fast path's run of ticks that prove the critical level.
    pub(super) fast: Streak,
    /// Ticks in a row with a reading above `none` before the test rejects.
    pub(super) pending: u32,
}

impl SequentialCheck {
    /// Builds the test from the sample's baseline, once. `alpha` is this
    /// check's share of the target's budget.
    pub(super) fn prepare(&mut self, metric: &MetricConfig, sample: &MetricSample, alpha: f64) {
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
        if metric.baseline == BaselineKind::Canary {
            // Nothing to estimate: the whole α goes to Ville. The levels
            // follow the stable's rate tick by tick (`follow_stable`).
            self.test = Some(Tests::one(Process::Canary(CanaryTest::new(settings))));
            self.reading = Some(metric.clone());
            return;
        }
        if metric.baseline == BaselineKind::None {
            let Some(&(_, mildest)) = metric.thresholds.levels().last() else {
                return;
            };
            self.test = Some(Tests::one(Process::Bound(Box::new(
                ErrorRateTest::against(mildest, 1.0, settings),
            ))));
            self.reading = Some(metric.clone());
            return;
        }
        let ticks: Vec<(f64, f64)> = sample
            .baseline_counts
            .iter()
            .map(|c| (c.total, c.bad))
            .collect();
        // The profiled test where the baseline has the blocks for it; a
        // baseline of a few minutes gets the union bound.
        let (rate, process) = match ProfiledTest::new(&ticks, settings) {
            Some(profiled) => (profiled.baseline_rate(), Process::Profiled(profiled)),
            None => {
                let Some(baseline) = ErrorBaseline::from_ticks(&ticks, settings.alpha) else {
                    return;
                };
                let test = ErrorRateTest::new(&baseline, settings);
                (baseline.rate, Process::Bound(Box::new(test)))
            }
        };
        self.test = Some(Tests::one(process));
        self.baseline = Some(rate);
        let mut reading = metric.clone();
        if reading.thresholds.levels().is_empty() {
            reading.thresholds = default_levels(rate);
        }
        self.reading = Some(reading);
    }

    fn prepare_series(
        &mut self,
        metric: &MetricConfig,
        sample: &MetricSample,
        settings: &ErrorRateSettings,
    ) {
        let Some(median) = crate::numeric::median(&sample.baseline_series) else {
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
        let bounds: Vec<f64> = BOUND_STEPS
            .iter()
            .map(|step| match metric.direction {
                Direction::Increase => bound * step,
                Direction::Decrease => bound / step,
            })
            .collect();
        let blocks: Vec<Vec<(f64, f64)>> = bounds
            .iter()
            .map(|&b| stats::exceedance_blocks(&series, orient(metric.direction, b)))
            .collect();
        // Profiled parts where every part has the blocks for it: the
        // average then rejects at 1/α. Otherwise the union bound: each
        // part's baseline bound gets α/(2J), Ville's bound on the average
        // α/2, so that the check's α holds as a whole.
        let profiled: Option<Vec<Process>> = blocks
            .iter()
            .map(|b| ProfiledTest::new(b, &exceedance).map(Process::Profiled))
            .collect();
        let processes = match profiled {
            Some(processes) => processes,
            None => {
                let per_part = settings.alpha / BOUND_STEPS.len() as f64;
                let Some(processes) = blocks
                    .iter()
                    .map(|b| {
                        let baseline = ErrorBaseline::from_ticks(b, per_part)?;
                        let test = ErrorRateTest::new(&baseline, &exceedance);
                        Some(Process::Bound(Box::new(test)))
                    })
                    .collect::<Option<Vec<Process>>>()
                else {
                    return;
                };
                processes
            }
        };
        let parts = bounds.into_iter().map(Some).zip(processes).collect();
        self.test = Some(Tests {
            parts,
            rejected: false,
        });
        self.baseline = Some(median);
        self.bound = Some(bound);
        self.reading = Some(metric.clone());
    }

    /// This tick's new events: the difference from the highest counts seen
    /// so far, or the counts themselves after a restart of the window.
    ///
    /// Prometheus' `increase()` extrapolates, so counts since the release
    /// may dip a little from one tick to the next while nothing happens;
    /// a dip is no events (and the highest counts stay the reference, so
    /// nothing is counted twice when they climb back). Only a fall below
    /// half of what was counted is a window that started again.
    pub(super) fn increment(&mut self, counts: Counts) -> Counts {
        increment(&mut self.last, counts)
    }

    /// The stable version's new events this tick, as [`Self::increment`].
    pub(super) fn increment_stable(&mut self, counts: Counts) -> Counts {
        increment(&mut self.stable_last, counts)
    }

    /// With `baseline = "canary"`: the baseline is the stable's rate since
    /// the release, and a metric without thresholds reads its levels
    /// relative to that rate, as a `pre_release` one does to its baseline.
    pub(super) fn follow_stable(&mut self, metric: &MetricConfig) {
        let Some(rate) = self
            .test
            .as_ref()
            .and_then(Tests::canary)
            .and_then(CanaryTest::stable_rate)
        else {
            return;
        };
        self.baseline = Some(rate);
        if metric.thresholds.levels().is_empty()
            && let Some(reading) = &mut self.reading
        {
            reading.thresholds = default_levels(rate);
        }
    }
}

/// New events since `last` (updated): see [`SequentialCheck::increment`].
fn increment(last: &mut Option<Counts>, counts: Counts) -> Counts {
    let Some(previous) = *last else {
        *last = Some(counts);
        return counts;
    };
    if counts.total < 0.5 * previous.total {
        *last = Some(counts);
        return counts;
    }
    let total = (counts.total - previous.total).max(0.0);
    let bad = (counts.bad - previous.bad).max(0.0).min(total);
    *last = Some(Counts {
        total: counts.total.max(previous.total),
        bad: counts.bad.max(previous.bad),
    });
    Counts { total, bad }
}

/// A value in "higher is worse" orientation.
pub(super) fn orient(direction: Direction, value: f64) -> f64 {
    match direction {
        Direction::Increase => value,
        Direction::Decrease => -value,
    }
}
