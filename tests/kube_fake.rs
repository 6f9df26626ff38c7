//! The fake Kubernetes API server, checked against the real kubectl
//! (/usr/bin/kubectl, v1.32): what kubectl sends for `get`, `rollout
//! history|undo|status`, `set image`, `scale`, `patch`, `create` and
//! `replace`, and that the fake answers like a cluster would.
//!
//! Every test runs the real kubectl, so all are `live_kubectl::` tests:
//! without kubectl on PATH they fail, saying why, and `scripts/test` leaves
//! them out. (Without kubectl, `recorded::` in `tests/kube_oracle.rs` still
//! replays kubectl's recorded requests to the fake and checks what it left.)

#[path = "common/kube_fake/mod.rs"]
#[allow(dead_code)]
mod kube_fake;
#[path = "common/kubectl.rs"]
#[allow(dead_code)]
mod kubectl;

use kube_fake::{
    DESIRED_REPLICAS, FakeCluster, MAX_REPLICAS, POD_TEMPLATE_HASH, REVISION, REVISION_HISTORY,
    RecordedRequest, comparable,
};
use serde_json::{Value, json};

const NS: &str = "default";

fn replica_set(cluster: &FakeCluster, name: &str, revision: &str) -> Value {
    let owner = |rs: &&Value| rs["metadata"]["ownerReferences"][0]["name"] == json!(name);
    let sets = cluster.replica_sets(NS);
    let found = sets
        .iter()
        .filter(owner)
        .find(|rs| rs["metadata"]["annotations"][REVISION] == json!(revision));
    found
        .cloned()
        .unwrap_or_else(|| panic!("no ReplicaSet of {name} at revision {revision}"))
}

/// The two operations kubectl's undo sends, computed from the Deployment
/// and the ReplicaSet of the target revision.
fn expected_undo_patch(deployment: &Value, rs: &Value) -> Value {
    let mut template = rs["spec"]["template"].clone();
    template["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove(POD_TEMPLATE_HASH);
    template["metadata"]["creationTimestamp"] = Value::Null;
    let skipped = [
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        DESIRED_REPLICAS,
        MAX_REPLICAS,
    ];
    let mut annotations = serde_json::Map::new();
    for (key, value) in deployment["metadata"]["annotations"].as_object().unwrap() {
        if skipped.contains(&key.as_str()) {
            annotations.insert(key.clone(), value.clone());
        }
    }
    for (key, value) in rs["metadata"]["annotations"].as_object().unwrap() {
        if !skipped.contains(&key.as_str()) {
            annotations.insert(key.clone(), value.clone());
        }
    }
    json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ])
}

fn image(deployment: &Value, index: usize) -> &str {
    deployment["spec"]["template"]["spec"]["containers"][index]["image"]
        .as_str()
        .unwrap()
}

fn revision(deployment: &Value) -> &str {
    deployment["metadata"]["annotations"][REVISION]
        .as_str()
        .unwrap()
}

/// Each test runs the real kubectl: without it on PATH they fail, and
/// `scripts/test` leaves them out.
mod live_kubectl {
    use super::*;
    use crate::kubectl::Kubectl;
    use std::time::{Duration, Instant};

    #[test]
    fn get_deployment_prints_the_fakes_object() {
        let cluster = FakeCluster::start();
        let kubectl = Kubectl::new(&cluster);
        cluster.create_history(NS, "web", 2);
        let run = kubectl.ok(&["get", "deployment", "web", "-o", "json"]);
        let printed: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(printed, cluster.deployment(NS, "web"));
        let lines: Vec<String> = run.requests.iter().map(RecordedRequest::line).collect();
        assert_eq!(
            lines,
            ["GET /apis/apps/v1/namespaces/default/deployments/web?timeout=10s"]
        );
        let table = kubectl.ok(&["get", "deployments"]);
        assert!(table.stdout.contains("web"), "{}", table.stdout);
    }

    #[test]
    fn rollout_history_lists_revisions_with_their_change_cause() {
        let cluster = FakeCluster::start();
        let kubectl = Kubectl::new(&cluster);
        let cause = "kubernetes.io/change-cause";
        cluster.create_deployment(NS, "web", &[("app", "web:1")], &[(cause, "first")]);
        let patch = json!({"metadata": {"annotations": {cause: "second"}},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "web:2"}]}}}});
        cluster.patch_deployment(NS, "web", "application/strategic-merge-patch+json", &patch);
        let run = kubectl.ok(&["rollout", "history", "deployment/web"]);
        let rows: Vec<Vec<&str>> = run
            .stdout
            .lines()
            .skip(2)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows[..2],
            [vec!["1", "first"], vec!["2", "second"]],
            "{}",
            run.stdout
        );
        let lines: Vec<String> = run.requests.iter().map(RecordedRequest::line).collect();
        assert_eq!(
            lines,
            [
                "GET /apis/apps/v1/namespaces/default/deployments/web?timeout=10s",
                "GET /apis/apps/v1/namespaces/default/deployments/web?timeout=10s",
                "GET /apis/apps/v1/namespaces/default/replicasets?labelSelector=app%3Dweb",
            ]
        );
        let one = kubectl.ok(&["rollout", "history", "deployment/web", "--revision=1"]);
        assert!(
            one.stdout.contains("web:1") && !one.stdout.contains("web:2"),
            "{}",
            one.stdout
        );
    }

    #[test]
    fn undo_to_the_previous_revision_sends_a_json_patch_of_template_and_annotations() {
        let cluster = FakeCluster::start();
        let kubectl = Kubectl::new(&cluster);
        cluster.create_history(NS, "web", 3);
        let before = cluster.deployment(NS, "web");
        let target = replica_set(&cluster, "web", "2");
        let run = kubectl.ok(&["rollout", "undo", "deployment/web"]);
        assert_eq!(run.stdout.trim(), "deployment.apps/web rolled back");
        let lines: Vec<String> = run.requests.iter().map(RecordedRequest::line).collect();
        assert_eq!(
            lines,
            [
                "GET /apis/apps/v1/namespaces/default/deployments/web?timeout=10s",
                "GET /apis/apps/v1/namespaces/default/deployments/web?timeout=10s",
                "GET /apis/apps/v1/namespaces/default/replicasets?labelSelector=app%3Dweb",
                "PATCH /apis/apps/v1/namespaces/default/deployments/web?timeout=10s",
            ]
        );
        let patch = run.patches()[0];
        assert_eq!(patch.content_type, "application/json-patch+json");
        // The typed client asks for protobuf first; the fake answers JSON, as
        // a server may.
        assert_eq!(
            patch.accept,
            "application/vnd.kubernetes.protobuf,application/json"
        );
        assert_eq!(patch.json(), expected_undo_patch(&before, &target));

        let after = cluster.deployment(NS, "web");
        assert_eq!(image(&after, 0), "web:2");
        assert_eq!(revision(&after), "4");
        let reused = replica_set(&cluster, "web", "4");
        assert_eq!(reused["metadata"]["name"], target["metadata"]["name"]);
        assert_eq!(reused["metadata"]["annotations"][REVISION_HISTORY], "2");
        assert_eq!(
            cluster.replica_sets(NS).len(),
            3,
            "undo reuses the old ReplicaSet"
        );
    }

    #[test]
    fn undo_to_a_given_revision_for_histories_of_two_to_six() {
        let cluster = FakeCluster::start();
        let kubectl = Kubectl::new(&cluster);
        for revisions in 2..=6 {
            for to in 1..revisions {
                let name = format!("web-{revisions}-{to}");
                cluster.create_history(NS, &name, revisions);
                let before = cluster.deployment(NS, &name);
                let target = replica_set(&cluster, &name, &to.to_string());
                let resource = format!("deployment/{name}");
                let run =
                    kubectl.ok(&["rollout", "undo", &resource, &format!("--to-revision={to}")]);
                let patches = run.patches();
                assert_eq!(patches.len(), 1, "{name}");
                assert_eq!(
                    patches[0].json(),
                    expected_undo_patch(&before, &target),
                    "{name}"
                );
                let after = cluster.deployment(NS, &name);
                assert_eq!(image(&after, 0), format!("web:{to}"), "{name}");
                assert_eq!(revision(&after), (revisions + 1).to_string(), "{name}");
                let mut expected = target["spec"]["template"].clone();
                expected["metadata"]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove(POD_TEMPLATE_HASH);
                assert_eq!(after["spec"]["template"], expected, "{name}");
            }
        }
    }

    #[test]
    fn the_same_patch_from_another_client_leaves_an_identical_deployment() {
        // The shape of the oracle tests: kubectl on one cluster, another client
        // on a second cluster from the same start, identical Deployments.
        let (by_kubectl, by_hand) = (FakeCluster::start(), FakeCluster::start());
        let kubectl = Kubectl::new(&by_kubectl);
        by_kubectl.create_history(NS, "web", 4);
        by_hand.create_history(NS, "web", 4);
        kubectl.ok(&["rollout", "undo", "deployment/web", "--to-revision=2"]);
        let start = by_hand.deployment(NS, "web");
        let patch = expected_undo_patch(&start, &replica_set(&by_hand, "web", "2"));
        by_hand.patch_deployment(NS, "web", "application/json-patch+json", &patch);
        assert_eq!(
            comparable(&by_kubectl.deployment(NS, "web")),
            comparable(&by_hand.deployment(NS, "web"))
        );
        let sets = |cluster: &FakeCluster| {
            cluster
                .replica_sets(NS)
                .iter()
                .map(comparable)
                .collect::<Vec<_>>()
        };
        assert_eq!(sets(&by_kubectl), sets(&by_hand));
    }

    #[test]
    fn undo_to_the_current_revision_changes_nothing() {
        let cluster = FakeCluster::start();
        let kubectl = Kubectl::new(&cluster);
        cluster.create_history(NS, "web", 3);
        let before = cluster.deployment(NS, "web");
        let run = kubectl.ok(&["rollout", "undo", "deployment/web", "--to-revision=3"]);
        assert_eq!(
            run.stdout.trim(),
            "deployment.apps/web skipped rollback (current template already matches revision 3)"
        );
        assert!(run.patches().is_empty());
        assert_eq!(cluster.deployment(NS, "web"), before);
    }

    #[test]
    fn undo_to_a_missing_revision_fails_without_patching() {
        let cluster = FakeCluster::start();
        let kubectl = Kubectl::new(&cluster);
        cluster.create_history(NS, "web", 3);
        let run = kubectl.run(&["rollout", "undo", "deployment/web", "--to-revision=9"]);
        assert!(!run.ok);
        assert_eq!(
            run.stderr.trim(),
            "error: unable to find specified revision 9 in history"
        );
        assert!(run.patches().is_empty());

        cluster.create_deployment(NS, "fresh", &[("app", "web:1")], &[]);
        let run = kubectl.run(&["rollout", "undo", "deployment/fresh"]);
        assert!(!run.ok);
        assert!(
            run.stderr
                .contains("no rollout history found for deployment \"fresh\""),
            "{}",
            run.stderr
        );
    }

    #[test]
    fn undo_of_a_paused_deployment_is_refused_by_kubectl_itself() {
        let cluster = FakeCluster::start();
        let kubectl = Kubectl::new(&cluster);
        cluster.create_history(NS, "web", 2);
        let pause = json!({"spec": {"paused": true}});
        cluster.patch_deployment(NS, "web", "application/merge-patch+json", &pause);
        let run = kubectl.run(&["rollout", "undo", "deployment/web"]);
        assert!(!run.ok);
        assert!(
            run.stderr
                .contains("you cannot rollback a paused deployment"),
            "{}",
            run.stderr
        );
        assert!(run.patches().is_empty());
    }

    #[test]
    fn undo_restores_every_container_in_order() {
        let cluster = FakeCluster::start();
        let kubectl = Kubectl::new(&cluster);
        let containers = [
            ("app", "web:1"),
            ("sidecar", "proxy:1"),
            ("log", "fluent:1"),
        ];
        cluster.create_deployment(NS, "web", &containers, &[]);
        cluster.set_image(NS, "web", "sidecar", "proxy:2");
        cluster.set_image(NS, "web", "app", "web:2");
        let before = cluster.deployment(NS, "web");
        let target = replica_set(&cluster, "web", "1");
        let run = kubectl.ok(&["rollout", "undo", "deployment/web", "--to-revision=1"]);
        assert_eq!(
            run.patches()[0].json(),
            expected_undo_patch(&before, &target)
        );
        let after = cluster.deployment(NS, "web");
        let images: Vec<&str> = (0..3).map(|i| image(&after, i)).collect();
        assert_eq!(images, ["web:1", "proxy:1", "fluent:1"]);
        assert_eq!(revision(&after), "4");
    }

    #[test]
    fn undo_copies_the_replica_sets_annotations_except_replica_counts() {
        let cluster = FakeCluster::start();
        let kubectl = Kubectl::new(&cluster);
        let cause = "kubernetes.io/change-cause";
        let first = [("team", "payments"), (cause, "first")];
        cluster.create_deployment(NS, "web", &[("app", "web:1")], &first);
        let patch = json!({"metadata": {"annotations": {cause: "second", "note": "only on 2"}},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "web:2"}]}}}});
        cluster.patch_deployment(NS, "web", "application/strategic-merge-patch+json", &patch);
        let target = replica_set(&cluster, "web", "1");
        assert_eq!(target["metadata"]["annotations"][DESIRED_REPLICAS], "3");
        assert_eq!(target["metadata"]["annotations"][MAX_REPLICAS], "4");

        let run = kubectl.ok(&["rollout", "undo", "deployment/web"]);
        let sent = &run.patches()[0].json()[1]["value"];
        assert_eq!(
            *sent,
            json!({REVISION: "2", "team": "payments", cause: "first"})
        );
        let after = cluster.deployment(NS, "web");
        let annotations = &after["metadata"]["annotations"];
        assert_eq!(
            *annotations,
            json!({REVISION: "3", "team": "payments", cause: "first"})
        );
    }

    #[test]
    fn rollout_status_follows_the_rollout_through_a_watch() {
        let cluster = FakeCluster::start();
        let kubectl = Kubectl::new(&cluster);
        cluster.create_history(NS, "web", 1);
        let run = kubectl.ok(&["rollout", "status", "deployment/web"]);
        assert_eq!(
            run.stdout.trim(),
            "deployment \"web\" successfully rolled out"
        );
        let lines: Vec<String> = run.requests.iter().map(RecordedRequest::line).collect();
        assert_eq!(
            lines[0],
            "GET /apis/apps/v1/namespaces/default/deployments/web?timeout=10s"
        );
        assert_eq!(
            lines[1],
            "GET /apis/apps/v1/namespaces/default/deployments\
         ?fieldSelector=metadata.name%3Dweb&limit=500&resourceVersion=0&timeout=10s"
        );

        cluster.set_rollout_delay(Duration::from_millis(1500));
        cluster.set_image(NS, "web", "app", "web:2");
        let started = Instant::now();
        let run = kubectl.ok(&["rollout", "status", "deployment/web"]);
        assert!(
            started.elapsed() >= Duration::from_millis(1000),
            "{:?}",
            started.elapsed()
        );
        assert!(
            run.stdout
                .starts_with("Waiting for deployment \"web\" rollout to finish"),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout
                .trim_end()
                .ends_with("deployment \"web\" successfully rolled out")
        );
        let watch = &run.requests.last().unwrap().query;
        assert!(
            watch.contains("watch=true") && watch.contains("allowWatchBookmarks=true"),
            "{watch}"
        );
    }

    #[test]
    fn rollout_status_fails_when_the_rollout_stalls() {
        let cluster = FakeCluster::start();
        let kubectl = Kubectl::new(&cluster);
        cluster.create_history(NS, "web", 1);
        cluster.stall_rollouts(true);
        cluster.set_image(NS, "web", "app", "web:2");
        let stalled = cluster.deployment(NS, "web");
        assert_eq!(
            stalled["status"]["conditions"][1]["reason"],
            "ProgressDeadlineExceeded"
        );
        let run = kubectl.run(&["rollout", "status", "deployment/web"]);
        assert!(!run.ok);
        assert_eq!(
            run.stderr.trim(),
            "error: deployment \"web\" exceeded its progress deadline"
        );

        cluster.converge(NS, "web");
        kubectl.ok(&["rollout", "status", "deployment/web"]);
    }

    #[test]
    fn set_image_and_scale_patch_the_deployment() {
        let cluster = FakeCluster::start();
        let kubectl = Kubectl::new(&cluster);
        cluster.create_history(NS, "web", 1);
        let run = kubectl.ok(&["set", "image", "deployment/web", "app=web:2"]);
        let patch = run.patches()[0];
        assert_eq!(
            patch.line(),
            "PATCH /apis/apps/v1/namespaces/default/deployments/web?fieldManager=kubectl-set&timeout=10s"
        );
        assert_eq!(patch.content_type, "application/strategic-merge-patch+json");
        let expected = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}],
        "containers": [{"image": "web:2", "name": "app"}]}}}});
        assert_eq!(patch.json(), expected);
        let after = cluster.deployment(NS, "web");
        assert_eq!((image(&after, 0), revision(&after)), ("web:2", "2"));
        assert_eq!(after["metadata"]["generation"], 2);

        let run = kubectl.ok(&["scale", "deployment/web", "--replicas=5"]);
        let patch = run.patches()[0];
        assert_eq!(
            patch.line(),
            "PATCH /apis/apps/v1/namespaces/default/deployments/web/scale?timeout=10s"
        );
        assert_eq!(patch.content_type, "application/merge-patch+json");
        assert_eq!(patch.json(), json!({"spec": {"replicas": 5}}));
        let after = cluster.deployment(NS, "web");
        assert_eq!(after["spec"]["replicas"], 5);
        assert_eq!(after["status"]["availableReplicas"], 5);
        assert_eq!(
            (after["metadata"]["generation"].clone(), revision(&after)),
            (json!(3), "2")
        );
    }

    #[test]
    fn server_dry_run_of_an_undo_changes_nothing() {
        let cluster = FakeCluster::start();
        let kubectl = Kubectl::new(&cluster);
        cluster.create_history(NS, "web", 3);
        let (before, sets) = (cluster.deployment(NS, "web"), cluster.replica_sets(NS));
        let run = kubectl.ok(&["rollout", "undo", "deployment/web", "--dry-run=server"]);
        assert_eq!(
            run.stdout.trim(),
            "deployment.apps/web rolled back (server dry run)"
        );
        let patch = run.patches()[0];
        assert_eq!(patch.query, "dryRun=All&timeout=10s");
        assert_eq!(patch.content_type, "application/json-patch+json");
        assert_eq!(
            (cluster.deployment(NS, "web"), cluster.replica_sets(NS)),
            (before, sets)
        );
    }

    #[test]
    fn conflicts_are_409_with_a_status_kubectl_understands() {
        let cluster = FakeCluster::start();
        let kubectl = Kubectl::new(&cluster);
        cluster.create_history(NS, "web", 2);
        cluster.fail_next_patch_with_conflict();
        let run = kubectl.run(&["rollout", "undo", "deployment/web"]);
        assert!(!run.ok);
        assert!(
            run.stderr.contains("the object has been modified"),
            "{}",
            run.stderr
        );
        assert_eq!(image(&cluster.deployment(NS, "web"), 0), "web:2");

        let stale = r#"{"metadata":{"resourceVersion":"1"}}"#;
        let run = kubectl.run(&["patch", "deployment", "web", "--type=merge", "-p", stale]);
        assert!(
            run.stderr.contains("Error from server (Conflict)"),
            "{}",
            run.stderr
        );
        let test = r#"[{"op":"test","path":"/spec/replicas","value":3},{"op":"replace","path":"/spec/replicas","value":4}]"#;
        kubectl.ok(&["patch", "deployment", "web", "--type=json", "-p", test]);
        assert_eq!(cluster.deployment(NS, "web")["spec"]["replicas"], 4);
    }

    #[test]
    fn leases_are_created_read_and_replaced_with_resource_version_checks() {
        let cluster = FakeCluster::start();
        let kubectl = Kubectl::new(&cluster);
        let file = kubectl.dir.join("lease.json");
        let lease = |version: &str| {
            let mut lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "rollguard", "namespace": NS},
            "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}});
            if !version.is_empty() {
                lease["metadata"]["resourceVersion"] = json!(version);
                lease["spec"]["holderIdentity"] = json!("b");
            }
            std::fs::write(&file, lease.to_string()).unwrap();
        };
        let path = file.to_str().unwrap();
        // Without --validate=false kubectl downloads /openapi/v3 (then v2) first.
        lease("");
        let run = kubectl.ok(&["create", "--validate=false", "-f", path]);
        assert_eq!(run.requests[0].method, "POST");
        assert_eq!(
            run.requests[0].path,
            "/apis/coordination.k8s.io/v1/namespaces/default/leases"
        );
        assert!(
            kubectl
                .run(&["create", "--validate=false", "-f", path])
                .stderr
                .contains("AlreadyExists")
        );

        let got: Value = serde_json::from_str(
            &kubectl
                .ok(&["get", "lease", "rollguard", "-o", "json"])
                .stdout,
        )
        .unwrap();
        assert_eq!(Some(got.clone()), cluster.lease(NS, "rollguard"));
        let version = got["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();

        lease("1");
        let run = kubectl.run(&["replace", "--validate=false", "-f", path]);
        assert!(
            run.stderr.contains("Error from server (Conflict)"),
            "{}",
            run.stderr
        );
        assert_eq!(run.requests.last().unwrap().method, "PUT");
        lease(&version);
        kubectl.ok(&["replace", "--validate=false", "-f", path]);
        let replaced = cluster.lease(NS, "rollguard").unwrap();
        assert_eq!(replaced["spec"]["holderIdentity"], "b");
        assert_ne!(
            replaced["metadata"]["resourceVersion"].as_str(),
            Some(version.as_str())
        );
    }
}
