//! A fake Kubernetes API server for tests: Deployments, ReplicaSets and
//! Leases over plain HTTP on 127.0.0.1:0, with a simulated Deployment
//! controller, faithful enough for the real `kubectl` to talk to it.
//!
//! Tests drive it through [`FakeCluster`]: `start()`, `kubeconfig(dir)`,
//! helpers that act as a client would (`create_deployment`,
//! `create_history`, `set_image`, `patch_deployment`, `replay`), readers (`deployment`, `replica_sets`, `lease`,
//! `requests`), and knobs (`stall_rollouts`, `set_rollout_delay`,
//! `converge`, `fail_next_patch_with_conflict`). The fake knows nothing of
//! rollguard, so that it stays a stand-in for a cluster. Not simulated:
//! pods, `spec.paused` in the controller (a paused Deployment still rolls
//! out), `revisionHistoryLimit` cleanup, server-side apply (415), protobuf
//! (kubectl's typed clients accept JSON too), OpenAPI documents.
//!
//! # What kubectl 1.32 sends (recorded by `tests/kube_fake.rs`)
//!
//! Discovery first, every time: `GET /api` and `GET /apis` with an
//! aggregated-discovery `Accept`
//! (`application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,...,application/json`);
//! a plain `application/json` answer makes kubectl fall back to `GET
//! /api/v1`, `/apis/apps/v1`, `/apis/coordination.k8s.io/v1` (in any
//! order). A cold `--cache-dir` adds `GET /version?timeout=5s`. With
//! `--request-timeout=10s` kubectl adds `timeout=10s` to its queries, except
//! on the ReplicaSet LIST of `rollout history|undo`. Paths below are under
//! `/apis/apps/v1/namespaces/default/`.
//!
//! - `get deployment web -o json`: `GET deployments/web`.
//! - `rollout history deployment/web`: `GET deployments/web` twice (the
//!   resource builder, then the typed client, `Accept:
//!   application/vnd.kubernetes.protobuf,application/json`), then `GET
//!   replicasets?labelSelector=app%3Dweb` (the Deployment's selector);
//!   ownership (controller ownerReference uid) is checked client-side.
//! - `rollout undo deployment/web [--to-revision=N]`: the same three GETs,
//!   then `PATCH deployments/web?timeout=10s`, `Content-Type:
//!   application/json-patch+json`, no fieldManager, body
//!   `[{"op":"replace","path":"/spec/template","value":T},
//!     {"op":"replace","path":"/metadata/annotations","value":A}]`
//!   where T is the target ReplicaSet's template without the
//!   `pod-template-hash` label and with `"creationTimestamp":null` in its
//!   metadata (a typed Go marshal: defaults such as `resources: {}` stay),
//!   and A is the Deployment's own `revision`, `revision-history` and
//!   `last-applied-configuration` annotations (those it has) plus every
//!   ReplicaSet annotation except those and `desired-replicas`,
//!   `max-replicas`. The target is revision N, or without N the
//!   second-highest revision. Template already equal: no PATCH, exit 0,
//!   `deployment.apps/web skipped rollback (current template already matches
//!   revision N)`. Missing N: no PATCH, exit 1, `error: unable to find
//!   specified revision N in history`; a single revision: `error: no rollout
//!   history found for deployment "web"`. A paused Deployment: no PATCH,
//!   exit 1, `you cannot rollback a paused deployment; ...` (kubectl checks
//!   `spec.paused` itself). A 409 is not retried (exit 1).
//! - `rollout undo ... --dry-run=server`: the same PATCH with
//!   `?dryRun=All&timeout=10s`; prints `... rolled back (server dry run)`.
//! - `rollout status deployment/web`: `GET deployments/web`, then `GET
//!   deployments?fieldSelector=metadata.name%3Dweb&limit=500&resourceVersion=0`,
//!   then a watch `GET deployments?allowWatchBookmarks=true&fieldSelector=
//!   metadata.name%3Dweb&resourceVersion=<the list's>&timeoutSeconds=<300..600>&watch=true`
//!   until done: `observedGeneration >= generation`, updated == spec
//!   replicas, replicas == updated, available == updated. A Progressing
//!   condition with reason ProgressDeadlineExceeded fails it at once (exit 1,
//!   `error: deployment "web" exceeded its progress deadline`).
//! - `set image deployment/web app=web:2`: `GET deployments/web`, then
//!   `PATCH deployments/web?fieldManager=kubectl-set`,
//!   `application/strategic-merge-patch+json`,
//!   `{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"app"}],"containers":[{"image":"web:2","name":"app"}]}}}}`.
//! - `scale deployment/web --replicas=5`: `GET deployments/web`, then
//!   `PATCH deployments/web/scale` (no GET of the scale, no fieldManager),
//!   `application/merge-patch+json`, `{"spec":{"replicas":5}}`.
//! - `patch deployment web --type=merge|json -p P`: GET, then `PATCH
//!   deployments/web?fieldManager=kubectl-patch` with P as sent.
//! - `create|replace -f lease.json`: unless `--validate=false`, `GET
//!   /openapi/v3` then `/openapi/v2` first (the fake serves neither, so
//!   kubectl refuses). With it, just `POST
//!   .../leases?fieldManager=kubectl-create&fieldValidation=Ignore` or `PUT
//!   .../leases/NAME?fieldManager=kubectl-replace&fieldValidation=Ignore`,
//!   `application/json`, the file's object as the body (no GET first).

mod controller;
mod discovery;
mod objects;
mod patch;
mod resources;
mod routes;
mod store;
mod watch;

pub use objects::{DESIRED_REPLICAS, MAX_REPLICAS, POD_TEMPLATE_HASH, REVISION, REVISION_HISTORY};
pub use store::RecordedRequest;

use objects::Kind;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{Shared, Store};

/// `object` without what depends on when and in how many writes it was
/// made (resourceVersion, timestamps), so that two clusters brought to the
/// same state by different clients compare equal.
pub fn comparable(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
        meta.remove("creationTimestamp");
    }
    let conditions = object
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut);
    for condition in conditions
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        condition.remove("lastUpdateTime");
        condition.remove("lastTransitionTime");
    }
    object
}

/// A running fake cluster. Its server runs on its own thread and runtime,
/// so tests may block (on a `kubectl` child, say) without starving it.
pub struct FakeCluster {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    shared: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeCluster {
    /// Starts an empty cluster.
    pub fn start() -> FakeCluster {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("local address").port();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the fake cluster");
        let shared: Shared = Arc::new(Mutex::new(Store::new(runtime.handle().clone(), port)));
        let app = routes::router(shared.clone());
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                tokio::select! {
                    served = axum::serve(listener, app) => served.expect("fake API server"),
                    _ = stopped => {}
                }
            });
        });
        FakeCluster {
            base: format!("http://127.0.0.1:{port}"),
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.shared.lock().expect("store lock")
    }

    /// Writes a kubeconfig for this cluster (namespace `default`) into
    /// `dir` and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    \
             cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\n",
            self.base
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// Creates a Deployment `name` (3 replicas, labels and selector
    /// `app: name`) with these containers and annotations, as a client
    /// would; the controller gives it revision 1.
    pub fn create_deployment(
        &self,
        namespace: &str,
        name: &str,
        containers: &[(&str, &str)],
        annotations: &[(&str, &str)],
    ) -> Value {
        let containers: Vec<Value> = containers
            .iter()
            .map(|(name, image)| json!({"name": name, "image": image}))
            .collect();
        let annotations: Map<String, Value> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name},
                "annotations": annotations},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": containers}}},
        });
        let path = format!("/apis/apps/v1/namespaces/{namespace}/deployments");
        self.send("POST", &path, "application/json", &deployment);
        self.deployment(namespace, name)
    }

    /// Creates a Deployment `name` as `create_deployment` does, with one
    /// container `app`, and gives it `revisions` revisions, one per image
    /// (`web:1`, `web:2`, ...).
    pub fn create_history(&self, namespace: &str, name: &str, revisions: usize) {
        self.create_deployment(namespace, name, &[("app", "web:1")], &[]);
        for n in 2..=revisions {
            self.set_image(namespace, name, "app", &format!("web:{n}"));
        }
    }

    /// Sets one container's image, as `kubectl set image` would: a new
    /// template, so a new (or reused) ReplicaSet and revision.
    pub fn set_image(&self, namespace: &str, name: &str, container: &str, image: &str) -> Value {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": container, "image": image}]}}}});
        self.patch_deployment(
            namespace,
            name,
            "application/strategic-merge-patch+json",
            &patch,
        )
    }

    /// Patches a Deployment as a client would (`content_type` is one of the
    /// three patch types), panicking when the server refuses.
    pub fn patch_deployment(
        &self,
        namespace: &str,
        name: &str,
        content_type: &str,
        patch: &Value,
    ) -> Value {
        let path = format!("/apis/apps/v1/namespaces/{namespace}/deployments/{name}");
        self.send("PATCH", &path, content_type, patch);
        self.deployment(namespace, name)
    }

    /// Sends one request through the server's own routes (without
    /// recording it), panicking when the server refuses it.
    fn send(&self, method: &str, path: &str, content_type: &str, body: &Value) -> Value {
        let call = routes::Call {
            method: method.parse().expect("method"),
            params: Vec::new(),
            content_type: content_type.to_string(),
            body: body.to_string().into(),
        };
        match routes::route(&self.shared, path, &call) {
            Ok(routes::Answer::Json(_, answer)) => answer,
            Ok(routes::Answer::Stream(_)) => panic!("{method} {path}: a stream"),
            Err(error) => panic!("{method} {path}: {}", error.message()),
        }
    }

    /// Sends a request that a client once sent (kubectl's, recorded) again,
    /// as that client would: recorded, through the server's routes. Returns
    /// the HTTP status it was answered with.
    pub fn replay(&self, request: &RecordedRequest) -> u16 {
        self.store().requests.push(request.clone());
        let uri = match request.query.as_str() {
            "" => request.path.clone(),
            query => format!("{}?{query}", request.path),
        };
        let uri = uri.parse().expect("a recorded URI");
        let method = request.method.parse().expect("a recorded method");
        let body = request.body.clone().into();
        let call = routes::Call::new(method, &uri, &request.content_type, body);
        match routes::route(&self.shared, &request.path, &call) {
            Ok(routes::Answer::Json(code, _)) => code,
            Ok(routes::Answer::Stream(_)) => 200,
            Err(error) => error.code(),
        }
    }

    /// The Deployment as stored now; panics when there is none.
    pub fn deployment(&self, namespace: &str, name: &str) -> Value {
        let store = self.store();
        let deployment = store.get(Kind::Deployment, namespace, name);
        deployment
            .cloned()
            .unwrap_or_else(|| panic!("no deployment {namespace}/{name}"))
    }

    /// The namespace's ReplicaSets, oldest revision first.
    pub fn replica_sets(&self, namespace: &str) -> Vec<Value> {
        let mut sets = self.store().list(Kind::ReplicaSet, Some(namespace));
        sets.sort_by_key(controller::revision_of);
        sets
    }

    /// A Lease, if it exists.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<Value> {
        self.store().get(Kind::Lease, namespace, name).cloned()
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.store().requests.clone()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.store().requests.clear();
    }

    /// `METHOD /path` of requests the fake had no route for.
    pub fn unknown_paths(&self) -> Vec<String> {
        self.store().unknown_paths.clone()
    }

    /// The next PATCH or PUT of a Deployment (or its scale) gets 409 Conflict.
    pub fn fail_next_patch_with_conflict(&self) {
        self.store().conflict_next_write = true;
    }

    /// From now on, rollouts stall past their progress deadline
    /// (Progressing=False, ProgressDeadlineExceeded) instead of converging.
    pub fn stall_rollouts(&self, stall: bool) {
        self.store().stall = stall;
    }

    /// From now on, rollouts converge after `delay` (zero: at once).
    pub fn set_rollout_delay(&self, delay: Duration) {
        self.store().rollout_delay = delay;
    }

    /// Finishes the Deployment's rollout now, stalled or not.
    pub fn converge(&self, namespace: &str, name: &str) {
        controller::converge(&mut self.store(), namespace, name);
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
