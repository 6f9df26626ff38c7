//! Queries of metrics judged by a sequential test (docs/judge.md).
//!
//! - A **count metric** runs `errors_query` and `total_query` with
//!   `{{window}}` since the release (or the rollback, when verifying): the
//!   counts so far, from which the judge takes each tick's new events. An
//!   empty answer from `errors_query` while `total_query` has one is
//!   counted as no errors (a `code=~"5.."` selector matches no series
//!   until the first error) and marked `errors_empty`: whether it really
//!   is no errors or a renamed error metric is the judge's call.
//! - A **sequential value metric** runs `query` over the tick's own window
//!   (`interval`, at least `prometheus.min_window`, but never reaching back
//!   before the release): one value per tick, as the test needs, not a
//!   value over everything since the release.
//! - A count metric with `baseline = "canary"` runs `stable_errors_query`
//!   and `stable_total_query` beside them, over the same window at the
//!   same time: the stable version's counts so far (`stable_counts`), whose
//!   rate is the sample's baseline.
//! - Their **baseline** is a range query over `baseline_window` before the
//!   release, one point per step of `max(interval, min_window)` for a value
//!   metric and of at least a minute for counts (a count over less than a
//!   couple of scrapes is mostly extrapolation), each point over its own
//!   step. It is fetched once per release (`baselines.rs`).

use super::answer::points;
use super::baselines::{self, Baseline, BaselineCache};
use super::{Measurement, MetricQuerier, QueryContext, render, timeout_param};
use crate::config::{BaselineKind, MetricConfig};
use crate::model::{Counts, MetricSample};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The shortest step of a count metric's baseline.
const MIN_COUNT_STEP: Duration = Duration::from_secs(60);

impl MetricQuerier {
    /// Measures a sequential metric: the current counts or value and,
    /// unless cached, the baseline. Never fails: a problem is in
    /// `sample.error`.
    pub(super) async fn sample_sequential(
        &self,
        metric: &MetricConfig,
        ctx: &QueryContext,
        cache: &BaselineCache,
    ) -> Measurement {
        let mut sample = MetricSample::named(&metric.name);
        let mut durations = Vec::new();
        let mut errors = Vec::new();
        let timeout = metric.timeout.unwrap_or(self.timeout);
        let start = ctx.window_start.unwrap_or(ctx.release_at);
        // Exactly since the window start, never reaching back before it:
        // `min_window` does not apply, since a longer window would slide
        // over the previous version's requests for its first seconds. A
        // window too short for `increase()` or `rate()` gives no data, and
        // the test waits.
        let since = ctx.now.duration_since(start).unwrap_or_default();
        let current = async {
            if let (Some(errors_q), Some(total_q)) = (&metric.errors_query, &metric.total_query) {
                let (counts, spent) = self.counts(errors_q, total_q, ctx, since, timeout).await;
                (counts.map(Some), None, spent)
            } else {
                let window = since.min(self.tick_window(ctx));
                let value = self
                    .instant_rendered(&metric.query, ctx, window, ctx.now, timeout)
                    .await;
                (Ok(None), Some(value.0), vec![value.1])
            }
        };
        // With `baseline = "canary"`, the stable version's counts over the
        // same window, side by side with the canary's.
        let stable = async {
            match (
                metric.baseline,
                &metric.stable_errors_query,
                &metric.stable_total_query,
            ) {
                (BaselineKind::Canary, Some(errors_q), Some(total_q)) if metric.is_count() => {
                    let (counts, spent) = self.counts(errors_q, total_q, ctx, since, timeout).await;
                    Some((counts.map(|c| c.map(|(counts, _)| counts)), spent))
                }
                _ => None,
            }
        };
        let (current, stable, baseline) =
            tokio::join!(current, stable, self.baseline(metric, ctx, timeout, cache));
        let (counts, value, spent) = current;
        durations.extend(spent);
        if let Some((stable, spent)) = stable {
            durations.extend(spent);
            match stable {
                Ok(counts) => {
                    sample.stable_counts = counts;
                    sample.baseline = counts.and_then(|c| c.rate());
                }
                Err(e) => errors.push(format!("stable: {e}")),
            }
        }
        match counts {
            Ok(counts) => {
                let counts = counts.flatten();
                sample.counts = counts.map(|(counts, _)| counts);
                sample.errors_empty = counts.is_some_and(|(_, empty)| empty);
            }
            Err(e) => errors.push(e),
        }
        match value {
            Some(Ok(v)) => sample.value = v,
            Some(Err(e)) => errors.push(e),
            None => sample.value = sample.counts.and_then(|c| c.rate()),
        }
        let (baseline, spent) = baseline;
        durations.extend(spent);
        match baseline {
            Ok(Some(Baseline::Counts(counts))) => {
                let (n, k) = counts
                    .iter()
                    .fold((0.0, 0.0), |a, c| (a.0 + c.total, a.1 + c.bad));
                sample.baseline = (n > 0.0).then(|| k / n);
                sample.baseline_counts = counts;
            }
            Ok(Some(Baseline::Series(values))) => {
                sample.baseline = crate::numeric::median(&values);
                sample.baseline_series = values;
            }
            Ok(Some(Baseline::Value(value))) => sample.baseline = Some(value),
            Ok(None) => {}
            Err(e) => errors.push(format!("baseline: {e}")),
        }
        if !errors.is_empty() {
            sample.error = Some(errors.join("; "));
        }
        Measurement { sample, durations }
    }

    /// A count metric's errors and events over `window` up to now, queried
    /// side by side, and whether the errors query answered with nothing:
    /// that is counted as no errors (a `code=~"5.."` selector matches
    /// nothing until the first) and said, for the judge to weigh. An empty
    /// answer from the events query is no data.
    async fn counts(
        &self,
        errors_q: &str,
        total_q: &str,
        ctx: &QueryContext,
        window: Duration,
        timeout: Duration,
    ) -> (Result<Option<(Counts, bool)>, String>, Vec<Duration>) {
        let (bad, total) = tokio::join!(
            self.instant_rendered(errors_q, ctx, window, ctx.now, timeout),
            self.instant_rendered(total_q, ctx, window, ctx.now, timeout)
        );
        (counts_of(bad.0, total.0), vec![bad.1, total.1])
    }

    /// A value metric's per-tick window: the interval, at least
    /// `min_window`.
    fn tick_window(&self, ctx: &QueryContext) -> Duration {
        ctx.interval.max(self.min_window)
    }

    /// The metric's baseline for this release: cached, or fetched now.
    async fn baseline<'a>(
        &self,
        metric: &'a MetricConfig,
        ctx: &QueryContext,
        timeout: Duration,
        cache: &BaselineCache,
    ) -> (Result<Option<Baseline>, String>, Vec<Duration>) {
        if metric.baseline != BaselineKind::PreRelease {
            return (Ok(None), Vec::new());
        }
        let key = baselines::key(metric, ctx);
        if let Some(cached) = cache.get(&key) {
            return (Ok(Some(cached)), Vec::new());
        }
        let step = if metric.is_count() {
            self.tick_window(ctx).max(MIN_COUNT_STEP)
        } else {
            self.tick_window(ctx)
        }
        .min(metric.baseline_window)
        .max(Duration::from_secs(1));
        let points = (metric.baseline_window.as_secs_f64() / step.as_secs_f64())
            .floor()
            .max(1.0);
        let end = ctx.release_at;
        let start = end.checked_sub(step.mul_f64(points - 1.0)).unwrap_or(end);
        let span = (start, end);
        let range = |query: &'a str| self.range_rendered(query, ctx, step, span, timeout);
        let (result, spent) = match (&metric.errors_query, &metric.total_query) {
            (Some(errors_q), Some(total_q)) => {
                let (bad, total) = tokio::join!(range(errors_q), range(total_q));
                let result = match (bad.0, total.0) {
                    (Ok(bad), Ok(total)) => Ok(Baseline::Counts(
                        total
                            .iter()
                            .filter_map(|(at, t)| {
                                Counts::checked(*t, bad.get(at).copied().unwrap_or(0.0))
                            })
                            .collect(),
                    )),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                };
                (result, vec![bad.1, total.1])
            }
            _ => {
                let values = range(&metric.query).await;
                (
                    values
                        .0
                        .map(|v| Baseline::Series(v.into_values().collect())),
                    vec![values.1],
                )
            }
        };
        if let Ok(baseline) = &result {
            let empty = match baseline {
                // No request at all before the release is no baseline
                // either (Prometheus catching up, or an idle service).
                Baseline::Counts(c) => c.iter().all(|c| c.total <= 0.0),
                Baseline::Series(s) => s.is_empty(),
                Baseline::Value(_) => false,
            };
            // An empty baseline may be Prometheus still catching up: ask
            // again next tick rather than remember "nothing".
            if !empty {
                cache.put(key, baseline.clone());
            }
        }
        (result.map(Some), spent)
    }

    /// `query` rendered with `window` and evaluated at `at`.
    async fn instant_rendered(
        &self,
        query: &str,
        ctx: &QueryContext,
        window: Duration,
        at: SystemTime,
        timeout: Duration,
    ) -> (Result<Option<f64>, String>, Duration) {
        match render(query, ctx, window) {
            Ok(query) => self.instant(&query, at, timeout).await,
            Err(e) => (Err(format!("cannot render the query: {e}")), Duration::ZERO),
        }
    }

    /// `query` rendered with `{{window}}` = `step`, evaluated every `step`
    /// over `span`: finite values by timestamp (ms). Sent once however
    /// many ask for it at the same time.
    async fn range_rendered(
        &self,
        query: &str,
        ctx: &QueryContext,
        step: Duration,
        span: (SystemTime, SystemTime),
        timeout: Duration,
    ) -> RangeAnswer {
        let query = match render(query, ctx, step) {
            Ok(query) => query,
            Err(e) => return (Err(format!("cannot render the query: {e}")), Duration::ZERO),
        };
        let key = format!(
            "{:?}\n{}\n{}\n{query}",
            span,
            step.as_millis(),
            timeout.as_millis()
        );
        let querier = self.clone();
        self.ranges
            .run(key, move || {
                Box::pin(async move { querier.send_range(query, step, span, timeout).await })
            })
            .await
    }

    /// Sends one range query (see [`Self::range_rendered`]).
    async fn send_range(
        &self,
        query: String,
        step: Duration,
        span: (SystemTime, SystemTime),
        timeout: Duration,
    ) -> RangeAnswer {
        let seconds = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        };
        let params = [
            ("query", query),
            ("start", seconds(span.0).to_string()),
            ("end", seconds(span.1).to_string()),
            ("step", step.as_secs_f64().to_string()),
            ("timeout", timeout_param(timeout)),
        ];
        let _permit = self.query_permit().await;
        let started = Instant::now();
        let result = match tokio::time::timeout(timeout, self.fetch(&self.range_url, &params)).await
        {
            Err(_) => Err(format!(
                "timed out after {}",
                super::human_duration(timeout)
            )),
            Ok(Err(error)) => Err(error),
            Ok(Ok(data)) => points(&data),
        };
        (result, started.elapsed())
    }
}

/// A count metric's counts from its two answers, and whether the errors
/// answer was empty (counted as 0); `None` without events.
fn counts_of(
    bad: Result<Option<f64>, String>,
    total: Result<Option<f64>, String>,
) -> Result<Option<(Counts, bool)>, String> {
    let (bad, total) = (bad?, total?);
    Ok(total
        .and_then(|t| Counts::checked(t, bad.unwrap_or(0.0)))
        .map(|counts| (counts, bad.is_none())))
}

/// A range query's values by timestamp (ms), or why not, and its latency.
pub(super) type RangeAnswer = (Result<BTreeMap<i64, f64>, String>, Duration);
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_errors_answer_is_counted_as_zero_and_said() {
        let counts = |total: f64, bad: f64| Counts { total, bad };
        assert_eq!(
            counts_of(Ok(None), Ok(Some(120.0))),
            Ok(Some((counts(120.0, 0.0), true)))
        );
        assert_eq!(
            counts_of(Ok(Some(0.0)), Ok(Some(120.0))),
            Ok(Some((counts(120.0, 0.0), false)))
        );
        assert_eq!(
            counts_of(Ok(Some(3.0)), Ok(Some(120.0))),
            Ok(Some((counts(120.0, 3.0), false)))
        );
        assert_eq!(counts_of(Ok(None), Ok(None)), Ok(None));
        assert_eq!(
            counts_of(Ok(None), Err("down".to_owned())),
            Err("down".to_owned())
        );
    }
}
