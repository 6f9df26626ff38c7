//! `swarm_rollback` and `swarm_set_image` against the fake `docker`
//! (`tests/fake_docker.py`), which records every call and plays the
//! service's states.

use super::{ctx, deps, run, step};
use crate::fake_docker::{FakeDocker, service};
use rollguard::model::{Mode, StepOutcome};
use rollguard::pipeline::{self, PipelineOutcome, StepReport};

const INSPECT: &str = "service inspect --format {{json .}} api";
const ROLLBACK: &str = "service update --rollback --detach api";

fn rollback_step(docker: &FakeDocker, extra: &str) -> rollguard::config::StepConfig {
    step(&format!(
        "phase = 'rollback'\nkind = 'swarm_rollback'\nservice = 'api'\ndocker = {}\n{extra}",
        docker.toml_path()
    ))
}

/// The only step's report.
fn only(outcome: &PipelineOutcome) -> &StepReport {
    assert_eq!(outcome.steps().len(), 1, "{outcome:?}");
    &outcome.steps()[0]
}

#[tokio::test]
async fn a_rollback_waits_for_rollback_completed_of_its_own_update() {
    let t1 = "2026-01-01T10:00:00Z";
    let t2 = "2026-01-01T10:05:00Z";
    let docker = FakeDocker::new(&[
        service(
            "reg/app:v2@sha256:aa",
            Some("reg/app:v1"),
            "completed",
            t1,
            "update completed",
        ),
        // The manager has not taken the rollback up yet: the old status.
        service(
            "reg/app:v2@sha256:aa",
            Some("reg/app:v1"),
            "completed",
            t1,
            "update completed",
        ),
        service(
            "reg/app:v1",
            Some("reg/app:v2"),
            "rollback_started",
            t2,
            "rollback in progress",
        ),
        service(
            "reg/app:v1",
            Some("reg/app:v2"),
            "rollback_completed",
            t2,
            "rollback completed",
        ),
    ]);
    let outcome = run(&[rollback_step(&docker, "")], &ctx("v2", "v1"), &deps(&[])).await;
    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    let report = only(&outcome);
    assert_eq!(report.outcome, StepOutcome::Ok);
    assert_eq!(
        report.message.as_deref(),
        Some("service api rolled back: it runs reg/app:v1")
    );
    assert_eq!(
        docker.calls(),
        [INSPECT, ROLLBACK, INSPECT, INSPECT, INSPECT]
    );
}

#[tokio::test]
async fn a_paused_rollback_fails_with_the_manager_s_message_and_is_not_retried() {
    let paused = "update paused due to failure or early termination of task 9rz";
    let docker = FakeDocker::new(&[
        service(
            "reg/app:v2",
            Some("reg/app:v1"),
            "paused",
            "t1",
            "update paused",
        ),
        service(
            "reg/app:v1",
            Some("reg/app:v2"),
            "rollback_paused",
            "t2",
            paused,
        ),
    ]);
    let steps = [rollback_step(&docker, "retries = 2\nbackoff = '10ms'")];
    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;
    assert!(
        matches!(outcome, PipelineOutcome::Failed { .. }),
        "{outcome:?}"
    );
    let report = only(&outcome);
    assert_eq!((report.outcome, report.attempts), (StepOutcome::Failed, 1));
    let message = report.message.as_deref().unwrap_or_default();
    assert!(
        message.contains(&format!("the rollback of service api paused: {paused}")),
        "{message}"
    );
    // A second --rollback would roll forward again: one only.
    assert_eq!(docker.updates(), [ROLLBACK]);
}

#[tokio::test]
async fn a_rollback_that_does_not_converge_times_out_and_a_retry_only_waits() {
    let docker = FakeDocker::new(&[
        service("reg/app:v2", Some("reg/app:v1"), "completed", "t1", ""),
        service(
            "reg/app:v1",
            Some("reg/app:v2"),
            "rollback_started",
            "t2",
            "rollback in progress",
        ),
    ]);
    let steps = [rollback_step(
        &docker,
        "timeout = '1s'\nretries = 1\nbackoff = '10ms'",
    )];
    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;
    let report = only(&outcome);
    assert_eq!(
        (report.outcome, report.attempts),
        (StepOutcome::TimedOut, 2)
    );
    let message = report.message.as_deref().unwrap_or_default();
    assert!(
        message.contains(
            "not converged within 1s (last update status: rollback_started (rollback in progress))"
        ),
        "{message}"
    );
    assert_eq!(docker.updates(), [ROLLBACK], "{:?}", docker.calls());
}

#[tokio::test]
async fn no_previous_spec_or_a_failing_update_is_a_failure_with_the_reason() {
    let docker = FakeDocker::new(&[service("reg/app:v2", None, "", "", "")]);
    let outcome = run(
        &[rollback_step(&docker, "retries = 3")],
        &ctx("v2", "v1"),
        &deps(&[]),
    )
    .await;
    let report = only(&outcome);
    assert_eq!((report.outcome, report.attempts), (StepOutcome::Failed, 1));
    assert_eq!(
        report.message.as_deref(),
        Some("service api has no previous spec to roll back to")
    );
    assert!(docker.updates().is_empty());

    docker.play(&[service(
        "reg/app:v2",
        Some("reg/app:v1"),
        "completed",
        "t1",
        "",
    )]);
    docker.fail_updates("Error response from daemon: rpc error: code = Unavailable\n");
    let outcome = run(&[rollback_step(&docker, "")], &ctx("v2", "v1"), &deps(&[])).await;
    let message = only(&outcome).message.clone().unwrap_or_default();
    assert!(
        message.contains("exit code 1: Error response from daemon: rpc error"),
        "{message}"
    );

    docker.play(&["missing".into()]);
    let outcome = run(&[rollback_step(&docker, "")], &ctx("v2", "v1"), &deps(&[])).await;
    let message = only(&outcome).message.clone().unwrap_or_default();
    assert!(message.contains("Error: no such service: api"), "{message}");
}

#[tokio::test]
async fn set_image_sends_the_rendered_image_and_waits_for_completed() {
    let docker = FakeDocker::new(&[
        service("reg/app:v2", Some("reg/app:v1"), "completed", "t1", ""),
        service(
            "reg/app:v1",
            Some("reg/app:v2"),
            "updating",
            "t2",
            "update in progress",
        ),
        service(
            "reg/app:v1@sha256:bb",
            Some("reg/app:v2"),
            "completed",
            "t2",
            "update completed",
        ),
    ]);
    let set = step(&format!(
        "phase = 'rollback'\nkind = 'swarm_set_image'\nservice = 'api'\nimage = 'reg/app:{{{{previous_version}}}}'\ndocker = {}",
        docker.toml_path()
    ));
    let outcome = run(std::slice::from_ref(&set), &ctx("v2", "v1"), &deps(&[])).await;
    let report = only(&outcome);
    assert_eq!(report.outcome, StepOutcome::Ok, "{report:?}");
    assert_eq!(
        report.message.as_deref(),
        Some("service api updated: it runs reg/app:v1@sha256:bb")
    );
    assert_eq!(
        docker.updates(),
        ["service update --detach --image=reg/app:v1 api"]
    );

    // Already there: nothing is sent.
    let before = docker.calls().len();
    let outcome = run(std::slice::from_ref(&set), &ctx("v2", "v1"), &deps(&[])).await;
    assert_eq!(
        only(&outcome).message.as_deref(),
        Some("service api already runs reg/app:v1")
    );
    assert_eq!(docker.calls().len(), before + 1, "one inspect only");

    // An update Swarm undoes is a failure.
    docker.play(&[
        service("reg/app:v2", Some("reg/app:v1"), "completed", "t1", ""),
        service(
            "reg/app:v2",
            Some("reg/app:v1"),
            "rollback_started",
            "t3",
            "update rolled back due to failure",
        ),
    ]);
    let outcome = run(std::slice::from_ref(&set), &ctx("v2", "v1"), &deps(&[])).await;
    let message = only(&outcome).message.clone().unwrap_or_default();
    assert!(
        message.contains("failed and Swarm is rolling it back (rollback_started): update rolled back due to failure"),
        "{message}"
    );
}

#[tokio::test]
async fn shadow_mode_describes_and_inspects_but_changes_nothing() {
    let docker = FakeDocker::new(&[service(
        "reg/app:v2",
        Some("reg/app:v1"),
        "completed",
        "t1",
        "",
    )]);
    let steps = [rollback_step(&docker, "timeout = '2m'")];
    let mut shadow = ctx("v2", "v1");
    shadow.mode = Mode::Shadow;
    let preview = pipeline::preview(&steps, &shadow, &deps(&[])).await;
    assert_eq!(
        preview.steps,
        ["swarm_rollback: service api to its previous spec (v1), until rolled back, at most 2m"]
    );
    assert_eq!(
        preview.dry_runs,
        [
            "service api runs reg/app:v2 and would roll back to reg/app:v1 (inspected; docker has no dry run)"
        ]
    );
    assert_eq!(docker.calls(), [INSPECT]);

    docker.play(&[service("reg/app:v2", None, "", "", "")]);
    let preview = pipeline::preview(&steps, &shadow, &deps(&[])).await;
    assert_eq!(
        preview.dry_runs,
        ["service api has no previous spec to roll back to: a rollback would fail"]
    );
    assert!(docker.updates().is_empty());
}

#[tokio::test]
async fn a_precheck_stops_the_pipeline_before_anything_changes() {
    let docker = FakeDocker::new(&[
        service(
            "reg/app:v2@sha256:aa",
            Some("reg/app:v1"),
            "completed",
            "t1",
            "",
        ),
        service(
            "reg/app:v2@sha256:aa",
            Some("reg/app:v1"),
            "completed",
            "t1",
            "",
        ),
        service(
            "reg/app:v1",
            Some("reg/app:v2"),
            "rollback_completed",
            "t2",
            "",
        ),
    ]);
    let precheck = step(&format!(
        "phase = 'precheck'\nkind = 'swarm_precheck'\nservice = 'api'\ndocker = {}",
        docker.toml_path()
    ));
    let steps = [rollback_step(&docker, ""), precheck.clone()];
    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;
    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.steps()[0].message.as_deref(),
        Some("service api runs v2 and its previous spec v1")
    );
    assert_eq!(docker.updates(), [ROLLBACK]);

    // Someone else already rolled back: nothing is sent.
    let cases = [
        (
            service(
                "reg/app:v1",
                Some("reg/app:v2"),
                "rollback_completed",
                "t2",
                "",
            ),
            "service api runs v1, not v2: someone else already acted; nothing was changed",
        ),
        (
            service("reg/app:v2", Some("reg/app:v0"), "completed", "t1", ""),
            "the previous spec of service api runs v0, not v1: a rollback would not bring v1 back (pin it with swarm_set_image)",
        ),
        (
            service("reg/app:v2", None, "", "", ""),
            "service api has no previous spec to roll back to",
        ),
    ];
    for (state, why) in cases {
        let docker = FakeDocker::new(&[state]);
        let precheck = step(&format!(
            "phase = 'precheck'\nkind = 'swarm_precheck'\nservice = 'api'\ndocker = {}\nretries = 2",
            docker.toml_path()
        ));
        let steps = [rollback_step(&docker, ""), precheck];
        let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;
        assert!(
            matches!(outcome, PipelineOutcome::Failed { .. }),
            "{outcome:?}"
        );
        let report = &outcome.steps()[0];
        assert_eq!((report.attempts, report.message.as_deref()), (1, Some(why)));
        assert!(docker.updates().is_empty(), "{:?}", docker.calls());
    }

    // Shadow mode runs it: it only reads.
    docker.play(&[service(
        "reg/app:v2",
        Some("reg/app:v1"),
        "completed",
        "t1",
        "",
    )]);
    let mut shadow = ctx("v2", "v1");
    shadow.mode = Mode::Shadow;
    let preview = pipeline::preview(&[precheck], &shadow, &deps(&[])).await;
    assert_eq!(
        preview.steps,
        [
            "swarm_precheck: service api still runs v2 and its previous spec v1, else stop before anything changes"
        ]
    );
    assert_eq!(
        preview.dry_runs,
        ["service api runs v2 and its previous spec v1"]
    );
}
