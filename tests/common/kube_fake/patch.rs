//! The three patch formats of PATCH requests: JSON Patch (RFC 6902), JSON
//! merge patch (RFC 7386), and the subset of strategic merge patch that
//! kubectl's `set image` and friends send.

use serde_json::{Map, Value};

/// Applies `patch` in the format its content type names.
pub fn apply(content_type: &str, document: &Value, patch: &Value) -> Result<Value, String> {
    match content_type {
        "application/json-patch+json" => json_patch(document, patch),
        "application/merge-patch+json" => Ok(merge_patch(document, patch)),
        "application/strategic-merge-patch+json" => Ok(strategic_merge(document, patch, "")),
        other => Err(format!("unsupported patch content type {other:?}")),
    }
}

/// RFC 6902, failing like evanphx/json-patch: `replace`, `remove` and
/// `test` need the path to exist.
pub fn json_patch(document: &Value, ops: &Value) -> Result<Value, String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch is an array of operations")?;
    let mut document = document.clone();
    for op in ops {
        let path = op["path"].as_str().ok_or("an operation needs a path")?;
        let value = op.get("value").cloned();
        let value = || {
            value
                .clone()
                .ok_or(format!("operation on {path} needs a value"))
        };
        match op["op"].as_str().unwrap_or("") {
            "add" => add(&mut document, path, value()?)?,
            "remove" => {
                remove(&mut document, path)?;
            }
            "replace" => {
                remove(&mut document, path)?;
                add(&mut document, path, value()?)?;
            }
            "test" => {
                if document.pointer(path) != Some(&value()?) {
                    return Err(format!("testing value {path} failed"));
                }
            }
            "move" => {
                let from = op["from"].as_str().ok_or("move needs from")?;
                let moved = remove(&mut document, from)?;
                add(&mut document, path, moved)?;
            }
            "copy" => {
                let from = op["from"].as_str().ok_or("copy needs from")?;
                let copied = document
                    .pointer(from)
                    .cloned()
                    .ok_or(format!("missing {from}"))?;
                add(&mut document, path, copied)?;
            }
            other => return Err(format!("unknown JSON patch operation {other:?}")),
        }
    }
    Ok(document)
}

/// The parent pointer and the unescaped last token of `path`.
fn split(path: &str) -> Result<(&str, String), String> {
    let cut = path.rfind('/').ok_or(format!("bad pointer {path:?}"))?;
    let token = path[cut + 1..].replace("~1", "/").replace("~0", "~");
    Ok((&path[..cut], token))
}

fn add(document: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *document = value;
        return Ok(());
    }
    let (parent, token) = split(path)?;
    let missing = || format!("add operation does not apply: doc is missing path: {path:?}");
    match document.pointer_mut(parent).ok_or_else(missing)? {
        Value::Object(map) => {
            map.insert(token, value);
        }
        Value::Array(items) if token == "-" => items.push(value),
        Value::Array(items) => {
            let index: usize = token.parse().map_err(|_| missing())?;
            if index > items.len() {
                return Err(missing());
            }
            items.insert(index, value);
        }
        _ => return Err(missing()),
    }
    Ok(())
}

fn remove(document: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, token) = split(path)?;
    let missing = || format!("doc is missing key: {path:?}");
    match document.pointer_mut(parent).ok_or_else(missing)? {
        Value::Object(map) => map.remove(&token).ok_or_else(missing),
        Value::Array(items) => {
            let index: usize = token.parse().map_err(|_| missing())?;
            (index < items.len())
                .then(|| items.remove(index))
                .ok_or_else(missing)
        }
        _ => Err(missing()),
    }
}

/// RFC 7386: objects merge, `null` deletes, anything else replaces.
pub fn merge_patch(document: &Value, patch: &Value) -> Value {
    let Value::Object(patch) = patch else {
        return patch.clone();
    };
    let mut merged = document.as_object().cloned().unwrap_or_default();
    for (key, value) in patch {
        if value.is_null() {
            merged.remove(key);
        } else {
            let current = merged.get(key).cloned().unwrap_or(Value::Null);
            merged.insert(key.clone(), merge_patch(&current, value));
        }
    }
    Value::Object(merged)
}

/// The merge key of the lists a strategic merge patch merges element by
/// element (the rest are replaced whole).
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "ports" => Some("containerPort"),
        _ => None,
    }
}

/// Strategic merge patch for pod templates: like a merge patch, but lists
/// of containers (and other keyed lists) merge by key, `$patch: delete`
/// removes an element, and `$setElementOrder/...` orders the result.
pub fn strategic_merge(document: &Value, patch: &Value, field: &str) -> Value {
    match (document, patch) {
        (Value::Array(current), Value::Array(changes)) => match merge_key(field) {
            Some(key) => Value::Array(merge_list(current, changes, key)),
            None => patch.clone(),
        },
        (_, Value::Object(changes)) => {
            if changes.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut replaced = changes.clone();
                replaced.remove("$patch");
                return Value::Object(replaced);
            }
            let mut merged = document.as_object().cloned().unwrap_or_default();
            for (key, value) in changes {
                if key.starts_with('$') {
                    continue;
                }
                if value.is_null() {
                    merged.remove(key);
                    continue;
                }
                let current = merged.get(key).cloned().unwrap_or(Value::Null);
                merged.insert(key.clone(), strategic_merge(&current, value, key));
            }
            for (directive, order) in changes {
                if let Some(list) = directive.strip_prefix("$setElementOrder/") {
                    reorder(&mut merged, list, order);
                }
            }
            Value::Object(merged)
        }
        _ => patch.clone(),
    }
}

fn merge_list(current: &[Value], changes: &[Value], key: &str) -> Vec<Value> {
    let mut merged = current.to_vec();
    for change in changes {
        let id = &change[key];
        let found = merged.iter().position(|item| &item[key] == id);
        let delete = change.get("$patch").and_then(Value::as_str) == Some("delete");
        match (found, delete) {
            (Some(i), true) => {
                merged.remove(i);
            }
            (Some(i), false) => merged[i] = strategic_merge(&merged[i], change, ""),
            (None, false) => merged.push(strategic_merge(&Value::Null, change, "")),
            (None, true) => {}
        }
    }
    merged
}

/// Orders a keyed list as a `$setElementOrder` directive says.
fn reorder(merged: &mut Map<String, Value>, list: &str, order: &Value) {
    let (Some(key), Some(Value::Array(items)), Some(order)) =
        (merge_key(list), merged.get(list).cloned(), order.as_array())
    else {
        return;
    };
    let rank = |item: &Value| {
        let found = order.iter().position(|o| o[key] == item[key]);
        found.unwrap_or(order.len())
    };
    let mut items = items;
    items.sort_by_key(rank);
    merged.insert(list.to_string(), Value::Array(items));
}
