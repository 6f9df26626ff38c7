//! The rollback pipeline against real parts: real child processes (scripts
//! in a temporary directory), a real HTTP server on 127.0.0.1:0, a real
//! release directory with a `current` link, a fake `systemctl` script, a
//! fake `docker` (`swarm.rs`), a fake verifier, and the real journal;
//! blue-green switches (`bluegreen.rs`) and configuration restores
//! (`config_restore.rs`), and the traffic recipes of config/example.toml
//! (`recipes.rs`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use rollguard::config::{DataCheckConfig, MapEnvironment, StepAction, StepConfig};
use rollguard::data_check::{DataCheckContext, data_impact};
use rollguard::http::http_client;
use rollguard::journal::{Event, Journal};
use rollguard::model::{DataImpact, Mode, StepOutcome};
use rollguard::pipeline::{
    self, BoxFuture, PipelineDeps, PipelineHooks, PipelineOutcome, RollbackContext, Verifier,
    VerifyResult, symlink,
};
use rollguard::watchdog::JournalHooks;
use std::collections::{BTreeMap, VecDeque};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[path = "pipeline/bluegreen.rs"]
mod bluegreen;
#[path = "pipeline/config_restore.rs"]
mod config_restore;
#[path = "common/fake_docker.rs"]
mod fake_docker;
#[path = "common/kube_fake/mod.rs"]
#[allow(dead_code, unused_imports)]
mod kube_fake;
#[path = "pipeline/precheck.rs"]
mod precheck;
#[path = "pipeline/recipes.rs"]
mod recipes;
#[path = "pipeline/swarm.rs"]
mod swarm;
#[path = "pipeline/swarm_cli.rs"]
mod swarm_cli;

/// Every hook call, as "started NAME ATTEMPT" / "finished NAME OUTCOME".
#[derive(Default)]
struct RecordingHooks {
    calls: Mutex<Vec<String>>,
    refuse_start: bool,
}

impl RecordingHooks {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls lock").clone()
    }
}

impl PipelineHooks for RecordingHooks {
    fn step_started<'a>(
        &'a self,
        step: &'a str,
        attempt: u32,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if self.refuse_start {
                return Err("journal is full".to_owned());
            }
            let call = format!("started {step} {attempt}");
            self.calls.lock().expect("calls lock").push(call);
            Ok(())
        })
    }

    fn step_finished<'a>(
        &'a self,
        step: &'a str,
        outcome: StepOutcome,
        _message: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let call = format!("finished {step} {outcome:?}");
            self.calls.lock().expect("calls lock").push(call);
            Ok(())
        })
    }
}

/// Answers a queue of results, then `rest` forever.
struct FakeVerifier {
    queue: Mutex<VecDeque<VerifyResult>>,
    rest: VerifyResult,
    rounds: Mutex<u32>,
}

impl Verifier for FakeVerifier {
    fn verify_once(&self) -> BoxFuture<'_, VerifyResult> {
        Box::pin(async move {
            *self.rounds.lock().expect("rounds lock") += 1;
            let next = self.queue.lock().expect("queue lock").pop_front();
            next.unwrap_or_else(|| self.rest.clone())
        })
    }
}

fn ctx(from: &str, to: &str) -> RollbackContext {
    RollbackContext {
        target: "api".into(),
        bad_version: from.into(),
        restore_version: to.into(),
        release_id: "r42".into(),
        mode: Mode::Enforce,
        reason: "error rate 6x baseline".into(),
        started_at: std::time::SystemTime::UNIX_EPOCH
            + std::time::Duration::from_secs(1_705_320_000),
        link_hint: None,
        namespace_hint: None,
        deployment_hint: None,
        release_hint: None,
    }
}

fn deps(vars: &[(&str, &str)]) -> PipelineDeps {
    let env = MapEnvironment {
        vars: vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..MapEnvironment::default()
    };
    let mut deps = PipelineDeps::new(http_client().expect("http client"), Arc::new(env));
    deps.poll_interval = Duration::from_millis(20);
    deps
}

fn step(toml_text: &str) -> StepConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("bad test step {toml_text}: {e}"))
}

/// An executable `#!/bin/sh` script at `dir/name`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// A command step running `program` with `args` (TOML literal strings).
fn command(phase: &str, name: &str, program: &Path, args: &[&str], extra: &str) -> StepConfig {
    let mut argv = vec![format!("'{}'", program.display())];
    argv.extend(args.iter().map(|a| format!("'{a}'")));
    step(&format!(
        "phase = '{phase}'\nkind = 'command'\nname = '{name}'\nargv = [{}]\n{extra}",
        argv.join(", ")
    ))
}

async fn run(steps: &[StepConfig], ctx: &RollbackContext, deps: &PipelineDeps) -> PipelineOutcome {
    let (_stop_tx, stop) = watch::channel(false);
    pipeline::run(steps, ctx, deps, &RecordingHooks::default(), stop).await
}

#[tokio::test]
async fn command_arguments_and_environment_arrive_verbatim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pwned = dir.path().join("pwned");
    let bad_version = format!("v1; touch {}", pwned.display());
    let record = dir.path().join("record");
    let recorder = script(
        dir.path(),
        "deploy",
        &format!(
            "for a in \"$@\"; do printf 'arg=%s\\n' \"$a\"; done > '{0}'\n\
             env | grep -E '^(ROLLGUARD_|EXTRA=)' | sort >> '{0}'",
            record.display()
        ),
    );
    let steps = [command(
        "rollback",
        "deploy",
        &recorder,
        &["{{version}}", "{{previous_version}}", "--rolling"],
        "env = { EXTRA = 'for {{target}}' }",
    )];
    let outcome = run(&steps, &ctx(&bad_version, "v0.9"), &deps(&[])).await;
    assert!(
        matches!(
            outcome,
            PipelineOutcome::Completed {
                verified: false,
                ..
            }
        ),
        "{outcome:?}"
    );
    let recorded = std::fs::read_to_string(&record).expect("the script ran");
    let expected = format!(
        "arg={bad_version}\narg=v0.9\narg=--rolling\nEXTRA=for api\n\
         ROLLGUARD_FROM_VERSION={bad_version}\nROLLGUARD_MODE=enforce\n\
         ROLLGUARD_REASON=error rate 6x baseline\nROLLGUARD_RELEASE_ID=r42\n\
         ROLLGUARD_TARGET=api\nROLLGUARD_TO_VERSION=v0.9\n"
    );
    assert_eq!(recorded, expected);
    assert!(!pwned.exists(), "a version string was executed");
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z')
        }
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_timeout_stops_the_whole_process_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("grandchild");
    let slow = script(
        dir.path(),
        "slow",
        &format!(
            "sleep 60 &\necho $! > '{}'\necho 'started the sleeper' >&2\nwait",
            pid_file.display()
        ),
    );
    let steps = [command("rollback", "slow", &slow, &[], "timeout = '300ms'")];
    let started = Instant::now();
    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let PipelineOutcome::Failed {
        step,
        message,
        steps,
    } = outcome
    else {
        panic!("expected a failure: {outcome:?}");
    };
    assert_eq!(step, "slow");
    assert_eq!(steps[0].outcome, StepOutcome::TimedOut);
    assert!(
        message.contains("timed out") && message.contains("started the sleeper"),
        "{message}"
    );
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("the script wrote its child's pid")
        .trim()
        .parse()
        .expect("a pid");
    let deadline = Instant::now() + Duration::from_secs(3);
    while alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !alive(pid),
        "the grandchild sleep {pid} survived the timeout"
    );
}

#[tokio::test]
async fn failed_attempts_are_retried_with_doubling_backoff() {
    let dir = tempfile::tempdir().expect("tempdir");
    let counter = dir.path().join("counter");
    let flaky = script(
        dir.path(),
        "flaky",
        &format!(
            "n=$(cat '{0}' 2>/dev/null || echo 0)\nn=$((n + 1))\necho $n > '{0}'\n\
             [ $n -ge 3 ] || {{ echo \"attempt $n failed\" >&2; exit 1; }}\necho deployed",
            counter.display()
        ),
    );
    let hooks = RecordingHooks::default();
    let steps = [command(
        "rollback",
        "flaky",
        &flaky,
        &[],
        "retries = 2\nbackoff = '50ms'",
    )];
    let (_tx, stop) = watch::channel(false);
    let outcome = pipeline::run(&steps, &ctx("v2", "v1"), &deps(&[]), &hooks, stop).await;
    let PipelineOutcome::Completed { steps, .. } = outcome else {
        panic!("expected success: {outcome:?}");
    };
    assert_eq!(steps[0].attempts, 3);
    assert_eq!(steps[0].outcome, StepOutcome::Ok);
    assert_eq!(steps[0].message.as_deref(), Some("deployed"));
    assert!(
        steps[0].duration >= Duration::from_millis(150),
        "{:?}",
        steps[0].duration
    );
    assert_eq!(
        hooks.calls(),
        [
            "started flaky 1",
            "finished flaky Failed",
            "started flaky 2",
            "finished flaky Failed",
            "started flaky 3",
            "finished flaky Ok"
        ]
    );

    std::fs::remove_file(&counter).expect("reset the counter");
    let steps = [command(
        "rollback",
        "flaky",
        &flaky,
        &[],
        "retries = 1\nbackoff = '10ms'",
    )];
    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;
    let PipelineOutcome::Failed { message, steps, .. } = outcome else {
        panic!("expected failure: {outcome:?}");
    };
    assert_eq!(steps[0].attempts, 2);
    assert_eq!(message, "exit code 1: attempt 2 failed");
}

#[tokio::test]
async fn on_failure_abort_stops_and_continue_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("marker");
    let touch = |name: &str| {
        command(
            "report",
            name,
            Path::new("/usr/bin/touch"),
            &[&marker.display().to_string()],
            "",
        )
    };
    let failing = |on_failure: &str| {
        command(
            "rollback",
            "broken",
            Path::new("/bin/false"),
            &[],
            &format!("on_failure = '{on_failure}'\nretries = 3\nbackoff = '10ms'"),
        )
    };

    let outcome = run(
        &[failing("continue"), touch("after")],
        &ctx("v2", "v1"),
        &deps(&[]),
    )
    .await;
    let PipelineOutcome::Completed { steps, .. } = outcome else {
        panic!("expected completion: {outcome:?}");
    };
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].outcome, StepOutcome::Failed);
    assert!(marker.exists());

    std::fs::remove_file(&marker).expect("reset");
    let outcome = run(
        &[failing("abort"), touch("after")],
        &ctx("v2", "v1"),
        &deps(&[]),
    )
    .await;
    let PipelineOutcome::Failed { step, steps, .. } = &outcome else {
        panic!("expected failure: {outcome:?}");
    };
    assert_eq!(
        (step.as_str(), steps.len(), steps[0].attempts),
        ("broken", 1, 4)
    );
    assert_eq!(outcome.label(), "aborted");
    assert!(!marker.exists(), "a step after an aborting failure ran");
}

#[tokio::test]
async fn steps_run_in_phase_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("log");
    let note = script(
        dir.path(),
        "note",
        &format!("echo \"$1\" >> '{}'", log.display()),
    );
    let steps = [
        command("cleanup", "tidy", &note, &["tidy"], ""),
        command("rollback", "deploy", &note, &["deploy"], ""),
        command("notify", "announce", &note, &["announce"], ""),
        command("rollback", "migrate-config", &note, &["migrate-config"], ""),
    ];
    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;
    let names: Vec<&str> = outcome.steps().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["announce", "deploy", "migrate-config", "tidy"]);
    let ran = std::fs::read_to_string(&log).expect("steps ran");
    assert_eq!(ran, "announce\ndeploy\nmigrate-config\ntidy\n");
}

/// One request the test server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: String,
}

async fn record(
    State(seen): State<Arc<Mutex<Vec<Seen>>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let failing = uri.path().starts_with("/fail");
    seen.lock().expect("seen lock").push(Seen {
        method,
        path: uri.path().to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if failing {
        (StatusCode::SERVICE_UNAVAILABLE, "overloaded")
    } else {
        (StatusCode::OK, "done")
    }
}

#[tokio::test]
async fn http_steps_send_rendered_requests_and_check_the_status() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new().fallback(record).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let deps = deps(&[
        ("LB_TOKEN", "s3cret"),
        ("HOOK_URL", &format!("http://{addr}/hook")),
    ]);

    let steps = [
        step(&format!(
            "phase = 'traffic'\nkind = 'http'\nname = 'drain'\nurl = 'http://{addr}/drain/{{{{target}}}}'\n\
             headers_env = {{ X-Token = 'LB_TOKEN' }}\nbody = '{{\"version\": \"{{{{previous_version}}}}\"}}'\n\
             expect_status = [200]"
        )),
        step(
            "phase = 'report'\nkind = 'http'\nname = 'hook'\nmethod = 'put'\nurl_env = 'HOOK_URL'",
        ),
    ];
    let outcome = run(&steps, &ctx("v2", "v1"), &deps).await;
    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    let requests = seen.lock().expect("seen lock").clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, Method::POST);
    assert_eq!(requests[0].path, "/drain/api");
    assert_eq!(requests[0].headers["x-token"], "s3cret");
    assert_eq!(requests[0].headers["content-type"], "application/json");
    assert_eq!(requests[0].body, r#"{"version": "v1"}"#);
    assert_eq!(
        (requests[1].method.clone(), requests[1].path.as_str()),
        (Method::PUT, "/hook")
    );
    assert_eq!(
        outcome.steps()[0].description,
        format!("http: POST http://{addr}/drain/api (status 200 expected)")
    );
    assert_eq!(
        outcome.steps()[1].description,
        "http: PUT $HOOK_URL (any 2xx status expected)"
    );

    let failing = [step(&format!(
        "phase = 'traffic'\nkind = 'http'\nurl = 'http://{addr}/fail'\nheaders_env = {{ X-Token = 'LB_TOKEN' }}"
    ))];
    let outcome = run(&failing, &ctx("v2", "v1"), &deps).await;
    let PipelineOutcome::Failed { message, .. } = outcome else {
        panic!("expected failure: {outcome:?}");
    };
    assert_eq!(message, "HTTP 503, expected any 2xx status: overloaded");

    let missing = [step(
        "phase = 'traffic'\nkind = 'http'\nurl_env = 'NOT_SET'\nretries = 5",
    )];
    let outcome = run(&missing, &ctx("v2", "v1"), &deps).await;
    assert_eq!(
        outcome.steps()[0].attempts,
        1,
        "a missing variable is not retried"
    );
}

/// `dir/releases/{v1,v2}` and `dir/current -> releases/v2`.
fn release_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    for version in ["v1", "v2"] {
        std::fs::create_dir_all(dir.path().join("releases").join(version)).expect("mkdir");
    }
    let link = dir.path().join("current");
    std::os::unix::fs::symlink("releases/v2", &link).expect("link");
    (dir, link)
}

#[tokio::test]
async fn symlink_switch_repoints_current_relatively_and_atomically() {
    let (dir, link) = release_dir();
    let steps = [step(&format!(
        "phase = 'rollback'\nkind = 'symlink_switch'\nlink = '{}'",
        link.display()
    ))];
    let ctx = ctx("v2", "v1");
    let described = pipeline::describe(&steps[0], &ctx);
    let expected = format!(
        "symlink_switch: {} → {}",
        link.display(),
        dir.path().join("releases/v1").display()
    );
    assert_eq!(described, expected);
    let outcome = run(&steps, &ctx, &deps(&[])).await;
    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        std::fs::read_link(&link).expect("a link"),
        PathBuf::from("releases/v1")
    );
    assert!(!dir.path().join("current.rollguard-tmp").exists());
    assert_eq!(
        rollguard::release::symlink::read_version(&link).expect("version"),
        "v1"
    );

    // A reader never sees the link missing while it is switched back and forth.
    let reader_link = link.clone();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader_done = done.clone();
    let reader = std::thread::spawn(move || {
        let mut reads = 0u32;
        while !reader_done.load(std::sync::atomic::Ordering::SeqCst) {
            std::fs::read_link(&reader_link).expect("the link is always there");
            reads += 1;
        }
        reads
    });
    let StepAction::SymlinkSwitch(switch) = &steps[0].action else {
        panic!("a symlink_switch step");
    };
    for round in 0..200 {
        let to = if round % 2 == 0 { "v2" } else { "v1" };
        let plan = symlink::plan(switch, &self::ctx("x", to)).expect("plan");
        symlink::switch(&plan).expect("switch");
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(reader.join().expect("reader") > 0);

    // Absolute releases_dir with a relative link: still relative, below the link.
    let steps = [step(&format!(
        "phase = 'rollback'\nkind = 'symlink_switch'\nlink = '{}'\nreleases_dir = '{}'",
        link.display(),
        dir.path().join("releases").display()
    ))];
    let outcome = run(&steps, &self::ctx("v1", "v2"), &deps(&[])).await;
    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        std::fs::read_link(&link).expect("a link"),
        PathBuf::from("releases/v2")
    );
}

#[tokio::test]
async fn symlink_switch_refuses_missing_directories_and_odd_versions() {
    let (_dir, link) = release_dir();
    let steps = [step(&format!(
        "phase = 'rollback'\nkind = 'symlink_switch'\nlink = '{}'",
        link.display()
    ))];
    for version in ["v0", "../v1", "a/b", ""] {
        let outcome = run(&steps, &ctx("v2", version), &deps(&[])).await;
        assert!(
            matches!(outcome, PipelineOutcome::Failed { .. }),
            "{version}: {outcome:?}"
        );
        assert_eq!(
            std::fs::read_link(&link).expect("a link"),
            PathBuf::from("releases/v2")
        );
    }
}

/// A fake `systemctl` that logs its arguments and answers `is-active` with
/// the lines of `answers`, one per call, the last one forever.
fn fake_systemctl(dir: &Path, answers: &[&str]) -> (PathBuf, PathBuf) {
    let log = dir.join("systemctl.log");
    let answers_file = dir.join("answers");
    std::fs::write(&answers_file, answers.join("\n") + "\n").expect("answers");
    let counter = dir.join("calls");
    let body = format!(
        "echo \"$*\" >> '{log}'\n\
         [ \"$1\" = is-active ] || exit 0\n\
         n=$(cat '{counter}' 2>/dev/null || echo 0); n=$((n + 1)); echo $n > '{counter}'\n\
         state=$(sed -n \"${{n}}p\" '{answers}'); [ -n \"$state\" ] || state=$(tail -n 1 '{answers}')\n\
         echo \"$state\"\n[ \"$state\" = active ]",
        log = log.display(),
        counter = counter.display(),
        answers = answers_file.display()
    );
    (script(dir, "systemctl", &body), log)
}

#[tokio::test]
async fn systemd_restart_waits_until_the_unit_is_active() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (systemctl, log) = fake_systemctl(dir.path(), &["activating", "activating", "active"]);
    let mut deps = deps(&[]);
    deps.systemctl = systemctl;
    let steps = [step(
        "phase = 'rollback'\nkind = 'systemd_restart'\nunit = 'app.service'\ntimeout = '10s'",
    )];
    let outcome = run(&steps, &ctx("v2", "v1"), &deps).await;
    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    let calls = std::fs::read_to_string(&log).expect("systemctl ran");
    assert_eq!(
        calls,
        "restart app.service\nis-active app.service\nis-active app.service\nis-active app.service\n"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let (systemctl, _) = fake_systemctl(dir.path(), &["activating", "failed"]);
    deps.systemctl = systemctl;
    let outcome = run(&steps, &ctx("v2", "v1"), &deps).await;
    let PipelineOutcome::Failed { message, .. } = outcome else {
        panic!("expected failure: {outcome:?}");
    };
    assert_eq!(message, "app.service failed after the restart");
}

#[tokio::test]
async fn stop_interrupts_a_wait_and_prevents_new_steps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("marker");
    let steps = vec![
        step("phase = 'rollback'\nkind = 'wait'\nduration = '60s'"),
        command(
            "report",
            "after",
            Path::new("/usr/bin/touch"),
            &[&marker.display().to_string()],
            "",
        ),
    ];
    let (stop_tx, stop) = watch::channel(false);
    let started = Instant::now();
    let task = tokio::spawn(async move {
        let deps = deps(&[]);
        pipeline::run(
            &steps,
            &ctx("v2", "v1"),
            &deps,
            &RecordingHooks::default(),
            stop,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop_tx.send(true).expect("pipeline listens");
    let outcome = task.await.expect("pipeline task");
    assert!(started.elapsed() < Duration::from_secs(5));
    let PipelineOutcome::Interrupted { step, steps } = &outcome else {
        panic!("expected interruption: {outcome:?}");
    };
    assert_eq!((step.as_str(), steps.len()), ("wait", 1));
    assert_eq!(steps[0].outcome, StepOutcome::Interrupted);
    assert!(!marker.exists());

    // Stopped before anything started: no step runs, no hook is called.
    let hooks = RecordingHooks::default();
    let (_tx, stop) = watch::channel(true);
    let steps = [command(
        "rollback",
        "deploy",
        Path::new("/usr/bin/touch"),
        &[&marker.display().to_string()],
        "",
    )];
    let outcome = pipeline::run(&steps, &ctx("v2", "v1"), &deps(&[]), &hooks, stop).await;
    assert!(
        matches!(&outcome, PipelineOutcome::Interrupted { step, steps } if step == "deploy" && steps.is_empty())
    );
    assert!(hooks.calls().is_empty() && !marker.exists());
}

fn verifier(queue: Vec<VerifyResult>, rest: VerifyResult) -> Arc<FakeVerifier> {
    Arc::new(FakeVerifier {
        queue: Mutex::new(queue.into()),
        rest,
        rounds: Mutex::new(0),
    })
}

#[tokio::test]
async fn verify_polls_until_back_to_baseline_or_fails() {
    let steps = [step("phase = 'verify'\nkind = 'verify'\ntimeout = '5s'")];
    let fake = verifier(
        vec![
            VerifyResult::NotYet("error rate 3x".into()),
            VerifyResult::NotYet("error rate 1.5x".into()),
        ],
        VerifyResult::Healthy("error_rate back within 2x".into()),
    );
    let mut deps = deps(&[]);
    deps.verifier = Some(fake.clone());
    let outcome = run(&steps, &ctx("v2", "v1"), &deps).await;
    assert!(
        matches!(outcome, PipelineOutcome::Completed { verified: true, .. }),
        "{outcome:?}"
    );
    assert_eq!(outcome.label(), "ok");
    assert_eq!(*fake.rounds.lock().expect("rounds"), 3);

    let steps = [step("phase = 'verify'\nkind = 'verify'\ntimeout = '200ms'")];
    deps.verifier = Some(verifier(
        vec![],
        VerifyResult::Unknown("prometheus is down".into()),
    ));
    let outcome = run(&steps, &ctx("v2", "v1"), &deps).await;
    let PipelineOutcome::Failed { message, .. } = outcome else {
        panic!("expected failure: {outcome:?}");
    };
    assert_eq!(
        message,
        "not back to baseline within 200ms (unknown: prometheus is down)"
    );

    deps.verifier = None;
    let outcome = run(&steps, &ctx("v2", "v1"), &deps).await;
    assert!(
        matches!(outcome, PipelineOutcome::Failed { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn the_journal_holds_a_step_start_before_the_step_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, _) = Journal::open(dir.path()).expect("journal");
    let hooks = JournalHooks {
        journal: journal.clone(),
        target: "api".into(),
        release_id: "r42".into(),
    };
    let journal_file = journal.path().display().to_string();
    let steps = [command(
        "precheck",
        "journaled",
        Path::new("/bin/grep"),
        &["-q", r#""step":"journaled""#, &journal_file],
        "",
    )];
    let (_tx, stop) = watch::channel(false);
    let outcome = pipeline::run(&steps, &ctx("v2", "v1"), &deps(&[]), &hooks, stop).await;
    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    let mut events: Vec<Event> = journal.records().into_iter().map(|r| r.event).collect();
    // The program's process group is recorded while it runs, for a restart
    // after a crash to stop what is left of it.
    let process = events.remove(1);
    assert!(
        matches!(&process, Event::StepProcess { step, group, .. }
            if step == "journaled" && group.pgid > 1 && group.started.is_some()),
        "{process:?}"
    );
    assert_eq!(
        events,
        [
            Event::StepStarted {
                release_id: "r42".into(),
                step: "journaled".into(),
                attempt: 1
            },
            Event::StepFinished {
                release_id: "r42".into(),
                step: "journaled".into(),
                outcome: StepOutcome::Ok,
                message: None
            },
        ]
    );

    // When the start cannot be recorded, the step does not run.
    let marker = dir.path().join("marker");
    let steps = [command(
        "rollback",
        "deploy",
        Path::new("/usr/bin/touch"),
        &[&marker.display().to_string()],
        "",
    )];
    let hooks = RecordingHooks {
        refuse_start: true,
        ..RecordingHooks::default()
    };
    let (_tx, stop) = watch::channel(false);
    let outcome = pipeline::run(&steps, &ctx("v2", "v1"), &deps(&[]), &hooks, stop).await;
    let PipelineOutcome::Failed { message, .. } = outcome else {
        panic!("expected failure: {outcome:?}");
    };
    assert_eq!(message, "journal is full");
    assert!(!marker.exists(), "a step ran without its start on record");
}

fn data_check(dir: &Path, name: &str, body: &str, timeout: &str) -> DataCheckConfig {
    let program = script(dir, name, body);
    toml::from_str(&format!(
        "name = '{name}'\nargv = ['{}', '{{{{previous_version}}}}', '{{{{version}}}}']\ntimeout = '{timeout}'",
        program.display()
    ))
    .expect("a data check")
}

#[tokio::test]
async fn data_checks_report_the_worst_impact_and_distrust_odd_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vars = DataCheckContext {
        vars: BTreeMap::from([
            ("version", "v2".to_owned()),
            ("previous_version", "v1".to_owned()),
        ]),
        link: None,
    };
    let none = data_check(
        dir.path(),
        "none",
        "[ \"$1 $2\" = 'v1 v2' ] && echo none",
        "10s",
    );
    let minor = data_check(dir.path(), "minor", "echo minor", "10s");
    let major = data_check(dir.path(), "major", "echo major", "10s");
    let garbage = data_check(dir.path(), "garbage", "echo 'maybe?'", "10s");
    let failing = data_check(
        dir.path(),
        "failing",
        "echo 'db unreachable' >&2; exit 2",
        "10s",
    );
    let slow = data_check(dir.path(), "slow", "sleep 30", "200ms");

    assert_eq!(
        data_impact(std::slice::from_ref(&none), &vars).await.0,
        DataImpact::None
    );
    assert_eq!(
        data_impact(&[none.clone(), minor.clone()], &vars).await.0,
        DataImpact::Minor
    );
    assert_eq!(
        data_impact(&[minor.clone(), major], &vars).await.0,
        DataImpact::Major
    );
    for (check, why) in [
        (
            garbage,
            "printed \"maybe?\" instead of none, minor or major",
        ),
        (failing, "failed (exit code 2): db unreachable"),
        (slow, "timed out after 200ms"),
    ] {
        let (impact, evidence) = data_impact(&[none.clone(), check], &vars).await;
        assert_eq!(impact, DataImpact::Major);
        assert_eq!(evidence[0], "data check `none`: none");
        assert!(evidence[1].contains(why), "{}", evidence[1]);
        assert!(evidence[1].contains("counted as major"), "{}", evidence[1]);
    }
}

/// A `backup` step in the database phase writing its arguments to
/// `backup-args`, a symlink switch and a report step writing `reported`,
/// over `release_dir()`'s releases; the backup program is `body`.
fn backup_pipeline(dir: &Path, link: &Path, body: &str, on_failure: &str) -> Vec<StepConfig> {
    let backup = script(dir, "backup", body);
    let mut steps = vec![
        step(&format!(
            "phase = 'rollback'\nkind = 'symlink_switch'\nlink = '{}'",
            link.display()
        )),
        command(
            "report",
            "report",
            Path::new("/usr/bin/touch"),
            &[&dir.join("reported").display().to_string()],
            "",
        ),
    ];
    steps.insert(
        0,
        step(&format!(
            "phase = 'database'\nkind = 'backup'\nname = 'dump'\nargv = ['{}', '{}', 'db-{{{{timestamp}}}}-{{{{version}}}}-to-{{{{previous_version}}}}.sql']\non_failure = '{on_failure}'",
            backup.display(),
            dir.join("backup-args").display()
        )),
    );
    steps
}

#[tokio::test]
async fn a_backup_runs_first_with_the_rollback_s_timestamp_and_versions() {
    let (dir, link) = release_dir();
    let steps = backup_pipeline(dir.path(), &link, "printf '%s' \"$2\" > \"$1\"", "abort");
    let ctx = ctx("v2", "v1");
    assert_eq!(
        pipeline::describe(&steps[0], &ctx),
        format!(
            "backup: {} {} db-20240115T120000Z-v2-to-v1.sql",
            dir.path().join("backup").display(),
            dir.path().join("backup-args").display()
        )
    );
    let outcome = run(&steps, &ctx, &deps(&[])).await;
    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    let written = std::fs::read_to_string(dir.path().join("backup-args")).expect("backup ran");
    assert_eq!(written, "db-20240115T120000Z-v2-to-v1.sql");
    assert_eq!(
        std::fs::read_link(&link).expect("a link"),
        PathBuf::from("releases/v1")
    );
}

#[tokio::test]
async fn a_failing_backup_stops_the_pipeline_before_the_version_changes() {
    let (dir, link) = release_dir();
    // `on_failure = "continue"` (which validation refuses on a backup)
    // changes nothing: a failed backup aborts.
    for on_failure in ["abort", "continue"] {
        let steps = backup_pipeline(
            dir.path(),
            &link,
            "echo 'pg_dump: connection refused' >&2\nexit 1",
            on_failure,
        );
        let hooks = RecordingHooks::default();
        let (_tx, stop) = watch::channel(false);
        let outcome = pipeline::run(&steps, &ctx("v2", "v1"), &deps(&[]), &hooks, stop).await;
        let PipelineOutcome::Failed {
            step,
            message,
            steps: reports,
        } = outcome
        else {
            panic!("expected the backup to abort ({on_failure}): {outcome:?}");
        };
        assert_eq!(step, "dump");
        assert!(message.contains("pg_dump: connection refused"), "{message}");
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(hooks.calls(), ["started dump 1", "finished dump Failed"]);
        assert_eq!(
            std::fs::read_link(&link).expect("a link"),
            PathBuf::from("releases/v2"),
            "the link still points at the bad release ({on_failure})"
        );
        assert!(!dir.path().join("reported").exists());
    }
}

#[tokio::test]
async fn a_migrations_check_lists_each_version_s_migrations_with_a_real_program() {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = script(
        dir.path(),
        "list-migrations",
        "case \"$1\" in\n  v1) echo 001_init ;;\n  v2) echo 001_init; echo 002_orders; echo 003_orders_index ;;\n  *) echo \"no release $1\" >&2; exit 4 ;;\nesac",
    );
    let check: DataCheckConfig = toml::from_str(&format!(
        "name = 'schema'\nkind = 'migrations'\nlist_argv = ['{}', '{{{{version}}}}']",
        list.display()
    ))
    .expect("a data check");
    let cx = |version: &str| DataCheckContext {
        vars: BTreeMap::from([
            ("version", version.to_owned()),
            ("previous_version", "v1".to_owned()),
        ]),
        link: None,
    };
    let checks = std::slice::from_ref(&check);
    let (impact, evidence) = data_impact(checks, &cx("v2")).await;
    assert_eq!(impact, DataImpact::Major);
    assert_eq!(
        evidence,
        [
            "data check `schema`: schema migrations since v1: 002_orders, 003_orders_index; prefer a forward fix"
        ]
    );
    let (impact, evidence) = data_impact(checks, &cx("v7")).await;
    assert_eq!(impact, DataImpact::Major);
    assert!(
        evidence[0].contains("listing the migrations of v7: failed (exit code 4): no release v7"),
        "{evidence:?}"
    );
}

/// `note NAME` appends NAME to `dir/log`; returns the script and the log.
fn notes(dir: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join("log");
    let note = script(dir, "note", &format!("echo \"$1\" >> '{}'", log.display()));
    (note, log)
}

#[tokio::test]
async fn restore_steps_run_after_an_aborting_step_and_their_failure_hides_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (note, log) = notes(dir.path());
    let fail = script(dir.path(), "fail", "echo \"$1 broke\" >&2; exit 1");
    let steps = [
        command("traffic", "drain", &note, &["drain"], ""),
        command("rollback", "deploy", &fail, &["deploy"], ""),
        command("verify", "check", &note, &["check"], ""),
        command("verify", "snapshot", &note, &["snapshot"], "always = true"),
        command("restore", "undrain", &fail, &["undrain"], ""),
        command("report", "report", &note, &["report"], ""),
        command("cleanup", "tidy", &note, &["tidy"], ""),
    ];
    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;
    let ran = std::fs::read_to_string(&log).expect("steps ran");
    assert_eq!(ran, "drain\nsnapshot\ntidy\n");
    let PipelineOutcome::Failed { step, message, .. } = &outcome else {
        panic!("expected failure: {outcome:?}");
    };
    assert_eq!(
        (step.as_str(), message.as_str()),
        ("deploy", "exit code 1: deploy broke"),
        "the first failure stays the one named"
    );
    let names: Vec<&str> = outcome.steps().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["drain", "deploy", "snapshot", "undrain", "tidy"]);
    let failures: Vec<&str> = outcome
        .restore_failures()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(failures, ["undrain"]);
    assert_eq!(outcome.label(), "aborted");
}

#[tokio::test]
async fn restore_steps_run_when_a_shutdown_stops_the_pipeline_and_are_journaled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (note, log) = notes(dir.path());
    let (journal, _) = Journal::open(&dir.path().join("journal")).expect("journal");
    let steps = vec![
        command("traffic", "drain", &note, &["drain"], ""),
        step("phase = 'rollback'\nkind = 'wait'\nname = 'settle'\nduration = '60s'"),
        command("verify", "check", &note, &["check"], ""),
        command("restore", "undrain", &note, &["undrain"], ""),
    ];
    let hooks = JournalHooks {
        journal: journal.clone(),
        target: "api".into(),
        release_id: "r42".into(),
    };
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(async move {
        pipeline::run(&steps, &ctx("v2", "v1"), &deps(&[]), &hooks, stop).await
    });
    // Stop once the wait has started.
    let deadline = Instant::now() + Duration::from_secs(10);
    let waiting = || {
        journal
            .records()
            .into_iter()
            .any(|r| matches!(r.event, Event::StepStarted { ref step, .. } if step == "settle"))
    };
    while !waiting() {
        assert!(Instant::now() < deadline, "the wait never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop_tx.send(true).expect("pipeline listens");
    let outcome = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the wait ends early")
        .expect("pipeline task");
    assert!(
        matches!(&outcome, PipelineOutcome::Interrupted { step, .. } if step == "settle"),
        "{outcome:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&log).expect("log"),
        "drain\nundrain\n"
    );
    let journaled: Vec<String> = journal
        .records()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::StepFinished { step, outcome, .. } => Some(format!("{step} {outcome}")),
            _ => None,
        })
        .collect();
    assert_eq!(journaled, ["drain ok", "settle interrupted", "undrain ok"]);
}
