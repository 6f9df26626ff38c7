//! HTTP API (stub; the helper implements it).

use crate::state::State;
use axum::Router;

/// All routes.
pub fn router(_state: State) -> Router {
    Router::new()
}
