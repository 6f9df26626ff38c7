//! Request bodies: [`ApiJson`] reads a JSON body within the size limit and
//! turns every refusal (bad JSON, wrong content type, too large) into an
//! [`ApiError`], so that mutating endpoints answer errors as JSON too.

use super::error::ApiError;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

/// A JSON request body of type `T`; use it instead of `axum::Json` in
/// handlers. A body over the API's limit (also one sent without
/// `Content-Length`) is refused with 413.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        Ok(ApiJson(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::BODY_LIMIT;
    use axum::Router;
    use axum::routing::post;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo(ApiJson(value): ApiJson<serde_json::Value>) -> axum::Json<serde_json::Value> {
        axum::Json(value)
    }

    /// Sends `body` in chunks (no Content-Length) and returns the raw answer.
    async fn send_chunked(addr: std::net::SocketAddr, body: &[u8]) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
                    Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        stream.write_all(head.as_bytes()).await.expect("write");
        for chunk in body.chunks(8 * 1024) {
            let frame = format!("{:x}\r\n", chunk.len());
            // The server may close early once over the limit: ignore write errors.
            if stream.write_all(frame.as_bytes()).await.is_err()
                || stream.write_all(chunk).await.is_err()
                || stream.write_all(b"\r\n").await.is_err()
            {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn refuses_a_large_chunked_body_as_json() {
        let app = super::super::with_layers(Router::new().route("/echo", post(echo)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });

        let small = send_chunked(addr, br#"{"a": 1}"#).await;
        assert!(small.starts_with("HTTP/1.1 200"), "{small}");

        let mut large = b"[".to_vec();
        large.extend(std::iter::repeat_n(b"1,".as_slice(), BODY_LIMIT).flatten());
        large.extend(b"1]");
        let answer = send_chunked(addr, &large).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(
            answer.contains(r#"{"error":"request body too large"#),
            "{answer}"
        );

        let bad = send_chunked(addr, b"{nope").await;
        assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
        assert!(bad.contains(r#"{"error":"bad JSON body"#), "{bad}");
    }
}
