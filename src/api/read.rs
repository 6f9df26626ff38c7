//! Read-only endpoints, open to anyone who can reach the listener:
//! liveness, readiness, rollguard's own metrics and the daemon's status.

use super::error::ApiError;
use crate::state::{State, TargetStatus};
use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

/// The content type of `/metrics`: what prometheus-client's text encoder
/// writes (OpenMetrics 1.0, ending with `# EOF`).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /healthz`: 200 while the process serves HTTP at all.
pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 once the watchdogs run, 503 before and while
/// shutting down, so that a load balancer or Kubernetes waits.
///
/// A target whose watcher stopped unexpectedly (and is started again by
/// its supervisor) makes the answer `"status": "degraded"` with the
/// targets named, still 200: as a sidecar, rollguard's readiness gates the
/// pod's traffic, and one target's failed watcher must not take the
/// service it watches out of its load balancer. Alert on
/// `rollguard_watcher_failures_total` instead.
pub(super) async fn readyz(state: axum::extract::State<State>) -> Result<Response, ApiError> {
    if state.is_ready() {
        let failed: Vec<serde_json::Value> = state
            .targets()
            .into_iter()
            .filter_map(|t| {
                let failure = t.watcher_failure?;
                Some(json!({
                    "target": t.name,
                    "failures": failure.failures,
                    "last_failure": failure.last_failure,
                    "watched": !failure.down,
                }))
            })
            .collect();
        if failed.is_empty() {
            return Ok(Json(json!({"status": "ready"})).into_response());
        }
        Ok(Json(json!({"status": "degraded", "watcher_failures": failed})).into_response())
    } else {
        Err(ApiError::unavailable(
            "not ready: rollguard is starting or shutting down",
        ))
    }
}

/// `GET /metrics`: rollguard's own metrics for Prometheus.
pub(super) async fn metrics(state: axum::extract::State<State>) -> Response {
    let mut response = state.metrics().encode().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(METRICS_CONTENT_TYPE),
    );
    response
}

/// The answer of `GET /api/v1/status`.
#[derive(Debug, Serialize)]
pub struct StatusBody {
    /// rollguard's version (`CARGO_PKG_VERSION`).
    pub version: &'static str,
    /// Whether the daemon is ready (as `/readyz`).
    pub ready: bool,
    /// Whether this replica leads (always true without leader election).
    pub leader: bool,
    /// Every watched target, by name.
    pub targets: Vec<TargetStatus>,
}

/// `GET /api/v1/status`: version, readiness and every target's status.
pub(super) async fn status(state: axum::extract::State<State>) -> Json<StatusBody> {
    Json(StatusBody {
        version: env!("CARGO_PKG_VERSION"),
        ready: state.is_ready(),
        leader: state.is_leader(),
        targets: state.targets(),
    })
}
