//! The `swarm` release source against the fake `docker`
//! (`tests/fake_docker.py`): the service's image tag or label is the
//! version, and a new tag is a release.

use crate::fake_docker::{FakeDocker, service};
use rollguard::config::ReleaseConfig;
use rollguard::http::http_client;
use rollguard::release::{ReleaseChange, ReleaseSource, ReleaseTracker};
use std::time::{Duration, SystemTime};

fn source(docker: &FakeDocker, extra: &str) -> ReleaseSource {
    let text = format!(
        "kind = \"swarm\"\nservice = \"api\"\ndocker = {}\n{extra}",
        docker.toml_path()
    );
    let config: ReleaseConfig = toml::from_str(&text).expect("release config parses");
    ReleaseSource::from_config(&config, http_client().expect("client")).expect("swarm source")
}

async fn version(source: &ReleaseSource) -> String {
    source
        .current_version()
        .await
        .unwrap_or_else(|e| panic!("no version: {e}"))
        .expect("a polled version")
}

#[tokio::test]
async fn a_new_image_tag_is_a_release() {
    let docker = FakeDocker::new(&[
        service("reg:5000/app:v1@sha256:0123456789abcdef", None, "", "", ""),
        service(
            "reg:5000/app:v2@sha256:fedcba9876543210",
            Some("reg:5000/app:v1"),
            "updating",
            "t1",
            "",
        ),
        service(
            "reg:5000/app:v2@sha256:fedcba9876543210",
            Some("reg:5000/app:v1"),
            "completed",
            "t1",
            "",
        ),
    ]);
    let source = source(&docker, "");
    let mut tracker = ReleaseTracker::new("api");
    let now = SystemTime::now();
    let first = version(&source).await;
    assert_eq!(first, "v1", "the digest the CLI pinned is not the version");
    assert!(matches!(
        tracker.observe(&first, now),
        Some(ReleaseChange::Initial { .. })
    ));
    let second = version(&source).await;
    let change = tracker.observe(&second, now + Duration::from_secs(10));
    assert!(
        matches!(&change, Some(ReleaseChange::Release { from, to, .. }) if from.as_deref() == Some("v1") && to == "v2"),
        "{change:?}"
    );
    // The update converging is the same release, not another one.
    let third = version(&source).await;
    assert_eq!(tracker.observe(&third, now + Duration::from_secs(20)), None);
    assert_eq!(
        docker.calls(),
        ["service inspect --format {{json .}} api"; 3]
    );
}

#[tokio::test]
async fn a_version_label_and_the_errors_say_what_is_wrong() {
    let docker = FakeDocker::new(&[service("reg/app:latest", None, "", "", "")]);
    let labelled = source(&docker, "version_label = \"com.example.version\"");
    assert_eq!(version(&labelled).await, "label-latest");

    let missing_label = source(&docker, "version_label = \"nope\"");
    let error = missing_label
        .current_version()
        .await
        .expect_err("no such label");
    assert_eq!(error.metric_label(), "swarm");
    assert_eq!(error.to_string(), "swarm service api: has no label `nope`");

    docker.play(&["missing".into()]);
    let error = labelled
        .current_version()
        .await
        .expect_err("no such service");
    assert!(
        error.to_string().contains("Error: no such service: api"),
        "{error}"
    );

    // A version from the outside that could pass for an option is refused.
    docker.play(&[service("reg/app:--privileged", None, "", "", "")]);
    let error = source(&docker, "")
        .current_version()
        .await
        .expect_err("refused");
    assert_eq!(error.metric_label(), "bad_version", "{error}");
}
