//! A canary count metric against a real Prometheus scraping two versions
//! side by side (`version="v1"`, the stable, and `version="v2"`, the
//! canary): both versions' counts per tick, the stable's rate as the
//! baseline, and the judge's verdict on them.

// The shared helpers include the API harness, which this file does not use.
#[allow(dead_code)]
mod common;

use common::prometheus::PrometheusHarness;
use rollguard::config::{MetricConfig, PrometheusConfig, TargetConfig};
use rollguard::demo::DemoService;
use rollguard::http::http_client;
use rollguard::judge::Judge;
use rollguard::model::{CheckEvidence, DataImpact, Observation, Severity, TimeToFix, Verdict};
use rollguard::probe::prometheus::{BaselineCache, Measurement, MetricQuerier, QueryContext};
use std::time::{Duration, Instant, SystemTime};

/// One version's failed requests since the release.
const ERRORS: &str =
    r#"sum(increase(demo_http_requests_total{version="{{version}}",code="500"}[{{window}}]))"#;

/// One version's requests since the release.
const REQUESTS: &str =
    r#"sum(increase(demo_http_requests_total{version="{{version}}"}[{{window}}]))"#;

/// How long the test waits for Prometheus to have what it expects.
const PATIENCE: Duration = Duration::from_secs(30);

/// One version's requests slower than 100 ms since the release: all of
/// them less those in the histogram's `le="0.1"` bucket.
const SLOW: &str = r#"sum(increase(demo_http_request_duration_seconds_count{version="{{version}}"}[{{window}}])) - sum(increase(demo_http_request_duration_seconds_bucket{version="{{version}}",le="0.1"}[{{window}}]))"#;

/// One version's requests in the histogram since the release.
const TIMED: &str =
    r#"sum(increase(demo_http_request_duration_seconds_count{version="{{version}}"}[{{window}}]))"#;

/// A target with one canary count metric of `bad` of `all` events:
/// `{{version}}` the canary, `{{previous_version}}` the stable.
fn canary_target(bad: &str, all: &str) -> TargetConfig {
    let stable = |q: &str| q.replace("{{version}}", "{{previous_version}}");
    toml::from_str(&format!(
        "name = \"demo\"\n[release]\nkind = \"announce\"\n\
         [[metric]]\nname = \"errors\"\nerrors_query = '{bad}'\ntotal_query = '{all}'\n\
         baseline = \"canary\"\nstable_errors_query = '{}'\nstable_total_query = '{}'\n",
        stable(bad),
        stable(all)
    ))
    .expect("valid target")
}

fn querier(prometheus: &PrometheusHarness) -> MetricQuerier {
    let config = PrometheusConfig {
        url: prometheus.url(),
        timeout: Duration::from_secs(5),
        bearer_token_file: None,
        min_window: Duration::from_secs(3),
        max_concurrent_queries: 16,
        max_response_bytes: rollguard::config::defaults::max_response_bytes(),
        max_series: rollguard::config::defaults::max_series(),
    };
    MetricQuerier::new(&config, http_client().expect("HTTP client")).expect("valid config")
}

/// Measures and judges `target`'s metric once a second from `release_at`
/// until it fails; the failing evidence, the ticks it took and the last
/// sample with both versions counted (after 100 events each).
async fn judge_until_failed(
    querier: &MetricQuerier,
    target: &TargetConfig,
    release_at: SystemTime,
) -> (CheckEvidence, u64, Measurement) {
    let metric: &MetricConfig = &target.metric[0];
    let mut judge = Judge::new(target);
    let deadline = Instant::now() + PATIENCE;
    let mut tick = 0;
    let mut counted = None;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let measured = querier
            .sample(
                metric,
                &context("v2", "v1", release_at),
                &BaselineCache::default(),
            )
            .await;
        let sample = &measured.sample;
        assert_eq!(sample.error, None, "{measured:?}");
        assert!(sample.baseline_counts.is_empty(), "no pre-release baseline");
        if let (Some(canary), Some(stable)) = (sample.counts, sample.stable_counts)
            && canary.total > 100.0
            && stable.total > 100.0
        {
            counted = Some(measured.clone());
        }
        let obs = Observation {
            tick,
            metrics: vec![measured.sample.clone()],
            ..Observation::default()
        };
        tick += 1;
        let evidence = judge
            .assess(&obs, DataImpact::None, TimeToFix::Unknown)
            .evidence
            .remove(0);
        if matches!(evidence.verdict, Verdict::Fail(_)) {
            let counted = counted.expect("both versions were counted before the verdict");
            eprintln!("verdict after {tick} ticks: {}", evidence.reason);
            return (evidence, tick, counted);
        }
        assert!(
            Instant::now() < deadline,
            "never failed; last: {evidence:?}, {measured:?}"
        );
    }
}

async fn demo(error_ratio: f64, version: &str) -> (DemoService, std::net::SocketAddr) {
    let (service, addr) = DemoService::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("demo service binds");
    service.set_rate(200.0);
    service.set_error_ratio(error_ratio);
    service.set_version(version);
    (service, addr)
}

fn context(version: &str, previous: &str, release_at: SystemTime) -> QueryContext {
    QueryContext {
        target: "demo".to_owned(),
        version: version.to_owned(),
        previous_version: Some(previous.to_owned()),
        release_at,
        window_start: None,
        now: SystemTime::now(),
        interval: Duration::from_secs(1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_is_counted_beside_its_stable_and_judged_against_it() {
    let (_stable, stable_addr) = demo(0.01, "v1").await;
    let (_canary, canary_addr) = demo(0.05, "v2").await;
    let prometheus = PrometheusHarness::start(&[stable_addr, canary_addr]).await;
    let querier = querier(&prometheus);
    let target = canary_target(ERRORS, REQUESTS);
    assert!(target.metric[0].is_count());
    let release_at = SystemTime::now();
    let (verdict, _, counted) = judge_until_failed(&querier, &target, release_at).await;
    let sample = &counted.sample;
    let (canary, stable) = (
        sample.counts.expect("canary"),
        sample.stable_counts.expect("stable"),
    );
    assert_eq!(counted.durations.len(), 4, "two versions, two counts each");
    assert!(
        (canary.bad / canary.total - 0.05).abs() < 0.04,
        "{canary:?}"
    );
    assert!(
        (stable.bad / stable.total - 0.01).abs() < 0.02,
        "{stable:?}"
    );
    assert_eq!(sample.baseline, stable.rate(), "the stable's rate");
    // 5% against 1%: ×5, nowhere near the fast path's critical (×10 and
    // +5 points): the split's e-value decides.
    assert!(
        matches!(
            verdict.verdict,
            Verdict::Fail(Severity::Medium | Severity::High)
        ),
        "{verdict:?}"
    );
    assert!(verdict.statistic.expect("statistic").rejected);
    assert!(
        verdict
            .reason
            .contains("significantly worse than the stable version"),
        "{}",
        verdict.reason
    );

    // A previous version read from outside that answers PromQL is one
    // escaped label value nobody runs: the stable has no data, the canary
    // is not judged against anything.
    let hostile = r#"v1"}[1m]))*0 or vector(1e9) or sum(rate(x{a=""#;
    let measured = querier
        .sample(
            &target.metric[0],
            &context("v2", hostile, release_at),
            &BaselineCache::default(),
        )
        .await;
    assert_eq!(measured.sample.error, None, "{measured:?}");
    assert_eq!(measured.sample.stable_counts, None, "{measured:?}");
    assert_eq!(measured.sample.baseline, None, "{measured:?}");
    assert!(measured.sample.counts.is_some(), "{measured:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slower_canary_is_counted_above_a_histogram_bucket() {
    // Requests take 0.5–1.5 times the latency set: a quarter of the
    // stable's 40–120 ms are over 100 ms, half of the canary's 50–150 ms.
    let (stable, stable_addr) = demo(0.0, "v1").await;
    stable.set_latency_ms(80.0);
    let (canary, canary_addr) = demo(0.0, "v2").await;
    canary.set_latency_ms(100.0);
    let prometheus = PrometheusHarness::start(&[stable_addr, canary_addr]).await;
    let querier = querier(&prometheus);
    let target = canary_target(SLOW, TIMED);
    let (verdict, _, counted) = judge_until_failed(&querier, &target, SystemTime::now()).await;
    let slow = counted.sample.counts.expect("canary");
    assert!((slow.bad / slow.total - 0.5).abs() < 0.15, "{counted:?}");
    let fast = counted.sample.stable_counts.expect("stable");
    assert!((fast.bad / fast.total - 0.25).abs() < 0.15, "{counted:?}");
    // Twice the stable's share of slow requests: medium (×2.5 or +0.8
    // points), never high (×5).
    assert_eq!(
        verdict.verdict,
        Verdict::Fail(Severity::Medium),
        "{verdict:?}"
    );
    assert!(
        verdict
            .reason
            .contains("significantly worse than the stable version"),
        "{}",
        verdict.reason
    );
}
