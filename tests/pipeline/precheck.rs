//! `precheck` against real parts: a release directory with a `current`
//! link, a git repository made here, a version URL served on 127.0.0.1:0,
//! and the fake Kubernetes API server (tests/common/kube_fake). A failed check stops the pipeline before anything changes,
//! whatever `on_failure` says, without a retry; the restore steps still run.

use super::{ctx, deps, run, script, step};
use crate::kube_fake::FakeCluster;
use axum::Router;
use rollguard::config::{ReleaseConfig, StepConfig};
use rollguard::kubernetes::KubeClient;
use rollguard::model::StepOutcome;
use rollguard::pipeline::{PipelineDeps, PipelineOutcome, RollbackContext};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A rollback from v2 to v1 whose release source is `release` (TOML).
fn ctx_with(release: &str) -> RollbackContext {
    let mut ctx = ctx("v2", "v1");
    let release: ReleaseConfig = toml::from_str(release).expect("a valid release source");
    ctx.release_hint = Some(release);
    ctx
}

/// `dir/releases/{versions}` and `dir/current -> releases/{current}`; the
/// rollback context of its symlink source.
fn layout(dir: &Path, versions: &[&str], current: &str) -> RollbackContext {
    for version in versions {
        std::fs::create_dir_all(dir.join("releases").join(version)).expect("mkdir");
    }
    let link = dir.join("current");
    std::os::unix::fs::symlink(format!("releases/{current}"), &link).expect("link");
    let mut ctx = ctx_with(&format!("kind = 'symlink'\npath = '{}'", link.display()));
    ctx.link_hint = Some(link);
    ctx
}

/// The pipeline of a symlink host: the precheck (with `extra` keys), the
/// switch, and a restore step that leaves `dir/restored`.
fn symlink_pipeline(dir: &Path, extra: &str) -> Vec<StepConfig> {
    let marker = dir.join("restored");
    let undrain = script(dir, "undrain", &format!("touch '{}'", marker.display()));
    vec![
        step(&format!(
            "phase = 'precheck'\nkind = 'precheck'\ntarget = 'symlink_dir'\n{extra}"
        )),
        step("phase = 'rollback'\nkind = 'symlink_switch'"),
        step(&format!(
            "phase = 'restore'\nkind = 'command'\nname = 'undrain'\nargv = ['{}']",
            undrain.display()
        )),
    ]
}

/// The outcome's failed step and message; panics when it did not fail.
fn failure(outcome: &PipelineOutcome) -> (&str, &str) {
    match outcome {
        PipelineOutcome::Failed { step, message, .. } => (step, message),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// Where `dir/current` points.
fn current(dir: &Path) -> String {
    let content = std::fs::read_link(dir.join("current")).expect("the link");
    content.display().to_string()
}

#[tokio::test]
async fn a_symlink_someone_else_switched_stops_the_pipeline_before_the_switch() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Someone deployed v3 over the bad v2 already.
    let ctx = layout(dir.path(), &["v1", "v2", "v3"], "v3");
    // Neither `on_failure = "continue"` nor retries make a precheck go on.
    let steps = symlink_pipeline(dir.path(), "on_failure = 'continue'\nretries = 2");
    let outcome = run(&steps, &ctx, &deps(&[])).await;
    let (failed, message) = failure(&outcome);
    assert_eq!(failed, "precheck");
    assert!(
        message.contains("the running version is v3, not v2: someone else already acted"),
        "{message}"
    );
    let names: Vec<_> = outcome.steps().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["precheck", "undrain"], "the switch must not run");
    assert_eq!(outcome.steps()[0].attempts, 1, "a precheck is not retried");
    assert_eq!(current(dir.path()), "releases/v3", "nothing was switched");
    assert!(
        dir.path().join("restored").exists(),
        "restore steps still run"
    );
}

#[tokio::test]
async fn a_missing_restore_directory_stops_the_pipeline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ctx = layout(dir.path(), &["v2"], "v2");
    ctx.restore_version = "v1".into();
    let outcome = run(&symlink_pipeline(dir.path(), ""), &ctx, &deps(&[])).await;
    let (failed, message) = failure(&outcome);
    assert_eq!(failed, "precheck");
    let missing = dir.path().join("releases").join("v1");
    assert!(
        message.contains(&format!("release directory {}", missing.display()))
            && message.contains("nothing to roll back to"),
        "{message}"
    );
    assert_eq!(current(dir.path()), "releases/v2", "nothing was switched");
    assert!(
        dir.path().join("restored").exists(),
        "restore steps still run"
    );
}

#[tokio::test]
async fn a_passing_symlink_precheck_lets_the_switch_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = layout(dir.path(), &["v1", "v2"], "v2");
    let outcome = run(&symlink_pipeline(dir.path(), ""), &ctx, &deps(&[])).await;
    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    let precheck = &outcome.steps()[0];
    let message = precheck.message.as_deref().unwrap_or("");
    assert!(
        message.starts_with("symlink still runs v2; release directory ")
            && message.ends_with("releases/v1 exists"),
        "{message}"
    );
    assert_eq!(current(dir.path()), "releases/v1");
}

/// Runs `git` with `args` in `repo`, which must succeed.
fn git(repo: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=rollguard",
            "-c",
            "user.email=dev@rollguard.invalid",
        ])
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

#[tokio::test]
async fn a_git_tag_check_runs_git_rev_parse_in_a_real_repository() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).expect("mkdir");
    git(&repo, &["init", "--quiet"]);
    std::fs::write(repo.join("app.txt"), "v1\n").expect("write");
    git(&repo, &["add", "app.txt"]);
    git(&repo, &["commit", "--quiet", "-m", "v1"]);
    git(&repo, &["tag", "v1"]);
    let precheck = step(&format!(
        "phase = 'precheck'\nkind = 'precheck'\nrunning = false\ntarget = 'git_tag'\nrepo = '{}'",
        repo.display()
    ));
    let steps = [precheck];

    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;
    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    let message = outcome.steps()[0].message.clone().unwrap_or_default();
    assert!(message.starts_with("tag v1 is commit "), "{message}");

    // A tag that is not there, and one that looks like an option.
    for missing in ["v0", "--all"] {
        let outcome = run(&steps, &ctx("v2", missing), &deps(&[])).await;
        let (failed, message) = failure(&outcome);
        assert_eq!(failed, "precheck");
        assert!(
            message.contains(&format!("tag {missing} does not name a commit in")),
            "{message}"
        );
        assert_eq!(outcome.steps()[0].outcome, StepOutcome::Failed);
    }
}

#[tokio::test]
async fn a_version_url_answering_another_version_stops_the_pipeline() {
    let version = Arc::new(Mutex::new("v3".to_owned()));
    let answer = version.clone();
    let app = Router::new().fallback(move || {
        let answer = answer.clone();
        async move { answer.lock().expect("version lock").clone() }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let ctx = ctx_with(&format!(
        "kind = 'version_url'\nurl = 'http://{addr}/version'"
    ));
    let steps = [step("phase = 'precheck'\nkind = 'precheck'")];

    let outcome = run(&steps, &ctx, &deps(&[])).await;
    let (_, message) = failure(&outcome);
    assert!(
        message.contains("the running version is v3, not v2"),
        "{message}"
    );

    *version.lock().expect("version lock") = "v2\n".to_owned();
    let outcome = run(&steps, &ctx, &deps(&[])).await;
    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.steps()[0].message.as_deref(),
        Some("version_url still runs v2")
    );
}

/// A rollback of `default/web` from `web:2` to `web:1` watched through a
/// kubernetes release source, with deps that talk to `cluster`.
fn kube_rollback(cluster: &FakeCluster) -> (RollbackContext, PipelineDeps) {
    let mut ctx = ctx_with("kind = 'kubernetes'\nnamespace = 'default'\ndeployment = 'web'");
    (ctx.bad_version, ctx.restore_version) = ("2".into(), "1".into());
    ctx.namespace_hint = Some("default".into());
    ctx.deployment_hint = Some("web".into());
    let mut deps = deps(&[]);
    deps.kube = KubeClient::for_url(&cluster.base).expect("the fake's URL");
    (ctx, deps)
}

/// The image the fake's Deployment `name` runs.
fn image(cluster: &FakeCluster, name: &str) -> String {
    let deployment = cluster.deployment("default", name);
    let image = &deployment["spec"]["template"]["spec"]["containers"][0]["image"];
    image.as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_precheck_reads_the_deployment_and_dry_runs_the_undo() {
    let cluster = FakeCluster::start();
    cluster.create_history("default", "web", 2);
    let (mut ctx, deps) = kube_rollback(&cluster);
    let steps = [step(
        "phase = 'precheck'\nkind = 'precheck'\ntarget = 'kubernetes_revision'",
    )];

    let outcome = run(&steps, &ctx, &deps).await;
    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.steps()[0].message.as_deref(),
        Some(
            "kubernetes still runs 2; deployment default/web can roll back to revision 1 (dry run accepted)"
        )
    );
    let patches: Vec<_> = cluster
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert!(
        !patches.is_empty() && patches.iter().all(|p| p.query.contains("dryRun=All")),
        "only dry-run PATCHes: {patches:?}"
    );
    assert_eq!(image(&cluster, "web"), "web:2", "nothing was changed");

    // Someone else already rolled back to 1.
    ctx.bad_version = "3".into();
    let outcome = run(&steps, &ctx, &deps).await;
    let (_, message) = failure(&outcome);
    assert!(
        message.contains("the running version is 2, not 3"),
        "{message}"
    );

    // A Deployment with a single revision has nothing to roll back to.
    cluster.create_deployment("default", "solo", &[("app", "web:2")], &[]);
    ctx.bad_version = "2".into();
    ctx.deployment_hint = Some("solo".into());
    let solo = step(
        "phase = 'precheck'\nkind = 'precheck'\nrunning = false\ntarget = 'kubernetes_revision'",
    );
    let outcome = run(&[solo], &ctx, &deps).await;
    let (_, message) = failure(&outcome);
    assert!(
        message.starts_with("deployment default/solo: ")
            && message.ends_with("nothing to roll back to; nothing was changed"),
        "{message}"
    );
    assert_eq!(image(&cluster, "solo"), "web:2");
}
