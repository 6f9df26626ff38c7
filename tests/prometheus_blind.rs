//! A release that relabels its errors, against a real Prometheus: the old
//! process (v1, 10% of its requests failing with 500) stops, the new one
//! (v2) fails as often but with 503, so `errors_query` (`code="500"`)
//! selects no series while requests flow. The judge says `no_data`,
//! naming the query, unless the metric says `empty_means_zero = true`.

// The shared helpers include the API harness, which this file does not use.
#[allow(dead_code)]
mod common;

use common::e2e::{ERRORS, REQUESTS};
use common::prometheus::PrometheusHarness;
use rollguard::config::{PrometheusConfig, TargetConfig};
use rollguard::demo::DemoService;
use rollguard::http::http_client;
use rollguard::judge::Judge;
use rollguard::model::{Assessment, DataImpact, MetricSample, Observation, TimeToFix, Verdict};
use rollguard::probe::prometheus::{BaselineCache, MetricQuerier, QueryContext};
use std::time::{Duration, Instant, SystemTime};

/// How long the test waits for Prometheus to have what it expects.
const PATIENCE: Duration = Duration::from_secs(40);

/// A target judging the errors as a count metric, with `extra` keys.
fn target(extra: &str) -> TargetConfig {
    toml::from_str(&format!(
        r#"name = "demo"
[release]
kind = "announce"

[[metric]]
name = "errors"
errors_query = '{ERRORS}'
total_query = '{REQUESTS}'
baseline_window = "10s"
{extra}"#
    ))
    .expect("valid target")
}

fn judge(target: &TargetConfig, sample: &MetricSample) -> Assessment {
    let obs = Observation {
        metrics: vec![sample.clone()],
        ..Observation::default()
    };
    Judge::new(target).assess(&obs, DataImpact::None, TimeToFix::Unknown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabelled_errors_are_no_data_naming_the_query_unless_empty_means_zero() {
    let (old, old_addr) = DemoService::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("demo service binds");
    old.set_rate(200.0);
    old.set_error_ratio(0.1);
    // The new process follows a link that is not there yet: no version,
    // no traffic, no series until the release.
    let dir = tempfile::tempdir().expect("temp dir");
    let release = dir.path().join("v2");
    std::fs::create_dir(&release).expect("mkdir");
    std::fs::write(
        release.join("behaviour.toml"),
        "rate = 200.0\nerror_ratio = 0.1\nerror_code = 503\n",
    )
    .expect("behaviour.toml");
    let link = dir.path().join("current");
    let (new, new_addr) = DemoService::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("demo service binds");
    new.follow_symlink(&link);
    let prometheus = PrometheusHarness::start(&[old_addr, new_addr]).await;
    prometheus
        .wait_for(
            &ERRORS.replace("{{window}}", "10s"),
            |v| v.is_some_and(|n| n > 50.0),
            PATIENCE,
        )
        .await;

    // The release: the old process goes, the new one serves.
    old.stop();
    std::os::unix::fs::symlink(&release, &link).expect("symlink");
    let release_at = SystemTime::now();
    let querier = MetricQuerier::new(
        &PrometheusConfig {
            url: prometheus.url(),
            timeout: Duration::from_secs(5),
            bearer_token_file: None,
            min_window: Duration::from_secs(3),
            max_concurrent_queries: 16,
            max_response_bytes: rollguard::config::defaults::max_response_bytes(),
            max_series: rollguard::config::defaults::max_series(),
        },
        http_client().expect("HTTP client"),
    )
    .expect("valid config");
    let strict = target("");
    let cache = BaselineCache::default();
    let deadline = Instant::now() + PATIENCE;
    let sample = loop {
        let ctx = QueryContext {
            target: "demo".to_owned(),
            version: "v2".to_owned(),
            previous_version: Some("v1".to_owned()),
            release_at,
            now: SystemTime::now(),
            window_start: None,
            interval: Duration::from_secs(1),
        };
        let sample = querier.sample(&strict.metric[0], &ctx, &cache).await.sample;
        // Enough requests that, at the baseline's 10%, errors were due,
        // and the baseline read (Prometheus may still be catching up with
        // the last seconds before the release on a loaded machine).
        if sample.counts.is_some_and(|c| c.total >= 200.0) && sample.baseline.is_some() {
            break sample;
        }
        assert!(Instant::now() < deadline, "no counts: {sample:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(sample.errors_empty, "{sample:?}");
    assert_eq!(sample.error, None);
    assert_eq!(sample.counts.map(|c| c.bad), Some(0.0));
    let baseline = sample.baseline.expect("a baseline");
    assert!((0.05..0.15).contains(&baseline), "{baseline}");
    assert!(new.requests("v2", 503) > 0, "v2 fails, under another code");

    let seen = judge(&strict, &sample);
    let evidence = &seen.evidence[0];
    assert_eq!(evidence.verdict, Verdict::NoData, "{evidence:?}");
    assert_eq!(evidence.blind.as_deref(), Some(ERRORS));
    assert!(
        evidence.reason.contains(ERRORS) && evidence.reason.contains("renamed or relabelled"),
        "{}",
        evidence.reason
    );
    assert!(seen.inconclusive);

    let lenient = target("empty_means_zero = true\n");
    let zero = judge(&lenient, &sample);
    let evidence = &zero.evidence[0];
    assert_ne!(evidence.verdict, Verdict::NoData, "{evidence:?}");
    assert_eq!(evidence.blind, None);
    assert!(!zero.inconclusive, "{zero:?}");
    assert!(
        evidence.reason.contains("0 of "),
        "zero errors counted: {}",
        evidence.reason
    );
    new.stop();
}
