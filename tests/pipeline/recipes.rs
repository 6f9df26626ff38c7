//! The traffic recipes of docs/pipeline.md as config/example.toml ships
//! them (targets `shop` and `store`): their `http` steps, pointed at a
//! recording server on 127.0.0.1:0, send what the docs say, in phase
//! order, and the `restore` counterparts run even when a drain fails.

use super::{ctx, step};
use axum::Router;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use rollguard::config::{MapEnvironment, StepConfig};
use rollguard::http::http_client;
use rollguard::pipeline::{PipelineDeps, PipelineOutcome};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// What the server saw of one request: method, path, the secret header
/// (Authorization or X-Api-Key) and the body.
type Seen = (String, String, String, String);

/// A server that records every request and answers 503 to a body
/// containing `fail_on` (when given), else 200.
async fn server(fail_on: Option<&'static str>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                let secret = [header("authorization"), header("x-api-key")].concat();
                let body = String::from_utf8_lossy(&body).into_owned();
                let failing = fail_on.is_some_and(|needle| body.contains(needle));
                let path = uri.path().to_owned();
                log.lock()
                    .expect("seen lock")
                    .push((method.to_string(), path, secret, body));
                if failing {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), seen)
}

/// The `http` steps of the example's target `name`, every host they call
/// replaced by `base`.
fn example_http_steps(name: &str, base: &str) -> Vec<StepConfig> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.toml");
    let mut text = std::fs::read_to_string(path).expect("read example.toml");
    for host in [
        "http://127.0.0.1:8500",
        "http://127.0.0.1:8600",
        "https://flags.example.com",
        "https://cdn.example.com",
    ] {
        text = text.replace(host, base);
    }
    let file: toml::Table = toml::from_str(&text).expect("example.toml is TOML");
    let targets = file["target"].as_array().expect("targets");
    let target = targets
        .iter()
        .find(|t| t["name"].as_str() == Some(name))
        .expect("the example has the target");
    target["step"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"].as_str() == Some("http"))
        .map(|s| step(&toml::to_string(s).expect("a step as TOML")))
        .collect()
}

fn deps() -> PipelineDeps {
    let mut env = MapEnvironment::default();
    for (name, value) in [
        ("SHOP_ADMIN_AUTHORIZATION", "Basic c2hvcDphZG1pbg=="),
        ("CDN_API_KEY", "cdn-key"),
    ] {
        env.vars.insert(name.to_owned(), value.to_owned());
    }
    env.files.insert(
        PathBuf::from("/etc/rollguard/flags-token"),
        "flag-token\n".to_owned(),
    );
    PipelineDeps::new(http_client().expect("http client"), Arc::new(env))
}

async fn run(steps: &[StepConfig]) -> PipelineOutcome {
    super::run(steps, &ctx("v2", "v1"), &deps()).await
}

fn seen(log: &Mutex<Vec<Seen>>) -> Vec<(String, String, String, String)> {
    log.lock().expect("seen lock").clone()
}

fn request(method: &str, path: &str, secret: &str, body: &str) -> Seen {
    (method.into(), path.into(), secret.into(), body.into())
}

#[tokio::test]
async fn the_shop_recipes_kill_the_flag_open_the_breaker_purge_and_close_it() {
    let (base, log) = server(None).await;
    let steps = example_http_steps("shop", &base);
    let outcome = run(&steps).await;
    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    let admin = "Basic c2hvcDphZG1pbg==";
    assert_eq!(
        seen(&log),
        [
            request(
                "PATCH",
                "/api/v1/projects/shop/flags/new-checkout",
                "Bearer flag-token",
                r#"{"environment": "production", "enabled": false, "comment": "rollguard: api v2 rolled back"}"#
            ),
            request("POST", "/admin/circuit-breakers/payments/open", admin, ""),
            request(
                "POST",
                "/api/v1/zones/shop/purge",
                "cdn-key",
                r#"{"purge_everything": true}"#
            ),
            request("POST", "/admin/circuit-breakers/payments/close", admin, ""),
        ]
    );
    let described: Vec<&str> = outcome
        .steps()
        .iter()
        .map(|s| s.description.as_str())
        .collect();
    assert!(
        described
            .iter()
            .all(|d| !d.contains("flag-token") && !d.contains("cdn-key")),
        "{described:?}"
    );
}

#[tokio::test]
async fn the_store_recipes_drain_gradually_and_restore_even_when_the_drain_fails() {
    let (base, log) = server(None).await;
    let steps = example_http_steps("store", &base);
    let outcome = run(&steps).await;
    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    let member = "/admin/pools/store/members/api";
    let expected = [
        request(
            "PUT",
            "/admin/maintenance",
            "",
            r#"{"enabled": true, "message": "Back in a few minutes"}"#,
        ),
        request("PUT", member, "", r#"{"weight": 50}"#),
        request("PUT", member, "", r#"{"weight": 0}"#),
        request("PUT", member, "", r#"{"weight": 100}"#),
        request("PUT", "/admin/maintenance", "", r#"{"enabled": false}"#),
    ];
    assert_eq!(seen(&log), expected);

    // The balancer refuses the full drain: the pipeline aborts there, and
    // the weight and the maintenance page are still put back.
    let (base, log) = server(Some(r#""weight": 0"#)).await;
    let outcome = run(&example_http_steps("store", &base)).await;
    match &outcome {
        PipelineOutcome::Failed { step, .. } => assert_eq!(step, "drain-all"),
        other => panic!("expected the drain to fail, got {other:?}"),
    }
    assert_eq!(seen(&log), expected);
}
