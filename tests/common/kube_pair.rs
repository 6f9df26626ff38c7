//! Test helpers of `tests/kube_oracle.rs`: two fake clusters from the same
//! start, kubectl's side and rollguard's, and the comparisons of what each
//! sent and left. kubectl's side is either the real kubectl, whose runs
//! must still match the recording (`Pair::live`, or recording them anew
//! under `ROLLGUARD_RECORD_KUBECTL`), or kubectl's recorded runs replayed
//! (`Pair::recorded`): its recorded requests sent again to the first
//! cluster, which must then hold what kubectl left.

use crate::kube_fake::{FakeCluster, RecordedRequest, comparable};
use crate::kubectl::{Kubectl, Run, patches};
use crate::kubectl_recording::{
    Entry, RECORD_VAR, Recording, kubectl_version, recording_anew, state,
};
use rollguard::config::{MapEnvironment, StepConfig};
use rollguard::http::http_client;
use rollguard::kubernetes::KubeClient;
use rollguard::model::Mode;
use rollguard::pipeline::{PipelineDeps, RollbackContext, StepError, kubernetes};
use serde_json::Value;
use std::cell::{Cell, RefCell};
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
    dir: tempfile::TempDir,
    /// The test, which names its recording.
    test: String,
    /// Whether kubectl's side is the real kubectl.
    live: bool,
    /// kubectl's recorded runs (none when recording anew).
    recording: Recording,
    /// The recorded run the next kubectl run must match.
    next: Cell<usize>,
    /// The runs recorded anew.
    made: RefCell<Vec<Entry>>,
}

impl Pair {
    /// A pair whose kubectl side replays the recording of `test`.
    pub fn recorded(test: &str) -> Pair {
        Pair::new(test, false, Recording::load(test))
    }

    /// A pair whose kubectl side is the real kubectl, which must still
    /// match the recording of `test` (or records it anew); panics when
    /// there is no kubectl.
    pub fn live(test: &str) -> Pair {
        crate::kubectl::require();
        let recording = match recording_anew() {
            true => Recording::default(),
            false => Recording::load(test),
        };
        Pair::new(test, true, recording)
    }

    /// A pair that replays `recording` (tampered with, say) as `test`'s.
    pub fn replaying(test: &str, recording: Recording) -> Pair {
        Pair::new(test, false, recording)
    }

    fn new(test: &str, live: bool, recording: Recording) -> Pair {
        Pair {
            by_kubectl: FakeCluster::start(),
            by_rollguard: FakeCluster::start(),
            dir: tempfile::tempdir().expect("temp dir"),
            test: test.to_string(),
            live,
            recording,
            next: Cell::new(0),
            made: RefCell::new(Vec::new()),
        }
    }

    /// Does the same to both clusters.
    pub fn both(&self, setup: impl Fn(&FakeCluster)) {
        setup(&self.by_kubectl);
        setup(&self.by_rollguard);
    }

    /// Runs kubectl against the first cluster, or replays its recorded run;
    /// `args` name the Deployment as `deployment/NAME`.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        let name = args.iter().find_map(|a| a.strip_prefix("deployment/"));
        let name = name.unwrap_or_else(|| panic!("no deployment/NAME in {args:?}"));
        let before = state(&self.by_kubectl, NS, name);
        if !self.live {
            return self.replay(args, &before, name);
        }
        let run = Kubectl::in_dir(&self.by_kubectl, self.dir.path()).run(args);
        let entry = Entry::new(args, before, &run, state(&self.by_kubectl, NS, name));
        if recording_anew() {
            self.made.borrow_mut().push(entry);
            return run;
        }
        let (index, recorded) = self.next_recorded(args);
        let differences = recorded.differences(&entry);
        assert!(
            differences.is_empty(),
            "kubectl {args:?} no longer does what run {index} of {} recorded; if kubectl or the \
             test changed, record it anew ({RECORD_VAR}=1, see tests/common/kubectl_recording.rs) \
             and review the diff:\n{}",
            self.file(),
            differences.join("\n")
        );
        run
    }

    /// kubectl's recorded run from `before`, its changes sent again.
    fn replay(&self, args: &[&str], before: &Value, name: &str) -> Run {
        let (index, recorded) = self.next_recorded(args);
        let case = format!("run {index} of {} (kubectl {args:?})", self.file());
        assert_eq!(
            *before, recorded.before,
            "{case}: the test's start differs from the recorded one"
        );
        let writes = recorded.requests.iter().filter(|r| r.method != "GET");
        for request in writes {
            self.by_kubectl.replay(&request.recorded());
        }
        assert_eq!(
            state(&self.by_kubectl, NS, name),
            recorded.after,
            "{case}: kubectl's recorded requests no longer leave what kubectl left"
        );
        recorded.run()
    }

    /// The recorded run the next kubectl run must match, and its index.
    fn next_recorded(&self, args: &[&str]) -> (usize, Entry) {
        let index = self.next.get();
        self.next.set(index + 1);
        let recorded = self.recording.runs.get(index).unwrap_or_else(|| {
            panic!(
                "{} has {index} runs; kubectl {args:?} is not recorded",
                self.file()
            )
        });
        assert_eq!(
            recorded.args,
            args,
            "run {index} of {}: other arguments recorded",
            self.file()
        );
        (index, recorded.clone())
    }

    fn file(&self) -> String {
        let path = crate::kubectl_recording::path(&self.test);
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/");
        path.display().to_string().replace(root, "")
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

    /// Whether the two clusters hold identical Deployments and ReplicaSets.
    pub fn same(&self) -> Result<(), String> {
        let state = |cluster: &FakeCluster| {
            let sets: Vec<Value> = cluster.replica_sets(NS).iter().map(comparable).collect();
            (deployments(cluster), sets)
        };
        let (theirs, ours) = (state(&self.by_kubectl), state(&self.by_rollguard));
        match theirs == ours {
            true => Ok(()),
            false => Err(format!("kubectl left {theirs:?}\nrollguard left {ours:?}")),
        }
    }

    /// The two clusters hold identical Deployments and ReplicaSets.
    pub fn assert_same(&self, case: &str) {
        if let Err(difference) = self.same() {
            panic!("{case}: {difference}");
        }
    }
}

impl Drop for Pair {
    /// Saves the runs recorded anew, or checks that the test made every
    /// recorded run.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        if self.live && recording_anew() {
            let recording = Recording {
                kubectl: kubectl_version(),
                runs: self.made.take(),
            };
            recording.save(&self.test);
            return;
        }
        let (made, recorded) = (self.next.get(), self.recording.runs.len());
        assert_eq!(
            made,
            recorded,
            "the test ran kubectl {made} times, {} recorded {recorded}",
            self.file()
        );
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

/// Whether two PATCHes are the same: path, content type and body.
pub fn same_patch(kubectl: &RecordedRequest, rollguard: &RecordedRequest) -> Result<(), String> {
    let differ = |what: &str, theirs: &dyn std::fmt::Debug, ours: &dyn std::fmt::Debug| {
        Err(format!(
            "the PATCHes differ in {what}: kubectl's {theirs:?}, rollguard's {ours:?}"
        ))
    };
    if kubectl.path != rollguard.path {
        return differ("path", &kubectl.path, &rollguard.path);
    }
    if kubectl.content_type != rollguard.content_type {
        return differ(
            "content type",
            &kubectl.content_type,
            &rollguard.content_type,
        );
    }
    if kubectl.json() != rollguard.json() {
        return differ("body", &kubectl.json(), &rollguard.json());
    }
    Ok(())
}

/// The same PATCH: path, content type and body.
pub fn assert_same_patch(kubectl: &RecordedRequest, rollguard: &RecordedRequest, case: &str) {
    if let Err(difference) = same_patch(kubectl, rollguard) {
        panic!("{case}: {difference}");
    }
}

/// Whether rollguard sent what kubectl sent: the same requests in order
/// (`kubectl_lines` against `lines`), and the same PATCHes.
pub fn same_requests(kubectl: &Run, rollguard: &[RecordedRequest]) -> Result<(), String> {
    let (theirs, ours) = (kubectl_lines(&kubectl.requests), lines(rollguard));
    if theirs != ours {
        return Err(format!(
            "the requests differ:\n  kubectl   {theirs:?}\n  rollguard {ours:?}"
        ));
    }
    let mut pairs = kubectl.patches().into_iter().zip(patches(rollguard));
    pairs.try_for_each(|(theirs, ours)| same_patch(theirs, ours))
}

/// A rollback of `default/web` from version 2 to 1.
pub fn ctx() -> RollbackContext {
    RollbackContext {
        target: "web".into(),
        bad_version: "2".into(),
        restore_version: "1".into(),
        release_id: "r1".into(),
        mode: Mode::Enforce,
        reason: "error rate 6x baseline".into(),
        started_at: std::time::SystemTime::UNIX_EPOCH
            + std::time::Duration::from_secs(1_705_320_000),
        link_hint: None,
        namespace_hint: Some(NS.into()),
        deployment_hint: Some("web".into()),
        release_hint: None,
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
