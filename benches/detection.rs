//! Detection latency: how long after a service's error rate jumps to 50%
//! does rollguard start rolling it back?
//!
//! A real Prometheus (`/usr/bin/prometheus`, 1 s scrape) scrapes one demo
//! service. Each run starts a fresh daemon (new state directory) whose one
//! target sees releases through the service's `/version`, judges its error
//! ratio against the pre-release baseline every second, and has one
//! rollback step: a script that writes its own start time. A run releases a
//! new version, lets it serve healthily for a few seconds, sets the error
//! ratio to 0.5 at T0, and measures T0 → the script's start.
//!
//! `cargo bench --bench detection -- --runs 20 [--confirm 2] [--time-to-fix 1h] [--thresholds C,H] [--counts]`
//!
//! See docs/performance.md for what bounds the result.

#[path = "../tests/common/prometheus.rs"]
mod prometheus;

use prometheus::PrometheusHarness;
use rollguard::demo::DemoService;
use rollguard::journal::{Event, Since};
use rollguard::model::Decision;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// The target's name in the daemon.
const TARGET: &str = "bench";
/// Requests per second of the demo service.
const RATE: f64 = 100.0;
/// Its error ratio while healthy: small but not zero, so that the
/// pre-release baseline is positive and `min_ratio` takes part.
const HEALTHY_ERROR_RATIO: f64 = 0.01;
/// Its error ratio once broken.
const BROKEN_ERROR_RATIO: f64 = 0.5;
/// How long a release serves healthily before it breaks (plus a jitter of
/// up to one second, so that T0 falls at every phase of ticks and scrapes).
const HEALTHY_TIME: Duration = Duration::from_secs(3);
/// Between runs: the rate window plus two scrapes, so that the next run's
/// baseline holds no errors of this one.
const SETTLE_TIME: Duration = Duration::from_secs(7);
/// A run that has not rolled back after this long failed.
const RUN_LIMIT: Duration = Duration::from_secs(30);
/// How often the bench looks at the journal and the step's output.
const POLL: Duration = Duration::from_millis(10);

/// Command-line options (`cargo bench` adds `--bench`, which is ignored).
#[derive(Debug)]
struct Options {
    runs: usize,
    confirm: u32,
    /// The target's `time_to_fix`: with the default decision matrix, 1h
    /// rolls back on a confirmed `critical` only, over 1h on `high` too.
    time_to_fix: String,
    /// The metric's `critical` and `high` thresholds (`--thresholds C,H`).
    thresholds: (f64, f64),
    /// Judge the error rate as a count metric (`--counts`): the sequential
    /// test and its fast path instead of thresholds on a ratio.
    counts: bool,
}

fn options() -> Options {
    let mut options = Options {
        runs: 20,
        confirm: 2,
        time_to_fix: "1h".to_owned(),
        thresholds: (0.2, 0.05),
        counts: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{name} needs a value"))
        };
        match arg.as_str() {
            "--runs" => options.runs = value("--runs").parse().expect("--runs N"),
            "--confirm" => options.confirm = value("--confirm").parse().expect("--confirm N"),
            "--time-to-fix" => options.time_to_fix = value("--time-to-fix"),
            "--counts" => options.counts = true,
            "--thresholds" => {
                let text = value("--thresholds");
                let (critical, high) = text
                    .split_once(',')
                    .and_then(|(c, h)| Some((c.parse().ok()?, h.parse().ok()?)))
                    .expect("--thresholds CRITICAL,HIGH (like 0.05,0.02)");
                options.thresholds = (critical, high);
            }
            _ => {} // --bench and cargo's filters
        }
    }
    assert!(options.runs > 0, "--runs must be at least 1");
    options
}

/// What one run measured.
#[derive(Debug)]
struct RunResult {
    /// T0 → the step script's own start time.
    to_step: Duration,
    /// T0 → the journal's `step_started` (millisecond resolution).
    to_step_started: Duration,
    /// T0 → the journal's `decision_made` rollback.
    to_decision: Duration,
    /// The severity the rollback was decided on.
    severity: String,
}

#[tokio::main]
async fn main() {
    let options = options();
    let (service, addr) = DemoService::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("demo service binds");
    service.set_rate(RATE);
    service.set_error_ratio(HEALTHY_ERROR_RATIO);
    service.set_version("v0");
    let prometheus = PrometheusHarness::start(&[addr]).await;
    tokio::time::sleep(SETTLE_TIME).await;

    print_environment(&options);
    let mut results = Vec::with_capacity(options.runs);
    for run in 1..=options.runs {
        match run_once(run, &options, &service, addr, &prometheus.url()).await {
            Ok(result) => {
                println!(
                    "run {run:>2}: {:.3} s to the step (journal step_started {:.3} s, decision {:.3} s, severity {})",
                    result.to_step.as_secs_f64(),
                    result.to_step_started.as_secs_f64(),
                    result.to_decision.as_secs_f64(),
                    result.severity
                );
                results.push(result);
            }
            Err(why) => println!("run {run:>2}: FAILED: {why}"),
        }
        service.set_error_ratio(HEALTHY_ERROR_RATIO);
        tokio::time::sleep(SETTLE_TIME).await;
    }
    service.stop();
    summarize(&results, options.runs);
}

fn print_environment(options: &Options) {
    let version = std::process::Command::new("/usr/bin/prometheus")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("{version}");
    println!(
        "scrape interval 1s, tick 1s, rate window [5s], confirm {}, \
         {RATE} req/s, error ratio {HEALTHY_ERROR_RATIO} -> {BROKEN_ERROR_RATIO}, \
         thresholds critical {} / high {}, min_ratio 2, time_to_fix {} (default decision matrix)",
        options.confirm, options.thresholds.0, options.thresholds.1, options.time_to_fix
    );
    println!(
        "{} runs; each: fresh daemon, release, {HEALTHY_TIME:?} + 0..1 s healthy, then T0",
        options.runs
    );
}

/// One release broken at T0, with a daemon of its own.
async fn run_once(
    run: usize,
    options: &Options,
    service: &DemoService,
    addr: std::net::SocketAddr,
    prometheus_url: &str,
) -> Result<RunResult, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let marker = dir.path().join("step-started");
    let script = dir.path().join("step.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ndate +%s.%N > {}.tmp && mv {0}.tmp {0}\n",
            marker.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let config_path = dir.path().join("rollguard.toml");
    std::fs::write(
        &config_path,
        config_text(dir.path(), options, addr, prometheus_url),
    )
    .map_err(|e| e.to_string())?;
    let config = rollguard::config::load(&config_path).map_err(|e| e.to_string())?;

    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (started_tx, started_rx) = oneshot::channel();
    let daemon = tokio::spawn(rollguard::daemon::run_until(
        config_path,
        config,
        async move {
            let _ = stop_rx.await;
        },
        started_tx,
    ));
    let state = started_rx
        .await
        .map_err(|_| "the daemon did not start".to_owned())?;
    let journal = state.journal().clone();
    let previous = format!("v{}", run - 1);
    let version = format!("v{run}");

    let result = async {
        // The first tick reads the running version (not a release).
        wait_until("the daemon sees the running version", || {
            state
                .targets()
                .iter()
                .any(|t| t.current_version.as_deref() == Some(previous.as_str()))
        })
        .await?;
        service.set_version(&version);
        wait_until("release_seen", || {
            journal
                .query(Some(TARGET), Since::All, 1000)
                .iter()
                .any(|r| matches!(&r.event, Event::ReleaseSeen { to, .. } if *to == version))
        })
        .await?;
        tokio::time::sleep(HEALTHY_TIME + jitter(run)).await;

        service.set_error_ratio(BROKEN_ERROR_RATIO);
        let t0 = SystemTime::now();

        let deadline = Instant::now() + RUN_LIMIT;
        let step_at = loop {
            if let Some(at) = std::fs::read_to_string(&marker)
                .ok()
                .and_then(|text| text.trim().parse::<f64>().ok())
            {
                break UNIX_EPOCH + Duration::from_secs_f64(at);
            }
            if Instant::now() > deadline {
                return Err(format!("no rollback step within {RUN_LIMIT:?}"));
            }
            tokio::time::sleep(POLL).await;
        };
        let records = journal.query(Some(TARGET), Since::All, 1000);
        let early_alarm = records.iter().find(|r| {
            r.at_time().is_some_and(|at| at < t0)
                && matches!(&r.event, Event::DecisionMade { decision, .. }
                    if !matches!(decision, Decision::Healthy | Decision::Inconclusive))
        });
        if let Some(record) = early_alarm {
            return Err(format!("a false positive before T0: {:?}", record.event));
        }
        let at = |pick: &dyn Fn(&Event) -> bool| {
            records
                .iter()
                .find(|r| pick(&r.event))
                .and_then(|r| r.at_time())
        };
        let step_started =
            at(&|e| matches!(e, Event::StepStarted { .. })).ok_or("no step_started record")?;
        let decision = records
            .iter()
            .find_map(|r| match &r.event {
                Event::DecisionMade {
                    decision: Decision::Rollback,
                    severity,
                    ..
                } => Some((r.at_time(), severity.to_string())),
                _ => None,
            })
            .ok_or("no rollback decision")?;
        let since_t0 = |t: SystemTime| {
            t.duration_since(t0)
                .map_err(|_| "the rollback started before T0: a false positive".to_owned())
        };
        Ok(RunResult {
            to_step: since_t0(step_at)?,
            // The journal's times are rounded to the millisecond.
            to_step_started: since_t0(step_started + Duration::from_millis(1))?,
            to_decision: since_t0(decision.0.ok_or("decision time")? + Duration::from_millis(1))?,
            severity: decision.1,
        })
    }
    .await;

    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(15), daemon).await {
        Ok(Ok(Ok(()))) => {}
        other => eprintln!("run {run}: the daemon did not stop cleanly: {other:?}"),
    }
    result
}

/// The run's offset within a second: the golden-ratio sequence spreads
/// T0 evenly over the phases of ticks and scrapes, reproducibly.
fn jitter(run: usize) -> Duration {
    let phase = (run as f64 * 0.618_033_988_75).fract();
    Duration::from_secs_f64(phase)
}

/// Polls `condition` until it holds, for at most [`RUN_LIMIT`].
async fn wait_until(what: &str, condition: impl Fn() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + RUN_LIMIT;
    while !condition() {
        if Instant::now() > deadline {
            return Err(format!("{what}: not within {RUN_LIMIT:?}"));
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// The daemon's configuration for one run.
fn config_text(
    dir: &Path,
    options: &Options,
    service: std::net::SocketAddr,
    prometheus: &str,
) -> String {
    let dir = dir.display();
    let confirm = options.confirm;
    let time_to_fix = &options.time_to_fix;
    let (critical, high) = options.thresholds;
    let metric = if options.counts {
        // Failed and all requests exactly since the release, judged by the
        // sequential test against the 5 s before it; levels relative to the
        // baseline (critical at 10x and +5 points), the fast path at 3 ticks.
        r#"[[target.metric]]
name = "error_ratio"
errors_query = 'sum(increase(demo_http_requests_total{code="500"}[{{window}}]))'
total_query = 'sum(increase(demo_http_requests_total[{{window}}]))'
baseline_window = "5s"
"#
        .to_owned()
    } else {
        format!(
            r#"# A fixed [5s] window: five scrapes, and no healthy post-release time to
# dilute a breakage. The pre_release baseline is the same query evaluated
# at the release (the 5 s before it).
[[target.metric]]
name = "error_ratio"
query = 'sum(rate(demo_http_requests_total{{code="500"}}[5s])) / sum(rate(demo_http_requests_total[5s]))'
baseline = "pre_release"
thresholds = {{ critical = {critical}, high = {high} }}
min_ratio = 2.0
confirm = {confirm}
"#
        )
    };
    format!(
        r#"[daemon]
listen = "127.0.0.1:0"
state_dir = "{dir}/state"
mode = "enforce"
log_level = "error"
shutdown_grace = "2s"

[prometheus]
url = "{prometheus}"
timeout = "2s"

[[target]]
name = "{TARGET}"
interval = "1s"
bake_window = "10m"
time_to_fix = "{time_to_fix}"

[target.release]
kind = "version_url"
url = "http://{service}/version"
json_pointer = "/version"

{metric}
[[target.step]]
phase = "rollback"
kind = "command"
name = "mark"
argv = ["{dir}/step.sh"]
timeout = "10s"
"#
    )
}

/// Per-run values were printed as they came; now the statistics.
fn summarize(results: &[RunResult], runs: usize) {
    println!();
    if results.is_empty() {
        println!("no run succeeded");
        return;
    }
    let mut to_step: Vec<f64> = results.iter().map(|r| r.to_step.as_secs_f64()).collect();
    to_step.sort_by(f64::total_cmp);
    let list: Vec<String> = results
        .iter()
        .map(|r| format!("{:.2}", r.to_step.as_secs_f64()))
        .collect();
    println!(
        "{} of {runs} runs rolled back; T0 -> step start (s): {}",
        results.len(),
        list.join(", ")
    );
    println!(
        "median {:.3} s, p90 {:.3} s, max {:.3} s, min {:.3} s",
        median(&to_step),
        nearest_rank(&to_step, 0.9),
        to_step[to_step.len() - 1],
        to_step[0]
    );
}

/// The median of sorted values (the mean of the middle two for an even
/// count).
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The nearest-rank percentile of sorted values.
fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
