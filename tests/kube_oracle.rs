//! The Kubernetes steps against kubectl 1.32 as an oracle: the same
//! history in two fake clusters, `kubectl rollout undo` (or `set image`,
//! `scale`) on one and rollguard's step on the other; the Deployments and
//! ReplicaSets must end identical, and the requests must be kubectl's
//! (method, path, content type, patch). Then what rollguard does beyond
//! kubectl: a 409 retried, a server dry run, rollout status with a time
//! limit.
//!
//! Each oracle test runs twice. `recorded::NAME`, everywhere: kubectl's
//! runs as recorded in `tests/data/kubectl/NAME.json` (its requests replayed
//! to the first cluster, which must then hold what kubectl left).
//! `live_kubectl::NAME`: the real kubectl (`/usr/bin/kubectl`), whose runs
//! must also still match the recording; without kubectl on PATH it fails,
//! and `scripts/test` leaves it out. To record kubectl anew:
//! `ROLLGUARD_RECORD_KUBECTL=1 cargo nextest run --test kube_oracle -E
//! 'test(/^live_kubectl::/)'` (tests/common/kubectl_recording.rs).

#[path = "common/kube_fake/mod.rs"]
#[allow(dead_code, unused_imports)]
mod kube_fake;
#[path = "common/kube_pair.rs"]
mod kube_pair;
#[path = "common/kubectl.rs"]
#[allow(dead_code)]
mod kubectl;
#[path = "common/kubectl_recording.rs"]
mod kubectl_recording;

use kube_fake::FakeCluster;
use kube_pair::{
    NS, Pair, assert_same_patch, ctx, deps, kubectl_lines, lines, run_step, runtime, same_requests,
    step,
};
use kubectl::{Run, patches};
use rollguard::model::StepOutcome;
use rollguard::pipeline::{StepError, dry_run};
use serde_json::json;
use std::time::{Duration, Instant};

#[path = "kube_oracle/comparison.rs"]
mod comparison;

/// Each oracle test as `recorded::NAME` and `live_kubectl::NAME`.
macro_rules! oracle_tests {
    ($($name:ident),* $(,)?) => {
        /// Against kubectl's recorded runs: these need no kubectl.
        mod recorded {
            $(#[test]
            fn $name() {
                super::$name(&super::Pair::recorded(stringify!($name)));
            })*
        }
        /// Against the real kubectl, which must match the recording too.
        mod live_kubectl {
            $(#[test]
            fn $name() {
                super::$name(&super::Pair::live(stringify!($name)));
            })*
        }
    };
}

oracle_tests!(
    undo_leaves_what_kubectl_leaves_for_histories_of_two_to_six,
    undo_to_a_missing_revision_or_without_history_fails_like_kubectl,
    undo_copies_annotations_and_restores_every_container_like_kubectl,
    a_conflict_is_retried_on_a_fresh_read_where_kubectl_fails,
    a_dry_run_changes_nothing_and_says_the_server_accepted_it,
    set_image_and_scale_leave_what_kubectl_leaves,
);

fn undo_step(name: &str, to: Option<usize>) -> String {
    let to = to
        .map(|n| format!("to_revision = {n}\n"))
        .unwrap_or_default();
    format!("phase = 'rollback'\nkind = 'kubernetes_undo'\ndeployment = '{name}'\n{to}")
}

/// kubectl undo and rollguard's undo of `name` from the same start: the
/// same requests, the same end. Returns rollguard's result.
fn undo_both(
    pair: &Pair,
    name: &str,
    to: Option<usize>,
) -> (Run, Result<Option<String>, StepError>) {
    let resource = format!("deployment/{name}");
    let mut args = vec!["rollout", "undo", resource.as_str()];
    let to_flag = to.map(|n| format!("--to-revision={n}"));
    args.extend(to_flag.as_deref());
    let run = pair.kubectl(&args);
    let (result, sent) = pair.rollguard(&undo_step(name, to));
    let case = format!("{name} {args:?}: {}{}", run.stdout, run.stderr);
    if let Err(difference) = same_requests(&run, &sent) {
        panic!("{case}: {difference}");
    }
    pair.assert_same(&case);
    (run, result)
}

fn undo_leaves_what_kubectl_leaves_for_histories_of_two_to_six(pair: &Pair) {
    for revisions in 2..=6 {
        let name = format!("prev-{revisions}");
        pair.both(|c| c.create_history(NS, &name, revisions));
        let (run, result) = undo_both(pair, &name, None);
        assert!(run.ok, "{}", run.stderr);
        let message = result.expect("rollguard's undo").unwrap_or_default();
        let previous = revisions - 1;
        assert_eq!(
            message,
            format!(
                "rolled back deployment default/{name} to revision {previous} (app=web:{previous})"
            )
        );
        for to in 1..=revisions {
            let name = format!("to-{revisions}-{to}");
            pair.both(|c| c.create_history(NS, &name, revisions));
            let (run, result) = undo_both(pair, &name, Some(to));
            assert!(run.ok, "{}", run.stderr);
            let message = result.expect("rollguard's undo").unwrap_or_default();
            if to == revisions {
                assert!(run.stdout.contains("skipped rollback"), "{}", run.stdout);
                assert_eq!(
                    message,
                    format!(
                        "deployment default/{name} already runs the template of revision {to}; nothing to roll back (no change sent)"
                    )
                );
            } else {
                assert!(message.starts_with("rolled back"), "{message}");
            }
        }
    }
}

fn undo_to_a_missing_revision_or_without_history_fails_like_kubectl(pair: &Pair) {
    pair.both(|c| c.create_history(NS, "web", 3));
    let (run, result) = undo_both(pair, "web", Some(9));
    assert!(!run.ok);
    let error = result.expect_err("no revision 9");
    assert!(!error.retryable);
    assert_eq!(
        error.message,
        "deployment default/web: revision 9 not found; it has revisions 1, 2, 3"
    );

    pair.both(|c| c.create_history(NS, "fresh", 1));
    let (run, result) = undo_both(pair, "fresh", None);
    assert!(
        !run.ok && run.stderr.contains("no rollout history"),
        "{}",
        run.stderr
    );
    let error = result.expect_err("no history");
    assert_eq!(
        error.message,
        "deployment default/fresh: no rollout history to go back to (revisions: 1)"
    );
}

/// `web` at revision 2, with annotations on both revisions.
fn annotated(cluster: &FakeCluster) {
    let cause = "kubernetes.io/change-cause";
    let first = [("team", "payments"), (cause, "first")];
    cluster.create_deployment(NS, "web", &[("app", "web:1")], &first);
    let patch = json!({"metadata": {"annotations": {cause: "second", "note": "only on 2"}},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "web:2"}]}}}});
    cluster.patch_deployment(NS, "web", "application/strategic-merge-patch+json", &patch);
}

fn undo_copies_annotations_and_restores_every_container_like_kubectl(pair: &Pair) {
    pair.both(annotated);
    let (run, result) = undo_both(pair, "web", None);
    assert!(run.ok && result.is_ok(), "{}", run.stderr);

    let containers = [
        ("app", "api:1"),
        ("sidecar", "proxy:1"),
        ("log", "fluent:1"),
    ];
    pair.both(|c| {
        c.create_deployment(NS, "multi", &containers, &[("team", "core")]);
        c.set_image(NS, "multi", "sidecar", "proxy:2");
        c.set_image(NS, "multi", "app", "api:2");
    });
    let (run, result) = undo_both(pair, "multi", Some(1));
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(
        result.expect("undo").unwrap_or_default(),
        "rolled back deployment default/multi to revision 1 (app=api:1, sidecar=proxy:1, log=fluent:1)"
    );
    let (run, _) = undo_both(pair, "multi", None);
    assert!(run.ok, "{}", run.stderr);
}

fn a_conflict_is_retried_on_a_fresh_read_where_kubectl_fails(pair: &Pair) {
    pair.both(|c| c.create_history(NS, "web", 3));
    pair.by_kubectl.fail_next_patch_with_conflict();
    assert!(!pair.kubectl(&["rollout", "undo", "deployment/web"]).ok);
    let run = pair.kubectl(&["rollout", "undo", "deployment/web"]);
    assert!(run.ok, "{}", run.stderr);

    pair.by_rollguard.fail_next_patch_with_conflict();
    let (result, sent) = pair.rollguard(&undo_step("web", None));
    assert!(result.is_ok(), "{result:?}");
    let once = kubectl_lines(&run.requests);
    let twice: Vec<String> = once.iter().chain(&once).cloned().collect();
    assert_eq!(lines(&sent), twice);
    pair.assert_same("undo after one conflict");
}

fn a_dry_run_changes_nothing_and_says_the_server_accepted_it(pair: &Pair) {
    pair.both(|c| c.create_history(NS, "web", 3));
    let run = pair.kubectl(&["rollout", "undo", "deployment/web", "--dry-run=server"]);
    assert!(run.ok, "{}", run.stderr);
    let cluster = &pair.by_rollguard;
    let before = (cluster.deployment(NS, "web"), cluster.replica_sets(NS));
    cluster.clear_requests();
    let deps = deps(cluster, Duration::from_millis(50));
    // One runtime for both dry runs: the client's worker lives in it.
    let runtime = runtime();
    let answer = runtime.block_on(dry_run(&step(&undo_step("web", None)), &ctx(), &deps));
    assert_eq!(
        answer.as_deref(),
        Ok("the API server accepted a rollback of default/web to revision 2 (dry run)")
    );
    assert_eq!(
        (cluster.deployment(NS, "web"), cluster.replica_sets(NS)),
        before
    );
    let sent = cluster.requests();
    let (theirs, ours) = (patches(&run.requests)[0], patches(&sent)[0]);
    assert_same_patch(theirs, ours, "dry run");
    assert_eq!(kubectl_lines(&run.requests), lines(&sent));
    assert_eq!(
        lines(std::slice::from_ref(ours)),
        ["PATCH /apis/apps/v1/namespaces/default/deployments/web?dryRun=All"]
    );

    let answer = runtime.block_on(dry_run(&step(&undo_step("web", Some(7))), &ctx(), &deps));
    let error = answer.expect_err("no revision 7");
    assert!(error.contains("revision 7 not found"), "{error}");
}

#[test]
fn rollout_status_converges_fails_on_a_stall_and_times_out() {
    let cluster = FakeCluster::start();
    cluster.create_history(NS, "web", 1);
    let status = |timeout: &str| {
        let text =
            format!("phase = 'verify'\nkind = 'kubernetes_rollout_status'\ntimeout = '{timeout}'");
        run_step(&cluster, &text, Duration::from_millis(50))
    };
    assert_eq!(
        status("5s"),
        Ok(Some("deployment \"web\" successfully rolled out".into()))
    );

    cluster.set_rollout_delay(Duration::from_millis(600));
    cluster.set_image(NS, "web", "app", "web:2");
    let started = Instant::now();
    assert!(status("10s").is_ok());
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );

    cluster.set_rollout_delay(Duration::from_secs(30));
    cluster.set_image(NS, "web", "app", "web:3");
    let error = status("500ms").expect_err("still rolling out");
    assert_eq!(error.outcome, StepOutcome::TimedOut);
    assert!(
        error
            .message
            .starts_with("deployment default/web had not rolled out after 500ms: Waiting for"),
        "{}",
        error.message
    );

    cluster.stall_rollouts(true);
    cluster.set_image(NS, "web", "app", "web:4");
    let error = status("5s").expect_err("stalled");
    assert_eq!(error.outcome, StepOutcome::Failed);
    assert_eq!(
        error.message,
        "deployment default/web exceeded its progress deadline"
    );
}

fn set_image_and_scale_leave_what_kubectl_leaves(pair: &Pair) {
    let containers = [("app", "api:1"), ("sidecar", "proxy:1")];
    pair.both(|c| {
        c.create_deployment(NS, "web", &containers, &[]);
        c.set_image(NS, "web", "sidecar", "proxy:2");
    });
    let run = pair.kubectl(&["set", "image", "deployment/web", "sidecar=proxy:1"]);
    assert!(run.ok, "{}", run.stderr);
    // `image` is a template: `{{previous_version}}` is "1".
    let set = "phase = 'rollback'\nkind = 'kubernetes_set_image'\ncontainer = 'sidecar'\nimage = 'proxy:{{previous_version}}'";
    let (result, sent) = pair.rollguard(set);
    assert_eq!(
        result,
        Ok(Some(
            "deployment default/web: container sidecar set to proxy:1 (was proxy:2)".into()
        ))
    );
    assert_eq!(kubectl_lines(&run.requests).len(), lines(&sent).len());
    let (theirs, ours) = (patches(&run.requests)[0], patches(&sent)[0]);
    assert_same_patch(theirs, ours, "set image");
    // kubectl's field manager is `kubectl-set`; rollguard names itself.
    let line = "PATCH /apis/apps/v1/namespaces/default/deployments/web?fieldManager=rollguard";
    assert_eq!(lines(std::slice::from_ref(ours)), [line]);
    pair.assert_same("set image");

    let (result, sent) = pair.rollguard(set);
    assert!(result.is_ok_and(|m| m.is_some_and(|m| m.contains("already runs proxy:1"))));
    assert!(patches(&sent).is_empty());
    let unknown = set.replace("'sidecar'", "'db'");
    let error = pair.rollguard(&unknown).0.expect_err("no container db");
    assert!(!error.retryable);
    assert_eq!(
        error.message,
        "deployment default/web has no container `db`; it has app, sidecar"
    );

    let run = pair.kubectl(&["scale", "deployment/web", "--replicas=5"]);
    assert!(run.ok, "{}", run.stderr);
    let (result, sent) =
        pair.rollguard("phase = 'rollback'\nkind = 'kubernetes_scale'\nreplicas = 5");
    assert_eq!(
        result,
        Ok(Some(
            "deployment default/web scaled to 5 replicas (was 3)".into()
        ))
    );
    assert_eq!(kubectl_lines(&run.requests), lines(&sent));
    assert_same_patch(patches(&run.requests)[0], patches(&sent)[0], "scale");
    pair.assert_same("scale");
}
