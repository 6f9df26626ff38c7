//! Two whole daemons (`daemon::run_until`, in-process) on one fake cluster,
//! each with its own journal, competing for one Lease: after a bad release
//! of the Deployment, exactly one rollback runs across both.

#[path = "common/kube_fake/mod.rs"]
#[allow(dead_code, unused_imports)]
mod kube_fake;

use axum::extract::State as AxumState;
use axum::http::StatusCode;
use kube_fake::FakeCluster;
use rollguard::journal::Event;
use rollguard::state::State;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const NS: &str = "default";

/// A `/health` endpoint the test makes fail.
async fn health_server(healthy: Arc<AtomicBool>) -> String {
    async fn health(AxumState(healthy): AxumState<Arc<AtomicBool>>) -> StatusCode {
        if healthy.load(Ordering::SeqCst) {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
    let app = axum::Router::new()
        .route("/health", axum::routing::get(health))
        .with_state(healthy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/health")
}

fn config(dir: &Path, kubeconfig: &Path, health: &str, runs: &Path) -> String {
    format!(
        r#"[daemon]
listen = "127.0.0.1:0"
state_dir = "{state}"
mode = "enforce"
shutdown_grace = "5s"
kubeconfig = "{kubeconfig}"
leader_election = {{ lease = "rollguard", namespace = "default", duration = "2s" }}

[[target]]
name = "web"
interval = "500ms"
bake_window = "60s"
time_to_fix = "1h"
cooldown = "1s"

[target.release]
kind = "kubernetes"
namespace = "default"
deployment = "web"
container = "app"

[[target.probe]]
name = "health"
url = "{health}"
timeout = "500ms"
failures = 2
severity = "critical"

[[target.step]]
phase = "rollback"
kind = "command"
name = "record"
argv = ["/bin/sh", "-c", "echo \"$ROLLGUARD_RELEASE_ID $ROLLGUARD_FROM_VERSION $ROLLGUARD_TO_VERSION\" >> {runs}"]
timeout = "10s"
"#,
        state = dir.join("state").display(),
        kubeconfig = kubeconfig.display(),
        runs = runs.display(),
    )
}

struct Daemon {
    state: State,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), rollguard::Error>>,
}

impl Daemon {
    /// Stops the daemon and checks that it stopped cleanly, in time.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let stopped = tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("stopped in time");
        assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
    }
}

async fn start(dir: &Path, text: &str) -> Daemon {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join("rollguard.toml");
    std::fs::write(&path, text).expect("write config");
    let loaded = rollguard::config::load(&path).unwrap_or_else(|e| panic!("{e}\n{text}"));
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
    let state = started.await.expect("the daemon started");
    Daemon {
        state,
        stop: Some(stop),
        task,
    }
}

async fn wait(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn version(daemon: &Daemon) -> Option<String> {
    daemon
        .state
        .targets()
        .into_iter()
        .find(|t| t.name == "web")
        .and_then(|t| t.current_version)
}

fn rollbacks_started(daemon: &Daemon) -> usize {
    let records = daemon.state.journal().records();
    records
        .iter()
        .filter(|r| matches!(r.event, Event::RollbackStarted { .. }))
        .count()
}

fn saw_rollguards_own(daemon: &Daemon, to: &str) -> bool {
    let records = daemon.state.journal().records();
    records.iter().any(|r| {
        matches!(&r.event, Event::ReleaseSeen { to: seen, by_rollguard: true, .. } if seen == to)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_release_is_rolled_back_exactly_once_across_two_replicas() {
    let cluster = FakeCluster::start();
    cluster.create_deployment(NS, "web", &[("app", "shop/web:1.0")], &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = cluster.kubeconfig(dir.path());
    let healthy = Arc::new(AtomicBool::new(true));
    let health = health_server(healthy.clone()).await;
    let runs = dir.path().join("runs");
    let a = start(
        &dir.path().join("a"),
        &config(&dir.path().join("a"), &kubeconfig, &health, &runs),
    )
    .await;
    let b = start(
        &dir.path().join("b"),
        &config(&dir.path().join("b"), &kubeconfig, &health, &runs),
    )
    .await;
    wait("both daemons to see 1.0", Duration::from_secs(15), || {
        version(&a).as_deref() == Some("1.0") && version(&b).as_deref() == Some("1.0")
    })
    .await;
    wait("a leader", Duration::from_secs(10), || {
        a.state.is_leader() || b.state.is_leader()
    })
    .await;
    assert!(!(a.state.is_leader() && b.state.is_leader()), "two leaders");

    // A bad release.
    healthy.store(false, Ordering::SeqCst);
    cluster.set_image(NS, "web", "app", "shop/web:1.1");
    wait("a rollback to run", Duration::from_secs(30), || {
        std::fs::read_to_string(&runs).is_ok_and(|t| !t.is_empty())
    })
    .await;
    // The rollback step "deploys" 1.0 again; the service recovers.
    cluster.set_image(NS, "web", "app", "shop/web:1.0");
    healthy.store(true, Ordering::SeqCst);
    wait(
        "both replicas to take 1.0 for rollguard's own",
        Duration::from_secs(30),
        || saw_rollguards_own(&a, "1.0") && saw_rollguards_own(&b, "1.0"),
    )
    .await;
    // Long enough for a second rollback to start if anything would.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let lines = std::fs::read_to_string(&runs).expect("runs");
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].ends_with(" 1.1 1.0"), "{lines:?}");
    assert_eq!(rollbacks_started(&a) + rollbacks_started(&b), 1);
    let deployment = cluster.deployment(NS, "web");
    assert!(
        deployment["metadata"]["annotations"]["rollguard.io/rolled-back"].is_string(),
        "the rollback is marked on the Deployment"
    );

    for daemon in [a, b] {
        daemon.stop().await;
    }
}

/// A `/health` endpoint that is healthy exactly when the fake Deployment's
/// container runs `good_image`: rolling the Deployment back really heals it.
async fn image_health_server(cluster: Arc<FakeCluster>, good_image: &'static str) -> String {
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(move || {
            let cluster = cluster.clone();
            async move {
                let deployment = cluster.deployment(NS, "web");
                let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if image == good_image {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/health")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_that_breaks_the_probe_is_undone_through_the_api_server_and_verified() {
    let cluster = Arc::new(FakeCluster::start());
    cluster.create_deployment(NS, "web", &[("app", "shop/web:1.0")], &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = cluster.kubeconfig(dir.path());
    let health = image_health_server(cluster.clone(), "shop/web:1.0").await;
    let text = format!(
        r#"[daemon]
listen = "127.0.0.1:0"
state_dir = "{state}"
mode = "enforce"
shutdown_grace = "5s"
kubeconfig = "{kubeconfig}"

[[target]]
name = "web"
interval = "500ms"
bake_window = "60s"
time_to_fix = "1h"

[target.release]
kind = "kubernetes"
namespace = "default"
deployment = "web"
container = "app"

[[target.probe]]
name = "health"
url = "{health}"
timeout = "500ms"
failures = 2
severity = "critical"

[[target.step]]
phase = "rollback"
kind = "kubernetes_undo"

[[target.step]]
phase = "verify"
kind = "kubernetes_rollout_status"
timeout = "20s"

[[target.step]]
phase = "verify"
kind = "verify"
timeout = "20s"
"#,
        state = dir.path().join("state").display(),
        kubeconfig = kubeconfig.display(),
    );
    let daemon = start(dir.path(), &text).await;
    wait("the daemon to see 1.0", Duration::from_secs(15), || {
        version(&daemon).as_deref() == Some("1.0")
    })
    .await;

    cluster.set_image(NS, "web", "app", "shop/web:1.1");
    let finished = |daemon: &Daemon| {
        daemon
            .state
            .journal()
            .records()
            .into_iter()
            .find_map(|r| match r.event {
                Event::RollbackFinished { outcome, .. } => Some(outcome),
                _ => None,
            })
    };
    wait("the rollback to finish", Duration::from_secs(40), || {
        finished(&daemon).is_some()
    })
    .await;
    assert_eq!(finished(&daemon).as_deref(), Some("completed"));

    // The declared spec is the last good revision's again, as
    // `kubectl rollout undo` leaves it, and marked as rollguard's doing.
    let deployment = cluster.deployment(NS, "web");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "shop/web:1.0"
    );
    assert!(deployment["metadata"]["annotations"]["rollguard.io/rolled-back"].is_string());
    wait(
        "1.0 seen as rollguard's own",
        Duration::from_secs(15),
        || saw_rollguards_own(&daemon, "1.0"),
    )
    .await;
    let steps: Vec<String> = daemon
        .state
        .journal()
        .records()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::StepFinished { step, outcome, .. } => Some(format!("{step}:{outcome:?}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            "kubernetes_undo:Ok",
            "kubernetes_rollout_status:Ok",
            "verify:Ok"
        ],
        "every step ran once and succeeded"
    );
    assert_eq!(rollbacks_started(&daemon), 1);

    daemon.stop().await;
}

/// A webhook receiver standing in for the on-call channel.
async fn webhook() -> (String, Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().expect("lock").push(body);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shadow_mode_sends_the_undo_as_a_server_side_dry_run_and_changes_nothing() {
    let cluster = Arc::new(FakeCluster::start());
    cluster.create_deployment(NS, "web", &[("app", "shop/web:1.0")], &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = cluster.kubeconfig(dir.path());
    let health = image_health_server(cluster.clone(), "shop/web:1.0").await;
    let (hook, received) = webhook().await;
    let text = format!(
        r#"[daemon]
listen = "127.0.0.1:0"
state_dir = "{state}"
mode = "shadow"
kubeconfig = "{kubeconfig}"

[[notifier]]
name = "on-call"
kind = "webhook"
url = "{hook}"
retries = 0

[[target]]
name = "web"
interval = "500ms"
bake_window = "60s"
time_to_fix = "1h"
notify = ["on-call"]

[target.release]
kind = "kubernetes"
namespace = "default"
deployment = "web"
container = "app"

[[target.probe]]
name = "health"
url = "{health}"
timeout = "500ms"
failures = 2
severity = "critical"

[[target.step]]
phase = "rollback"
kind = "kubernetes_undo"
"#,
        state = dir.path().join("state").display(),
        kubeconfig = kubeconfig.display(),
    );
    let daemon = start(dir.path(), &text).await;
    wait("the daemon to see 1.0", Duration::from_secs(15), || {
        version(&daemon).as_deref() == Some("1.0")
    })
    .await;

    cluster.set_image(NS, "web", "app", "shop/web:1.1");
    let would = || {
        received
            .lock()
            .expect("lock")
            .iter()
            .find(|n| n["event"] == "would_rollback")
            .cloned()
    };
    wait(
        "a would_rollback notification",
        Duration::from_secs(40),
        || would().is_some(),
    )
    .await;
    let text = would().expect("found")["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.contains("the API server accepted a rollback of default/web to revision 1 (dry run)"),
        "{text}"
    );

    // The PATCH went out with dryRun=All, and nothing changed.
    let patches: Vec<_> = cluster
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert!(patches[0].query.contains("dryRun=All"), "{:?}", patches[0]);
    assert_eq!(patches[0].content_type, "application/json-patch+json");
    let deployment = cluster.deployment(NS, "web");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "shop/web:1.1"
    );
    assert_eq!(rollbacks_started(&daemon), 0);

    daemon.stop().await;
}
