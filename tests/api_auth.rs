//! Every mutating route of the API, as the router declares them, refuses a
//! request without the token: 401 without a Bearer header, 403 with a
//! wrong token or with no token configured. Nothing reaches the journal.
//!
//! The routes are read from `src/api/mod.rs` itself, so that a route added
//! later is covered without anyone remembering to list it here.

#[allow(dead_code)]
mod common;

use common::{Harness, TOKEN};
use reqwest::StatusCode;

/// The paths of the router's POST routes, `{name}` filled with `api` (the
/// harness's one target).
fn mutating_paths() -> Vec<String> {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/mod.rs"))
        .expect("src/api/mod.rs is readable");
    // `.route("/path", post(handler))`, possibly over several lines.
    let flat: String = source.split_whitespace().collect();
    let mut paths = Vec::new();
    for piece in flat.split(".route(").skip(1) {
        let Some((path, rest)) = piece.strip_prefix('"').and_then(|p| p.split_once('"')) else {
            continue;
        };
        if rest.trim_start_matches(',').starts_with("post(") {
            paths.push(path.replace("{name}", "api"));
        }
    }
    paths
}

#[test]
fn the_router_s_mutating_routes_are_found() {
    let paths = mutating_paths();
    // The ones the docs list (docs/operations.md, "The HTTP API"); more may
    // come, none may disappear unnoticed.
    for known in [
        "/api/v1/reload",
        "/api/v1/releases",
        "/api/v1/targets/api/approve",
        "/api/v1/targets/api/rollback",
        "/api/v1/targets/api/time-to-fix",
        "/api/v1/pause",
        "/api/v1/resume",
    ] {
        assert!(paths.iter().any(|p| p == known), "{known} not in {paths:?}");
    }
}

#[tokio::test]
async fn every_mutating_route_needs_the_token() {
    let paths = mutating_paths();
    let configured = Harness::start(Some(TOKEN), Ok(())).await;
    let unconfigured = Harness::start(None, Ok(())).await;
    let body = br#"{"version":"v2","target":"api","minutes":20}"#.to_vec();
    for path in &paths {
        let before = configured.state.journal().records().len();
        for auth in [None, Some("Basic dXNlcjpwYXNz"), Some(TOKEN)] {
            let (status, answer) = configured.post(path, auth, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{path} with {auth:?}: {answer}"
            );
        }
        for wrong in [
            "Bearer wrong",
            "Bearer s3cret-token-",
            "bearer S3CRET-TOKEN",
        ] {
            let (status, answer) = configured.post(path, Some(wrong), body.clone()).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{path} with {wrong}: {answer}"
            );
            let text = answer.to_string();
            assert!(!text.contains(TOKEN), "{path} echoes the token: {text}");
        }
        let bearer = format!("Bearer {TOKEN}");
        for auth in [None, Some(bearer.as_str())] {
            let (status, answer) = unconfigured.post(path, auth, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{path} unconfigured: {answer}"
            );
        }
        assert_eq!(
            configured.state.journal().records().len(),
            before,
            "a refused {path} reached the journal"
        );
        // The right token passes the gate (whatever the handler answers).
        let (status, answer) = configured.post(path, Some(&bearer), body.clone()).await;
        assert!(
            status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
            "{path} refuses the right token: {status} {answer}"
        );
    }
    assert_eq!(configured.reloads_seen(), 1, "only the accepted reload");
    assert_eq!(unconfigured.reloads_seen(), 0);
    assert!(unconfigured.state.journal().records().is_empty());
}
