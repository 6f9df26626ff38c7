//! The `kubernetes` release source and leader election, against the fake
//! API server (tests/common/kube_fake): versions from image tags, labels
//! and annotations; a scale is not a release; rollguard's rollback mark;
//! a missing Deployment; two electors on one Lease.

#[path = "common/kube_fake/mod.rs"]
#[allow(dead_code, unused_imports)]
mod kube_fake;

use kube_fake::FakeCluster;
use rollguard::leader::{LeaseElector, PipelineStop};
use rollguard::release::SourceError;
use rollguard::release::kubernetes::{KubernetesSource, ROLLED_BACK_ANNOTATION, VersionFrom};
use serde_json::json;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

const NS: &str = "default";

/// A client of `cluster`, without touching the process environment.
fn client(cluster: &FakeCluster) -> kube::Client {
    let url = cluster.base.parse().expect("the fake's URL");
    kube::Client::try_from(kube::Config::new(url)).expect("a client")
}

fn source(cluster: &FakeCluster, from: VersionFrom) -> KubernetesSource {
    KubernetesSource::start(client(cluster), NS, "web", from).expect("source")
}

/// Waits until the source reports `version` (or panics after 10 s).
async fn wait_version(source: &KubernetesSource, version: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = source.current_version().await;
        if seen.as_deref().ok() == Some(version) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {seen:?}, expected {version}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn strategic(cluster: &FakeCluster, patch: serde_json::Value) {
    cluster.patch_deployment(NS, "web", "application/strategic-merge-patch+json", &patch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_tags_are_versions_a_scale_is_not_a_release_a_set_image_is() {
    let cluster = FakeCluster::start();
    cluster.create_deployment(
        NS,
        "web",
        &[
            ("sidecar", "envoy:1.30"),
            ("app", "registry:5000/shop/web:1.4.2"),
        ],
        &[],
    );
    let named = source(&cluster, VersionFrom::Image(Some("app".into())));
    let first = source(&cluster, VersionFrom::Image(None));
    wait_version(&named, "1.4.2").await;
    wait_version(&first, "1.30").await;

    // A scale and a label on the Deployment: no new template, no release.
    cluster.patch_deployment(
        NS,
        "web",
        "application/merge-patch+json",
        &json!({"spec": {"replicas": 7}, "metadata": {"labels": {"tier": "front"}}}),
    );
    for _ in 0..10 {
        assert_eq!(named.current_version().await.ok().as_deref(), Some("1.4.2"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    cluster.set_image(NS, "web", "app", "registry:5000/shop/web:1.5.0");
    wait_version(&named, "1.5.0").await;
    cluster.set_image(
        NS,
        "web",
        "app",
        "web@sha256:0123456789abcdef0123456789abcdef",
    );
    wait_version(&named, "sha256:0123456789ab").await;
    cluster.set_image(NS, "web", "app", "web");
    wait_version(&named, "latest").await;

    let missing = source(&cluster, VersionFrom::Image(Some("nope".into())));
    let error = missing.current_version().await.err().map(|e| e.to_string());
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("no container \"nope\"") && e.contains("default/web")),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_and_annotations_are_versions_when_configured() {
    let cluster = FakeCluster::start();
    cluster.create_deployment(
        NS,
        "web",
        &[("app", "web:1")],
        &[("example.com/version", "7")],
    );
    let by_label = source(
        &cluster,
        VersionFrom::Label("app.kubernetes.io/version".into()),
    );
    let by_annotation = source(
        &cluster,
        VersionFrom::Annotation("example.com/version".into()),
    );
    // The Deployment's own annotation, while the template has none.
    wait_version(&by_annotation, "7").await;
    let error = by_label.current_version().await.err();
    assert!(
        matches!(&error, Some(SourceError::Kubernetes { reason, .. }) if reason.contains("app.kubernetes.io/version")),
        "{error:?}"
    );

    strategic(
        &cluster,
        json!({"spec": {"template": {"metadata": {
            "labels": {"app.kubernetes.io/version": "2.0"},
            "annotations": {"example.com/version": "8"}}}}}),
    );
    wait_version(&by_label, "2.0").await;
    wait_version(&by_annotation, "8").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollback_mark_holds_for_its_revision_only() {
    let cluster = FakeCluster::start();
    cluster.create_deployment(NS, "web", &[("app", "web:1")], &[]);
    let source = source(&cluster, VersionFrom::Image(Some("app".into())));
    wait_version(&source, "1").await;
    cluster.set_image(NS, "web", "app", "web:2");
    wait_version(&source, "2").await;
    // rollguard rolls back: a new revision with the old template...
    cluster.set_image(NS, "web", "app", "web:1");
    wait_version(&source, "1").await;
    assert_eq!(source.rolled_back(), None);
    // ...then marks it.
    source
        .mark_rolled_back("web-1", "2", "1", SystemTime::now())
        .await
        .expect("marked");
    let stored = cluster.deployment(NS, "web");
    let text = stored["metadata"]["annotations"][ROLLED_BACK_ANNOTATION]
        .as_str()
        .expect("the annotation")
        .to_owned();
    let mark: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(mark["release_id"], "web-1");
    assert_eq!((&mark["from"], &mark["to"]), (&json!("2"), &json!("1")));
    assert_eq!(
        mark["revision"],
        stored["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while source.rolled_back().is_none() {
        assert!(Instant::now() < deadline, "the mark was never seen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = source.rolled_back().expect("mark");
    assert_eq!((seen.from.as_str(), seen.to.as_str()), ("2", "1"));

    // A later release (a new revision) is not rollguard's, mark or not.
    cluster.set_image(NS, "web", "app", "web:3");
    wait_version(&source, "3").await;
    assert_eq!(source.rolled_back(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_deployment_is_a_clear_error_until_it_exists() {
    let cluster = FakeCluster::start();
    let source = source(&cluster, VersionFrom::Image(None));
    let error = source.current_version().await.err();
    assert!(
        error
            .as_ref()
            .is_some_and(|e| e.to_string()
                == "deployment default/web: deployment default/web does not exist"),
        "{error:?}"
    );
    assert_eq!(error.map(|e| e.metric_label()), Some("kubernetes"));
    cluster.create_deployment(NS, "web", &[("app", "web:1")], &[]);
    wait_version(&source, "1").await;

    // An API that does not answer is an error too, never a panic.
    let url = "http://127.0.0.1:9".parse().expect("url");
    let nowhere = kube::Client::try_from(kube::Config::new(url)).expect("client");
    let down =
        KubernetesSource::start(nowhere, NS, "web", VersionFrom::Image(None)).expect("source");
    let error = down.current_version().await.err().map(|e| e.to_string());
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.starts_with("deployment default/web: ")),
        "{error:?}"
    );
}

/// Samples both electors until `until`; panics if both ever lead at once.
async fn never_both(a: &watch::Receiver<bool>, b: &watch::Receiver<bool>, until: Duration) {
    let end = Instant::now() + until;
    while Instant::now() < end {
        assert!(!(*a.borrow() && *b.borrow()), "two leaders at once");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_leads(leader: &mut watch::Receiver<bool>, limit: Duration) -> Duration {
    let started = Instant::now();
    tokio::time::timeout(limit, leader.wait_for(|l| *l))
        .await
        .expect("became the leader in time")
        .expect("the election runs");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_and_a_takeover_after_the_lease_duration() {
    let cluster = FakeCluster::start();
    let duration = Duration::from_secs(1);
    let a = LeaseElector::new(client(&cluster), NS, "rollguard", "replica-a", duration);
    let b = LeaseElector::new(client(&cluster), NS, "rollguard", "replica-b", duration);
    let (_stop_a, stopped_a) = watch::channel(false);
    let (stop_b, stopped_b) = watch::channel(false);
    let (mut leads_a, task_a) = a.spawn(stopped_a);
    let (mut leads_b, task_b) = b.spawn(stopped_b);
    tokio::select! {
        _ = leads_a.wait_for(|l| *l) => {}
        _ = leads_b.wait_for(|l| *l) => {}
    }
    never_both(&leads_a, &leads_b, Duration::from_millis(2500)).await;
    let (mut first, first_task, mut second, second_name) = if *leads_a.borrow() {
        (leads_a, task_a, leads_b, "replica-b")
    } else {
        (leads_b, task_b, leads_a, "replica-a")
    };
    assert!(*first.borrow(), "the first leader keeps renewing");
    let lease = cluster.lease(NS, "rollguard").expect("the Lease");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 1);

    // The leader dies without a word: it stops renewing, gives nothing up.
    first_task.abort();
    let _ = first_task.await;
    let took = wait_leads(&mut second, Duration::from_secs(5)).await;
    assert!(
        took >= Duration::from_millis(500),
        "took over after {took:?}, before the lease could expire"
    );
    let lease = cluster.lease(NS, "rollguard").expect("the Lease");
    assert_eq!(lease["spec"]["holderIdentity"], second_name);
    assert!(lease["spec"]["leaseTransitions"].as_i64() >= Some(1));
    let _ = first.borrow_and_update();

    // A graceful stop gives the Lease up at once.
    if second_name == "replica-b" {
        stop_b.send_replace(true);
        tokio::time::timeout(Duration::from_secs(3), second.wait_for(|l| !*l))
            .await
            .expect("stepped down")
            .ok();
        let deadline = Instant::now() + Duration::from_secs(3);
        while cluster.lease(NS, "rollguard").expect("lease")["spec"]["holderIdentity"].is_string() {
            assert!(Instant::now() < deadline, "the Lease was not given up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_lease_fires_the_pipeline_stop() {
    let cluster = FakeCluster::start();
    let elector = LeaseElector::new(
        client(&cluster),
        NS,
        "rollguard",
        "replica-a",
        Duration::from_secs(2),
    );
    let (_stop, stopped) = watch::channel(false);
    let (mut leads, _task) = elector.spawn(stopped);
    wait_leads(&mut leads, Duration::from_secs(5)).await;
    let (_shutdown, not_shutting_down) = watch::channel(false);
    let mut pipeline_stop = PipelineStop::new(not_shutting_down, leads.clone());
    assert!(!*pipeline_stop.receiver.borrow());

    // Another replica takes the Lease (as after a long pause of this one).
    let mut rogue = LeaseElector::new(
        client(&cluster),
        NS,
        "rollguard",
        "replica-b",
        Duration::from_secs(2),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rogue.try_acquire_or_renew().await.expect("API answers") {
        assert!(Instant::now() < deadline, "never took the Lease");
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The leader renews in time, so the Lease is taken by force here,
        // as after a long pause of the leader.
        let mut lease = cluster.lease(NS, "rollguard").expect("lease");
        lease["spec"]["holderIdentity"] = json!("replica-b");
        let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
            kube::Api::namespaced(client(&cluster), NS);
        let lease = serde_json::from_value(lease).expect("a Lease");
        let _ = api
            .replace("rollguard", &kube::api::PostParams::default(), &lease)
            .await;
    }
    tokio::time::timeout(
        Duration::from_secs(5),
        pipeline_stop.receiver.wait_for(|s| *s),
    )
    .await
    .expect("the stop fired")
    .expect("the helper runs");
    assert!(pipeline_stop.lost_leadership());
    assert!(!*leads.borrow());
}
