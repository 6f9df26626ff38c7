//! A fake Prometheus on 127.0.0.1:0 whose answers are as large as a query
//! that forgot its `sum()` makes them: tens of megabytes of series,
//! generated as they are written so that the test itself holds none of
//! them. It also serves `/version` for a `version_url` release source.
//!
//! A hand-written HTTP/1.1 server (keep-alive, one request at a time per
//! connection), like the counting servers of tests/load.rs.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What `/api/v1/query` and `/api/v1/query_range` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answers {
    /// About `bytes` of series, chunked (no `Content-Length`).
    HugeChunked { bytes: usize },
    /// About `bytes` of series with their exact `Content-Length`.
    HugeDeclared { bytes: usize },
    /// `count` small series.
    Series { count: usize },
    /// One series: what an aggregated query answers.
    One,
}

/// The fake's state, shared with the test.
pub struct BigPrometheus {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// What queries get.
    answers: Mutex<Answers>,
    /// What `/version` answers.
    version: Mutex<String>,
    /// Queries received.
    queries: AtomicUsize,
    /// `/version` requests received.
    version_reads: AtomicUsize,
    /// Body bytes written to clients, over every answer.
    written: AtomicU64,
}

impl BigPrometheus {
    /// Starts the fake, answering `answers` and version `v1`.
    pub async fn start(answers: Answers) -> Arc<BigPrometheus> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let fake = Arc::new(BigPrometheus {
            url: format!("http://{}", listener.local_addr().expect("address")),
            answers: Mutex::new(answers),
            version: Mutex::new("v1".to_owned()),
            queries: AtomicUsize::new(0),
            version_reads: AtomicUsize::new(0),
            written: AtomicU64::new(0),
        });
        let server = fake.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(server.clone().connection(stream));
            }
        });
        fake
    }

    /// Changes what queries get from now on.
    pub fn answer(&self, answers: Answers) {
        *self.answers.lock().expect("not poisoned") = answers;
    }

    /// Changes the version `/version` reports.
    pub fn release(&self, version: &str) {
        *self.version.lock().expect("not poisoned") = version.to_owned();
    }

    /// Queries received so far.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    /// `/version` requests received so far.
    pub fn version_reads(&self) -> usize {
        self.version_reads.load(Ordering::SeqCst)
    }

    /// Body bytes written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Serves one connection until the client closes it or stops reading.
    async fn connection(self: Arc<Self>, mut stream: TcpStream) {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let end = loop {
                if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            buffer.drain(..end);
            let target = head.split(' ').nth(1).unwrap_or("/").to_owned();
            let written = if target.starts_with("/version") {
                self.version_reads.fetch_add(1, Ordering::SeqCst);
                let version = self.version.lock().expect("not poisoned").clone();
                respond(&mut stream, "text/plain", version.as_bytes()).await
            } else if target.starts_with("/api/v1/query") {
                self.queries.fetch_add(1, Ordering::SeqCst);
                let answers = *self.answers.lock().expect("not poisoned");
                let range = target.starts_with("/api/v1/query_range");
                self.query(&mut stream, answers, range).await
            } else {
                respond(&mut stream, "text/plain", b"not found").await
            };
            if written.is_err() {
                return;
            }
        }
    }

    /// Answers one query.
    async fn query(
        &self,
        stream: &mut TcpStream,
        answers: Answers,
        range: bool,
    ) -> std::io::Result<()> {
        let kind = if range { "matrix" } else { "vector" };
        let head = format!(r#"{{"status":"success","data":{{"resultType":"{kind}","result":["#);
        let tail = "]}}";
        match answers {
            Answers::One => {
                let body = format!("{head}{}{tail}", series(0, range));
                respond(stream, "application/json", body.as_bytes()).await
            }
            Answers::Series { count } => {
                let all: Vec<String> = (0..count).map(|i| series(i, range)).collect();
                let body = format!("{head}{}{tail}", all.join(","));
                respond(stream, "application/json", body.as_bytes()).await
            }
            Answers::HugeDeclared { bytes } => {
                let each = series(0, range).len() + 1;
                let count = bytes / each;
                let length = head.len() + count * each - 1 + tail.len();
                let start = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n{head}"
                );
                stream.write_all(start.as_bytes()).await?;
                self.stream_series(stream, count, range, false).await?;
                stream.write_all(tail.as_bytes()).await
            }
            Answers::HugeChunked { bytes } => {
                let count = bytes / (series(0, range).len() + 1);
                let start = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                stream.write_all(start.as_bytes()).await?;
                write_chunk(stream, head.as_bytes()).await?;
                self.stream_series(stream, count, range, true).await?;
                write_chunk(stream, tail.as_bytes()).await?;
                stream.write_all(b"0\r\n\r\n").await
            }
        }
    }

    /// Writes `count` series, comma-separated, 64 KiB at a time (as HTTP
    /// chunks when `chunked`), counting the bytes; fails as soon as the
    /// client stops reading and closes the connection.
    async fn stream_series(
        &self,
        stream: &mut TcpStream,
        count: usize,
        range: bool,
        chunked: bool,
    ) -> std::io::Result<()> {
        let mut block = String::with_capacity(70 * 1024);
        for i in 0..count {
            if i > 0 {
                block.push(',');
            }
            block.push_str(&series(i, range));
            if block.len() >= 64 * 1024 || i + 1 == count {
                if chunked {
                    write_chunk(stream, block.as_bytes()).await?;
                } else {
                    stream.write_all(block.as_bytes()).await?;
                }
                self.written.fetch_add(block.len() as u64, Ordering::SeqCst);
                block.clear();
            }
        }
        Ok(())
    }
}

/// One series of a query without its `sum()`: the labels of a pod, all of
/// the same length (`i` is zero-padded).
fn series(i: usize, range: bool) -> String {
    let labels = format!(
        r#"{{"__name__":"http_requests_total","job":"api","instance":"10.0.{:03}.{:03}:8080","pod":"api-7d9f6c-{i:08}","code":"200"}}"#,
        i / 256 % 256,
        i % 256
    );
    if range {
        format!(r#"{{"metric":{labels},"values":[[1700000000,"0.5"],[1700000060,"0.5"]]}}"#)
    } else {
        format!(r#"{{"metric":{labels},"value":[1700000000,"0.5"]}}"#)
    }
}

async fn write_chunk(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    stream
        .write_all(format!("{:x}\r\n", bytes.len()).as_bytes())
        .await?;
    stream.write_all(bytes).await?;
    stream.write_all(b"\r\n").await
}

async fn respond(stream: &mut TcpStream, content_type: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await
}
