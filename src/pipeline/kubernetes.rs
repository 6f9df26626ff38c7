//! `kubernetes_undo`, `kubernetes_set_image`, `kubernetes_scale` and
//! `kubernetes_rollout_status` steps: which Deployment (the step's
//! `namespace`/`deployment`, else the release source's), the step's time
//! limit, and what each failure means for retries. The Kubernetes work
//! itself is in [`crate::kubernetes`].

use super::{PipelineDeps, RollbackContext, StepError, StepResult, render, stopped};
use crate::config::{StepConfig, StepKind};
use crate::kubernetes::{self, DeploymentRef, KubeError};
use std::time::Duration;
use tokio::sync::watch;

/// The longest a shadow-mode dry run may hold up its target's loop.
const DRY_RUN_LIMIT: Duration = Duration::from_secs(30);

/// The Deployment a step acts on: its own `namespace` and `deployment`,
/// else the release source's.
pub fn deployment_of(step: &StepConfig, ctx: &RollbackContext) -> Result<DeploymentRef, String> {
    let namespace = step.namespace.as_ref().or(ctx.namespace_hint.as_ref());
    let name = step.deployment.as_ref().or(ctx.deployment_hint.as_ref());
    match (namespace, name) {
        (Some(namespace), Some(name)) => Ok(DeploymentRef {
            namespace: namespace.clone(),
            name: name.clone(),
        }),
        _ => Err(format!(
            "step kind `{}` needs `namespace` and `deployment` (on the step or the kubernetes release source)",
            step.kind.as_str()
        )),
    }
}

/// One attempt of a Kubernetes step. `rollout_status` stops waiting when
/// `stop` turns true; the others send at most a few requests.
pub async fn execute(
    step: &StepConfig,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
    mut stop: watch::Receiver<bool>,
) -> StepResult {
    let target = deployment_of(step, ctx).map_err(StepError::permanent)?;
    let client = deps.kube.get().await.map_err(step_error)?;
    let work = async {
        match step.kind {
            StepKind::KubernetesUndo => {
                let outcome = kubernetes::undo(&client, &target, to_revision(step)?, false);
                outcome.await.map(|outcome| outcome.to_string())
            }
            StepKind::KubernetesSetImage => {
                let container = step.container.as_deref().unwrap_or_default();
                let image = render(step.image.as_deref().unwrap_or_default(), &ctx.vars())?;
                kubernetes::set_image(&client, &target, container, &image).await
            }
            StepKind::KubernetesScale => {
                let replicas = step.replicas.unwrap_or_default();
                let replicas = i32::try_from(replicas).map_err(|_| {
                    StepError::permanent(format!("replicas {replicas} is out of range"))
                })?;
                kubernetes::scale(&client, &target, replicas).await
            }
            _ => {
                let poll = deps.poll_interval;
                let waiting = kubernetes::wait_for_rollout(&client, &target, poll, step.timeout);
                tokio::select! {
                    done = waiting => done,
                    () = stopped(&mut stop) => return Err(StepError::interrupted(format!(
                        "stopped waiting for the rollout of {target}: rollguard is shutting down"
                    ))),
                }
            }
        }
        .map_err(step_error)
    };
    // rollout_status keeps its own deadline, to report the last state seen.
    let limit = match step.kind {
        StepKind::KubernetesRolloutStatus => step.timeout.saturating_add(Duration::from_secs(1)),
        _ => step.timeout,
    };
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result.map(Some),
        Err(_) => Err(StepError::timed_out(format!(
            "{target}: no answer within {}",
            humantime::format_duration(step.timeout)
        ))),
    }
}

/// Shadow mode's check of a `kubernetes_undo` step: the same PATCH, sent
/// with `?dryRun=All`, so that the notification can say whether the API
/// server would have accepted the rollback. Nothing is changed.
pub async fn dry_run(
    step: &StepConfig,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
) -> Result<String, String> {
    if step.kind != StepKind::KubernetesUndo {
        return Err(format!("step kind `{}` has no dry run", step.kind.as_str()));
    }
    let target = deployment_of(step, ctx)?;
    let to_revision = to_revision(step).map_err(|error| error.message)?;
    let check = async {
        let client = deps.kube.get().await?;
        kubernetes::undo(&client, &target, to_revision, true).await
    };
    let limit = step.timeout.min(DRY_RUN_LIMIT);
    match tokio::time::timeout(limit, check).await {
        Ok(Ok(outcome)) => Ok(outcome.to_string()),
        Ok(Err(error)) => Err(format!("the dry run of the rollback failed: {error}")),
        Err(_) => Err(format!(
            "the dry run of the rollback of {target} had no answer within {}",
            humantime::format_duration(limit)
        )),
    }
}

/// What a Kubernetes step would do, after its kind: "deployment prod/app
/// to the previous revision (v1.3.2)", "deployment prod/app container app
/// → registry/app:v1.3.2", "deployment prod/app to 5 replicas",
/// "deployment prod/app until rolled out, at most 5m".
pub fn describe(step: &StepConfig, ctx: &RollbackContext) -> String {
    let deployment = match deployment_of(step, ctx) {
        Ok(target) => format!("deployment {target}"),
        Err(_) => "<no deployment>".to_owned(),
    };
    match step.kind {
        StepKind::KubernetesUndo => match step.to_revision.filter(|r| *r > 0) {
            Some(revision) => format!("{deployment} to revision {revision}"),
            None => format!("{deployment} to the previous revision ({})", ctx.to_version),
        },
        StepKind::KubernetesSetImage => {
            let image = step.image.as_deref().unwrap_or("<no image>");
            let image = crate::template::render(image, &ctx.vars())
                .unwrap_or_else(|error| format!("<cannot render `{image}`: {error}>"));
            let container = step.container.as_deref().unwrap_or("<no container>");
            format!("{deployment} container {container} → {image}")
        }
        StepKind::KubernetesScale => match step.replicas {
            Some(replicas) => format!("{deployment} to {replicas} replicas"),
            None => format!("{deployment} to <no replicas>"),
        },
        _ => format!(
            "{deployment} until rolled out, at most {}",
            humantime::format_duration(step.timeout)
        ),
    }
}

fn to_revision(step: &StepConfig) -> Result<Option<i64>, StepError> {
    step.to_revision
        .map(i64::try_from)
        .transpose()
        .map_err(|_| StepError::permanent("to_revision is out of range"))
}

fn step_error(error: KubeError) -> StepError {
    match error {
        KubeError::RolloutTimeout { .. } => StepError::timed_out(error.to_string()),
        error if error.is_permanent() => StepError::permanent(error.to_string()),
        error => StepError::failed(error.to_string()),
    }
}
