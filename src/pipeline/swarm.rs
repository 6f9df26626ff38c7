//! `swarm_rollback` and `swarm_set_image` steps: a Docker Swarm service
//! changed through the `docker` CLI, then watched until its `UpdateStatus`
//! says the change converged or failed, all within the step's timeout.
//! (`swarm_precheck`, which only reads, is in `swarm_precheck.rs`.)
//!
//! # The contract with `docker`
//!
//! Every call is argv (never a shell), through [`crate::exec`], with
//! stdout and stderr bounded. The environment is the daemon's, so
//! `DOCKER_HOST`, `DOCKER_CONTEXT` and `DOCKER_CONFIG` reach `docker` as
//! they are. `tests/fake_docker.py` fakes exactly this:
//!
//! - `docker service inspect --format {{json .}} SERVICE` prints one JSON
//!   object (plain `inspect` prints an array of them; both are read) and
//!   exits 0, or exits non-zero with `Error: no such service: SERVICE` (or
//!   why the manager cannot be reached) on stderr. rollguard reads
//!   `Spec.TaskTemplate.ContainerSpec.Image`, `Spec.Labels`,
//!   `Spec.TaskTemplate.ContainerSpec.Labels`, `PreviousSpec` (what
//!   `--rollback` goes back to; absent on a service never updated) and
//!   `UpdateStatus.{State,StartedAt,Message}` (absent on a service never
//!   updated). `State` is one of `updating`, `paused`, `completed`,
//!   `rollback_started`, `rollback_paused`, `rollback_completed`; each new
//!   update or rollback has a new `StartedAt`.
//! - `docker service update --rollback --detach SERVICE` asks the manager
//!   to go back to `PreviousSpec` and exits at once (0, printing the
//!   service's name), or non-zero with the reason on stderr. A rollback
//!   swaps `Spec` and `PreviousSpec`: a second one rolls forward again, so
//!   a step that finds a rollback already started or done never sends
//!   another (a retry, or a resume after a crash, only waits).
//! - `docker service update --detach --image=IMAGE SERVICE`: the same for a
//!   new image (the `=` form, so that no image can read as an option).
//!
//! After either update the step inspects every poll interval: a state
//! counts only with a `StartedAt` other than the one before the update (an
//! old `completed` says nothing of this update). `swarm_rollback` succeeds
//! on `rollback_completed` and fails on `rollback_paused` with the
//! manager's message; `swarm_set_image` succeeds on `completed` and fails
//! on `paused` or on any rollback state (the update failed and Swarm undid
//! it). Still converging at the timeout: timed out, with the last state.
//!
//! Docker has no dry run of an update: shadow mode inspects the service
//! instead ([`dry_run`]) and says what would change, or why it cannot.

use super::{PipelineDeps, RollbackContext, StepError, StepResult, render};
use crate::config::{StepAction, StepConfig, SwarmRollbackStep, SwarmSetImageStep};
use crate::exec::{self, CommandSpec, ExecError};
use crate::model::StepOutcome;
use crate::release::swarm::{self, InspectError, ServiceView};
use std::time::Duration;
use tokio::time::Instant;

/// Most characters of `docker`'s stderr quoted in a message.
const QUOTE_LIMIT: usize = 300;

/// What an update is waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    /// `--rollback`: until `rollback_completed`.
    Rollback,
    /// `--image`: until `completed`.
    Update,
}

/// `swarm_rollback`: the service back to its previous spec, and converged.
pub(super) async fn rollback(
    step: &SwarmRollbackStep,
    timeout: Duration,
    deps: &PipelineDeps,
) -> StepResult {
    let (docker, service) = (step.docker(), step.service.as_str());
    let deadline = crate::time::deadline(Instant::now(), timeout);
    let before = inspect(docker, service, deadline).await?;
    let status = before.update_status.clone().unwrap_or_default();
    let since = match status.state.as_str() {
        "rollback_started" => None,
        "rollback_completed" => {
            return Ok(Some(format!(
                "service {service} was already rolled back: it runs {}",
                before.spec.image()
            )));
        }
        "rollback_paused" => {
            return Err(StepError::permanent(format!(
                "a rollback of service {service} is paused: {}",
                message_of(&status)
            )));
        }
        _ => {
            let previous = previous_image(&before)
                .map_err(|why| StepError::permanent(format!("service {service} {why}")))?;
            tracing::info!(%service, from = before.spec.image(), to = previous, "Rolling back the Swarm service");
            let argv = [
                docker,
                "service",
                "update",
                "--rollback",
                "--detach",
                service,
            ];
            update(&argv, service, deadline).await?;
            Some(status.started_at)
        }
    };
    converge(
        docker,
        service,
        Goal::Rollback,
        since,
        timeout,
        deadline,
        deps,
    )
    .await
}

/// `swarm_set_image`: the service's image set to the rendered `image`, and
/// converged. A service that already runs that image is left alone.
pub(super) async fn set_image(
    step: &SwarmSetImageStep,
    timeout: Duration,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
) -> StepResult {
    let (docker, service) = (step.docker(), step.service.as_str());
    let image = render(&step.image, &ctx.vars())?;
    if image.trim().is_empty() {
        return Err(StepError::permanent(format!(
            "`{}` renders to an empty image",
            step.image
        )));
    }
    let deadline = crate::time::deadline(Instant::now(), timeout);
    let before = inspect(docker, service, deadline).await?;
    let status = before.update_status.clone().unwrap_or_default();
    if same_image(before.spec.image(), &image) && status.state != "updating" {
        return Ok(Some(format!("service {service} already runs {image}")));
    }
    let flag = format!("--image={image}");
    let argv = [docker, "service", "update", "--detach", &flag, service];
    update(&argv, service, deadline).await?;
    let since = Some(status.started_at);
    converge(
        docker,
        service,
        Goal::Update,
        since,
        timeout,
        deadline,
        deps,
    )
    .await
}

/// Inspects the service every poll interval until the update converged
/// (`Ok`), failed, or `deadline` passed. `since`: the `StartedAt` before
/// the update this step sent (a state counts only with another one);
/// `None` when the step sent none and waits for one under way.
async fn converge(
    docker: &str,
    service: &str,
    goal: Goal,
    since: Option<Option<String>>,
    timeout: Duration,
    deadline: Instant,
    deps: &PipelineDeps,
) -> StepResult {
    let mut last = "no update status yet".to_owned();
    let not_converged = |last: &str| {
        StepError::timed_out(format!(
            "service {service} not converged within {} (last update status: {last})",
            humantime::format_duration(timeout)
        ))
    };
    loop {
        let view = match inspect(docker, service, deadline).await {
            Ok(view) => view,
            // The time ran out during an inspect: say how far it got.
            Err(error) if error.outcome == StepOutcome::TimedOut => {
                return Err(not_converged(&last));
            }
            Err(error) => return Err(error),
        };
        if let Some(status) = view.update_status.as_ref() {
            last = format!("{} ({})", status.state, message_of(status));
            let current = since.as_ref().is_none_or(|at| *at != status.started_at);
            if current {
                let state = status.state.as_str();
                let message = message_of(status);
                let image = view.spec.image();
                match (goal, state) {
                    (Goal::Rollback, "rollback_completed") => {
                        return Ok(Some(format!(
                            "service {service} rolled back: it runs {image}"
                        )));
                    }
                    (Goal::Update, "completed") => {
                        return Ok(Some(format!("service {service} updated: it runs {image}")));
                    }
                    (Goal::Rollback, "rollback_started") | (Goal::Update, "updating") => {}
                    (Goal::Rollback, "rollback_paused") => {
                        return Err(StepError::permanent(format!(
                            "the rollback of service {service} paused: {message}"
                        )));
                    }
                    (Goal::Update, "paused") => {
                        return Err(StepError::permanent(format!(
                            "the update of service {service} paused: {message}"
                        )));
                    }
                    (Goal::Update, _) => {
                        return Err(StepError::permanent(format!(
                            "the update of service {service} failed and Swarm is rolling it back ({state}): {message}"
                        )));
                    }
                    (Goal::Rollback, _) => {
                        return Err(StepError::permanent(format!(
                            "another update of service {service} started during the rollback ({state}): {message}"
                        )));
                    }
                }
            }
        }
        if Instant::now() + deps.poll_interval >= deadline {
            return Err(not_converged(&last));
        }
        tokio::time::sleep(deps.poll_interval).await;
    }
}

/// One inspect with what is left of the step's time.
pub(super) async fn inspect(
    docker: &str,
    service: &str,
    deadline: Instant,
) -> Result<ServiceView, StepError> {
    let left = time_left(deadline, "docker service inspect", service)?;
    swarm::inspect(docker, service, left)
        .await
        .map_err(|error| match error {
            InspectError::TimedOut(why) => {
                StepError::timed_out(format!("service {service}: {why}"))
            }
            InspectError::Failed(why) => StepError::failed(format!("service {service}: {why}")),
        })
}

/// `docker service update ...` with what is left of the step's time; its
/// failure is retryable (nothing changed), its time running out too.
async fn update(argv: &[&str], service: &str, deadline: Instant) -> Result<(), StepError> {
    let left = time_left(deadline, "docker service update", service)?;
    let spec = CommandSpec::new(argv.iter().map(|a| (*a).to_owned()).collect(), left);
    match exec::run(spec).await {
        Ok(output) if output.success() => Ok(()),
        Ok(output) => {
            let stderr = output.stderr_tail(QUOTE_LIMIT);
            Err(StepError::failed(format!(
                "docker service update {service}: {}{}{stderr}",
                output.status_text(),
                if stderr.is_empty() { "" } else { ": " }
            )))
        }
        Err(ExecError::TimedOut { .. }) => Err(StepError::timed_out(format!(
            "docker service update {service} did not finish within the step's timeout"
        ))),
        Err(error) => Err(StepError::failed(error.to_string())),
    }
}

/// The time left before `deadline`, or a timeout naming what could not run.
fn time_left(deadline: Instant, what: &str, service: &str) -> Result<Duration, StepError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(StepError::timed_out(format!(
            "no time left for {what} {service}"
        )));
    }
    Ok(left)
}

/// The image of the previous spec, or why there is nothing to roll back to.
fn previous_image(view: &ServiceView) -> Result<&str, String> {
    match view.previous_spec.as_ref().map(|spec| spec.image()) {
        Some(image) if !image.is_empty() => Ok(image),
        _ => Err("has no previous spec to roll back to".to_owned()),
    }
}

/// The manager's message, or a placeholder.
fn message_of(status: &swarm::UpdateStatus) -> &str {
    match status.message.as_deref() {
        Some(message) if !message.trim().is_empty() => message,
        _ => "no message",
    }
}

/// Whether two image references name the same image, the digest the CLI
/// pinned to a tag aside.
fn same_image(running: &str, wanted: &str) -> bool {
    let strip = |image: &str| image.split('@').next().unwrap_or(image).to_owned();
    running == wanted || (wanted.contains(':') && strip(running) == strip(wanted))
}

/// Shadow mode's check of a `swarm_*` step: Docker has no dry run of an
/// update, so the service is inspected (nothing is changed) and the answer
/// says what the step would change, or why it could not.
pub async fn dry_run(
    step: &StepConfig,
    ctx: &RollbackContext,
    limit: Duration,
) -> Result<String, String> {
    let (docker, service, image) = match &step.action {
        StepAction::SwarmRollback(s) => (s.docker(), s.service.as_str(), None),
        StepAction::SwarmSetImage(s) => (
            s.docker(),
            s.service.as_str(),
            Some(render(&s.image, &ctx.vars()).map_err(|e| e.message)?),
        ),
        // Only reads: shadow mode runs the check itself.
        StepAction::SwarmPrecheck(s) => {
            let limit = step.common.timeout.min(limit);
            return super::swarm_precheck::check(s, limit, ctx)
                .await
                .map(Option::unwrap_or_default)
                .map_err(|error| error.message);
        }
        other => {
            return Err(format!(
                "step kind `{}` has no dry run",
                other.kind().as_str()
            ));
        }
    };
    let limit = step.common.timeout.min(limit);
    let view = swarm::inspect(docker, service, limit)
        .await
        .map_err(|error| format!("the check of service {service} failed: {error}"))?;
    let running = view.spec.image();
    match image {
        None => previous_image(&view)
            .map(|previous| {
                format!(
                    "service {service} runs {running} and would roll back to {previous} (inspected; docker has no dry run)"
                )
            })
            .map_err(|why| format!("service {service} {why}: a rollback would fail")),
        Some(image) => Ok(format!(
            "service {service} runs {running} and would be set to {image} (inspected; docker has no dry run)"
        )),
    }
}

/// What a Swarm step would do, after its kind; `None` for other kinds.
pub fn describe(step: &StepConfig, ctx: &RollbackContext) -> Option<String> {
    let at_most = humantime::format_duration(step.common.timeout);
    Some(match &step.action {
        StepAction::SwarmRollback(s) => format!(
            "service {} to its previous spec ({}), until rolled back, at most {at_most}",
            s.service, ctx.restore_version
        ),
        StepAction::SwarmSetImage(s) => {
            let image = crate::template::render(&s.image, &ctx.vars())
                .unwrap_or_else(|error| format!("<cannot render `{}`: {error}>", s.image));
            format!(
                "service {} → {image}, until updated, at most {at_most}",
                s.service
            )
        }
        StepAction::SwarmPrecheck(s) => format!(
            "service {} still runs {} and its previous spec {}, else stop before anything changes",
            s.service, ctx.bad_version, ctx.restore_version
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::same_image;

    #[test]
    fn a_pinned_digest_is_the_same_image() {
        assert!(same_image("reg/app:v1@sha256:abc", "reg/app:v1"));
        assert!(same_image("reg/app:v1", "reg/app:v1"));
        assert!(!same_image("reg/app:v2@sha256:abc", "reg/app:v1"));
        assert!(!same_image("reg/app@sha256:abc", "reg/app"));
    }
}
