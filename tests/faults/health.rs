//! A health endpoint that fails in the ways a sick service's does: it
//! hangs, resets the connection, streams a body that never ends, or
//! redirects to itself forever.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the endpoint misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthFault {
    /// 200, empty body.
    Pass,
    /// Reads the request, never answers (until the client gives up).
    Hang,
    /// Resets the connection once the request is read.
    Reset,
    /// 200 with a chunked body that never ends, 64 KiB at a time.
    Stream,
    /// 302 to itself, forever.
    RedirectLoop,
}

impl HealthFault {
    /// Every fault, in the order the suite injects them.
    pub const ALL: [HealthFault; 4] = [
        HealthFault::Hang,
        HealthFault::Reset,
        HealthFault::Stream,
        HealthFault::RedirectLoop,
    ];

    /// The fault's name in the table.
    pub fn name(self) -> &'static str {
        match self {
            HealthFault::Pass => "none",
            HealthFault::Hang => "hangs",
            HealthFault::Reset => "connection reset",
            HealthFault::Stream => "endless body",
            HealthFault::RedirectLoop => "redirects to itself",
        }
    }
}

/// The running endpoint, at `/health`.
pub struct FaultyHealth {
    addr: SocketAddr,
    fault: Arc<Mutex<HealthFault>>,
}

impl FaultyHealth {
    /// Listens on 127.0.0.1:0, healthy.
    pub async fn start() -> FaultyHealth {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let fault = Arc::new(Mutex::new(HealthFault::Pass));
        let shared = fault.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let fault = *shared.lock().expect("fault lock");
                tokio::spawn(async move {
                    let _ = serve(stream, fault, addr).await;
                });
            }
        });
        FaultyHealth { addr, fault }
    }

    /// `http://127.0.0.1:PORT/health`.
    pub fn url(&self) -> String {
        format!("http://{}/health", self.addr)
    }

    /// Injects `fault` from now on (`Pass` ends it).
    pub fn set(&self, fault: HealthFault) {
        *self.fault.lock().expect("fault lock") = fault;
    }
}

async fn serve(mut stream: TcpStream, fault: HealthFault, addr: SocketAddr) -> std::io::Result<()> {
    let mut buffer = [0u8; 4096];
    let _ = stream.read(&mut buffer).await?;
    match fault {
        HealthFault::Pass => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await?;
        }
        HealthFault::Hang => {
            // Held open; the probe's timeout must end it. Bounded so that
            // the test's tasks end.
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        HealthFault::Reset => {
            stream.set_zero_linger()?;
        }
        HealthFault::Stream => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            let chunk = vec![b'x'; 64 * 1024];
            let head = format!("{:x}\r\n", chunk.len());
            // At most 30 s or 4 GiB, whichever ends first: the client
            // should stop reading long before.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            for _ in 0..65_536 {
                if tokio::time::Instant::now() > deadline {
                    break;
                }
                stream.write_all(head.as_bytes()).await?;
                stream.write_all(&chunk).await?;
                stream.write_all(b"\r\n").await?;
            }
        }
        HealthFault::RedirectLoop => {
            let answer = format!(
                "HTTP/1.1 302 Found\r\nLocation: http://{addr}/health\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(answer.as_bytes()).await?;
        }
    }
    Ok(())
}
