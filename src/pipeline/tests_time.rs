//! Waits, verification rounds and retry backoff on tokio's paused clock:
//! minutes of pipeline time in no real time, measured exactly.

use super::*;
use crate::config::MapEnvironment;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::watch;

/// Records nothing; every hook succeeds.
struct NoHooks;

impl PipelineHooks for NoHooks {
    fn step_started<'a>(&'a self, _: &'a str, _: u32) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn step_finished<'a>(
        &'a self,
        _: &'a str,
        _: StepOutcome,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// Never sees the target back to normal; counts its rounds.
#[derive(Default)]
struct NeverHealthy {
    rounds: AtomicU32,
}

impl Verifier for NeverHealthy {
    fn verify_once(&self) -> BoxFuture<'_, VerifyResult> {
        self.rounds.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { VerifyResult::NotYet("error rate 3x".to_owned()) })
    }
}

fn ctx() -> RollbackContext {
    RollbackContext::fixture(Mode::Enforce)
}

fn deps(verifier: Option<Arc<NeverHealthy>>) -> PipelineDeps {
    let env = Arc::new(MapEnvironment::default());
    let mut deps = PipelineDeps::new(reqwest::Client::new(), env);
    deps.verifier = verifier.map(|v| v as Arc<dyn Verifier>);
    deps
}

fn step(toml_text: &str) -> StepConfig {
    toml::from_str(toml_text).expect("a valid step")
}

async fn run_alone(step: StepConfig, deps: &PipelineDeps) -> (PipelineOutcome, Duration) {
    let (_stop_tx, stop) = watch::channel(false);
    let real = std::time::Instant::now();
    let outcome = run(&[step], &ctx(), deps, &NoHooks, stop).await;
    (outcome, real.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_wait_takes_its_duration_of_tokio_time() {
    let wait = step("phase = 'verify'\nkind = 'wait'\nduration = '10m'");
    let (outcome, real) = run_alone(wait, &deps(None)).await;
    let PipelineOutcome::Completed { steps, .. } = &outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(steps[0].duration, Duration::from_secs(600));
    assert!(real < Duration::from_secs(5), "slept for real: {real:?}");
}

#[tokio::test(start_paused = true)]
async fn verification_gives_up_at_its_timeout() {
    let verifier = Arc::new(NeverHealthy::default());
    let verify = step("phase = 'verify'\nkind = 'verify'\ntimeout = '5m'");
    let (outcome, _) = run_alone(verify, &deps(Some(verifier.clone()))).await;
    let PipelineOutcome::Failed { message, steps, .. } = &outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        message,
        "not back to baseline within 5m (not yet: error rate 3x)"
    );
    // One round a second (the default poll), the last one a second before
    // the deadline.
    assert_eq!(verifier.rounds.load(Ordering::SeqCst), 300);
    assert_eq!(steps[0].duration, Duration::from_secs(299));
}

#[tokio::test(start_paused = true)]
async fn retries_wait_a_doubling_backoff() {
    let verifier = Arc::new(NeverHealthy::default());
    let verify =
        step("phase = 'verify'\nkind = 'verify'\ntimeout = '2s'\nretries = 2\nbackoff = '10s'");
    let (outcome, _) = run_alone(verify, &deps(Some(verifier.clone()))).await;
    let PipelineOutcome::Failed { steps, .. } = &outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(steps[0].attempts, 3);
    // Each attempt: rounds at 0 s and 1 s; then 10 s, then 20 s of backoff.
    assert_eq!(verifier.rounds.load(Ordering::SeqCst), 6);
    assert_eq!(steps[0].duration, Duration::from_secs(1 + 10 + 1 + 20 + 1));
}

#[tokio::test(start_paused = true)]
async fn the_upper_bound_sums_every_attempt_backoff_and_verification_and_holds() {
    let verifier = Arc::new(NeverHealthy::default());
    let steps = [
        step(
            "phase = 'verify'\nkind = 'verify'\ntimeout = '2s'\nretries = 2\nbackoff = '10s'\non_failure = 'continue'",
        ),
        step("phase = 'verify'\nkind = 'wait'\nduration = '1m'\ntimeout = '10s'"),
    ];
    let verification = Duration::from_secs(30);
    // verify: 3 attempts of 2 s + 5 s backstop, backoffs of 10 s and 20 s;
    // wait: its minute + 5 s; then the daemon's own verification, since no
    // aborting `verify` step can have seen the target back to normal.
    let bound = upper_bound(&steps, verification);
    assert_eq!(bound, Duration::from_secs(3 * 7 + 10 + 20 + 65 + 30));
    let (_stop_tx, stop) = watch::channel(false);
    let start = tokio::time::Instant::now();
    let outcome = run(&steps, &ctx(), &deps(Some(verifier)), &NoHooks, stop).await;
    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    assert!(
        start.elapsed() + verification <= bound,
        "{:?}",
        start.elapsed()
    );
    // An aborting `verify` step that passes is the verification.
    let mut aborting = steps;
    aborting[0].common.on_failure = crate::config::OnFailure::Abort;
    assert_eq!(upper_bound(&aborting, verification), bound - verification);
}
