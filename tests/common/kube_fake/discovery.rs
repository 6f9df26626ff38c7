//! Legacy (unaggregated) discovery and `/version`: what kubectl reads to
//! map `deployment/web` to a path. Answering the aggregated-discovery
//! `Accept` with a plain `application/json` list makes client-go fall back
//! to the per-group documents below.

use serde_json::{Value, json};

/// `GET /version`.
pub fn version() -> Value {
    json!({"major": "1", "minor": "32", "gitVersion": "v1.32.4-fake",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2025-04-22T00:00:00Z", "goVersion": "go1.23.8", "compiler": "gc",
        "platform": "linux/amd64"})
}

/// `GET /api`.
pub fn core_versions(port: u16) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{port}")}]})
}

/// `GET /apis`.
pub fn groups() -> Value {
    let group = |name: &str| {
        let version = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
        json!({"name": name, "versions": [version], "preferredVersion": version})
    };
    json!({"kind": "APIGroupList", "apiVersion": "v1",
        "groups": [group("apps"), group("coordination.k8s.io")]})
}

/// `GET /api/v1` or `GET /apis/{group}/{version}`; `None` for groups the
/// fake does not serve.
pub fn resources(group_version: &str) -> Option<Value> {
    let all = [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ];
    let resources = match group_version {
        "v1" => json!([]),
        "apps/v1" => json!([
            {"name": "deployments", "singularName": "deployment", "namespaced": true,
             "kind": "Deployment", "verbs": all, "shortNames": ["deploy"],
             "categories": ["all"]},
            {"name": "deployments/scale", "singularName": "", "namespaced": true,
             "group": "autoscaling", "version": "v1", "kind": "Scale",
             "verbs": ["get", "patch", "update"]},
            {"name": "deployments/status", "singularName": "", "namespaced": true,
             "kind": "Deployment", "verbs": ["get", "patch", "update"]},
            {"name": "replicasets", "singularName": "replicaset", "namespaced": true,
             "kind": "ReplicaSet", "verbs": all, "shortNames": ["rs"], "categories": ["all"]},
        ]),
        "coordination.k8s.io/v1" => json!([
            {"name": "leases", "singularName": "lease", "namespaced": true, "kind": "Lease",
             "verbs": all},
        ]),
        _ => return None,
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
        "resources": resources}),
    )
}
