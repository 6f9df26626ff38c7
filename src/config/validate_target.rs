//! Rules for one `[[target]]`: timing, references to notifiers, probes,
//! metrics and data checks. The release source is in
//! `validate_release.rs`, steps in `validate_step.rs`.

use super::bounds::{self, check as bounded};
use super::env::Environment;
use super::problems::Problems;
use super::validate::{check_argv, check_statuses, check_url, unique_names};
use super::validate_release;
use super::{DataCheckConfig, DataCheckKind, ProbeConfig, ReleaseKind, TargetConfig};
use crate::template::{self, DATA_CHECK_VARIABLES};
use std::path::{Component, Path};

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
    bounded(t.interval, bounds::INTERVAL, &at("interval"), problems);
    bounded(
        t.bake_window,
        bounds::BAKE_WINDOW,
        &at("bake_window"),
        problems,
    );
    bounded(t.cooldown, bounds::COOLDOWN, &at("cooldown"), problems);
    if let Some(timeout) = t.verify_timeout {
        bounded(
            timeout,
            bounds::VERIFY_TIMEOUT,
            &at("verify_timeout"),
            problems,
        );
    }
    if let crate::model::TimeToFix::Known(time_to_fix) = t.time_to_fix {
        bounded(
            time_to_fix,
            bounds::TIME_TO_FIX,
            &at("time_to_fix"),
            problems,
        );
    }
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
    if t.status_channel
        .as_ref()
        .is_some_and(|c| c.trim().is_empty())
    {
        problems.push(
            at("status_channel"),
            "must not be empty: name a channel or a URL, or remove the key",
        );
    }
    if let Some(message) = &t.status_message {
        if message.trim().is_empty() {
            problems.push(
                at("status_message"),
                "must not be empty: write a message, or remove the key for the default one",
            );
        }
        for error in template::check(message, template::STATUS_VARIABLES) {
            problems.push(at("status_message"), error.to_string());
        }
    }
    for (k, name) in t.notify.iter().enumerate() {
        if !cx.notifier_names.contains(name) {
            problems.push(
                format!("target[{i}].notify[{k}]"),
                format!("unknown notifier `{name}`: no `[[notifier]]` has this name"),
            );
        }
    }
    validate_release::release(&t.release, &at("release"), cx.env, problems);

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
        data_check(d, &path, t.release.kind(), cx.env, problems);
    }
}

/// `[[target.data_check]]` at `path`: the keys of its kind and only those.
fn data_check(
    d: &DataCheckConfig,
    path: &str,
    release: ReleaseKind,
    env: &dyn Environment,
    problems: &mut Problems,
) {
    let key = |k: &str| format!("{path}.{k}");
    let argv_at = |argv: &[String], name: &str, problems: &mut Problems| {
        check_argv(argv, &key(name), env, problems);
        for (a, arg) in argv.iter().enumerate() {
            for message in template::check(arg, DATA_CHECK_VARIABLES) {
                problems.push(key(&format!("{name}[{a}]")), message.to_string());
            }
        }
    };
    let not_used = |name: &str, kind: &str, problems: &mut Problems| {
        problems.push(
            key(name),
            format!("`{name}` is not used by data check kind `{kind}`"),
        );
    };
    match d.kind {
        DataCheckKind::Command => {
            argv_at(&d.argv, "argv", problems);
            if d.migrations_dir.is_some() {
                not_used("migrations_dir", "command", problems);
            }
            if d.list_argv.is_some() {
                not_used("list_argv", "command", problems);
            }
        }
        DataCheckKind::Migrations => {
            if !d.argv.is_empty() {
                not_used("argv", "migrations", problems);
            }
            match (&d.migrations_dir, &d.list_argv) {
                (None, None) => problems.push(
                    key("kind"),
                    "data check kind `migrations` needs `migrations_dir` or `list_argv`",
                ),
                (Some(_), Some(_)) => problems.push(
                    key("list_argv"),
                    "give either `migrations_dir` or `list_argv`, not both",
                ),
                (Some(dir), None) => migrations_dir(dir, &key("migrations_dir"), release, problems),
                (None, Some(list)) => argv_at(list, "list_argv", problems),
            }
        }
    }
    bounded(
        d.timeout,
        bounds::DATA_CHECK_TIMEOUT,
        &key("timeout"),
        problems,
    );
}

/// A `migrations_dir` names a directory inside each release directory of a
/// symlink source: relative, and never out of the release.
fn migrations_dir(dir: &Path, path: &str, release: ReleaseKind, problems: &mut Problems) {
    if release != ReleaseKind::Symlink {
        problems.push(
            path,
            "`migrations_dir` is read inside each release directory, which only a `symlink` release source has; use `list_argv` with this release kind",
        );
    }
    let inside = dir
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if dir.as_os_str().is_empty() || !inside {
        problems.push(
            path,
            "must be a relative path inside the release directory, such as `db/migrations` (no `/` at the start, no `..`)",
        );
    }
}

/// `[[target.probe]]`.
pub(crate) fn probe(p: &ProbeConfig, at: &str, problems: &mut Problems) {
    check_url(&p.url, &format!("{at}.url"), problems);
    check_method(&p.method, &format!("{at}.method"), problems);
    check_statuses(&p.expect_status, &format!("{at}.expect_status"), problems);
    bounded(
        p.timeout,
        bounds::REQUEST_TIMEOUT,
        &format!("{at}.timeout"),
        problems,
    );
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
        bounded(
            max,
            bounds::REQUEST_TIMEOUT,
            &format!("{at}.max_latency"),
            problems,
        );
        if max >= p.timeout {
            problems.push(
                format!("{at}.max_latency"),
                "must be under `timeout`: a probe that slow has timed out already",
            );
        }
    }
}

/// A JSON pointer is empty or starts with `/`.
pub(crate) fn check_pointer(pointer: &str, path: &str, problems: &mut Problems) {
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
