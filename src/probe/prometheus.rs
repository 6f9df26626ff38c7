//! `[[target.metric]]` queries against Prometheus' HTTP API, with their
//! baselines.
//!
//! One [`MetricQuerier`] serves every metric of the daemon. Each tick it turns
//! a metric and a [`QueryContext`] (which release, how old) into a
//! [`MetricSample`]: the post-release value, the baseline and, when
//! Prometheus could not answer, why. It never judges: no data and errors are
//! reported as such and the judge decides what they mean.

mod answer;
mod baselines;
mod in_flight;
mod request;
mod sequential;

pub use baselines::BaselineCache;

use crate::config::{BaselineKind, ByteSize, MetricConfig, PrometheusConfig};
use crate::http::human_duration;
use crate::model::MetricSample;
use crate::template::{self, TemplateError};
use answer::single_value;
use reqwest::Url;
use reqwest::header::HeaderValue;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Why a [`MetricQuerier`] cannot be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum QuerierError {
    /// `prometheus.url` is not a usable base URL.
    #[error("prometheus.url `{url}` is not usable: {reason}")]
    Url {
        /// The configured URL.
        url: String,
        /// Why it is not usable.
        reason: String,
    },
    /// `prometheus.bearer_token_file` cannot be read.
    #[error("cannot read prometheus.bearer_token_file {}: {source}", path.display())]
    TokenFile {
        /// The configured file.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },
    /// The token file is empty or holds characters a header cannot carry.
    /// The token itself is never part of the message.
    #[error("prometheus.bearer_token_file {} does not hold a usable token ({reason})", path.display())]
    BadToken {
        /// The configured file.
        path: PathBuf,
        /// What is wrong with it, without the token.
        reason: &'static str,
    },
}

/// Which release a tick measures, and when: everything a query's rendering
/// and evaluation time depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryContext {
    /// The target's name, for `{{target}}`.
    pub target: String,
    /// The release's version, for `{{version}}`.
    pub version: String,
    /// The version before it, for `{{previous_version}}` (empty when unknown).
    pub previous_version: Option<String>,
    /// When the release was seen: the end of the `pre_release` baseline.
    pub release_at: SystemTime,
    /// The tick's time: when the post-release value is evaluated.
    pub now: SystemTime,
    /// Where the current value's `{{window}}` starts when it is not the
    /// release: verifying a rollback measures from the rollback, while its
    /// baseline stays what was normal before the bad release.
    pub window_start: Option<SystemTime>,
    /// The target's tick: the window of a sequential value metric's
    /// per-tick value and the step of its baseline (with `min_window`).
    pub interval: Duration,
}

/// The PromQL a metric runs in one tick, as sent: for evidence and logs.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedQueries {
    /// The post-release query, evaluated at `QueryContext::now`.
    pub current: String,
    /// The baseline query, if the metric has a baseline.
    pub baseline: Option<String>,
    /// When the baseline query is evaluated (the release for `pre_release`,
    /// now for `canary`).
    pub baseline_at: Option<SystemTime>,
}

/// One metric measured in one tick, with how long Prometheus took.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// What the judge gets.
    pub sample: MetricSample,
    /// Latency of each query sent (the current one first, then the
    /// baseline), for `rollguard_query_duration_seconds`.
    pub durations: Vec<Duration>,
}

/// Runs metric queries against one Prometheus; cheap to clone (the HTTP
/// connection pool is shared).
#[derive(Clone)]
pub struct MetricQuerier {
    /// The daemon's shared HTTP client.
    http: reqwest::Client,
    /// `<prometheus.url>/api/v1/query`: instant queries.
    query_url: Url,
    /// `<prometheus.url>/api/v1/query_range`: baselines over time.
    range_url: Url,
    /// `prometheus.max_response_bytes`: the most of one answer read; past
    /// it the query is an error (`request.rs`).
    max_response_bytes: ByteSize,
    /// `prometheus.max_series`: the most series counted in one answer;
    /// past it the query is an error (`answer.rs`).
    max_series: usize,
    /// `Bearer <token>`, marked sensitive so that it never shows in debug
    /// output; read once at construction so a tick does no file I/O.
    authorization: Option<HeaderValue>,
    /// `prometheus.timeout`: used when a metric sets none.
    timeout: Duration,
    /// `prometheus.min_window`: the shortest post-release `{{window}}`.
    min_window: Duration,
    /// `prometheus.max_concurrent_queries` permits, shared by every target:
    /// a query waits for one before it is sent. reqwest has no hard
    /// per-host connection cap; this bound on requests in flight is what
    /// bounds the connections to Prometheus.
    permits: Arc<Semaphore>,
    /// Instant queries in flight, so that identical ones (two metrics
    /// sharing a query, in one tick) are sent once.
    instants: in_flight::InFlight<Answer>,
    /// Range queries in flight, likewise.
    ranges: in_flight::InFlight<sequential::RangeAnswer>,
}

/// An instant query's one number (or why not) and its latency.
type Answer = (Result<Option<f64>, String>, Duration);

impl std::fmt::Debug for MetricQuerier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricQuerier")
            .field("url", &self.query_url.as_str())
            .field("bearer_token", &self.authorization.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .field("min_window", &self.min_window)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("max_series", &self.max_series)
            .finish()
    }
}

impl MetricQuerier {
    /// Builds a querier over `http` (the daemon's
    /// [`crate::http::http_client`]),
    /// reading the bearer token file now.
    pub fn new(config: &PrometheusConfig, http: reqwest::Client) -> Result<Self, QuerierError> {
        let unusable = |reason: String| QuerierError::Url {
            url: config.url.clone(),
            reason,
        };
        let base = Url::parse(&config.url).map_err(|error| unusable(error.to_string()))?;
        if base.cannot_be_a_base() {
            return Err(unusable("it cannot have a path".to_owned()));
        }
        let authorization = match &config.bearer_token_file {
            None => None,
            Some(path) => Some(read_token(path)?),
        };
        Ok(MetricQuerier {
            http,
            query_url: request::api_url(&base, "api/v1/query"),
            range_url: request::api_url(&base, "api/v1/query_range"),
            max_response_bytes: config.max_response_bytes,
            max_series: config.max_series,
            authorization,
            timeout: config.timeout,
            min_window: config.min_window,
            permits: Arc::new(Semaphore::new(config.max_concurrent_queries.max(1))),
            instants: in_flight::InFlight::default(),
            ranges: in_flight::InFlight::default(),
        })
    }

    /// The queries `metric` runs for `ctx`, rendered as they are sent.
    pub fn rendered_queries(
        &self,
        metric: &MetricConfig,
        ctx: &QueryContext,
    ) -> Result<RenderedQueries, TemplateError> {
        let window = post_release_window(
            ctx.window_start.unwrap_or(ctx.release_at),
            ctx.now,
            self.min_window,
        );
        let current = render(&metric.query, ctx, window)?;
        let (baseline, baseline_at) = match metric.baseline {
            BaselineKind::None => (None, None),
            BaselineKind::PreRelease => (
                Some(render(&metric.query, ctx, metric.baseline_window)?),
                Some(ctx.release_at),
            ),
            BaselineKind::Canary => match &metric.stable_query {
                Some(stable) => (Some(render(stable, ctx, window)?), Some(ctx.now)),
                None => (None, None),
            },
        };
        Ok(RenderedQueries {
            current,
            baseline,
            baseline_at,
        })
    }

    /// Measures `metric` for `ctx`: the current value and the baseline,
    /// queried side by side. A `pre_release` baseline is taken from
    /// `cache` (the release's baselines) once it has been fetched. Never
    /// fails: a problem is in `sample.error`.
    pub async fn sample(
        &self,
        metric: &MetricConfig,
        ctx: &QueryContext,
        cache: &BaselineCache,
    ) -> Measurement {
        if metric.is_sequential() {
            return self.sample_sequential(metric, ctx, cache).await;
        }
        let mut sample = MetricSample::named(&metric.name);
        let queries = match self.rendered_queries(metric, ctx) {
            Ok(queries) => queries,
            Err(error) => {
                sample.error = Some(format!("cannot render the query: {error}"));
                return Measurement {
                    sample,
                    durations: Vec::new(),
                };
            }
        };
        if metric.baseline == BaselineKind::Canary && queries.baseline.is_none() {
            sample.error = Some("baseline `canary` needs a `stable_query`".to_owned());
        }
        let timeout = metric.timeout.unwrap_or(self.timeout);
        let current = self.instant(&queries.current, ctx.now, timeout);
        let mut durations = Vec::with_capacity(2);
        // A pre-release baseline is one value that does not change.
        let key =
            (metric.baseline == BaselineKind::PreRelease).then(|| baselines::key(metric, ctx));
        let cached = key.as_ref().and_then(|key| cache.get(key));
        match (&queries.baseline, queries.baseline_at, cached) {
            (Some(_), Some(_), Some(baselines::Baseline::Value(value))) => {
                let current = current.await;
                durations.push(current.1);
                apply(&mut sample, current.0, Ok(Some(value)));
            }
            (Some(query), Some(at), _) => {
                let (current, baseline) = tokio::join!(current, self.instant(query, at, timeout));
                durations.extend([current.1, baseline.1]);
                if let (Some(key), Ok(Some(value))) = (key, &baseline.0) {
                    cache.put(key, baselines::Baseline::Value(*value));
                }
                apply(&mut sample, current.0, baseline.0);
            }
            _ => {
                let current = current.await;
                durations.push(current.1);
                apply(&mut sample, current.0, Ok(None));
            }
        }
        Measurement { sample, durations }
    }

    /// One instant query evaluated at `at`, reduced to one number, with its
    /// latency; sent once however many ask for it at the same time.
    async fn instant(&self, query: &str, at: SystemTime, timeout: Duration) -> Answer {
        let key = format!("{}\n{}\n{query}", unix_seconds(at), timeout.as_millis());
        let (querier, query) = (self.clone(), query.to_owned());
        self.instants
            .run(key, move || {
                Box::pin(async move { querier.send_instant(&query, at, timeout).await })
            })
            .await
    }

    /// Sends one instant query (see [`Self::instant`]).
    async fn send_instant(
        &self,
        query: &str,
        at: SystemTime,
        timeout: Duration,
    ) -> (Result<Option<f64>, String>, Duration) {
        let params = [
            ("query", query.to_owned()),
            ("time", unix_seconds(at)),
            ("timeout", timeout_param(timeout)),
        ];
        let _permit = self.query_permit().await;
        let started = Instant::now();
        let result = match tokio::time::timeout(timeout, self.fetch(&self.query_url, &params)).await
        {
            Err(_) => Err(format!("timed out after {}", human_duration(timeout))),
            Ok(Err(error)) => Err(error),
            Ok(Ok(data)) => single_value(&data),
        };
        (result, started.elapsed())
    }

    /// Waits for one of the `max_concurrent_queries` permits. The wait is
    /// not part of the query's time limit, which is Prometheus'. The
    /// semaphore is never closed; were it, the query would go unbounded
    /// rather than not at all.
    async fn query_permit(&self) -> Option<SemaphorePermit<'_>> {
        self.permits.acquire().await.ok()
    }
}

/// Fills `sample` from the two query results; a baseline error is named as
/// such so that the operator knows which query failed.
fn apply(
    sample: &mut MetricSample,
    current: Result<Option<f64>, String>,
    baseline: Result<Option<f64>, String>,
) {
    let mut errors: Vec<String> = sample.error.take().into_iter().collect();
    match current {
        Ok(value) => sample.value = value,
        Err(error) => errors.push(error),
    }
    match baseline {
        Ok(value) => sample.baseline = value,
        Err(error) => errors.push(format!("baseline: {error}")),
    }
    if !errors.is_empty() {
        sample.error = Some(errors.join("; "));
    }
}

/// `query` with the context's variables and `window` filled in, each value
/// escaped for where it stands in the query (a version read from an
/// endpoint is outside input); `window` is rollguard's own.
fn render(query: &str, ctx: &QueryContext, window: Duration) -> Result<String, TemplateError> {
    let vars = BTreeMap::from([
        ("target", ctx.target.clone()),
        ("version", ctx.version.clone()),
        (
            "previous_version",
            ctx.previous_version.clone().unwrap_or_default(),
        ),
        ("window", promql_duration(window)),
    ]);
    template::render_promql(query, &vars, &["window"])
}

/// The time since the release, but at least `min_window` (also when the
/// clock says the release is in the future).
fn post_release_window(release_at: SystemTime, now: SystemTime, min_window: Duration) -> Duration {
    now.duration_since(release_at)
        .unwrap_or_default()
        .max(min_window)
}

/// A duration in PromQL syntax to the millisecond (`95s`, `94200ms`), at
/// least `1ms`. Never rounded up to whole seconds: a window that starts
/// before the release (or, when verifying, before the rollback) would mix
/// the other version's samples in, for as long as the window is short.
fn promql_duration(d: Duration) -> String {
    let ms = d.as_millis().max(1);
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The `timeout` parameter: Prometheus stops evaluating the query then.
fn timeout_param(timeout: Duration) -> String {
    format!("{}ms", timeout.as_millis())
}

/// The `time` parameter: Unix seconds with milliseconds.
fn unix_seconds(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", since.as_secs(), since.subsec_millis())
}

/// Reads a bearer token file into a sensitive `Authorization` value.
fn read_token(path: &std::path::Path) -> Result<HeaderValue, QuerierError> {
    let text = std::fs::read_to_string(path).map_err(|source| QuerierError::TokenFile {
        path: path.to_owned(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(QuerierError::BadToken {
            path: path.to_owned(),
            reason: "it is empty",
        });
    }
    let mut value =
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| QuerierError::BadToken {
            path: path.to_owned(),
            reason: "it has characters an HTTP header cannot carry",
        })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
#[path = "prometheus/tests_querier.rs"]
mod tests;
