//! Rules for the rollback pipeline of one target: each `[[target.step]]`
//! has the keys its kind needs and no others, runnable programs and known
//! template variables.

use super::env::Environment;
use super::problems::Problems;
use super::validate::{
    check_argv, check_env_name, check_statuses, check_url, positive, unique_names,
};
use super::validate_target::check_method;
use super::{ReleaseKind, StepConfig, StepKind, TargetConfig};
use crate::template::{self, STEP_VARIABLES};

/// Keys a step kind requires, and keys it may have besides the common ones.
fn keys_of(kind: StepKind) -> (&'static [&'static str], &'static [&'static str]) {
    const KUBE: &[&str] = &["namespace", "deployment"];
    match kind {
        StepKind::Command => (&["argv"], &["env", "cwd"]),
        StepKind::Http => (
            &[],
            &[
                "method",
                "url",
                "url_env",
                "headers_env",
                "body",
                "expect_status",
            ],
        ),
        StepKind::SymlinkSwitch => (&["link"], &["releases_dir"]),
        StepKind::SystemdRestart => (&["unit"], &[]),
        StepKind::Wait => (&["duration"], &[]),
        StepKind::Verify => (&[], &[]),
        StepKind::KubernetesUndo => (&[], &["namespace", "deployment", "to_revision"]),
        StepKind::KubernetesSetImage => (&["container", "image"], KUBE),
        StepKind::KubernetesScale => (&["replicas"], KUBE),
        StepKind::KubernetesRolloutStatus => (&[], KUBE),
        StepKind::SwarmRollback => (&[], &["service"]),
    }
}

/// The kind-specific keys that are set in `s`.
fn present_keys(s: &StepConfig) -> Vec<&'static str> {
    [
        ("argv", s.argv.is_some()),
        ("env", !s.env.is_empty()),
        ("cwd", s.cwd.is_some()),
        ("method", s.method.is_some()),
        ("url", s.url.is_some()),
        ("url_env", s.url_env.is_some()),
        ("headers_env", !s.headers_env.is_empty()),
        ("body", s.body.is_some()),
        ("expect_status", s.expect_status.is_some()),
        ("link", s.link.is_some()),
        ("releases_dir", s.releases_dir.is_some()),
        ("unit", s.unit.is_some()),
        ("duration", s.duration.is_some()),
        ("namespace", s.namespace.is_some()),
        ("deployment", s.deployment.is_some()),
        ("container", s.container.is_some()),
        ("image", s.image.is_some()),
        ("replicas", s.replicas.is_some()),
        ("to_revision", s.to_revision.is_some()),
        ("service", s.service.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect()
}

/// Every rule for the steps of `target[i]`.
pub(crate) fn steps(i: usize, t: &TargetConfig, env: &dyn Environment, problems: &mut Problems) {
    let named = t
        .step
        .iter()
        .enumerate()
        .filter_map(|(k, s)| s.name.as_deref().map(|n| (k, n)));
    unique_names(named, &format!("target[{i}].step"), problems);
    for (k, s) in t.step.iter().enumerate() {
        step(
            s,
            &format!("target[{i}].step[{k}]"),
            t.release.kind,
            env,
            problems,
        );
    }
}

/// One step.
fn step(
    s: &StepConfig,
    at: &str,
    release: ReleaseKind,
    env: &dyn Environment,
    problems: &mut Problems,
) {
    let key = |k: &str| format!("{at}.{k}");
    let kind = s.kind.as_str();
    let (required, optional) = keys_of(s.kind);
    let present = present_keys(s);
    for k in &present {
        if !required.contains(k) && !optional.contains(k) {
            problems.push(key(k), format!("`{k}` is not used by step kind `{kind}`"));
        }
    }
    for k in required {
        if !present.contains(k) {
            problems.push(key("kind"), format!("step kind `{kind}` needs `{k}`"));
        }
    }
    positive(s.timeout, &key("timeout"), problems);
    let templated = |field: &str, text: &str, problems: &mut Problems| {
        for message in template::check(text, STEP_VARIABLES) {
            problems.push(key(field), message.to_string());
        }
    };
    if let Some(argv) = &s.argv {
        check_argv(argv, &key("argv"), env, problems);
        for (a, arg) in argv.iter().enumerate() {
            templated(&format!("argv[{a}]"), arg, problems);
        }
    }
    for name in s.env.keys() {
        check_env_name(name, &key(&format!("env.{name}")), problems);
    }
    if s.kind == StepKind::Http {
        match (&s.url, &s.url_env) {
            (None, None) => problems.push(key("kind"), "step kind `http` needs `url` or `url_env`"),
            (Some(_), Some(_)) => {
                problems.push(key("url_env"), "give either `url` or `url_env`, not both");
            }
            _ => {}
        }
    }
    if let Some(url) = &s.url {
        templated("url", url, problems);
        check_url(url, &key("url"), problems);
    }
    if let Some(var) = &s.url_env {
        check_env_name(var, &key("url_env"), problems);
    }
    for (header, var) in &s.headers_env {
        check_env_name(var, &key(&format!("headers_env.{header}")), problems);
    }
    if let Some(body) = &s.body {
        templated("body", body, problems);
    }
    if let Some(image) = &s.image {
        templated("image", image, problems);
    }
    if let Some(method) = &s.method {
        check_method(method, &key("method"), problems);
    }
    if let Some(statuses) = &s.expect_status {
        check_statuses(statuses, &key("expect_status"), problems);
    }
    if let Some(duration) = s.duration {
        positive(duration, &key("duration"), problems);
    }
    let kubernetes = matches!(
        s.kind,
        StepKind::KubernetesUndo
            | StepKind::KubernetesSetImage
            | StepKind::KubernetesScale
            | StepKind::KubernetesRolloutStatus
    );
    if kubernetes && release != ReleaseKind::Kubernetes {
        for (k, set) in [
            ("namespace", s.namespace.is_some()),
            ("deployment", s.deployment.is_some()),
        ] {
            if !set {
                problems.push(
                    key("kind"),
                    format!(
                        "step kind `{kind}` needs `{k}` when the release kind is not `kubernetes`"
                    ),
                );
            }
        }
    }
    if s.kind == StepKind::SwarmRollback && release != ReleaseKind::Swarm && s.service.is_none() {
        problems.push(
            key("kind"),
            "step kind `swarm_rollback` needs `service` when the release kind is not `swarm`",
        );
    }
}
