//! `rollguard demo`: the whole loop on this machine with nothing but the
//! binary. A demo service runs from a release directory behind a `current`
//! symlink; the demo deploys a broken release by repointing the link; an
//! embedded rollguard daemon sees it, judges it and (in enforce mode) rolls
//! it back, while the terminal shows a timeline and an incident summary.

use super::DemoService;
use crate::config;
use crate::daemon;
use crate::journal::{Event, Record, Since};
use crate::model::Mode;
use crate::state::State;
use axum::routing::post;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// The demo's target name.
const TARGET: &str = "demo-shop";
/// The good release and the bad one.
const GOOD: &str = "v1.0.0";
const BAD: &str = "v1.1.0";
/// How long the good release runs before the bad one is deployed: the
/// pre-release baseline needs a few seconds of traffic.
const BASELINE_TIME: Duration = Duration::from_secs(6);
/// How long the demo waits for the outcome after the deploy.
const OUTCOME_LIMIT: Duration = Duration::from_secs(45);

/// How the demo ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOutcome {
    /// Whether what the mode promises happened (a verified rollback in
    /// enforce mode; a would-roll-back and an untouched link in shadow).
    pub ok: bool,
    /// One line to end on.
    pub summary: String,
}

/// Prints lines stamped with the time since the demo started.
struct Timeline {
    start: Instant,
}

impl Timeline {
    fn say(&self, text: &str) {
        let t = self.start.elapsed().as_secs_f64();
        for (i, line) in text.lines().enumerate() {
            if i == 0 {
                println!("  {t:>6.1}s  {line}");
            } else {
                println!("           {line}");
            }
        }
    }
}

/// Runs the demo in `mode` (enforce or shadow). `keep` leaves the temporary
/// directory (releases, journal) in place for a look afterwards.
pub async fn run(mode: Mode, keep: bool) -> anyhow::Result<DemoOutcome> {
    let dir = tempfile::Builder::new()
        .prefix("rollguard-demo-")
        .tempdir()?;
    let root = dir.path().to_owned();
    let link = prepare_releases(&root)?;
    let (service, service_addr) = DemoService::start(([127, 0, 0, 1], 0).into()).await?;
    service.follow_symlink(&link);
    let (hooks_tx, mut hooks) = mpsc::unbounded_channel::<serde_json::Value>();
    let hook_addr = webhook_receiver(hooks_tx).await?;

    let config_text = demo_config(&root, mode, service_addr, hook_addr);
    let config_path = root.join("rollguard.toml");
    std::fs::write(&config_path, &config_text)?;
    let config = config::load(&config_path).map_err(|e| anyhow::anyhow!("{e}"))?;

    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (started_tx, started_rx) = oneshot::channel();
    let daemon = tokio::spawn(daemon::run_until(
        config_path.clone(),
        config,
        async move {
            let _ = stop_rx.await;
        },
        started_tx,
    ));
    let state = started_rx
        .await
        .map_err(|_| anyhow::anyhow!("the embedded daemon did not start"))?;

    let timeline = Timeline {
        start: Instant::now(),
    };
    println!(
        "rollguard demo, {mode} mode: a broken release of a small web shop, and what rollguard does about it."
    );
    println!(
        "  service {TARGET} on http://{service_addr} (health, version, traffic), releases in {}",
        root.display()
    );
    println!(
        "  rollguard: a tick every second; health probe (2 failures to count), error rate vs the pre-release baseline; pipeline: symlink_switch, verify"
    );
    println!();
    timeline.say(&format!(
        "{GOOD} is running; rollguard watches {TARGET} (current -> releases/{GOOD})"
    ));
    tokio::time::sleep(BASELINE_TIME).await;
    timeline.say(&format!(
        "{GOOD} has served {BASELINE_TIME:?} of traffic: that is the baseline"
    ));
    switch_link(&link, BAD)?;
    let deployed_at = Instant::now();
    timeline.say(&format!("Deploying {BAD} (current -> releases/{BAD}): it fails its health check and a third of its requests"));

    let mut seen = Since::All;
    let mut marks = Marks::default();
    let mut last_tick_line = String::new();
    let deadline = Instant::now() + OUTCOME_LIMIT;
    while Instant::now() < deadline && !marks.finished(mode) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for record in state.journal().query(Some(TARGET), seen, 1000) {
            seen = Since::Seq(record.seq);
            marks.record(&record, &timeline, deployed_at);
        }
        while let Ok(notification) = hooks.try_recv() {
            marks.notification(&notification, &timeline);
        }
        let line = tick_line(&state);
        if !line.is_empty() && line != last_tick_line && !marks.rollback_finished() {
            timeline.say(&line);
            last_tick_line = line;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(notification) = hooks.try_recv() {
        marks.notification(&notification, &timeline);
    }
    let running = std::fs::read_link(&link)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let _ = stop_tx.send(());
    let _ = daemon.await;
    service.stop();

    println!();
    println!("Incident summary");
    let outcome = marks.summary(mode, &running, deployed_at);
    for line in &outcome.1 {
        println!("  {line}");
    }
    if let Some(text) = &marks.last_text {
        println!();
        println!("What the on-call channel received last:");
        for line in text.lines() {
            println!("  | {line}");
        }
    }
    if keep {
        let kept = dir.keep();
        println!();
        println!("Kept {} (journal in state/journal.jsonl)", kept.display());
    } else if mode == Mode::Shadow && running == BAD {
        // The demo undoes its own bad deploy; rollguard changed nothing.
        let _ = switch_link(&link, GOOD);
    }
    Ok(DemoOutcome {
        ok: outcome.0,
        summary: outcome.1.first().cloned().unwrap_or_default(),
    })
}

/// What the demo has seen happen, with when.
#[derive(Default)]
struct Marks {
    release_seen: Option<Duration>,
    decided: Option<(Duration, String)>,
    rollback_started: Option<Duration>,
    rollback_finished: Option<(Duration, String)>,
    would_rollback: Option<Duration>,
    last_text: Option<String>,
}

impl Marks {
    fn finished(&self, mode: Mode) -> bool {
        match mode {
            Mode::Shadow => self.would_rollback.is_some(),
            _ => self.rollback_finished.is_some(),
        }
    }

    fn rollback_finished(&self) -> bool {
        self.rollback_finished.is_some() || self.would_rollback.is_some()
    }

    fn record(&mut self, record: &Record, timeline: &Timeline, deployed_at: Instant) {
        let since = deployed_at.elapsed();
        match &record.event {
            Event::ReleaseSeen {
                from,
                to,
                by_rollguard,
                ..
            } => {
                if *by_rollguard {
                    timeline.say(&format!(
                        "{to} runs again: rollguard's own rollback, watched but never rolled back"
                    ));
                } else {
                    self.release_seen.get_or_insert(since);
                    timeline.say(&format!(
                        "Release seen: {} -> {to}; bake window opens",
                        from.as_deref().unwrap_or("?")
                    ));
                }
            }
            Event::DecisionMade {
                decision,
                severity,
                rule,
                ..
            } => {
                let rule = rule.clone().unwrap_or_default();
                if matches!(
                    decision,
                    crate::model::Decision::Rollback | crate::model::Decision::ConsiderRollback
                ) {
                    self.decided.get_or_insert((since, rule.clone()));
                }
                timeline.say(&format!(
                    "Assessment: severity {severity} -> {decision}\n  rule: {rule}"
                ));
            }
            Event::RollbackStarted { from, to, .. } => {
                self.rollback_started.get_or_insert(since);
                timeline.say(&format!("Rolling back {from} -> {to}"));
            }
            Event::StepStarted { step, attempt, .. } => {
                timeline.say(&format!("  step {step} started (attempt {attempt})"));
            }
            Event::StepFinished {
                step,
                outcome,
                message,
                ..
            } => {
                timeline.say(&format!(
                    "  step {step}: {outcome}{}",
                    message
                        .as_deref()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                ));
            }
            Event::RollbackFinished { outcome, .. } => {
                self.rollback_finished = Some((since, outcome.clone()));
                timeline.say(&format!("Rollback {outcome}"));
            }
            _ => {}
        }
    }

    fn notification(&mut self, body: &serde_json::Value, timeline: &Timeline) {
        let event = body["event"].as_str().unwrap_or_default();
        let headline = body["headline"].as_str().unwrap_or_default();
        timeline.say(&format!("notify [{event}] {headline}"));
        if event == "would_rollback" {
            self.would_rollback.get_or_insert(Duration::ZERO);
        }
        if matches!(
            event,
            "would_rollback" | "rollback_completed" | "rollback_failed"
        ) {
            self.last_text = body["text"].as_str().map(str::to_owned);
        }
    }

    /// Whether the run did what the mode promises, and the summary lines.
    fn summary(&self, mode: Mode, running: &str, _deployed_at: Instant) -> (bool, Vec<String>) {
        let secs = |d: Option<Duration>| {
            d.map(|d| format!("{:.1} s", d.as_secs_f64()))
                .unwrap_or_else(|| "never".to_owned())
        };
        let mut lines = Vec::new();
        let ok = match mode {
            Mode::Shadow => {
                let ok = self.would_rollback.is_some() && running == BAD;
                lines.push(if ok {
                    format!("Shadow mode: rollguard would have rolled {TARGET} back from {BAD} to {GOOD}, and changed nothing ({BAD} still runs)")
                } else {
                    format!("Shadow mode: no would-roll-back message within {OUTCOME_LIMIT:?} (running: {running})")
                });
                ok
            }
            _ => {
                let outcome = self.rollback_finished.as_ref().map(|(_, o)| o.as_str());
                let ok = outcome == Some("completed") && running == GOOD;
                lines.push(if ok {
                    format!("{BAD} was rolled back to {GOOD} and verified healthy")
                } else {
                    format!(
                        "The rollback did not complete (outcome {}, running {running})",
                        outcome.unwrap_or("none")
                    )
                });
                ok
            }
        };
        lines.push(format!(
            "release seen     {} after the deploy",
            secs(self.release_seen)
        ));
        lines.push(format!(
            "decision         {} after the deploy",
            secs(self.decided.as_ref().map(|(d, _)| *d))
        ));
        if let Some((_, rule)) = &self.decided {
            lines.push(format!("matrix rule      {rule}"));
        }
        if mode != Mode::Shadow {
            lines.push(format!(
                "rollback started {} after the deploy",
                secs(self.rollback_started)
            ));
            lines.push(format!(
                "verified         {} after the deploy",
                secs(self.rollback_finished.as_ref().map(|(d, _)| *d))
            ));
        }
        lines.push(format!("now running      {running}"));
        (ok, lines)
    }
}

/// One line about the last tick: what each check measured.
fn tick_line(state: &State) -> String {
    let Some(status) = state.targets().into_iter().find(|t| t.name == TARGET) else {
        return String::new();
    };
    let Some(assessment) = status.last_assessment else {
        return String::new();
    };
    let evidence = assessment["evidence"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let parts: Vec<String> = evidence
        .iter()
        .filter_map(|e| e["reason"].as_str().map(str::to_owned))
        .collect();
    if parts.is_empty() {
        return String::new();
    }
    format!("tick: {}", parts.join(" | "))
}

/// Creates `releases/v1.0.0` (healthy) and `releases/v1.1.0` (broken) and
/// `current -> releases/v1.0.0`; returns the link.
fn prepare_releases(root: &Path) -> std::io::Result<PathBuf> {
    let releases = root.join("releases");
    for (version, behaviour) in [
        (
            GOOD,
            "healthy = true\nerror_ratio = 0.005\nrate = 60.0\nlatency_ms = 40.0\n",
        ),
        (
            BAD,
            "healthy = false\nerror_ratio = 0.35\nrate = 60.0\nlatency_ms = 120.0\n",
        ),
    ] {
        let dir = releases.join(version);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("behaviour.toml"), behaviour)?;
    }
    let link = root.join("current");
    std::os::unix::fs::symlink(Path::new("releases").join(GOOD), &link)?;
    Ok(link)
}

/// Repoints `link` at `releases/<version>` atomically, as a deploy tool does.
fn switch_link(link: &Path, version: &str) -> std::io::Result<()> {
    let tmp = link.with_extension("deploy-tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(Path::new("releases").join(version), &tmp)?;
    std::fs::rename(&tmp, link)
}

/// A local webhook receiver standing in for the on-call channel.
async fn webhook_receiver(
    tx: mpsc::UnboundedSender<serde_json::Value>,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                "ok"
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

/// The demo's configuration: one target, symlink releases, a health probe,
/// an error-rate metric against the pre-release baseline, and a pipeline
/// that switches the link back and verifies.
fn demo_config(
    root: &Path,
    mode: Mode,
    service: std::net::SocketAddr,
    hook: std::net::SocketAddr,
) -> String {
    let root = root.display();
    format!(
        r#"# Written by `rollguard demo`.
[daemon]
listen = "127.0.0.1:0"
state_dir = "{root}/state"
mode = "{mode}"
log_level = "error"
shutdown_grace = "5s"

# The demo service answers demo_error_ratio[<window>] itself, so that the
# demo needs no Prometheus; a real setup points this at Prometheus.
[prometheus]
url = "http://{service}"
timeout = "2s"
min_window = "3s"

[[notifier]]
name = "on-call"
kind = "webhook"
url = "http://{hook}/hook"
retries = 0

[[target]]
name = "{TARGET}"
interval = "1s"
bake_window = "40s"
time_to_fix = "1h"
cooldown = "10m"
notify = ["on-call"]

[target.release]
kind = "symlink"
path = "{root}/current"

[[target.probe]]
name = "health"
url = "http://{service}/health"
timeout = "500ms"
failures = 2
severity = "critical"

[[target.metric]]
name = "error_rate"
query = "demo_error_ratio[{{{{window}}}}]"
baseline = "pre_release"
baseline_window = "5s"
thresholds = {{ critical = 0.2, high = 0.05, medium = 0.02 }}
min_ratio = 2.0
confirm = 2

[[target.step]]
phase = "rollback"
kind = "symlink_switch"
link = "{root}/current"
timeout = "10s"

[[target.step]]
phase = "verify"
kind = "verify"
timeout = "20s"
"#
    )
}
