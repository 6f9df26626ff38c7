//! The real kubectl (`/usr/bin/kubectl`, v1.32) against one fake cluster,
//! for the tests that need it: `tests/kube_fake.rs` (is the fake faithful
//! to kubectl?) and the `live_kubectl::` half of `tests/kube_oracle.rs`.
//!
//! Those tests live in `live_kubectl` modules and fail, saying why, when
//! kubectl is not on PATH; `scripts/test` leaves them out (and says so)
//! on such a machine. Without kubectl, the oracle still checks rollguard
//! against kubectl's recorded runs (`recorded::`, `tests/data/kubectl/`).

use crate::kube_fake::{FakeCluster, RecordedRequest};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a `live_kubectl::` test says when there is no kubectl.
const MISSING: &str = "this test needs the real kubectl (v1.32) on PATH, and there is none: \
     install it (the machine image ships /usr/bin/kubectl) or run scripts/test, which \
     leaves out the live_kubectl:: tests when kubectl is missing";

/// Panics, saying what to do, when kubectl is not on PATH.
pub fn require() {
    let found = Command::new("kubectl")
        .args(["version", "--client"])
        .output();
    if let Err(error) = found {
        panic!("{MISSING} ({error})");
    }
}

/// kubectl, pointed at one fake cluster through its own kubeconfig and
/// cache directory.
pub struct Kubectl<'a> {
    cluster: &'a FakeCluster,
    config: PathBuf,
    /// The directory that holds the kubeconfig and kubectl's cache, for the
    /// files a test hands kubectl.
    pub dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

/// What one kubectl run printed and sent (discovery left out).
#[derive(Clone, Debug)]
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

impl Run {
    /// The PATCH requests kubectl sent.
    pub fn patches(&self) -> Vec<&RecordedRequest> {
        patches(&self.requests)
    }
}

impl<'a> Kubectl<'a> {
    /// kubectl for `cluster`, in a directory of its own; panics when this
    /// machine has no kubectl.
    pub fn new(cluster: &'a FakeCluster) -> Kubectl<'a> {
        require();
        let temp = tempfile::tempdir().expect("temp dir");
        let mut kubectl = Kubectl::in_dir(cluster, temp.path());
        kubectl._temp = Some(temp);
        kubectl
    }

    /// kubectl for `cluster` with its kubeconfig and cache in `dir` (for
    /// callers that made sure of kubectl with [`require`]).
    pub fn in_dir(cluster: &'a FakeCluster, dir: &Path) -> Kubectl<'a> {
        Kubectl {
            cluster,
            config: cluster.kubeconfig(dir),
            dir: dir.to_path_buf(),
            _temp: None,
        }
    }

    /// Runs kubectl and returns what it printed and sent; no request may
    /// reach a path the fake does not serve.
    pub fn run(&self, args: &[&str]) -> Run {
        self.cluster.clear_requests();
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.config)
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .arg("--request-timeout=10s")
            .args(args)
            .output()
            .expect("run kubectl");
        let unknown = self.cluster.unknown_paths();
        assert!(unknown.is_empty(), "kubectl {args:?} asked for {unknown:?}");
        let requests = self.cluster.requests();
        Run {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            requests: requests.into_iter().filter(|r| !is_discovery(r)).collect(),
        }
    }

    /// Runs kubectl, which must succeed.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert!(
            run.ok,
            "kubectl {args:?} failed: {}{}",
            run.stdout, run.stderr
        );
        run
    }
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

/// The PATCH requests among `requests`.
pub fn patches(requests: &[RecordedRequest]) -> Vec<&RecordedRequest> {
    requests.iter().filter(|r| r.method == "PATCH").collect()
}
