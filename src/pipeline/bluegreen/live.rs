//! How a `bluegreen_switch` tells which colour is live (its link, a URL or
//! a program) and makes another colour live (the link repointed
//! atomically, an HTTP request or a program).

use super::colors;
use crate::config::BlueGreenSwitchStep;
use crate::exec::{self, CommandSpec};
use crate::http::{describe_error, read_body_capped};
use crate::pipeline::symlink::{SwitchPlan, switch};
use crate::pipeline::{PipelineDeps, RollbackContext, StepError, StepResult, http, rendered};
use crate::template;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most bytes of a `live_url` answer read; a longer one is an error (a
/// colour cut off could name the wrong one), refused by its
/// `Content-Length` before it is read.
const LIVE_ANSWER_LIMIT: usize = 4096;

/// Which colour is live now: from the link, `live_url` or `live_argv`.
pub(super) async fn live_color(
    step: &BlueGreenSwitchStep,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
    timeout: Duration,
) -> Result<String, StepError> {
    if let Some(link) = &step.link {
        return live_from_link(step, link);
    }
    let vars = ctx.vars();
    if let Some(url) = &step.live_url {
        let url = rendered(url, template::render_url(url, &vars))?;
        let mut response = deps
            .http
            .get(&url)
            .timeout(timeout)
            .send()
            .await
            .map_err(|error| StepError::failed(format!("GET {url}: {}", describe_error(&error))))?;
        let status = response.status();
        if !status.is_success() {
            return Err(StepError::failed(format!(
                "GET {url}: HTTP {}, so the live colour is unknown",
                status.as_u16()
            )));
        }
        let body = read_body_capped(&mut response, LIVE_ANSWER_LIMIT)
            .await
            .map_err(|error| StepError::failed(format!("GET {url}: {error}")))?;
        let text = String::from_utf8_lossy(&body);
        return match &step.live_pointer {
            None => Ok(text.trim().to_owned()),
            Some(pointer) => serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|doc| {
                    doc.pointer(pointer)
                        .and_then(|v| v.as_str())
                        .map(str::to_owned)
                })
                .ok_or_else(|| {
                    StepError::failed(format!("GET {url}: no string at {pointer} in the answer"))
                }),
        };
    }
    let argv = step
        .live_argv
        .as_ref()
        .ok_or_else(|| StepError::permanent("no `link`, `live_url` or `live_argv`"))?;
    let argv = argv
        .iter()
        .map(|arg| rendered(arg, template::render(arg, &vars)))
        .collect::<Result<Vec<_>, _>>()?;
    let program = argv.first().cloned().unwrap_or_default();
    let mut spec = CommandSpec::new(argv, timeout);
    spec.env = ctx.env();
    let output = exec::run(spec)
        .await
        .map_err(|error| StepError::failed(format!("{program}: {error}")))?;
    if !output.success() {
        return Err(StepError::failed(format!(
            "{program}: {}, so the live colour is unknown",
            output.status_text()
        )));
    }
    Ok(output
        .stdout
        .trim()
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_owned())
}

/// The colour whose `path` the link points to.
pub(super) fn live_from_link(step: &BlueGreenSwitchStep, link: &Path) -> Result<String, StepError> {
    let current = std::fs::canonicalize(link).map_err(|error| {
        StepError::failed(format!("cannot resolve link {}: {error}", link.display()))
    })?;
    for (name, color) in &step.colors {
        let Some(path) = &color.path else { continue };
        if std::fs::canonicalize(beside(link, path)).is_ok_and(|p| p == current) {
            return Ok(name.clone());
        }
    }
    Err(StepError::failed(format!(
        "link {} points to {}, which is no colour's `path`",
        link.display(),
        current.display()
    )))
}

/// `path` as the link reads it: relative paths from the link's directory.
fn beside(link: &Path, path: &Path) -> PathBuf {
    match link.parent() {
        Some(parent) if path.is_relative() => parent.join(path),
        _ => path.to_owned(),
    }
}

/// Makes `to` the live colour, `from` the one live before, within `timeout`.
pub(super) async fn flip(
    step: &BlueGreenSwitchStep,
    to: &str,
    from: &str,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
    timeout: Duration,
) -> StepResult {
    let mut vars = ctx.vars();
    vars.insert("color", to.to_owned());
    vars.insert("live_color", from.to_owned());
    if let Some(link) = &step.link {
        let path = colors(step, to)
            .map_err(StepError::permanent)?
            .path
            .clone()
            .ok_or_else(|| StepError::permanent(format!("colour {to} has no `path`")))?;
        let plan = SwitchPlan {
            link: link.clone(),
            directory: beside(link, &path),
            content: path,
        };
        return tokio::task::spawn_blocking(move || switch(&plan))
            .await
            .map_err(|error| StepError::failed(format!("the switch task failed: {error}")))?;
    }
    if let Some(request) = &step.flip_http {
        return http::send(request, timeout, &vars, deps).await;
    }
    let argv = step
        .flip_argv
        .as_ref()
        .ok_or_else(|| StepError::permanent("no `link`, `flip_http` or `flip_argv`"))?;
    run_flip(argv, &vars, ctx, to, from, timeout).await
}

/// Runs `flip_argv` with the colours in its arguments and environment.
async fn run_flip(
    argv: &[String],
    vars: &BTreeMap<&'static str, String>,
    ctx: &RollbackContext,
    to: &str,
    from: &str,
    timeout: Duration,
) -> StepResult {
    let argv = argv
        .iter()
        .map(|arg| rendered(arg, template::render(arg, vars)))
        .collect::<Result<Vec<_>, _>>()?;
    let program = argv.first().cloned().unwrap_or_default();
    let mut spec = CommandSpec::new(argv, timeout);
    spec.env = ctx.env();
    spec.env.push(("ROLLGUARD_COLOR".to_owned(), to.to_owned()));
    spec.env
        .push(("ROLLGUARD_LIVE_COLOR".to_owned(), from.to_owned()));
    let output = exec::run(spec)
        .await
        .map_err(|error| StepError::failed(format!("{program}: {error}")))?;
    if output.success() {
        return Ok(None);
    }
    let stderr = output.stderr_tail(300);
    Err(StepError::failed(format!(
        "{program}: {}{}{stderr}",
        output.status_text(),
        if stderr.is_empty() { "" } else { ": " }
    )))
}
