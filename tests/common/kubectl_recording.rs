//! kubectl's runs, recorded: for each oracle test of `tests/kube_oracle.rs`,
//! `tests/data/kubectl/TEST.json` holds, in order, every kubectl run the
//! test makes: its arguments, the Deployment and its ReplicaSets before,
//! what kubectl sent (discovery left out), how it exited and what it
//! printed, and the Deployment and ReplicaSets it left.
//!
//! Objects are stored without what varies from run to run or with the
//! order of the test's cases (resourceVersion, timestamps: `comparable`),
//! and with each uid replaced by the name of its object (`uid of
//! Deployment web`), so that ownership is still recorded.
//!
//! Regenerate after a kubectl upgrade or a change of the tests' histories:
//! `ROLLGUARD_RECORD_KUBECTL=1 cargo nextest run --test kube_oracle -E
//! 'test(/^live_kubectl::/)'` (with cargo test: `cargo test --test
//! kube_oracle live_kubectl::`), then review the diff.

use crate::kube_fake::{FakeCluster, RecordedRequest, comparable};
use crate::kubectl::Run;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Set (to anything) to record kubectl anew instead of checking it.
pub const RECORD_VAR: &str = "ROLLGUARD_RECORD_KUBECTL";

/// Whether this run records kubectl anew.
pub fn recording_anew() -> bool {
    std::env::var_os(RECORD_VAR).is_some()
}

/// Every kubectl run of one test, in order.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Recording {
    /// The kubectl that was recorded (`kubectl version --client`).
    pub kubectl: String,
    /// Its runs, in the order the test makes them.
    pub runs: Vec<Entry>,
}

/// One kubectl run and what it changed.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// kubectl's arguments, after its `--kubeconfig`, `--cache-dir` and
    /// `--request-timeout=10s`.
    pub args: Vec<String>,
    /// The Deployment kubectl acted on and its ReplicaSets, before.
    pub before: Value,
    /// Whether kubectl exited 0.
    pub ok: bool,
    /// What it printed.
    pub stdout: String,
    /// What it complained of.
    pub stderr: String,
    /// What it sent, discovery left out.
    pub requests: Vec<Request>,
    /// The Deployment and its ReplicaSets, after.
    pub after: Value,
}

/// One request kubectl sent.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The raw query, empty when there is none.
    pub query: String,
    /// The `Content-Type` header, empty when absent.
    pub content_type: String,
    /// The `Accept` header, empty when absent.
    pub accept: String,
    /// The body: JSON, a string when it is not JSON, null when empty.
    pub body: Value,
}

impl Request {
    /// What the fake recorded, for the record.
    pub fn of(request: &RecordedRequest) -> Request {
        let body = match request.body.as_str() {
            "" => Value::Null,
            text => serde_json::from_str(text).unwrap_or_else(|_| json!(text)),
        };
        Request {
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
            content_type: request.content_type.clone(),
            accept: request.accept.clone(),
            body,
        }
    }

    /// The request as the fake would have recorded it.
    pub fn recorded(&self) -> RecordedRequest {
        let body = match &self.body {
            Value::Null => String::new(),
            Value::String(text) => text.clone(),
            json => json.to_string(),
        };
        RecordedRequest {
            method: self.method.clone(),
            path: self.path.clone(),
            query: self.query.clone(),
            content_type: self.content_type.clone(),
            accept: self.accept.clone(),
            body,
        }
    }
}

impl Entry {
    /// The record of one run of kubectl.
    pub fn new(args: &[&str], before: Value, run: &Run, after: Value) -> Entry {
        Entry {
            args: args.iter().map(|a| a.to_string()).collect(),
            before,
            ok: run.ok,
            stdout: run.stdout.clone(),
            stderr: run.stderr.clone(),
            requests: run.requests.iter().map(Request::of).collect(),
            after,
        }
    }

    /// The run as kubectl made it.
    pub fn run(&self) -> Run {
        Run {
            ok: self.ok,
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
            requests: self.requests.iter().map(Request::recorded).collect(),
        }
    }

    /// What differs between this record and `other`, field by field (empty
    /// when they are the same).
    pub fn differences(&self, other: &Entry) -> Vec<String> {
        let mut differences = Vec::new();
        let mut field = |name: &str, ours: Value, theirs: Value| {
            if ours != theirs {
                differences.push(format!(
                    "{name}: recorded {}\n  now {}",
                    compact(&ours),
                    compact(&theirs)
                ));
            }
        };
        field("args", json!(self.args), json!(other.args));
        field("before", self.before.clone(), other.before.clone());
        field("ok", json!(self.ok), json!(other.ok));
        field("stdout", json!(self.stdout), json!(other.stdout));
        field("stderr", json!(self.stderr), json!(other.stderr));
        field("requests", json!(self.requests), json!(other.requests));
        field("after", self.after.clone(), other.after.clone());
        differences
    }
}

fn compact(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(2000) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}

/// Where the recording of `test` is kept.
pub fn path(test: &str) -> PathBuf {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kubectl");
    PathBuf::from(dir).join(format!("{test}.json"))
}

impl Recording {
    /// The recording of `test`; panics, saying how to make it, when there
    /// is none or it does not parse.
    pub fn load(test: &str) -> Recording {
        let path = path(test);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "no recording of kubectl at {}: {e}; make it with {RECORD_VAR}=1 (see \
                 tests/common/kubectl_recording.rs)",
                path.display()
            )
        });
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not a recording: {e}", path.display()))
    }

    /// Writes the recording of `test` (whole, or not at all).
    pub fn save(&self, test: &str) {
        let path = path(test);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create the directory");
        let text = serde_json::to_string_pretty(self).expect("JSON") + "\n";
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, text).expect("write the recording");
        std::fs::rename(&partial, &path).expect("move the recording into place");
    }
}

/// The kubectl on PATH, as `kubectl version --client` names it.
pub fn kubectl_version() -> String {
    let output = std::process::Command::new("kubectl")
        .args(["version", "--client", "-o", "json"])
        .output()
        .expect("run kubectl version");
    let version: Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    let version = version.pointer("/clientVersion/gitVersion");
    version.and_then(Value::as_str).unwrap_or("").to_string()
}

/// Deployment `name` and its ReplicaSets, as recorded: `comparable`, uids
/// replaced by the names of their objects.
pub fn state(cluster: &FakeCluster, namespace: &str, name: &str) -> Value {
    let deployment = comparable(&cluster.deployment(namespace, name));
    let owned = |rs: &Value| rs.pointer("/metadata/ownerReferences/0/name") == Some(&json!(name));
    let sets: Vec<Value> = cluster.replica_sets(namespace);
    let sets: Vec<Value> = sets.iter().filter(|rs| owned(rs)).map(comparable).collect();
    let mut names = BTreeMap::new();
    for object in std::iter::once(&deployment).chain(&sets) {
        let uid = object.pointer("/metadata/uid").and_then(Value::as_str);
        let kind = object["kind"].as_str().unwrap_or("");
        let called = object["metadata"]["name"].as_str().unwrap_or("");
        let label = format!("uid of {kind} {called}");
        names.insert(uid.unwrap_or("").to_string(), label);
    }
    let mut state = json!({"deployment": deployment, "replicaSets": sets});
    rename_uids(&mut state, &names);
    state
}

/// Replaces every `uid` in `value` by its name in `names` (or says it is
/// none of the recorded objects').
fn rename_uids(value: &mut Value, names: &BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match (key.as_str(), value.as_str()) {
                    ("uid", Some(uid)) => {
                        let name = names.get(uid).map(String::as_str);
                        *value = json!(name.unwrap_or("uid of none of these objects"));
                    }
                    _ => rename_uids(value, names),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_uids(v, names)),
        _ => {}
    }
}
