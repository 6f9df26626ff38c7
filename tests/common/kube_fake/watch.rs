//! `?watch=true`: a chunked stream of `{"type": ..., "object": ...}` lines
//! from a resourceVersion on, as informers (and `kubectl rollout status`) use.

use super::objects::Kind;
use super::resources::selected;
use super::routes::Call;
use super::store::Shared;
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::VecDeque;
use std::convert::Infallible;
use tokio::time::{Duration, Instant};

/// Where one watch is.
struct Cursor {
    shared: Shared,
    kind: Kind,
    namespace: Option<String>,
    call: Call,
    /// Changes up to this resourceVersion have been looked at.
    seen: u64,
    /// Lines ready to send.
    queue: VecDeque<Bytes>,
    changes: tokio::sync::watch::Receiver<u64>,
    /// When the server ends the watch (`timeoutSeconds`).
    deadline: Instant,
}

/// Streams changes after the call's `resourceVersion`; without one (or
/// with "0"), first every current object as ADDED, as the real server does.
pub fn stream(shared: &Shared, kind: Kind, namespace: Option<&str>, call: &Call) -> Response {
    let store = shared.lock().expect("store lock");
    let changes = store.notify.subscribe();
    let from = call.param("resourceVersion").unwrap_or("");
    let initial = matches!(from, "" | "0") || call.param("sendInitialEvents") == Some("true");
    let mut queue = VecDeque::new();
    let seen = match from.parse::<u64>() {
        Ok(version) if version > 0 && !initial => version,
        _ => {
            for object in store
                .list(kind, namespace)
                .iter()
                .filter(|o| selected(call, o))
            {
                queue.push_back(line("ADDED", object));
            }
            if call.param("sendInitialEvents") == Some("true") {
                let version = store.resource_version().to_string();
                let annotations = json!({"k8s.io/initial-events-end": "true"});
                let bookmark = json!({"kind": kind.name(), "apiVersion": kind.api_version(),
                    "metadata": {"resourceVersion": version, "annotations": annotations}});
                queue.push_back(line("BOOKMARK", &bookmark));
            }
            store.resource_version()
        }
    };
    drop(store);
    let seconds = call
        .param("timeoutSeconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1800);
    let cursor = Cursor {
        shared: shared.clone(),
        kind,
        namespace: namespace.map(str::to_string),
        call: Call {
            method: call.method.clone(),
            params: call.params.clone(),
            content_type: call.content_type.clone(),
            body: Bytes::new(),
        },
        seen,
        queue,
        changes,
        deadline: Instant::now() + Duration::from_secs(seconds),
    };
    let body = Body::from_stream(futures_util::stream::unfold(cursor, next));
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn line(event: &str, object: &serde_json::Value) -> Bytes {
    let mut text = json!({"type": event, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

async fn next(mut cursor: Cursor) -> Option<(Result<Bytes, Infallible>, Cursor)> {
    loop {
        if let Some(line) = cursor.queue.pop_front() {
            return Some((Ok(line), cursor));
        }
        {
            let store = cursor.shared.lock().expect("store lock");
            for change in store.changes_after(cursor.seen) {
                let namespace = change.object["metadata"]["namespace"].as_str();
                let in_namespace = cursor
                    .namespace
                    .as_deref()
                    .is_none_or(|n| Some(n) == namespace);
                if change.kind == cursor.kind
                    && in_namespace
                    && selected(&cursor.call, &change.object)
                {
                    cursor.queue.push_back(line(change.event, &change.object));
                }
            }
            cursor.seen = store.resource_version();
        }
        if !cursor.queue.is_empty() {
            continue;
        }
        match tokio::time::timeout_at(cursor.deadline, cursor.changes.changed()).await {
            Ok(Ok(())) => continue,
            _ => return None,
        }
    }
}
