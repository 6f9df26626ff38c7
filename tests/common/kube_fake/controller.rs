//! The Deployment controller, as far as rollbacks see it: one ReplicaSet
//! per template, numbered revisions, and a status that converges, takes a
//! while, or stalls past the progress deadline.

use super::objects::{
    DESIRED_REPLICAS, Kind, MAX_REPLICAS, POD_TEMPLATE_HASH, REVISION, REVISION_HISTORY, now,
};
use super::store::{Shared, Store, str_at};
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Annotations the controller never copies from a Deployment to its ReplicaSets.
const NOT_COPIED: [&str; 5] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
];

/// A rollout that converges later, unless its Deployment changes first.
pub struct Pending {
    namespace: String,
    name: String,
    generation: i64,
    delay: Duration,
}

/// Where a rollout is.
#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Converged,
    Progressing,
    Stalled,
}

/// Brings the Deployment's ReplicaSets and status up to date after a write,
/// as one sync of the real controller would.
pub fn reconcile(store: &mut Store, namespace: &str, name: &str) -> Option<Pending> {
    let deployment = store.get(Kind::Deployment, namespace, name)?.clone();
    let new_rs = sync_revision(store, &deployment);
    let mut deployment = store.get(Kind::Deployment, namespace, name)?.clone();
    let revision = str_at(
        &new_rs,
        &format!("/metadata/annotations/{}", escape(REVISION)),
    );
    if str_at(
        &deployment,
        &format!("/metadata/annotations/{}", escape(REVISION)),
    ) != revision
    {
        deployment["metadata"]["annotations"][REVISION] = json!(revision);
        deployment = store.write(Kind::Deployment, deployment);
    }
    let generation = deployment["metadata"]["generation"].as_i64().unwrap_or(1);
    let observed = deployment
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    if observed == Some(generation) {
        return None;
    }
    let (phase, delay) = match (store.stall, store.rollout_delay) {
        (true, _) => (Phase::Stalled, Duration::ZERO),
        (false, Duration::ZERO) => (Phase::Converged, Duration::ZERO),
        (false, delay) => (Phase::Progressing, delay),
    };
    set_phase(store, namespace, name, phase);
    let (namespace, name) = (namespace.to_string(), name.to_string());
    (phase == Phase::Progressing).then_some(Pending {
        namespace,
        name,
        generation,
        delay,
    })
}

/// Converges a pending rollout after its delay, on the server's runtime.
pub fn schedule(shared: &Shared, pending: Option<Pending>) {
    let Some(pending) = pending else { return };
    let shared = shared.clone();
    let runtime = shared.lock().expect("store lock").runtime.clone();
    runtime.spawn(async move {
        tokio::time::sleep(pending.delay).await;
        let mut store = shared.lock().expect("store lock");
        let Some(deployment) = store.get(Kind::Deployment, &pending.namespace, &pending.name)
        else {
            return;
        };
        if deployment["metadata"]["generation"].as_i64() == Some(pending.generation) {
            set_phase(
                &mut store,
                &pending.namespace,
                &pending.name,
                Phase::Converged,
            );
        }
    });
}

/// Marks the Deployment's rollout finished now (a test's shortcut).
pub fn converge(store: &mut Store, namespace: &str, name: &str) {
    set_phase(store, namespace, name, Phase::Converged);
}

/// The ReplicaSets the Deployment controls.
pub fn owned_replica_sets(store: &Store, deployment: &Value) -> Vec<Value> {
    let namespace = str_at(deployment, "/metadata/namespace");
    let uid = str_at(deployment, "/metadata/uid");
    let mut owned: Vec<Value> = store
        .list(Kind::ReplicaSet, Some(&namespace))
        .into_iter()
        .filter(|rs| {
            let owners = rs
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array);
            owners
                .into_iter()
                .flatten()
                .any(|o| o["controller"] == json!(true) && o["uid"].as_str() == Some(uid.as_str()))
        })
        .collect();
    owned.sort_by_key(revision_of);
    owned
}

/// A ReplicaSet's revision number (0 when it has none).
pub fn revision_of(rs: &Value) -> i64 {
    let annotations = &rs["metadata"]["annotations"];
    annotations[REVISION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Finds or creates the ReplicaSet for the Deployment's template and gives
/// it the next revision when it is not the newest; returns it.
fn sync_revision(store: &mut Store, deployment: &Value) -> Value {
    let owned = owned_replica_sets(store, deployment);
    let template = &deployment["spec"]["template"];
    let current = owned
        .iter()
        .position(|rs| same_template(&rs["spec"]["template"], template));
    let max_other = owned
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != current)
        .map(|(_, rs)| revision_of(rs))
        .max()
        .unwrap_or(0);
    let next = max_other + 1;
    let mut rs = match current {
        Some(i) => owned[i].clone(),
        None => new_replica_set(deployment),
    };
    let before = rs.clone();
    if !rs["metadata"]["annotations"].is_object() {
        rs["metadata"]["annotations"] = json!({});
    }
    let annotations = rs["metadata"]["annotations"]
        .as_object_mut()
        .expect("an object");
    let old = annotations
        .get(REVISION)
        .and_then(Value::as_str)
        .map(str::to_string);
    let old_number = old
        .as_deref()
        .and_then(|r| r.parse::<i64>().ok())
        .unwrap_or(0);
    if old_number < next {
        annotations.insert(REVISION.into(), json!(next.to_string()));
        if let Some(old) = old {
            let history = annotations.get(REVISION_HISTORY).and_then(Value::as_str);
            let history = match history.filter(|h| !h.is_empty()) {
                Some(h) => format!("{h},{old}"),
                None => old,
            };
            annotations.insert(REVISION_HISTORY.into(), json!(history));
        }
    }
    let copied = deployment["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (key, value) in copied {
        if !NOT_COPIED.contains(&key.as_str()) {
            annotations.insert(key, value);
        }
    }
    if rs != before || current.is_none() {
        rs = store.write(Kind::ReplicaSet, rs);
    }
    rs
}

/// A template with the hash label removed, as the controller compares them.
fn without_hash(template: &Value) -> Value {
    let mut template = template.clone();
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH);
    }
    template
}

fn same_template(a: &Value, b: &Value) -> bool {
    without_hash(a) == without_hash(b)
}

/// The controller's pod-template-hash: FNV-1a of the template, its decimal
/// digits mapped onto the alphabet of `rand.SafeEncodeString`.
fn template_hash(template: &Value) -> String {
    let text = serde_json::to_string(&without_hash(template)).expect("json");
    let mut hash: u32 = 0x811c_9dc5;
    for byte in text.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    let digits = hash.to_string();
    digits
        .bytes()
        .map(|b| alphabet[usize::from(b) % alphabet.len()] as char)
        .collect()
}

fn new_replica_set(deployment: &Value) -> Value {
    let hash = template_hash(&deployment["spec"]["template"]);
    let name = str_at(deployment, "/metadata/name");
    let mut template = deployment["spec"]["template"].clone();
    template["metadata"]["labels"][POD_TEMPLATE_HASH] = json!(hash);
    let mut selector = deployment["spec"]["selector"].clone();
    selector["matchLabels"][POD_TEMPLATE_HASH] = json!(hash);
    let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
    let annotations = json!({
        DESIRED_REPLICAS: replicas.to_string(),
        MAX_REPLICAS: (replicas + max_surge(deployment, replicas)).to_string(),
    });
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{name}-{hash}"),
            "namespace": deployment["metadata"]["namespace"],
            "labels": template["metadata"]["labels"],
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                "uid": deployment["metadata"]["uid"],
                "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": {"replicas": 0, "selector": selector, "template": template},
        "status": {"replicas": 0},
    })
}

/// `maxSurge` resolved against `replicas` (percentages round up).
fn max_surge(deployment: &Value, replicas: i64) -> i64 {
    let strategy = &deployment["spec"]["strategy"];
    if strategy["type"] == json!("Recreate") {
        return 0;
    }
    match &strategy["rollingUpdate"]["maxSurge"] {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => {
            let percent: i64 = s.trim_end_matches('%').parse().unwrap_or(25);
            (replicas * percent + 99) / 100
        }
        _ => (replicas * 25 + 99) / 100,
    }
}

/// Counts and conditions of the Deployment, and the replicas of its
/// ReplicaSets, for a rollout in `phase`.
fn set_phase(store: &mut Store, namespace: &str, name: &str, phase: Phase) {
    let Some(mut deployment) = store.get(Kind::Deployment, namespace, name).cloned() else {
        return;
    };
    let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
    let surge = max_surge(&deployment, replicas);
    let owned = owned_replica_sets(store, &deployment);
    let template = &deployment["spec"]["template"];
    let mut new_name = String::new();
    let mut old_replicas = 0;
    for mut rs in owned {
        let is_new = same_template(&rs["spec"]["template"], template);
        let had = rs["spec"]["replicas"].as_i64().unwrap_or(0);
        let want = match (is_new, phase) {
            (true, _) => replicas,
            (false, Phase::Converged) => 0,
            (false, _) => had,
        };
        if is_new {
            new_name = str_at(&rs, "/metadata/name");
        } else {
            old_replicas += want;
        }
        let ready = if is_new && phase != Phase::Converged {
            0
        } else {
            want
        };
        let before = rs.clone();
        if had != want {
            rs["spec"]["replicas"] = json!(want);
            rs["metadata"]["annotations"][DESIRED_REPLICAS] = json!(replicas.to_string());
            rs["metadata"]["annotations"][MAX_REPLICAS] = json!((replicas + surge).to_string());
        }
        let mut status = counts(&[
            ("replicas", want),
            ("fullyLabeledReplicas", want),
            ("readyReplicas", ready),
            ("availableReplicas", ready),
        ]);
        status.insert(
            "observedGeneration".into(),
            rs["metadata"]["generation"].clone(),
        );
        rs["status"] = Value::Object(status);
        if rs != before {
            store.write(Kind::ReplicaSet, rs);
        }
    }
    let (updated, available) = match phase {
        Phase::Converged => (replicas, replicas),
        _ => (replicas, old_replicas),
    };
    let mut status = counts(&[
        ("replicas", replicas + old_replicas),
        ("updatedReplicas", updated),
        ("readyReplicas", available),
        ("availableReplicas", available),
        ("unavailableReplicas", replicas + old_replicas - available),
    ]);
    status.insert(
        "observedGeneration".into(),
        deployment["metadata"]["generation"].clone(),
    );
    let max_unavailable = replicas / 4;
    let (minimum, reason, message) = if available >= replicas - max_unavailable {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let progressing = match phase {
        Phase::Converged => (
            "True",
            "NewReplicaSetAvailable",
            "has successfully progressed.",
        ),
        Phase::Progressing => ("True", "ReplicaSetUpdated", "is progressing."),
        Phase::Stalled => (
            "False",
            "ProgressDeadlineExceeded",
            "has timed out progressing.",
        ),
    };
    let at = now();
    status.insert(
        "conditions".into(),
        json!([
            {"type": "Available", "status": minimum, "lastUpdateTime": at,
             "lastTransitionTime": at, "reason": reason, "message": message},
            {"type": "Progressing", "status": progressing.0, "lastUpdateTime": at,
             "lastTransitionTime": at, "reason": progressing.1,
             "message": format!("ReplicaSet \"{new_name}\" {}", progressing.2)},
        ]),
    );
    deployment["status"] = Value::Object(status);
    store.write(Kind::Deployment, deployment);
}

/// Status counters, leaving out zeros as the real (omitempty) fields do.
fn counts(fields: &[(&str, i64)]) -> Map<String, Value> {
    fields
        .iter()
        .filter(|(_, n)| *n != 0)
        .map(|(k, n)| (k.to_string(), json!(n)))
        .collect()
}

/// A key escaped for a JSON pointer.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
