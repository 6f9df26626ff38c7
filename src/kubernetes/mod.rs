//! Kubernetes Deployments, changed exactly as `kubectl` 1.32 changes them:
//! `rollout undo` ([`undo()`]), `set image` and `scale` ([`image`]),
//! `rollout status` ([`rollout`]); and the shared, lazily built client
//! ([`client`]).
//!
//! Each operation sends the requests kubectl sends (the oracle tests in
//! `tests/kube_oracle.rs` compare them, and the objects they leave, with the
//! real kubectl's against the fake API server), except where an automatic
//! rollback must do better: a 409 Conflict on the undo's PATCH is retried on
//! a fresh read, and an undo can be sent as a server-side dry run.
//!
//! What bounds the answers read (kube-client reads each one whole): every
//! read is of one named object (`GET deployments/NAME`, and the release
//! source's watch with `fieldSelector=metadata.name=NAME`), except the
//! undo's LIST of ReplicaSets. That one is kubectl's own request (a
//! `labelSelector` of the Deployment's selector, no `limit`, so that the
//! oracle tests can compare it), and its size is bounded by the cluster:
//! the deployment controller keeps a Deployment's old ReplicaSets down to
//! its `revisionHistoryLimit` (10 by default).

pub mod client;
pub mod image;
pub mod rollout;
pub mod undo;

pub use client::KubeClient;
pub use image::{scale, set_image};
pub use rollout::{RolloutState, rollout_state, wait_for_rollout};
pub use undo::{UndoOutcome, undo};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::fmt;

/// The annotation that numbers a Deployment's (and its ReplicaSets')
/// revisions.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The label that ties a ReplicaSet and its pods to one pod template.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// One Deployment, by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRef {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl fmt::Display for DeploymentRef {
    /// `namespace/name`, as operators write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Why a Kubernetes operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No client could be built (no kubeconfig, not in a cluster).
    #[error("cannot build a Kubernetes client: {0}")]
    Client(String),
    /// A patch could not be encoded (a bug, never the cluster's doing).
    #[error("cannot encode the patch: {0}")]
    Encode(#[from] serde_json::Error),
    /// The API server refused a request, or could not be reached.
    #[error("{what}: {source}")]
    Api {
        /// What rollguard asked for (`GET deployment prod/app`).
        what: String,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
    /// The revision asked for is not among the Deployment's ReplicaSets.
    #[error(
        "deployment {deployment}: revision {revision} not found; it has revisions {}",
        list(existing)
    )]
    RevisionNotFound {
        /// The Deployment.
        deployment: DeploymentRef,
        /// The revision asked for.
        revision: i64,
        /// The revisions that exist, oldest first.
        existing: Vec<i64>,
    },
    /// There is no previous revision to go back to.
    #[error(
        "deployment {deployment}: no rollout history to go back to (revisions: {})",
        list(existing)
    )]
    NoHistory {
        /// The Deployment.
        deployment: DeploymentRef,
        /// The revisions that exist.
        existing: Vec<i64>,
    },
    /// kubectl refuses to undo a paused Deployment, and so does rollguard:
    /// the controller would not roll the old template out.
    #[error("deployment {0} is paused; resume it (kubectl rollout resume) before rolling back")]
    Paused(DeploymentRef),
    /// `kubernetes_set_image` named a container the Deployment has not.
    #[error("deployment {deployment} has no container `{container}`; it has {}", existing.join(", "))]
    UnknownContainer {
        /// The Deployment.
        deployment: DeploymentRef,
        /// The container asked for.
        container: String,
        /// Its containers, in order.
        existing: Vec<String>,
    },
    /// Every attempt of the undo's PATCH met a 409 Conflict.
    #[error("deployment {deployment}: the undo met a conflict {attempts} times in a row")]
    Conflicts {
        /// The Deployment.
        deployment: DeploymentRef,
        /// Attempts made.
        attempts: u32,
    },
    /// The rollout failed: the Progressing condition says
    /// ProgressDeadlineExceeded.
    #[error("deployment {0} exceeded its progress deadline")]
    ProgressDeadlineExceeded(DeploymentRef),
    /// The rollout was still going when the wait ran out of time.
    #[error("deployment {deployment} had not rolled out after {}: {last}", humantime::format_duration(*waited))]
    RolloutTimeout {
        /// The Deployment.
        deployment: DeploymentRef,
        /// How long rollguard waited.
        waited: std::time::Duration,
        /// The last state seen, in kubectl's words.
        last: String,
    },
}

impl KubeError {
    /// Whether trying again cannot help: the configuration or the
    /// Deployment's history is wrong, not the network or the server.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            KubeError::RevisionNotFound { .. }
                | KubeError::NoHistory { .. }
                | KubeError::Paused(_)
                | KubeError::UnknownContainer { .. }
        )
    }

    /// An API error, with what was being asked.
    fn api(what: impl Into<String>) -> impl FnOnce(kube::Error) -> KubeError {
        let what = what.into();
        move |source| KubeError::Api { what, source }
    }
}

fn list(revisions: &[i64]) -> String {
    if revisions.is_empty() {
        return "none".to_owned();
    }
    let items: Vec<String> = revisions.iter().map(i64::to_string).collect();
    items.join(", ")
}

/// A LabelSelector as the `labelSelector` query kubectl sends: Go's
/// `metav1.LabelSelectorAsSelector(...).String()`, requirements sorted by
/// key, set values sorted (`app=web,tier in (a,b),!canary`).
pub fn selector_query(selector: &LabelSelector) -> String {
    let mut terms: Vec<(String, String)> = Vec::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        terms.push((key.clone(), format!("{key}={value}")));
    }
    for expression in selector.match_expressions.iter().flatten() {
        let key = &expression.key;
        let mut values = expression.values.clone().unwrap_or_default();
        values.sort();
        let term = match expression.operator.as_str() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other} ({})", values.join(",")),
        };
        terms.push((key.clone(), term));
    }
    terms.sort_by(|a, b| a.0.cmp(&b.0));
    let terms: Vec<String> = terms.into_iter().map(|(_, term)| term).collect();
    terms.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use std::collections::BTreeMap;

    #[test]
    fn selectors_are_written_as_kubectl_writes_them() {
        let requirement = |key: &str, operator: &str, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        };
        let selector = LabelSelector {
            match_labels: Some(BTreeMap::from([
                ("tier".to_owned(), "web".to_owned()),
                ("app".to_owned(), "shop".to_owned()),
            ])),
            match_expressions: Some(vec![
                requirement("zone", "In", &["b", "a"]),
                requirement("canary", "DoesNotExist", &[]),
                requirement("env", "Exists", &[]),
            ]),
        };
        assert_eq!(
            selector_query(&selector),
            "app=shop,!canary,env,tier=web,zone in (a,b)"
        );
        assert_eq!(selector_query(&LabelSelector::default()), "");
    }
}
