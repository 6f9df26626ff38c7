//! The `version_url` release source: `GET` a URL that answers with the
//! running version, either as the whole body or at a JSON pointer.

use super::{SourceError, validate_version};
use crate::http::{BODY_LIMIT, BodyError, describe_error, human_duration, read_body_capped};
use std::time::Duration;

/// Reads the running version from `url`.
///
/// With `json_pointer`, the body must be JSON and the value at the pointer a
/// string (taken as it is) or a number (rendered as text); without it, the
/// version is the whole body, trimmed. `timeout` bounds the whole request,
/// body included. The version is checked by [`validate_version`] because it
/// comes from outside and ends up in logs, environment variables and
/// notifications.
pub async fn read_version(
    client: &reqwest::Client,
    url: &str,
    json_pointer: Option<&str>,
    timeout: Duration,
) -> Result<String, SourceError> {
    match tokio::time::timeout(timeout, fetch(client, url, json_pointer)).await {
        Ok(result) => result,
        Err(_) => Err(SourceError::Request {
            url: url.to_owned(),
            reason: format!("timed out after {}", human_duration(timeout)),
        }),
    }
}

/// The request and the reading of its answer, without the time limit.
async fn fetch(
    client: &reqwest::Client,
    url: &str,
    json_pointer: Option<&str>,
) -> Result<String, SourceError> {
    let request_failed = |e: reqwest::Error| SourceError::Request {
        url: url.to_owned(),
        reason: describe_error(&e),
    };
    let mut response = client.get(url).send().await.map_err(request_failed)?;
    let status = response.status();
    if !status.is_success() {
        return Err(SourceError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    let body = read_body_capped(&mut response, BODY_LIMIT)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge { limit } => SourceError::BodyTooLarge {
                url: url.to_owned(),
                limit,
            },
            BodyError::Read(error) => request_failed(error),
        })?;
    let version = match json_pointer {
        None => String::from_utf8_lossy(&body).trim().to_owned(),
        Some(pointer) => version_at_pointer(url, &body, pointer)?,
    };
    validate_version(&version)
}

/// The version at `pointer` in a JSON body.
fn version_at_pointer(url: &str, body: &[u8], pointer: &str) -> Result<String, SourceError> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(SourceError::InvalidPointer {
            pointer: pointer.to_owned(),
        });
    }
    let document: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| SourceError::NotJson {
            url: url.to_owned(),
            pointer: pointer.to_owned(),
        })?;
    let not_a_version = |found| SourceError::NotAVersion {
        url: url.to_owned(),
        pointer: pointer.to_owned(),
        found,
    };
    match document.pointer(pointer) {
        None => Err(SourceError::PointerMissing {
            url: url.to_owned(),
            pointer: pointer.to_owned(),
        }),
        Some(serde_json::Value::String(version)) => Ok(version.clone()),
        Some(serde_json::Value::Number(number)) => Ok(number.to_string()),
        Some(serde_json::Value::Null) => Err(not_a_version("null")),
        Some(serde_json::Value::Bool(_)) => Err(not_a_version("a boolean")),
        Some(serde_json::Value::Array(_)) => Err(not_a_version("an array")),
        Some(serde_json::Value::Object(_)) => Err(not_a_version("an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str, pointer: &str) -> Result<String, SourceError> {
        version_at_pointer("http://x/version", body.as_bytes(), pointer)
    }

    #[test]
    fn strings_and_numbers_are_versions() {
        assert_eq!(
            read(r#"{"version":"v1.2"}"#, "/version").ok().as_deref(),
            Some("v1.2")
        );
        assert_eq!(
            read(r#"{"build":{"n":42}}"#, "/build/n").ok().as_deref(),
            Some("42")
        );
        assert_eq!(read(r#"{"v":1.5}"#, "/v").ok().as_deref(), Some("1.5"));
    }

    #[test]
    fn other_values_are_clear_errors() {
        assert!(matches!(
            read(r#"{"v":null}"#, "/v"),
            Err(SourceError::NotAVersion { found: "null", .. })
        ));
        assert!(matches!(
            read(r#"{"v":{}}"#, "/v"),
            Err(SourceError::NotAVersion { .. })
        ));
        assert!(matches!(
            read(r#"{"v":"1"}"#, "/w"),
            Err(SourceError::PointerMissing { .. })
        ));
        assert!(matches!(
            read("v1.2", "/v"),
            Err(SourceError::NotJson { .. })
        ));
        assert!(matches!(
            read(r#"{"v":"1"}"#, "v"),
            Err(SourceError::InvalidPointer { .. })
        ));
    }
}
