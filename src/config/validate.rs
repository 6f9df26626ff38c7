//! Cross-field rules over the typed sections: everything serde cannot see,
//! such as duplicate names, references between sections, rules that can
//! never match and keys that mean nothing for the chosen kind.
//!
//! Every check records a problem and goes on; nothing stops at the first.
//! Target-level rules are in `validate_target.rs`, release sources in
//! `validate_release.rs`, step rules in `validate_step.rs`, ranges of
//! durations in `bounds.rs` and referenced files in `files.rs`.

use super::bounds::{self, check as bounded};
use super::env::{Environment, find_program};
use super::problems::Problems;
use super::sections::Sections;
use super::{DaemonConfig, NotifierConfig, NotifierKind, PolicyRule};
use super::{files, validate_step, validate_target};
use crate::model::Severity;
use std::collections::HashMap;
use std::time::Duration;

/// Runs every cross-field rule over what could be read.
pub(crate) fn validate(sections: &Sections, env: &dyn Environment, problems: &mut Problems) {
    daemon(&sections.daemon, problems);
    if let Some(prometheus) = &sections.prometheus {
        check_url(&prometheus.url, "prometheus.url", problems);
        let timeout = prometheus.timeout;
        bounded(
            timeout,
            bounds::REQUEST_TIMEOUT,
            "prometheus.timeout",
            problems,
        );
        let window = prometheus.min_window;
        bounded(
            window,
            bounds::MIN_WINDOW,
            "prometheus.min_window",
            problems,
        );
        bounds::check_count(
            prometheus.max_concurrent_queries,
            bounds::MAX_CONCURRENT_QUERIES,
            "prometheus.max_concurrent_queries",
            problems,
        );
        bounds::check_size(
            prometheus.max_response_bytes,
            bounds::MAX_RESPONSE_BYTES,
            "prometheus.max_response_bytes",
            problems,
        );
        bounds::check_count(
            prometheus.max_series,
            bounds::MAX_SERIES,
            "prometheus.max_series",
            problems,
        );
    }
    files::check(sections, env, problems);
    unique_names(
        sections
            .notifiers
            .iter()
            .map(|(i, n)| (*i, n.name.as_str())),
        "notifier",
        problems,
    );
    for (i, notifier) in &sections.notifiers {
        self::notifier(*i, notifier, env, problems);
    }
    policy_rules(&sections.rules, problems);
    unique_names(
        sections
            .targets
            .iter()
            .map(|(i, t)| (*i, t.config.name.as_str())),
        "target",
        problems,
    );
    let context = validate_target::Context {
        notifier_names: &sections.notifier_names,
        prometheus_present: sections.prometheus_present,
        env,
    };
    for (i, target) in &sections.targets {
        validate_target::target(*i, &target.config, &context, problems);
        validate_step::steps(*i, target, env, problems);
    }
    if !sections.targets_present && !sections.daemon.allow_no_targets {
        problems.push_at_end(
            "target",
            "the file has no `[[target]]`: the daemon would watch nothing; add one, \
             or set `daemon.allow_no_targets = true` to start empty on purpose",
        );
    }
}

/// `[daemon]`.
fn daemon(daemon: &DaemonConfig, problems: &mut Problems) {
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&daemon.log_level) {
        problems.push(
            "daemon.log_level",
            format!("is not a valid log filter (tracing EnvFilter syntax): {e}"),
        );
    }
    if daemon.state_dir.as_os_str().is_empty() {
        problems.push("daemon.state_dir", "must not be empty");
    }
    let grace = daemon.shutdown_grace;
    bounded(
        grace,
        bounds::SHUTDOWN_GRACE,
        "daemon.shutdown_grace",
        problems,
    );
    bounded(
        daemon.monitoring_notice_after,
        bounds::MONITORING_NOTICE_AFTER,
        "daemon.monitoring_notice_after",
        problems,
    );
    bounds::check_count(
        daemon.max_concurrent_probes,
        bounds::MAX_CONCURRENT_PROBES,
        "daemon.max_concurrent_probes",
        problems,
    );
    bounded(
        daemon.journal_retention,
        bounds::JOURNAL_RETENTION,
        "daemon.journal_retention",
        problems,
    );
    if let Some(election) = &daemon.leader_election {
        if election.lease.trim().is_empty() {
            problems.push("daemon.leader_election.lease", "must not be empty");
        }
        if election
            .namespace
            .as_deref()
            .is_some_and(|n| n.trim().is_empty())
        {
            problems.push("daemon.leader_election.namespace", "must not be empty");
        }
        let duration = election.duration;
        let at = "daemon.leader_election.duration";
        if duration < Duration::from_secs(1) || duration.subsec_nanos() != 0 {
            problems.push(
                at,
                "must be whole seconds, at least 1s (a Lease stores seconds)",
            );
        } else {
            bounded(duration, bounds::LEASE_DURATION, at, problems);
        }
    }
}

/// One `[[notifier]]`. Never echoes `url` or header values: they may be secrets.
fn notifier(i: usize, n: &NotifierConfig, env: &dyn Environment, problems: &mut Problems) {
    let at = |key: &str| format!("notifier[{i}].{key}");
    if n.name.trim().is_empty() {
        problems.push(at("name"), "must not be empty");
    }
    bounded(n.timeout, bounds::REQUEST_TIMEOUT, &at("timeout"), problems);
    bounds::check_retries(n.retries, &at("retries"), problems);
    if n.events.as_ref().is_some_and(Vec::is_empty) {
        problems.push(
            at("events"),
            "an empty list sends this notifier nothing: list events, or remove `events` for its kind's default",
        );
    }
    let sources = [
        ("url", n.url.is_some()),
        ("url_env", n.url_env.is_some()),
        ("url_file", n.url_file.is_some()),
    ];
    let set: Vec<&str> = sources
        .iter()
        .filter(|(_, s)| *s)
        .map(|(k, _)| *k)
        .collect();
    match n.kind {
        NotifierKind::Webhook | NotifierKind::Slack => {
            let kind = if n.kind == NotifierKind::Webhook {
                "webhook"
            } else {
                "slack"
            };
            if n.kind == NotifierKind::Slack && n.url.is_some() {
                problems.push(
                    at("url"),
                    "a Slack webhook URL is a secret: give it by reference with `url_env` or `url_file`",
                );
            }
            let allowed = if n.kind == NotifierKind::Slack {
                "`url_env` or `url_file`"
            } else {
                "`url`, `url_env` or `url_file`"
            };
            if set.is_empty() {
                problems.push(
                    format!("notifier[{i}]"),
                    format!("a {kind} notifier needs exactly one of {allowed}"),
                );
            } else if set.len() > 1 {
                problems.push(
                    at(set[1]),
                    format!(
                        "a {kind} notifier needs exactly one of {allowed}; `{}` is set too",
                        set[0]
                    ),
                );
            }
            if let (NotifierKind::Webhook, Some(url)) = (n.kind, &n.url) {
                check_url(url, &at("url"), problems);
            }
            if n.argv.is_some() {
                problems.push(
                    at("argv"),
                    format!("`argv` is not used by notifier kind `{kind}`"),
                );
            }
        }
        NotifierKind::Command => {
            for key in set {
                problems.push(
                    at(key),
                    format!("`{key}` is not used by notifier kind `command`"),
                );
            }
            if !n.headers_env.is_empty() {
                problems.push(
                    at("headers_env"),
                    "`headers_env` is not used by notifier kind `command`",
                );
            }
            match &n.argv {
                None => problems.push(format!("notifier[{i}]"), "a command notifier needs `argv`"),
                Some(argv) => {
                    check_argv(argv, &at("argv"), env, problems);
                    for (a, arg) in argv.iter().enumerate() {
                        for error in crate::template::check(arg, crate::template::STEP_VARIABLES) {
                            problems.push(format!("notifier[{i}].argv[{a}]"), error.to_string());
                        }
                    }
                }
            }
        }
    }
    if let Some(var) = &n.url_env {
        check_env_name(var, &at("url_env"), problems);
    }
    for (header, var) in &n.headers_env {
        check_env_name(var, &at(&format!("headers_env.{header}")), problems);
    }
}

/// `[[policy.rule]]`: rules that can never match.
fn policy_rules(rules: &[(usize, PolicyRule)], problems: &mut Problems) {
    for (k, (i, rule)) in rules.iter().enumerate() {
        let at = format!("policy.rule[{i}]");
        if let Some(over) = rule.time_to_fix_over {
            let key = format!("{at}.time_to_fix_over");
            bounded(over, bounds::TIME_TO_FIX, &key, problems);
        }
        if rule.severity == Severity::None {
            problems.push(
                format!("{at}.severity"),
                "a rule with severity `none` never matches: severity none is always `healthy`",
            );
            continue;
        }
        let shadow = rules[..k]
            .iter()
            .find(|(_, earlier)| earlier.severity != Severity::None && covers(earlier, rule));
        if let Some((j, _)) = shadow {
            problems.push(
                at,
                format!(
                    "this rule never matches: the earlier rule `policy.rule[{j}]` matches everything it matches"
                ),
            );
        }
    }
}

/// Whether `earlier` matches every assessment that `later` matches.
fn covers(earlier: &PolicyRule, later: &PolicyRule) -> bool {
    let time_covers = match (earlier.time_to_fix_over, later.time_to_fix_over) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(e), Some(l)) => e <= l,
    };
    let severity_covers = Severity::ALL[1..].iter().all(|&s| {
        !later.severity_match.matches(later.severity, s)
            || earlier.severity_match.matches(earlier.severity, s)
    });
    severity_covers && earlier.data_impact >= later.data_impact && time_covers
}

/// Names within one array must be unique; the second one is the error.
pub(crate) fn unique_names<'a>(
    names: impl Iterator<Item = (usize, &'a str)>,
    prefix: &str,
    problems: &mut Problems,
) {
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, name) in names {
        if let Some(j) = first.get(name) {
            problems.push(
                format!("{prefix}[{i}].name"),
                format!("duplicate name `{name}`: `{prefix}[{j}]` has it already"),
            );
        } else {
            first.insert(name, i);
        }
    }
}

/// An argv: not empty, and its program exists.
pub(crate) fn check_argv(
    argv: &[String],
    path: &str,
    env: &dyn Environment,
    problems: &mut Problems,
) {
    match argv.first() {
        None => problems.push(path, "must not be empty: it needs at least the program"),
        Some(program) => {
            if let Err(message) = find_program(env, program) {
                problems.push(format!("{path}[0]"), message);
            }
        }
    }
}

/// A URL the daemon will request: it parses (with the same parser as the
/// HTTP client), is `http://` or `https://` and has a host. The URL itself
/// is never repeated in the message: it may hold a secret.
pub(crate) fn check_url(url: &str, path: &str, problems: &mut Problems) {
    if let Err(why) = url_problem(url) {
        problems.push(path, why);
    }
}

/// A URL with `{{variable}}` placeholders, checked as it will be sent: each
/// placeholder stands for a one-character value (`0`, valid in a host, a
/// port, a path and a query). A template that cannot be read is reported
/// by the template check, not here.
pub(crate) fn check_url_template(url: &str, path: &str, problems: &mut Problems) {
    let Ok(names) = crate::template::variables(url) else {
        return;
    };
    let vars = names
        .into_iter()
        .map(|name| (name, "0".to_owned()))
        .collect();
    let Ok(rendered) = crate::template::render_url(url, &vars) else {
        return;
    };
    if let Err(why) = url_problem(&rendered) {
        problems.push(path, format!("{why} (once its placeholders are filled in)"));
    }
}

/// Why `url` cannot be requested, if it cannot.
pub(crate) fn url_problem(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| format!("is not a valid URL ({e}): it must be an http:// or https:// URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".to_owned());
    }
    // The parser reads `http:///health` as the host `health`: an empty
    // authority in the text is a forgotten host, not a path.
    let authority = url
        .trim_start()
        .split_once("//")
        .map_or("", |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("");
    let host_in_text = authority.rsplit('@').next().unwrap_or("");
    if parsed.host_str().is_none_or(str::is_empty) || host_in_text.is_empty() {
        return Err("is a URL without a host".to_owned());
    }
    Ok(())
}

/// An environment variable name: letters, digits and `_`, not starting with a digit.
pub(crate) fn check_env_name(name: &str, path: &str, problems: &mut Problems) {
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        problems.push(path, "is not a valid environment variable name");
    }
}

/// HTTP statuses must be within 100..=599.
pub(crate) fn check_statuses(statuses: &[u16], path: &str, problems: &mut Problems) {
    if statuses.is_empty() {
        problems.push(path, "must list at least one status");
    }
    for (k, status) in statuses.iter().enumerate() {
        if !(100..=599).contains(status) {
            problems.push(
                format!("{path}[{k}]"),
                format!("{status} is not an HTTP status (100 to 599)"),
            );
        }
    }
}
