//! Rules for the rollback pipeline of one target beyond each kind's keys,
//! which serde checks (`tagged.rs`): runnable programs, known template
//! variables, sane time limits, and what a kind needs from the release
//! source when the step does not say it.

use super::bounds::{self, check as bounded};
use super::env::Environment;
use super::problems::Problems;
use super::sections_tagged::ReadTarget;
use super::validate::{
    check_argv, check_env_name, check_statuses, check_url_template, unique_names,
};
use super::validate_release::{check_docker, check_service};
use super::validate_target::check_method;
use super::{
    HttpStep, OnFailure, PrecheckStep, PrecheckTarget, ReleaseKind, StepAction, StepConfig,
    StepKind,
};
use crate::template::{self, STEP_VARIABLES};

/// Every rule for the readable steps of `target[i]`.
pub(crate) fn steps(i: usize, t: &ReadTarget, env: &dyn Environment, problems: &mut Problems) {
    let steps = || t.step_at.iter().copied().zip(&t.config.step);
    let named = steps().filter_map(|(k, s)| s.common.name.as_deref().map(|n| (k, n)));
    unique_names(named, &format!("target[{i}].step"), problems);
    for (k, s) in steps() {
        let at = format!("target[{i}].step[{k}]");
        step(s, &at, t.config.release.kind(), env, problems);
    }
    backups_first(i, t, problems);
    prechecks_first(i, t, problems);
}

/// The steps of `t` with their indexes, in the order the runner runs them
/// (phase order, then file order).
fn in_run_order(t: &ReadTarget) -> Vec<(usize, &StepConfig)> {
    let mut in_order: Vec<(usize, &StepConfig)> =
        t.step_at.iter().copied().zip(&t.config.step).collect();
    in_order.sort_by_key(|(_, s)| s.common.phase);
    in_order
}

/// A `precheck` says that nothing was changed when it fails, so no step
/// that changes the running version may run before it.
fn prechecks_first(i: usize, t: &ReadTarget, problems: &mut Problems) {
    let in_order = in_run_order(t);
    let Some(first_change) = in_order
        .iter()
        .position(|(_, s)| s.kind().changes_version())
    else {
        return;
    };
    let (change_at, change) = in_order[first_change];
    for (k, s) in &in_order[first_change..] {
        if s.kind() == StepKind::Precheck {
            problems.push(
                format!("target[{i}].step[{k}].phase"),
                format!(
                    "a precheck must run before anything changes, but step kind `{}` (target[{i}].step[{change_at}]) runs first: put the precheck in the `precheck` phase",
                    change.kind().as_str()
                ),
            );
        }
    }
}

/// A `backup` must succeed before any step that changes the running
/// version, so every such step must run after every backup (in phase
/// order, then file order, as the runner runs them); and a backup's failure
/// always aborts, so `on_failure = "continue"` on one would be a lie.
fn backups_first(i: usize, t: &ReadTarget, problems: &mut Problems) {
    let in_order = in_run_order(t);
    let Some(last_backup) = in_order
        .iter()
        .rposition(|(_, s)| s.kind() == StepKind::Backup)
    else {
        return;
    };
    let (backup_at, backup) = in_order[last_backup];
    let backup_name = backup.common.name.as_deref().unwrap_or("backup");
    for (k, s) in &in_order[..last_backup] {
        if s.kind().changes_version() {
            problems.push(
                format!("target[{i}].step[{k}].phase"),
                format!(
                    "step kind `{}` changes the running version but runs before the backup step `{backup_name}` (target[{i}].step[{backup_at}]); a backup must succeed before any such step: put the backup in an earlier phase, such as `database`",
                    s.kind().as_str()
                ),
            );
        }
    }
    for (k, s) in &in_order {
        if s.kind() == StepKind::Backup && s.common.on_failure == OnFailure::Continue {
            problems.push(
                format!("target[{i}].step[{k}].on_failure"),
                "a failed backup always aborts the pipeline (nothing may change the running version without it); remove `on_failure = \"continue\"`",
            );
        }
    }
}

/// One step at `at`.
fn step(
    s: &StepConfig,
    at: &str,
    release: ReleaseKind,
    env: &dyn Environment,
    problems: &mut Problems,
) {
    let key = |k: &str| format!("{at}.{k}");
    let c = &s.common;
    bounded(c.timeout, bounds::STEP_TIMEOUT, &key("timeout"), problems);
    bounded(c.backoff, bounds::STEP_BACKOFF, &key("backoff"), problems);
    bounds::check_retries(c.retries, &key("retries"), problems);
    let templated = |field: &str, text: &str, problems: &mut Problems| {
        for message in template::check(text, STEP_VARIABLES) {
            problems.push(key(field), message.to_string());
        }
    };
    let kind = s.kind().as_str();
    let needs_from_release = |k: &str, source: ReleaseKind, problems: &mut Problems| {
        if release != source {
            problems.push(
                key("kind"),
                format!(
                    "step kind `{kind}` needs `{k}` when the release kind is not `{}`",
                    source.as_str()
                ),
            );
        }
    };
    match &s.action {
        StepAction::Command(command) | StepAction::Backup(command) => {
            check_argv(&command.argv, &key("argv"), env, problems);
            for (a, arg) in command.argv.iter().enumerate() {
                templated(&format!("argv[{a}]"), arg, problems);
            }
            for name in command.env.keys() {
                check_env_name(name, &key(&format!("env.{name}")), problems);
            }
        }
        StepAction::Http(http) => http_step(http, at, STEP_VARIABLES, env, problems),
        StepAction::SymlinkSwitch(switch) => {
            if switch.link.is_none() {
                needs_from_release("link", ReleaseKind::Symlink, problems);
            }
        }
        StepAction::Wait(wait) => {
            bounded(
                wait.duration,
                bounds::STEP_TIMEOUT,
                &key("duration"),
                problems,
            );
        }
        StepAction::KubernetesSetImage(set) => templated("image", &set.image, problems),
        StepAction::SwarmPrecheck(swarm) => {
            check_service(&swarm.service, &key("service"), problems);
            check_docker(swarm.docker(), &key("docker"), env, problems);
            if swarm
                .version_label
                .as_deref()
                .is_some_and(|l| l.trim().is_empty())
            {
                problems.push(key("version_label"), "must not be empty");
            }
        }
        StepAction::SwarmRollback(swarm) => {
            check_service(&swarm.service, &key("service"), problems);
            check_docker(swarm.docker(), &key("docker"), env, problems);
        }
        StepAction::SwarmSetImage(swarm) => {
            check_service(&swarm.service, &key("service"), problems);
            check_docker(swarm.docker(), &key("docker"), env, problems);
            templated("image", &swarm.image, problems);
        }
        StepAction::Precheck(check) => {
            precheck(check, release, &key, problems);
            if c.on_failure == OnFailure::Continue {
                problems.push(
                    key("on_failure"),
                    "a failed precheck always aborts the pipeline (nothing may change once a check failed); remove `on_failure = \"continue\"`",
                );
            }
        }
        StepAction::BluegreenSwitch(switch) => {
            super::validate_switch::bluegreen(switch, at, env, problems);
        }
        StepAction::ConfigRestore(restore) => {
            super::validate_switch::config_restore(restore, at, problems);
        }
        StepAction::SystemdRestart(_)
        | StepAction::Verify(_)
        | StepAction::KubernetesUndo(_)
        | StepAction::KubernetesScale(_)
        | StepAction::KubernetesRolloutStatus(_) => {}
    }
    if let Some((namespace, deployment)) = s.action.deployment_keys() {
        for (k, set) in [("namespace", namespace), ("deployment", deployment)] {
            if set.is_none() {
                needs_from_release(k, ReleaseKind::Kubernetes, problems);
            }
        }
    }
}

/// An `http` step at `at` (or a blue-green `flip_http`), whose templates
/// may use `known`.
pub(crate) fn http_step(
    http: &HttpStep,
    at: &str,
    known: &[&str],
    env: &dyn Environment,
    problems: &mut Problems,
) {
    let key = |k: &str| format!("{at}.{k}");
    let templated = |field: &str, text: &str, problems: &mut Problems| {
        for message in template::check(text, known) {
            problems.push(key(field), message.to_string());
        }
    };
    match (&http.url, &http.url_env) {
        (None, None) => {
            problems.push(key("kind"), "step kind `http` needs `url` or `url_env`");
        }
        (Some(_), Some(_)) => {
            problems.push(key("url_env"), "give either `url` or `url_env`, not both");
        }
        _ => {}
    }
    if let Some(url) = &http.url {
        templated("url", url, problems);
        check_url_template(url, &key("url"), problems);
    }
    if let Some(var) = &http.url_env {
        check_env_name(var, &key("url_env"), problems);
    }
    for (header, var) in &http.headers_env {
        check_env_name(var, &key(&format!("headers_env.{header}")), problems);
    }
    if let Some(path) = &http.bearer_token_file {
        super::files::secret(path, &key("bearer_token_file"), env, problems);
        if http
            .headers_env
            .keys()
            .any(|h| h.eq_ignore_ascii_case("authorization"))
        {
            problems.push(
                key("bearer_token_file"),
                "sets the `Authorization` header, which `headers_env` sets too: give one",
            );
        }
    }
    if let Some(body) = &http.body {
        templated("body", body, problems);
    }
    if let Some(method) = &http.method {
        check_method(method, &key("method"), problems);
    }
    if let Some(statuses) = &http.expect_status {
        check_statuses(statuses, &key("expect_status"), problems);
    }
}

/// A `precheck` step: what it reads must be readable, and each target
/// check has what it needs (from the step, else the release source).
fn precheck(
    check: &PrecheckStep,
    release: ReleaseKind,
    key: &dyn Fn(&str) -> String,
    problems: &mut Problems,
) {
    if check.running && release == ReleaseKind::Announce {
        problems.push(
            key("running"),
            "an `announce` release source cannot be read, so the running version cannot be checked; set `running = false`",
        );
    }
    if !check.running && check.target.is_none() {
        problems.push(
            key("kind"),
            "a precheck with `running = false` and no `target` checks nothing",
        );
    }
    let needs = |k: &str, wanted: PrecheckTarget, problems: &mut Problems| {
        problems.push(
            key(k),
            format!("`{k}` is only for `target = \"{}\"`", wanted.as_str()),
        );
    };
    let given = |k: &str| match k {
        "repo" => check.repo.is_some(),
        "link" => check.link.is_some(),
        "releases_dir" => check.releases_dir.is_some(),
        "namespace" => check.namespace.is_some(),
        _ => check.deployment.is_some(),
    };
    let owners = [
        ("repo", PrecheckTarget::GitTag),
        ("link", PrecheckTarget::SymlinkDir),
        ("releases_dir", PrecheckTarget::SymlinkDir),
        ("namespace", PrecheckTarget::KubernetesRevision),
        ("deployment", PrecheckTarget::KubernetesRevision),
    ];
    for (k, owner) in owners {
        if given(k) && check.target != Some(owner) {
            needs(k, owner, problems);
        }
    }
    let from_release = |k: &str, source: ReleaseKind, problems: &mut Problems| {
        if !given(k) && release != source {
            problems.push(
                key("target"),
                format!(
                    "this target check needs `{k}` when the release kind is not `{}`",
                    source.as_str()
                ),
            );
        }
    };
    match check.target {
        Some(PrecheckTarget::GitTag) if check.repo.is_none() => {
            problems.push(key("target"), "`target = \"git_tag\"` needs `repo`");
        }
        Some(PrecheckTarget::SymlinkDir) => from_release("link", ReleaseKind::Symlink, problems),
        Some(PrecheckTarget::KubernetesRevision) => {
            from_release("namespace", ReleaseKind::Kubernetes, problems);
            from_release("deployment", ReleaseKind::Kubernetes, problems);
        }
        _ => {}
    }
}
