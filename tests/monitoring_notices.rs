//! Debounced monitoring notices, through a whole in-process daemon: a fake
//! Prometheus on 127.0.0.1:0 that fails every other query (one query per
//! tick), a real webhook receiver, and the notifications counted.

// The shared helpers include the API harness, which this file does not use.
#[allow(dead_code)]
mod common;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::e2e::{Hooks, TARGET, start_daemon};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A Prometheus that answers `/api/v1/query` with one value, or with HTTP
/// 503 every other query while it flaps.
#[derive(Clone, Default)]
struct FlappingPrometheus {
    /// Queries answered so far.
    queries: Arc<AtomicU64>,
    /// Whether every other query fails.
    flapping: Arc<AtomicBool>,
}

impl FlappingPrometheus {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Prometheus");
        let addr = listener.local_addr().expect("address");
        let app = axum::Router::new()
            .route("/api/v1/query", axum::routing::get(answer).post(answer))
            .with_state(self.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}")
    }
}

async fn answer(State(fake): State<FlappingPrometheus>) -> axum::response::Response {
    let n = fake.queries.fetch_add(1, Ordering::SeqCst);
    if fake.flapping.load(Ordering::SeqCst) && n % 2 == 0 {
        return (StatusCode::SERVICE_UNAVAILABLE, "overloaded").into_response();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    axum::Json(serde_json::json!({
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [now, "0.001"]}]}
    }))
    .into_response()
}

/// A daemon watching `shop` through a `current` link, one threshold metric
/// (one query a tick) on `prometheus`, notices after `notice_after`.
fn config(root: &Path, prometheus: &str, hooks: &Hooks, notice_after: &str) -> String {
    format!(
        r#"[daemon]
listen = "127.0.0.1:0"
state_dir = "{root}/state"
mode = "shadow"
monitoring_notice_after = "{notice_after}"

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
bake_window = "10m"
notify = ["on-call"]

[target.release]
kind = "symlink"
path = "{root}/current"

[[target.metric]]
name = "error_rate"
query = "sum(rate(errors[1m]))"
baseline = "none"
thresholds = {{ high = 0.1 }}
"#,
        root = root.display(),
        hook = hooks.url,
    )
}

/// What a flapping Prometheus (every other query failing for `flapping`)
/// makes the target hear, with `notice_after`: the monitoring events
/// received, once the source has been steady long enough for "back".
async fn flap(notice_after: &str, flapping: Duration) -> (Vec<serde_json::Value>, Hooks) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    for version in ["v1", "v2"] {
        std::fs::create_dir_all(root.join("releases").join(version)).expect("mkdir");
    }
    let link = root.join("current");
    std::os::unix::fs::symlink(Path::new("releases/v1"), &link).expect("symlink");
    let fake = FlappingPrometheus::default();
    let url = fake.start().await;
    let hooks = Hooks::start().await;
    let daemon = start_daemon(
        &root.join("rollguard.toml"),
        &config(root, &url, &hooks, notice_after),
    )
    .await;
    let tmp = root.join("current.tmp");
    std::os::unix::fs::symlink(Path::new("releases/v2"), &tmp).expect("symlink");
    std::fs::rename(&tmp, &link).expect("deploy v2");
    daemon.wait_release("v2").await;

    fake.flapping.store(true, Ordering::SeqCst);
    let started = fake.queries.load(Ordering::SeqCst);
    tokio::time::sleep(flapping).await;
    fake.flapping.store(false, Ordering::SeqCst);
    let flapped = fake.queries.load(Ordering::SeqCst) - started;
    assert!(flapped >= 10, "only {flapped} queries while flapping");
    // Steady for longer than the debounce, and the notices delivered.
    let quiet = humantime::parse_duration(notice_after).expect("duration") + Duration::from_secs(2);
    tokio::time::sleep(quiet).await;
    daemon.wait_ticks(3).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while hooks.of("monitoring_recovered").is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.stop().await;
    let monitoring = hooks
        .all()
        .into_iter()
        .filter(|b| {
            b["event"]
                .as_str()
                .is_some_and(|e| e.starts_with("monitoring_"))
        })
        .collect();
    (monitoring, hooks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_failing_every_other_tick_is_one_down_one_back_and_a_count() {
    let (notices, hooks) = flap("2s", Duration::from_secs(5)).await;
    let events: Vec<&str> = notices
        .iter()
        .map(|b| b["event"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        events,
        ["monitoring_down", "monitoring_recovered"],
        "{:?}",
        hooks.events()
    );
    let down = notices[0]["text"].as_str().unwrap_or_default();
    assert!(
        down.contains("error_rate") && down.contains("failed ticks"),
        "{down}"
    );
    let back = notices[1]["headline"].as_str().unwrap_or_default();
    assert!(
        back.contains("monitoring is back (down for ")
            && back.contains("failed ticks")
            && back.contains("brief returns"),
        "{back}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_delay_every_flap_is_told() {
    let (notices, _) = flap("0s", Duration::from_secs(5)).await;
    eprintln!(
        "monitoring notices for 5 s of a Prometheus failing every other tick, monitoring_notice_after = 0s: {}",
        notices.len()
    );
    assert!(notices.len() >= 10, "{} notices", notices.len());
}
