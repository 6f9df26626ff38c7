//! Who may change things: every mutating endpoint takes a [`RequireToken`]
//! argument, which admits a request only with `Authorization: Bearer <token>`
//! matching the token of `daemon.api_token_file`.
//!
//! The answers, in the order they are checked:
//!
//! | situation | status |
//! |---|---|
//! | no token configured | 403: mutating calls are disabled (never open) |
//! | header missing, not `Bearer`, or not text | 401 with `WWW-Authenticate: Bearer` |
//! | token presented but wrong | 403 |
//!
//! 401 means "say who you are"; 403 means "you (or nobody) may not". The
//! token and the header are never logged nor echoed in an answer.

use super::error::ApiError;
use crate::state::State;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

/// Proof that the request carried the configured API token. Put it first
/// among a handler's arguments so that nothing else is extracted (or
/// parsed) for a refused request.
#[derive(Debug, Clone, Copy)]
pub struct RequireToken(pub(super) ());

impl FromRequestParts<State> for RequireToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, ApiError> {
        let Some(token) = state.api_token() else {
            return Err(ApiError::forbidden(
                "mutating API calls are disabled: set daemon.api_token_file in the \
                 configuration to a file holding a token, then reload",
            ));
        };
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token);
        match presented {
            None => Err(ApiError::unauthorized(
                "this call needs the header `Authorization: Bearer <token>` with the \
                 token from daemon.api_token_file",
            )),
            Some(presented) if token.matches(presented) => Ok(RequireToken(())),
            Some(_) => {
                tracing::warn!(
                    path = %parts.uri.path(),
                    "Refused an API call with a wrong token"
                );
                Err(ApiError::forbidden(
                    "the bearer token does not match daemon.api_token_file",
                ))
            }
        }
    }
}

/// The token of an `Authorization` value of the Bearer scheme (the scheme
/// name is case-insensitive, RFC 7235), or None.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn parses_the_bearer_scheme_only() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer   "), None);
        assert_eq!(bearer_token("abc"), None);
    }
}
