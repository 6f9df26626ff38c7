//! The HTTP side: one fallback handler that records every request and
//! routes it by path segments, as the real API server's paths nest.

use super::objects::{Kind, status};
use super::store::{RecordedRequest, Shared};
use super::{discovery, resources};
use axum::Router;
use axum::body::{Bytes, to_bytes};
use axum::extract::{Query, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The fake API server's routes.
pub fn router(shared: Shared) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// One request, parsed.
pub struct Call {
    pub method: Method,
    pub params: Vec<(String, String)>,
    /// The media type of the body, without parameters.
    pub content_type: String,
    pub body: Bytes,
}

impl Call {
    /// A call to `uri` with a body of `content_type` (with parameters).
    pub fn new(method: Method, uri: &Uri, content_type: &str, body: Bytes) -> Call {
        let params = Query::<Vec<(String, String)>>::try_from_uri(uri).map(|q| q.0);
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        Call {
            method,
            params: params.unwrap_or_default(),
            content_type: media_type.to_string(),
            body,
        }
    }

    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn dry_run(&self) -> bool {
        self.param("dryRun") == Some("All")
    }

    pub fn json(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::new(400, "BadRequest", format!("invalid JSON body: {e}")))
    }
}

/// An error answered as a Status object, like the real server's.
pub struct ApiError {
    code: u16,
    reason: &'static str,
    message: String,
    details: Value,
}

impl ApiError {
    /// The Status message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        self.code
    }

    pub fn new(code: u16, reason: &'static str, message: String) -> ApiError {
        ApiError {
            code,
            reason,
            message,
            details: json!({}),
        }
    }

    pub fn about(
        code: u16,
        reason: &'static str,
        message: String,
        kind: Kind,
        name: &str,
    ) -> ApiError {
        let details = json!({"name": name, "group": kind.group(), "kind": kind.plural()});
        ApiError {
            code,
            reason,
            message,
            details,
        }
    }

    pub fn not_found(kind: Kind, name: &str) -> ApiError {
        let message = format!("{}.{} \"{name}\" not found", kind.plural(), kind.group());
        ApiError::about(404, "NotFound", message, kind, name)
    }

    pub fn conflict(kind: Kind, name: &str) -> ApiError {
        let message = format!(
            "Operation cannot be fulfilled on {}.{} \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again",
            kind.plural(),
            kind.group()
        );
        ApiError::about(409, "Conflict", message, kind, name)
    }

    pub fn invalid(kind: Kind, name: &str, why: &str) -> ApiError {
        let message = format!(
            "{}.{} \"{name}\" is invalid: {why}",
            kind.name(),
            kind.group()
        );
        ApiError::about(422, "Invalid", message, kind, name)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = status(self.code, self.reason, &self.message, self.details);
        json_response(self.code, &body)
    }
}

/// What a route answers.
pub enum Answer {
    /// A status code and a JSON body.
    Json(u16, Value),
    /// A watch stream.
    Stream(Response),
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Answer::Json(code, body) => json_response(code, &body),
            Answer::Stream(response) => response,
        }
    }
}

/// A JSON answer.
pub fn json_response(code: u16, body: &Value) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 16 << 20).await.unwrap_or_default();
    let header = |name: header::HeaderName| {
        let value = parts.headers.get(name).and_then(|v| v.to_str().ok());
        value.unwrap_or("").to_string()
    };
    let content_type = header(header::CONTENT_TYPE);
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        content_type: content_type.clone(),
        accept: header(header::ACCEPT),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    shared.lock().expect("store lock").requests.push(recorded);
    let call = Call::new(parts.method, &parts.uri, &content_type, body);
    match route(&shared, parts.uri.path(), &call) {
        Ok(answer) => answer.into_response(),
        Err(error) => error.into_response(),
    }
}

/// Answers one call to `path`.
pub fn route(shared: &Shared, path: &str, call: &Call) -> Result<Answer, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let document = match segments.as_slice() {
        ["version"] => Some(discovery::version()),
        ["api"] => Some(discovery::core_versions(
            shared.lock().expect("store lock").port,
        )),
        ["api", version] => discovery::resources(version),
        ["apis"] => Some(discovery::groups()),
        ["apis", group, version] => discovery::resources(&format!("{group}/{version}")),
        [
            "apis",
            group,
            version,
            "namespaces",
            namespace,
            plural,
            rest @ ..,
        ] => {
            if let Some(kind) = Kind::from_path(group, version, plural) {
                return resources::resource(shared, call, kind, Some(namespace), rest);
            }
            None
        }
        ["apis", group, version, plural] => {
            if let Some(kind) = Kind::from_path(group, version, plural) {
                return resources::resource(shared, call, kind, None, &[]);
            }
            None
        }
        _ => None,
    };
    match document {
        Some(document) if call.method == Method::GET => Ok(Answer::Json(200, document)),
        _ => {
            let line = format!("{} {path}", call.method);
            eprintln!("kube_fake: no route for {line}");
            shared.lock().expect("store lock").unknown_paths.push(line);
            let message = "the server could not find the requested resource".to_string();
            Err(ApiError::new(404, "NotFound", message))
        }
    }
}
