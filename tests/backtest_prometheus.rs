//! `rollguard backtest --target NAME --release-at TIME` against a real
//! Prometheus holding a recorded release (loaded with
//! `promtool tsdb create-blocks-from openmetrics`), compared with
//! `rollguard backtest --replay` over the replay file of the same data: the
//! two must reach the same decision at the same tick.

#[path = "common/prometheus.rs"]
mod prometheus;

use prometheus::PrometheusHarness;
use rollguard::backtest::checks::ReplayChecks;
use rollguard::backtest::{Replay, Sample};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds between samples, and the target's interval.
const INTERVAL: u64 = 10;
/// Baseline samples before the release: one hour.
const BASELINE: usize = 360;

/// A small deterministic noise source (xorshift), so that the data is the
/// same on every run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// 360 baseline samples and 90 after the release; from tick `breaks_at`
/// after it, `error_factor` times the errors. Counts are whole numbers.
fn recorded(error_factor: f64, breaks_at: usize) -> Replay {
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let samples = (0..BASELINE + 90)
        .map(|i| {
            let requests = (400.0 + 80.0 * noise.next()).round();
            let factor = if i >= BASELINE + breaks_at {
                error_factor
            } else {
                1.0
            };
            let errors = (requests * 0.01 * factor * (0.4 + 1.2 * noise.next())).round();
            Sample {
                requests: Some(requests),
                errors: Some(errors.min(requests)),
                p50_ms: None,
                p99_ms: Some((200.0 * (0.8 + 0.4 * noise.next()) * 1000.0).round() / 1000.0),
                health: None,
                ..Sample::default()
            }
        })
        .collect();
    Replay {
        name: "recorded".to_owned(),
        interval_seconds: Some(INTERVAL as f64),
        release_index: BASELINE,
        samples,
    }
}

/// The replay as Prometheus would have scraped it: counters
/// `requests_total` and `errors_total` (with a zero sample one interval
/// before the first, so that every window has a sample at its start) and
/// a gauge `p99_ms`, sample `i` at `start + i × INTERVAL`.
fn openmetrics(replay: &Replay, start: u64) -> String {
    let mut out = String::new();
    for (family, field) in [("requests", 0), ("errors", 1)] {
        let _ = writeln!(out, "# TYPE {family} counter");
        let _ = writeln!(out, "{family}_total 0 {}", start - INTERVAL);
        let mut total = 0.0;
        for (i, s) in replay.samples.iter().enumerate() {
            let (n, k) = s.counts().expect("counts");
            total += if field == 0 { n } else { k };
            let _ = writeln!(
                out,
                "{family}_total {total} {}",
                start + i as u64 * INTERVAL
            );
        }
    }
    let _ = writeln!(out, "# TYPE p99_ms gauge");
    for (i, s) in replay.samples.iter().enumerate() {
        let v = s.p99().expect("p99");
        let _ = writeln!(out, "p99_ms {v} {}", start + i as u64 * INTERVAL);
    }
    out.push_str("# EOF\n");
    out
}

/// A config whose target `api` has the replay's default checks as
/// Prometheus queries: the count metric over the two counters, the p99
/// sequential test with the same thresholds.
fn config(prometheus: &str, replay: &Replay) -> String {
    let checks =
        ReplayChecks::for_replay(replay, Duration::from_secs(4 * 3600).into()).expect("checks");
    let p99 = &checks.target.metric[1].thresholds;
    let level = |v: Option<f64>| v.expect("a level");
    format!(
        r#"
[daemon]
state_dir = "/tmp/unused"
[prometheus]
url = "{prometheus}"
min_window = "1s"
[[target]]
name = "api"
interval = "10s"
bake_window = "15m"
time_to_fix = "4h"
[target.release]
kind = "announce"
[[target.metric]]
name = "error_rate"
errors_query = 'sum(increase(errors_total[{{{{window}}}}]))'
total_query = 'sum(increase(requests_total[{{{{window}}}}]))'
baseline_window = "1h"
[[target.metric]]
name = "p99_latency"
query = 'max(p99_ms)'
test = "sequential"
baseline_window = "1h"
thresholds = {{ critical = {}, high = {}, medium = {}, low = {} }}
"#,
        level(p99.critical),
        level(p99.high),
        level(p99.medium),
        level(p99.low),
    )
}

fn rollguard(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_rollguard"))
        .args(args)
        .output()
        .expect("rollguard runs");
    assert!(
        out.status.success(),
        "rollguard {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// (decision, severity, ticks after the release) of a backtest's answer.
fn verdict(v: &Value, release_index: u64) -> (String, String, Option<u64>) {
    (
        v["decision"].as_str().unwrap_or_default().to_owned(),
        v["severity"].as_str().unwrap_or_default().to_owned(),
        v["decided_at_index"].as_u64().map(|i| i - release_index),
    )
}

async fn same_decision_both_ways(replay: Replay, dir: &Path) -> (String, String, Option<u64>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    // Four hours ago, on a whole interval: every tick is in the past.
    let start = (now - 4 * 3600) / INTERVAL * INTERVAL;
    let prometheus = PrometheusHarness::start_with_history(&openmetrics(&replay, start)).await;
    let config_path = dir.join("rollguard.toml");
    std::fs::write(&config_path, config(&prometheus.url(), &replay)).expect("config");
    let replay_path = dir.join("replay.json");
    let samples: Vec<Value> = replay
        .samples
        .iter()
        .map(
            |s| serde_json::json!({"requests": s.requests, "errors": s.errors, "p99_ms": s.p99_ms}),
        )
        .collect();
    let file = serde_json::json!({"name": replay.name, "interval_seconds": INTERVAL,
        "release_index": replay.release_index, "samples": samples});
    std::fs::write(&replay_path, file.to_string()).expect("replay file");
    let config_arg = config_path.to_str().expect("utf-8 path");
    // The release: right after the last baseline sample.
    let release_at = (start + (BASELINE as u64 - 1) * INTERVAL).to_string();

    let from_file = rollguard(&[
        "backtest",
        "--config",
        config_arg,
        "--target",
        "api",
        "--replay",
        replay_path.to_str().expect("utf-8 path"),
    ]);
    let from_prometheus = rollguard(&[
        "backtest",
        "--config",
        config_arg,
        "--target",
        "api",
        "--release-at",
        &release_at,
    ]);
    let expected = verdict(&from_file, BASELINE as u64);
    assert_eq!(
        verdict(&from_prometheus, 0),
        expected,
        "replay: {from_file}\nprometheus: {from_prometheus}"
    );
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_release_in_prometheus_is_judged_like_its_replay_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (decision, severity, at) = same_decision_both_ways(recorded(12.0, 4), dir.path()).await;
    assert_eq!(decision, "rollback");
    // 12x of 1% is critical (at least 10x and +5 points); at 400 requests a
    // tick the median of the last five ticks' 90% lower bounds reaches it.
    assert_eq!(severity, "critical", "12x of 1%");
    let at = at.expect("decided");
    assert!(
        (6..=12).contains(&at),
        "decided {at} ticks after the release"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_release_in_prometheus_is_judged_like_its_replay_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (decision, _, _) = same_decision_both_ways(recorded(1.0, 0), dir.path()).await;
    assert_eq!(decision, "healthy");
}
