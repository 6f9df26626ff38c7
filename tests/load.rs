//! The load a fleet puts on Prometheus and on the services (issue #14
//! items 3 and 4), measured on a real in-process daemon.
//!
//! Many targets (`TARGETS`) read their version from one counting fake
//! service and query one counting fake Prometheus; both are hand-written
//! HTTP/1.1 servers on 127.0.0.1:0 that answer after a short delay, count
//! every request and record the most connections open and the most
//! requests in flight at any moment. Every target releases at once and
//! bakes for a few ticks; the test asserts that:
//!
//! - requests in flight to Prometheus never exceed
//!   `prometheus.max_concurrent_queries`, and the connections open to it
//!   stay within that bound plus the client's idle connections being handed
//!   back (reqwest has no hard per-host cap; docs/performance.md);
//! - requests in flight to the services never exceed
//!   `daemon.max_concurrent_probes`;
//! - each baseline is fetched once per release, however many ticks there
//!   are: one instant query per threshold metric, two range queries per
//!   count metric;
//! - each tick of a baking target sends at most the three instant queries
//!   its two metrics need.
//!
//! `cargo test --test load -- --nocapture` prints the numbers that
//! docs/performance.md quotes.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Targets in the fleet.
const TARGETS: usize = 200;

/// `prometheus.max_concurrent_queries` of the test.
const QUERY_CAP: usize = 8;

/// `daemon.max_concurrent_probes` of the test.
const PROBE_CAP: usize = 8;

/// How long the fakes take to answer: long enough that requests overlap.
const ANSWER_DELAY: Duration = Duration::from_millis(10);

/// Ticks every target bakes for before the numbers are taken.
const BAKING_TICKS: u64 = 4;

/// What a counting server saw.
#[derive(Default)]
struct Seen {
    open: AtomicUsize,
    max_open: AtomicUsize,
    connections: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Every request's decoded path and query, in order.
    requests: Mutex<Vec<String>>,
}

impl Seen {
    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("not poisoned").clone()
    }
}

/// Raises a gauge and its maximum.
fn enter(gauge: &AtomicUsize, max: &AtomicUsize) {
    let now = gauge.fetch_add(1, Ordering::SeqCst) + 1;
    max.fetch_max(now, Ordering::SeqCst);
}

/// `%XX` and `+` decoded: enough for the queries the daemon sends.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A server that answers every request with `answer(path_and_query)` after
/// [`ANSWER_DELAY`], keeping connections alive.
async fn counting_server(
    answer: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let seen = Arc::new(Seen::default());
    let answer = Arc::new(answer);
    let server_seen = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = server_seen.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                seen.connections.fetch_add(1, Ordering::SeqCst);
                enter(&seen.open, &seen.max_open);
                connection(stream, &seen, answer.as_ref()).await;
                seen.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (url, seen)
}

/// Serves one connection's requests until the client closes it.
async fn connection(mut stream: TcpStream, seen: &Seen, answer: &(dyn Fn(&str) -> String + Sync)) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        buffer.drain(..end);
        let target = head.split(' ').nth(1).unwrap_or("/").to_owned();
        let target = decode(&target);
        enter(&seen.in_flight, &seen.max_in_flight);
        seen.requests
            .lock()
            .expect("not poisoned")
            .push(target.clone());
        tokio::time::sleep(ANSWER_DELAY).await;
        let body = answer(&target);
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        seen.in_flight.fetch_sub(1, Ordering::SeqCst);
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Prometheus' answers: one series, no errors out of 100 requests.
fn prometheus_answer(target: &str) -> String {
    let value = if target.contains("errors_total") {
        "0"
    } else {
        "100"
    };
    if target.starts_with("/api/v1/query_range") {
        format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[[1000,"{value}"]]}}]}}}}"#
        )
    } else {
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1000,"{value}"]}}]}}}}"#
        )
    }
}

fn config(root: &std::path::Path, prometheus: &str, service: &str) -> String {
    let mut text = format!(
        r#"[daemon]
listen = "127.0.0.1:0"
state_dir = "{root}/state"
mode = "shadow"
max_concurrent_probes = {PROBE_CAP}

[prometheus]
url = "{prometheus}"
timeout = "5s"
min_window = "5s"
max_concurrent_queries = {QUERY_CAP}
"#,
        root = root.display()
    );
    for i in 0..TARGETS {
        text.push_str(&format!(
            r#"
[[target]]
name = "service-{i}"
interval = "1s"
bake_window = "1h"

[target.release]
kind = "version_url"
url = "{service}/version"

[[target.probe]]
name = "health"
url = "{service}/health"

[[target.metric]]
name = "error_ratio"
query = 'sum(rate(errors_total{{job="{{{{target}}}}"}}[{{{{window}}}}]))'
baseline = "pre_release"
baseline_window = "1h"
thresholds = {{ critical = 0.5 }}

[[target.metric]]
name = "errors"
errors_query = 'sum(increase(errors_total{{job="{{{{target}}}}"}}[{{{{window}}}}]))'
total_query = 'sum(increase(requests_total{{job="{{{{target}}}}"}}[{{{{window}}}}]))'
baseline = "pre_release"
baseline_window = "1h"
"#
        ));
    }
    text
}

/// Waits (real time, polling) until `done` holds of every target.
async fn wait_all(
    state: &rollguard::state::State,
    what: &str,
    done: impl Fn(&rollguard::state::TargetStatus) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let targets = state.targets();
        if targets.len() == TARGETS && targets.iter().all(&done) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_releasing_at_once_stays_within_its_caps_and_fetches_each_baseline_once() {
    // The version every target runs: v1, then v2, then v3.
    let version = Arc::new(AtomicUsize::new(1));
    let service_version = version.clone();
    let (service, services_seen) = counting_server(move |target| {
        if target.starts_with("/version") {
            format!("v{}", service_version.load(Ordering::SeqCst))
        } else {
            "ok".to_owned()
        }
    })
    .await;
    let (prometheus, seen) = counting_server(prometheus_answer).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("rollguard.toml");
    std::fs::write(&path, config(dir.path(), &prometheus, &service)).expect("write config");
    let loaded = rollguard::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let (stop, stopped) = oneshot::channel::<()>();
    let (started_tx, started) = oneshot::channel();
    let task = tokio::spawn(rollguard::daemon::run_until(
        path,
        loaded,
        async move {
            let _ = stopped.await;
        },
        started_tx,
    ));
    let state = started.await.expect("the daemon starts");
    wait_all(&state, "every target's first version", |t| {
        t.current_version.as_deref() == Some("v1")
    })
    .await;
    assert!(seen.requests().is_empty(), "no query before a release");

    // Ticks from here on; those before the release send no query.
    let start_ticks: u64 = state.targets().iter().map(|t| t.ticks).sum();
    version.store(2, Ordering::SeqCst);
    wait_all(&state, "every target's release", |t| t.release.is_some()).await;
    let opened = state.targets().iter().map(|t| t.ticks).max().unwrap_or(0);
    wait_all(&state, "ticks of every baking target", |t| {
        t.ticks >= opened + BAKING_TICKS
    })
    .await;
    let ticks: u64 = state.targets().iter().map(|t| t.ticks).sum::<u64>() - start_ticks;

    let requests = seen.requests();
    let (current, baseline_instant, range) = kinds(&requests);
    let (max_in_flight, max_open, connections) = (
        seen.max_in_flight.load(Ordering::SeqCst),
        seen.max_open.load(Ordering::SeqCst),
        seen.connections.load(Ordering::SeqCst),
    );
    let service_in_flight = services_seen.max_in_flight.load(Ordering::SeqCst);
    let service_open = services_seen.max_open.load(Ordering::SeqCst);
    eprintln!(
        "{TARGETS} targets, query cap {QUERY_CAP}, probe cap {PROBE_CAP}: \
         Prometheus: {} requests ({current} current instant, {baseline_instant} baseline instant, {range} baseline range) \
         over {ticks} target ticks ({:.2} current queries per target tick); \
         at most {max_in_flight} in flight, {max_open} connections open, {connections} opened in all; \
         services: at most {service_in_flight} in flight, {service_open} connections open",
        requests.len(),
        current as f64 / ticks.max(1) as f64,
    );
    assert!(
        max_in_flight <= QUERY_CAP,
        "{max_in_flight} queries in flight"
    );
    assert!(
        service_in_flight <= PROBE_CAP,
        "{service_in_flight} probes in flight"
    );
    assert!(
        max_open <= QUERY_CAP + rollguard::http::MAX_IDLE_PER_HOST,
        "{max_open} connections open to Prometheus"
    );
    assert_eq!(
        baseline_instant, TARGETS,
        "one threshold baseline per release"
    );
    assert_eq!(
        range,
        2 * TARGETS,
        "one count baseline (two ranges) per release"
    );
    // Three instant queries per tick of a baking target: the ratio and
    // the two counts. Ticks before a target's release send none; a tick
    // still under way has sent its queries but is not counted yet.
    assert!(
        current <= 3 * (ticks as usize + TARGETS),
        "{current} current queries over {ticks} ticks"
    );

    // A new release has a baseline of its own, fetched once too: the
    // last release's went with its bake window.
    version.store(3, Ordering::SeqCst);
    let is_v3 = |t: &rollguard::state::TargetStatus| {
        t.release
            .as_ref()
            .is_some_and(|r| r["to"] == serde_json::json!("v3"))
    };
    wait_all(&state, "every target's second release", is_v3).await;
    let opened = state.targets().iter().map(|t| t.ticks).max().unwrap_or(0);
    wait_all(&state, "ticks of the second release", |t| {
        t.ticks >= opened + 2
    })
    .await;
    let _ = stop.send(());
    task.await.expect("no panic").expect("clean stop");
    let (_, baseline_instant, range) = kinds(&seen.requests());
    assert_eq!(
        baseline_instant,
        2 * TARGETS,
        "one threshold baseline per release"
    );
    assert_eq!(range, 4 * TARGETS, "one count baseline per release");
}

/// The current instant queries, the threshold metric's baseline instant
/// queries (rendered with its 1 h window) and the range queries (count
/// baselines) among `requests`.
fn kinds(requests: &[String]) -> (usize, usize, usize) {
    let range = requests
        .iter()
        .filter(|r| r.starts_with("/api/v1/query_range"))
        .count();
    let instant: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("/api/v1/query?"))
        .collect();
    let baseline = instant.iter().filter(|r| r.contains("[3600s]")).count();
    (instant.len() - baseline, baseline, range)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_two_metrics_share_is_sent_once_per_tick() {
    use rollguard::probe::prometheus::{BaselineCache, MetricQuerier, QueryContext};
    let (prometheus, seen) = counting_server(prometheus_answer).await;
    let config = rollguard::config::PrometheusConfig {
        url: prometheus,
        timeout: Duration::from_secs(5),
        bearer_token_file: None,
        min_window: Duration::from_secs(5),
        max_concurrent_queries: QUERY_CAP,
        max_response_bytes: rollguard::config::defaults::max_response_bytes(),
        max_series: rollguard::config::defaults::max_series(),
    };
    let querier = MetricQuerier::new(&config, rollguard::http::http_client().expect("client"))
        .expect("valid config");
    // Two count metrics over the same traffic: one `total_query`.
    let metric = |name: &str, errors: &str| -> rollguard::config::MetricConfig {
        toml::from_str(&format!(
            "name = \"{name}\"\nerrors_query = 'sum(increase({errors}{{job=\"{{{{target}}}}\"}}[{{{{window}}}}]))'\n\
             total_query = 'sum(increase(requests_total{{job=\"{{{{target}}}}\"}}[{{{{window}}}}]))'\n\
             baseline = \"pre_release\"\nbaseline_window = \"1h\"\n"
        ))
        .expect("valid metric")
    };
    let (failed, slow) = (
        metric("failed", "errors_total"),
        metric("slow", "slow_total"),
    );
    let release_at = std::time::SystemTime::now();
    let cache = BaselineCache::default();
    for tick in 1..=3u64 {
        let ctx = QueryContext {
            target: "api".to_owned(),
            version: "v2".to_owned(),
            previous_version: Some("v1".to_owned()),
            release_at,
            now: release_at + Duration::from_secs(tick),
            window_start: None,
            interval: Duration::from_secs(1),
        };
        let (a, b) = tokio::join!(
            querier.sample(&failed, &ctx, &cache),
            querier.sample(&slow, &ctx, &cache)
        );
        assert_eq!((a.sample.error, b.sample.error), (None, None));
    }
    let requests = seen.requests();
    let count = |path: &str, what: &str| {
        requests
            .iter()
            .filter(|r| r.starts_with(path) && r.contains(what))
            .count()
    };
    // Each tick: the shared total once, each metric's errors once.
    assert_eq!(
        count("/api/v1/query?", "requests_total"),
        3,
        "{requests:#?}"
    );
    assert_eq!(count("/api/v1/query?", "errors_total"), 3);
    assert_eq!(count("/api/v1/query?", "slow_total"), 3);
    // Baselines: the shared total's range once, each errors range once.
    assert_eq!(count("/api/v1/query_range", "requests_total"), 1);
    assert_eq!(count("/api/v1/query_range", "errors_total"), 1);
    assert_eq!(count("/api/v1/query_range", "slow_total"), 1);
}
