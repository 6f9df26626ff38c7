//! Rules for one `[[target]]`: timing, references to notifiers, the release
//! source, probes, metrics and data checks. Steps are in `validate_step.rs`.

use super::env::Environment;
use super::problems::Problems;
use super::validate::{check_argv, check_statuses, check_url, positive, unique_names};
use super::validate_step;
use super::{ProbeConfig, ReleaseConfig, ReleaseKind, TargetConfig};
use crate::template::{self, DATA_CHECK_VARIABLES};

/// What target rules need to know about the rest of the file.
pub(crate) struct Context<'a> {
    /// Names of every notifier in the file.
    pub(crate) notifier_names: &'a [String],
    /// Whether `[prometheus]` is in the file.
    pub(crate) prometheus_present: bool,
    /// The machine programs are looked for on.
    pub(crate) env: &'a dyn Environment,
}

/// Every rule for `target[i]`.
pub(crate) fn target(i: usize, t: &TargetConfig, cx: &Context<'_>, problems: &mut Problems) {
    let at = |key: &str| format!("target[{i}].{key}");
    if t.name.is_empty()
        || !t
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        problems.push(
            at("name"),
            "must be non-empty and use only letters, digits, `-`, `_` and `.`",
        );
    }
    positive(t.interval, &at("interval"), problems);
    if !(t.alpha > 0.0 && t.alpha <= 0.5) {
        problems.push(
            at("alpha"),
            "must be a probability above 0 and at most 0.5, such as 0.01",
        );
    }
    if t.bake_window < t.interval {
        problems.push(
            at("bake_window"),
            format!(
                "is shorter than `interval` ({}): not one tick would run",
                humantime::format_duration(t.interval)
            ),
        );
    }
    for (k, name) in t.notify.iter().enumerate() {
        if !cx.notifier_names.contains(name) {
            problems.push(
                format!("target[{i}].notify[{k}]"),
                format!("unknown notifier `{name}`: no `[[notifier]]` has this name"),
            );
        }
    }
    release(&t.release, &at("release"), problems);

    let names = |prefix: &str, list: Vec<(usize, &str)>, problems: &mut Problems| {
        unique_names(list.into_iter(), &format!("target[{i}].{prefix}"), problems);
    };
    names(
        "probe",
        t.probe
            .iter()
            .map(|p| p.name.as_str())
            .enumerate()
            .collect(),
        problems,
    );
    names(
        "metric",
        t.metric
            .iter()
            .map(|m| m.name.as_str())
            .enumerate()
            .collect(),
        problems,
    );
    let data_checks = t
        .data_check
        .iter()
        .map(|d| d.name.as_str())
        .enumerate()
        .collect();
    names("data_check", data_checks, problems);

    for (k, p) in t.probe.iter().enumerate() {
        probe(p, &at(&format!("probe[{k}]")), problems);
    }
    if !t.metric.is_empty() && !cx.prometheus_present {
        problems.push(
            at("metric[0]"),
            "metrics are queried from Prometheus, but the file has no `[prometheus]` section",
        );
    }
    for (k, m) in t.metric.iter().enumerate() {
        super::validate_metric::metric(m, &at(&format!("metric[{k}]")), problems);
    }
    for (k, d) in t.data_check.iter().enumerate() {
        let path = at(&format!("data_check[{k}]"));
        check_argv(&d.argv, &format!("{path}.argv"), cx.env, problems);
        for (a, arg) in d.argv.iter().enumerate() {
            for message in template::check(arg, DATA_CHECK_VARIABLES) {
                problems.push(format!("{path}.argv[{a}]"), message.to_string());
            }
        }
        positive(d.timeout, &format!("{path}.timeout"), problems);
    }
    validate_step::steps(i, t, cx.env, problems);
}

/// `[target.release]`: the keys its kind needs, and no others.
fn release(r: &ReleaseConfig, at: &str, problems: &mut Problems) {
    let (kind, required, optional): (&str, &[&str], &[&str]) = match r.kind {
        ReleaseKind::VersionUrl => ("version_url", &["url"], &["json_pointer", "poll_interval"]),
        ReleaseKind::Symlink => ("symlink", &["path"], &["poll_interval"]),
        ReleaseKind::Kubernetes => (
            "kubernetes",
            &["namespace", "deployment"],
            &["container", "version_label", "version_annotation"],
        ),
        ReleaseKind::Swarm => ("swarm", &["service"], &[]),
        ReleaseKind::Announce => ("announce", &[], &[]),
    };
    let present = [
        ("url", r.url.is_some()),
        ("json_pointer", r.json_pointer.is_some()),
        ("path", r.path.is_some()),
        ("namespace", r.namespace.is_some()),
        ("deployment", r.deployment.is_some()),
        ("container", r.container.is_some()),
        ("version_label", r.version_label.is_some()),
        ("version_annotation", r.version_annotation.is_some()),
        ("service", r.service.is_some()),
        ("poll_interval", r.poll_interval.is_some()),
    ];
    for (key, set) in present {
        if set && !required.contains(&key) && !optional.contains(&key) {
            problems.push(
                format!("{at}.{key}"),
                format!("`{key}` is not used by release kind `{kind}`"),
            );
        }
        if !set && required.contains(&key) {
            problems.push(
                format!("{at}.kind"),
                format!("release kind `{kind}` needs `{key}`"),
            );
        }
    }
    if let Some(url) = &r.url {
        check_url(url, &format!("{at}.url"), problems);
    }
    if let Some(pointer) = &r.json_pointer {
        check_pointer(pointer, &format!("{at}.json_pointer"), problems);
    }
    if let Some(poll) = r.poll_interval {
        positive(poll, &format!("{at}.poll_interval"), problems);
    }
    // kubernetes: where the version comes from (rollguard-k2).
    if r.version_label.is_some() && r.version_annotation.is_some() {
        problems.push(
            format!("{at}.version_annotation"),
            "set `version_label` or `version_annotation`, not both",
        );
    }
    for (key, value) in [
        ("version_label", &r.version_label),
        ("version_annotation", &r.version_annotation),
        ("namespace", &r.namespace),
        ("deployment", &r.deployment),
        ("container", &r.container),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            problems.push(format!("{at}.{key}"), "must not be empty");
        }
    }
}

/// `[[target.probe]]`.
fn probe(p: &ProbeConfig, at: &str, problems: &mut Problems) {
    check_url(&p.url, &format!("{at}.url"), problems);
    check_method(&p.method, &format!("{at}.method"), problems);
    check_statuses(&p.expect_status, &format!("{at}.expect_status"), problems);
    positive(p.timeout, &format!("{at}.timeout"), problems);
    if p.failures < 1 {
        problems.push(format!("{at}.failures"), "must be at least 1");
    }
    if let Some(pointer) = &p.json_pointer {
        check_pointer(pointer, &format!("{at}.json_pointer"), problems);
    }
    if p.expect_value.is_some() && p.json_pointer.is_none() {
        problems.push(format!("{at}.expect_value"), "needs `json_pointer`");
    }
    if let Some(max) = p.max_latency {
        positive(max, &format!("{at}.max_latency"), problems);
        if max >= p.timeout {
            problems.push(
                format!("{at}.max_latency"),
                "must be under `timeout`: a probe that slow has timed out already",
            );
        }
    }
}

/// A JSON pointer is empty or starts with `/`.
fn check_pointer(pointer: &str, path: &str, problems: &mut Problems) {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        problems.push(path, "a JSON pointer starts with `/`, such as `/version`");
    }
}

/// An HTTP method is an upper-case token such as `GET` or `POST`.
pub(crate) fn check_method(method: &str, path: &str, problems: &mut Problems) {
    if method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()) {
        problems.push(
            path,
            "must be an upper-case HTTP method such as `GET` or `POST`",
        );
    }
}
