//! A real API server on 127.0.0.1:0 over a minimal configuration, the stub
//! or real journal in a temporary directory, and a fake control loop.

pub mod big_prometheus;
pub mod e2e;
pub mod openmetrics;
pub mod prometheus;
pub mod running;

use reqwest::StatusCode;
use rollguard::journal::Journal;
use rollguard::state::{ApiToken, Control, State};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The token of tests that configure one.
pub const TOKEN: &str = "s3cret-token";

/// The smallest valid configuration.
const CONFIG: &str = "[[target]]\nname = \"api\"\n[target.release]\nkind = \"announce\"\n";

/// A running API server and what the test needs to drive it.
pub struct Harness {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The state the server reads.
    pub state: State,
    http: reqwest::Client,
    reloads: Arc<AtomicUsize>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// Starts a server whose control loop answers every reload with `answer`.
    pub async fn start(token: Option<&str>, answer: Result<(), String>) -> Harness {
        let (harness, mut control) = Harness::spawn(token).await;
        let reloads = harness.reloads.clone();
        tokio::spawn(async move {
            while let Some(request) = control.recv().await {
                match request {
                    Control::Reload { reply } => {
                        reloads.fetch_add(1, Ordering::SeqCst);
                        let _ = reply.send(answer.clone());
                    }
                }
            }
        });
        harness
    }

    /// Starts a server whose control loop has already stopped.
    pub async fn start_without_control_loop(token: Option<&str>) -> Harness {
        let (harness, control) = Harness::spawn(token).await;
        drop(control);
        harness
    }

    async fn spawn(token: Option<&str>) -> (Harness, mpsc::Receiver<Control>) {
        let config = rollguard::config::parse(CONFIG, Path::new("test.toml")).expect("config");
        let dir = tempfile::tempdir().expect("tempdir");
        let (journal, _recovery) = Journal::open(dir.path()).expect("journal");
        let (control, requests) = mpsc::channel(8);
        let state = State::new(
            Arc::new(config),
            token.and_then(ApiToken::new),
            journal,
            control,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(rollguard::api::serve(listener, state.clone(), async {
            let _ = stop.await;
        }));
        let harness = Harness {
            base,
            state,
            http: reqwest::Client::new(),
            reloads: Arc::new(AtomicUsize::new(0)),
            shutdown: Some(shutdown),
            server: Some(server),
            _dir: dir,
        };
        (harness, requests)
    }

    /// Reloads the fake control loop answered.
    pub fn reloads_seen(&self) -> usize {
        self.reloads.load(Ordering::SeqCst)
    }

    /// `GET path`, answered as JSON.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("send");
        json(response).await
    }

    /// `POST path` with an optional `Authorization` value.
    pub async fn post_raw(
        &self,
        path: &str,
        authorization: Option<&str>,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut request = self.http.post(format!("{}{path}", self.base)).body(body);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send().await.expect("send")
    }

    /// `POST path`, answered as JSON.
    pub async fn post(
        &self,
        path: &str,
        authorization: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        json(self.post_raw(path, authorization, body).await).await
    }

    /// Raw `GET path`.
    pub async fn get_raw(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("send")
    }

    /// Triggers the shutdown future and waits for `serve` to return Ok.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let result = tokio::time::timeout(std::time::Duration::from_secs(10), server)
                .await
                .expect("serve returns after shutdown");
            result.expect("no panic").expect("serve ends with Ok");
        }
    }
}

/// The status and JSON body of an answer, asserting the JSON content type.
async fn json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{status}: content type {content_type:?}"
    );
    let body = response.json().await.expect("a JSON body");
    (status, body)
}
