//! `systemd_restart` steps: `systemctl restart <unit>`, then
//! `systemctl is-active <unit>` until it answers `active`, all within the
//! step's timeout. `activating` (and any other passing state) means keep
//! waiting; `failed` ends the step at once.

use super::{PipelineDeps, StepError, StepResult};
use crate::config::SystemdRestartStep;
use crate::exec::{self, CommandSpec, ExecError};
use std::time::Duration;
use tokio::time::Instant;

/// Most characters of `systemctl`'s stderr quoted in a message.
const QUOTE_LIMIT: usize = 300;

/// Restarts the unit and waits until it is active, all within `timeout`.
pub(super) async fn execute(
    step: &SystemdRestartStep,
    timeout: Duration,
    deps: &PipelineDeps,
) -> StepResult {
    let unit = step.unit.as_str();
    let deadline = crate::time::deadline(Instant::now(), timeout);
    let systemctl = deps.systemctl.to_string_lossy().into_owned();
    let restart = systemctl_run(&systemctl, "restart", unit, deadline).await?;
    if !restart.success() {
        let stderr = restart.stderr_tail(QUOTE_LIMIT);
        return Err(StepError::failed(format!(
            "systemctl restart {unit}: {}{}{stderr}",
            restart.status_text(),
            if stderr.is_empty() { "" } else { ": " }
        )));
    }
    loop {
        let answer = systemctl_run(&systemctl, "is-active", unit, deadline).await?;
        // `is-active` prints the state and exits non-zero unless active.
        let state = answer.stdout.trim().to_owned();
        match state.as_str() {
            "active" => return Ok(Some(format!("{unit} is active"))),
            "failed" => {
                return Err(StepError::failed(format!(
                    "{unit} failed after the restart"
                )));
            }
            _ => {}
        }
        let now = Instant::now();
        if now + deps.poll_interval >= deadline {
            return Err(StepError::timed_out(format!(
                "{unit} not active within {} (last state: {state})",
                humantime::format_duration(timeout)
            )));
        }
        tokio::time::sleep(deps.poll_interval).await;
    }
}

/// `systemctl <verb> <unit>` with what is left of the step's time.
async fn systemctl_run(
    systemctl: &str,
    verb: &str,
    unit: &str,
    deadline: Instant,
) -> Result<exec::CommandOutput, StepError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(StepError::timed_out(format!(
            "no time left for systemctl {verb} {unit}"
        )));
    }
    let argv = vec![systemctl.to_owned(), verb.to_owned(), unit.to_owned()];
    match exec::run(CommandSpec::new(argv, left)).await {
        Ok(output) => Ok(output),
        Err(ExecError::TimedOut { .. }) => Err(StepError::timed_out(format!(
            "systemctl {verb} {unit} did not finish within the step's timeout"
        ))),
        Err(error) => Err(StepError::failed(error.to_string())),
    }
}
