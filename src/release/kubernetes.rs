//! The `kubernetes` release source: one Deployment per target, kept in view
//! by kube-runtime's watcher in a background task that the source owns, so
//! that reading the running version is a cheap look at the latest state.
//!
//! A release is a new `deployment.kubernetes.io/revision` with a changed pod
//! template (a scale is not one); its version is the configured container's
//! image tag, or a label or annotation (see [`VersionFrom`]). rollguard
//! marks a Deployment it rolled back with [`ROLLED_BACK_ANNOTATION`], so that
//! every replica, and a new leader, recognises that rollout as rollguard's
//! own and never repeats it.

mod version;

pub use version::{
    REVISION_ANNOTATION, ROLLED_BACK_ANNOTATION, RevisionFilter, RolledBack, VersionFrom,
    image_version, rolled_back, version_of,
};

use super::{SourceError, validate_version};
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// How long the first read waits for the watcher's initial list.
pub const FIRST_LIST_WAIT: Duration = Duration::from_secs(5);

/// What the background task knows of the Deployment.
#[derive(Debug, Clone, PartialEq)]
enum View {
    /// The initial list has not arrived yet.
    Waiting,
    /// The Deployment as last seen.
    Seen {
        /// The version to report (changes only with a new revision).
        version: String,
        /// The Deployment's revision.
        revision: Option<String>,
        /// rollguard's mark, if any.
        mark: Option<RolledBack>,
    },
    /// Why no version can be read now.
    Failed(String),
}

/// Aborts the watcher task when the last clone of the source is dropped.
#[derive(Debug)]
struct TaskGuard(tokio::task::AbortHandle);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A Deployment watched in the background.
#[derive(Debug, Clone)]
pub struct KubernetesSource {
    /// Client of the Deployment's namespace (for the rollback mark).
    api: Api<Deployment>,
    /// Namespace of the Deployment.
    namespace: String,
    /// Name of the Deployment.
    deployment: String,
    /// The watcher's latest view.
    view: watch::Receiver<View>,
    /// Ends the watcher with the source.
    _task: Arc<TaskGuard>,
}

impl KubernetesSource {
    /// Starts watching `namespace/deployment` with `client`. Needs a tokio
    /// runtime; outside one it is an error, never a panic.
    pub fn start(
        client: kube::Client,
        namespace: &str,
        deployment: &str,
        from: VersionFrom,
    ) -> Result<KubernetesSource, SourceError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| SourceError::Kubernetes {
                namespace: namespace.to_owned(),
                deployment: deployment.to_owned(),
                reason: "no async runtime to watch it from".to_owned(),
            })?;
        let api: Api<Deployment> = Api::namespaced(client, namespace);
        let (tx, view) = watch::channel(View::Waiting);
        let task = runtime.spawn(watch_deployment(
            api.clone(),
            namespace.to_owned(),
            deployment.to_owned(),
            from,
            tx,
        ));
        Ok(KubernetesSource {
            api,
            namespace: namespace.to_owned(),
            deployment: deployment.to_owned(),
            view,
            _task: Arc::new(TaskGuard(task.abort_handle())),
        })
    }

    fn error(&self, reason: impl Into<String>) -> SourceError {
        SourceError::Kubernetes {
            namespace: self.namespace.clone(),
            deployment: self.deployment.clone(),
            reason: reason.into(),
        }
    }

    /// The version running, as of the last revision with a new template.
    /// The first call waits up to [`FIRST_LIST_WAIT`] for the initial list.
    pub async fn current_version(&self) -> Result<String, SourceError> {
        let mut view = self.view.clone();
        let waited = tokio::time::timeout(
            FIRST_LIST_WAIT,
            view.wait_for(|v| !matches!(v, View::Waiting)),
        )
        .await;
        if waited.is_err() {
            return Err(self.error(format!(
                "no answer from the Kubernetes API within {FIRST_LIST_WAIT:?}"
            )));
        }
        let seen = self.view.borrow().clone();
        match seen {
            View::Seen { version, .. } => Ok(version),
            View::Failed(reason) => Err(self.error(reason)),
            View::Waiting => Err(self.error("the watcher stopped")),
        }
    }

    /// rollguard's rollback mark, when it applies to what runs now: written
    /// at the current revision (or, on a mark without one, no older than
    /// the tracker's rollback expiry) and to the version running.
    pub fn rolled_back(&self) -> Option<RolledBack> {
        let View::Seen {
            version,
            revision,
            mark: Some(mark),
        } = &*self.view.borrow()
        else {
            return None;
        };
        let current = match &mark.revision {
            Some(at) => Some(at) == revision.as_ref(),
            None => humantime::parse_rfc3339_weak(&mark.at)
                .ok()
                .and_then(|at| SystemTime::now().duration_since(at).ok())
                .is_some_and(|age| age <= super::tracker::DEFAULT_ROLLBACK_EXPIRY),
        };
        (current && mark.to == *version).then(|| mark.clone())
    }

    /// Writes rollguard's rollback mark on the Deployment (a JSON merge
    /// patch, pinned to the resourceVersion read, retried on conflict), at
    /// the revision it has now.
    pub async fn mark_rolled_back(
        &self,
        release_id: &str,
        from: &str,
        to: &str,
        at: SystemTime,
    ) -> Result<(), SourceError> {
        let mut last = String::new();
        for _ in 0..3 {
            let deployment = self
                .api
                .get(&self.deployment)
                .await
                .map_err(|e| self.error(format!("cannot read it to mark the rollback: {e}")))?;
            let mark = RolledBack {
                release_id: release_id.to_owned(),
                from: from.to_owned(),
                to: to.to_owned(),
                at: humantime::format_rfc3339_seconds(at).to_string(),
                revision: version::revision(&deployment),
            };
            let text = serde_json::to_string(&mark).unwrap_or_default();
            let patch = serde_json::json!({"metadata": {
                "resourceVersion": deployment.metadata.resource_version,
                "annotations": {ROLLED_BACK_ANNOTATION: text},
            }});
            let params = PatchParams::default();
            match self
                .api
                .patch(&self.deployment, &params, &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    last = status.message;
                }
                Err(e) => return Err(self.error(format!("cannot mark the rollback: {e}"))),
            }
        }
        Err(self.error(format!("cannot mark the rollback: {last}")))
    }
}

/// The background task: the watcher's events turned into [`View`]s. The
/// field selector on the name keeps every list and watch answer to the one
/// Deployment, so what is read does not grow with the namespace.
async fn watch_deployment(
    api: Api<Deployment>,
    namespace: String,
    name: String,
    from: VersionFrom,
    view: watch::Sender<View>,
) {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut filter = RevisionFilter::default();
    let mut initial: Option<Deployment> = None;
    let missing = format!("deployment {namespace}/{name} does not exist");
    while let Some(event) = events.next().await {
        let seen = match event {
            Ok(watcher::Event::Init) => {
                initial = None;
                continue;
            }
            Ok(watcher::Event::InitApply(deployment)) => {
                initial = Some(deployment);
                continue;
            }
            Ok(watcher::Event::InitDone) => match initial.take() {
                Some(deployment) => Some(deployment),
                None => {
                    view.send_replace(View::Failed(missing.clone()));
                    continue;
                }
            },
            Ok(watcher::Event::Apply(deployment)) => Some(deployment),
            Ok(watcher::Event::Delete(_)) => None,
            Err(error) => {
                let reason = format!("cannot watch it: {error}");
                tracing::debug!(%namespace, deployment = %name, %reason, "Watcher error; retrying");
                view.send_replace(View::Failed(reason));
                continue;
            }
        };
        let next = match seen {
            None => View::Failed(missing.clone()),
            Some(deployment) => match version_of(&deployment, &from)
                .and_then(|v| validate_version(&v).map_err(|e| e.to_string()))
            {
                Ok(version) => View::Seen {
                    version: filter.accept(&deployment, version),
                    revision: version::revision(&deployment),
                    mark: rolled_back(&deployment),
                },
                Err(reason) => View::Failed(reason),
            },
        };
        view.send_if_modified(|current| {
            let changed = *current != next;
            *current = next;
            changed
        });
    }
}
