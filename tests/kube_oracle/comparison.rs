//! The comparisons can fail: rollguard's requests or results unlike
//! kubectl's recorded ones, and a recording tampered with, fail them.

use super::*;
use crate::kube_fake::RecordedRequest;
use crate::kubectl_recording::Recording;
use serde_json::Value;

/// The recorded test whose first run these tests replay: `rollout undo
/// deployment/web` of the `annotated` history.
const TEST: &str = "undo_copies_annotations_and_restores_every_container_like_kubectl";

/// kubectl's first recorded run of `TEST`, changed by `tamper`.
fn first_run(tamper: impl FnOnce(&mut Recording)) -> Pair {
    let mut recording = Recording::load(TEST);
    recording.runs.truncate(1);
    tamper(&mut recording);
    Pair::replaying(TEST, recording)
}

/// `requests` with the body of its PATCH changed by `change`.
fn with_patch_body(
    requests: &[RecordedRequest],
    change: impl Fn(&mut Value),
) -> Vec<RecordedRequest> {
    let mut requests = requests.to_vec();
    let patch = requests.iter_mut().find(|r| r.method == "PATCH");
    let patch = patch.expect("a PATCH");
    let mut body = patch.json();
    change(&mut body);
    patch.body = body.to_string();
    requests
}

#[test]
fn requests_or_results_unlike_kubectls_fail_the_comparison() {
    let pair = first_run(|_| {});
    pair.both(annotated);
    let run = pair.kubectl(&["rollout", "undo", "deployment/web"]);
    let (result, sent) = pair.rollguard(&undo_step("web", None));
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(same_requests(&run, &sent), Ok(()));
    assert_eq!(pair.same(), Ok(()));

    let image = "/0/value/spec/containers/0/image";
    let other_image = with_patch_body(&sent, |b| *b.pointer_mut(image).unwrap() = json!("web:9"));
    let error = same_requests(&run, &other_image).expect_err("another image");
    assert!(error.contains("differ in body"), "{error}");
    let fewer_annotations = with_patch_body(&sent, |b| {
        b[1]["value"].as_object_mut().unwrap().remove("team");
    });
    assert!(same_requests(&run, &fewer_annotations).is_err());

    let mut merge_patch = sent.clone();
    let last = merge_patch.last_mut().expect("a request");
    last.content_type = "application/merge-patch+json".into();
    let error = same_requests(&run, &merge_patch).expect_err("another content type");
    assert!(error.contains("differ in content type"), "{error}");

    let without_list: Vec<RecordedRequest> = sent
        .iter()
        .filter(|r| !r.path.ends_with("/replicasets"))
        .cloned()
        .collect();
    let error = same_requests(&run, &without_list).expect_err("no LIST");
    assert!(error.contains("the requests differ"), "{error}");
    let twice: Vec<RecordedRequest> = sent.iter().chain(&sent).cloned().collect();
    assert!(same_requests(&run, &twice).is_err());

    // kubectl's side of the comparison is the recording: its PATCH changed.
    let mut recorded = run.clone();
    recorded.requests = with_patch_body(&run.requests, |b| b[0]["op"] = json!("add"));
    assert!(same_requests(&recorded, &sent).is_err());

    // A result unlike kubectl's.
    pair.by_rollguard.set_image(NS, "web", "app", "web:9");
    let error = pair.same().expect_err("another image left");
    assert!(error.contains("web:9"), "{error}");
}

#[test]
#[should_panic(expected = "the requests differ")]
fn a_recording_with_another_request_fails_the_oracle_test() {
    // Had kubectl named a field manager, rollguard's undo would not match.
    let pair = first_run(|recording| {
        let patch = recording.runs[0].requests.last_mut();
        let patch = patch.expect("kubectl's PATCH");
        assert_eq!(patch.method, "PATCH");
        patch.query = format!("fieldManager=kubectl-rollout&{}", patch.query);
    });
    pair.both(annotated);
    let _ = undo_both(&pair, "web", None);
}

#[test]
#[should_panic(expected = "no longer leave what kubectl left")]
fn a_recording_whose_requests_do_not_leave_its_result_fails() {
    let pair = first_run(|recording| {
        let after = &mut recording.runs[0].after;
        after["deployment"]["spec"]["replicas"] = json!(4);
    });
    pair.both(annotated);
    let _ = undo_both(&pair, "web", None);
}

#[test]
#[should_panic(expected = "the test's start differs from the recorded one")]
fn a_recording_of_another_history_fails() {
    let pair = first_run(|_| {});
    pair.both(|c| c.create_history(NS, "web", 2));
    let _ = undo_both(&pair, "web", None);
}
