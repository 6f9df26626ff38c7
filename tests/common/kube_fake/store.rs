//! The fake's etcd: every object, one resourceVersion counter for all of
//! them, the log of changes that watches replay, and what clients sent.

use super::objects::{Kind, now};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The store, shared by the server, the controller and the test's helpers.
pub type Shared = Arc<Mutex<Store>>;

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The raw query string, empty when there is none.
    pub query: String,
    /// The `Content-Type` header, empty when absent.
    pub content_type: String,
    /// The `Accept` header, empty when absent.
    pub accept: String,
    /// The body as text.
    pub body: String,
}

impl RecordedRequest {
    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// `METHOD /path?query`, for assertions on sequences.
    pub fn line(&self) -> String {
        match self.query.as_str() {
            "" => format!("{} {}", self.method, self.path),
            query => format!("{} {}?{query}", self.method, self.path),
        }
    }
}

/// One change, as a watch reports it.
pub struct Change {
    /// The resourceVersion the change made.
    pub resource_version: u64,
    /// The kind of the object.
    pub kind: Kind,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub event: &'static str,
    /// The object after the change (before it, for `DELETED`).
    pub object: Value,
}

/// Everything the fake cluster holds.
pub struct Store {
    /// The last resourceVersion handed out.
    resource_version: u64,
    /// Source of uids.
    uids: u64,
    /// Objects by kind, namespace and name.
    objects: BTreeMap<(Kind, String, String), Value>,
    /// Every change, oldest first, for watches that start from a version.
    changes: Vec<Change>,
    /// Tells open watches that `changes` grew.
    pub notify: tokio::sync::watch::Sender<u64>,
    /// What clients sent, in order.
    pub requests: Vec<RecordedRequest>,
    /// Paths the fake does not serve, so tests can see what kubectl wanted.
    pub unknown_paths: Vec<String>,
    /// The next PATCH or PUT of a Deployment gets a 409 Conflict.
    pub conflict_next_write: bool,
    /// Rollouts stall with ProgressDeadlineExceeded instead of converging.
    pub stall: bool,
    /// How long a rollout takes to converge (zero: at once).
    pub rollout_delay: Duration,
    /// The runtime the server runs on, for delayed convergence.
    pub runtime: tokio::runtime::Handle,
    /// The port the server listens on.
    pub port: u16,
}

impl Store {
    /// An empty cluster.
    pub fn new(runtime: tokio::runtime::Handle, port: u16) -> Store {
        Store {
            resource_version: 1000,
            uids: 0,
            objects: BTreeMap::new(),
            changes: Vec::new(),
            notify: tokio::sync::watch::channel(0).0,
            requests: Vec::new(),
            unknown_paths: Vec::new(),
            conflict_next_write: false,
            stall: false,
            rollout_delay: Duration::ZERO,
            runtime,
            port,
        }
    }

    /// The current resourceVersion of the whole store.
    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    /// One object.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&(kind, namespace.to_string(), name.to_string()))
    }

    /// The objects of a kind, in one namespace or in all of them.
    pub fn list(&self, kind: Kind, namespace: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((k, ns, _), _)| *k == kind && namespace.is_none_or(|n| n == ns))
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// Changes after `resource_version`.
    pub fn changes_after(&self, resource_version: u64) -> impl Iterator<Item = &Change> {
        let start = self
            .changes
            .partition_point(|c| c.resource_version <= resource_version);
        self.changes[start..].iter()
    }

    /// What storing `object` would store: uid, creation time and generation
    /// carried over or assigned, resourceVersion unchanged.
    pub fn prepare(&mut self, kind: Kind, mut object: Value) -> Value {
        let namespace = str_at(&object, "/metadata/namespace");
        let name = str_at(&object, "/metadata/name");
        let old = self.get(kind, &namespace, &name).cloned();
        object["kind"] = json!(kind.name());
        object["apiVersion"] = json!(kind.api_version());
        let meta = &mut object["metadata"];
        match &old {
            Some(old) => {
                for key in ["uid", "creationTimestamp", "generation", "resourceVersion"] {
                    meta[key] = old["metadata"][key].clone();
                }
                if kind.has_generation() && old.get("spec") != object.get("spec") {
                    let generation = old["metadata"]["generation"].as_i64().unwrap_or(0);
                    object["metadata"]["generation"] = json!(generation + 1);
                }
            }
            None => {
                self.uids += 1;
                meta["uid"] = json!(format!("6f1e0a3c-0000-4000-8000-{:012x}", self.uids));
                meta["creationTimestamp"] = json!(now());
                if kind.has_generation() {
                    meta["generation"] = json!(1);
                }
            }
        }
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.retain(|_, v| !v.is_null());
        }
        object
    }

    /// Stores `object` (after [`Store::prepare`]) with a new resourceVersion,
    /// and tells watches.
    pub fn write(&mut self, kind: Kind, object: Value) -> Value {
        let mut object = self.prepare(kind, object);
        let namespace = str_at(&object, "/metadata/namespace");
        let name = str_at(&object, "/metadata/name");
        self.resource_version += 1;
        object["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
        let key = (kind, namespace, name);
        let event = if self.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.objects.insert(key, object.clone());
        self.record(kind, event, object.clone());
        object
    }

    /// Removes an object and tells watches.
    pub fn delete(&mut self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        let object = self
            .objects
            .remove(&(kind, namespace.to_string(), name.to_string()))?;
        self.resource_version += 1;
        self.record(kind, "DELETED", object.clone());
        Some(object)
    }

    fn record(&mut self, kind: Kind, event: &'static str, object: Value) {
        let resource_version = self.resource_version;
        self.changes.push(Change {
            resource_version,
            kind,
            event,
            object,
        });
        self.notify.send_replace(resource_version);
    }
}

/// The string at a JSON pointer, empty when absent.
pub fn str_at(object: &Value, pointer: &str) -> String {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}
