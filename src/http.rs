//! The shared HTTP client and the helpers every outgoing request of
//! rollguard uses: body reads that cannot exhaust memory (`body.rs`), and
//! failure descriptions an operator can read in a notification.

mod body;

pub use body::{BodyError, LimitedBody, read_body_capped, read_body_limited};

use std::error::Error as _;
use std::time::Duration;

/// Most bytes of a response body that rollguard reads. Health and version
/// endpoints answer with a few bytes; anything past this is cut off so that
/// a misbehaving endpoint cannot exhaust the daemon's memory.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Redirects followed before a request fails: enough for `/health` ->
/// `/health/`, too few for a loop to waste a probe's time.
pub const MAX_REDIRECTS: usize = 3;

/// Time limit of establishing a connection, independent of each request's
/// own (whole-request) time limit.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle connections kept per host for reuse. reqwest has no cap on the
/// connections open to one host; what bounds them is the number of
/// requests in flight (`prometheus.max_concurrent_queries`,
/// `daemon.max_concurrent_probes`). This only stops a burst from leaving
/// that many idle connections (and file descriptors) open afterwards.
pub const MAX_IDLE_PER_HOST: usize = 16;

/// Builds the daemon's HTTP client; build it once and clone it (clones share
/// the connection pool).
///
/// The user agent is `rollguard/<version>` so that service owners can tell
/// probes from users in their access logs. Proxies from the environment
/// (`HTTP_PROXY`, `NO_PROXY`...) are honoured as reqwest does by default.
///
/// Fails only when the TLS backend cannot be initialised.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(concat!("rollguard/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
        .build()
}

/// A short, human description of why a request failed: "connection
/// refused", "too many redirects", "cannot connect: dns error: ...".
pub fn describe_error(error: &reqwest::Error) -> String {
    if let Some(kind) = io_error_kind(error) {
        match kind {
            std::io::ErrorKind::ConnectionRefused => return "connection refused".to_owned(),
            std::io::ErrorKind::ConnectionReset => return "connection reset".to_owned(),
            std::io::ErrorKind::ConnectionAborted => return "connection aborted".to_owned(),
            _ => {}
        }
    }
    if error.is_redirect() {
        return format!("too many redirects (more than {MAX_REDIRECTS})");
    }
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    let cause = innermost_cause(error);
    if error.is_connect() {
        format!("cannot connect: {cause}")
    } else if error.is_builder() {
        format!("invalid request: {cause}")
    } else if error.is_body() || error.is_decode() {
        format!("cannot read body: {cause}")
    } else {
        format!("request failed: {cause}")
    }
}

/// Renders a duration the way config files write it ("2s", "200ms").
pub fn human_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// Renders a number of bytes in the largest binary unit that divides it
/// ("4 MiB", "64 KiB", "1500 bytes"), the way sizes are written in the
/// configuration.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{} {name}", bytes / unit);
        }
    }
    format!("{bytes} bytes")
}

/// The kind of the first I/O error in the chain of causes, if any.
fn io_error_kind(error: &reqwest::Error) -> Option<std::io::ErrorKind> {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = cause.source();
    }
    None
}

/// The message of the deepest cause: reqwest's own message is generic
/// ("error sending request"), the root cause says what happened.
fn innermost_cause(error: &reqwest::Error) -> String {
    let mut last: &dyn std::error::Error = error;
    while let Some(cause) = last.source() {
        last = cause;
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_config_values() {
        assert_eq!(human_duration(Duration::from_secs(2)), "2s");
        assert_eq!(human_duration(Duration::from_millis(200)), "200ms");
    }

    #[test]
    fn sizes_read_like_config_values() {
        assert_eq!(human_size(4 * 1024 * 1024), "4 MiB");
        assert_eq!(human_size(1536 * 1024), "1536 KiB");
        assert_eq!(human_size(2 << 30), "2 GiB");
        assert_eq!(human_size(1500), "1500 bytes");
    }

    #[test]
    fn client_builds() {
        assert!(http_client().is_ok());
    }
}
