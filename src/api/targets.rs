//! Mutating endpoints about targets: announce a release, approve a
//! rollback, set the time to fix, pause and resume automatic action. Each
//! takes [`RequireToken`] first; each is journaled by whoever acts on it.

use super::auth::RequireToken;
use super::body::ApiJson;
use super::error::ApiError;
use super::path::ApiPath;
use crate::journal::Event;
use crate::state::{CommandError, State, TargetCommand};
use axum::Json;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a command waits for a target's watchdog, which may be in the
/// middle of a tick.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// `POST /api/v1/releases` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Announcement {
    target: String,
    version: String,
    #[serde(default)]
    previous_version: Option<String>,
}

/// `POST /api/v1/releases`: CI announces a release of an `announce` target.
/// 202 with the release id; 404 unknown target; 409 not an announce target
/// or already running; 400 a version that is not one.
pub(super) async fn announce(
    _token: RequireToken,
    state: axum::extract::State<State>,
    ApiJson(body): ApiJson<Announcement>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let version = crate::release::validate_version(&body.version)
        .map_err(|e| ApiError::bad_request(format!("version: {e}")))?;
    let previous = body
        .previous_version
        .as_deref()
        .map(crate::release::validate_version)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("previous_version: {e}")))?;
    let release_id = ask(&state, &body.target, |reply| TargetCommand::Announce {
        version: version.clone(),
        previous,
        reply,
    })
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"target": body.target, "version": version, "release_id": release_id})),
    ))
}

/// `POST /api/v1/targets/{name}/approve`: approves the rollback waiting for
/// a human. 200 when it starts; 409 when nothing waits (or shadow mode).
pub(super) async fn approve(
    _token: RequireToken,
    state: axum::extract::State<State>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let message = ask(&state, &name, |reply| TargetCommand::Approve { reply }).await?;
    Ok(Json(json!({"target": name, "status": message})))
}

/// `POST /api/v1/targets/{name}/time-to-fix` body: `{"time_to_fix": "20m"}`,
/// or `null` to return to the configured estimate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TimeToFix {
    time_to_fix: Option<String>,
}

/// `POST /api/v1/targets/{name}/time-to-fix`: an operator's estimate of how
/// long a forward fix takes, used by the decision matrix from the next tick.
pub(super) async fn time_to_fix(
    _token: RequireToken,
    state: axum::extract::State<State>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<TimeToFix>,
) -> Result<Json<Value>, ApiError> {
    let time_to_fix = body
        .time_to_fix
        .as_deref()
        .map(humantime::parse_duration)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("time_to_fix: {e} (like \"20m\" or \"2h\")")))?;
    let message = ask(&state, &name, |reply| TargetCommand::SetTimeToFix {
        time_to_fix,
        reply,
    })
    .await?;
    Ok(Json(json!({"target": name, "status": message})))
}

/// `POST /api/v1/pause` and `/api/v1/resume` body: a target, or none for
/// every target.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct PauseBody {
    #[serde(default)]
    target: Option<String>,
}

/// `POST /api/v1/pause`: the kill switch. No automatic rollback starts
/// (rollbacks wait for approval instead) until `resume`. Survives restarts.
pub(super) async fn pause(
    token: RequireToken,
    state: axum::extract::State<State>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    set_paused(token, state, body, true).await
}

/// `POST /api/v1/resume`: undoes `pause`.
pub(super) async fn resume(
    token: RequireToken,
    state: axum::extract::State<State>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    set_paused(token, state, body, false).await
}

async fn set_paused(
    _token: RequireToken,
    state: axum::extract::State<State>,
    body: axum::body::Bytes,
    paused: bool,
) -> Result<Json<Value>, ApiError> {
    let target = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<PauseBody>(&body)
            .map_err(|e| ApiError::bad_request(format!("body: {e}")))?
            .target
    };
    if let Some(name) = &target
        && state.commands(name).is_none()
    {
        return Err(ApiError::not_found(format!("no target named {name}")));
    }
    // Journaled first: the switch must survive a restart.
    state
        .journal()
        .append_async(target.as_deref(), Event::PauseChanged { paused })
        .await
        .map_err(|e| ApiError::internal(format!("cannot journal the change: {e}")))?;
    state.set_paused(target.as_deref(), paused);
    let scope = target.clone().unwrap_or_else(|| "every target".to_owned());
    tracing::warn!(scope = %scope, paused, "Automatic action {}", if paused { "paused" } else { "resumed" });
    Ok(Json(json!({
        "target": target,
        "paused": paused,
        "status": format!("automatic action {} for {scope}", if paused { "paused" } else { "resumed" }),
    })))
}

/// Sends a command to a target's watchdog and waits for its answer.
pub(super) async fn ask<T>(
    state: &State,
    target: &str,
    command: impl FnOnce(oneshot::Sender<Result<T, CommandError>>) -> TargetCommand,
) -> Result<T, ApiError> {
    let sender = state
        .commands(target)
        .ok_or_else(|| ApiError::not_found(format!("no target named {target}")))?;
    let (reply, answer) = oneshot::channel();
    let gone = || ApiError::unavailable(format!("the watchdog of {target} is not running"));
    let exchange = async {
        sender.send(command(reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())
    };
    match tokio::time::timeout(COMMAND_TIMEOUT, exchange).await {
        Err(_) => Err(ApiError::timeout(format!(
            "the watchdog of {target} did not answer within {} s (busy rolling back?)",
            COMMAND_TIMEOUT.as_secs()
        ))),
        Ok(Err(error)) => Err(error),
        Ok(Ok(Err(CommandError::Refused(why)))) => Err(ApiError::new(StatusCode::CONFLICT, why)),
        Ok(Ok(Err(CommandError::Failed(why)))) => Err(ApiError::internal(why)),
        Ok(Ok(Ok(message))) => Ok(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Journal;
    use std::sync::Arc;
    use tokio::sync::mpsc;

    /// A state whose target `api` answers every command with `answer`.
    fn answering(dir: &std::path::Path, answer: Result<String, CommandError>) -> State {
        let text = "[[target]]\nname = \"api\"\n[target.release]\nkind = \"announce\"\n";
        let config = crate::config::parse(text, std::path::Path::new("t.toml")).expect("config");
        let (journal, _) = Journal::open(dir).expect("journal");
        let (control, _) = mpsc::channel(1);
        let state = State::new(Arc::new(config), None, journal, control);
        let (commands, mut received) = mpsc::channel(1);
        state.set_commands("api", commands);
        tokio::spawn(async move {
            if let Some(TargetCommand::Approve { reply }) = received.recv().await {
                let _ = reply.send(answer);
            }
        });
        state
    }

    #[tokio::test]
    async fn a_refusal_is_a_conflict_and_a_failure_a_server_error() {
        for (answer, status) in [
            (Ok("approved".to_owned()), None),
            (
                Err(CommandError::Refused("nothing waits".to_owned())),
                Some(StatusCode::CONFLICT),
            ),
            (
                Err(CommandError::Failed("cannot journal".to_owned())),
                Some(StatusCode::INTERNAL_SERVER_ERROR),
            ),
        ] {
            let dir = tempfile::tempdir().expect("temp dir");
            let state = answering(dir.path(), answer);
            let asked = ask(&state, "api", |reply| TargetCommand::Approve { reply }).await;
            assert_eq!(asked.as_ref().err().map(|e| e.status), status, "{asked:?}");
        }
    }
}
