//! One HTTP health probe (`[[target.probe]]`): a request, its status, and
//! optionally one value of its JSON body. Stateless: each [`HealthProbe::check`]
//! is independent, and the judge counts consecutive failures against
//! `failures`.

use crate::config::ProbeConfig;
use crate::http::{BODY_LIMIT, describe_error, human_duration, read_body_limited};
use std::time::{Duration, Instant};

/// Longest rendering of a JSON value quoted in a failure reason; the value
/// comes from the probed service and ends up in notifications.
const MAX_QUOTED_VALUE: usize = 80;

/// The result of one probe: everything the judge and a notification need.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOutcome {
    /// The probe's configured name, for evidence and notifications.
    pub name: String,
    /// Whether the service looked healthy to this probe.
    pub ok: bool,
    /// The HTTP status, when a response arrived at all.
    pub status: Option<u16>,
    /// Time from sending the request to the end of reading the body (or to
    /// the failure): a slow health endpoint is itself a signal.
    pub latency: Duration,
    /// Why the probe failed, in a few words ("status 503, expected \[200\]").
    /// `None` exactly when `ok`.
    pub error: Option<String>,
}

/// A ready-to-run health probe built from its configuration.
#[derive(Debug, Clone)]
pub struct HealthProbe {
    /// Name in evidence and notifications.
    name: String,
    /// URL to request.
    url: String,
    /// The parsed method, or why the configured one is not a method: a bad
    /// method makes every check fail with that reason instead of panicking.
    method: Result<reqwest::Method, String>,
    /// Statuses that count as healthy; empty means any 2xx.
    expect_status: Vec<u16>,
    /// JSON pointer of the checked value, if the body is checked.
    json_pointer: Option<String>,
    /// Expected value at the pointer; `None` means "must be present".
    expect_value: Option<toml::Value>,
    /// Time limit of the whole request, body included.
    timeout: Duration,
    /// The shared client (clones share connections).
    client: reqwest::Client,
}

impl HealthProbe {
    /// Builds a probe from its configuration and the daemon's HTTP client.
    /// Never fails: a configuration the probe cannot run (a bad method or
    /// pointer) is reported by every [`check`](Self::check) instead.
    pub fn new(config: &ProbeConfig, client: reqwest::Client) -> HealthProbe {
        let method_name = config.method.trim().to_ascii_uppercase();
        let method = reqwest::Method::from_bytes(method_name.as_bytes())
            .map_err(|_| format!("invalid HTTP method {:?}", config.method));
        // A value without a pointer is checked against the whole document.
        let json_pointer = match (&config.json_pointer, &config.expect_value) {
            (Some(pointer), _) => Some(pointer.clone()),
            (None, Some(_)) => Some(String::new()),
            (None, None) => None,
        };
        HealthProbe {
            name: config.name.clone(),
            url: config.url.clone(),
            method,
            expect_status: config.expect_status.clone(),
            json_pointer,
            expect_value: config.expect_value.clone(),
            timeout: config.timeout,
            client,
        }
    }

    /// The probe's configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the probe once. Never panics and never returns an error: every
    /// failure (refused, timed out, wrong status, wrong value) is an outcome
    /// with `ok == false` and a reason.
    pub async fn check(&self) -> ProbeOutcome {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.timeout, self.request()).await {
            Ok(result) => result,
            Err(_) => Err(Failure {
                status: None,
                reason: format!("timed out after {}", human_duration(self.timeout)),
            }),
        };
        let latency = started.elapsed();
        match result {
            Ok(status) => ProbeOutcome {
                name: self.name.clone(),
                ok: true,
                status: Some(status),
                latency,
                error: None,
            },
            Err(failure) => ProbeOutcome {
                name: self.name.clone(),
                ok: false,
                status: failure.status,
                latency,
                error: Some(failure.reason),
            },
        }
    }

    /// Sends the request and checks the response; the status on success.
    async fn request(&self) -> Result<u16, Failure> {
        let method = self.method.clone().map_err(Failure::without_status)?;
        let pointer = self.json_pointer.as_deref().unwrap_or_default();
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(Failure::without_status(format!(
                "invalid json_pointer {pointer:?}: must start with '/'"
            )));
        }
        let mut response = self
            .client
            .request(method, &self.url)
            .send()
            .await
            .map_err(|e| Failure::without_status(describe_error(&e)))?;
        let status = response.status().as_u16();
        if !self.status_expected(status) {
            let expected = if self.expect_status.is_empty() {
                "2xx".to_owned()
            } else {
                format!("{:?}", self.expect_status)
            };
            return Err(Failure {
                status: Some(status),
                reason: format!("status {status}, expected {expected}"),
            });
        }
        // The body is read even when it is not checked, so that an endpoint
        // that hangs half-way through its answer fails by timing out.
        let body = read_body_limited(&mut response, BODY_LIMIT)
            .await
            .map_err(|e| Failure {
                status: Some(status),
                reason: describe_error(&e),
            })?;
        let Some(pointer) = &self.json_pointer else {
            return Ok(status);
        };
        let fail = |reason: String| Failure {
            status: Some(status),
            reason,
        };
        if body.truncated {
            return Err(fail(format!(
                "body is larger than {} KiB, cannot check {}",
                BODY_LIMIT / 1024,
                pointer_name(pointer)
            )));
        }
        let document: serde_json::Value = serde_json::from_slice(&body.bytes).map_err(|_| {
            fail(format!(
                "body is not JSON, cannot check {}",
                pointer_name(pointer)
            ))
        })?;
        let Some(actual) = document.pointer(pointer) else {
            return Err(fail(format!("{} is missing", pointer_name(pointer))));
        };
        match &self.expect_value {
            Some(expected) if !values_equal(expected, actual) => Err(fail(format!(
                "{} is {}, expected {}",
                pointer_name(pointer),
                quote_json(actual),
                quote_toml(expected)
            ))),
            _ => Ok(status),
        }
    }

    /// Whether a status counts as healthy.
    fn status_expected(&self, status: u16) -> bool {
        if self.expect_status.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expect_status.contains(&status)
        }
    }
}

/// Why a check failed, with the status when a response arrived.
struct Failure {
    /// The response status, if there was a response.
    status: Option<u16>,
    /// The human reason.
    reason: String,
}

impl Failure {
    /// A failure before any response arrived.
    fn without_status(reason: String) -> Failure {
        Failure {
            status: None,
            reason,
        }
    }
}

/// How a pointer is named in a reason: the pointer itself, or "the body".
fn pointer_name(pointer: &str) -> &str {
    if pointer.is_empty() {
        "the body"
    } else {
        pointer
    }
}

/// Whether a configured (TOML) value equals a JSON value. Numbers compare by
/// value (`1` equals `1.0`); strings, booleans, arrays and tables compare
/// structurally; a TOML datetime equals the JSON string it is written as.
pub fn values_equal(expected: &toml::Value, actual: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    use toml::Value as T;
    match (expected, actual) {
        (T::String(e), J::String(a)) => e == a,
        (T::Boolean(e), J::Bool(a)) => e == a,
        (T::Integer(e), J::Number(a)) => match (a.as_i64(), a.as_u64(), a.as_f64()) {
            (Some(a), _, _) => *e == a,
            (None, Some(_), _) => false, // above i64::MAX: no TOML integer is that big
            (None, None, Some(a)) => (*e as f64) == a && a.fract() == 0.0,
            _ => false,
        },
        (T::Float(e), J::Number(a)) => a.as_f64().is_some_and(|a| *e == a),
        (T::Datetime(e), J::String(a)) => e.to_string() == *a,
        (T::Array(e), J::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| values_equal(e, a))
        }
        (T::Table(e), J::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, e)| a.get(k).is_some_and(|a| values_equal(e, a)))
        }
        _ => false,
    }
}

/// A JSON value from the outside, rendered compactly and cut to a length
/// fit for a notification.
fn quote_json(value: &serde_json::Value) -> String {
    shorten(value.to_string())
}

/// A configured value rendered the way JSON would write it, so that
/// expected and actual read alike.
fn quote_toml(value: &toml::Value) -> String {
    match value {
        toml::Value::Datetime(d) => format!("{:?}", d.to_string()),
        other => shorten(serde_json::to_string(other).unwrap_or_else(|_| other.to_string())),
    }
}

/// Cuts a rendering to [`MAX_QUOTED_VALUE`] characters.
fn shorten(text: String) -> String {
    if text.chars().count() <= MAX_QUOTED_VALUE {
        text
    } else {
        let cut: String = text.chars().take(MAX_QUOTED_VALUE).collect();
        format!("{cut}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value() {
        assert!(values_equal(&toml::Value::Integer(1), &json!(1.0)));
        assert!(values_equal(&toml::Value::Float(1.0), &json!(1)));
        assert!(!values_equal(&toml::Value::Integer(1), &json!(1.5)));
        assert!(!values_equal(&toml::Value::Integer(1), &json!("1")));
    }

    #[test]
    fn strings_booleans_and_structures_compare() {
        assert!(values_equal(
            &toml::Value::String("ok".into()),
            &json!("ok")
        ));
        assert!(!values_equal(
            &toml::Value::String("ok".into()),
            &json!("degraded")
        ));
        assert!(values_equal(&toml::Value::Boolean(true), &json!(true)));
        let expected: toml::Value = toml::from_str("v = [1, \"a\"]")
            .map(|t: toml::Table| t["v"].clone())
            .unwrap_or(toml::Value::Boolean(false));
        assert!(values_equal(&expected, &json!([1.0, "a"])));
    }

    #[test]
    fn long_values_are_cut() {
        let long = json!("x".repeat(500));
        assert!(quote_json(&long).chars().count() <= MAX_QUOTED_VALUE + 3);
    }

    #[test]
    fn expected_values_read_like_json() {
        assert_eq!(quote_toml(&toml::Value::String("ok".into())), "\"ok\"");
        assert_eq!(quote_toml(&toml::Value::Integer(3)), "3");
    }
}
