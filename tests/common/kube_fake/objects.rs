//! The kinds the fake serves, and what a real API server does to every
//! object it stores: defaulting, dropping nulls, validation, selectors.

use serde_json::{Map, Value, json};

/// The annotation that numbers a Deployment's revisions.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revision numbers of a ReplicaSet that was rolled back to.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's replicas when the controller last scaled a ReplicaSet.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// Replicas plus surge when the controller last scaled a ReplicaSet.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// The label that ties a ReplicaSet and its pods to one template.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// A resource type the fake stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Deployment,
    ReplicaSet,
    Lease,
}

impl Kind {
    /// The kind for an API path's group, version and plural name.
    pub fn from_path(group: &str, version: &str, plural: &str) -> Option<Kind> {
        match (group, version, plural) {
            ("apps", "v1", "deployments") => Some(Kind::Deployment),
            ("apps", "v1", "replicasets") => Some(Kind::ReplicaSet),
            ("coordination.k8s.io", "v1", "leases") => Some(Kind::Lease),
            _ => None,
        }
    }

    /// The name in the `kind` field.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Lease => "Lease",
        }
    }

    /// The plural resource name in paths.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments",
            Kind::ReplicaSet => "replicasets",
            Kind::Lease => "leases",
        }
    }

    /// The API group.
    pub fn group(self) -> &'static str {
        match self {
            Kind::Deployment | Kind::ReplicaSet => "apps",
            Kind::Lease => "coordination.k8s.io",
        }
    }

    /// The `apiVersion` field.
    pub fn api_version(self) -> String {
        format!("{}/v1", self.group())
    }

    /// Whether the server counts spec changes in `metadata.generation`.
    pub fn has_generation(self) -> bool {
        self != Kind::Lease
    }
}

/// Now, as the API server writes timestamps.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// What a typed round trip through the real server does: nulls and empty
/// omitempty maps vanish, defaults appear.
pub fn normalize(kind: Kind, object: &mut Value) {
    prune_nulls(object);
    for key in ["annotations", "labels"] {
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
            && meta
                .get(key)
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
        {
            meta.remove(key);
        }
    }
    if matches!(kind, Kind::Deployment | Kind::ReplicaSet) {
        default_workload(kind, object);
    }
}

fn prune_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(prune_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.entry(key.to_string()).or_insert(value);
}

fn default_workload(kind: Kind, object: &mut Value) {
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    set_default(spec, "replicas", json!(1));
    if kind == Kind::Deployment {
        set_default(spec, "revisionHistoryLimit", json!(10));
        set_default(spec, "progressDeadlineSeconds", json!(600));
        let rolling = json!({"type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}});
        set_default(spec, "strategy", rolling);
    }
    let Some(pod) = spec
        .get_mut("template")
        .and_then(|t| t.get_mut("spec"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    set_default(pod, "restartPolicy", json!("Always"));
    set_default(pod, "terminationGracePeriodSeconds", json!(30));
    set_default(pod, "dnsPolicy", json!("ClusterFirst"));
    set_default(pod, "securityContext", json!({}));
    set_default(pod, "schedulerName", json!("default-scheduler"));
    for container in pod
        .get_mut("containers")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        let image = container.get("image").and_then(Value::as_str).unwrap_or("");
        let latest = !image.contains(':') || image.ends_with(":latest");
        let pull = if latest { "Always" } else { "IfNotPresent" };
        set_default(container, "imagePullPolicy", json!(pull));
        set_default(container, "resources", json!({}));
        set_default(
            container,
            "terminationMessagePath",
            json!("/dev/termination-log"),
        );
        set_default(container, "terminationMessagePolicy", json!("File"));
    }
}

/// Why the server would refuse to store `object` (422), if it would.
pub fn validate(kind: Kind, object: &Value) -> Result<(), String> {
    if object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        return Err("metadata.name: Required value: name is required".into());
    }
    if !matches!(kind, Kind::Deployment | Kind::ReplicaSet) {
        return Ok(());
    }
    let selector = object
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or(Value::Null);
    if selector.is_null() {
        return Err("spec.selector: Required value".into());
    }
    let labels = object
        .pointer("/spec/template/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    if !selector_object_matches(&selector, &labels) {
        return Err("spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`".into());
    }
    let containers = object
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array);
    let Some(containers) = containers.filter(|c| !c.is_empty()) else {
        return Err("spec.template.spec.containers: Required value".into());
    };
    for (i, c) in containers.iter().enumerate() {
        for field in ["name", "image"] {
            if c.get(field)
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                return Err(format!(
                    "spec.template.spec.containers[{i}].{field}: Required value"
                ));
            }
        }
    }
    if object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        < 0
    {
        return Err("spec.replicas: Invalid value: must be greater than or equal to 0".into());
    }
    Ok(())
}

/// Whether `labels` satisfy a LabelSelector object (`matchLabels`, `matchExpressions`).
pub fn selector_object_matches(selector: &Value, labels: &Value) -> bool {
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let match_labels = selector.get("matchLabels").and_then(Value::as_object);
    let labels_ok = match_labels
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k) == v.as_str());
    let expressions = selector.get("matchExpressions").and_then(Value::as_array);
    let expressions_ok = expressions.into_iter().flatten().all(|e| {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => label(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => !label(key).is_some_and(|v| values.contains(&v)),
            "Exists" => label(key).is_some(),
            "DoesNotExist" => label(key).is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// Whether `labels` satisfy a `labelSelector` query string such as
/// `app=web,tier in (a,b),!canary`.
pub fn selector_string_matches(selector: &str, labels: &Value) -> bool {
    let label = |k: &str| labels.get(k.trim()).and_then(Value::as_str);
    split_top_level(selector).iter().all(|term| {
        let term = term.trim();
        if term.is_empty() {
            return true;
        }
        if let Some((key, rest)) = term.split_once(" notin ") {
            return !label(key).is_some_and(|v| set_values(rest).contains(&v));
        }
        if let Some((key, rest)) = term.split_once(" in ") {
            return label(key).is_some_and(|v| set_values(rest).contains(&v));
        }
        if let Some((key, value)) = term.split_once("!=") {
            return label(key) != Some(value.trim());
        }
        if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
            return label(key) == Some(value.trim());
        }
        match term.strip_prefix('!') {
            Some(key) => label(key).is_none(),
            None => label(term).is_some(),
        }
    })
}

fn set_values(set: &str) -> Vec<&str> {
    let inner = set.trim().trim_start_matches('(').trim_end_matches(')');
    inner.split(',').map(str::trim).collect()
}

fn split_top_level(selector: &str) -> Vec<&str> {
    let (mut terms, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Whether an object satisfies a `fieldSelector` such as `metadata.name=web`.
pub fn field_selector_matches(selector: &str, object: &Value) -> bool {
    selector.split(',').filter(|t| !t.is_empty()).all(|term| {
        let (field, value, negate) = match term.split_once("!=") {
            Some((f, v)) => (f, v, true),
            None => match term.split_once("==").or_else(|| term.split_once('=')) {
                Some((f, v)) => (f, v, false),
                None => return false,
            },
        };
        let pointer = format!("/{}", field.replace('.', "/"));
        let actual = object
            .pointer(&pointer)
            .and_then(Value::as_str)
            .unwrap_or("");
        (actual == value) != negate
    })
}

/// A Status object, as every API error is returned.
pub fn status(code: u16, reason: &str, message: &str, details: Value) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "details": details, "code": code})
}
