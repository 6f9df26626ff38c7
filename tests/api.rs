//! The HTTP API against a real server on 127.0.0.1:0, with reqwest as the
//! client and a fake control loop answering reloads.

mod common;

use common::{Harness, TOKEN};
use reqwest::StatusCode;
use rollguard::journal::Event;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

#[tokio::test]
async fn healthz_is_ok_and_readyz_follows_readiness() {
    let h = Harness::start(Some(TOKEN), Ok(())).await;
    let (status, body) = h.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));

    let (status, body) = h.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|m| m.contains("not ready")),
        "{body}"
    );

    h.state.set_ready(true);
    let (status, _) = h.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn status_lists_version_readiness_and_targets() {
    let h = Harness::start(Some(TOKEN), Ok(())).await;
    h.state.set_ready(true);
    h.state.update_target("api", |t| {
        t.current_version = Some("v1.3.0".into());
        t.ticks = 7;
    });
    let (status, body) = h.get("/api/v1/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["ready"], true);
    assert_eq!(body["targets"][0]["name"], "api");
    assert_eq!(body["targets"][0]["mode"], "shadow");
    assert_eq!(body["targets"][0]["current_version"], "v1.3.0");
    assert_eq!(body["targets"][0]["ticks"], 7);
}

#[tokio::test]
async fn reload_without_any_configured_token_is_refused() {
    let h = Harness::start(None, Ok(())).await;
    // Even a request that carries some token: there is nothing to match.
    for auth in [None, Some("Bearer anything")] {
        let (status, body) = h.post("/api/v1/reload", auth, b"{}".to_vec()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let message = body["error"].as_str().unwrap_or_default();
        assert!(message.contains("daemon.api_token_file"), "{body}");
    }
    assert_eq!(h.reloads_seen(), 0);
}

#[tokio::test]
async fn reload_without_a_bearer_header_is_unauthorized() {
    let h = Harness::start(Some(TOKEN), Ok(())).await;
    for auth in [
        None,
        Some("Basic dXNlcjpwYXNz"),
        Some("Bearer "),
        Some(TOKEN),
    ] {
        let response = h.post_raw("/api/v1/reload", auth, b"{}".to_vec()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.as_bytes()),
            Some(b"Bearer".as_slice())
        );
        let body: Value = response.json().await.expect("JSON error");
        assert!(body["error"].is_string(), "{body}");
    }
    assert_eq!(h.reloads_seen(), 0);
}

#[tokio::test]
async fn reload_with_a_wrong_token_is_forbidden() {
    let h = Harness::start(Some(TOKEN), Ok(())).await;
    for wrong in [
        "Bearer wrong",
        "Bearer s3cret-token-x",
        "Bearer s3cret-toke",
    ] {
        let (status, body) = h.post("/api/v1/reload", Some(wrong), b"{}".to_vec()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{wrong}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            !message.contains("wrong") && !message.contains(TOKEN),
            "{body}"
        );
    }
    assert_eq!(h.reloads_seen(), 0);
}

#[tokio::test]
async fn reload_with_the_token_reports_the_daemons_answer() {
    let auth = format!("Bearer {TOKEN}");
    let h = Harness::start(Some(TOKEN), Ok(())).await;
    let (status, body) = h.post("/api/v1/reload", Some(&auth), Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "reloaded"}));
    assert_eq!(h.reloads_seen(), 1);
    // The scheme name is case-insensitive.
    let (status, _) = h
        .post(
            "/api/v1/reload",
            Some(&format!("bearer {TOKEN}")),
            Vec::new(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let errors = "test.toml: 1 error\n  test.toml: line 3: target[0].name: empty";
    let h = Harness::start(Some(TOKEN), Err(errors.into())).await;
    let (status, body) = h.post("/api/v1/reload", Some(&auth), Vec::new()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = body["error"].as_str().unwrap_or_default();
    assert!(message.contains("target[0].name: empty"), "{body}");
}

#[tokio::test]
async fn reload_when_the_control_loop_is_gone_is_unavailable() {
    let h = Harness::start_without_control_loop(Some(TOKEN)).await;
    let (status, body) = h
        .post(
            "/api/v1/reload",
            Some(&format!("Bearer {TOKEN}")),
            Vec::new(),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["error"].is_string(), "{body}");
}

#[tokio::test]
async fn oversized_body_is_refused_even_with_the_token() {
    let h = Harness::start(Some(TOKEN), Ok(())).await;
    let body = vec![b' '; 100 * 1024];
    let (status, answer) = h
        .post("/api/v1/reload", Some(&format!("Bearer {TOKEN}")), body)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let message = answer["error"].as_str().unwrap_or_default();
    assert!(message.contains("64 KiB"), "{answer}");
    assert_eq!(h.reloads_seen(), 0);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let h = Harness::start(Some(TOKEN), Ok(())).await;
    let (status, body) = h.get("/api/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|m| m.contains("/api/v1/nope")),
        "{body}"
    );

    let response = h.get_raw("/api/v1/reload").await;
    assert_eq!(
        response.headers().get("allow").map(|v| v.as_bytes()),
        Some(b"POST".as_slice())
    );
    let (status, body) = h.get("/api/v1/reload").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["error"].is_string(), "{body}");
}

#[tokio::test]
async fn a_target_name_that_is_not_utf8_is_a_json_400() {
    let h = Harness::start(Some(TOKEN), Ok(())).await;
    let bearer = format!("Bearer {TOKEN}");
    for (action, body) in [
        ("approve", ""),
        ("rollback", "{}"),
        ("time-to-fix", r#"{"time_to_fix": "20m"}"#),
    ] {
        // `%C0%AE` is an overlong `.`: percent-decoded, it is not UTF-8.
        let path = format!("/api/v1/targets/%C0%AE/{action}");
        let response = h
            .post_raw(&path, Some(&bearer), body.as_bytes().to_vec())
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{action}");
        let content_type = response.headers().get("content-type").cloned();
        assert_eq!(
            content_type.as_ref().map(|v| v.as_bytes()),
            Some(b"application/json".as_slice()),
            "{action}"
        );
        let answer: Value = response.json().await.expect("a JSON body");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(message.contains("UTF-8"), "{action}: {answer}");
    }
}

#[tokio::test]
async fn events_filter_by_target_and_since() {
    let h = Harness::start(Some(TOKEN), Ok(())).await;
    let journal = h.state.journal();
    let started = Event::DaemonStarted {
        version: "0.1.0".into(),
    };
    let reloaded = |ok| Event::ConfigReloaded { ok, message: None };
    let r1 = journal.append(None, started).expect("append");
    let r2 = journal.append(Some("api"), reloaded(true)).expect("append");
    let r3 = journal
        .append(Some("web"), reloaded(false))
        .expect("append");
    let r4 = journal
        .append(Some("api"), Event::DaemonStopped)
        .expect("append");
    let seqs = |body: &Value| -> Vec<u64> {
        body["events"]
            .as_array()
            .map(|events| events.iter().filter_map(|e| e["seq"].as_u64()).collect())
            .unwrap_or_default()
    };

    let (status, body) = h.get("/api/v1/events").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seqs(&body), [r1.seq, r2.seq, r3.seq, r4.seq]);
    assert_eq!(body["events"][3]["event"]["kind"], "daemon_stopped");

    let (_, body) = h.get("/api/v1/events?target=api").await;
    assert_eq!(seqs(&body), [r2.seq, r4.seq]);
    let (_, body) = h.get(&format!("/api/v1/events?since={}", r2.seq)).await;
    assert_eq!(seqs(&body), [r3.seq, r4.seq]);
    let (_, body) = h
        .get(&format!("/api/v1/events?target=api&since={}", r2.seq))
        .await;
    assert_eq!(seqs(&body), [r4.seq]);
    let (_, body) = h.get("/api/v1/events?limit=2").await;
    assert_eq!(seqs(&body), [r1.seq, r2.seq]);

    // By time: an hour ago is everything, an hour ahead nothing, and a
    // record's own time includes it and only records at or after it.
    let hour = Duration::from_secs(3600);
    let at = |t: SystemTime| humantime::format_rfc3339_seconds(t).to_string();
    let (_, body) = h
        .get(&format!(
            "/api/v1/events?since={}",
            at(SystemTime::now() - hour)
        ))
        .await;
    assert_eq!(seqs(&body).len(), 4);
    let (status, body) = h
        .get(&format!(
            "/api/v1/events?since={}",
            at(SystemTime::now() + hour)
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(seqs(&body).is_empty(), "{body}");
    let since = humantime::parse_rfc3339_weak(&r3.at).expect("journal writes RFC 3339");
    let (_, body) = h.get(&format!("/api/v1/events?since={}", r3.at)).await;
    let found = seqs(&body);
    assert!(found.contains(&r3.seq) && found.contains(&r4.seq), "{body}");
    for event in body["events"].as_array().into_iter().flatten() {
        let written = event["at"]
            .as_str()
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok());
        assert!(written.is_some_and(|t| t >= since), "{event}");
    }

    for (query, parameter) in [
        ("since=yesterday", "`since`"),
        ("since=-3", "`since`"),
        ("since=2025-02-30T00:00:00Z", "`since`"),
        ("limit=0", "`limit`"),
        ("limit=10001", "`limit`"),
        ("limit=many", "`limit`"),
    ] {
        let (status, body) = h.get(&format!("/api/v1/events?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(message.contains(parameter), "{query}: {body}");
    }
}

#[tokio::test]
async fn client_reads_status_and_reloads() {
    let h = Harness::start(Some(TOKEN), Ok(())).await;
    h.state
        .update_target("api", |t| t.current_version = Some("v2".into()));
    let client = rollguard::client::ApiClient::new(&h.base, Some(TOKEN.into())).expect("client");
    let status = client.status().await.expect("status");
    let table = rollguard::client::render_status(&status);
    assert!(table.contains("api") && table.contains("v2"), "{table}");
    client.reload().await.expect("reload");
    assert_eq!(h.reloads_seen(), 1);

    let anonymous = rollguard::client::ApiClient::new(&h.base, None).expect("client");
    match anonymous.reload().await {
        Err(rollguard::client::ClientError::Api {
            status: 401,
            message,
        }) => {
            assert!(message.contains("Authorization: Bearer"), "{message}")
        }
        other => panic!("expected a 401, got {other:?}"),
    }
}

#[tokio::test]
async fn serve_stops_on_shutdown() {
    let h = Harness::start(Some(TOKEN), Ok(())).await;
    h.shutdown().await;
}

#[tokio::test]
async fn metrics_are_valid_prometheus_text() {
    let h = Harness::start(Some(TOKEN), Ok(())).await;
    let metrics = h.state.metrics();
    metrics.tick("api");
    metrics.tick("we\"ird\\name");
    metrics.reload(false);
    metrics
        .probe_duration
        .get_or_create(&rollguard::metrics::CheckLabels {
            target: "api".into(),
            check: "health".into(),
        })
        .observe(0.042);

    let response = h.get_raw("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get("content-type").map(|v| v.as_bytes()),
        Some(rollguard::api::METRICS_CONTENT_TYPE.as_bytes())
    );
    let text = response.text().await.expect("body");
    let samples = common::openmetrics::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let find = |name: &str, label: (&str, &str)| {
        samples
            .iter()
            .find(|s| s.name == name && s.labels.get(label.0).map(String::as_str) == Some(label.1))
            .map(|s| s.value)
    };
    assert_eq!(find("rollguard_ticks_total", ("target", "api")), Some(1.0));
    assert_eq!(
        find("rollguard_ticks_total", ("target", "we\"ird\\name")),
        Some(1.0)
    );
    assert_eq!(
        find("rollguard_config_reloads_total", ("result", "error")),
        Some(1.0)
    );
    assert_eq!(
        find(
            "rollguard_probe_duration_seconds_count",
            ("check", "health")
        ),
        Some(1.0)
    );
    assert_eq!(
        find(
            "rollguard_build_info",
            ("version", env!("CARGO_PKG_VERSION"))
        ),
        Some(1.0)
    );
    common::openmetrics::promtool_check(&text);
}

#[test]
fn the_metrics_reader_is_strict() {
    use common::openmetrics::parse;
    let good = "# HELP x_seconds Latency.\n# TYPE x_seconds histogram\n# UNIT x_seconds seconds\n\
                x_seconds_bucket{le=\"+Inf\",t=\"a\\\"b\"} 3\nx_seconds_sum 0.5\nx_seconds_count 3\n# EOF\n";
    let samples = parse(good).expect("valid");
    assert_eq!(samples[0].labels["t"], "a\"b");
    for bad in [
        "# TYPE x counter\nx_total 1\n",                         // no # EOF
        "# TYPE x counter\nx_total one\n# EOF\n",                // bad value
        "# TYPE x counter\nx_total inf\n# EOF\n",                // not an OpenMetrics float
        "# TYPE x counter\nx_total{a=\"b} 1\n# EOF\n",           // unterminated label
        "# TYPE x counter\nx_total{a=\"b\",a=\"c\"} 1\n# EOF\n", // duplicate label
        "# TYPE x counter\ny_total 1\n# EOF\n",                  // outside its family
        "x 1\n# EOF\n",                                          // no # TYPE
        "# TYPE x countr\nx 1\n# EOF\n",                         // unknown type
        "# HELP 9x help\n# EOF\n",                               // bad name
        "# TYPE x gauge\nx 1 2 3\n# EOF\n",                      // trailing field
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}
