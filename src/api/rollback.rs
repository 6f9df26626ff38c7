//! `POST /api/v1/targets/{name}/rollback`: a person's rollback of the
//! release running now (`rollguard rollback`), or its dry run.
//!
//! Body (every key optional): `{"to": "v1.2.0", "dry_run": true,
//! "expected": {"from": "v1.3.0", "to": "v1.2.0"}}`.
//!
//! - `dry_run: true`: 200 with the plan (from, to, mode, the steps in
//!   order, the servers' dry runs, and `refused` when running it would be
//!   refused now). Nothing runs and no rollback is journaled.
//! - otherwise: 202 once the rollback is journaled as started, with the
//!   same plan, its `release_id` and `journal_seq`; the pipeline then runs
//!   in the daemon (minutes, maybe), whatever happens to the caller: follow
//!   it in `GET /api/v1/events?target=NAME&since=<journal_seq - 1>`.
//! - 409 with the reason when a rollback is already running, the version
//!   to bring back is unknown and no `to` is given, `to` is the running
//!   version, this replica does not lead, the target is in shadow mode, or
//!   `expected` no longer matches; 400 for a `to` that is not a version.
//!
//! The pause (kill switch) does not stop it: the switch stops rollguard
//! acting by itself, not a person. It does not count for the cooldown.

use super::auth::RequireToken;
use super::body::ApiJson;
use super::error::ApiError;
use super::path::ApiPath;
use super::targets::ask;
use crate::state::{RollbackRequest, State, TargetCommand};
use axum::Json;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RollbackBody {
    /// The version to bring back; the one before the running release when
    /// absent.
    #[serde(default)]
    to: Option<String>,
    /// Only say what would run.
    #[serde(default)]
    dry_run: bool,
    /// The plan the person confirmed.
    #[serde(default)]
    expected: Option<Expected>,
}

/// The versions of a plan that a person confirmed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Expected {
    from: String,
    to: String,
}

/// `POST /api/v1/targets/{name}/rollback` (see the module's doc).
pub(super) async fn rollback(
    _token: RequireToken,
    state: axum::extract::State<State>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let to = body
        .to
        .as_deref()
        .map(crate::release::validate_version)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("to: {e}")))?;
    // The loop runs a pipeline inline, so it cannot answer while one
    // runs: the status says so at once.
    let running = state
        .targets()
        .into_iter()
        .find(|t| t.name == name)
        .and_then(|t| t.rollback);
    if let Some(running) = running {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "a rollback of {name} is already running ({} from {} to {}, release {}, started {}): follow it with `rollguard status` or GET /api/v1/events?target={name}&since={}",
                running.trigger,
                running.from,
                running.to,
                running.release_id,
                running.started_at,
                running.journal_seq.saturating_sub(1)
            ),
        ));
    }
    let request = RollbackRequest {
        to,
        dry_run: body.dry_run,
        expected: body.expected.map(|e| (e.from, e.to)),
    };
    let plan = ask(&state, &name, |reply| TargetCommand::Rollback {
        request,
        reply,
    })
    .await?;
    let status = if plan.dry_run {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let body = serde_json::to_value(&plan)
        .map_err(|e| ApiError::internal(format!("cannot encode the plan: {e}")))?;
    Ok((status, Json(body)))
}
