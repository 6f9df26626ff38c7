//! HTTP API: health, readiness, metrics, status, events and control.
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /healthz` | anyone | 200 `{"status":"ok"}` while the process runs |
//! | `GET /readyz` | anyone | 200 when ready, else 503 |
//! | `GET /metrics` | anyone | rollguard's metrics, OpenMetrics text |
//! | `GET /api/v1/status` | anyone | version, readiness, every target |
//! | `GET /api/v1/events` | anyone | journal records (see [`events`]) |
//! | `POST /api/v1/reload` | token | re-read the configuration file |
//! | `POST /api/v1/releases` | token | announce a release `{"target", "version", "previous_version"?}` |
//! | `POST /api/v1/targets/{name}/approve` | token | approve the rollback waiting for a human |
//! | `POST /api/v1/targets/{name}/rollback` | token | a person's rollback `{"to"?, "dry_run"?, "expected"?}` (see [`rollback`]) |
//! | `POST /api/v1/targets/{name}/time-to-fix` | token | `{"time_to_fix": "20m"}` (or null) |
//! | `POST /api/v1/pause`, `/api/v1/resume` | token | kill switch, `{"target"?}` |
//!
//! Mutating calls need the bearer token of `daemon.api_token_file` (see
//! [`RequireToken`]); without one configured they are refused, never open.
//! Every error is JSON `{"error": "message"}` ([`ApiError`]), including
//! unknown routes (404), wrong methods (405), bodies over [`BODY_LIMIT`]
//! (413) and path parameters that cannot be read (400, [`ApiPath`]); a
//! last layer rewrites any other plain-text error answer (one of axum's or
//! tower-http's own) as JSON too. Request headers are never logged.
//!
//! - `error`: [`ApiError`].
//! - `auth`: [`RequireToken`].
//! - `body`: [`ApiJson`], JSON bodies within the limit.
//! - `path`: [`ApiPath`], path parameters.
//! - `read`: the open endpoints; `events`: the journal query;
//!   `control`: reload; `targets`: announce, approve, time to fix, pause;
//!   `rollback`: a person's rollback and its dry run.

mod auth;
mod body;
mod control;
mod error;
pub mod events;
mod path;
mod read;
pub mod rollback;
mod targets;

pub use auth::RequireToken;
pub use body::ApiJson;
pub use control::RELOAD_TIMEOUT;
pub use error::ApiError;
pub use path::ApiPath;
pub use read::{METRICS_CONTENT_TYPE, StatusBody};

use crate::state::State;
use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};
use std::future::Future;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

/// The largest request body accepted, in bytes (64 KiB): announcements and
/// approvals are small, and a daemon that acts on production must not be
/// made to buffer arbitrary input.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Every route, with the body limit, JSON errors and request tracing.
pub fn router(state: State) -> Router {
    let routes = Router::new()
        .route("/healthz", get(read::healthz))
        .route("/readyz", get(read::readyz))
        .route("/metrics", get(read::metrics))
        .route("/api/v1/status", get(read::status))
        .route("/api/v1/events", get(events::events))
        .route("/api/v1/reload", post(control::reload))
        .route("/api/v1/releases", post(targets::announce))
        .route("/api/v1/targets/{name}/approve", post(targets::approve))
        .route("/api/v1/targets/{name}/rollback", post(rollback::rollback))
        .route(
            "/api/v1/targets/{name}/time-to-fix",
            post(targets::time_to_fix),
        )
        .route("/api/v1/pause", post(targets::pause))
        .route("/api/v1/resume", post(targets::resume))
        .with_state(state);
    with_layers(routes)
}

/// Serves the API on `listener` until `shutdown` completes, then stops
/// accepting connections and waits for requests in flight to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: State,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "HTTP API listening");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Adds what every route shares: JSON 404 and 405, the body limit with a
/// JSON 413, every other error answer as JSON, and request tracing (method
/// and path; never headers).
fn with_layers(routes: Router) -> Router {
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(axum::middleware::map_response(json_errors))
        .layer(TraceLayer::new_for_http())
}

/// Unknown routes.
async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no such route: {}", uri.path()))
}

/// Known routes with another method.
async fn method_not_allowed(uri: Uri) -> ApiError {
    ApiError::method_not_allowed(format!("method not allowed on {}", uri.path()))
}

/// The most of a plain-text error body kept as the JSON error's message.
const PLAIN_ERROR_LIMIT: usize = 4 * 1024;

/// Rewrites an error answer that is not JSON as `{"error": "..."}` with the
/// same status (and headers such as `Allow`): the plain-text 413 of
/// [`RequestBodyLimitLayer`] (sent when `Content-Length` is over the
/// limit), and any rejection of an extractor that a handler did not wrap.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return axum::response::IntoResponse::into_response(ApiError::payload_too_large(
            BODY_LIMIT,
        ));
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, PLAIN_ERROR_LIMIT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned()
    } else {
        text
    };
    let json = axum::response::IntoResponse::into_response(ApiError::new(status, message));
    let (json_parts, json_body) = json.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &json_parts.headers {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, json_body)
}
