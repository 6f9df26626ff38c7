//! `swarm_precheck`: the Swarm part of the pre-rollback safety checks, run
//! before anything changes (phase `precheck`). One `docker service inspect`
//! (the contract is in `swarm.rs`) must show that
//!
//! - the service still runs the release being rolled back: another version
//!   means someone else already acted (rolled back, or deployed a fix), and
//!   rolling "back" now would undo their work;
//! - its previous spec runs the version to bring back: otherwise
//!   `docker service update --rollback` would deploy something else (several
//!   updates since the good release); `swarm_set_image` is then the way.
//!
//! A failed check is permanent (not retried): the pipeline stops with its
//! reason. It only reads, so shadow mode runs it as the step's dry run.

use super::swarm::inspect;
use super::{RollbackContext, StepError, StepResult};
use crate::config::SwarmPrecheckStep;
use std::time::Duration;
use tokio::time::Instant;

/// Checks the service against `ctx`'s versions, within `timeout`.
pub(super) async fn check(
    step: &SwarmPrecheckStep,
    timeout: Duration,
    ctx: &RollbackContext,
) -> StepResult {
    let (docker, service) = (step.docker(), step.service.as_str());
    let deadline = crate::time::deadline(Instant::now(), timeout);
    let view = inspect(docker, service, deadline).await?;
    let label = step.version_label.as_deref();
    let unreadable = |why: String| StepError::permanent(format!("service {service} {why}"));
    let running = view.spec.version(label).map_err(unreadable)?;
    let (bad, restore) = (&ctx.bad_version, &ctx.restore_version);
    if running != *bad {
        return Err(StepError::permanent(format!(
            "service {service} runs {running}, not {bad}: someone else already acted; nothing was changed"
        )));
    }
    let previous = view
        .previous_spec
        .as_ref()
        .ok_or_else(|| unreadable("has no previous spec to roll back to".to_owned()))?;
    let previous = previous
        .version(label)
        .map_err(|why| unreadable(format!("has a previous spec that {why}")))?;
    if previous != *restore {
        return Err(StepError::permanent(format!(
            "the previous spec of service {service} runs {previous}, not {restore}: \
             a rollback would not bring {restore} back (pin it with swarm_set_image)"
        )));
    }
    Ok(Some(format!(
        "service {service} runs {running} and its previous spec {restore}"
    )))
}
