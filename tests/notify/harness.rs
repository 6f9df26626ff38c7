//! The receivers, notifiers and journal the notifier tests share.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use rollguard::config::{MapEnvironment, NotifierConfig};
use rollguard::http::http_client;
use rollguard::journal::{Event, Journal};
use rollguard::metrics::Metrics;
use rollguard::model::{Decision, Mode, Severity};
use rollguard::notify::{DeliveryOptions, Notification, Notifiers, NotifyEvent};
use serde_json::Value;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
/// One request a receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

/// How a receiver answers: statuses to use in turn (then 200), and a delay.
#[derive(Default)]
struct Script {
    statuses: VecDeque<u16>,
    delay: Duration,
    received: Vec<Received>,
}

/// A receiver on 127.0.0.1:0.
pub struct Receiver {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    pub async fn start(statuses: &[u16], delay: Duration) -> Receiver {
        let script = Arc::new(Mutex::new(Script {
            statuses: statuses.iter().copied().collect(),
            delay,
            received: Vec::new(),
        }));
        let app = Router::new().fallback(record).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a test port");
        let addr = listener.local_addr().expect("test port address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, script }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.lock().expect("script lock").received.clone()
    }
}

async fn record(
    State(script): State<Arc<Mutex<Script>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (status, delay) = {
        let mut script = script.lock().expect("script lock");
        script.received.push(Received {
            path: uri.path().to_owned(),
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        (script.statuses.pop_front().unwrap_or(200), script.delay)
    };
    tokio::time::sleep(delay).await;
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A port nothing listens on.
pub async fn dead_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a test port");
    listener.local_addr().expect("test port address")
}

pub fn notifier(text: &str) -> NotifierConfig {
    toml::from_str(text).expect("notifier config parses")
}

pub fn fast() -> DeliveryOptions {
    DeliveryOptions {
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(50),
        queue_capacity: 16,
    }
}

/// A journal in a temporary directory, metrics, and the notifiers built on them.
pub struct Setup {
    pub notifiers: Notifiers,
    pub journal: Journal,
    pub metrics: Metrics,
    _dir: tempfile::TempDir,
}

pub fn setup(configs: &[NotifierConfig], env: &MapEnvironment, options: DeliveryOptions) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, _) = Journal::open(dir.path()).expect("journal");
    let metrics = Metrics::new();
    let notifiers = Notifiers::new(
        configs,
        env,
        http_client().expect("client"),
        journal.clone(),
        metrics.notifications.clone(),
        options,
    );
    Setup {
        notifiers,
        journal,
        metrics,
        _dir: dir,
    }
}

/// `(notifier, event, ok, attempts)` of every `notification_sent` so far.
pub fn sent(journal: &Journal) -> Vec<(String, String, bool, u32)> {
    journal
        .records()
        .into_iter()
        .filter_map(|record| match record.event {
            Event::NotificationSent {
                notifier,
                event,
                ok,
                attempts,
            } => {
                assert_eq!(record.target.as_deref(), Some("api"));
                Some((notifier, event, ok, attempts))
            }
            _ => None,
        })
        .collect()
}

/// Waits (up to 5 s) until `count` notifications are journaled.
pub async fn wait_sent(journal: &Journal, count: usize) -> Vec<(String, String, bool, u32)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let done = sent(journal);
        if done.len() >= count || Instant::now() > deadline {
            return done;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn rollback_started() -> Notification {
    Notification::new(
        NotifyEvent::RollbackStarted,
        "api",
        Mode::Enforce,
        SystemTime::now(),
    )
    .with_release_id("r-42")
    .with_from("v1.4.0")
    .with_to("v1.3.2")
    .with_decision(Decision::Rollback)
    .with_severity(Severity::High)
    .with_reasons(["error_rate 8.2% > high threshold 2%"])
    .with_release_at(SystemTime::now() - Duration::from_secs(300))
}

pub fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}
