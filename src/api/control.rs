//! Mutating endpoints: each takes [`RequireToken`] first. Today: reload;
//! announce, approve, pause and time-to-fix join here.

use super::auth::RequireToken;
use super::error::ApiError;
use crate::state::{Control, State};
use axum::Json;
use serde_json::json;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long `POST /api/v1/reload` waits for the daemon's answer.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// `POST /api/v1/reload`: re-reads the configuration file as SIGHUP does.
/// 200 when applied; 422 with the errors when the file is wrong (the old
/// configuration stays in force); 503 when the daemon's control loop is
/// gone; 504 when it does not answer within [`RELOAD_TIMEOUT`].
pub(super) async fn reload(
    _token: RequireToken,
    state: axum::extract::State<State>,
) -> Result<Json<serde_json::Value>, ApiError> {
    ask_reload(&state, RELOAD_TIMEOUT).await?;
    tracing::info!("Configuration reloaded through the API");
    Ok(Json(json!({"status": "reloaded"})))
}

/// Asks the control loop to reload and waits up to `timeout` for its answer.
async fn ask_reload(state: &State, timeout: Duration) -> Result<(), ApiError> {
    let (reply, answer) = oneshot::channel();
    let ask = async {
        state
            .control()
            .send(Control::Reload { reply })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())
    };
    match tokio::time::timeout(timeout, ask).await {
        Err(_elapsed) => Err(ApiError::timeout(format!(
            "the daemon did not answer within {} s; the reload may still be applied \
             (see rollguard's log)",
            timeout.as_secs()
        ))),
        Ok(Err(error)) => Err(error),
        Ok(Ok(Err(message))) => Err(ApiError::unprocessable(format!(
            "configuration not reloaded, the previous one stays in force: {message}"
        ))),
        Ok(Ok(Ok(()))) => Ok(()),
    }
}

/// The answer when the control loop no longer listens (shutting down).
fn closed() -> ApiError {
    ApiError::unavailable("the daemon's control loop is not running (shutting down?)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Journal;
    use axum::http::StatusCode;
    use std::sync::Arc;
    use tokio::sync::mpsc;

    #[tokio::test]
    async fn a_silent_control_loop_times_out() {
        let text = "[[target]]\nname = \"api\"\n[target.release]\nkind = \"announce\"\n";
        let config = crate::config::parse(text, std::path::Path::new("t.toml")).expect("config");
        let dir = tempfile::tempdir().expect("tempdir");
        let (journal, _) = Journal::open(dir.path()).expect("journal");
        // The receiver stays alive and never answers.
        let (control, _requests) = mpsc::channel(1);
        let state = State::new(Arc::new(config), None, journal, control);
        let error = ask_reload(&state, Duration::from_millis(50))
            .await
            .expect_err("no answer");
        assert_eq!(error.status, StatusCode::GATEWAY_TIMEOUT);
        assert!(error.message.contains("may still be applied"), "{error}");
    }
}
