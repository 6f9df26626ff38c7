//! One tick's measurements: every probe and every metric query, run side by
//! side, turned into the judge's [`Observation`].

use super::Setup;
use crate::metrics::CheckLabels;
use crate::model::{MetricSample, Observation, ProbeResult};
use crate::probe::HealthProbe;
use crate::probe::prometheus::{BaselineCache, QueryContext};
use crate::state::State;
use futures_util::future::join_all;
use std::time::{SystemTime, UNIX_EPOCH};

/// What the bake window tells the queries.
pub struct Window<'a> {
    /// The version being watched.
    pub version: &'a str,
    /// The version before it.
    pub previous_version: Option<&'a str>,
    /// When it was released.
    pub release_at: SystemTime,
    /// Where the current value's window starts, when not at the release
    /// (verification measures from the rollback).
    pub window_start: Option<SystemTime>,
    /// The release's baselines, fetched once per release.
    pub baselines: &'a BaselineCache,
}

/// Runs every probe and query of the target once.
pub async fn observe(
    state: &State,
    setup: &Setup,
    probes: &[HealthProbe],
    window: &Window<'_>,
    tick: u64,
) -> Observation {
    let target = &setup.target.name;
    let now = setup.services.clock.now();
    let probe_results = join_all(probes.iter().map(|probe| async move {
        // Closed only if the daemon drops the semaphore, which it never
        // does: a probe then runs unbounded rather than not at all.
        let _permit = setup.probe_permits.acquire().await.ok();
        let outcome = probe.check().await;
        state
            .metrics()
            .probe_duration
            .get_or_create(&CheckLabels {
                target: target.clone(),
                check: outcome.name.clone(),
            })
            .observe(outcome.latency.as_secs_f64());
        ProbeResult {
            name: outcome.name,
            ok: outcome.ok,
            status: outcome.status,
            latency_ms: outcome.latency.as_secs_f64() * 1000.0,
            error: outcome.error,
        }
    }));
    let context = QueryContext {
        target: target.clone(),
        version: window.version.to_owned(),
        previous_version: window.previous_version.map(str::to_owned),
        release_at: window.release_at,
        now,
        window_start: window.window_start,
        interval: setup.target.interval,
    };
    let metric_results = join_all(setup.target.metric.iter().map(|metric| {
        let context = &context;
        async move {
            match &setup.querier {
                Some(querier) => {
                    let measurement = querier.sample(metric, context, window.baselines).await;
                    let histogram = state.metrics().query_duration.get_or_create(&CheckLabels {
                        target: target.clone(),
                        check: metric.name.clone(),
                    });
                    for duration in &measurement.durations {
                        histogram.observe(duration.as_secs_f64());
                    }
                    measurement.sample
                }
                None => MetricSample {
                    error: Some(
                        setup
                            .querier_error
                            .clone()
                            .unwrap_or_else(|| "no [prometheus] section is configured".to_owned()),
                    ),
                    ..MetricSample::named(&metric.name)
                },
            }
        }
    }));
    let (probes, metrics) = tokio::join!(probe_results, metric_results);
    Observation {
        tick,
        at_unix_ms: now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        probes,
        metrics,
    }
}
