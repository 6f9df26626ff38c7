//! `kubectl rollout undo`, as kubectl 1.32 does it (its
//! `polymorphichelpers/rollback.go`): GET the Deployment, LIST ReplicaSets
//! with its selector and keep those it controls, pick the revision, and
//! PATCH (`application/json-patch+json`) its template and annotations back.
//! Unlike kubectl, a 409 Conflict is retried on a fresh read.

use super::{DeploymentRef, KubeError, POD_TEMPLATE_HASH, REVISION, selector_query};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// How many times the PATCH is tried when it meets a 409 Conflict.
const MAX_ATTEMPTS: u32 = 5;

/// Annotations that stay the Deployment's own and are never copied from
/// the ReplicaSet (kubectl's `annotationsToSkip`).
const ANNOTATIONS_TO_SKIP: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// What an undo did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoOutcome {
    /// The Deployment now has revision `revision`'s template (the
    /// controller numbers it as a new revision); with `dry_run`, the API
    /// server accepted the change without storing it.
    RolledBack {
        /// The Deployment.
        deployment: DeploymentRef,
        /// The revision brought back.
        revision: i64,
        /// `container=image` of the template brought back, in order.
        images: Vec<String>,
        /// Whether this was a server-side dry run.
        dry_run: bool,
    },
    /// The Deployment already runs that revision's template: nothing was
    /// sent (kubectl's "skipped rollback").
    AlreadyAt {
        /// The Deployment.
        deployment: DeploymentRef,
        /// The revision asked for.
        revision: i64,
    },
}

impl fmt::Display for UndoOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UndoOutcome::RolledBack {
                deployment,
                revision,
                images,
                dry_run: false,
            } => write!(
                f,
                "rolled back deployment {deployment} to revision {revision} ({})",
                images.join(", ")
            ),
            UndoOutcome::RolledBack {
                deployment,
                revision,
                dry_run: true,
                ..
            } => write!(
                f,
                "the API server accepted a rollback of {deployment} to revision {revision} (dry run)"
            ),
            UndoOutcome::AlreadyAt {
                deployment,
                revision,
            } => write!(
                f,
                "deployment {deployment} already runs the template of revision {revision}; \
                 nothing to roll back (no change sent)"
            ),
        }
    }
}

/// Rolls `target` back to `to_revision`, or to the previous revision when
/// it is `None` (or 0, as kubectl reads `--to-revision=0`). With `dry_run`
/// the PATCH carries `?dryRun=All`: the server validates and answers but
/// stores nothing.
pub async fn undo(
    client: &kube::Client,
    target: &DeploymentRef,
    to_revision: Option<i64>,
    dry_run: bool,
) -> Result<UndoOutcome, KubeError> {
    let to_revision = to_revision.filter(|revision| *revision > 0);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &target.namespace);
    let params = PatchParams {
        dry_run,
        ..PatchParams::default()
    };
    for attempt in 1..=MAX_ATTEMPTS {
        let deployment = deployments
            .get(&target.name)
            .await
            .map_err(KubeError::api(format!("GET deployment {target}")))?;
        if deployment.spec.paused == Some(true) {
            return Err(KubeError::Paused(target.clone()));
        }
        let sets = owned_replica_sets(client, target, &deployment).await?;
        let (revision, set) = pick(target, &sets, to_revision)?;
        let template = set
            .spec
            .template
            .clone()
            .unwrap_or_else(PodTemplateSpec::default);
        if equal_ignoring_hash(&template, &deployment.spec.template) {
            return Ok(UndoOutcome::AlreadyAt {
                deployment: target.clone(),
                revision,
            });
        }
        let patch = Patch::<()>::Json(serde_json::from_value(undo_patch(&deployment, set)?)?);
        match deployments.patch(&target.name, &params, &patch).await {
            Ok(_) => {
                return Ok(UndoOutcome::RolledBack {
                    deployment: target.clone(),
                    revision,
                    images: images(&template),
                    dry_run,
                });
            }
            Err(kube::Error::Api(status)) if status.is_conflict() => {
                tracing::warn!(deployment = %target, attempt, message = %status.message,
                    "Undo met a conflict; reading the Deployment again");
            }
            Err(source) => {
                return Err(KubeError::Api {
                    what: format!("PATCH deployment {target}"),
                    source,
                });
            }
        }
    }
    Err(KubeError::Conflicts {
        deployment: target.clone(),
        attempts: MAX_ATTEMPTS,
    })
}

/// The ReplicaSets that match the Deployment's selector and whose
/// controller is this Deployment (by uid), with their revisions.
///
/// One LIST, as kubectl sends it (without `limit`, which the oracle tests
/// would see): the answer holds the ReplicaSets that match the selector in
/// the namespace, which the deployment controller keeps down to the
/// Deployment's `revisionHistoryLimit` (module documentation).
async fn owned_replica_sets(
    client: &kube::Client,
    target: &DeploymentRef,
    deployment: &Deployment,
) -> Result<Vec<(i64, ReplicaSet)>, KubeError> {
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &target.namespace);
    let selector = selector_query(&deployment.spec.selector);
    let listed = sets
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(KubeError::api(format!("LIST replicasets of {target}")))?;
    let uid = deployment.metadata.uid.as_deref();
    let owned = listed.items.into_iter().filter(|set| {
        let mut owners = set.metadata.owner_references.iter().flatten();
        uid.is_some() && owners.any(|o| o.controller == Some(true) && Some(o.uid.as_str()) == uid)
    });
    // kubectl skips ReplicaSets whose revision does not parse; a missing
    // annotation is revision 0.
    Ok(owned
        .filter_map(|set| revision_of(&set).map(|revision| (revision, set)))
        .collect())
}

fn revision_of(set: &ReplicaSet) -> Option<i64> {
    match set
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
    {
        None => Some(0),
        Some(text) => text.parse().ok(),
    }
}

/// The ReplicaSet of `to_revision`, or of the second-highest revision
/// (kubectl's `deploymentRevision`).
fn pick<'a>(
    target: &DeploymentRef,
    sets: &'a [(i64, ReplicaSet)],
    to_revision: Option<i64>,
) -> Result<(i64, &'a ReplicaSet), KubeError> {
    let mut existing: Vec<i64> = sets.iter().map(|(revision, _)| *revision).collect();
    existing.sort_unstable();
    existing.dedup();
    if let Some(wanted) = to_revision {
        return sets
            .iter()
            .find(|(revision, _)| *revision == wanted)
            .map(|(revision, set)| (*revision, set))
            .ok_or(KubeError::RevisionNotFound {
                deployment: target.clone(),
                revision: wanted,
                existing,
            });
    }
    let mut latest: Option<(i64, &ReplicaSet)> = None;
    let mut previous: Option<(i64, &ReplicaSet)> = None;
    for (revision, set) in sets {
        if latest.is_none_or(|(l, _)| l < *revision) {
            previous = latest;
            latest = Some((*revision, set));
        } else if previous.is_none_or(|(p, _)| p < *revision) {
            previous = Some((*revision, set));
        }
    }
    previous.ok_or(KubeError::NoHistory {
        deployment: target.clone(),
        existing,
    })
}

/// The two operations kubectl sends: the ReplicaSet's template without the
/// `pod-template-hash` label, and the annotations (the Deployment's own
/// bookkeeping ones, plus the ReplicaSet's others).
fn undo_patch(deployment: &Deployment, set: &ReplicaSet) -> Result<Value, KubeError> {
    let mut template = set.spec.template.clone().unwrap_or_default();
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH);
    }
    let mut template = serde_json::to_value(&template)?;
    // kubectl marshals a typed Go object, whose metadata always carries
    // `"creationTimestamp": null`; the server drops it. Sent too, so that
    // the PATCH is byte-for-byte kubectl's.
    if let Some(object) = template.as_object_mut() {
        let metadata = object.entry("metadata").or_insert_with(|| json!({}));
        if let Some(metadata) = metadata.as_object_mut() {
            metadata.insert("creationTimestamp".to_owned(), Value::Null);
        }
    }
    let empty = BTreeMap::new();
    let own = deployment.metadata.annotations.as_ref().unwrap_or(&empty);
    let theirs = set.metadata.annotations.as_ref().unwrap_or(&empty);
    let mut annotations = Map::new();
    for key in ANNOTATIONS_TO_SKIP {
        if let Some(value) = own.get(key) {
            annotations.insert(key.to_owned(), json!(value));
        }
    }
    for (key, value) in theirs {
        if !ANNOTATIONS_TO_SKIP.contains(&key.as_str()) {
            annotations.insert(key.clone(), json!(value));
        }
    }
    Ok(json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]))
}

/// Whether two templates are equal once the `pod-template-hash` label is
/// gone (kubectl's `equalIgnoreHash`; empty and absent label maps are
/// equal, as in Go's semantic equality).
fn equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |template: &PodTemplateSpec| {
        let mut template = template.clone();
        if let Some(meta) = template.metadata.as_mut() {
            if let Some(labels) = meta.labels.as_mut() {
                labels.remove(POD_TEMPLATE_HASH);
            }
            if meta.labels.as_ref().is_some_and(BTreeMap::is_empty) {
                meta.labels = None;
            }
        }
        template
    };
    strip(a) == strip(b)
}

/// `container=image` of each container, in order.
fn images(template: &PodTemplateSpec) -> Vec<String> {
    let containers = template.spec.iter().flat_map(|spec| spec.containers.iter());
    containers
        .map(|c| format!("{}={}", c.name, c.image.as_deref().unwrap_or("")))
        .collect()
}
