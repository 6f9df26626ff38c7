//! The CLI's side of the HTTP API (`rollguard status`, `rollguard reload`,
//! announce, approve, ...): one small client whose errors tell the
//! operator what to do, [`render_status`] for the terminal, and
//! [`rollback`], the emergency rollback that asks before it acts.

pub mod rollback;

use crate::http::{BodyError, read_body_capped, read_body_limited};
use serde::Serialize;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How long the client waits to connect: the daemon is local or near.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one call may take: above the daemon's 30 s reload timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(45);
/// Most bytes of one answer read from the daemon: a page of events or the
/// status of a large fleet is far below it; an address that is not
/// rollguard's cannot make the CLI hold more.
const ANSWER_LIMIT: usize = 16 * 1024 * 1024;
/// Most bytes of an error answer read, to quote it.
const ERROR_LIMIT: usize = 64 * 1024;

/// Why a call to the daemon failed, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answered at the address.
    #[error(
        "cannot reach rollguard at {base}: {source}; is rollguard running? it listens on \
         daemon.listen = {listen} (set in the configuration file)"
    )]
    Unreachable {
        /// The URL tried.
        base: String,
        /// `host:port` of that URL, as daemon.listen is written.
        listen: String,
        /// The connection error.
        #[source]
        source: reqwest::Error,
    },
    /// The daemon took too long.
    #[error("rollguard at {base} did not answer in time: {source}")]
    Timeout {
        /// The URL tried.
        base: String,
        /// The timeout error.
        #[source]
        source: reqwest::Error,
    },
    /// The daemon answered with an error.
    #[error("rollguard refused ({status}): {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The daemon's `error` message (or the body, when not JSON).
        message: String,
    },
    /// The answer could not be read.
    #[error("unexpected answer from rollguard at {base}: {source}")]
    Protocol {
        /// The URL tried.
        base: String,
        /// Why it could not be read.
        #[source]
        source: reqwest::Error,
    },
    /// The answer is larger than [`ANSWER_LIMIT`] or not JSON.
    #[error("unexpected answer from rollguard at {base}: {reason}")]
    Unreadable {
        /// The URL tried.
        base: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot set up the HTTP client: {0}")]
    Setup(#[source] reqwest::Error),
}

/// A client of one daemon's API.
#[derive(Clone)]
pub struct ApiClient {
    /// `http://host:port`, without a trailing slash.
    base: String,
    /// The bearer token for mutating calls; never printed.
    token: Option<String>,
    /// Connection pool with the timeouts above.
    http: reqwest::Client,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client of the daemon at `base`: a URL (`http://host:port`) or a
    /// bare `host:port` as written in daemon.listen. `token` is the content
    /// of daemon.api_token_file, needed by mutating calls only.
    pub fn new(base: &str, token: Option<String>) -> Result<ApiClient, ClientError> {
        let base = base.trim().trim_end_matches('/');
        let base = if base.contains("://") {
            base.to_owned()
        } else {
            format!("http://{base}")
        };
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(ClientError::Setup)?;
        let token = token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        Ok(ApiClient { base, token, http })
    }

    /// A client of the daemon listening on `listen` (daemon.listen). A
    /// wildcard address (`0.0.0.0`, `[::]`) is reached on loopback.
    pub fn for_listen(listen: SocketAddr, token: Option<String>) -> Result<ApiClient, ClientError> {
        let ip = match listen.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        ApiClient::new(&SocketAddr::new(ip, listen.port()).to_string(), token)
    }

    /// The base URL calls go to.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /api/v1/status`.
    pub async fn status(&self) -> Result<Value, ClientError> {
        self.get_json("/api/v1/status").await
    }

    /// `POST /api/v1/reload`: Ok once the daemon applied the file.
    pub async fn reload(&self) -> Result<(), ClientError> {
        self.post_json("/api/v1/reload", &serde_json::json!({}))
            .await
            .map(drop)
    }

    /// `GET path` (such as `/api/v1/events?limit=10`), answered as JSON.
    pub async fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        self.send(self.http.get(self.url(path))).await
    }

    /// `POST path` with a JSON body and the bearer token, answered as JSON.
    pub async fn post_json(&self, path: &str, body: &impl Serialize) -> Result<Value, ClientError> {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    /// Sends, then turns transport errors and error statuses into
    /// [`ClientError`].
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let mut response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        if status.is_success() {
            let unreadable = |reason: String| ClientError::Unreadable {
                base: self.base.clone(),
                reason,
            };
            let body = read_body_capped(&mut response, ANSWER_LIMIT)
                .await
                .map_err(|error| match error {
                    BodyError::Read(source) => self.transport(source),
                    too_large => unreadable(too_large.to_string()),
                })?;
            return serde_json::from_slice(&body)
                .map_err(|error| unreadable(format!("not JSON: {error}")));
        }
        let text = read_body_limited(&mut response, ERROR_LIMIT)
            .await
            .map(|body| String::from_utf8_lossy(&body.bytes).into_owned())
            .unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| {
                let text = text.trim();
                if text.is_empty() {
                    status.canonical_reason().unwrap_or("no message").to_owned()
                } else {
                    text.chars().take(500).collect()
                }
            });
        Err(ClientError::Api {
            status: status.as_u16(),
            message,
        })
    }

    fn transport(&self, source: reqwest::Error) -> ClientError {
        let base = self.base.clone();
        if source.is_timeout() {
            ClientError::Timeout { base, source }
        } else if source.is_connect() || source.is_request() {
            let listen = base
                .split_once("://")
                .map_or(base.as_str(), |(_, rest)| rest)
                .to_owned();
            ClientError::Unreachable {
                base,
                listen,
                source,
            }
        } else {
            ClientError::Protocol { base, source }
        }
    }
}

/// A table of the targets in a `/api/v1/status` answer, for the terminal:
/// target, mode, current version, release being baked, last decision.
pub fn render_status(status: &Value) -> String {
    let version = status.get("version").and_then(Value::as_str).unwrap_or("?");
    let ready = match status.get("ready").and_then(Value::as_bool) {
        Some(true) => "ready",
        Some(false) => "not ready",
        None => "readiness unknown",
    };
    let mut out = format!("rollguard {version}, {ready}\n");
    let targets = status
        .get("targets")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if targets.is_empty() {
        out.push_str("no targets reported yet\n");
        return out;
    }
    let mut rows = vec![[
        "TARGET".to_owned(),
        "MODE".to_owned(),
        "VERSION".to_owned(),
        "RELEASE".to_owned(),
        "LAST DECISION".to_owned(),
    ]];
    rows.extend(targets.iter().map(|t| {
        [
            text(t.get("name")),
            text(t.get("mode")),
            text(t.get("current_version")),
            release(t.get("release")),
            text(t.get("last_assessment").and_then(|a| a.get("decision"))),
        ]
    }));
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    for t in targets {
        let name = text(t.get("name"));
        if let Some(error) = t.get("version_error").and_then(Value::as_str) {
            out.push_str(&format!("{name}: cannot read its version: {error}\n"));
        }
        if let Some(rollback) = t.get("rollback").filter(|r| !r.is_null()) {
            out.push_str(&format!(
                "{name}: rolling back from {} to {} ({}, release {}, started {})\n",
                text(rollback.get("from")),
                text(rollback.get("to")),
                text(rollback.get("trigger")),
                text(rollback.get("release_id")),
                text(rollback.get("started_at")),
            ));
        }
        if let Some(failure) = t.get("watcher_failure").filter(|f| !f.is_null()) {
            let failures = failure.get("failures").and_then(Value::as_u64).unwrap_or(0);
            let state = match failure.get("down").and_then(Value::as_bool) {
                Some(true) => "not watched until it starts again",
                _ => "started again",
            };
            out.push_str(&format!(
                "{name}: its watcher stopped unexpectedly {failures} time(s), last at {} ({}); {state}\n",
                text(failure.get("last_failure_at")),
                text(failure.get("last_failure")),
            ));
        }
    }
    out
}

/// A cell: strings as they are, other values as compact JSON, `-` if none.
fn text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The release cell: `from -> to` when the release says so.
fn release(value: Option<&Value>) -> String {
    let Some(release) = value.filter(|v| !v.is_null()) else {
        return "-".to_owned();
    };
    let from = release.get("from").and_then(Value::as_str);
    let to = release.get("to").and_then(Value::as_str);
    match (from, to) {
        (Some(from), Some(to)) => format!("{from} -> {to}"),
        (None, Some(to)) => to.to_owned(),
        _ => text(Some(release)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_a_table() {
        let status = json!({
            "version": "0.1.0",
            "ready": true,
            "targets": [
                {"name": "api", "mode": "shadow", "current_version": "v1.3.0",
                 "release": {"from": "v1.2.0", "to": "v1.3.0"},
                 "last_assessment": {"decision": "healthy"}, "ticks": 3},
                {"name": "billing-worker", "mode": "enforce", "current_version": null,
                 "release": null, "last_assessment": null, "ticks": 0,
                 "rollback": {"release_id": "billing-worker-1", "from": "v2", "to": "v1",
                  "trigger": "manual", "started_at": "2026-12-04T01:02:03.000Z", "journal_seq": 7},
                 "version_error": "the version \"v2\\n\" is refused: it contains control characters",
                 "watcher_failure": {"failures": 2, "last_failure": "panic: overflow",
                  "last_failure_at": "2026-12-04T01:00:00Z", "down": false}}
            ]
        });
        let table = render_status(&status);
        let expected = "rollguard 0.1.0, ready\n\
            TARGET          MODE     VERSION  RELEASE           LAST DECISION\n\
            api             shadow   v1.3.0   v1.2.0 -> v1.3.0  healthy\n\
            billing-worker  enforce  -        -                 -\n\
            billing-worker: cannot read its version: the version \"v2\\n\" is refused: it contains control characters\n\
            billing-worker: rolling back from v2 to v1 (manual, release billing-worker-1, started 2026-12-04T01:02:03.000Z)\n\
            billing-worker: its watcher stopped unexpectedly 2 time(s), last at 2026-12-04T01:00:00Z (panic: overflow); started again\n";
        assert_eq!(table, expected);
        assert_eq!(
            render_status(&json!({"version": "0.1.0", "ready": false, "targets": []})),
            "rollguard 0.1.0, not ready\nno targets reported yet\n"
        );
    }

    #[test]
    fn wildcard_listen_is_reached_on_loopback() {
        let client =
            ApiClient::for_listen("0.0.0.0:9187".parse().expect("addr"), None).expect("client");
        assert_eq!(client.base(), "http://127.0.0.1:9187");
        let client = ApiClient::for_listen("[::]:9187".parse().expect("addr"), Some("t".into()))
            .expect("client");
        assert_eq!(client.base(), "http://[::1]:9187");
        assert!(!format!("{client:?}").contains("\"t\""));
        let client = ApiClient::new("http://example:1/", None).expect("client");
        assert_eq!(client.base(), "http://example:1");
    }

    #[tokio::test]
    async fn unreachable_daemon_says_what_to_do() {
        // Bind then drop to get a port with nothing listening.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let client = ApiClient::for_listen(addr, None).expect("client");
        let error = client.status().await.expect_err("nothing listens");
        let message = error.to_string();
        assert!(message.contains("is rollguard running?"), "{message}");
        assert!(
            message.contains(&format!("daemon.listen = {addr}")),
            "{message}"
        );
    }

    #[tokio::test]
    async fn an_answer_too_large_for_a_daemon_is_refused_unread() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n[",
                    ANSWER_LIMIT + 1
                );
                let _ = stream.write_all(head.as_bytes()).await;
                // Never the rest: a client that waited for it would time out.
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
        });
        let client = ApiClient::for_listen(addr, None).expect("client");
        let error = client.status().await.expect_err("too large");
        assert!(matches!(error, ClientError::Unreadable { .. }), "{error}");
        assert!(error.to_string().contains("larger than 16 MiB"), "{error}");
    }
}
