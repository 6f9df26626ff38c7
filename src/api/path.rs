//! Path parameters: [`ApiPath`] reads `{name}` from the route and turns every
//! refusal into an [`ApiError`], so that a name that is not UTF-8 once
//! percent-decoded (`%C0%AE`) is answered as JSON like every other error.

use super::error::ApiError;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// The route's path parameters as `T`; use it instead of `axum::extract::Path`
/// in handlers.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::new(
            rejection.status(),
            format!("bad path parameter: {}", rejection.body_text()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;

    async fn wrapped(ApiPath(name): ApiPath<String>) -> String {
        name
    }

    async fn unwrapped(Path(name): Path<String>) -> String {
        name
    }

    /// Serves `app` behind the API's layers; `GET path` as (status, type, body).
    async fn answer(app: Router, path: &str) -> (u16, String, serde_json::Value) {
        let app = super::super::with_layers(app);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let response = reqwest::get(format!("http://{addr}{path}"))
            .await
            .expect("send");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.json().await.unwrap_or(serde_json::Value::Null);
        (status, content_type, body)
    }

    #[tokio::test]
    async fn a_name_that_is_not_utf8_is_a_json_400() {
        let app = Router::new().route("/t/{name}", get(wrapped));
        let (status, content_type, body) = answer(app.clone(), "/t/%C0%AE").await;
        assert_eq!((status, content_type.as_str()), (400, "application/json"));
        let message = body["error"].as_str().unwrap_or_default();
        assert!(message.starts_with("bad path parameter"), "{body}");
        let (status, _, _) = answer(app, "/t/caf%C3%A9").await;
        assert_eq!(status, 200);
    }

    #[tokio::test]
    async fn a_rejection_a_handler_did_not_wrap_is_json_too() {
        let app = Router::new().route("/t/{name}", get(unwrapped));
        let (status, content_type, body) = answer(app, "/t/%FF").await;
        assert_eq!((status, content_type.as_str()), (400, "application/json"));
        let message = body["error"].as_str().unwrap_or_default();
        assert!(message.contains("UTF-8"), "{body}");
    }
}
