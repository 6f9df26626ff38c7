//! The whole daemon against real parts: `daemon::run_until` in-process, a
//! real Prometheus (`/usr/bin/prometheus`) scraping a demo service that
//! follows a `current` symlink into real release directories, a real
//! webhook receiver, real command steps and a real symlink switch.
//!
//! Every test starts its own Prometheus and watches one target, `shop`,
//! every second. `v1` runs at the start; `v2` and `v4` are broken (health
//! 503, half of the requests fail); `v3` is good. Tests wait on the
//! journal, the webhook receiver or the watchdog's tick count, never on
//! fixed sleeps; "nothing happened" is asserted over a number of ticks.

#[allow(dead_code)]
mod common;

use common::e2e::{BAD, BAD_TOO, Daemon, GOOD, GOOD_TOO, TARGET, TargetSetup, World};
use rollguard::journal::Event;
use rollguard::model::Decision;
use rollguard::model::StepOutcome;
use rollguard::state::CommandError;

/// Ticks a test keeps watching to show that something does not happen.
const QUIET_TICKS: u64 = 4;

fn is_rollback_finished(event: &Event) -> bool {
    matches!(event, Event::RollbackFinished { .. })
}

fn outcome_of(daemon: &Daemon) -> Vec<String> {
    daemon
        .find(is_rollback_finished)
        .into_iter()
        .map(|r| match r.event {
            Event::RollbackFinished { outcome, .. } => outcome,
            _ => unreachable!(),
        })
        .collect()
}

/// Waits until a rollback has finished; the outcome of each one so far.
async fn finished_rollbacks(daemon: &Daemon) -> Vec<String> {
    daemon
        .wait_until("the rollback finishes", |d| {
            !d.find(is_rollback_finished).is_empty()
        })
        .await;
    outcome_of(daemon)
}

/// The release rollguard's own rollback brought back; returns its id.
async fn wait_restored(daemon: &Daemon, version: &str) -> String {
    let record = daemon
        .wait_for(
            &format!("{version} seen again as rollguard's own"),
            |e| matches!(e, Event::ReleaseSeen { to, by_rollguard: true, .. } if to == version),
        )
        .await;
    match record.event {
        Event::ReleaseSeen { release_id, .. } => release_id,
        _ => unreachable!(),
    }
}

async fn wait_decision(daemon: &Daemon, release_id: &str, decision: Decision) {
    daemon
        .wait_until(&format!("{decision} about {release_id}"), |d| {
            d.decisions(release_id).contains(&decision)
        })
        .await;
}

async fn wait_bake_finished(daemon: &Daemon, release_id: &str) -> Decision {
    let record = daemon
        .wait_for(
            "the bake window closes",
            |e| matches!(e, Event::BakeFinished { release_id: id, .. } if id == release_id),
        )
        .await;
    match record.event {
        Event::BakeFinished { decision, .. } => decision,
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_release_is_rolled_back_once_and_the_restored_version_only_verified() {
    let world = World::start().await;
    let daemon = world
        .start_daemon(&world.config(&TargetSetup::enforce(world.steps())))
        .await;

    world.deploy(BAD);
    let release_id = daemon.wait_release(BAD).await;
    assert_eq!(
        finished_rollbacks(&daemon).await,
        ["completed"],
        "{}",
        daemon.timeline()
    );
    assert_eq!(world.running(), GOOD, "the link points at the good release");

    let started = daemon.find(|e| matches!(e, Event::RollbackStarted { .. }));
    assert_eq!(
        started[0].event,
        Event::RollbackStarted {
            release_id: release_id.clone(),
            from: BAD.to_owned(),
            to: GOOD.to_owned(),
            trigger: "automatic".to_owned(),
        }
    );
    // The step got the context as arguments (templates) and environment.
    let reasons = daemon
        .find(|e| {
            matches!(e, Event::DecisionMade { release_id: id, decision: Decision::Rollback, .. } if *id == release_id)
        })
        .into_iter()
        .find_map(|r| match r.event {
            Event::DecisionMade { reasons, .. } => Some(reasons),
            _ => None,
        })
        .expect("the rollback decision is journaled");
    let runs = world.step_runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    for line in [
        format!("argv: {TARGET} {BAD} {GOOD} {release_id} enforce"),
        format!("ROLLGUARD_TARGET={TARGET}"),
        format!("ROLLGUARD_FROM_VERSION={BAD}"),
        format!("ROLLGUARD_TO_VERSION={GOOD}"),
        format!("ROLLGUARD_RELEASE_ID={release_id}"),
        "ROLLGUARD_MODE=enforce".to_owned(),
        format!("ROLLGUARD_REASON={}", reasons.join("; ")),
    ] {
        assert!(
            run.lines().any(|l| l == line),
            "{line:?} missing from the step's record:\n{run}"
        );
    }
    assert!(
        reasons.iter().any(|r| r.contains("health")),
        "the reasons name the failing probe: {reasons:?}"
    );

    // The good version comes back as rollguard's own release: a
    // verification window. Now the good version goes bad too: rollguard
    // says so, and does not roll back again.
    let restored = wait_restored(&daemon, GOOD).await;
    world.set_broken(GOOD, true);
    wait_decision(&daemon, &restored, Decision::Rollback).await;
    let said = world
        .hooks
        .wait("decision", |b| b["release_id"] == restored.as_str())
        .await;
    assert!(
        said["text"]
            .as_str()
            .unwrap_or_default()
            .contains("unhealthy too"),
        "{said}"
    );
    daemon.wait_ticks(QUIET_TICKS).await;
    assert_eq!(daemon.rollbacks_started(), 1, "{}", daemon.timeline());
    assert_eq!(world.step_runs().len(), 1);
    assert_eq!(world.running(), GOOD);
    assert_eq!(world.hooks.of("rollback_started").len(), 1);
    assert_eq!(world.hooks.of("rollback_completed").len(), 1);
    // The webhook got every step; the Slack channel the rollback's start
    // and end, and no step.
    assert!(!world.hooks.of("rollback_step").is_empty());
    let completed = &world.hooks.of("rollback_completed")[0];
    assert_eq!(completed["status_channel"], "#status-shop");
    let text = completed["text"].as_str().unwrap_or_default();
    assert!(text.ends_with("\nStatus: #status-shop"), "{text}");
    // The start says by when the pipeline is over at the latest: record
    // (10 s), switch (10 s), verify (25 s), each plus the 5 s backstop.
    let started = &world.hooks.of("rollback_started")[0];
    let eta = started["estimated_completion"].as_str().unwrap_or_default();
    let eta = humantime::parse_rfc3339(eta).unwrap_or_else(|e| panic!("{e}: {started}"));
    let at = humantime::parse_rfc3339(started["at"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {started}"));
    assert_eq!(
        eta.duration_since(at).ok(),
        Some(std::time::Duration::from_secs(60))
    );
    assert!(
        started["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Estimated completion: by "),
        "{started}"
    );
    let slack = world.slack.slack_events();
    for event in ["rollback_started", "rollback_completed"] {
        assert_eq!(
            slack.iter().filter(|e| *e == event).count(),
            1,
            "{event}: {slack:?}"
        );
    }
    assert!(!slack.iter().any(|e| e == "rollback_step"), "{slack:?}");
    assert!(!slack.iter().any(|e| e == "release_detected"), "{slack:?}");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_metric_rolls_a_bad_release_back_on_the_sequential_test() {
    let world = World::start().await;
    let mut setup = TargetSetup::enforce(world.steps());
    setup.probe = false;
    setup.counts = true;
    world.wait_for_traffic(6).await;
    let daemon = world.start_daemon(&world.config(&setup)).await;
    world.deploy(BAD);
    let release_id = daemon.wait_release(BAD).await;
    assert_eq!(
        finished_rollbacks(&daemon).await,
        ["completed"],
        "{}",
        daemon.timeline()
    );
    assert_eq!(world.running(), GOOD);
    let decisions = daemon.find(|e| {
        matches!(e, Event::DecisionMade { release_id: id, decision: Decision::Rollback, .. } if *id == release_id)
    });
    let Event::DecisionMade { reasons, .. } = &decisions[0].event else {
        unreachable!("filtered on DecisionMade");
    };
    assert!(
        reasons.iter().any(|r| r.starts_with("error_rate")
            && (r.contains("significantly worse") || r.contains("fast path"))),
        "{reasons:?}"
    );
    // The journaled evidence carries the test's statistic.
    let assessments =
        daemon.find(|e| matches!(e, Event::Assessment { release_id: id, .. } if *id == release_id));
    let Some(Event::Assessment { evidence, .. }) = assessments.last().map(|r| &r.event) else {
        panic!("no assessment journaled: {}", daemon.timeline());
    };
    let statistic = &evidence["evidence"][0]["statistic"];
    assert!(statistic["e_value"].as_f64().is_some(), "{evidence}");
    assert!(
        statistic["threshold"].as_f64().is_some_and(|t| t > 1.0),
        "{evidence}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_runs_nothing_and_says_what_would_have_run() {
    let world = World::start().await;
    let mut setup = TargetSetup::enforce(world.steps());
    setup.mode = "shadow";
    let daemon = world.start_daemon(&world.config(&setup)).await;

    world.deploy(BAD);
    let release_id = daemon.wait_release(BAD).await;
    let would = world
        .hooks
        .wait("would_rollback", |b| b["release_id"] == release_id.as_str())
        .await;
    let text = would["text"].as_str().unwrap_or_default();
    let root = world.root().display().to_string();
    for planned in [
        format!(
            "command: {} {TARGET} {BAD} {GOOD} {release_id} shadow",
            world.record_script.display()
        ),
        format!("symlink_switch: {root}/current → {root}/releases/{GOOD}"),
        "verify: until probes and metrics are back to baseline".to_owned(),
    ] {
        assert!(text.contains(&planned), "{planned:?} not in:\n{text}");
    }
    assert!(
        daemon.decisions(&release_id).contains(&Decision::Rollback),
        "{}",
        daemon.timeline()
    );

    daemon.wait_ticks(QUIET_TICKS).await;
    assert!(!world.record.exists(), "the command step never ran");
    assert_eq!(world.running(), BAD, "the link is untouched");
    assert_eq!(daemon.rollbacks_started(), 0, "{}", daemon.timeline());
    assert!(
        daemon
            .find(|e| matches!(e, Event::StepStarted { .. }))
            .is_empty()
    );
    assert_eq!(world.hooks.of("would_rollback").len(), 1);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_outage_holds_until_data_is_back_then_judges_again() {
    let mut world = World::start().await;
    let mut setup = TargetSetup::enforce(world.steps());
    setup.probe = false; // Prometheus is the only signal.
    let daemon = world.start_daemon(&world.config(&setup)).await;

    // v2 is good when it is deployed and goes bad once Prometheus is gone,
    // so nothing can be confirmed before the outage.
    world.set_broken(BAD, false);
    world.deploy(BAD);
    let release_id = daemon.wait_release(BAD).await;
    world.prometheus.stop();
    world.set_broken(BAD, true);

    let down = world
        .hooks
        .wait("monitoring_down", |b| {
            b["release_id"] == release_id.as_str()
        })
        .await;
    assert!(
        down["text"]
            .as_str()
            .unwrap_or_default()
            .contains("error_rate"),
        "{down}"
    );
    wait_decision(&daemon, &release_id, Decision::Inconclusive).await;
    daemon.wait_ticks(QUIET_TICKS).await;
    assert_eq!(daemon.rollbacks_started(), 0, "{}", daemon.timeline());
    assert!(world.hooks.of("monitoring_recovered").is_empty());
    assert_eq!(world.running(), BAD);

    world.prometheus.restart().await;
    world
        .hooks
        .wait("monitoring_recovered", |b| {
            b["release_id"] == release_id.as_str()
        })
        .await;
    // The release is still bad: once data is back it is judged again, the
    // breach is confirmed afresh, and it is rolled back.
    assert_eq!(
        finished_rollbacks(&daemon).await,
        ["completed"],
        "{}",
        daemon.timeline()
    );
    assert_eq!(world.running(), GOOD);
    let events = world.hooks.events();
    let position = |event: &str| events.iter().position(|e| e == event);
    assert!(
        position("monitoring_recovered") < position("rollback_started"),
        "{events:?}"
    );
    assert_eq!(world.hooks.of("monitoring_down").len(), 1, "{events:?}");
    assert_eq!(
        world.hooks.of("monitoring_recovered").len(),
        1,
        "{events:?}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_traffic_is_no_data_and_never_a_rollback() {
    let world = World::start().await;
    let mut setup = TargetSetup::enforce(world.steps());
    setup.probe = false;
    setup.bake_window = "10s";
    let daemon = world.start_daemon(&world.config(&setup)).await;

    world.service.set_rate(0.0);
    world.wait_for_ratio(|v| v.is_some_and(f64::is_nan)).await;
    world.deploy(BAD);
    let release_id = daemon.wait_release(BAD).await;
    let last = wait_bake_finished(&daemon, &release_id).await;

    let decisions = daemon.decisions(&release_id);
    assert!(!decisions.is_empty());
    assert!(
        decisions.iter().all(|d| *d == Decision::Inconclusive),
        "{decisions:?}"
    );
    assert_eq!(last, Decision::Inconclusive);
    let no_data = daemon.find(|e| match e {
        Event::Assessment { evidence, .. } => evidence.to_string().contains("no_data"),
        _ => false,
    });
    assert!(!no_data.is_empty(), "{}", daemon.timeline());
    assert_eq!(daemon.rollbacks_started(), 0);
    assert!(
        daemon
            .find(|e| matches!(e, Event::ApprovalRequested { .. }))
            .is_empty()
    );
    assert!(!world.record.exists());
    assert_eq!(world.running(), BAD);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_release_is_left_alone() {
    let world = World::start().await;
    let mut setup = TargetSetup::enforce(world.steps());
    setup.bake_window = "10s";
    let daemon = world.start_daemon(&world.config(&setup)).await;

    world.deploy(GOOD_TOO);
    let release_id = daemon.wait_release(GOOD_TOO).await;
    let last = wait_bake_finished(&daemon, &release_id).await;

    let decisions = daemon.decisions(&release_id);
    assert!(!decisions.is_empty());
    assert!(
        decisions.iter().all(|d| *d == Decision::Healthy),
        "{decisions:?}\n{}",
        daemon.timeline()
    );
    assert_eq!(last, Decision::Healthy);
    assert_eq!(daemon.rollbacks_started(), 0);
    assert!(
        daemon
            .find(|e| matches!(e, Event::ApprovalRequested { .. }))
            .is_empty()
    );
    assert_eq!(world.hooks.events(), ["release_detected"]);
    assert!(!world.record.exists());
    assert_eq!(world.running(), GOOD_TOO);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_mode_waits_for_a_human_then_rolls_back() {
    let world = World::start().await;
    let mut setup = TargetSetup::enforce(world.steps());
    setup.mode = "approve";
    let daemon = world.start_daemon(&world.config(&setup)).await;

    let refused = daemon.approve().await.expect_err("nothing to approve");
    assert_eq!(
        refused,
        CommandError::Refused(format!("no release of {TARGET} is being watched"))
    );

    world.deploy(BAD);
    let release_id = daemon.wait_release(BAD).await;
    daemon
        .wait_for(
            "approval requested",
            |e| matches!(e, Event::ApprovalRequested { release_id: id, .. } if *id == release_id),
        )
        .await;
    let asked = world
        .hooks
        .wait("approval_requested", |b| {
            b["release_id"] == release_id.as_str()
        })
        .await;
    let text = asked["text"].as_str().unwrap_or_default();
    assert!(text.contains("approve mode"), "{text}");
    assert!(
        text.contains(&format!("rollguard approve {TARGET}")),
        "{text}"
    );
    let approval = daemon
        .status()
        .and_then(|s| s.approval)
        .expect("the status shows the pending approval");
    assert!(
        approval["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("approve mode"),
        "{approval}"
    );

    daemon.wait_ticks(QUIET_TICKS).await;
    assert_eq!(daemon.rollbacks_started(), 0, "{}", daemon.timeline());
    assert!(!world.record.exists(), "nothing ran before the approval");
    assert_eq!(world.running(), BAD);

    let answer = daemon.approve().await.expect("the approval is taken");
    assert_eq!(
        answer,
        format!("approved: rolling back {TARGET} from {BAD} to {GOOD}")
    );
    assert_eq!(
        finished_rollbacks(&daemon).await,
        ["completed"],
        "{}",
        daemon.timeline()
    );
    assert_eq!(world.running(), GOOD);
    let started = daemon.find(|e| matches!(e, Event::RollbackStarted { .. }));
    assert!(
        matches!(&started[0].event, Event::RollbackStarted { trigger, .. } if trigger == "approved")
    );
    let approved = daemon.find(|e| matches!(e, Event::Approved { .. }));
    assert_eq!(approved.len(), 1);
    assert!(approved[0].seq < started[0].seq);
    let runs = world.step_runs();
    assert_eq!(runs.len(), 1);
    assert!(
        runs[0].lines().any(|l| l == "ROLLGUARD_MODE=approve"),
        "{}",
        runs[0]
    );

    // Refused either way: before the restored version is seen the release
    // is one rollguard acted on, after it nothing waits.
    let again = daemon.approve().await.expect_err("nothing waits any more");
    let refusals = [
        format!("no rollback of {TARGET} is waiting for approval"),
        format!("rollguard already acted on this release of {TARGET}; see `rollguard status`"),
    ];
    assert!(
        matches!(&again, CommandError::Refused(why) if refusals.contains(why)),
        "{again:?}"
    );
    assert_eq!(daemon.rollbacks_started(), 1);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_bad_release_within_the_cooldown_asks_for_approval() {
    let world = World::start().await;
    let mut setup = TargetSetup::enforce(world.steps());
    setup.cooldown = "10m";
    let daemon = world.start_daemon(&world.config(&setup)).await;

    world.deploy(BAD);
    daemon.wait_release(BAD).await;
    daemon
        .wait_until("the first rollback finishes", |d| {
            !d.find(is_rollback_finished).is_empty()
        })
        .await;
    assert_eq!(outcome_of(&daemon), ["completed"], "{}", daemon.timeline());
    wait_restored(&daemon, GOOD).await;

    world.deploy(BAD_TOO);
    let second = daemon.wait_release(BAD_TOO).await;
    daemon
        .wait_for(
            "approval requested for the second release",
            |e| matches!(e, Event::ApprovalRequested { release_id, .. } if *release_id == second),
        )
        .await;
    let asked = world
        .hooks
        .wait("approval_requested", |b| b["release_id"] == second.as_str())
        .await;
    assert!(
        asked["text"]
            .as_str()
            .unwrap_or_default()
            .contains("cooldown"),
        "{asked}"
    );
    let approval = daemon
        .status()
        .and_then(|s| s.approval)
        .expect("the status shows the pending approval");
    assert!(
        approval["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("cooldown:"),
        "{approval}"
    );

    daemon.wait_ticks(QUIET_TICKS).await;
    assert_eq!(daemon.rollbacks_started(), 1, "{}", daemon.timeline());
    assert_eq!(world.step_runs().len(), 1);
    assert_eq!(world.running(), BAD_TOO);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_aborts_the_pipeline() {
    let world = World::start().await;
    let steps = format!(
        r#"
[[target.step]]
phase = "precheck"
kind = "command"
name = "precheck"
argv = ["{}"]
timeout = "10s"
on_failure = "abort"

[[target.step]]
phase = "rollback"
kind = "symlink_switch"
link = "@ROOT@/current"

[[target.step]]
phase = "report"
kind = "command"
name = "report"
argv = ["{}", "{{{{target}}}}"]
"#,
        world.fail_script.display(),
        world.record_script.display()
    );
    let daemon = world
        .start_daemon(&world.config(&TargetSetup::enforce(steps)))
        .await;

    world.deploy(BAD);
    let release_id = daemon.wait_release(BAD).await;
    assert_eq!(
        finished_rollbacks(&daemon).await,
        ["failed"],
        "{}",
        daemon.timeline()
    );
    let failed = world
        .hooks
        .wait("rollback_failed", |b| {
            b["release_id"] == release_id.as_str()
        })
        .await;
    let text = failed["text"].as_str().unwrap_or_default();
    assert!(text.contains("step precheck failed"), "{text}");

    let steps_started: Vec<String> = daemon
        .find(|e| matches!(e, Event::StepStarted { .. }))
        .into_iter()
        .map(|r| match r.event {
            Event::StepStarted { step, .. } => step,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(steps_started, ["precheck"]);
    let precheck_failed = daemon.find(|e| {
        matches!(e, Event::StepFinished { step, outcome: StepOutcome::Failed, .. } if step == "precheck")
    });
    assert_eq!(precheck_failed.len(), 1, "{}", daemon.timeline());
    assert!(!world.record.exists(), "the report step never ran");
    assert_eq!(world.running(), BAD, "the link was not switched");

    // A failed rollback is left to a human: it is not tried again.
    daemon.wait_ticks(QUIET_TICKS).await;
    assert_eq!(daemon.rollbacks_started(), 1, "{}", daemon.timeline());
    daemon.stop().await;
}

/// The bad release adds a schema migration (a file in its
/// `db/migrations`): rolling back would run the old code on the new
/// schema, so the data impact is major, the rollback is left to a human,
/// and the reason names the migration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_between_the_versions_blocks_the_automatic_rollback() {
    let world = World::start().await;
    for (version, files) in [
        (GOOD, &["20240101000000_init.sql"][..]),
        (
            BAD,
            &["20240101000000_init.sql", "20240115120000_add_index.sql"][..],
        ),
    ] {
        let dir = world
            .root()
            .join("releases")
            .join(version)
            .join("db/migrations");
        std::fs::create_dir_all(&dir).expect("mkdir");
        for file in files {
            std::fs::write(dir.join(file), "-- sql").expect("migration");
        }
    }
    let steps = format!(
        "{}\n[[target.data_check]]\nname = \"schema\"\nkind = \"migrations\"\nmigrations_dir = \"db/migrations\"\n",
        world.steps()
    );
    let daemon = world
        .start_daemon(&world.config(&TargetSetup::enforce(steps)))
        .await;

    world.deploy(BAD);
    let release_id = daemon.wait_release(BAD).await;
    wait_decision(&daemon, &release_id, Decision::ConsiderRollback).await;
    let reasons: Vec<String> = daemon
        .find(|e| matches!(e, Event::DecisionMade { release_id: id, .. } if *id == release_id))
        .into_iter()
        .flat_map(|r| match r.event {
            Event::DecisionMade { reasons, .. } => reasons,
            _ => Vec::new(),
        })
        .collect();
    let expected = format!(
        "data check `schema`: schema migrations since {GOOD}: 20240115120000_add_index; prefer a forward fix"
    );
    assert!(reasons.contains(&expected), "{reasons:#?}");
    assert!(
        reasons.iter().any(|r| r.contains("health")),
        "the release is bad all the same: {reasons:#?}"
    );
    daemon.wait_ticks(QUIET_TICKS).await;
    assert!(
        !daemon.decisions(&release_id).contains(&Decision::Rollback),
        "{}",
        daemon.timeline()
    );
    assert_eq!(daemon.rollbacks_started(), 0, "{}", daemon.timeline());
    assert!(world.step_runs().is_empty(), "no step ran");
    assert_eq!(
        world.running(),
        BAD,
        "the link still points at the new release"
    );
    daemon.stop().await;
}

/// The scenario: a rollback completes, the daemon stops, and the version
/// the rollback brought back is found *bad* when a new daemon starts on
/// the same state directory. That is the case where a restart that forgot
/// what it did would act again (the service looks broken, and the last
/// release the journal knows of was a bad one). A healthy service would
/// prove nothing: no daemon rolls back a healthy release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_daemon_does_not_repeat_a_finished_rollback() {
    let world = World::start().await;
    let config = world.config(&TargetSetup::enforce(world.steps()));
    let first = world.start_daemon(&config).await;
    world.deploy(BAD);
    first.wait_release(BAD).await;
    assert_eq!(
        finished_rollbacks(&first).await,
        ["completed"],
        "{}",
        first.timeline()
    );
    let restored = wait_restored(&first, GOOD).await;
    first.stop().await;

    world.set_broken(GOOD, true);
    let second = world.start_daemon(&config).await;
    // The new daemon judges the (bad) running version in the verification
    // window the journal says is open, and does not act on it.
    wait_decision(&second, &restored, Decision::Rollback).await;
    second.wait_ticks(QUIET_TICKS).await;
    assert_eq!(second.rollbacks_started(), 1, "{}", second.timeline());
    assert_eq!(world.step_runs().len(), 1);
    assert_eq!(world.running(), GOOD);
    let releases = second.find(|e| matches!(e, Event::ReleaseSeen { .. }));
    assert_eq!(
        releases.len(),
        2,
        "no release is seen anew after the restart: {}",
        second.timeline()
    );
    assert_eq!(
        second
            .state
            .journal()
            .query(None, rollguard::journal::Since::All, 100_000)
            .iter()
            .filter(|r| matches!(r.event, Event::DaemonStarted { .. }))
            .count(),
        2
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_turns_an_automatic_rollback_into_an_approval_request() {
    let world = World::start().await;
    let daemon = world
        .start_daemon(&world.config(&TargetSetup::enforce(world.steps())))
        .await;
    // What `POST /api/v1/pause` does: journal the switch, then flip it.
    daemon
        .state
        .journal()
        .append_async(None, Event::PauseChanged { paused: true })
        .await
        .expect("journal the pause");
    daemon.state.set_paused(None, true);

    world.deploy(BAD);
    let release_id = daemon.wait_release(BAD).await;
    daemon
        .wait_for(
            "approval requested",
            |e| matches!(e, Event::ApprovalRequested { release_id: id, .. } if *id == release_id),
        )
        .await;
    let asked = world
        .hooks
        .wait("approval_requested", |b| {
            b["release_id"] == release_id.as_str()
        })
        .await;
    assert!(
        asked["text"]
            .as_str()
            .unwrap_or_default()
            .contains("automatic action is paused"),
        "{asked}"
    );
    assert!(daemon.decisions(&release_id).contains(&Decision::Rollback));
    assert!(daemon.status().is_some_and(|s| s.paused));

    daemon.wait_ticks(QUIET_TICKS).await;
    assert_eq!(daemon.rollbacks_started(), 0, "{}", daemon.timeline());
    assert!(!world.record.exists());
    assert_eq!(world.running(), BAD);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_version_is_unknown_and_the_release_before_it_is_not_blamed() {
    let world = World::start().await;
    let daemon = world
        .start_daemon(&world.config(&TargetSetup::enforce(world.steps())))
        .await;
    world.deploy(GOOD_TOO);
    let release_id = daemon.wait_release(GOOD_TOO).await;
    wait_decision(&daemon, &release_id, Decision::Healthy).await;

    // A broken release whose directory name rollguard refuses as a
    // version (a bidi override): what runs is unknown, so the good
    // release's bake window must not blame it for the errors.
    let refused = "v5\u{202E}1v";
    let dir = world.root().join("releases").join(refused);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("broken"), "").expect("broken marker");
    world.deploy(refused);
    daemon
        .wait_until("the version is refused", |d| {
            d.status()
                .and_then(|s| s.version_error)
                .is_some_and(|e| e.contains("bidirectional"))
        })
        .await;
    world.wait_for_ratio(|v| v.is_some_and(|v| v > 0.3)).await;
    daemon.wait_ticks(QUIET_TICKS).await;
    assert_eq!(daemon.rollbacks_started(), 0, "{}", daemon.timeline());
    assert!(
        !daemon.decisions(&release_id).contains(&Decision::Rollback),
        "{}",
        daemon.timeline()
    );
    assert!(world.step_runs().is_empty());
    assert_eq!(world.running(), refused, "nothing was switched");
    let status = daemon.status().expect("status");
    assert_eq!(status.current_version.as_deref(), Some(GOOD_TOO));
    daemon.stop().await;
}

/// Ticks counted over `seconds` of real time.
async fn ticks_over(daemon: &Daemon, seconds: f64) -> u64 {
    let before = daemon.ticks();
    tokio::time::sleep(std::time::Duration::from_secs_f64(seconds)).await;
    daemon.ticks() - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_is_polled_at_poll_interval_until_a_release_opens_a_bake_window() {
    let world = World::start().await;
    let mut setup = TargetSetup::enforce(world.steps());
    // The window opens when the version was last seen before the release,
    // up to a poll earlier: 8 s leave at least 5 s of it to watch.
    setup.bake_window = "8s";
    let config = world.config(&setup).replace(
        "kind = \"symlink\"\n",
        "kind = \"symlink\"\npoll_interval = \"3s\"\n",
    );
    assert!(config.contains("poll_interval = \"3s\""));
    assert!(config.contains("interval = \"1s\""));
    let daemon = world.start_daemon(&config).await;
    daemon.wait_ticks(1).await;
    // Idle: one read every 3 s, not every 1 s tick.
    let idle = ticks_over(&daemon, 2.5).await;
    assert!(idle <= 1, "{idle} ticks in 2.5 s while idle");

    world.deploy(GOOD_TOO);
    let release_id = daemon.wait_release(GOOD_TOO).await;
    // Baking: every `interval`.
    let baking = ticks_over(&daemon, 2.5).await;
    assert!(baking >= 2, "{baking} ticks in 2.5 s while baking");
    assert_eq!(
        wait_bake_finished(&daemon, &release_id).await,
        Decision::Healthy
    );
    // The window closed: back to polling.
    daemon.wait_ticks(1).await;
    let idle = ticks_over(&daemon, 2.5).await;
    assert!(idle <= 1, "{idle} ticks in 2.5 s after the bake window");
    daemon.stop().await;
}
