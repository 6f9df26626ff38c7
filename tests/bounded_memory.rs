//! Bounded memory (issue #14 item 1): a query that forgot its `sum()` makes
//! Prometheus answer tens of megabytes of series. rollguard reads at most
//! `prometheus.max_response_bytes` of it and counts at most
//! `prometheus.max_series` series; beyond either the measurement is an
//! error that says to aggregate the query, never a failure.
//!
//! The first tests measure through a [`MetricQuerier`] against
//! [`BigPrometheus`]; the last starts the real `rollguard` binary against
//! it and reads the daemon's memory from `/proc/PID/status`.
//! `cargo test --test bounded_memory -- --nocapture` prints the numbers
//! that docs/performance.md ("Bounded memory") quotes;
//! `ROLLGUARD_MEMORY_BIN=/path/to/rollguard` measures another build of the
//! daemon the same way (that is how the numbers before the bound were
//! taken), without asserting.

// The shared helpers include the API harness, which this file does not use.
#[allow(dead_code)]
mod common;

use common::big_prometheus::{Answers, BigPrometheus};
use rollguard::config::{ByteSize, MetricConfig, PrometheusConfig};
use rollguard::http::http_client;
use rollguard::probe::prometheus::{BaselineCache, MetricQuerier, QueryContext};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// What a query without its `sum()` answered in the issue.
const FIFTY_MB: usize = 50 * 1000 * 1000;

fn querier(url: &str) -> MetricQuerier {
    let config = PrometheusConfig {
        url: url.to_owned(),
        timeout: Duration::from_secs(10),
        bearer_token_file: None,
        min_window: Duration::from_secs(5),
        max_concurrent_queries: 4,
        max_response_bytes: ByteSize::mib(4),
        max_series: 500,
    };
    MetricQuerier::new(&config, http_client().expect("HTTP client")).expect("valid config")
}

fn metric(lines: &str) -> MetricConfig {
    toml::from_str(&format!(
        "name = \"requests\"\nquery = 'rate(http_requests_total[{{{{window}}}}])'\n{lines}"
    ))
    .expect("valid metric")
}

fn context() -> QueryContext {
    let now = SystemTime::now();
    QueryContext {
        target: "api".to_owned(),
        version: "v2".to_owned(),
        previous_version: Some("v1".to_owned()),
        release_at: now - Duration::from_secs(60),
        now,
        window_start: None,
        interval: Duration::from_secs(10),
    }
}

async fn error_of(fake: &BigPrometheus, metric: &MetricConfig) -> String {
    let measured = querier(&fake.url)
        .sample(metric, &context(), &BaselineCache::default())
        .await;
    assert_eq!(measured.sample.value, None, "{measured:?}");
    measured.sample.error.expect("an error")
}

#[tokio::test]
async fn a_fifty_megabyte_answer_is_an_error_that_says_to_aggregate() {
    let fake = BigPrometheus::start(Answers::HugeChunked { bytes: FIFTY_MB }).await;
    let started = Instant::now();
    let error = error_of(&fake, &metric("baseline = \"none\"")).await;
    assert_eq!(
        error,
        "Prometheus answered more than 4 MiB (prometheus.max_response_bytes); \
         aggregate the query, e.g. with sum(...)"
    );
    // Reading stopped at the cap: what the fake managed to write is the
    // cap plus what the sockets' buffers took, far from 50 MB.
    let written = fake.written();
    eprintln!(
        "chunked: {written} bytes written before rollguard hung up, in {:?}",
        started.elapsed()
    );
    assert!(written < 20 * 1024 * 1024, "{written} bytes written");

    // Announced by its Content-Length: refused before the body is read.
    let fake = BigPrometheus::start(Answers::HugeDeclared { bytes: FIFTY_MB }).await;
    let error = error_of(&fake, &metric("baseline = \"none\"")).await;
    assert!(error.contains("max_response_bytes"), "{error}");
    assert!(fake.written() < 20 * 1024 * 1024, "{}", fake.written());
}

#[tokio::test]
async fn a_baseline_range_query_is_bounded_too() {
    let fake = BigPrometheus::start(Answers::HugeChunked { bytes: FIFTY_MB }).await;
    let sequential =
        metric("baseline = \"pre_release\"\nbaseline_window = \"10m\"\ntest = \"sequential\"");
    let error = error_of(&fake, &sequential).await;
    assert!(
        error.contains("baseline: Prometheus answered more than 4 MiB"),
        "{error}"
    );
}

#[tokio::test]
async fn two_thousand_series_are_an_error_past_max_series() {
    let fake = BigPrometheus::start(Answers::Series { count: 2000 }).await;
    let error = error_of(&fake, &metric("baseline = \"none\"")).await;
    assert_eq!(
        error,
        "query returns more than 500 series (prometheus.max_series = 500); \
         aggregate it to one, e.g. with sum(...)"
    );
    // Under the cap, several series are the error they always were.
    fake.answer(Answers::Series { count: 3 });
    let error = error_of(&fake, &metric("baseline = \"none\"")).await;
    assert_eq!(
        error,
        "query returns 3 series; aggregate it (sum, max) to one"
    );
    // And one series is a value.
    fake.answer(Answers::One);
    let measured = querier(&fake.url)
        .sample(
            &metric("baseline = \"none\""),
            &context(),
            &BaselineCache::default(),
        )
        .await;
    assert_eq!(
        (measured.sample.value, measured.sample.error),
        (Some(0.5), None)
    );
}

/// The daemon's memory as `/proc/PID/status` reports it, in KiB:
/// (`VmRSS`, `VmHWM`), the resident set now and at its highest.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the daemon runs");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Waits (real time, polling) until `done`, or fails naming `what`.
async fn wait(what: &str, limit: Duration, child: &mut Child, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the daemon exited ({status}) while waiting for {what}");
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ends the daemon this test started.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_stays_small_while_prometheus_answers_fifty_megabytes_a_query() {
    let other = std::env::var_os("ROLLGUARD_MEMORY_BIN");
    let binary = other
        .clone()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_rollguard").into());
    let fake = BigPrometheus::start(Answers::One).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("rollguard.toml");
    std::fs::write(
        &config,
        format!(
            r#"[daemon]
listen = "127.0.0.1:0"
state_dir = "{state}"
mode = "shadow"

[prometheus]
url = "{url}"
timeout = "30s"
min_window = "5s"

[[target]]
name = "api"
interval = "200ms"
bake_window = "1h"

[target.release]
kind = "version_url"
url = "{url}/version"
poll_interval = "200ms"

[[target.metric]]
name = "requests"
query = 'rate(http_requests_total{{job="{{{{target}}}}"}}[{{{{window}}}}])'
baseline = "pre_release"
baseline_window = "10m"
thresholds = {{ critical = 0.9 }}
"#,
            state = dir.path().join("state").display(),
            url = fake.url
        ),
    )
    .expect("write config");
    let mut daemon = Running(
        Command::new(&binary)
            .args(["run", "--config"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rollguard"),
    );
    let pid = daemon.0.id();
    wait(
        "the first versions",
        Duration::from_secs(30),
        &mut daemon.0,
        || fake.version_reads() >= 5,
    )
    .await;
    let (before, _) = memory_kib(pid);

    // The release: from now on every query answers 50 MB of series.
    fake.answer(Answers::HugeChunked { bytes: FIFTY_MB });
    fake.release("v2");
    let queries = 20;
    wait(
        "the queries",
        Duration::from_secs(180),
        &mut daemon.0,
        || fake.queries() >= queries,
    )
    .await;
    let (during, peak) = memory_kib(pid);

    // Prometheus is fixed (the query aggregated): what is left held?
    fake.answer(Answers::One);
    let sent = fake.queries();
    wait(
        "answers again",
        Duration::from_secs(60),
        &mut daemon.0,
        || fake.queries() >= sent + 10,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (after, _) = memory_kib(pid);
    let mib = |kib: u64| kib as f64 / 1024.0;
    eprintln!(
        "{}: {queries} queries answered with 50 MB each; RSS before {:.1} MiB, \
         while answering {:.1} MiB, peak (VmHWM) {:.1} MiB, after {:.1} MiB; \
         the fake wrote {:.1} MB",
        binary.display(),
        mib(before),
        mib(during),
        mib(peak),
        mib(after),
        fake.written() as f64 / 1e6
    );
    if other.is_some() {
        return;
    }
    assert!(mib(peak) < 64.0, "peak RSS {:.1} MiB", mib(peak));
    assert!(
        mib(after) < mib(before) + 16.0,
        "RSS {:.1} MiB after, {:.1} MiB before",
        mib(after),
        mib(before)
    );
}
