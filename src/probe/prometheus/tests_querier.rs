//! The querier's rendering, windows and token, without a Prometheus.

use super::*;

#[test]
fn windows_are_exact_to_the_millisecond_and_at_least_the_minimum() {
    let release = UNIX_EPOCH + Duration::from_secs(1_000);
    let min = Duration::from_secs(30);
    let after = |ms| release + Duration::from_millis(ms);
    assert_eq!(post_release_window(release, after(5_000), min), min);
    assert_eq!(
        promql_duration(post_release_window(release, after(94_200), min)),
        "94200ms"
    );
    let before = release - Duration::from_secs(5);
    assert_eq!(post_release_window(release, before, min), min);
    assert_eq!(promql_duration(Duration::from_millis(1)), "1ms");
    assert_eq!(promql_duration(Duration::ZERO), "1ms");
    assert_eq!(promql_duration(Duration::from_millis(95_000)), "95s");
    assert_eq!(promql_duration(Duration::from_secs(3600)), "3600s");
    assert_eq!(unix_seconds(after(250)), "1000.250");
}

fn metric(baseline: BaselineKind, stable: Option<&str>) -> MetricConfig {
    let mut text = String::from(
        "name = \"errors\"\nquery = 'rate(x{job=\"{{target}}\",version=\"{{version}}\"}[{{window}}])'\n",
    );
    if let Some(stable) = stable {
        text.push_str(&format!("stable_query = '{stable}'\n"));
    }
    let mut metric: MetricConfig = toml::from_str(&text).expect("valid metric");
    metric.baseline = baseline;
    metric.baseline_window = Duration::from_secs(600);
    metric
}

fn querier(min_window: Duration) -> MetricQuerier {
    let config = PrometheusConfig {
        url: "http://127.0.0.1:9".to_owned(),
        timeout: Duration::from_secs(1),
        bearer_token_file: None,
        min_window,
        max_concurrent_queries: 16,
        max_response_bytes: crate::config::defaults::max_response_bytes(),
        max_series: crate::config::defaults::max_series(),
    };
    MetricQuerier::new(&config, reqwest::Client::new()).expect("valid config")
}

#[test]
fn baselines_render_their_own_window_and_time() {
    let release_at = UNIX_EPOCH + Duration::from_secs(1_000);
    let ctx = QueryContext {
        target: "api".to_owned(),
        version: "v2".to_owned(),
        previous_version: Some("v1".to_owned()),
        release_at,
        now: release_at + Duration::from_secs(95),
        window_start: None,
        interval: Duration::from_secs(10),
    };
    let q = querier(Duration::from_secs(30));
    let pre = q
        .rendered_queries(&metric(BaselineKind::PreRelease, None), &ctx)
        .expect("renders");
    assert_eq!(pre.current, r#"rate(x{job="api",version="v2"}[95s])"#);
    assert_eq!(
        pre.baseline.as_deref(),
        Some(r#"rate(x{job="api",version="v2"}[600s])"#)
    );
    assert_eq!(pre.baseline_at, Some(release_at));
    let stable = r#"rate(x{version="{{previous_version}}"}[{{window}}])"#;
    let canary = q
        .rendered_queries(&metric(BaselineKind::Canary, Some(stable)), &ctx)
        .expect("renders");
    assert_eq!(
        canary.baseline.as_deref(),
        Some(r#"rate(x{version="v1"}[95s])"#)
    );
    assert_eq!(canary.baseline_at, Some(ctx.now));
    let none = q
        .rendered_queries(&metric(BaselineKind::None, None), &ctx)
        .expect("renders");
    assert_eq!(none.baseline, None);
}

#[test]
fn the_token_is_read_once_and_never_shown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("token");
    std::fs::write(&path, "s3cret\n").expect("write token");
    let config = PrometheusConfig {
        url: "http://127.0.0.1:9".to_owned(),
        timeout: Duration::from_secs(1),
        bearer_token_file: Some(path.clone()),
        min_window: Duration::from_secs(30),
        max_concurrent_queries: 16,
        max_response_bytes: crate::config::defaults::max_response_bytes(),
        max_series: crate::config::defaults::max_series(),
    };
    let q = MetricQuerier::new(&config, reqwest::Client::new()).expect("readable token");
    assert!(!format!("{q:?}").contains("s3cret"));
    std::fs::write(&path, " \n").expect("write token");
    let error = MetricQuerier::new(&config, reqwest::Client::new()).expect_err("empty");
    assert!(error.to_string().contains("empty"), "{error}");
}
