//! The `precheck` step: the pre-rollback safety checks of a target whose
//! release source is not a Swarm service (that one has `swarm_precheck`).
//! The checks only read; the executor is `src/pipeline/precheck.rs`.

use serde::Deserialize;
use std::path::PathBuf;

/// The `git` program of a `git_tag` check, looked up on `PATH`.
pub const GIT: &str = "git";

/// What rollback target a `precheck` step checks for.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PrecheckTarget {
    /// The release directory of `{{previous_version}}` exists next to the
    /// one `current` points to (or in `releases_dir`), as `symlink_switch`
    /// would find it.
    SymlinkDir,
    /// The Deployment has a ReplicaSet of an earlier revision to roll back
    /// to, and the API server accepts the undo (a server-side dry run).
    KubernetesRevision,
    /// The git tag `{{previous_version}}` names a commit in `repo`.
    GitTag,
}

impl PrecheckTarget {
    /// The check as the file names it.
    pub fn as_str(self) -> &'static str {
        match self {
            PrecheckTarget::SymlinkDir => "symlink_dir",
            PrecheckTarget::KubernetesRevision => "kubernetes_revision",
            PrecheckTarget::GitTag => "git_tag",
        }
    }
}

/// `kind = "precheck"`: before anything changes, the target still runs the
/// release being rolled back (else someone else already acted), and the
/// rollback target exists. Only reads; a failure always aborts the
/// pipeline and is never retried.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrecheckStep {
    /// Check that the target's release source, read now, still reports
    /// `{{version}}` (the bad release). Default true; an `announce` source
    /// cannot be read, so it needs `running = false`.
    #[serde(default = "yes")]
    pub running: bool,
    /// Also check that the rollback target exists; absent: no such check.
    #[serde(default)]
    pub target: Option<PrecheckTarget>,
    /// `target = "git_tag"`: the git repository holding the tags.
    #[serde(default)]
    pub repo: Option<PathBuf>,
    /// `target = "symlink_dir"`: the `current` link; the symlink release
    /// source's when absent.
    #[serde(default)]
    pub link: Option<PathBuf>,
    /// `target = "symlink_dir"`: the directory of the release directories;
    /// the one holding the link's current target when absent.
    #[serde(default)]
    pub releases_dir: Option<PathBuf>,
    /// `target = "kubernetes_revision"`: the Deployment's namespace; the
    /// kubernetes release source's when absent.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `target = "kubernetes_revision"`: the Deployment; the kubernetes
    /// release source's when absent.
    #[serde(default)]
    pub deployment: Option<String>,
}

/// `running`'s default.
fn yes() -> bool {
    true
}
