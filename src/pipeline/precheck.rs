//! `precheck`: the pre-rollback safety checks of a target (phase
//! `precheck`), run before anything changes; a Swarm service has its own,
//! `swarm_precheck`. Each check only reads:
//!
//! - `running`: the target's release source, read now as the watcher reads
//!   it ([`ReleaseSource`]), still reports the release being rolled back;
//!   another version means someone else already acted (rolled back, or
//!   deployed a fix), and rolling "back" now would undo their work;
//! - `target = "symlink_dir"`: the release directory of the version to
//!   bring back exists where `symlink_switch` would look for it
//!   ([`symlink::plan`]);
//! - `target = "kubernetes_revision"`: the Deployment has an earlier
//!   revision to go back to, and the API server accepts the undo (the undo
//!   of `kubernetes_undo`, sent as a server-side dry run, which stores
//!   nothing);
//! - `target = "git_tag"`: `git -C REPO rev-parse --verify --quiet
//!   refs/tags/{{previous_version}}^{commit}` (argv, never a shell) names a
//!   commit.
//!
//! Every failure is permanent (never retried) and aborts the pipeline
//! whatever `on_failure` says ([`StepConfig::on_failure`]); the restore
//! steps still run. Shadow mode runs the checks as the step's dry run.

use super::kubernetes::deployment_of;
use super::{PipelineDeps, RollbackContext, StepError, StepResult, symlink};
use crate::config::{
    GIT, PrecheckStep, PrecheckTarget, ReleaseConfig, StepAction, StepConfig, StepKind,
    SymlinkSwitchStep,
};
use crate::exec::CommandSpec;
use crate::kubernetes::UndoOutcome;
use crate::release::ReleaseSource;
use std::path::Path;
use std::time::Duration;

/// Runs the step's checks against `ctx`'s versions, each within `timeout`;
/// on success, what each one saw.
pub(super) async fn check(
    step: &PrecheckStep,
    timeout: Duration,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
) -> StepResult {
    let mut seen = Vec::new();
    if step.running {
        seen.push(running(timeout, ctx, deps).await?);
    }
    let target = match step.target {
        None => None,
        Some(PrecheckTarget::SymlinkDir) => Some(symlink_dir(step, ctx)?),
        Some(PrecheckTarget::GitTag) => Some(git_tag(step, timeout, ctx).await?),
        Some(PrecheckTarget::KubernetesRevision) => {
            Some(kubernetes_revision(step, timeout, ctx, deps).await?)
        }
    };
    seen.extend(target);
    Ok(Some(seen.join("; ")))
}

/// Shadow mode's check of a `precheck` step: the checks themselves, which
/// only read (the Kubernetes one is a dry run already).
pub(super) async fn dry_run(
    step: &StepConfig,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
    limit: Duration,
) -> Result<String, String> {
    let StepAction::Precheck(precheck) = &step.action else {
        return Err(format!(
            "step kind `{}` is not a precheck",
            step.kind().as_str()
        ));
    };
    let limit = step.common.timeout.min(limit);
    check(precheck, limit, ctx, deps)
        .await
        .map(Option::unwrap_or_default)
        .map_err(|error| format!("the precheck would stop the rollback: {}", error.message))
}

/// What a `precheck` step checks, after its kind: "the running version
/// (version_url) is still v2; tag v1 exists in /srv/app".
pub fn describe(step: &PrecheckStep, ctx: &RollbackContext) -> String {
    let mut checks = Vec::new();
    if step.running {
        let source = ctx
            .release_hint
            .as_ref()
            .map_or("release source", |release| release.kind().as_str());
        checks.push(format!(
            "the running version ({source}) is still {}",
            ctx.bad_version
        ));
    }
    let restore = &ctx.restore_version;
    match step.target {
        Some(PrecheckTarget::SymlinkDir) => match symlink::plan(&switch_of(step), ctx) {
            Ok(plan) => checks.push(format!("{} exists", plan.directory.display())),
            Err(_) => checks.push(format!("the release directory of {restore} exists")),
        },
        Some(PrecheckTarget::GitTag) => {
            let repo = step.repo.as_deref().unwrap_or(Path::new("<no repo>"));
            checks.push(format!("tag {restore} exists in {}", repo.display()));
        }
        Some(PrecheckTarget::KubernetesRevision) => {
            let target = deployment_target(step, ctx)
                .map_or_else(|_| "<no deployment>".to_owned(), |t| t.to_string());
            checks.push(format!("deployment {target} has a previous revision"));
        }
        None => {}
    }
    format!("{}, else stop before anything changes", checks.join("; "))
}

/// The release source still reports the bad version.
async fn running(
    timeout: Duration,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
) -> Result<String, StepError> {
    let release = ctx.release_hint.as_ref().ok_or_else(|| {
        StepError::permanent("the running version cannot be checked: no release source is known")
    })?;
    let kube = match release {
        ReleaseConfig::Kubernetes(_) => deps.kube.get().await.map_err(|e| e.to_string()),
        _ => Err("the release source is not kubernetes".to_owned()),
    };
    let unreadable = |why: String| {
        StepError::permanent(format!(
            "cannot read the running version: {why}; nothing was changed"
        ))
    };
    let source = ReleaseSource::with_kube(release, deps.http.clone(), kube)
        .map_err(|error| unreadable(error.to_string()))?;
    let read = tokio::time::timeout(timeout, source.current_version())
        .await
        .map_err(|_| {
            unreadable(format!(
                "no answer within {}",
                humantime::format_duration(timeout)
            ))
        })?
        .map_err(|error| unreadable(error.to_string()))?;
    let bad = &ctx.bad_version;
    match read {
        None => Err(unreadable(
            "an announce release source cannot be read".to_owned(),
        )),
        Some(running) if running != *bad => Err(StepError::permanent(format!(
            "the running version is {running}, not {bad}: someone else already acted; nothing was changed"
        ))),
        Some(running) => Ok(format!("{} still runs {running}", release.kind().as_str())),
    }
}

/// The `symlink_switch` a `symlink_dir` check looks ahead for.
fn switch_of(step: &PrecheckStep) -> SymlinkSwitchStep {
    SymlinkSwitchStep {
        link: step.link.clone(),
        releases_dir: step.releases_dir.clone(),
    }
}

/// The restore version's release directory exists.
fn symlink_dir(step: &PrecheckStep, ctx: &RollbackContext) -> Result<String, StepError> {
    let plan = symlink::plan(&switch_of(step), ctx)
        .map_err(|error| StepError::permanent(error.message))?;
    let directory = plan.directory.display();
    match std::fs::metadata(&plan.directory) {
        Ok(meta) if meta.is_dir() => Ok(format!("release directory {directory} exists")),
        Ok(_) => Err(StepError::permanent(format!(
            "{directory} is not a directory: nothing to roll back to; nothing was changed"
        ))),
        Err(error) => Err(StepError::permanent(format!(
            "release directory {directory}: {error}: nothing to roll back to; nothing was changed"
        ))),
    }
}

/// The restore version's git tag names a commit.
async fn git_tag(
    step: &PrecheckStep,
    timeout: Duration,
    ctx: &RollbackContext,
) -> Result<String, StepError> {
    let repo = step
        .repo
        .as_deref()
        .ok_or_else(|| StepError::permanent("`target = \"git_tag\"` needs `repo`"))?;
    let tag = &ctx.restore_version;
    let argv = vec![
        GIT.to_owned(),
        "-C".to_owned(),
        repo.display().to_string(),
        "rev-parse".to_owned(),
        "--verify".to_owned(),
        "--quiet".to_owned(),
        format!("refs/tags/{tag}^{{commit}}"),
    ];
    let output = crate::exec::run(CommandSpec::new(argv, timeout))
        .await
        .map_err(|error| StepError::permanent(format!("git rev-parse: {error}")))?;
    let repo = repo.display();
    if !output.success() {
        return Err(StepError::permanent(format!(
            "tag {tag} does not name a commit in {repo} (git rev-parse {}{}): nothing to roll back to; nothing was changed",
            output.status_text(),
            match output.stderr_tail(300) {
                tail if tail.is_empty() => String::new(),
                tail => format!(": {tail}"),
            }
        )));
    }
    Ok(format!(
        "tag {tag} is commit {} in {repo}",
        output.stdout.trim()
    ))
}

/// The Deployment a `kubernetes_revision` check reads.
fn deployment_target(
    step: &PrecheckStep,
    ctx: &RollbackContext,
) -> Result<crate::kubernetes::DeploymentRef, String> {
    let (namespace, deployment) = (step.namespace.as_deref(), step.deployment.as_deref());
    deployment_of(StepKind::Precheck, namespace, deployment, ctx)
}

/// The Deployment has a previous revision that differs from what runs,
/// and the API server accepts the undo to it (dry run: nothing is stored).
async fn kubernetes_revision(
    step: &PrecheckStep,
    timeout: Duration,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
) -> Result<String, StepError> {
    let target = deployment_target(step, ctx).map_err(StepError::permanent)?;
    let check = async {
        let client = deps.kube.get().await?;
        crate::kubernetes::undo(&client, &target, None, true).await
    };
    let stop = |why: String| {
        StepError::permanent(format!(
            "deployment {target}: {why}: nothing to roll back to; nothing was changed"
        ))
    };
    match tokio::time::timeout(timeout, check).await {
        Err(_) => Err(stop(format!(
            "no answer within {}",
            humantime::format_duration(timeout)
        ))),
        Ok(Err(error)) => Err(stop(error.to_string())),
        Ok(Ok(UndoOutcome::AlreadyAt { revision, .. })) => Err(stop(format!(
            "its previous revision {revision} has the template that runs now"
        ))),
        Ok(Ok(UndoOutcome::RolledBack { revision, .. })) => Ok(format!(
            "deployment {target} can roll back to revision {revision} (dry run accepted)"
        )),
    }
}
