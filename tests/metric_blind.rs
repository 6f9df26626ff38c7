//! A release whose error series is gone, through a whole in-process
//! daemon: a fake Prometheus on 127.0.0.1:0 whose `errors_query` had a
//! series before the release (10% of the requests) and answers with none
//! after it, while `total_query` counts requests. The target hears
//! `metric_blind` once, with the query, and the bake window ends
//! `inconclusive`, never `healthy`.

// The shared helpers include the API harness, which this file does not use.
#[allow(dead_code)]
mod common;

use axum::extract::{Query, State};
use common::e2e::{Hooks, TARGET, start_daemon};
use rollguard::journal::Event;
use rollguard::model::Decision;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The errors query: no series after the release.
const ERRORS: &str = r#"sum(increase(http_requests_total{code="500"}[{{window}}]))"#;

/// The requests query.
const REQUESTS: &str = r#"sum(increase(http_requests_total[{{window}}]))"#;

/// Instant queries of the requests, so that the counts since the release
/// grow tick by tick.
#[derive(Clone, Default)]
struct Fake {
    totals: Arc<AtomicU64>,
}

fn is_errors(params: &HashMap<String, String>) -> bool {
    params.get("query").is_some_and(|q| q.contains("code="))
}

/// `/api/v1/query`: no series for the errors, 100 more requests at each
/// answer for the total.
async fn instant(
    State(fake): State<Fake>,
    Query(params): Query<HashMap<String, String>>,
) -> axum::Json<Value> {
    let at: f64 = params
        .get("time")
        .and_then(|t| t.parse().ok())
        .unwrap_or_default();
    let result = if is_errors(&params) {
        json!([])
    } else {
        let n = 100 * (fake.totals.fetch_add(1, Ordering::SeqCst) + 1);
        json!([{"metric": {}, "value": [at, n.to_string()]}])
    };
    axum::Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
}

/// `/api/v1/query_range`: the baseline, one point a step from `start` to
/// `end`: 600 requests and 60 errors each.
async fn range(Query(params): Query<HashMap<String, String>>) -> axum::Json<Value> {
    let number = |key: &str| -> f64 {
        params
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    };
    let (start, end, step) = (number("start"), number("end"), number("step").max(1.0));
    let value = if is_errors(&params) { "60" } else { "600" };
    let mut values = Vec::new();
    let mut at = start;
    while at <= end {
        values.push(json!([at, value]));
        at += step;
    }
    axum::Json(json!({
        "status": "success",
        "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]}
    }))
}

async fn start_fake() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake Prometheus");
    let addr = listener.local_addr().expect("address");
    let app = axum::Router::new()
        .route("/api/v1/query", axum::routing::get(instant))
        .route("/api/v1/query_range", axum::routing::get(range))
        .with_state(Fake::default());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn config(root: &Path, prometheus: &str, hooks: &Hooks, extra: &str) -> String {
    format!(
        r#"[daemon]
listen = "127.0.0.1:0"
state_dir = "{root}/state"
mode = "shadow"

[prometheus]
url = "{prometheus}"
timeout = "1s"

[[notifier]]
name = "on-call"
kind = "webhook"
url = "{hook}"
timeout = "2s"
retries = 0

[[target]]
name = "{TARGET}"
interval = "200ms"
bake_window = "3s"
notify = ["on-call"]

[target.release]
kind = "symlink"
path = "{root}/current"

[[target.metric]]
name = "error_rate"
errors_query = '{ERRORS}'
total_query = '{REQUESTS}'
baseline_window = "10m"
{extra}"#,
        root = root.display(),
        hook = hooks.url,
    )
}

/// Releases v2 over v1 with the metric's `extra` keys and waits for the
/// end of its bake window; the hooks and the window's decision.
async fn release(extra: &str) -> (Hooks, Decision) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    for version in ["v1", "v2"] {
        std::fs::create_dir_all(root.join("releases").join(version)).expect("mkdir");
    }
    let link = root.join("current");
    std::os::unix::fs::symlink(Path::new("releases/v1"), &link).expect("symlink");
    let hooks = Hooks::start().await;
    let url = start_fake().await;
    let daemon = start_daemon(
        &root.join("rollguard.toml"),
        &config(root, &url, &hooks, extra),
    )
    .await;
    let tmp = root.join("current.tmp");
    std::os::unix::fs::symlink(Path::new("releases/v2"), &tmp).expect("symlink");
    std::fs::rename(&tmp, &link).expect("deploy v2");
    let release_id = daemon.wait_release("v2").await;
    let finished = daemon
        .wait_for(
            "the end of the bake window",
            |e| matches!(e, Event::BakeFinished { release_id: id, .. } if *id == release_id),
        )
        .await;
    let Event::BakeFinished { decision, .. } = finished.event else {
        unreachable!("filtered above");
    };
    daemon.stop().await;
    (hooks, decision)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_without_its_error_series_is_told_once_and_never_ends_healthy() {
    let (hooks, decision) = release("").await;
    let blind = hooks.of("metric_blind");
    assert_eq!(blind.len(), 1, "once per release: {:?}", hooks.events());
    let text = blind[0]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(ERRORS) && text.contains("renamed or relabelled"),
        "{text}"
    );
    assert_eq!(blind[0]["from"], "v2");
    assert_eq!(decision, Decision::Inconclusive);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_empty_means_zero_the_same_release_ends_healthy() {
    let (hooks, decision) = release("empty_means_zero = true\n").await;
    assert!(hooks.of("metric_blind").is_empty(), "{:?}", hooks.events());
    assert_eq!(decision, Decision::Healthy);
}
