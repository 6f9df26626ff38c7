//! A whole rollguard daemon, in-process, against real parts: a real
//! Prometheus scraping a [`DemoService`] that follows a `current` symlink
//! into real release directories, a real webhook receiver, and command
//! steps that are real programs writing what they were given to a file.

#![allow(dead_code)]

use super::prometheus::PrometheusHarness;
use axum::routing::post;
use rollguard::demo::DemoService;
use rollguard::journal::{Event, Record, Since};
use rollguard::model::Decision;
use rollguard::state::{State, TargetCommand};
use serde_json::Value;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The watched target's name.
pub const TARGET: &str = "shop";
/// A good release, running when each test starts.
pub const GOOD: &str = "v1";
/// A bad release: its directory holds a `broken` marker (health 503, half
/// of the requests fail).
pub const BAD: &str = "v2";
/// Another good release.
pub const GOOD_TOO: &str = "v3";
/// Another bad release.
pub const BAD_TOO: &str = "v4";

/// How long any one wait in a test may take before it fails.
pub const PATIENCE: Duration = Duration::from_secs(45);

/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(50);

/// The share of failed requests over the window, across versions.
pub const ERROR_RATIO: &str = r#"sum(rate(demo_http_requests_total{code="500"}[{{window}}])) / sum(rate(demo_http_requests_total[{{window}}]))"#;

/// Failed requests over the window (a count metric's `errors_query`).
pub const ERRORS: &str = r#"sum(increase(demo_http_requests_total{code="500"}[{{window}}]))"#;

/// All requests over the window (a count metric's `total_query`).
pub const REQUESTS: &str = r#"sum(increase(demo_http_requests_total[{{window}}]))"#;

/// The world a daemon watches.
pub struct World {
    /// Releases, the link, scripts, the journal; removed on drop.
    pub dir: tempfile::TempDir,
    /// The `current` link the service follows and rollguard watches.
    pub link: PathBuf,
    /// Where the recording command step appends what it was given.
    pub record: PathBuf,
    /// The recording command step's program.
    pub record_script: PathBuf,
    /// A command step that fails (exit 1).
    pub fail_script: PathBuf,
    /// The service under watch.
    pub service: DemoService,
    /// Where it listens.
    pub service_addr: SocketAddr,
    /// The real Prometheus scraping it every second.
    pub prometheus: PrometheusHarness,
    /// Every webhook body received.
    pub hooks: Hooks,
    /// Every body the `slack` notifier (its URL in a file) posted.
    pub slack: Hooks,
}

/// The bodies a local webhook receiver got.
#[derive(Clone, Default)]
pub struct Hooks {
    bodies: Arc<Mutex<Vec<Value>>>,
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
}

impl Hooks {
    /// A receiver on 127.0.0.1:0 that records every body posted to `/hook`.
    pub async fn start() -> Hooks {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the webhook receiver");
        let addr = listener.local_addr().expect("address");
        let hooks = Hooks {
            bodies: Arc::default(),
            url: format!("http://{addr}/hook"),
        };
        let bodies = hooks.bodies.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move |axum::Json(body): axum::Json<Value>| {
                let bodies = bodies.clone();
                async move {
                    bodies.lock().expect("hooks lock").push(body);
                    "ok"
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        hooks
    }

    /// Every body received so far.
    pub fn all(&self) -> Vec<Value> {
        self.bodies.lock().expect("hooks lock").clone()
    }

    /// The bodies whose `event` is `event`.
    pub fn of(&self, event: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|b| b["event"] == event)
            .collect()
    }

    /// The events received, in order.
    pub fn events(&self) -> Vec<String> {
        self.all()
            .iter()
            .map(|b| b["event"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The events of the Slack messages received, in order, as their
    /// context line names them (``event `rollback_started` ``).
    pub fn slack_events(&self) -> Vec<String> {
        self.all()
            .iter()
            .filter_map(|b| {
                let context = b["blocks"][1]["elements"][0]["text"].as_str()?;
                let rest = context.split_once("event `")?.1;
                Some(rest.split_once('`')?.0.to_owned())
            })
            .collect()
    }

    /// Waits for the first body with `event` that `pred` accepts.
    pub async fn wait(&self, event: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(body) = self.of(event).into_iter().find(|b| pred(b)) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "no {event} notification within {PATIENCE:?}; received: {:?}",
                self.events()
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl World {
    /// Releases `v1` (good, running), `v2` (broken), `v3` (good), `v4`
    /// (broken); the service following `current`; Prometheus scraping it
    /// and already holding a few seconds of `v1`'s traffic, so that the
    /// pre-release baseline has data.
    pub async fn start() -> World {
        init_logs();
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        for version in [GOOD, BAD, GOOD_TOO, BAD_TOO] {
            std::fs::create_dir_all(root.join("releases").join(version)).expect("mkdir");
        }
        for version in [BAD, BAD_TOO] {
            std::fs::write(root.join("releases").join(version).join("broken"), "")
                .expect("broken marker");
        }
        let link = root.join("current");
        std::os::unix::fs::symlink(Path::new("releases").join(GOOD), &link).expect("symlink");

        let record = root.join("step-record.txt");
        let record_script = script(
            root,
            "record-step",
            &format!(
                "{{ echo \"argv: $*\"; env | grep '^ROLLGUARD_' | sort; echo '--'; }} >> '{}'\n",
                record.display()
            ),
        );
        let fail_script = script(
            root,
            "fail-step",
            "echo 'precheck: the load balancer refuses' >&2\nexit 1\n",
        );

        let (service, service_addr) = DemoService::start(([127, 0, 0, 1], 0).into())
            .await
            .expect("demo service binds");
        service.set_rate(50.0);
        service.follow_symlink(&link);
        let hooks = Hooks::start().await;
        let slack = Hooks::start().await;
        std::fs::write(root.join("slack-url"), &slack.url).expect("slack URL file");
        let prometheus = PrometheusHarness::start(&[service_addr]).await;
        let world = World {
            dir,
            link,
            record,
            record_script,
            fail_script,
            service,
            service_addr,
            prometheus,
            hooks,
            slack,
        };
        world
            .wait_for_ratio(|v| v.is_some_and(|v| v.is_finite() && v < 0.05))
            .await;
        world
    }

    /// Waits until Prometheus holds `seconds` of the service's traffic: a
    /// count metric's baseline is taken over whole seconds, and
    /// `increase()` needs two samples in its window.
    pub async fn wait_for_traffic(&self, seconds: u32) {
        let query = REQUESTS.replace("{{window}}", &format!("{seconds}s"));
        let enough = 50.0 * f64::from(seconds.saturating_sub(1));
        self.prometheus
            .wait_for(&query, |v| v.is_some_and(|v| v >= enough), PATIENCE)
            .await;
    }

    /// Waits until the error ratio over the last 5 s satisfies `pred`.
    pub async fn wait_for_ratio(&self, pred: impl Fn(Option<f64>) -> bool) {
        let query = ERROR_RATIO.replace("{{window}}", "5s");
        self.prometheus.wait_for(&query, pred, PATIENCE).await;
    }

    /// The temporary directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Deploys `version`: repoints `current` atomically, as a deploy tool does.
    pub fn deploy(&self, version: &str) {
        let tmp = self.root().join("current.deploy-tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(Path::new("releases").join(version), &tmp).expect("symlink");
        std::fs::rename(&tmp, &self.link).expect("rename over current");
    }

    /// The version `current` points at.
    pub fn running(&self) -> String {
        std::fs::read_link(&self.link)
            .expect("current is a link")
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Makes a release directory bad (or good again) from now on.
    pub fn set_broken(&self, version: &str, broken: bool) {
        let marker = self.root().join("releases").join(version).join("broken");
        if broken {
            std::fs::write(marker, "").expect("broken marker");
        } else {
            let _ = std::fs::remove_file(marker);
        }
    }

    /// What the recording step wrote, one block per run.
    pub fn step_runs(&self) -> Vec<String> {
        match std::fs::read_to_string(&self.record) {
            Ok(text) => text
                .split("--\n")
                .filter(|b| !b.trim().is_empty())
                .map(str::to_owned)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// A configuration for one target, `shop`, watched through `current`.
    pub fn config(&self, target: &TargetSetup) -> String {
        let root = self.root().display().to_string();
        let mut text = format!(
            r##"[daemon]
listen = "127.0.0.1:0"
state_dir = "{root}/state"
mode = "{mode}"
shutdown_grace = "5s"
monitoring_notice_after = "{notice_after}"

[prometheus]
url = "{prometheus}"
timeout = "1s"
min_window = "5s"

[[notifier]]
name = "on-call"
kind = "webhook"
url = "{hook}"
timeout = "2s"
retries = 0

[[notifier]]
name = "chat"
kind = "slack"
url_file = "{root}/slack-url"
timeout = "2s"
retries = 0

[[target]]
name = "{TARGET}"
interval = "1s"
bake_window = "{bake_window}"
time_to_fix = "1h"
cooldown = "{cooldown}"
notify = ["on-call", "chat"]
status_channel = "#status-shop"

[target.release]
kind = "symlink"
path = "{root}/current"
"##,
            mode = target.mode,
            prometheus = self.prometheus.url(),
            hook = self.hooks.url,
            bake_window = target.bake_window,
            cooldown = target.cooldown,
            notice_after = target.monitoring_notice_after,
        );
        if target.probe {
            text.push_str(&format!(
                r#"
[[target.probe]]
name = "health"
url = "http://{}/health"
timeout = "500ms"
failures = 2
severity = "critical"
"#,
                self.service_addr
            ));
        }
        if target.counts {
            text.push_str(&format!(
                r#"
[[target.metric]]
name = "error_rate"
errors_query = '{ERRORS}'
total_query = '{REQUESTS}'
baseline = "pre_release"
baseline_window = "5s"
"#
            ));
        } else {
            text.push_str(&format!(
                r#"
[[target.metric]]
name = "error_rate"
query = '{ERROR_RATIO}'
baseline = "pre_release"
baseline_window = "5s"
thresholds = {{ critical = 0.2, high = 0.1 }}
min_ratio = 2.0
confirm = 2
"#
            ));
        }
        text.push_str(&target.steps.replace("@ROOT@", &root));
        text
    }

    /// The usual pipeline: a recording command step, the symlink switch,
    /// and verification.
    pub fn steps(&self) -> String {
        format!(
            r#"
[[target.step]]
phase = "notify"
kind = "command"
name = "record"
argv = ["{}", "{{{{target}}}}", "{{{{version}}}}", "{{{{previous_version}}}}", "{{{{release_id}}}}", "{{{{mode}}}}"]
timeout = "10s"
on_failure = "abort"

[[target.step]]
phase = "rollback"
kind = "symlink_switch"
link = "@ROOT@/current"
timeout = "10s"

[[target.step]]
phase = "verify"
kind = "verify"
timeout = "25s"
"#,
            self.record_script.display()
        )
    }

    /// Writes `config` and starts a daemon on it.
    pub async fn start_daemon(&self, config: &str) -> Daemon {
        start_daemon(&self.root().join("rollguard.toml"), config).await
    }
}

/// Writes `config` to `path` and starts a daemon on it, once its first
/// tick has read the running version.
pub async fn start_daemon(path: &Path, config: &str) -> Daemon {
    init_logs();
    let path = path.to_owned();
    std::fs::write(&path, config).expect("write config");
    let loaded = rollguard::config::load(&path).unwrap_or_else(|e| panic!("{e}\n{config}"));
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
    let state = match started.await {
        Ok(state) => state,
        Err(_) => panic!("the daemon did not start: {:?}", task.await),
    };
    let daemon = Daemon {
        state,
        stop: Some(stop),
        task: Some(task),
    };
    // The first tick reads the running version: later changes are
    // releases.
    daemon
        .wait_until("the first tick", |d| {
            d.status()
                .is_some_and(|s| s.ticks >= 1 && s.current_version.is_some())
        })
        .await;
    daemon
}

/// What differs between the tests' targets.
pub struct TargetSetup {
    /// `enforce`, `shadow` or `approve`.
    pub mode: &'static str,
    /// With the `/health` probe (else Prometheus is the only signal).
    pub probe: bool,
    /// `[[target.step]]` tables; `@ROOT@` is the temporary directory.
    pub steps: String,
    /// The bake window.
    pub bake_window: &'static str,
    /// The cooldown.
    pub cooldown: &'static str,
    /// `daemon.monitoring_notice_after`: `0s` by default, so that an
    /// outage's notices come at the tick it starts and ends.
    pub monitoring_notice_after: &'static str,
    /// Judge the error rate as a count metric (the sequential test on
    /// failed and all requests) instead of thresholds on the ratio.
    pub counts: bool,
}

impl TargetSetup {
    /// Enforce mode, probe and metric, a 60 s bake window, `steps`, and a
    /// cooldown too short to matter: a test that shows that something
    /// is not rolled back twice must not owe it to the cooldown.
    pub fn enforce(steps: String) -> TargetSetup {
        TargetSetup {
            mode: "enforce",
            probe: true,
            steps,
            bake_window: "60s",
            cooldown: "1s",
            monitoring_notice_after: "0s",
            counts: false,
        }
    }
}

/// A running in-process daemon.
pub struct Daemon {
    /// Its shared state: journal, targets, command channels.
    pub state: State,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), rollguard::Error>>>,
}

impl Daemon {
    /// Stops the daemon through its shutdown future and waits until it
    /// has returned (journal closed and unlocked).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("the daemon stops within 20 s");
            result.expect("no panic").expect("the daemon stops cleanly");
        }
    }

    /// The target's status.
    pub fn status(&self) -> Option<rollguard::state::TargetStatus> {
        self.state.targets().into_iter().find(|t| t.name == TARGET)
    }

    /// Ticks run so far.
    pub fn ticks(&self) -> u64 {
        self.status().map(|s| s.ticks).unwrap_or(0)
    }

    /// Every journal record about the target, in order.
    pub fn records(&self) -> Vec<Record> {
        self.state
            .journal()
            .query(Some(TARGET), Since::All, 100_000)
    }

    /// The records that `pred` picks.
    pub fn find(&self, pred: impl Fn(&Event) -> bool) -> Vec<Record> {
        self.records()
            .into_iter()
            .filter(|r| pred(&r.event))
            .collect()
    }

    /// The decisions journaled about `release_id`.
    pub fn decisions(&self, release_id: &str) -> Vec<Decision> {
        self.records()
            .into_iter()
            .filter_map(|r| match r.event {
                Event::DecisionMade {
                    release_id: id,
                    decision,
                    ..
                } if id == release_id => Some(decision),
                _ => None,
            })
            .collect()
    }

    /// How many rollbacks were started.
    pub fn rollbacks_started(&self) -> usize {
        self.find(|e| matches!(e, Event::RollbackStarted { .. }))
            .len()
    }

    /// The target's records, one JSON line each, for failure messages.
    pub fn timeline(&self) -> String {
        self.records()
            .iter()
            .map(|r| {
                let value = serde_json::to_value(&r.event).unwrap_or_default();
                format!("{} {}", r.seq, value)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Polls until `done` holds; panics with the journal after [`PATIENCE`].
    pub async fn wait_until(&self, what: &str, done: impl Fn(&Daemon) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: not reached within {PATIENCE:?}; journal:\n{}",
                self.timeline()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for the first record that `pred` accepts, and returns it.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Event) -> bool) -> Record {
        self.wait_until(what, |d| !d.find(&pred).is_empty()).await;
        self.find(pred).remove(0)
    }

    /// Waits for the release of `to` seen by the source (not rollguard's
    /// own), and returns its id.
    pub async fn wait_release(&self, to: &str) -> String {
        let record = self
            .wait_for(
                &format!("release of {to} seen"),
                |e| matches!(e, Event::ReleaseSeen { to: t, by_rollguard: false, .. } if t == to),
            )
            .await;
        match record.event {
            Event::ReleaseSeen { release_id, .. } => release_id,
            _ => unreachable!("filtered above"),
        }
    }

    /// Waits until `n` more ticks have run: the watchdog's own clock, so
    /// that "nothing happened" means "nothing happened in n judgements".
    pub async fn wait_ticks(&self, n: u64) {
        let until = self.ticks() + n;
        self.wait_until(&format!("{n} more ticks"), |d| d.ticks() >= until)
            .await;
    }

    /// Sends `Approve` to the target's watchdog and returns its answer.
    pub async fn approve(&self) -> Result<String, rollguard::state::CommandError> {
        let (reply, answer) = oneshot::channel();
        self.state
            .commands(TARGET)
            .expect("the target has a command channel")
            .send(TargetCommand::Approve { reply })
            .await
            .expect("the watchdog takes commands");
        tokio::time::timeout(PATIENCE, answer)
            .await
            .expect("the watchdog answers")
            .expect("an answer")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A test that failed half-way: stop the daemon with it.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Writes an executable `#!/bin/sh` program into `dir`.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Shows rollguard's logs in a failing test's output.
fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "rollguard=info".into()),
        )
        .try_init();
}
