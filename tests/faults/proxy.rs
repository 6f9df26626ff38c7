//! A fault-injecting HTTP proxy in front of a real Prometheus: it passes
//! requests through, or answers them badly in one of the ways a
//! monitoring system fails in production.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How Prometheus misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No fault: requests reach Prometheus.
    Pass,
    /// Nothing listens: connections are refused.
    Down,
    /// 500 with Prometheus' own error JSON.
    Status500,
    /// Answers after longer than `prometheus.timeout`.
    Slow,
    /// 200 with a body that is not JSON.
    Garbage,
    /// The connection is reset (RST) once the request is read.
    Reset,
    /// A well-formed success whose every sample is `NaN`.
    NaN,
    /// A well-formed success whose every sample is `+Inf`.
    Inf,
    /// A well-formed success with no series.
    Empty,
}

impl Fault {
    /// Every fault, in the order the suite injects them.
    pub const ALL: [Fault; 8] = [
        Fault::Down,
        Fault::Status500,
        Fault::Slow,
        Fault::Garbage,
        Fault::Reset,
        Fault::NaN,
        Fault::Inf,
        Fault::Empty,
    ];

    /// The fault's name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Pass => "none",
            Fault::Down => "down (connection refused)",
            Fault::Status500 => "HTTP 500",
            Fault::Slow => "slow (5 s, over the 1 s timeout)",
            Fault::Garbage => "garbage (200, not JSON)",
            Fault::Reset => "connection reset",
            Fault::NaN => "NaN samples",
            Fault::Inf => "+Inf samples",
            Fault::Empty => "empty result",
        }
    }
}

/// The running proxy.
pub struct FaultProxy {
    addr: SocketAddr,
    fault: Arc<Mutex<Fault>>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1:0 and passes requests to `upstream`
    /// (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: String) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("address");
        let fault = Arc::new(Mutex::new(Fault::Pass));
        let shared = fault.clone();
        let http = reqwest::Client::new();
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                let now = *shared.lock().expect("fault lock");
                if now == Fault::Down {
                    // Closed: connections are refused until the fault ends.
                    listener = None;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                let bound = match listener.take() {
                    Some(bound) => bound,
                    None => match TcpListener::bind(addr).await {
                        Ok(bound) => bound,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    },
                };
                let accepted =
                    tokio::time::timeout(Duration::from_millis(50), bound.accept()).await;
                listener = Some(bound);
                if let Ok(Ok((stream, _))) = accepted {
                    let (fault, http, upstream) = (shared.clone(), http.clone(), upstream.clone());
                    tokio::spawn(async move {
                        let fault = *fault.lock().expect("fault lock");
                        let _ = serve(stream, fault, &http, &upstream).await;
                    });
                }
            }
        });
        FaultProxy { addr, fault }
    }

    /// `http://127.0.0.1:PORT`, for `prometheus.url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Injects `fault` from now on (`Pass` ends it).
    pub fn set(&self, fault: Fault) {
        *self.fault.lock().expect("fault lock") = fault;
    }
}

/// A request as read from the socket.
struct Request {
    method: String,
    path: String,
    content_type: Option<String>,
    body: Vec<u8>,
}

async fn serve(
    mut stream: TcpStream,
    fault: Fault,
    http: &reqwest::Client,
    upstream: &str,
) -> std::io::Result<()> {
    let Some(request) = read_request(&mut stream).await? else {
        return Ok(());
    };
    let range = request.path.contains("query_range");
    let (status, content_type, body) = match fault {
        Fault::Reset => {
            stream.set_zero_linger()?;
            return Ok(());
        }
        Fault::Status500 => (
            500,
            "application/json",
            br#"{"status":"error","errorType":"internal","error":"injected fault"}"#.to_vec(),
        ),
        Fault::Garbage => (
            200,
            "text/html",
            b"<html><body>502 Bad Gateway</body></html>".to_vec(),
        ),
        Fault::NaN => (200, "application/json", samples(range, Some("NaN"))),
        Fault::Inf => (200, "application/json", samples(range, Some("+Inf"))),
        Fault::Empty => (200, "application/json", samples(range, None)),
        Fault::Slow => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            forward(http, upstream, &request).await
        }
        Fault::Pass | Fault::Down => forward(http, upstream, &request).await,
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await
}

/// Passes the request to Prometheus; a failure there is a 502.
async fn forward(
    http: &reqwest::Client,
    upstream: &str,
    request: &Request,
) -> (u16, &'static str, Vec<u8>) {
    let method =
        reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut outgoing = http
        .request(method, format!("{upstream}{}", request.path))
        .body(request.body.clone());
    if let Some(content_type) = &request.content_type {
        outgoing = outgoing.header("content-type", content_type);
    }
    match outgoing.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response
                .bytes()
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default();
            (status, "application/json", body)
        }
        Err(_) => (502, "text/plain", b"upstream unreachable".to_vec()),
    }
}

/// A success with one series of `value` (a vector, or a matrix of a few
/// points for a range query), or with none.
fn samples(range: bool, value: Option<&str>) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let result = match (range, value) {
        (_, None) => "[]".to_owned(),
        (false, Some(v)) => format!(r#"[{{"metric":{{}},"value":[{now},"{v}"]}}]"#),
        (true, Some(v)) => {
            let points: Vec<String> = (0..5)
                .map(|i| format!(r#"[{},"{v}"]"#, now - f64::from(5 - i)))
                .collect();
            format!(r#"[{{"metric":{{}},"values":[{}]}}]"#, points.join(","))
        }
    };
    let kind = if range { "matrix" } else { "vector" };
    format!(r#"{{"status":"success","data":{{"resultType":"{kind}","result":{result}}}}}"#)
        .into_bytes()
}

/// Reads one request (head and `Content-Length` body); None when the
/// client closed first.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let method = first.next().unwrap_or("GET").to_owned();
    let path = first.next().unwrap_or("/").to_owned();
    let mut length = 0;
    let mut content_type = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "content-type" => content_type = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(Request {
        method,
        path,
        content_type,
        body,
    }))
}
