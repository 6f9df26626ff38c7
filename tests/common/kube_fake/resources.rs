//! Reads and writes of objects: LIST, WATCH, GET, POST, PUT, PATCH,
//! DELETE, the Deployment `scale` subresource and `?dryRun=All`.

use super::controller::{self, Pending};
use super::objects::{Kind, field_selector_matches, normalize, selector_string_matches, validate};
use super::routes::{Answer, ApiError, Call};
use super::store::{Shared, Store, str_at};
use super::{patch, watch};
use axum::http::Method;
use serde_json::{Value, json};

/// Answers a call on a kind's collection or on one object of it.
pub fn resource(
    shared: &Shared,
    call: &Call,
    kind: Kind,
    namespace: Option<&str>,
    rest: &[&str],
) -> Result<Answer, ApiError> {
    let method = &call.method;
    match (namespace, rest) {
        (_, []) if *method == Method::GET && matches!(call.param("watch"), Some("true" | "1")) => {
            Ok(Answer::Stream(watch::stream(shared, kind, namespace, call)))
        }
        (_, []) if *method == Method::GET => {
            Ok(Answer::Json(200, list(shared, kind, namespace, call)))
        }
        (Some(namespace), []) if *method == Method::POST => create(shared, call, kind, namespace),
        (Some(namespace), [name] | [name, "status"]) if *method == Method::GET => {
            let store = shared.lock().expect("store lock");
            let object = store
                .get(kind, namespace, name)
                .ok_or(ApiError::not_found(kind, name))?;
            Ok(Answer::Json(200, object.clone()))
        }
        (Some(namespace), [name]) if *method == Method::PUT || *method == Method::PATCH => {
            write(shared, call, kind, namespace, name, false)
        }
        (Some(namespace), [name, "scale"]) if kind == Kind::Deployment => {
            write(shared, call, kind, namespace, name, true)
        }
        (Some(namespace), [name]) if *method == Method::DELETE => {
            let mut store = shared.lock().expect("store lock");
            store
                .delete(kind, namespace, name)
                .ok_or(ApiError::not_found(kind, name))?;
            let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Success", "details": {"name": name, "group": kind.group(),
                "kind": kind.plural()}});
            Ok(Answer::Json(200, body))
        }
        _ => {
            let message =
                "the server does not allow this method on the requested resource".to_string();
            Err(ApiError::new(405, "MethodNotAllowed", message))
        }
    }
}

/// Whether a LIST or WATCH with this call's selectors includes `object`.
pub fn selected(call: &Call, object: &Value) -> bool {
    let labels = &object["metadata"]["labels"];
    call.param("labelSelector")
        .is_none_or(|s| selector_string_matches(s, labels))
        && call
            .param("fieldSelector")
            .is_none_or(|s| field_selector_matches(s, object))
}

fn list(shared: &Shared, kind: Kind, namespace: Option<&str>, call: &Call) -> Value {
    let store = shared.lock().expect("store lock");
    let items: Vec<Value> = store
        .list(kind, namespace)
        .into_iter()
        .filter(|object| selected(call, object))
        .map(|mut object| {
            // Items of a list carry no kind or apiVersion on the wire.
            if let Some(map) = object.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
            object
        })
        .collect();
    json!({"kind": format!("{}List", kind.name()), "apiVersion": kind.api_version(),
        "metadata": {"resourceVersion": store.resource_version().to_string()}, "items": items})
}

fn create(shared: &Shared, call: &Call, kind: Kind, namespace: &str) -> Result<Answer, ApiError> {
    let mut object = call.json()?;
    let name = str_at(&object, "/metadata/name");
    let given = str_at(&object, "/metadata/namespace");
    if !given.is_empty() && given != namespace {
        let message =
            "the namespace of the provided object does not match the namespace sent on the request";
        return Err(ApiError::new(400, "BadRequest", message.to_string()));
    }
    object["metadata"]["namespace"] = json!(namespace);
    for key in ["resourceVersion", "uid", "generation", "creationTimestamp"] {
        object["metadata"].as_object_mut().map(|m| m.remove(key));
    }
    if kind != Kind::Lease {
        object["status"] = json!({});
    }
    let (stored, pending) = {
        let mut store = shared.lock().expect("store lock");
        if store.get(kind, namespace, &name).is_some() {
            let message = format!(
                "{}.{} \"{name}\" already exists",
                kind.plural(),
                kind.group()
            );
            return Err(ApiError::about(409, "AlreadyExists", message, kind, &name));
        }
        commit(&mut store, kind, object, call.dry_run())?
    };
    controller::schedule(shared, pending);
    Ok(Answer::Json(201, stored))
}

/// PUT or PATCH of an object, or of a Deployment's scale subresource.
fn write(
    shared: &Shared,
    call: &Call,
    kind: Kind,
    namespace: &str,
    name: &str,
    scale: bool,
) -> Result<Answer, ApiError> {
    let (answer, pending) = {
        let mut store = shared.lock().expect("store lock");
        let existing = store
            .get(kind, namespace, name)
            .cloned()
            .ok_or(ApiError::not_found(kind, name))?;
        if scale && call.method == Method::GET {
            return Ok(Answer::Json(200, scale_of(&existing)));
        }
        if kind == Kind::Deployment && std::mem::take(&mut store.conflict_next_write) {
            return Err(ApiError::conflict(kind, name));
        }
        let current = if scale {
            scale_of(&existing)
        } else {
            existing.clone()
        };
        let mut changed = match call.method {
            Method::PUT => call.json()?,
            Method::PATCH if call.content_type == "application/apply-patch+yaml" => {
                let message = "the fake does not do server-side apply".to_string();
                return Err(ApiError::new(415, "UnsupportedMediaType", message));
            }
            Method::PATCH => patch::apply(&call.content_type, &current, &call.json()?)
                .map_err(|why| ApiError::invalid(kind, name, &why))?,
            _ => return Err(ApiError::new(405, "MethodNotAllowed", "not allowed".into())),
        };
        let version = str_at(&changed, "/metadata/resourceVersion");
        if !version.is_empty() && version != str_at(&existing, "/metadata/resourceVersion") {
            return Err(ApiError::conflict(kind, name));
        }
        if str_at(&changed, "/metadata/name") != name {
            let message = "the name of the object does not match the name on the URL";
            return Err(ApiError::new(400, "BadRequest", message.to_string()));
        }
        if scale {
            let mut deployment = existing.clone();
            deployment["spec"]["replicas"] = changed["spec"]["replicas"].clone();
            changed = deployment;
        }
        changed["metadata"]["namespace"] = json!(namespace);
        if kind != Kind::Lease {
            // The main resource ignores status, as the real server does.
            changed["status"] = existing["status"].clone();
        }
        let (stored, pending) = commit(&mut store, kind, changed, call.dry_run())?;
        (if scale { scale_of(&stored) } else { stored }, pending)
    };
    controller::schedule(shared, pending);
    Ok(Answer::Json(200, answer))
}

/// Validates and stores an object (unless dry run), then lets the
/// Deployment controller react; returns the object as stored.
fn commit(
    store: &mut Store,
    kind: Kind,
    mut object: Value,
    dry_run: bool,
) -> Result<(Value, Option<Pending>), ApiError> {
    normalize(kind, &mut object);
    let name = str_at(&object, "/metadata/name");
    validate(kind, &object).map_err(|why| ApiError::invalid(kind, &name, &why))?;
    if dry_run {
        return Ok((store.prepare(kind, object), None));
    }
    let stored = store.write(kind, object);
    let pending = match kind {
        Kind::Deployment => {
            controller::reconcile(store, &str_at(&stored, "/metadata/namespace"), &name)
        }
        _ => None,
    };
    Ok((stored, pending))
}

/// A Deployment's `autoscaling/v1` Scale.
fn scale_of(deployment: &Value) -> Value {
    let labels = deployment
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object);
    let selector: Vec<String> = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    let meta = &deployment["metadata"];
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"]},
        "spec": {"replicas": deployment["spec"]["replicas"]},
        "status": {"replicas": deployment["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector.join(",")}})
}
