//! Health probes and polling release sources against real HTTP servers on
//! 127.0.0.1, a real filesystem and a fake `docker` (`swarm.rs`).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rollguard::config::ProbeConfig;
use rollguard::http::http_client;
use rollguard::probe::HealthProbe;
use rollguard::release::{
    ReleaseChange, ReleaseSource, ReleaseTracker, SourceError, symlink, version_url,
};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

#[path = "common/fake_docker.rs"]
mod fake_docker;
#[path = "probe_and_release/swarm.rs"]
mod swarm;

/// What the test service answers with; the test changes it at will.
#[derive(Clone)]
struct Answer {
    status: u16,
    body: Vec<u8>,
    delay: Duration,
}

/// A running test service.
struct Service {
    addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
}

impl Service {
    async fn start(status: u16, body: &str) -> Service {
        let answer = Arc::new(Mutex::new(Answer {
            status,
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }));
        let app = Router::new().fallback(respond).with_state(answer.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a test port");
        let addr = listener.local_addr().expect("test port address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Service { addr, answer }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set(&self, change: impl FnOnce(&mut Answer)) {
        let mut answer = self.answer.lock().expect("answer lock");
        change(&mut answer);
    }
}

async fn respond(State(answer): State<Arc<Mutex<Answer>>>) -> Response {
    let answer = answer.lock().expect("answer lock").clone();
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, answer.body).into_response()
}

/// A port nothing listens on: bound, then released.
async fn dead_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a test port");
    listener.local_addr().expect("test port address")
}

fn probe_config(url: &str, extra: &str) -> ProbeConfig {
    let text = format!("name = \"health\"\nurl = \"{url}\"\n{extra}");
    toml::from_str(&text).expect("probe config parses")
}

fn probe(url: &str, extra: &str) -> HealthProbe {
    HealthProbe::new(&probe_config(url, extra), http_client().expect("client"))
}

#[tokio::test]
async fn healthy_endpoint_passes() {
    let service = Service::start(200, "ok").await;
    let outcome = probe(&service.url("/health"), "").check().await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.name, "health");
    assert_eq!(outcome.status, Some(200));
    assert_eq!(outcome.error, None);
    assert!(outcome.latency < Duration::from_secs(2));
}

#[tokio::test]
async fn unexpected_status_fails_with_reason() {
    let service = Service::start(503, "down").await;
    let outcome = probe(&service.url("/health"), "").check().await;
    assert!(!outcome.ok);
    assert_eq!(outcome.status, Some(503));
    assert_eq!(outcome.error.as_deref(), Some("status 503, expected [200]"));

    service.set(|a| a.status = 204);
    let outcome = probe(&service.url("/health"), "expect_status = [200, 204]")
        .check()
        .await;
    assert!(outcome.ok, "{outcome:?}");
}

#[tokio::test]
async fn slow_endpoint_times_out() {
    let service = Service::start(200, "ok").await;
    service.set(|a| a.delay = Duration::from_secs(1));
    let outcome = probe(&service.url("/health"), "timeout = \"200ms\"")
        .check()
        .await;
    assert!(!outcome.ok);
    assert_eq!(outcome.status, None);
    assert_eq!(outcome.error.as_deref(), Some("timed out after 200ms"));
    assert!(outcome.latency >= Duration::from_millis(200));
    assert!(outcome.latency < Duration::from_millis(900), "{outcome:?}");
}

#[tokio::test]
async fn dead_port_is_connection_refused() {
    let addr = dead_port().await;
    let outcome = probe(&format!("http://{addr}/health"), "").check().await;
    assert!(!outcome.ok);
    assert_eq!(outcome.status, None);
    assert_eq!(outcome.error.as_deref(), Some("connection refused"));
}

#[tokio::test]
async fn invalid_method_is_a_failed_outcome() {
    let service = Service::start(200, "ok").await;
    let outcome = probe(&service.url("/health"), "method = \"GE T\"")
        .check()
        .await;
    assert!(!outcome.ok);
    assert!(
        outcome
            .error
            .as_deref()
            .is_some_and(|e| e.contains("invalid HTTP method")),
        "{outcome:?}"
    );

    let outcome = probe(&service.url("/health"), "method = \"head\"")
        .check()
        .await;
    assert!(outcome.ok, "{outcome:?}");
}

#[tokio::test]
async fn json_pointer_value_is_checked() {
    let service = Service::start(200, r#"{"status":"ok","checks":{"db":1}}"#).await;
    let url = service.url("/health");
    let expect_ok = "json_pointer = \"/status\"\nexpect_value = \"ok\"";

    assert!(probe(&url, expect_ok).check().await.ok);

    service.set(|a| a.body = br#"{"status":"degraded"}"#.to_vec());
    let outcome = probe(&url, expect_ok).check().await;
    assert!(!outcome.ok);
    assert_eq!(outcome.status, Some(200));
    assert_eq!(
        outcome.error.as_deref(),
        Some(r#"/status is "degraded", expected "ok""#)
    );

    service.set(|a| a.body = b"<html>ok</html>".to_vec());
    let outcome = probe(&url, expect_ok).check().await;
    assert_eq!(
        outcome.error.as_deref(),
        Some("body is not JSON, cannot check /status")
    );

    service.set(|a| a.body = br#"{"other":1}"#.to_vec());
    let outcome = probe(&url, expect_ok).check().await;
    assert_eq!(outcome.error.as_deref(), Some("/status is missing"));
}

#[tokio::test]
async fn numbers_and_booleans_compare_by_value() {
    let service = Service::start(200, r#"{"ready":true,"replicas":1.0}"#).await;
    let url = service.url("/health");
    assert!(
        probe(&url, "json_pointer = \"/replicas\"\nexpect_value = 1")
            .check()
            .await
            .ok
    );
    assert!(
        probe(&url, "json_pointer = \"/ready\"\nexpect_value = true")
            .check()
            .await
            .ok
    );
    let outcome = probe(&url, "json_pointer = \"/replicas\"\nexpect_value = 2")
        .check()
        .await;
    assert_eq!(
        outcome.error.as_deref(),
        Some("/replicas is 1.0, expected 2")
    );
}

#[tokio::test]
async fn huge_body_is_cut_without_panic() {
    let huge = "x".repeat(5 * 1024 * 1024);
    let service = Service::start(200, &huge).await;
    let url = service.url("/health");
    let outcome = probe(&url, "").check().await;
    assert!(outcome.ok, "{outcome:?}");
    let outcome = probe(&url, "json_pointer = \"/status\"").check().await;
    assert!(!outcome.ok);
    assert!(
        outcome
            .error
            .as_deref()
            .is_some_and(|e| e.contains("larger than")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn version_url_reads_pointer_or_whole_body() {
    let service = Service::start(200, "  v1.4.2\n").await;
    let client = http_client().expect("client");
    let url = service.url("/version");
    let timeout = Duration::from_secs(2);

    let version = version_url::read_version(&client, &url, None, timeout).await;
    assert_eq!(version.ok().as_deref(), Some("v1.4.2"));

    service.set(|a| a.body = br#"{"build":{"version":"2.0.0-rc1"},"n":17}"#.to_vec());
    let version = version_url::read_version(&client, &url, Some("/build/version"), timeout).await;
    assert_eq!(version.ok().as_deref(), Some("2.0.0-rc1"));
    let version = version_url::read_version(&client, &url, Some("/n"), timeout).await;
    assert_eq!(version.ok().as_deref(), Some("17"));

    let missing = version_url::read_version(&client, &url, Some("/version"), timeout).await;
    assert!(
        matches!(missing, Err(SourceError::PointerMissing { .. })),
        "{missing:?}"
    );

    service.set(|a| a.body = b"v1.4.2".to_vec());
    let not_json = version_url::read_version(&client, &url, Some("/version"), timeout).await;
    assert!(
        matches!(not_json, Err(SourceError::NotJson { .. })),
        "{not_json:?}"
    );

    service.set(|a| a.status = 500);
    let status = version_url::read_version(&client, &url, None, timeout).await;
    assert!(
        matches!(status, Err(SourceError::Status { status: 500, .. })),
        "{status:?}"
    );

    service.set(|a| {
        a.status = 200;
        a.delay = Duration::from_secs(1);
    });
    let slow = version_url::read_version(&client, &url, None, Duration::from_millis(200)).await;
    let message = slow.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.ends_with("timed out after 200ms"), "{message}");
}

#[tokio::test]
async fn version_url_rejects_bad_versions() {
    let service = Service::start(200, "").await;
    let client = http_client().expect("client");
    let url = service.url("/version");
    let timeout = Duration::from_secs(2);
    for body in ["", "  \n ", "v1\u{1b}[2J", "v1\nv2", &"9".repeat(201)] {
        service.set(|a| a.body = body.as_bytes().to_vec());
        let result = version_url::read_version(&client, &url, None, timeout).await;
        assert!(
            matches!(result, Err(SourceError::BadVersion { .. })),
            "{body:?}: {result:?}"
        );
    }
    service.set(|a| a.body = br#"{"version":"v1\u0007"}"#.to_vec());
    let result = version_url::read_version(&client, &url, Some("/version"), timeout).await;
    assert!(
        matches!(result, Err(SourceError::BadVersion { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn release_source_from_config() {
    let service = Service::start(200, r#"{"version":"v3"}"#).await;
    let client = http_client().expect("client");
    let config = |text: &str| -> rollguard::config::ReleaseConfig {
        toml::from_str(text).expect("release config parses")
    };
    let source = ReleaseSource::from_config(
        &config(&format!(
            "kind = \"version_url\"\nurl = \"{}\"\njson_pointer = \"/version\"",
            service.url("/version")
        )),
        client.clone(),
    )
    .expect("version_url source");
    assert_eq!(
        source.current_version().await.ok().flatten().as_deref(),
        Some("v3")
    );

    let announce = ReleaseSource::from_config(&config("kind = \"announce\""), client.clone())
        .expect("announce source");
    assert!(matches!(announce.current_version().await, Ok(None)));

    for (text, label) in [
        (
            "kind = \"kubernetes\"\nnamespace = \"a\"\ndeployment = \"b\"",
            "kubernetes",
        ),
        ("kind = \"version_url\"\nurl = \"ftp://x/v\"", "config"),
    ] {
        let error = ReleaseSource::from_config(&config(text), client.clone()).err();
        assert_eq!(
            error.as_ref().map(|e| e.metric_label()),
            Some(label),
            "{text}: {error:?}"
        );
    }
    // A kind's missing keys make no config at all.
    for (text, why) in [
        ("kind = \"kubernetes\"", "needs `namespace`"),
        ("kind = \"version_url\"", "needs `url`"),
        ("kind = \"symlink\"", "needs `path`"),
        ("kind = \"swarm\"", "release kind `swarm` needs `service`"),
    ] {
        let error = toml::from_str::<rollguard::config::ReleaseConfig>(text)
            .expect_err("not a release source");
        assert!(error.message().contains(why), "{text}: {error}");
    }
}

/// Points `link` at `target` the way a deploy does: a new link beside it,
/// renamed over the old one, so readers never see it missing.
fn switch_link(link: &Path, target: &str) {
    let staging = link.with_extension("new");
    std::os::unix::fs::symlink(target, &staging).expect("create staging link");
    std::fs::rename(&staging, link).expect("rename link over current");
}

#[test]
fn symlink_version_follows_the_deploy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("releases/v1")).expect("mkdir v1");
    std::fs::create_dir_all(root.join("releases/v2")).expect("mkdir v2");
    let current = root.join("current");

    switch_link(&current, "releases/v1");
    assert_eq!(symlink::read_version(&current).ok().as_deref(), Some("v1"));
    assert_eq!(
        symlink::resolve_target(&current).ok(),
        Some(root.join("releases/v1"))
    );

    switch_link(&current, "releases/v2/");
    assert_eq!(symlink::read_version(&current).ok().as_deref(), Some("v2"));

    let absolute = root.join("releases/v1");
    switch_link(&current, absolute.to_str().expect("utf-8 temp path"));
    assert_eq!(symlink::read_version(&current).ok().as_deref(), Some("v1"));
    assert_eq!(symlink::resolve_target(&current).ok(), Some(absolute));
}

#[test]
fn symlink_errors_are_clear() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let current = root.join("current");

    let missing = symlink::read_version(&current);
    assert!(
        matches!(missing, Err(SourceError::Io { .. })),
        "{missing:?}"
    );

    switch_link(&current, "releases/v9");
    let dangling = symlink::read_version(&current);
    assert!(
        matches!(dangling, Err(SourceError::Dangling { .. })),
        "{dangling:?}"
    );
    let message = dangling.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("does not exist"), "{message}");

    let plain = root.join("plain");
    std::fs::create_dir(&plain).expect("mkdir plain");
    let not_link = symlink::read_version(&plain);
    assert!(
        matches!(not_link, Err(SourceError::NotASymlink { .. })),
        "{not_link:?}"
    );
}

#[tokio::test]
async fn symlink_source_feeds_the_tracker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("releases/v1")).expect("mkdir v1");
    std::fs::create_dir_all(root.join("releases/v2")).expect("mkdir v2");
    let current = root.join("current");
    switch_link(&current, "releases/v1");

    let config: rollguard::config::ReleaseConfig = toml::from_str(&format!(
        "kind = \"symlink\"\npath = {:?}",
        current.to_str().expect("utf-8 temp path")
    ))
    .expect("release config parses");
    let source = ReleaseSource::from_config(&config, http_client().expect("client"))
        .expect("symlink source");
    let mut tracker = ReleaseTracker::new("app");
    let now = SystemTime::now();

    let seen = source
        .current_version()
        .await
        .ok()
        .flatten()
        .expect("a version");
    assert!(matches!(
        tracker.observe(&seen, now),
        Some(ReleaseChange::Initial { .. })
    ));

    switch_link(&current, "releases/v2");
    let seen = source
        .current_version()
        .await
        .ok()
        .flatten()
        .expect("a version");
    let change = tracker.observe(&seen, now + Duration::from_secs(10));
    assert!(
        matches!(&change, Some(ReleaseChange::Release { from, to, .. }) if from.as_deref() == Some("v1") && to == "v2"),
        "{change:?}"
    );

    // rollguard rolls back by switching the link itself.
    tracker.expect_rollback("v1", now + Duration::from_secs(20));
    switch_link(&current, "releases/v1");
    let seen = source
        .current_version()
        .await
        .ok()
        .flatten()
        .expect("a version");
    let change = tracker.observe(&seen, now + Duration::from_secs(30));
    assert!(
        matches!(change, Some(ReleaseChange::Rollback { .. })),
        "{change:?}"
    );
}
