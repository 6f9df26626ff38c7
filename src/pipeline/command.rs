//! `command` steps: a program with rendered arguments and environment, the
//! `ROLLGUARD_*` variables, never a shell. Exit code 0 is success.

use super::{RollbackContext, StepError, StepResult, render};
use crate::config::CommandStep;
use crate::exec::{self, CommandSpec, ExecError, ProcessGroup};
use std::time::Duration;
use tokio::sync::oneshot;

/// Most characters of stderr (or stdout) quoted in a step's message.
const QUOTE_LIMIT: usize = 500;

/// The rendered argv of a command step.
pub fn argv(step: &CommandStep, ctx: &RollbackContext) -> Result<Vec<String>, StepError> {
    let vars = ctx.vars();
    let argv = &step.argv;
    if argv.is_empty() {
        return Err(StepError::permanent("`argv` is empty"));
    }
    argv.iter().map(|arg| render(arg, &vars)).collect()
}

/// The spec of one attempt: rendered argv and `env`, then the
/// `ROLLGUARD_*` variables (which a step's `env` cannot override), `cwd`,
/// and the step's `timeout`.
pub fn spec(
    step: &CommandStep,
    timeout: Duration,
    ctx: &RollbackContext,
) -> Result<CommandSpec, StepError> {
    let vars = ctx.vars();
    let mut env = Vec::new();
    for (name, value) in &step.env {
        env.push((name.clone(), render(value, &vars)?));
    }
    env.extend(ctx.env());
    Ok(CommandSpec {
        argv: argv(step, ctx)?,
        env,
        cwd: step.cwd.clone(),
        stdin: None,
        timeout,
    })
}

/// Runs one attempt within `timeout`; the program's process group goes
/// to `spawned` once it runs (for the journal).
pub(super) async fn execute(
    step: &CommandStep,
    timeout: Duration,
    ctx: &RollbackContext,
    spawned: oneshot::Sender<ProcessGroup>,
) -> StepResult {
    let spec = spec(step, timeout, ctx)?;
    match exec::run_reporting(spec, Some(spawned)).await {
        Ok(output) if output.success() => {
            let last_line = output.stdout.trim().lines().last().unwrap_or("").trim();
            Ok((!last_line.is_empty()).then(|| exec::tail(last_line, QUOTE_LIMIT)))
        }
        Ok(output) => {
            let stderr = output.stderr_tail(QUOTE_LIMIT);
            Err(StepError::failed(if stderr.is_empty() {
                output.status_text()
            } else {
                format!("{}: {stderr}", output.status_text())
            }))
        }
        Err(ExecError::TimedOut { after, output }) => {
            let stderr = output.stderr_tail(QUOTE_LIMIT);
            let mut message = format!(
                "timed out after {}; its process group was stopped",
                humantime::format_duration(after)
            );
            if !stderr.is_empty() {
                message.push_str(": ");
                message.push_str(&stderr);
            }
            Err(StepError::timed_out(message))
        }
        // A missing program or working directory is a broken deploy of the
        // host: a retry a moment later may find it.
        Err(error) => Err(StepError::failed(error.to_string())),
    }
}
