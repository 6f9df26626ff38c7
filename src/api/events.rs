//! `GET /api/v1/events`: the journal, filtered by target and position, for
//! operators and incident reports.
//!
//! Query parameters, all optional:
//! - `target=NAME`: only records about this target;
//! - `since=X`: a sequence number (records *after* it, for paging: pass the
//!   last `seq` seen) or an RFC 3339 UTC timestamp such as
//!   `2025-01-31T12:00:00Z` (records written at or after it);
//! - `limit=N`: at most N records, 1 to 10000, 1000 by default.
//!
//! Records come in journal order (ascending `seq`).

use super::error::ApiError;
use crate::journal::{Record, Since};
use crate::state::State;
use axum::Json;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use serde::{Deserialize, Serialize};

/// Records answered when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 1000;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 10_000;

/// The raw query string; every value is parsed by hand so that an error
/// names its parameter.
#[derive(Debug, Deserialize)]
pub(super) struct EventsQuery {
    target: Option<String>,
    since: Option<String>,
    limit: Option<String>,
}

/// The answer.
#[derive(Debug, Serialize)]
struct EventsBody {
    events: Vec<Record>,
}

/// Answers the journal's records that match the query.
pub(super) async fn events(
    state: axum::extract::State<State>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(query) = query?;
    let since = match query.since.as_deref() {
        None | Some("") => Since::All,
        Some(text) => parse_since(text)?,
    };
    let limit = match query.limit.as_deref() {
        None | Some("") => DEFAULT_LIMIT,
        Some(text) => parse_limit(text)?,
    };
    let target = query.target.filter(|t| !t.is_empty());
    let state = state.0;
    // The journal may read its file: keep that off the async workers.
    let events =
        tokio::task::spawn_blocking(move || state.journal().query(target.as_deref(), since, limit))
            .await
            .map_err(|error| {
                tracing::error!(%error, "Journal query failed");
                ApiError::internal("the journal query failed; see rollguard's log")
            })?;
    let body = serde_json::to_value(EventsBody { events }).map_err(|error| {
        tracing::error!(%error, "Cannot encode journal records");
        ApiError::internal("cannot encode journal records; see rollguard's log")
    })?;
    Ok(Json(body))
}

/// Reads `since`: a sequence number or an RFC 3339 timestamp.
pub(super) fn parse_since(text: &str) -> Result<Since, ApiError> {
    let text = text.trim();
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(Since::Seq).map_err(|_| {
            ApiError::bad_request(format!(
                "bad `since` {text:?}: the sequence number is too large"
            ))
        });
    }
    humantime::parse_rfc3339_weak(text)
        .map(Since::Time)
        .map_err(|error| {
            ApiError::bad_request(format!(
                "bad `since` {text:?}: expected a sequence number or an RFC 3339 UTC \
                 timestamp such as 2025-01-31T12:00:00Z ({error})"
            ))
        })
}

/// Reads `limit`: 1 to [`MAX_LIMIT`].
pub(super) fn parse_limit(text: &str) -> Result<usize, ApiError> {
    match text.trim().parse::<usize>() {
        Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        _ => Err(ApiError::bad_request(format!(
            "bad `limit` {text:?}: expected a whole number from 1 to {MAX_LIMIT}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn since_is_a_sequence_number_or_a_timestamp() {
        assert!(matches!(parse_since("42"), Ok(Since::Seq(42))));
        assert!(matches!(parse_since("0"), Ok(Since::Seq(0))));
        match parse_since("2025-01-31T12:00:00Z") {
            Ok(Since::Time(t)) => {
                assert_eq!(t, UNIX_EPOCH + Duration::from_secs(1_738_324_800))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_since("2025-01-31T12:00:00.5Z"),
            Ok(Since::Time(_))
        ));
        for bad in [
            "-1",
            "yesterday",
            "99999999999999999999999",
            "2025-13-01T00:00:00Z",
        ] {
            let error = parse_since(bad).expect_err(bad);
            assert_eq!(error.status, axum::http::StatusCode::BAD_REQUEST);
            assert!(error.message.contains("`since`"), "{}", error.message);
        }
    }

    #[test]
    fn limit_is_bounded() {
        assert_eq!(parse_limit("1").ok(), Some(1));
        assert_eq!(parse_limit("10000").ok(), Some(MAX_LIMIT));
        for bad in ["0", "10001", "-5", "ten"] {
            let error = parse_limit(bad).expect_err(bad);
            assert!(error.message.contains("`limit`"), "{}", error.message);
        }
    }
}
