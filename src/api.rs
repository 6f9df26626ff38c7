//! HTTP API (stub; the helper implements it).

use crate::state::State;
use axum::Router;

/// All routes.
pub fn router(_state: State) -> Router {
    Router::new()
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: State,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
