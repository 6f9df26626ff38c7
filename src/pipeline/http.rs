//! `http` steps: one request (a load balancer's API, a feature flag
//! service, a chat webhook) whose status says whether it worked.
//!
//! The URL is rendered from `url`, or read from the environment variable
//! `url_env` when it holds a secret; header values come from the
//! environment (`headers_env`) or, for a bearer token, a file
//! (`bearer_token_file`), and are never logged or described.

use super::{PipelineDeps, RollbackContext, StepError, StepResult, rendered};
use crate::config::HttpStep;
use crate::http::{describe_error, read_body_limited};
use crate::template;
use std::collections::BTreeMap;
use std::time::Duration;

/// Most bytes of a response body quoted in a failure message.
const QUOTE_LIMIT: usize = 300;

/// The method of an http step: `method`, POST when absent.
pub fn method(step: &HttpStep) -> String {
    step.method
        .as_deref()
        .unwrap_or("POST")
        .to_ascii_uppercase()
}

/// "status 200", "status 200 or 204", "any 2xx status".
pub fn expected_text(step: &HttpStep) -> String {
    match step.expect_status.as_deref() {
        None | Some([]) => "any 2xx status".to_owned(),
        Some(statuses) => {
            let list: Vec<String> = statuses.iter().map(u16::to_string).collect();
            format!("status {}", list.join(" or "))
        }
    }
}

/// Whether `status` is what the step expects.
fn expected(step: &HttpStep, status: u16) -> bool {
    match step.expect_status.as_deref() {
        None | Some([]) => (200..300).contains(&status),
        Some(statuses) => statuses.contains(&status),
    }
}

/// Sends one request, within `timeout`.
pub(super) async fn execute(
    step: &HttpStep,
    timeout: Duration,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
) -> StepResult {
    send(step, timeout, &ctx.vars(), deps).await
}

/// Sends one request with `vars` rendered into its URL and body (a
/// blue-green flip adds the colours to the step variables).
pub(super) async fn send(
    step: &HttpStep,
    timeout: Duration,
    vars: &BTreeMap<&'static str, String>,
    deps: &PipelineDeps,
) -> StepResult {
    let vars = vars.clone();
    let url = match (&step.url, &step.url_env) {
        (Some(url), _) => rendered(url, template::render_url(url, &vars))?,
        (None, Some(var)) => deps.env.var(var).ok_or_else(|| {
            StepError::permanent(format!("environment variable `{var}` (url_env) is not set"))
        })?,
        (None, None) => {
            return Err(StepError::permanent(
                "an http step needs `url` or `url_env`",
            ));
        }
    };
    let method_name = method(step);
    let method = reqwest::Method::from_bytes(method_name.as_bytes())
        .map_err(|_| StepError::permanent(format!("`{method_name}` is not an HTTP method")))?;
    let mut request = deps.http.request(method, &url).timeout(timeout);
    let mut has_content_type = false;
    for (header, var) in &step.headers_env {
        let value = deps.env.var(var).ok_or_else(|| {
            StepError::permanent(format!(
                "environment variable `{var}` (header `{header}`) is not set"
            ))
        })?;
        has_content_type |= header.eq_ignore_ascii_case("content-type");
        request = request.header(header.as_str(), value);
    }
    if let Some(path) = &step.bearer_token_file {
        let token = deps.env.read_file(path).map_err(|error| {
            StepError::failed(format!(
                "cannot read bearer_token_file {}: {error}",
                path.display()
            ))
        })?;
        let token = token.trim();
        if token.is_empty() {
            return Err(StepError::permanent(format!(
                "bearer_token_file {} is empty",
                path.display()
            )));
        }
        request = request.bearer_auth(token);
    }
    if let Some(body) = &step.body {
        // Values in a JSON body are escaped for JSON; any other body gets
        // them as they are.
        let json = body.trim_start().starts_with(['{', '[']);
        let body = if json {
            rendered(body, template::render_json(body, &vars))?
        } else {
            rendered(body, template::render(body, &vars))?
        };
        // A JSON body is declared as such unless the step sets its own type.
        if !has_content_type && serde_json::from_str::<serde_json::Value>(&body).is_ok() {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json");
        }
        request = request.body(body);
    }
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(error) if error.is_timeout() => {
            return Err(StepError::timed_out(format!(
                "no answer within {}",
                humantime::format_duration(timeout)
            )));
        }
        Err(error) if error.is_builder() => {
            return Err(StepError::permanent(describe_error(&error)));
        }
        Err(error) => return Err(StepError::failed(describe_error(&error))),
    };
    let status = response.status().as_u16();
    if expected(step, status) {
        return Ok(Some(format!("HTTP {status}")));
    }
    let body = read_body_limited(&mut response, QUOTE_LIMIT)
        .await
        .map(|body| String::from_utf8_lossy(&body.bytes).trim().to_owned())
        .unwrap_or_default();
    let mut message = format!("HTTP {status}, expected {}", expected_text(step));
    if !body.is_empty() {
        message.push_str(": ");
        message.push_str(&body);
    }
    Err(StepError::failed(message))
}
