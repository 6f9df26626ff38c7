//! Rules for `[target.release]` beyond its kind's keys, which serde checks
//! (`tagged.rs`): URLs, pointers and names that cannot work.

use super::env::Environment;
use super::problems::Problems;
use super::validate::check_url;
use super::validate_target::check_pointer;
use super::{KubernetesRelease, ReleaseConfig, SwarmRelease};

/// The release source at `at` (`target[i].release`).
pub(crate) fn release(r: &ReleaseConfig, at: &str, env: &dyn Environment, problems: &mut Problems) {
    let key = |k: &str| format!("{at}.{k}");
    let poll = match r {
        ReleaseConfig::VersionUrl(v) => {
            check_url(&v.url, &key("url"), problems);
            if let Some(pointer) = &v.json_pointer {
                check_pointer(pointer, &key("json_pointer"), problems);
            }
            v.poll_interval
        }
        ReleaseConfig::Symlink(s) => s.poll_interval,
        ReleaseConfig::Kubernetes(k) => {
            kubernetes(k, at, problems);
            None
        }
        ReleaseConfig::Announce(_) => None,
        ReleaseConfig::Swarm(s) => {
            swarm(s, at, env, problems);
            s.poll_interval
        }
    };
    if let Some(poll) = poll {
        super::bounds::check(
            poll,
            super::bounds::INTERVAL,
            &key("poll_interval"),
            problems,
        );
    }
}

/// kubernetes: where the version comes from, and no empty
/// names.
fn kubernetes(k: &KubernetesRelease, at: &str, problems: &mut Problems) {
    if k.version_label.is_some() && k.version_annotation.is_some() {
        problems.push(
            format!("{at}.version_annotation"),
            "set `version_label` or `version_annotation`, not both",
        );
    }
    for (key, value) in [
        ("version_label", k.version_label.as_deref()),
        ("version_annotation", k.version_annotation.as_deref()),
        ("namespace", Some(k.namespace.as_str())),
        ("deployment", Some(k.deployment.as_str())),
        ("container", k.container.as_deref()),
    ] {
        if value.is_some_and(|v| v.trim().is_empty()) {
            problems.push(format!("{at}.{key}"), "must not be empty");
        }
    }
}

/// swarm: a service named, a label that is not empty, and a `docker` that
/// exists.
fn swarm(s: &SwarmRelease, at: &str, env: &dyn Environment, problems: &mut Problems) {
    check_service(&s.service, &format!("{at}.service"), problems);
    if s.version_label
        .as_deref()
        .is_some_and(|v| v.trim().is_empty())
    {
        problems.push(format!("{at}.version_label"), "must not be empty");
    }
    check_docker(s.docker(), &format!("{at}.docker"), env, problems);
}

/// A Swarm service name: not empty, and not an option to `docker` (it is
/// one argument of its command lines).
pub(crate) fn check_service(service: &str, path: &str, problems: &mut Problems) {
    if service.trim().is_empty() {
        problems.push(path, "must not be empty");
    } else if service.starts_with('-') {
        problems.push(
            path,
            "must not start with `-`: docker would read it as an option",
        );
    }
}

/// The `docker` program of a Swarm kind exists (on `PATH` when bare).
pub(crate) fn check_docker(
    docker: &str,
    path: &str,
    env: &dyn Environment,
    problems: &mut Problems,
) {
    if let Err(message) = super::env::find_program(env, docker) {
        problems.push(path, message);
    }
}
