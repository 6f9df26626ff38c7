//! The rollback pipeline: a target's steps, run in runbook phase order, each
//! journaled before it acts, with time limits, retries and `on_failure`.
//!
//! Only this module knows what a mode means for a step: the daemon asks
//! [`preview()`] what a rollback would do (in shadow mode that includes each
//! step's server-side dry run, [`has_dry_run`]) and, in shadow mode, never
//! [`run`]; [`run`] must only be called when a rollback is to happen for
//! real (`enforce`, or `approve` once a human approved).
//!
//! Step kinds live in their own files: [`command`], [`http`], [`symlink`],
//! [`systemd`], [`wait`] (`wait` and `verify`), [`kubernetes`] (the
//! `kubernetes_*` kinds, and the server-side [`dry_run`] of an undo that
//! shadow mode sends) and [`swarm`] (`swarm_rollback`, `swarm_set_image`,
//! and the contract with `docker` they keep; `swarm_precheck` in
//! `swarm_precheck.rs`) and `precheck.rs` (`precheck`, the safety checks of
//! the other targets), [`bluegreen`] (`bluegreen_switch`: probe the other
//! colour, refuse an unhealthy one, flip) and [`config_restore`] (the
//! previous version's configuration directory). The runner is in
//! `runner.rs`, the journal hooks in `hooks.rs`, descriptions in
//! `describe.rs`, previews in `preview.rs`.

pub mod bluegreen;
pub mod command;
pub mod config_restore;
mod describe;
mod hooks;
pub mod http;
pub mod kubernetes;
mod precheck;
mod preview;
mod runner;
pub mod swarm;
mod swarm_precheck;
pub mod symlink;
pub mod systemd;
#[cfg(test)]
mod tests_time;
pub mod wait;

pub use describe::describe;
pub use hooks::{BoxFuture, PipelineHooks};
pub use kubernetes::dry_run;
pub use preview::{Preview, has_dry_run, preview};
pub use runner::{run, upper_bound};
pub use wait::{Verifier, VerifyResult};

use crate::config::{Environment, ReleaseConfig, StepConfig, StepKind};
use crate::kubernetes::KubeClient;
use crate::model::Mode;
use crate::model::StepOutcome;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What a rollback is about: which release is undone, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackContext {
    /// The target's name (`{{target}}`, `ROLLGUARD_TARGET`).
    pub target: String,
    /// The bad release's version, the one being rolled back
    /// (`{{version}}`, `ROLLGUARD_FROM_VERSION`).
    pub bad_version: String,
    /// The version being brought back (`{{previous_version}}`,
    /// `ROLLGUARD_TO_VERSION`).
    pub restore_version: String,
    /// The journal's id of the bad release (`{{release_id}}`,
    /// `ROLLGUARD_RELEASE_ID`).
    pub release_id: String,
    /// The target's mode when the rollback was decided (`{{mode}}`,
    /// `ROLLGUARD_MODE`).
    pub mode: Mode,
    /// Why: the decision's reasons in one line (`ROLLGUARD_REASON`).
    pub reason: String,
    /// When the rollback started (`{{timestamp}}`): one time for every
    /// step and attempt, so that a backup's name does not change between
    /// retries.
    pub started_at: SystemTime,
    /// The release source's symlink, when the source is `symlink`: the link a
    /// `symlink_switch` step without its own `link` repoints.
    pub link_hint: Option<PathBuf>,
    /// The release source's namespace, when the source is `kubernetes`:
    /// the namespace of a `kubernetes_*` step without its own.
    pub namespace_hint: Option<String>,
    /// The release source's Deployment, when the source is `kubernetes`:
    /// the Deployment of a `kubernetes_*` step without its own.
    pub deployment_hint: Option<String>,
    /// The target's release source, which a `precheck` step reads to see
    /// that the bad release still runs; `None` when the caller has none.
    pub release_hint: Option<ReleaseConfig>,
}

#[cfg(test)]
impl RollbackContext {
    /// The unit tests' rollback of `api` from `v2` to `v1` (release `r1`),
    /// started at 2024-01-15T12:00:00Z, with no release source hints.
    pub(crate) fn fixture(mode: Mode) -> RollbackContext {
        RollbackContext {
            target: "api".into(),
            bad_version: "v2".into(),
            restore_version: "v1".into(),
            release_id: "r1".into(),
            mode,
            reason: String::new(),
            started_at: std::time::SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs(1_705_320_000),
            link_hint: None,
            namespace_hint: None,
            deployment_hint: None,
            release_hint: None,
        }
    }
}

impl RollbackContext {
    /// The context of a rollback of `target` from `bad_version` to
    /// `restore_version`, with the release source's link, namespace and
    /// Deployment as the hints steps without their own fall back to.
    pub fn for_target(
        target: &crate::config::TargetConfig,
        release_id: &str,
        versions: (&str, &str),
        mode: Mode,
        reason: &str,
        started_at: SystemTime,
    ) -> RollbackContext {
        let (bad_version, restore_version) = versions;
        RollbackContext {
            target: target.name.clone(),
            bad_version: bad_version.to_owned(),
            restore_version: restore_version.to_owned(),
            release_id: release_id.to_owned(),
            mode,
            reason: reason.to_owned(),
            started_at,
            link_hint: target.release.path().map(Into::into),
            namespace_hint: target.release.namespace().map(Into::into),
            deployment_hint: target.release.deployment().map(Into::into),
            release_hint: Some(target.release.clone()),
        }
    }

    /// The template variables of steps ([`STEP_VARIABLES`](crate::template::STEP_VARIABLES)):
    /// `{{version}}` is the bad version, `{{previous_version}}` the one
    /// rolled back to (as in `deploy-version {{previous_version}}`),
    /// `{{timestamp}}` the rollback's start.
    pub fn vars(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("target", self.target.clone()),
            ("version", self.bad_version.clone()),
            ("previous_version", self.restore_version.clone()),
            ("release_id", self.release_id.clone()),
            ("mode", self.mode.as_str().to_owned()),
            ("timestamp", crate::time::compact_utc(self.started_at)),
        ])
    }

    /// The `ROLLGUARD_*` variables every command step gets (DESIGN.md).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("ROLLGUARD_TARGET", &self.target),
            ("ROLLGUARD_FROM_VERSION", &self.bad_version),
            ("ROLLGUARD_TO_VERSION", &self.restore_version),
            ("ROLLGUARD_RELEASE_ID", &self.release_id),
            ("ROLLGUARD_MODE", &self.mode.as_str().to_owned()),
            ("ROLLGUARD_REASON", &self.reason),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
    }
}

/// What the steps need from the daemon; built once, shared by every run.
#[derive(Clone)]
pub struct PipelineDeps {
    /// The shared HTTP client (`http::http_client`).
    pub http: reqwest::Client,
    /// Where `url_env` and `headers_env` values come from; a map in tests.
    pub env: Arc<dyn Environment + Send + Sync>,
    /// The `systemctl` program of `systemd_restart` steps; a fake in tests.
    pub systemctl: PathBuf,
    /// What `verify` steps ask; without one they fail.
    pub verifier: Option<Arc<dyn Verifier>>,
    /// How often `systemd_restart` asks `is-active` and `verify` asks the
    /// verifier.
    pub poll_interval: Duration,
    /// The Kubernetes client of `kubernetes_*` steps, built on first use
    /// and shared (the daemon passes one handle to every rollback).
    pub kube: KubeClient,
}

impl PipelineDeps {
    /// Deps with the real `systemctl`, no verifier, a 1 s poll and a
    /// Kubernetes client from kube's defaults (kubeconfig, else in-cluster).
    pub fn new(http: reqwest::Client, env: Arc<dyn Environment + Send + Sync>) -> Self {
        PipelineDeps {
            http,
            env,
            systemctl: PathBuf::from("/usr/bin/systemctl"),
            verifier: None,
            poll_interval: Duration::from_secs(1),
            kube: KubeClient::from_defaults(),
        }
    }
}

impl std::fmt::Debug for PipelineDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineDeps")
            .field("systemctl", &self.systemctl)
            .field("verifier", &self.verifier.is_some())
            .field("poll_interval", &self.poll_interval)
            .field("kube", &self.kube)
            .finish_non_exhaustive()
    }
}

/// One step in the incident timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// The step's name ([`step_name`]).
    pub name: String,
    /// Its kind.
    pub kind: StepKind,
    /// What it does, as [`describe`] says it.
    pub description: String,
    /// How its last attempt ended.
    pub outcome: StepOutcome,
    /// Attempts made.
    pub attempts: u32,
    /// From the first attempt's start to the last one's end, backoff
    /// included.
    pub duration: Duration,
    /// The last attempt's message (error, stderr tail, what was done).
    pub message: Option<String>,
    /// Whether it is a guaranteed (`finally`) step
    /// ([`StepCommon::guaranteed`](crate::config::StepCommon::guaranteed)),
    /// run however the pipeline ended: its failure is escalated.
    pub guaranteed: bool,
}

/// How a pipeline run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineOutcome {
    /// Every step ran (some `on_failure = "continue"` ones may have failed).
    Completed {
        /// Whether a `verify` step saw the target back to baseline; when
        /// false the daemon runs its own verification window, since a
        /// rollback is complete only when verified.
        verified: bool,
        /// The timeline.
        steps: Vec<StepReport>,
    },
    /// A step with `on_failure = "abort"` failed, or a step could not be
    /// journaled; after it only the guaranteed steps ran. The first such
    /// failure is the one named: a guaranteed step failing afterwards does
    /// not hide it.
    Failed {
        /// The step's name.
        step: String,
        /// Why.
        message: String,
        /// The timeline: the failed step, then the guaranteed steps that
        /// ran after it.
        steps: Vec<StepReport>,
    },
    /// The daemon is stopping: no further step or attempt was started,
    /// except the guaranteed steps, which ran on the way out.
    Interrupted {
        /// The step that was about to start, or the `wait`/`verify` step
        /// that was cut short (then it is in `steps`, before the guaranteed
        /// steps that ran after it).
        step: String,
        /// The timeline so far.
        steps: Vec<StepReport>,
    },
}

impl PipelineOutcome {
    /// The timeline.
    pub fn steps(&self) -> &[StepReport] {
        match self {
            PipelineOutcome::Completed { steps, .. }
            | PipelineOutcome::Failed { steps, .. }
            | PipelineOutcome::Interrupted { steps, .. } => steps,
        }
    }

    /// The guaranteed (`restore`, `cleanup`, `always`) steps that did not
    /// end well: each one is escalated, since the service may be left
    /// drained or in maintenance.
    pub fn restore_failures(&self) -> impl Iterator<Item = &StepReport> {
        self.steps()
            .iter()
            .filter(|step| step.guaranteed && step.outcome != StepOutcome::Ok)
    }

    /// The journal's word for it (`RollbackFinished.outcome`): `ok`
    /// (completed and verified), `unverified`, `aborted` or `interrupted`.
    pub fn label(&self) -> &'static str {
        match self {
            PipelineOutcome::Completed { verified: true, .. } => "ok",
            PipelineOutcome::Completed {
                verified: false, ..
            } => "unverified",
            PipelineOutcome::Failed { .. } => "aborted",
            PipelineOutcome::Interrupted { .. } => "interrupted",
        }
    }
}

/// The steps in the order they run: by phase, then as written (stable).
pub fn ordered(steps: &[StepConfig]) -> Vec<&StepConfig> {
    let mut ordered: Vec<&StepConfig> = steps.iter().collect();
    ordered.sort_by_key(|step| step.common.phase);
    ordered
}

/// A step's name in the journal and the timeline: its `name`, else its kind.
pub fn step_name(step: &StepConfig) -> String {
    step.common
        .name
        .clone()
        .unwrap_or_else(|| step.kind().as_str().to_owned())
}

/// How one attempt of a step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    /// `Failed`, `TimedOut` or `Interrupted`.
    pub outcome: StepOutcome,
    /// Why, for the journal and the timeline.
    pub message: String,
    /// Whether another attempt could help; a step that cannot even be
    /// rendered or is not supported is not retried.
    pub retryable: bool,
}

impl StepError {
    /// A failure that another attempt may not repeat (the target may have
    /// been busy, the network down): retried when the step has retries.
    pub fn failed(message: impl Into<String>) -> Self {
        StepError {
            outcome: StepOutcome::Failed,
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure of the step's configuration: retrying cannot help.
    pub fn permanent(message: impl Into<String>) -> Self {
        StepError {
            outcome: StepOutcome::Failed,
            message: message.into(),
            retryable: false,
        }
    }

    /// The attempt ran out of time.
    pub fn timed_out(message: impl Into<String>) -> Self {
        StepError {
            outcome: StepOutcome::TimedOut,
            message: message.into(),
            retryable: true,
        }
    }

    /// The daemon is stopping and the step stopped waiting.
    pub fn interrupted(message: impl Into<String>) -> Self {
        StepError {
            outcome: StepOutcome::Interrupted,
            message: message.into(),
            retryable: false,
        }
    }
}

/// What one attempt returns: a message worth keeping on success.
pub type StepResult = Result<Option<String>, StepError>;

/// Renders `text` with the context's variables, as a permanent failure.
fn render(text: &str, vars: &BTreeMap<&'static str, String>) -> Result<String, StepError> {
    rendered(text, crate::template::render(text, vars))
}

/// A rendering of `text`, its failure as a permanent step failure.
fn rendered(
    text: &str,
    result: Result<String, crate::template::TemplateError>,
) -> Result<String, StepError> {
    result.map_err(|error| StepError::permanent(format!("cannot render `{text}`: {error}")))
}

/// Resolves when `stop` turns true; never when the daemon side is gone.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|stopping| *stopping).await.is_err() {
        std::future::pending::<()>().await;
    }
}
