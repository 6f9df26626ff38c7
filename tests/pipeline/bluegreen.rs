//! `bluegreen_switch` against real parts: each colour a real HTTP server on
//! 127.0.0.1:0 answering a queue of statuses, a real `live` link between
//! two real directories, and a fake load balancer whose live colour a
//! request flips. The switch flips only to a colour that passed every
//! round, never changes anything when it refuses, and shadow mode only
//! probes.

use super::{ctx, deps, run, step};
use axum::Router;
use axum::http::{HeaderMap, Method, StatusCode};
use rollguard::config::StepConfig;
use rollguard::model::{Mode, StepOutcome};
use rollguard::pipeline::{self, PipelineOutcome};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A colour's health endpoint: answers `queue` in order, then `rest`.
struct Colour {
    url: String,
    hits: Arc<AtomicUsize>,
}

async fn colour(queue: &[u16], rest: u16) -> Colour {
    let queue = Arc::new(Mutex::new(queue.iter().copied().collect::<VecDeque<u16>>()));
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = Router::new().fallback(move || {
        let (queue, counted) = (queue.clone(), counted.clone());
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            let next = queue.lock().expect("queue lock").pop_front();
            StatusCode::from_u16(next.unwrap_or(rest)).unwrap_or(StatusCode::IM_A_TEAPOT)
        }
    });
    let url = serve(app).await;
    Colour {
        url: format!("{url}/health"),
        hits,
    }
}

/// Serves `app` on 127.0.0.1:0; its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// `dir/blue`, `dir/green` and `dir/live -> blue`.
fn layout(dir: &Path) -> PathBuf {
    for name in ["blue", "green"] {
        std::fs::create_dir(dir.join(name)).expect("mkdir");
    }
    let link = dir.join("live");
    std::os::unix::fs::symlink("blue", &link).expect("link");
    link
}

fn live(link: &Path) -> String {
    std::fs::read_link(link)
        .expect("read link")
        .display()
        .to_string()
}

/// A switch by `link` between `blue` and `green`, with `extra` keys.
fn by_link(link: &Path, blue: &Colour, green: &Colour, extra: &str) -> StepConfig {
    step(&format!(
        "phase = 'rollback'\nkind = 'bluegreen_switch'\nname = 'flip'\nservice = 'shop'\nlink = '{}'\nprobe_interval = '10ms'\n{extra}\n\
         colors.blue.path = 'blue'\ncolors.blue.probe = [{{ name = 'health', url = '{}' }}]\n\
         colors.green.path = 'green'\ncolors.green.probe = [{{ name = 'health', url = '{}' }}]",
        link.display(),
        blue.url,
        green.url
    ))
}

fn failure(outcome: &PipelineOutcome) -> &str {
    match outcome {
        PipelineOutcome::Failed { message, .. } => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_switch_flips_the_link_to_a_colour_that_passed_every_round() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = layout(dir.path());
    let (blue, green) = (colour(&[], 500).await, colour(&[], 200).await);
    let steps = [by_link(&link, &blue, &green, "")];

    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;

    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    assert_eq!(live(&link), "green");
    // Three rounds before the flip, one after it; the live colour is
    // never probed.
    assert_eq!(green.hits.load(Ordering::SeqCst), 4);
    assert_eq!(blue.hits.load(Ordering::SeqCst), 0);
    let message = outcome.steps()[0].message.clone().unwrap_or_default();
    assert_eq!(
        message,
        "flipped shop from blue to green after 3 healthy probe rounds; green is live and answers its probes"
    );
}

#[tokio::test]
async fn a_switch_refuses_an_unhealthy_colour_and_leaves_the_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = layout(dir.path());
    let blue = colour(&[], 200).await;
    // Healthy twice, then failing: three rounds in a row are needed.
    let green = colour(&[200, 200], 500).await;
    let steps = [by_link(&link, &blue, &green, "")];

    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;

    let message = failure(&outcome);
    assert!(
        message.starts_with(&format!(
            "refused to flip shop from blue to green: green failed probe round 3 of 3: health ({}): status 500, expected [200]",
            green.url
        )),
        "{message}"
    );
    assert!(message.ends_with("nothing was changed"), "{message}");
    assert_eq!(live(&link), "blue");
    assert_eq!(green.hits.load(Ordering::SeqCst), 3);

    // A refusal changed nothing, so it is retried (and refused again at
    // its first round).
    let steps = [by_link(
        &link,
        &blue,
        &green,
        "retries = 1\nbackoff = '10ms'",
    )];
    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;
    assert!(failure(&outcome).contains("round 1 of 3"), "{outcome:?}");
    assert_eq!(outcome.steps()[0].attempts, 2);
    assert_eq!(green.hits.load(Ordering::SeqCst), 5);
    assert_eq!(live(&link), "blue");
}

#[tokio::test]
async fn shadow_mode_probes_the_other_colour_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = layout(dir.path());
    let blue = colour(&[], 200).await;
    let (healthy, sick) = (colour(&[], 200).await, colour(&[], 503).await);
    let shadow = ctx("v2", "v1");
    let shadow = rollguard::pipeline::RollbackContext {
        mode: Mode::Shadow,
        ..shadow
    };

    let steps = [by_link(&link, &blue, &healthy, "")];
    let preview = pipeline::preview(&steps, &shadow, &deps(&[])).await;
    assert_eq!(
        preview.steps,
        [format!(
            "bluegreen_switch: flip shop from blue to green after 3 healthy probes of {}, by repointing {}",
            healthy.url,
            link.display()
        )]
    );
    assert_eq!(
        preview.dry_runs,
        [
            "bluegreen_switch: green answered 3 healthy probe rounds: shop would flip from blue to green (dry run)"
        ]
    );
    assert_eq!(healthy.hits.load(Ordering::SeqCst), 3);

    let steps = [by_link(&link, &blue, &sick, "")];
    let preview = pipeline::preview(&steps, &shadow, &deps(&[])).await;
    assert_eq!(preview.dry_runs.len(), 1);
    assert!(
        preview.dry_runs[0].starts_with(
            "bluegreen_switch: would refuse to flip shop from blue to green: green failed probe round 1 of 3"
        ),
        "{:?}",
        preview.dry_runs
    );
    assert_eq!(live(&link), "blue");
    // Other modes describe the step but never probe.
    let before = healthy.hits.load(Ordering::SeqCst);
    let enforce = pipeline::preview(&steps, &ctx("v2", "v1"), &deps(&[])).await;
    assert!(enforce.dry_runs.is_empty());
    assert_eq!(healthy.hits.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn a_colour_failing_after_the_flip_fails_the_step_and_may_flip_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = layout(dir.path());
    let blue = colour(&[], 200).await;
    // Healthy for the three rounds, failing once live.
    let green = colour(&[200, 200, 200], 500).await;
    let steps = [by_link(&link, &blue, &green, "retries = 2")];

    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;
    let message = failure(&outcome);
    assert!(
        message.starts_with(
            "flipped shop from blue to green, but green failed after the flip: health"
        ),
        "{message}"
    );
    assert!(
        message.ends_with("did not flip back (`flip_back` is off): green stays live"),
        "{message}"
    );
    assert_eq!(live(&link), "green");
    // Never retried: a retry would flip back to the bad release.
    assert_eq!(outcome.steps()[0].attempts, 1);

    std::fs::remove_file(&link).expect("unlink");
    std::os::unix::fs::symlink("blue", &link).expect("link");
    let green = colour(&[200, 200, 200], 500).await;
    let steps = [by_link(&link, &blue, &green, "flip_back = true")];
    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;
    let message = failure(&outcome);
    assert!(message.ends_with("; flipped back to blue"), "{message}");
    assert_eq!(live(&link), "blue");
}

/// A load balancer: GET answers `{"color": live}`, PUT sets it from the
/// body's `color` when `obeys`; every PUT's authorization and body.
#[derive(Default)]
struct Balancer {
    live: Mutex<String>,
    puts: Mutex<Vec<(String, String)>>,
}

async fn balancer(start: &str, obeys: bool) -> (String, Arc<Balancer>) {
    let state = Arc::new(Balancer {
        live: Mutex::new(start.to_owned()),
        ..Balancer::default()
    });
    let shared = state.clone();
    let app = Router::new().fallback(
        move |method: Method, headers: HeaderMap, body: axum::body::Bytes| {
            let state = shared.clone();
            async move {
                if method == Method::PUT {
                    let body = String::from_utf8_lossy(&body).into_owned();
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let asked: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    if obeys && let Some(color) = asked["color"].as_str() {
                        *state.live.lock().expect("live lock") = color.to_owned();
                    }
                    state.puts.lock().expect("puts lock").push((auth, body));
                }
                let live = state.live.lock().expect("live lock").clone();
                serde_json::json!({ "color": live }).to_string()
            }
        },
    );
    (serve(app).await, state)
}

/// A switch told and flipped through the balancer at `lb`.
fn by_http(lb: &str, blue: &Colour, green: &Colour, extra: &str) -> StepConfig {
    step(&format!(
        "phase = 'rollback'\nkind = 'bluegreen_switch'\nlive_url = '{lb}/active'\nlive_pointer = '/color'\nhealthy_probes = 2\nprobe_interval = '10ms'\n{extra}\n\
         flip_http = {{ method = 'PUT', url = '{lb}/active', headers_env = {{ Authorization = 'LB_AUTH' }}, body = '{{\"color\": \"{{{{color}}}}\", \"from\": \"{{{{live_color}}}}\", \"release\": \"{{{{version}}}}\"}}' }}\n\
         colors.blue.probe = [{{ name = 'health', url = '{}' }}]\n\
         colors.green.probe = [{{ name = 'health', url = '{}' }}]",
        blue.url, green.url
    ))
}

#[tokio::test]
async fn a_switch_by_http_sends_the_escaped_flip_and_checks_the_new_live_colour() {
    let (lb, state) = balancer("green", true).await;
    let (blue, green) = (colour(&[], 200).await, colour(&[], 500).await);
    let steps = [by_http(&lb, &blue, &green, "")];
    // A version with a quote in it arrives escaped in the JSON body.
    let outcome = run(
        &steps,
        &ctx("v2\"x", "v1"),
        &deps(&[("LB_AUTH", "Bearer s3cret")]),
    )
    .await;

    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    assert_eq!(*state.live.lock().expect("live lock"), "blue");
    let puts = state.puts.lock().expect("puts lock").clone();
    assert_eq!(
        puts,
        [(
            "Bearer s3cret".to_owned(),
            r#"{"color": "blue", "from": "green", "release": "v2\"x"}"#.to_owned()
        )]
    );
    let description = &outcome.steps()[0].description;
    assert!(!description.contains("s3cret"), "{description}");

    // A balancer that answers the flip but keeps the old colour live.
    let (lb, state) = balancer("green", false).await;
    let steps = [by_http(&lb, &blue, &green, "retries = 2")];
    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[("LB_AUTH", "x")])).await;
    let message = failure(&outcome);
    assert!(
        message.contains(
            "but blue failed after the flip: after the flip the live colour is \"green\""
        ),
        "{message}"
    );
    assert_eq!(outcome.steps()[0].attempts, 1);
    assert_eq!(outcome.steps()[0].outcome, StepOutcome::Failed);
    assert_eq!(state.puts.lock().expect("puts lock").len(), 1);
}

#[tokio::test]
async fn a_switch_by_programs_reads_and_sets_the_live_colour_through_argv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("live-colour");
    std::fs::write(&state, "green\n").expect("write");
    let seen = dir.path().join("flip-args");
    let live = super::script(dir.path(), "live", &format!("cat '{}'", state.display()));
    // Writes the colour it is given to the state, and what it saw.
    let flip = super::script(
        dir.path(),
        "flip",
        &format!(
            "printf '%s\\n' \"$1\" > '{}'\nprintf '%s|%s|%s|%s' \"$1\" \"$2\" \"$ROLLGUARD_COLOR\" \"$ROLLGUARD_LIVE_COLOR\" > '{}'",
            state.display(),
            seen.display()
        ),
    );
    let (blue, green) = (colour(&[], 200).await, colour(&[], 200).await);
    let steps = [step(&format!(
        "phase = 'rollback'\nkind = 'bluegreen_switch'\nlive_argv = ['{}']\nflip_argv = ['{}', '{{{{color}}}}', 'from {{{{live_color}}}}']\nhealthy_probes = 1\n\
         colors.blue.probe = [{{ name = 'health', url = '{}' }}]\n\
         colors.green.probe = [{{ name = 'health', url = '{}' }}]",
        live.display(),
        flip.display(),
        blue.url,
        green.url
    ))];

    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;

    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    assert_eq!(std::fs::read_to_string(&state).expect("state"), "blue\n");
    assert_eq!(
        std::fs::read_to_string(&seen).expect("flip args"),
        "blue|from green|blue|green"
    );
    assert_eq!(blue.hits.load(Ordering::SeqCst), 2);
    assert_eq!(green.hits.load(Ordering::SeqCst), 0);

    // A live colour that is neither: nothing is probed or flipped.
    std::fs::write(&state, "purple\n").expect("write");
    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;
    assert!(
        failure(&outcome).contains("the live colour is \"purple\", which is none of blue, green"),
        "{outcome:?}"
    );
    assert_eq!(std::fs::read_to_string(&state).expect("state"), "purple\n");
    assert_eq!(blue.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_shutdown_between_rounds_stops_the_switch_before_the_flip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = layout(dir.path());
    let (blue, green) = (colour(&[], 200).await, colour(&[], 200).await);
    let steps = vec![step(&format!(
        "phase = 'rollback'\nkind = 'bluegreen_switch'\nname = 'flip'\nlink = '{}'\nprobe_interval = '60s'\n\
         colors.blue.path = 'blue'\ncolors.blue.probe = [{{ name = 'health', url = '{}' }}]\n\
         colors.green.path = 'green'\ncolors.green.probe = [{{ name = 'health', url = '{}' }}]",
        link.display(),
        blue.url,
        green.url
    ))];
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let started = std::time::Instant::now();
    let task = tokio::spawn(async move {
        let hooks = super::RecordingHooks::default();
        pipeline::run(&steps, &ctx("v2", "v1"), &deps(&[]), &hooks, stop).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop_tx.send(true).expect("pipeline listens");
    let outcome = task.await.expect("pipeline task");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let PipelineOutcome::Interrupted { step, steps } = &outcome else {
        panic!("expected interruption: {outcome:?}");
    };
    assert_eq!(step, "flip");
    assert_eq!(steps[0].outcome, StepOutcome::Interrupted);
    let message = steps[0].message.clone().unwrap_or_default();
    assert!(
        message.starts_with("stopped before flipping api from blue to green"),
        "{message}"
    );
    assert_eq!(live(&link), "blue");
    assert_eq!(green.hits.load(Ordering::SeqCst), 1);
}
