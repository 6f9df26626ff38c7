//! [`DemoService`]: the steerable HTTP service and its handle.

use super::traffic::{Counters, TrafficShape};
use crate::numeric::SplitMix64;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// How often the traffic generator adds requests.
pub const TRAFFIC_STEP: Duration = Duration::from_millis(100);

/// Content type of Prometheus' text exposition format 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The error ratio of a release directory marked `broken`.
const BROKEN_ERROR_RATIO: f64 = 0.5;

/// Handle of a running demo service. Clones control the same service; the
/// service stops on [`DemoService::stop`] or when the last clone is dropped.
#[derive(Clone)]
pub struct DemoService {
    /// What the HTTP handlers and the traffic generator read.
    shared: Arc<Shared>,
    /// Stops the server and the generator when the last clone goes.
    running: Arc<Running>,
}

/// The controls and the counters, shared by the handle, the HTTP handlers
/// and the traffic generator.
struct Shared {
    /// The controls, behind a lock held for microseconds.
    controls: Mutex<Controls>,
    /// The request counters that `/metrics` shows.
    counters: Mutex<Counters>,
    /// Totals over time, for the demo's query endpoint.
    history: Mutex<super::query::History>,
}

/// What the handle's setters change.
#[derive(Debug, Clone)]
struct Controls {
    /// Version when not following a symlink.
    version: String,
    /// Whether `/health` answers 200.
    healthy: bool,
    /// Traffic shape unless the release directory overrides it.
    shape: TrafficShape,
    /// The `current` link to follow, if any.
    symlink: Option<PathBuf>,
}

/// The stop signal; sends it when dropped.
struct Running {
    /// `true` once the service should stop.
    stop: watch::Sender<bool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// What the service is right now, after the release directory had its say.
#[derive(Debug, Clone)]
struct Effective {
    /// The running version; `None` when the symlink cannot be read (the
    /// service is "down": no traffic, failing health).
    version: Option<String>,
    /// Whether `/health` answers 200.
    healthy: bool,
    /// The traffic shape.
    shape: TrafficShape,
}

/// `behaviour.toml` in a release directory; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseBehaviour {
    /// Whether `/health` answers 200.
    healthy: Option<bool>,
    /// Share of requests that fail.
    error_ratio: Option<f64>,
    /// Typical latency.
    latency_ms: Option<f64>,
    /// Requests per second.
    rate: Option<f64>,
    /// The status code of failed requests (500 by default).
    error_code: Option<u16>,
}

impl DemoService {
    /// Starts the service on `bind` (port 0 picks a free port) as version
    /// `v1`: healthy, 20 requests/s, no errors, 50 ms. Returns the handle
    /// and the address it listens on.
    pub async fn start(bind: SocketAddr) -> std::io::Result<(DemoService, SocketAddr)> {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            controls: Mutex::new(Controls {
                version: "v1".to_owned(),
                healthy: true,
                shape: TrafficShape {
                    rate: 20.0,
                    error_ratio: 0.0,
                    latency_ms: 50.0,
                    error_code: 500,
                },
                symlink: None,
            }),
            counters: Mutex::new(Counters::default()),
            history: Mutex::new(super::query::History::default()),
        });
        let (stop, stopped) = watch::channel(false);
        let app = Router::new()
            .route("/version", get(version))
            .route("/health", get(health))
            .route("/metrics", get(metrics))
            .route("/api/v1/query", get(query).post(query))
            .with_state(shared.clone());
        let mut server_stop = stopped.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = server_stop.wait_for(|stop| *stop).await;
            };
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(%error, "Demo service stopped serving");
            }
        });
        tokio::spawn(generate_traffic(shared.clone(), stopped, addr));
        let service = DemoService {
            shared,
            running: Arc::new(Running { stop }),
        };
        Ok((service, addr))
    }

    /// Sets the version served (when not following a symlink).
    pub fn set_version(&self, version: &str) {
        self.controls().version = version.to_owned();
    }

    /// Makes `/health` answer 200 (`true`) or 503 (`false`).
    pub fn set_healthy(&self, healthy: bool) {
        self.controls().healthy = healthy;
    }

    /// Sets the share (0..1) of synthetic requests that fail with 500.
    pub fn set_error_ratio(&self, ratio: f64) {
        self.controls().shape.error_ratio = ratio;
    }

    /// Sets the synthetic requests per second (0 stops the traffic).
    pub fn set_rate(&self, requests_per_second: f64) {
        self.controls().shape.rate = requests_per_second;
    }

    /// Sets the typical latency of synthetic requests.
    pub fn set_latency_ms(&self, latency_ms: f64) {
        self.controls().shape.latency_ms = latency_ms;
    }

    /// From now on, takes the version from the directory that `link` points
    /// at, and the behaviour from that directory's `broken` marker or
    /// `behaviour.toml` (see the [module docs](super)).
    pub fn follow_symlink(&self, link: &Path) {
        self.controls().symlink = Some(link.to_owned());
    }

    /// Requests counted so far for `version` with status `code`.
    pub fn requests(&self, version: &str, code: u16) -> u64 {
        lock(&self.shared.counters).requests(version, code)
    }

    /// Stops serving and generating traffic, for every clone of the handle.
    pub fn stop(&self) {
        let _ = self.running.stop.send(true);
    }

    fn controls(&self) -> MutexGuard<'_, Controls> {
        lock(&self.shared.controls)
    }
}

/// Locks `mutex`, also after a panic elsewhere: the data stays usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// The service as it is now: the controls, overridden by the release
    /// directory when following a symlink.
    fn effective(&self) -> Effective {
        let controls = lock(&self.controls).clone();
        let mut effective = Effective {
            version: Some(controls.version),
            healthy: controls.healthy,
            shape: controls.shape,
        };
        let Some(link) = controls.symlink else {
            return effective;
        };
        let Ok(dir) = std::fs::canonicalize(&link) else {
            effective.version = None;
            effective.healthy = false;
            return effective;
        };
        effective.version = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        if dir.join("broken").exists() {
            effective.healthy = false;
            effective.shape.error_ratio = BROKEN_ERROR_RATIO;
        }
        let behaviour = std::fs::read_to_string(dir.join("behaviour.toml"))
            .ok()
            .and_then(|text| toml::from_str::<ReleaseBehaviour>(&text).ok())
            .unwrap_or_default();
        effective.healthy = behaviour.healthy.unwrap_or(effective.healthy);
        let shape = &mut effective.shape;
        shape.error_ratio = behaviour.error_ratio.unwrap_or(shape.error_ratio);
        shape.latency_ms = behaviour.latency_ms.unwrap_or(shape.latency_ms);
        shape.rate = behaviour.rate.unwrap_or(shape.rate);
        shape.error_code = behaviour.error_code.unwrap_or(shape.error_code);
        effective
    }
}

/// Adds a step of synthetic traffic every [`TRAFFIC_STEP`] until stopped.
async fn generate_traffic(
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
    addr: SocketAddr,
) {
    let mut rng = SplitMix64::new(u64::from(addr.port()));
    let mut ticks = tokio::time::interval(TRAFFIC_STEP);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        let now = shared.effective();
        let (total, errors) = {
            let mut counters = lock(&shared.counters);
            if let Some(version) = &now.version {
                counters.add_traffic(version, now.shape, TRAFFIC_STEP.as_secs_f64(), &mut rng);
            }
            counters.totals()
        };
        lock(&shared.history).record(std::time::SystemTime::now(), total, errors);
    }
}

/// `GET /version`: `{"version": "..."}`, 503 when the release link is broken.
async fn version(State(shared): State<Arc<Shared>>) -> Response {
    match shared.effective().version {
        Some(version) => axum::Json(json!({ "version": version })).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "error": "no release is current" })),
        )
            .into_response(),
    }
}

/// `GET /health`: 200 `{"status":"ok"}` or 503 `{"status":"failing"}`.
async fn health(State(shared): State<Arc<Shared>>) -> Response {
    if shared.effective().healthy {
        axum::Json(json!({ "status": "ok" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "failing" })),
        )
            .into_response()
    }
}

/// `GET|POST /api/v1/query`: the demo's stand-in for Prometheus (see
/// [`super::query`]).
async fn query(
    State(shared): State<Arc<Shared>>,
    params: axum::extract::Query<super::query::QueryParams>,
) -> Response {
    let (status, body) = super::query::answer(&lock(&shared.history), &params);
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        axum::Json(body),
    )
        .into_response()
}

/// `GET /metrics`: the counters in Prometheus' text format.
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let body = lock(&shared.counters).render();
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("http://{addr}{path}"))
            .await
            .expect("demo service answers");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    #[tokio::test]
    async fn controls_change_what_is_served() {
        let (service, addr) = DemoService::start(([127, 0, 0, 1], 0).into())
            .await
            .expect("binds");
        assert_eq!(
            get(addr, "/version").await,
            (200, r#"{"version":"v1"}"#.into())
        );
        service.set_version("v2");
        service.set_healthy(false);
        assert_eq!(get(addr, "/version").await.1, r#"{"version":"v2"}"#);
        assert_eq!(
            get(addr, "/health").await,
            (503, r#"{"status":"failing"}"#.into())
        );
        let (status, metrics) = get(addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(metrics.contains("# TYPE demo_http_requests_total counter"));
        service.stop();
    }

    #[tokio::test]
    async fn a_rolled_back_symlink_restores_health() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (good, bad) = (dir.path().join("v1.0"), dir.path().join("v1.1"));
        std::fs::create_dir(&good).expect("mkdir");
        std::fs::create_dir(&bad).expect("mkdir");
        std::fs::write(bad.join("broken"), "").expect("marker");
        std::fs::write(good.join("behaviour.toml"), "latency_ms = 20.0\n").expect("toml");
        let link = dir.path().join("current");
        let point = |to: &Path| {
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(to, &link).expect("symlink");
        };
        let (service, addr) = DemoService::start(([127, 0, 0, 1], 0).into())
            .await
            .expect("binds");
        service.follow_symlink(&link);
        point(&bad);
        assert_eq!(get(addr, "/version").await.1, r#"{"version":"v1.1"}"#);
        assert_eq!(get(addr, "/health").await.0, 503);
        assert_eq!(shared_ratio(&service), BROKEN_ERROR_RATIO);
        point(&good);
        assert_eq!(get(addr, "/version").await.1, r#"{"version":"v1.0"}"#);
        assert_eq!(get(addr, "/health").await.0, 200);
        assert_eq!(shared_ratio(&service), 0.0);
        assert_eq!(service.shared.effective().shape.latency_ms, 20.0);
    }

    fn shared_ratio(service: &DemoService) -> f64 {
        service.shared.effective().shape.error_ratio
    }
}
