//! `kubernetes_undo`, `kubernetes_set_image`, `kubernetes_scale` and
//! `kubernetes_rollout_status` steps: which Deployment (the step's
//! `namespace`/`deployment`, else the release source's), the step's time
//! limit, and what each failure means for retries. The Kubernetes work
//! itself is in [`crate::kubernetes`].

use super::{PipelineDeps, RollbackContext, StepError, StepResult, render, stopped};
use crate::config::{
    KubernetesRolloutStatusStep, KubernetesScaleStep, KubernetesSetImageStep, KubernetesUndoStep,
    StepAction, StepConfig, StepKind,
};
use crate::kubernetes::{self, DeploymentRef, KubeError};
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

/// The longest a shadow-mode dry run may hold up its target's loop.
pub(super) const DRY_RUN_LIMIT: Duration = Duration::from_secs(30);

/// The Deployment a `kind` step acts on: its own `namespace` and
/// `deployment`, else the release source's.
pub fn deployment_of(
    kind: StepKind,
    namespace: Option<&str>,
    deployment: Option<&str>,
    ctx: &RollbackContext,
) -> Result<DeploymentRef, String> {
    let namespace = namespace.or(ctx.namespace_hint.as_deref());
    let name = deployment.or(ctx.deployment_hint.as_deref());
    match (namespace, name) {
        (Some(namespace), Some(name)) => Ok(DeploymentRef {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }),
        _ => Err(format!(
            "step kind `{}` needs `namespace` and `deployment` (on the step or the kubernetes release source)",
            kind.as_str()
        )),
    }
}

/// One attempt of a `kubernetes_*` step held as a whole step (the runner
/// calls the kind's own function below); any other kind is a permanent
/// failure.
pub async fn execute(
    step: &StepConfig,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
    stop: watch::Receiver<bool>,
) -> StepResult {
    let timeout = step.common.timeout;
    match &step.action {
        StepAction::KubernetesUndo(s) => undo(s, timeout, ctx, deps).await,
        StepAction::KubernetesSetImage(s) => set_image(s, timeout, ctx, deps).await,
        StepAction::KubernetesScale(s) => scale(s, timeout, ctx, deps).await,
        StepAction::KubernetesRolloutStatus(s) => rollout_status(s, timeout, ctx, deps, stop).await,
        other => Err(StepError::permanent(format!(
            "step kind `{}` is not a kubernetes step",
            other.kind().as_str()
        ))),
    }
}

/// `kubernetes_undo`: back to `to_revision`, else the previous revision.
pub async fn undo(
    step: &KubernetesUndoStep,
    timeout: Duration,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
) -> StepResult {
    let (namespace, deployment) = (step.namespace.as_deref(), step.deployment.as_deref());
    let target = deployment_of(StepKind::KubernetesUndo, namespace, deployment, ctx)
        .map_err(StepError::permanent)?;
    let to_revision = to_revision(step)?;
    within(timeout, &target, deps, |client, target| async move {
        let outcome = kubernetes::undo(&client, &target, to_revision, false).await;
        outcome.map(|outcome| outcome.to_string())
    })
    .await
}

/// `kubernetes_set_image`: the container's image, rendered.
pub async fn set_image(
    step: &KubernetesSetImageStep,
    timeout: Duration,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
) -> StepResult {
    let (namespace, deployment) = (step.namespace.as_deref(), step.deployment.as_deref());
    let target = deployment_of(StepKind::KubernetesSetImage, namespace, deployment, ctx)
        .map_err(StepError::permanent)?;
    let image = render(&step.image, &ctx.vars())?;
    let container = step.container.clone();
    within(timeout, &target, deps, |client, target| async move {
        kubernetes::set_image(&client, &target, &container, &image).await
    })
    .await
}

/// `kubernetes_scale`: the Deployment's replicas.
pub async fn scale(
    step: &KubernetesScaleStep,
    timeout: Duration,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
) -> StepResult {
    let (namespace, deployment) = (step.namespace.as_deref(), step.deployment.as_deref());
    let target = deployment_of(StepKind::KubernetesScale, namespace, deployment, ctx)
        .map_err(StepError::permanent)?;
    let replicas = step.replicas;
    let replicas = i32::try_from(replicas)
        .map_err(|_| StepError::permanent(format!("replicas {replicas} is out of range")))?;
    within(timeout, &target, deps, |client, target| async move {
        kubernetes::scale(&client, &target, replicas).await
    })
    .await
}

/// `kubernetes_rollout_status`: waits until the Deployment is rolled out,
/// within `timeout`, or until `stop` turns true.
pub async fn rollout_status(
    step: &KubernetesRolloutStatusStep,
    timeout: Duration,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
    mut stop: watch::Receiver<bool>,
) -> StepResult {
    let (namespace, deployment) = (step.namespace.as_deref(), step.deployment.as_deref());
    let target = deployment_of(
        StepKind::KubernetesRolloutStatus,
        namespace,
        deployment,
        ctx,
    )
    .map_err(StepError::permanent)?;
    let client = deps.kube.get().await.map_err(step_error)?;
    let waiting = kubernetes::wait_for_rollout(&client, &target, deps.poll_interval, timeout);
    // The wait keeps its own deadline, to report the last state seen; this
    // one only guards against a wait that overruns it.
    let guarded = tokio::time::timeout(timeout.saturating_add(Duration::from_secs(1)), waiting);
    tokio::select! {
        done = guarded => match done {
            Ok(result) => result.map(Some).map_err(step_error),
            Err(_) => Err(no_answer(&target, timeout)),
        },
        () = stopped(&mut stop) => Err(StepError::interrupted(format!(
            "stopped waiting for the rollout of {target}: rollguard is shutting down"
        ))),
    }
}

/// Runs `work` with the client, within `timeout`.
async fn within<F, Fut>(
    timeout: Duration,
    target: &DeploymentRef,
    deps: &PipelineDeps,
    work: F,
) -> StepResult
where
    F: FnOnce(kube::Client, DeploymentRef) -> Fut,
    Fut: Future<Output = Result<String, KubeError>>,
{
    let client = deps.kube.get().await.map_err(step_error)?;
    match tokio::time::timeout(timeout, work(client, target.clone())).await {
        Ok(result) => result.map(Some).map_err(step_error),
        Err(_) => Err(no_answer(target, timeout)),
    }
}

/// The time limit passed without an answer.
fn no_answer(target: &DeploymentRef, timeout: Duration) -> StepError {
    StepError::timed_out(format!(
        "{target}: no answer within {}",
        humantime::format_duration(timeout)
    ))
}

/// Shadow mode's check of a `kubernetes_undo` step: the same PATCH, sent
/// with `?dryRun=All`, so that the notification can say whether the API
/// server would have accepted the rollback. Nothing is changed.
pub async fn dry_run(
    step: &StepConfig,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
) -> Result<String, String> {
    let StepAction::KubernetesUndo(undo) = &step.action else {
        return Err(format!(
            "step kind `{}` has no dry run",
            step.kind().as_str()
        ));
    };
    let (namespace, deployment) = (undo.namespace.as_deref(), undo.deployment.as_deref());
    let target = deployment_of(StepKind::KubernetesUndo, namespace, deployment, ctx)?;
    let to_revision = to_revision(undo).map_err(|error| error.message)?;
    let check = async {
        let client = deps.kube.get().await?;
        kubernetes::undo(&client, &target, to_revision, true).await
    };
    let limit = step.common.timeout.min(DRY_RUN_LIMIT);
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
/// "deployment prod/app until rolled out, at most 5m"; `None` for other
/// kinds.
pub fn describe(step: &StepConfig, ctx: &RollbackContext) -> Option<String> {
    let (namespace, name) = step.action.deployment_keys()?;
    let deployment = match deployment_of(step.kind(), namespace, name, ctx) {
        Ok(target) => format!("deployment {target}"),
        Err(_) => "<no deployment>".to_owned(),
    };
    Some(match &step.action {
        StepAction::KubernetesUndo(undo) => match undo.to_revision.filter(|r| *r > 0) {
            Some(revision) => format!("{deployment} to revision {revision}"),
            None => format!(
                "{deployment} to the previous revision ({})",
                ctx.restore_version
            ),
        },
        StepAction::KubernetesSetImage(set) => {
            let image = crate::template::render(&set.image, &ctx.vars())
                .unwrap_or_else(|error| format!("<cannot render `{}`: {error}>", set.image));
            format!("{deployment} container {} → {image}", set.container)
        }
        StepAction::KubernetesScale(scale) => {
            format!("{deployment} to {} replicas", scale.replicas)
        }
        _ => format!(
            "{deployment} until rolled out, at most {}",
            humantime::format_duration(step.common.timeout)
        ),
    })
}

/// `to_revision` as the API takes it.
fn to_revision(step: &KubernetesUndoStep) -> Result<Option<i64>, StepError> {
    step.to_revision
        .map(i64::try_from)
        .transpose()
        .map_err(|_| StepError::permanent("to_revision is out of range"))
}

/// What a Kubernetes error means for retries.
fn step_error(error: KubeError) -> StepError {
    match error {
        KubeError::RolloutTimeout { .. } => StepError::timed_out(error.to_string()),
        error if error.is_permanent() => StepError::permanent(error.to_string()),
        error => StepError::failed(error.to_string()),
    }
}
