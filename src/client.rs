//! The CLI's side of the HTTP API (stub).

/// Client.
#[derive(Debug)]
pub struct ApiClient;

/// Error.
#[derive(Debug, thiserror::Error)]
#[error("client")]
pub struct ClientError;

impl ApiClient {
    /// New.
    pub fn new(_base: &str, _token: Option<String>) -> Result<ApiClient, ClientError> {
        Ok(ApiClient)
    }
    /// Status.
    pub async fn status(&self) -> Result<serde_json::Value, ClientError> {
        Err(ClientError)
    }
}

/// Render.
pub fn render_status(_s: &serde_json::Value) -> String {
    String::new()
}
