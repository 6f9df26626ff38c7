//! Test helpers of `tests/kube_oracle.rs`: two fake clusters from the same
//! start, the real kubectl for one and rollguard's steps for the other,
//! and the comparisons of what each sent and left.

use crate::kube_fake::{FakeCluster, RecordedRequest, comparable};
use rollguard::config::{MapEnvironment, StepConfig};
use rollguard::kubernetes::KubeClient;
use rollguard::model::Mode;
use rollguard::pipeline::{PipelineDeps, RollbackContext, StepError, kubernetes};
use rollguard::probe::http_client;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// The namespace of every test Deployment.
pub const NS: &str = "default";

/// kubectl's side and rollguard's side, brought to the same states.
pub struct Pair {
    /// The cluster kubectl changes.
    pub by_kubectl: FakeCluster,
    /// The cluster rollguard changes.
    pub by_rollguard: FakeCluster,
    config: PathBuf,
    dir: tempfile::TempDir,
}

/// What one kubectl run printed and sent (discovery left out).
pub struct Run {
    /// Whether kubectl exited 0.
    pub ok: bool,
    /// What it printed.
    pub stdout: String,
    /// What it complained of.
    pub stderr: String,
    /// What it sent, discovery left out.
    pub requests: Vec<RecordedRequest>,
}

/// Two clusters and kubectl for the first, or `None` (with a note) when
/// this machine has no kubectl.
pub fn pair() -> Option<Pair> {
    let found = Command::new("kubectl")
        .args(["version", "--client"])
        .output();
    if found.is_err() {
        eprintln!("NOTE: skipping: no kubectl on PATH (the machine image ships /usr/bin/kubectl)");
        return None;
    }
    let by_kubectl = FakeCluster::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = by_kubectl.kubeconfig(dir.path());
    Some(Pair {
        by_kubectl,
        by_rollguard: FakeCluster::start(),
        config,
        dir,
    })
}

impl Pair {
    /// Does the same to both clusters.
    pub fn both(&self, setup: impl Fn(&FakeCluster)) {
        setup(&self.by_kubectl);
        setup(&self.by_rollguard);
    }

    /// Runs kubectl against the first cluster.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        let cluster = &self.by_kubectl;
        cluster.clear_requests();
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.config)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .arg("--request-timeout=10s")
            .args(args)
            .output()
            .expect("run kubectl");
        assert!(cluster.unknown_paths().is_empty(), "{args:?}");
        Run {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            requests: cluster
                .requests()
                .into_iter()
                .filter(|r| !is_discovery(r))
                .collect(),
        }
    }

    /// Runs one step of rollguard's against the second cluster.
    pub fn rollguard(
        &self,
        step_toml: &str,
    ) -> (Result<Option<String>, StepError>, Vec<RecordedRequest>) {
        self.by_rollguard.clear_requests();
        let result = run_step(&self.by_rollguard, step_toml, Duration::from_millis(50));
        (result, self.by_rollguard.requests())
    }

    /// The two clusters hold identical Deployments and ReplicaSets.
    pub fn assert_same(&self, case: &str) {
        let state = |cluster: &FakeCluster| {
            let sets: Vec<Value> = cluster.replica_sets(NS).iter().map(comparable).collect();
            (deployments(cluster), sets)
        };
        assert_eq!(state(&self.by_kubectl), state(&self.by_rollguard), "{case}");
    }
}

/// The cluster's Deployments that own ReplicaSets, comparable, by name.
pub fn deployments(cluster: &FakeCluster) -> Vec<Value> {
    let names = cluster.replica_sets(NS).into_iter().filter_map(|rs| {
        rs.pointer("/metadata/ownerReferences/0/name")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let mut names: Vec<String> = names.collect();
    names.sort();
    names.dedup();
    names
        .iter()
        .map(|name| comparable(&cluster.deployment(NS, name)))
        .collect()
}

/// Whether kubectl sent this to discover the API.
pub fn is_discovery(request: &RecordedRequest) -> bool {
    let path = request.path.as_str();
    path == "/version"
        || path == "/api"
        || path == "/apis"
        || path == "/api/v1"
        || (path.starts_with("/apis/") && path.matches('/').count() == 3)
}

/// kubectl's requests as rollguard should send them: without kubectl's
/// `timeout=10s` (its `--request-timeout`), each GET once.
pub fn kubectl_lines(requests: &[RecordedRequest]) -> Vec<String> {
    let mut lines = lines(requests);
    lines.dedup();
    lines
}

/// `METHOD /path?query`, the query without `timeout=10s` and without the
/// empty parameter kube's LIST starts with (`?&labelSelector=...`, which
/// the API server reads as kubectl's `?labelSelector=...`).
pub fn lines(requests: &[RecordedRequest]) -> Vec<String> {
    let line = |r: &RecordedRequest| {
        let query = r.query.split('&');
        let query: Vec<&str> = query
            .filter(|p| !p.is_empty() && *p != "timeout=10s")
            .collect();
        RecordedRequest {
            query: query.join("&"),
            ..r.clone()
        }
        .line()
    };
    requests.iter().map(line).collect()
}

/// The PATCH requests among `requests`.
pub fn patches(requests: &[RecordedRequest]) -> Vec<&RecordedRequest> {
    requests.iter().filter(|r| r.method == "PATCH").collect()
}

/// The same PATCH: path, content type and body.
pub fn assert_same_patch(kubectl: &RecordedRequest, rollguard: &RecordedRequest, case: &str) {
    assert_eq!(kubectl.path, rollguard.path, "{case}");
    assert_eq!(kubectl.content_type, rollguard.content_type, "{case}");
    assert_eq!(kubectl.json(), rollguard.json(), "{case}");
}

/// A rollback of `default/web` from version 2 to 1.
pub fn ctx() -> RollbackContext {
    RollbackContext {
        target: "web".into(),
        from_version: "2".into(),
        to_version: "1".into(),
        release_id: "r1".into(),
        mode: Mode::Enforce,
        reason: "error rate 6x baseline".into(),
        link_hint: None,
        namespace_hint: Some(NS.into()),
        deployment_hint: Some("web".into()),
    }
}

/// Pipeline deps whose Kubernetes client talks to `cluster`.
pub fn deps(cluster: &FakeCluster, poll: Duration) -> PipelineDeps {
    let env = Arc::new(MapEnvironment::default());
    let mut deps = PipelineDeps::new(http_client().expect("http client"), env);
    deps.kube = KubeClient::for_url(&cluster.base).expect("fake's URL");
    deps.poll_interval = poll;
    deps
}

/// A step from its TOML.
pub fn step(step_toml: &str) -> StepConfig {
    toml::from_str(step_toml).unwrap_or_else(|e| panic!("bad step {step_toml}: {e}"))
}

/// A runtime for one test's rollguard calls.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// One attempt of a step, as the runner makes it.
pub fn run_step(
    cluster: &FakeCluster,
    step_toml: &str,
    poll: Duration,
) -> Result<Option<String>, StepError> {
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let deps = deps(cluster, poll);
    runtime().block_on(kubernetes::execute(&step(step_toml), &ctx(), &deps, stop))
}
