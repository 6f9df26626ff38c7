//! One request to Prometheus' HTTP API and the reading of its answer,
//! within `prometheus.max_response_bytes` and `prometheus.max_series`.
//!
//! The request is the one the API documents: `GET` with the parameters in
//! the query string, the bearer token (if any) in `Authorization`. The
//! answer is read with [`crate::http::read_body_capped`]: a `Content-Length`
//! over the cap is refused before any of the body is read, a chunked body
//! is cut once past it. Either way the query is an error that says to
//! aggregate it, never a failure of the release, and what was read is
//! dropped with the request.

use super::MetricQuerier;
use super::answer::{self, Data, Reply, Unusable};
use crate::http::{BodyError, describe_error, read_body_capped};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use reqwest::{StatusCode, Url};

impl MetricQuerier {
    /// Sends `params` to `url` and reads the answer's data, or why not in
    /// words for the operator. The caller bounds the time it takes.
    pub(super) async fn fetch(&self, url: &Url, params: &[(&str, String)]) -> Result<Data, String> {
        let mut url = url.clone();
        url.query_pairs_mut().extend_pairs(params);
        let mut request = self.http.get(url);
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let mut response = request.send().await.map_err(|e| describe_error(&e))?;
        let status = response.status();
        if !is_json(response.headers()) {
            // A proxy's error page, or not Prometheus at all: not read.
            return Err(if status.is_success() {
                format!("Prometheus answered HTTP {status} without JSON")
            } else {
                format!("Prometheus answered HTTP {status}")
            });
        }
        let limit = self.max_response_bytes;
        let body = read_body_capped(&mut response, limit.as_usize())
            .await
            .map_err(|error| match error {
                BodyError::TooLarge { .. } => format!(
                    "Prometheus answered more than {limit} (prometheus.max_response_bytes); \
                     aggregate the query, e.g. with sum(...)"
                ),
                BodyError::Read(error) => describe_error(&error),
            })?;
        drop(response);
        reply(status, answer::parse(&body, self.max_series))
    }
}

/// The data of a parsed answer, or why not: Prometheus' own message for a
/// query it refused, the HTTP status when the answer is not its JSON.
fn reply(status: StatusCode, parsed: Result<Reply, Unusable>) -> Result<Data, String> {
    match parsed {
        Ok(Reply::Success(data)) if status.is_success() => Ok(data),
        Ok(Reply::Failure {
            error_type,
            message,
        }) => Err(format!("Prometheus: {error_type}: {message}")),
        Err(Unusable::TooManySeries(max)) => Err(format!(
            "query returns more than {max} series (prometheus.max_series = {max}); \
             aggregate it to one, e.g. with sum(...)"
        )),
        Ok(Reply::Success(_)) => Err(format!("Prometheus answered HTTP {status}")),
        Err(Unusable::Malformed(_)) if !status.is_success() => {
            Err(format!("Prometheus answered HTTP {status}"))
        }
        Err(Unusable::Malformed(reason)) => Err(format!(
            "Prometheus' answer is not its API's JSON: {reason}"
        )),
    }
}

/// Whether the answer says it is JSON (`application/json`, any
/// parameters).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// `path` (such as `api/v1/query`) under the base URL's own path, so that
/// a Prometheus behind a path prefix (`https://host/prometheus`) works.
pub(super) fn api_url(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{path}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_go_under_the_base_path() {
        let url = |base: &str| api_url(&Url::parse(base).expect("URL"), "api/v1/query");
        assert_eq!(
            url("http://127.0.0.1:9090").as_str(),
            "http://127.0.0.1:9090/api/v1/query"
        );
        assert_eq!(
            url("https://host/prometheus/").as_str(),
            "https://host/prometheus/api/v1/query"
        );
    }

    #[test]
    fn json_is_recognised_with_its_parameters() {
        let headers = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, value.parse().expect("header"));
            headers
        };
        assert!(is_json(&headers("application/json")));
        assert!(is_json(&headers("Application/JSON; charset=utf-8")));
        assert!(!is_json(&headers("text/html")));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn an_http_error_without_prometheus_words_names_the_status() {
        let bad_gateway = StatusCode::BAD_GATEWAY;
        assert_eq!(
            reply(bad_gateway, Err(Unusable::Malformed("x".into()))),
            Err("Prometheus answered HTTP 502 Bad Gateway".to_owned())
        );
        let refused = Reply::Failure {
            error_type: "bad_data".into(),
            message: "parse error".into(),
        };
        assert_eq!(
            reply(StatusCode::BAD_REQUEST, Ok(refused)),
            Err("Prometheus: bad_data: parse error".to_owned())
        );
        let error = reply(StatusCode::OK, Err(Unusable::TooManySeries(500))).expect_err("cap");
        assert!(error.contains("prometheus.max_series = 500"), "{error}");
        assert!(error.contains("aggregate"), "{error}");
    }
}
