//! `POST /api/v1/targets/{name}/rollback` against a whole daemon: a
//! symlink release source over real release directories, a real pipeline
//! (a recording command, the symlink switch, verification), the real
//! journal. What a person's rollback does, and each reason it is refused.

#[path = "rollback/harness.rs"]
mod harness;

use harness::{Options, Rig, TOKEN};
use rollguard::journal::Event;
use serde_json::json;

fn message(body: &serde_json::Value) -> String {
    body["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_rollback_switches_the_link_back_and_is_journaled_as_manual() {
    let rig = Rig::start(Options::default()).await;
    rig.deploy("v2").await;
    // The kill switch stops rollguard acting by itself, not a person.
    let (status, _) = rig
        .post("/api/v1/pause", Some(&format!("Bearer {TOKEN}")), json!({}))
        .await;
    assert_eq!(status, 200);

    let (status, plan) = rig.rollback(json!({})).await;
    assert_eq!(status, 202, "{plan}");
    assert_eq!(
        (plan["from"].as_str(), plan["to"].as_str()),
        (Some("v2"), Some("v1"))
    );
    assert_eq!(plan["dry_run"], false);
    assert_eq!(plan["paused"], true);
    let names: Vec<&str> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["record", "symlink_switch", "verify"], "{plan}");
    let release_id = plan["release_id"]
        .as_str()
        .expect("a release id")
        .to_owned();
    let seq = plan["journal_seq"].as_u64().expect("the journal seq");
    let started = rig
        .records()
        .into_iter()
        .find(|r| r.seq == seq)
        .expect("the seq names a record");
    assert!(
        matches!(started.event, Event::RollbackStarted { .. }),
        "{started:?}"
    );

    rig.wait_finished(1).await;
    assert_eq!(rig.running(), "v1", "the link points at v1 again");
    assert_eq!(
        rig.rollbacks(),
        [(
            release_id.clone(),
            "v2".into(),
            "v1".into(),
            "manual".into()
        )]
    );
    assert_eq!(rig.outcomes(), ["completed"], "{}", rig.timeline());
    assert_eq!(rig.runs(), [format!("v2 v1 {release_id}")]);
    // Not counted for the cooldown of automatic rollbacks.
    let target = rig.state.config().targets[0].clone();
    let memory = rollguard::watchdog::journal_memory(rig.state.journal(), &target);
    assert_eq!(memory.last_rollback_at, None);

    // v1 arrives as rollguard's own rollback: what ran before it is the
    // release just rolled back, not a version to go back to.
    rig.wait_until("v1 is seen as rollguard's own", |r| {
        r.records().iter().any(|rec| {
            matches!(&rec.event, Event::ReleaseSeen { to, by_rollguard: true, .. } if to == "v1")
        })
    })
    .await;
    let (status, body) = rig.rollback(json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert!(message(&body).contains("pass --to VERSION"), "{body}");
    assert!(rig.status().and_then(|s| s.rollback).is_none());
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_version_running_at_start_rolls_back_to_the_version_asked_for() {
    let rig = Rig::start(Options::default()).await;
    // v1 ran before rollguard started: no release, no bake window.
    let (status, plan) = rig.rollback(json!({"to": "v3"})).await;
    assert_eq!(status, 202, "{plan}");
    rig.wait_finished(1).await;
    assert_eq!(rig.running(), "v3");
    let rollbacks = rig.rollbacks();
    assert_eq!(rollbacks.len(), 1);
    assert_eq!(
        (
            rollbacks[0].1.as_str(),
            rollbacks[0].2.as_str(),
            rollbacks[0].3.as_str()
        ),
        ("v1", "v3", "manual")
    );
    assert_eq!(plan["release_id"].as_str(), Some(rollbacks[0].0.as_str()));
    assert_eq!(rig.outcomes(), ["completed"]);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_is_a_409_with_its_reason_and_changes_nothing() {
    let rig = Rig::start(Options::default()).await;
    let refused = |expected: &'static str| {
        move |(status, body): (u16, serde_json::Value)| {
            assert_eq!(status, 409, "{body}");
            assert!(message(&body).contains(expected), "{expected:?} in {body}");
        }
    };
    refused("does not know the version that ran before v1")(rig.rollback(json!({})).await);
    refused("v1 is already the running version")(rig.rollback(json!({"to": "v1"})).await);
    refused("changed since the plan was shown")(
        rig.rollback(json!({"to": "v2", "expected": {"from": "v9", "to": "v2"}}))
            .await,
    );

    let (status, body) = rig.rollback(json!({"to": "v2\nrm -rf /"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("control characters"), "{body}");
    let (status, body) = rig.rollback_as(None, json!({"to": "v2"})).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = rig
        .rollback_as(Some("Bearer nope"), json!({"to": "v2"}))
        .await;
    assert_eq!(status, 403, "{body}");

    let (leading, follower) = tokio::sync::watch::channel(false);
    rig.state.set_leadership(follower);
    refused("this replica does not lead")(rig.rollback(json!({"to": "v2"})).await);
    let (status, plan) = rig.rollback(json!({"to": "v2", "dry_run": true})).await;
    assert_eq!(status, 200, "{plan}");
    assert!(
        plan["refused"]
            .as_str()
            .is_some_and(|r| r.contains("does not lead")),
        "{plan}"
    );
    let _ = leading.send(true);

    assert_eq!(rig.running(), "v1");
    assert!(rig.rollbacks().is_empty(), "{}", rig.timeline());
    assert!(rig.runs().is_empty());
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_rollback_is_refused_while_one_runs() {
    let rig = Rig::start(Options {
        gated: true,
        ..Options::default()
    })
    .await;
    rig.deploy("v2").await;
    let (status, plan) = rig.rollback(json!({})).await;
    assert_eq!(status, 202, "{plan}");
    rig.wait_until("the pipeline waits at its gate", |r| r.runs().len() == 1)
        .await;
    for body in [json!({}), json!({"to": "v3"}), json!({"dry_run": true})] {
        let (status, answer) = rig.rollback(body).await;
        assert_eq!(status, 409, "{answer}");
        assert!(message(&answer).contains("already running"), "{answer}");
        assert!(
            message(&answer).contains("manual from v2 to v1"),
            "{answer}"
        );
    }
    rig.open_gate();
    rig.wait_finished(1).await;
    assert_eq!(rig.running(), "v1");
    assert_eq!(rig.rollbacks().len(), 1, "{}", rig.timeline());
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_refuses_and_its_dry_run_shows_what_would_run() {
    let rig = Rig::start(Options {
        mode: "shadow",
        ..Options::default()
    })
    .await;
    rig.deploy("v2").await;
    let (status, body) = rig.rollback(json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert!(message(&body).contains("shadow mode"), "{body}");
    assert!(message(&body).contains("--dry-run"), "{body}");
    let (status, plan) = rig.rollback(json!({"dry_run": true})).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["mode"], "shadow");
    assert_eq!(plan["steps"].as_array().map(Vec::len), Some(3), "{plan}");
    assert!(
        plan["refused"]
            .as_str()
            .is_some_and(|r| r.contains("shadow mode"))
    );
    assert_eq!(rig.running(), "v2");
    assert!(rig.rollbacks().is_empty());
    assert!(rig.runs().is_empty());
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_changes_nothing_and_journals_no_rollback() {
    let rig = Rig::start(Options::default()).await;
    rig.deploy("v2").await;
    let before = rig.records().len();
    let (status, plan) = rig.rollback(json!({"dry_run": true})).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(
        (plan["from"].as_str(), plan["to"].as_str()),
        (Some("v2"), Some("v1"))
    );
    assert!(plan.get("journal_seq").is_none(), "{plan}");
    let switch = plan["steps"][1]["description"].as_str().unwrap_or_default();
    assert!(switch.contains("releases/v1"), "{plan}");
    // A few ticks later: still nothing.
    let ticks = rig.status().map(|s| s.ticks).unwrap_or(0);
    rig.wait_until("three more ticks", |r| {
        r.status().is_some_and(|s| s.ticks >= ticks + 3)
    })
    .await;
    assert_eq!(rig.running(), "v2");
    assert!(rig.runs().is_empty());
    assert!(rig.rollbacks().is_empty());
    let added: Vec<_> = rig.records().into_iter().skip(before).collect();
    assert!(
        added.iter().all(|r| !matches!(
            r.event,
            Event::RollbackStarted { .. } | Event::StepStarted { .. }
        )),
        "{added:?}"
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_in_enforce_mode_sends_the_steps_dry_runs() {
    let rig = Rig::start(Options {
        precheck: true,
        ..Options::default()
    })
    .await;
    rig.deploy("v2").await;
    let (status, plan) = rig.rollback(json!({"dry_run": true})).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["mode"], "enforce");
    let answers = plan["dry_runs"].as_array().cloned().unwrap_or_default();
    assert_eq!(answers.len(), 1, "{plan}");
    assert!(
        !answers[0]
            .as_str()
            .unwrap_or_default()
            .contains("would stop"),
        "{plan}"
    );
    // To a version without a release directory: the precheck says no.
    let (status, plan) = rig.rollback(json!({"dry_run": true, "to": "v9"})).await;
    assert_eq!(status, 200, "{plan}");
    let answer = plan["dry_runs"][0].as_str().unwrap_or_default();
    assert!(
        answer.contains("the precheck would stop the rollback"),
        "{plan}"
    );
    assert_eq!(rig.running(), "v2");
    assert!(rig.rollbacks().is_empty());
    rig.stop().await;
}
