//! `[[target.step]]`: one step of the rollback pipeline. The keys every step
//! has are in [`StepCommon`]; `kind` chooses a [`StepAction`], each kind a
//! struct with only its own keys, so that a key the kind does not use is
//! an error serde itself finds, with its path and line.
//!
//! Adding a step kind: its struct here and one line in [`StepAction`]'s
//! list, an executor in `src/pipeline/`, one arm in the runner's dispatch,
//! and its keys in docs/configuration.md. A kind that changes the running
//! version also goes in [`StepKind::changes_version`], so that validation
//! keeps it after every `backup` step.

use super::defaults;
use super::tagged::{self, tagged_kinds};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// `[[target.step]]`: the keys every step has, and what its kind does.
#[derive(Debug, Clone, PartialEq)]
pub struct StepConfig {
    /// Phase, name, time limit, retries and failure handling.
    pub common: StepCommon,
    /// The kind, with its own keys.
    pub action: StepAction,
}

impl StepConfig {
    /// Which kind the step is.
    pub fn kind(&self) -> StepKind {
        self.action.kind()
    }

    /// What its failure does to the pipeline: its `on_failure`, except that
    /// a `backup` that failed always aborts, since the steps after it would
    /// change the running version with no backup of the data, and so does a
    /// failed `precheck` (someone else acted, or there is nothing to roll
    /// back to).
    pub fn on_failure(&self) -> OnFailure {
        match self.kind() {
            StepKind::Backup | StepKind::Precheck => OnFailure::Abort,
            _ => self.common.on_failure,
        }
    }
}

impl StepKind {
    /// Whether a step of this kind changes the version that runs (or, for
    /// `systemd_restart`, makes a switched release the one running): such
    /// steps must come after every `backup` step. A `command` step is not
    /// known to, whatever its program does; put it in a phase after the
    /// backup's.
    pub fn changes_version(self) -> bool {
        matches!(
            self,
            StepKind::SymlinkSwitch
                | StepKind::SystemdRestart
                | StepKind::KubernetesUndo
                | StepKind::KubernetesSetImage
                | StepKind::SwarmRollback
                | StepKind::SwarmSetImage
                | StepKind::BluegreenSwitch
                | StepKind::ConfigRestore
        )
    }
}

impl<'de> Deserialize<'de> for StepConfig {
    /// Reads a whole step table (for tests and fixtures); the configuration
    /// loader reads steps key by key instead, to locate every error.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = toml::Table::deserialize(deserializer)?;
        let read_common = |t: toml::Table| StepCommon::deserialize(toml::Value::Table(t));
        tagged::from_table::<StepAction, _>(table, StepCommon::keys(), read_common)
            .map(|(common, action)| StepConfig { common, action })
            .map_err(serde::de::Error::custom)
    }
}

/// The keys of `[[target.step]]` that every kind has.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StepCommon {
    /// Runbook phase; steps run in phase order, then file order.
    pub phase: Phase,
    /// Name in the timeline and notifications; `kind` when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Time limit of one attempt.
    #[serde(default = "defaults::step_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Further attempts after a failure.
    #[serde(default)]
    pub retries: u32,
    /// Wait before the first retry; doubled for each next one.
    #[serde(default = "defaults::backoff", with = "humantime_serde")]
    pub backoff: Duration,
    /// What a failure of this step does to the pipeline.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Run this step on the way out however the pipeline ends (completed,
    /// failed, aborted, stopped by a shutdown, or found cut short after a
    /// crash), as every step of the `restore` and `cleanup` phases is: what
    /// undoes an earlier step (the undrain of a drain) must not be skipped
    /// because a step in between failed.
    #[serde(default)]
    pub always: bool,
}

impl StepCommon {
    /// Whether the step is guaranteed to run (`finally`): `always = true`,
    /// or a step of the `restore` or `cleanup` phase.
    pub fn guaranteed(&self) -> bool {
        self.always || matches!(self.phase, Phase::Restore | Phase::Cleanup)
    }

    /// The keys above, as the file names them.
    pub(crate) fn keys() -> &'static [&'static str] {
        tagged::fields_of::<StepCommon>()
    }
}

tagged_kinds! {
    /// What a step does: its `kind`, with that kind's own keys.
    pub enum StepAction;
    /// Kinds of pipeline step, without their keys (timelines, journals).
    pub enum StepKind;
    what = "step";
    not_yet = [];
    /// Run a program (never through a shell).
    Command(CommandStep) = "command",
    /// Send an HTTP request.
    Http(HttpStep) = "http",
    /// Atomically repoint a `current` symlink to the previous release.
    SymlinkSwitch(SymlinkSwitchStep) = "symlink_switch",
    /// Restart a systemd unit and wait until it is active.
    SystemdRestart(SystemdRestartStep) = "systemd_restart",
    /// Wait a fixed time.
    Wait(WaitStep) = "wait",
    /// Re-run probes and metrics until they are back to baseline.
    Verify(VerifyStep) = "verify",
    /// `kubectl rollout undo`.
    KubernetesUndo(KubernetesUndoStep) = "kubernetes_undo",
    /// `kubectl set image`.
    KubernetesSetImage(KubernetesSetImageStep) = "kubernetes_set_image",
    /// `kubectl scale`.
    KubernetesScale(KubernetesScaleStep) = "kubernetes_scale",
    /// `kubectl rollout status`.
    KubernetesRolloutStatus(KubernetesRolloutStatusStep) = "kubernetes_rollout_status",
    /// Back up the data (a program, as `command`) before anything changes
    /// the running version: validation keeps every version-changing step
    /// after it, and its failure always aborts the pipeline.
    Backup(CommandStep) = "backup",
    /// The Swarm service still runs the bad release, and its previous spec
    /// the one to bring back.
    SwarmPrecheck(super::SwarmPrecheckStep) = "swarm_precheck",
    /// `docker service update --rollback`, until converged.
    SwarmRollback(super::SwarmRollbackStep) = "swarm_rollback",
    /// `docker service update --image`, until converged.
    SwarmSetImage(super::SwarmSetImageStep) = "swarm_set_image",
    /// The target still runs the bad release, and the rollback target
    /// exists (a release directory, a Kubernetes revision, a git tag).
    Precheck(super::PrecheckStep) = "precheck",
    /// Flip blue-green to the other colour once it answers its probes.
    BluegreenSwitch(super::BlueGreenSwitchStep) = "bluegreen_switch",
    /// Bring back the previous version's configuration directory.
    ConfigRestore(super::ConfigRestoreStep) = "config_restore",
}

impl StepAction {
    /// The Deployment keys of a `kubernetes_*` step (`namespace`,
    /// `deployment`, each the release source's when absent); `None` for
    /// other kinds.
    pub fn deployment_keys(&self) -> Option<(Option<&str>, Option<&str>)> {
        let (namespace, deployment) = match self {
            StepAction::KubernetesUndo(s) => (&s.namespace, &s.deployment),
            StepAction::KubernetesSetImage(s) => (&s.namespace, &s.deployment),
            StepAction::KubernetesScale(s) => (&s.namespace, &s.deployment),
            StepAction::KubernetesRolloutStatus(s) => (&s.namespace, &s.deployment),
            _ => return None,
        };
        Some((namespace.as_deref(), deployment.as_deref()))
    }
}

/// `kind = "command"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CommandStep {
    /// Program and arguments (templates allowed, never a shell).
    pub argv: Vec<String>,
    /// Extra environment (values are templates).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory; the daemon's when absent.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

/// `kind = "http"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpStep {
    /// Method; POST when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// URL (templates allowed); this or `url_env`.
    #[serde(default)]
    pub url: Option<String>,
    /// Environment variable holding the URL, when it is a secret.
    #[serde(default)]
    pub url_env: Option<String>,
    /// Headers whose values come from environment variables (tokens).
    #[serde(default)]
    pub headers_env: BTreeMap<String, String>,
    /// File holding a token sent as `Authorization: Bearer <token>` (a
    /// feature flag service's API token): read at each attempt, never
    /// logged or described; `check` reads it too.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// Request body (templates allowed).
    #[serde(default)]
    pub body: Option<String>,
    /// Statuses that count as success; any 2xx when absent.
    #[serde(default)]
    pub expect_status: Option<Vec<u16>>,
}

/// `kind = "symlink_switch"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SymlinkSwitchStep {
    /// The `current` link to repoint; the symlink release source's when
    /// absent.
    #[serde(default)]
    pub link: Option<PathBuf>,
    /// Directory holding the release directories; the one holding the
    /// link's current target when absent.
    #[serde(default)]
    pub releases_dir: Option<PathBuf>,
}

/// `kind = "systemd_restart"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SystemdRestartStep {
    /// Unit to restart.
    pub unit: String,
}

/// `kind = "wait"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WaitStep {
    /// How long.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
}

/// `kind = "verify"`: no keys of its own; `timeout` bounds it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VerifyStep {}

/// `kind = "kubernetes_undo"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesUndoStep {
    /// Namespace; the release source's when absent.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Deployment; the release source's when absent.
    #[serde(default)]
    pub deployment: Option<String>,
    /// Revision to go back to; the previous one when absent.
    #[serde(default)]
    pub to_revision: Option<u64>,
}

/// `kind = "kubernetes_set_image"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSetImageStep {
    /// Namespace; the release source's when absent.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Deployment; the release source's when absent.
    #[serde(default)]
    pub deployment: Option<String>,
    /// Container whose image is set.
    pub container: String,
    /// Image (templates allowed).
    pub image: String,
}

/// `kind = "kubernetes_scale"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesScaleStep {
    /// Namespace; the release source's when absent.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Deployment; the release source's when absent.
    #[serde(default)]
    pub deployment: Option<String>,
    /// Replicas to scale to.
    pub replicas: u32,
}

/// `kind = "kubernetes_rollout_status"`: `timeout` bounds the wait.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesRolloutStatusStep {
    /// Namespace; the release source's when absent.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Deployment; the release source's when absent.
    #[serde(default)]
    pub deployment: Option<String>,
}

/// The runbook's phases, in the order they run.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Tell people a rollback starts.
    Notify,
    /// Check that rolling back is possible.
    Precheck,
    /// Database work (backups, down-migrations).
    Database,
    /// Drain or shift traffic.
    Traffic,
    /// Bring the previous version back.
    Rollback,
    /// Configuration that goes with the previous version.
    Config,
    /// Check that the service is back to normal.
    Verify,
    /// Restore traffic.
    Restore,
    /// Write the incident report.
    Report,
    /// Tidy up.
    Cleanup,
}

/// What a failed step does to the pipeline.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Stop the pipeline; the rollback has failed.
    #[default]
    Abort,
    /// Record the failure and go on.
    Continue,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tagged::Tagged;

    #[test]
    fn a_step_reads_its_common_keys_and_its_kind_s_own() {
        let step: StepConfig =
            toml::from_str("phase = 'rollback'\nkind = 'wait'\nduration = '3s'\nretries = 2")
                .expect("a valid step");
        assert_eq!(step.common.retries, 2);
        assert_eq!(
            step.action,
            StepAction::Wait(WaitStep {
                duration: Duration::from_secs(3)
            })
        );
        let unused = toml::from_str::<StepConfig>(
            "phase = 'rollback'\nkind = 'wait'\nduration = '3s'\nunit = 'a'",
        )
        .expect_err("unit is not a wait key");
        assert!(
            unused
                .message()
                .contains("`unit` is not used by step kind `wait`"),
            "{unused}"
        );
        let swarm = toml::from_str::<StepConfig>("phase = 'rollback'\nkind = 'swarm_rollback'")
            .expect_err("no service");
        assert!(
            swarm
                .message()
                .contains("step kind `swarm_rollback` needs `service`"),
            "{swarm}"
        );
    }

    #[test]
    fn every_kind_s_keys_are_known() {
        for kind in StepAction::kinds() {
            let keys = StepAction::kind_keys(*kind);
            for common in StepCommon::keys() {
                assert!(
                    !keys.contains(common),
                    "{} repeats `{common}`",
                    kind.as_str()
                );
            }
        }
        assert_eq!(
            StepAction::kind_keys(StepKind::Command),
            &["argv", "env", "cwd"]
        );
    }
}
