//! Response bodies read within a bound, so that no endpoint rollguard talks
//! to can make it hold more than a known number of bytes.
//!
//! Two readers share one loop: [`read_body_limited`] keeps the first bytes
//! and says whether there was more (a step quoting an error page needs the
//! start of it, a health probe only needs the answer to end), and
//! [`read_body_capped`] refuses a body past its cap outright (an answer
//! that is parsed is useless cut off). Neither reads past the bound: the
//! rest is left unread and the connection, which then cannot be reused, is
//! closed when the response is dropped.

/// A response body read up to a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitedBody {
    /// The first bytes of the body, at most the limit.
    pub bytes: Vec<u8>,
    /// Whether the body went on past the limit (and was cut).
    pub truncated: bool,
}

/// Why [`read_body_capped`] has no body to give.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is longer than the cap: by its `Content-Length`, before any
    /// of it was read, or once the cap was passed.
    #[error("answer larger than {}", super::human_size(*.limit as u64))]
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The body could not be read (connection reset, timeout...).
    #[error("cannot read the answer: {}", super::describe_error(.0))]
    Read(#[source] reqwest::Error),
}

/// Reads at most `limit` bytes of the body; stops reading (and drops the
/// connection's remaining body) as soon as the limit is passed.
pub async fn read_body_limited(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<LimitedBody, reqwest::Error> {
    // What the server announces, never more than the limit: the buffer is
    // sized once for a well-behaved server and never grows past the limit
    // for another.
    let announced = response
        .content_length()
        .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut bytes = Vec::with_capacity(announced.min(limit));
    while let Some(chunk) = response.chunk().await? {
        let room = limit - bytes.len();
        let take = chunk.len().min(room);
        if bytes.capacity() - bytes.len() < take {
            let wanted = (bytes.len() * 2).max(bytes.len() + take).min(limit);
            bytes.reserve_exact(wanted - bytes.len());
        }
        bytes.extend_from_slice(&chunk[..take]);
        if chunk.len() > room {
            return Ok(LimitedBody {
                bytes,
                truncated: true,
            });
        }
    }
    Ok(LimitedBody {
        bytes,
        truncated: false,
    })
}

/// The whole body if it is at most `limit` bytes, else
/// [`BodyError::TooLarge`]: at once when its `Content-Length` says so,
/// after `limit` bytes when it does not (a chunked answer).
pub async fn read_body_capped(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(BodyError::TooLarge { limit });
    }
    let body = read_body_limited(response, limit)
        .await
        .map_err(BodyError::Read)?;
    if body.truncated {
        Err(BodyError::TooLarge { limit })
    } else {
        Ok(body.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server on 127.0.0.1:0 that answers one request with `head`, then
    /// `body` in chunks, then holds the connection open: a read that waits
    /// for more than was sent times out instead of passing.
    async fn serve_once(head: String, body: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request).await;
            let _ = stream.write_all(head.as_bytes()).await;
            for chunk in body.chunks(1000) {
                if stream.write_all(chunk).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        url
    }

    /// `body` as HTTP/1.1 chunked encoding, with no end: the server never
    /// says it is done.
    fn chunked(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in body.chunks(100) {
            out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    const CHUNKED: &str = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";

    async fn get(url: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .expect("an answer")
    }

    #[tokio::test]
    async fn a_declared_length_over_the_cap_is_refused_before_reading() {
        // 10 MB announced, 10 bytes sent: reading would wait for the rest.
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 10000000\r\n\r\n".to_owned();
        let url = serve_once(head, b"0123456789".to_vec()).await;
        let mut response = get(&url).await;
        let error = read_body_capped(&mut response, 1024)
            .await
            .expect_err("over the cap");
        assert!(matches!(error, BodyError::TooLarge { limit: 1024 }));
        assert_eq!(error.to_string(), "answer larger than 1 KiB");
    }

    #[tokio::test]
    async fn a_chunked_body_over_the_cap_is_cut_once_past_it() {
        // 2000 bytes and no end: the reader must stop at the cap by itself.
        let url = serve_once(CHUNKED.to_owned(), chunked(&[b'x'; 2000])).await;
        let mut response = get(&url).await;
        let error = read_body_capped(&mut response, 1024)
            .await
            .expect_err("over the cap");
        assert!(
            matches!(error, BodyError::TooLarge { limit: 1024 }),
            "{error}"
        );

        let url = serve_once(CHUNKED.to_owned(), chunked(&[b'x'; 2000])).await;
        let mut response = get(&url).await;
        let body = read_body_limited(&mut response, 1024).await.expect("read");
        assert_eq!(body.bytes.len(), 1024);
        assert!(body.truncated);
        assert!(body.bytes.capacity() <= 1024, "no buffer past the limit");
    }

    #[tokio::test]
    async fn a_body_exactly_at_the_cap_is_read_whole() {
        let body: Vec<u8> = (0..1024u32).map(|i| (i % 251) as u8).collect();
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
        let url = serve_once(head, body.clone()).await;
        let mut response = get(&url).await;
        let read = read_body_capped(&mut response, 1024)
            .await
            .expect("at the cap");
        assert_eq!(read, body);

        let mut ended = chunked(&body);
        ended.extend_from_slice(b"0\r\n\r\n");
        let url = serve_once(CHUNKED.to_owned(), ended).await;
        let mut response = get(&url).await;
        let read = read_body_capped(&mut response, 1024)
            .await
            .expect("at the cap");
        assert_eq!(read, body);
    }

    #[tokio::test]
    async fn a_body_cut_short_is_a_read_error() {
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n".to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            if let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await;
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(b"short").await;
            }
        });
        let mut response = get(&url).await;
        let error = read_body_capped(&mut response, 1024)
            .await
            .expect_err("the connection closed early");
        assert!(matches!(error, BodyError::Read(_)), "{error}");
    }
}
