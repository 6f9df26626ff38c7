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
use rollguard::model::{DataImpact, Observation, Severity, TimeToFix, Verdict};
use rollguard::probe::prometheus::{MetricQuerier, QueryContext};
use std::time::{Duration, Instant, SystemTime};

/// One version's failed requests since the release.
const ERRORS: &str =
    r#"sum(increase(demo_http_requests_total{version="{{version}}",code="500"}[{{window}}]))"#;

/// One version's requests since the release.
const REQUESTS: &str =
    r#"sum(increase(demo_http_requests_total{version="{{version}}"}[{{window}}]))"#;

/// How long the test waits for Prometheus to have what it expects.
const PATIENCE: Duration = Duration::from_secs(30);

/// The canary count metric: `{{version}}` the canary, `{{previous_version}}`
/// the stable.
fn canary_metric() -> String {
    let stable = |q: &str| q.replace("{{version}}", "{{previous_version}}");
    format!(
        "[[metric]]\nname = \"errors\"\nerrors_query = '{ERRORS}'\ntotal_query = '{REQUESTS}'\n\
         baseline = \"canary\"\nstable_errors_query = '{}'\nstable_total_query = '{}'\n",
        stable(ERRORS),
        stable(REQUESTS)
    )
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
    let (_stable, stable_addr) = demo(0.02, "v1").await;
    let (_canary, canary_addr) = demo(0.3, "v2").await;
    let prometheus = PrometheusHarness::start(&[stable_addr, canary_addr]).await;
    let config = PrometheusConfig {
        url: prometheus.url(),
        timeout: Duration::from_secs(5),
        bearer_token_file: None,
        min_window: Duration::from_secs(3),
    };
    let querier =
        MetricQuerier::new(&config, http_client().expect("HTTP client")).expect("valid config");
    let target: TargetConfig = toml::from_str(&format!(
        "name = \"demo\"\n[release]\nkind = \"announce\"\n{}",
        canary_metric()
    ))
    .expect("valid target");
    let metric: &MetricConfig = &target.metric[0];
    assert!(metric.is_count());
    let release_at = SystemTime::now();
    let mut judge = Judge::new(&target);
    let deadline = Instant::now() + PATIENCE;
    let mut tick = 0;
    let mut counted = false;
    let verdict = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let measured = querier
            .sample(metric, &context("v2", "v1", release_at))
            .await;
        let sample = &measured.sample;
        assert_eq!(sample.error, None, "{measured:?}");
        assert!(sample.baseline_counts.is_empty(), "no pre-release baseline");
        if let (Some(canary), Some(stable)) = (sample.counts, sample.stable_counts)
            && canary.total > 100.0
            && stable.total > 100.0
        {
            assert_eq!(measured.durations.len(), 4, "two versions, two counts each");
            assert!((canary.bad / canary.total - 0.3).abs() < 0.1, "{canary:?}");
            assert!(
                (stable.bad / stable.total - 0.02).abs() < 0.02,
                "{stable:?}"
            );
            assert_eq!(sample.baseline, stable.rate(), "the stable's rate");
            counted = true;
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
            break evidence;
        }
        assert!(
            Instant::now() < deadline,
            "never failed; last: {evidence:?}, {measured:?}"
        );
    };
    assert!(counted, "both versions were counted before the verdict");
    eprintln!("verdict after {tick} ticks: {}", verdict.reason);
    // 30% against 2%: ×15, more than 5 points above the stable's rate.
    assert_eq!(
        verdict.verdict,
        Verdict::Fail(Severity::Critical),
        "{verdict:?}"
    );
    assert!(
        verdict
            .reason
            .contains("significantly worse than the stable version")
            || verdict.reason.contains("the fast path"),
        "{}",
        verdict.reason
    );

    // A previous version read from outside that answers PromQL is one
    // escaped label value nobody runs: the stable has no data, the canary
    // is not judged against anything.
    let hostile = r#"v1"}[1m]))*0 or vector(1e9) or sum(rate(x{a=""#;
    let measured = querier
        .sample(metric, &context("v2", hostile, release_at))
        .await;
    assert_eq!(measured.sample.error, None, "{measured:?}");
    assert_eq!(measured.sample.stable_counts, None, "{measured:?}");
    assert_eq!(measured.sample.baseline, None, "{measured:?}");
    assert!(measured.sample.counts.is_some(), "{measured:?}");
}
