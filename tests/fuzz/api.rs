//! The API's request parsing, against a real server on 127.0.0.1: any
//! method, route, path parameter, query, header and body is answered, never
//! with a dropped connection (a panicking handler) nor a 500, and every
//! error is JSON `{"error": "..."}`.

#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;

use common::{Harness, TOKEN};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

/// One request.
#[derive(Debug, Clone)]
struct Request {
    method: reqwest::Method,
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// A path segment: plain, percent-encoded bytes (also not UTF-8), or odd.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("api".to_owned()),
        "[a-zA-Z0-9._~-]{0,16}",
        proptest::collection::vec(any::<u8>(), 0..8)
            .prop_map(|bytes| bytes.iter().map(|b| format!("%{b:02X}")).collect()),
        Just("%C0%AE".to_owned()),
        Just("%".to_owned()),
        Just("..".to_owned()),
    ]
}

/// A query string value.
fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("api".to_owned()),
        "[0-9]{0,25}",
        Just("2026-12-04T03:00:00Z".to_owned()),
        Just("-1".to_owned()),
        "[ -~]{0,12}".prop_map(|s| s.bytes().map(|b| format!("%{b:02X}")).collect()),
        proptest::collection::vec(any::<u8>(), 0..6)
            .prop_map(|bytes| bytes.iter().map(|b| format!("%{b:02X}")).collect()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let routes = prop_oneof![
        Just("/healthz".to_owned()),
        Just("/readyz".to_owned()),
        Just("/metrics".to_owned()),
        Just("/api/v1/status".to_owned()),
        Just("/api/v1/reload".to_owned()),
        Just("/api/v1/releases".to_owned()),
        Just("/api/v1/pause".to_owned()),
        Just("/api/v1/resume".to_owned()),
        segment().prop_map(|s| format!("/api/v1/targets/{s}/approve")),
        segment().prop_map(|s| format!("/api/v1/targets/{s}/rollback")),
        segment().prop_map(|s| format!("/api/v1/targets/{s}/time-to-fix")),
        segment().prop_map(|s| format!("/api/v1/{s}")),
        (
            proptest::sample::select(vec!["target", "since", "limit", "other"]),
            query_value(),
            proptest::sample::select(vec!["target", "since", "limit"]),
            query_value(),
        )
            .prop_map(|(k1, v1, k2, v2)| format!("/api/v1/events?{k1}={v1}&{k2}={v2}")),
    ];
    routes
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|x| json!(x)),
        Just(json!(u64::MAX)),
        ".{0,20}".prop_map(Value::String),
        Just(json!("20m")),
        Just(json!("99999999999y")),
        Just(json!("api")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body: a real one with a field given any value or a field added, any
/// JSON, or any bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let real = proptest::sample::select(vec![
        json!({"target": "api", "version": "1.2", "previous_version": "1.1"}),
        json!({"to": "1.0", "dry_run": true, "expected": {"from": "1.2", "to": "1.0"}}),
        json!({"time_to_fix": "20m"}),
        json!({"target": "api"}),
        json!({}),
    ]);
    prop_oneof![
        (real.clone(), ".{0,12}", json_value()).prop_map(|(mut body, key, value)| {
            if let Value::Object(map) = &mut body {
                let key = map.keys().next().cloned().unwrap_or(key);
                map.insert(key, value);
            }
            body.to_string().into_bytes()
        }),
        (real, ".{0,12}", json_value()).prop_map(|(mut body, key, value)| {
            if let Value::Object(map) = &mut body {
                map.insert(key, value);
            }
            body.to_string().into_bytes()
        }),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..256),
        Just(Vec::new()),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (
        proptest::sample::select(vec![
            reqwest::Method::GET,
            reqwest::Method::POST,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ]),
        path(),
        prop_oneof![
            4 => Just(Some(format!("Bearer {TOKEN}"))),
            1 => Just(None),
            1 => "[ -~]{0,30}".prop_map(Some),
        ],
        prop_oneof![
            4 => Just(Some("application/json".to_owned())),
            1 => Just(None),
            1 => "[ -~]{0,30}".prop_map(Some),
        ],
        body(),
    )
        .prop_map(
            |(method, path, authorization, content_type, body)| Request {
                method,
                path,
                authorization,
                content_type,
                body,
            },
        )
}

/// Sends `request`; the answer must be there, and JSON if it is an error.
async fn answered(h: &Harness, http: &reqwest::Client, r: Request) -> Result<(), TestCaseError> {
    let url = format!("{}{}", h.base, r.path);
    let mut builder = http.request(r.method.clone(), &url).body(r.body.clone());
    if let Some(value) = &r.authorization {
        builder = builder.header("authorization", value);
    }
    if let Some(value) = &r.content_type {
        builder = builder.header("content-type", value);
    }
    let Ok(built) = builder.build() else {
        // A header value reqwest itself refuses never reaches the server.
        return Ok(());
    };
    let response = http
        .execute(built)
        .await
        .map_err(|e| TestCaseError::fail(format!("no answer (a panic?): {e}")))?;
    let status = response.status();
    prop_assert!(
        status != reqwest::StatusCode::INTERNAL_SERVER_ERROR,
        "{r:?}"
    );
    if status.is_client_error() || status.is_server_error() {
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        prop_assert_eq!(
            content_type.as_str(),
            "application/json",
            "{:?} {}",
            r,
            status
        );
        let body: Value = response
            .json()
            .await
            .map_err(|e| TestCaseError::fail(format!("{r:?}: not JSON: {e}")))?;
        prop_assert!(body["error"].is_string(), "{:?}: {}", r, body);
    }
    Ok(())
}

#[test]
fn every_request_is_answered_and_every_error_is_json() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let h = runtime.block_on(Harness::start(Some(TOKEN), Ok(())));
    let http = reqwest::Client::new();
    let mut runner = TestRunner::new(Config::default());
    let result = runner.run(&request(), |r| runtime.block_on(answered(&h, &http, r)));
    if let Err(e) = result {
        panic!("{e}");
    }
    let (status, _) = runtime.block_on(h.get("/healthz"));
    assert_eq!(status, reqwest::StatusCode::OK);
    runtime.block_on(h.shutdown());
}
