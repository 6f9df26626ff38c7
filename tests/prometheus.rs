//! Metric queries against a real Prometheus scraping real demo services:
//! values, baselines, no data, query errors, an outage and a timeout.

// The shared helpers include the API harness, which this file does not use.
#[allow(dead_code)]
mod common;

use common::e2e::{ERROR_RATIO, ERRORS, REQUESTS};
use common::prometheus::PrometheusHarness;
use rollguard::config::{MetricConfig, PrometheusConfig};
use rollguard::demo::DemoService;
use rollguard::http::http_client;
use rollguard::probe::prometheus::{BaselineCache, Measurement, MetricQuerier, QueryContext};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

/// The same, for one version.
const VERSION_ERROR_RATIO: &str = r#"sum(rate(demo_http_requests_total{version="{{version}}",code="500"}[{{window}}])) / sum(rate(demo_http_requests_total{version="{{version}}"}[{{window}}]))"#;

/// How far a measured ratio may be from the one set.
const TOLERANCE: f64 = 0.05;

/// The same for a ratio over one short baseline step (a few scrapes).
const STEP_TOLERANCE: f64 = 0.1;

/// How long a test waits for Prometheus to have what it expects.
const PATIENCE: Duration = Duration::from_secs(30);

async fn demo(rate: f64, error_ratio: f64, version: &str) -> (DemoService, SocketAddr) {
    let (service, addr) = DemoService::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("demo service binds");
    service.set_rate(rate);
    service.set_error_ratio(error_ratio);
    service.set_version(version);
    (service, addr)
}

async fn prometheus(targets: &[SocketAddr]) -> PrometheusHarness {
    let prometheus = PrometheusHarness::start(targets).await;
    eprintln!(
        "Prometheus ready after {:?}, scraping after {:?}",
        prometheus.ready_after, prometheus.data_after
    );
    prometheus
}

fn querier(url: &str, timeout: Duration) -> MetricQuerier {
    let config = PrometheusConfig {
        url: url.to_owned(),
        timeout,
        bearer_token_file: None,
        min_window: Duration::from_secs(3),
        max_concurrent_queries: 16,
        max_response_bytes: rollguard::config::defaults::max_response_bytes(),
        max_series: rollguard::config::defaults::max_series(),
    };
    MetricQuerier::new(&config, http_client().expect("HTTP client")).expect("valid config")
}

/// A metric as it would be written in the file, from TOML lines.
fn metric(lines: &str) -> MetricConfig {
    toml::from_str(&format!("name = \"errors\"\n{lines}")).expect("valid metric")
}

fn context(version: &str, previous: &str, release_at: SystemTime) -> QueryContext {
    QueryContext {
        target: "demo".to_owned(),
        version: version.to_owned(),
        previous_version: Some(previous.to_owned()),
        release_at,
        window_start: None,
        now: SystemTime::now(),
        interval: std::time::Duration::from_secs(1),
    }
}

/// Samples `metric` (with a fresh `now`) until `done` holds; panics with
/// the last measurement after [`PATIENCE`].
async fn sample_until(
    querier: &MetricQuerier,
    metric: &MetricConfig,
    ctx: QueryContext,
    done: impl Fn(&Measurement) -> bool,
) -> Measurement {
    sample_until_with(querier, metric, ctx, &BaselineCache::default(), done).await
}

/// [`sample_until`] with the release's baselines in `cache`, as a bake
/// window keeps them.
async fn sample_until_with(
    querier: &MetricQuerier,
    metric: &MetricConfig,
    mut ctx: QueryContext,
    cache: &BaselineCache,
    done: impl Fn(&Measurement) -> bool,
) -> Measurement {
    let deadline = Instant::now() + PATIENCE;
    loop {
        ctx.now = SystemTime::now();
        let measured = querier.sample(metric, &ctx, cache).await;
        if done(&measured) {
            return measured;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting; last: {measured:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn near(value: Option<f64>, expected: f64) -> bool {
    value.is_some_and(|v| (v - expected).abs() <= TOLERANCE)
}

/// A demo service at 200 requests/s with 10% errors, scraped until
/// Prometheus holds `history` of it; then `v2` is released with 50% errors.
/// Returns the service, Prometheus and the release time.
async fn ten_then_fifty_percent(history: &str) -> (DemoService, PrometheusHarness, SystemTime) {
    let (service, addr) = demo(200.0, 0.1, "v1").await;
    let prometheus = prometheus(&[addr]).await;
    let before = ERROR_RATIO.replace("{{window}}", history);
    prometheus
        .wait_for(&before, |v| near(v, 0.1), PATIENCE)
        .await;
    let seconds: f64 = history.trim_end_matches('s').parse().expect("seconds");
    let requests = REQUESTS.replace("{{window}}", history);
    prometheus
        .wait_for(
            &requests,
            |v| v.is_some_and(|n| n >= 200.0 * (seconds - 1.0)),
            PATIENCE,
        )
        .await;
    let release_at = SystemTime::now();
    service.set_version("v2");
    service.set_error_ratio(0.5);
    (service, prometheus, release_at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_ratio_and_its_pre_release_baseline() {
    let (_service, prometheus, release_at) = ten_then_fifty_percent("5s").await;
    let errors = metric(&format!(
        "query = '{ERROR_RATIO}'\nbaseline = \"pre_release\"\nbaseline_window = \"5s\"\n"
    ));
    let ctx = context("v2", "v1", release_at);
    let querier = querier(&prometheus.url(), Duration::from_secs(5));
    let cache = BaselineCache::default();
    let measured = sample_until_with(&querier, &errors, ctx.clone(), &cache, |m| {
        near(m.sample.value, 0.5)
    })
    .await;
    assert_eq!(measured.sample.error, None);
    assert!(near(measured.sample.baseline, 0.1), "{measured:?}");
    // The pre-release value does not change: fetched once for the
    // release, then only the current value is queried.
    assert_eq!(cache.len(), 1, "the baseline is kept for the release");
    let again = querier.sample(&errors, &ctx, &cache).await;
    assert_eq!(
        again.durations.len(),
        1,
        "only the current value was queried"
    );
    assert_eq!(again.sample.baseline, measured.sample.baseline);
    let fresh = querier
        .sample(&errors, &ctx, &BaselineCache::default())
        .await;
    assert_eq!(
        fresh.durations.len(),
        2,
        "current and baseline were queried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_baseline_no_data_and_query_errors() {
    let (_stable, stable_addr) = demo(200.0, 0.02, "v1").await;
    let (_canary, canary_addr) = demo(200.0, 0.3, "v2").await;
    let (idle, idle_addr) = demo(0.0, 0.0, "idle").await;
    let prometheus = prometheus(&[stable_addr, canary_addr, idle_addr]).await;
    let q = querier(&prometheus.url(), Duration::from_secs(5));
    let release_at = SystemTime::now() - Duration::from_secs(60);

    let stable_query = VERSION_ERROR_RATIO.replace("{{version}}", "{{previous_version}}");
    let canary = metric(&format!(
        "query = '{VERSION_ERROR_RATIO}'\nbaseline = \"canary\"\nstable_query = '{stable_query}'\n"
    ));
    let measured = sample_until(&q, &canary, context("v2", "v1", release_at), |m| {
        near(m.sample.value, 0.3) && near(m.sample.baseline, 0.02)
    })
    .await;
    assert_eq!(measured.sample.error, None);

    // No traffic at all: 0/0 is NaN, which is no data, not an error.
    assert_eq!(idle.requests("idle", 500), 0);
    let idle_ratio = metric(&format!(
        "query = '{VERSION_ERROR_RATIO}'\nbaseline = \"none\"\n"
    ));
    let idle_ctx = context("idle", "v1", SystemTime::now());
    let window = VERSION_ERROR_RATIO
        .replace("{{version}}", "idle")
        .replace("{{window}}", "3s");
    prometheus
        .wait_for(&window, |v| v.is_some_and(f64::is_nan), PATIENCE)
        .await;
    let measured = q
        .sample(&idle_ratio, &idle_ctx, &BaselineCache::default())
        .await;
    assert_eq!((measured.sample.value, measured.sample.error), (None, None));

    // A version nobody runs: an empty vector, also no data.
    let nobody = q
        .sample(
            &idle_ratio,
            &context("v9", "v1", release_at),
            &BaselineCache::default(),
        )
        .await;
    assert_eq!((nobody.sample.value, nobody.sample.error), (None, None));

    // A version endpoint that answers PromQL: escaped, it is one label
    // value nobody runs (no data); pasted as it is, it would read 1e9.
    let payload = r#"x"}[1m]))*0 or vector(1e9) or sum(rate(x{a=""#;
    let hostile = q
        .sample(
            &idle_ratio,
            &context(payload, "v1", release_at),
            &BaselineCache::default(),
        )
        .await;
    assert_eq!((hostile.sample.value, hostile.sample.error), (None, None));
    let pasted = metric(&format!(
        "query = '{}'\nbaseline = \"none\"\n",
        VERSION_ERROR_RATIO.replace("{{version}}", payload)
    ));
    let rewritten = q
        .sample(&pasted, &idle_ctx, &BaselineCache::default())
        .await;
    assert!(
        rewritten.sample.value.is_some_and(|v| v >= 1e8),
        "the payload pasted as it is rewrites the query: {rewritten:?}"
    );

    let unaggregated = metric("query = 'demo_http_requests_total'\nbaseline = \"none\"\n");
    let measured = q
        .sample(&unaggregated, &idle_ctx, &BaselineCache::default())
        .await;
    let error = measured.sample.error.expect("several series are an error");
    assert!(
        error.contains("series; aggregate it (sum, max) to one"),
        "{error}"
    );

    let bad =
        metric("query = 'sum(rate(demo_http_requests_total[{{window}}])'\nbaseline = \"none\"\n");
    let measured = q.sample(&bad, &idle_ctx, &BaselineCache::default()).await;
    let error = measured.sample.error.expect("bad PromQL is an error");
    assert!(
        error.contains("bad_data") && error.contains("parse error"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_an_error_until_prometheus_is_back() {
    let (_service, addr) = demo(100.0, 0.2, "v1").await;
    let mut prometheus = prometheus(&[addr]).await;
    let q = querier(&prometheus.url(), Duration::from_secs(5));
    let errors = metric(&format!(
        "query = '{ERROR_RATIO}'\nbaseline = \"pre_release\"\n"
    ));
    let release_at = SystemTime::now() - Duration::from_secs(10);
    sample_until(&q, &errors, context("v1", "v0", release_at), |m| {
        near(m.sample.value, 0.2)
    })
    .await;

    prometheus.stop();
    let measured = q
        .sample(
            &errors,
            &context("v1", "v0", release_at),
            &BaselineCache::default(),
        )
        .await;
    let error = measured.sample.error.expect("an outage is an error");
    assert!(error.contains("connection refused"), "{error}");
    assert_eq!(measured.sample.value, None);

    let restarted = Instant::now();
    prometheus.restart().await;
    eprintln!(
        "Prometheus restarted: ready after {:?}, scraping after {:?} ({:?} in all)",
        prometheus.ready_after,
        prometheus.data_after,
        restarted.elapsed()
    );
    sample_until(&q, &errors, context("v1", "v0", release_at), |m| {
        m.sample.error.is_none() && near(m.sample.value, 0.2)
    })
    .await;
}

#[tokio::test]
async fn a_prometheus_that_never_answers_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("address");
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let q = querier(&format!("http://{addr}"), Duration::from_secs(5));
    let mut errors = metric(&format!("query = '{ERROR_RATIO}'\nbaseline = \"none\"\n"));
    errors.timeout = Some(Duration::from_millis(200));
    let started = Instant::now();
    let measured = q
        .sample(
            &errors,
            &context("v1", "v0", SystemTime::now()),
            &BaselineCache::default(),
        )
        .await;
    let elapsed = started.elapsed();
    assert_eq!(
        measured.sample.error.as_deref(),
        Some("timed out after 200ms")
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    silent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_metrics_count_since_the_release_with_a_baseline_per_step() {
    // Six seconds of baseline at 10% errors.
    let (_service, prometheus, release_at) = ten_then_fifty_percent("6s").await;
    let counts = metric(&format!(
        "errors_query = '{ERRORS}'\ntotal_query = '{REQUESTS}'\nbaseline_window = \"6s\"\n"
    ));
    assert!(counts.is_count());
    let querier = querier(&prometheus.url(), Duration::from_secs(5));
    let ctx = context("v2", "v1", release_at);
    let cache = BaselineCache::default();
    let first = sample_until_with(&querier, &counts, ctx.clone(), &cache, |m| {
        m.sample.counts.is_some_and(|c| c.total > 0.0)
    })
    .await;
    assert_eq!(first.sample.error, None, "{first:?}");
    // Counts are taken over steps of at least a minute, here capped at
    // the 6 s baseline window: one point.
    let baseline = &first.sample.baseline_counts;
    assert_eq!(baseline.len(), 1, "{first:?}");
    let (n, k) = baseline
        .iter()
        .fold((0.0, 0.0), |(n, k), c| (n + c.total, k + c.bad));
    assert!(n > 100.0 && (k / n - 0.1).abs() < TOLERANCE, "{baseline:?}");
    assert!(near(first.sample.baseline, 0.1), "{first:?}");
    // The counts grow from tick to tick (since the release), and their
    // ratio reaches the new error rate.
    let later = sample_until_with(&querier, &counts, ctx.clone(), &cache, |m| {
        m.sample
            .counts
            .is_some_and(|c| c.total > first.sample.counts.map_or(0.0, |f| f.total) + 200.0)
            && near(m.sample.value, 0.5)
    })
    .await;
    assert!(
        later.sample.baseline_counts == *baseline,
        "the baseline is cached per release"
    );
    assert_eq!(
        later.durations.len(),
        2,
        "cached: only the two count queries ran"
    );

    // A sequential value metric: one value per tick window, and the
    // baseline series per step of min_window (3 s): two points at most
    // (the older one may find fewer than two scrapes in its window).
    let series = metric(&format!(
        "query = '{ERROR_RATIO}'\ntest = \"sequential\"\nbaseline_window = \"6s\"\nthresholds = {{ high = 0.3 }}\n"
    ));
    let measured = sample_until(&querier, &series, ctx, |m| near(m.sample.value, 0.5)).await;
    let points = measured.sample.baseline_series.len();
    assert!((1..=2).contains(&points), "{measured:?}");
    // Each point is a rate() over one 3 s step, extrapolated from two or
    // three scrapes: on a loaded machine (scrapes late by a few hundred
    // ms) one reads 0.05 or 0.155 for a true 0.1. What matters is that
    // every point is the pre-release 10%, never the release's 50%.
    assert!(
        measured
            .sample
            .baseline_series
            .iter()
            .all(|v| (v - 0.1).abs() < STEP_TOLERANCE),
        "{measured:?}"
    );
}
