//! Rules for `[target.release]` beyond its kind's keys, which serde checks
//! (`tagged.rs`): URLs, pointers and names that cannot work.

use super::problems::Problems;
use super::validate::check_url;
use super::validate_target::check_pointer;
use super::{KubernetesRelease, ReleaseConfig};

/// The release source at `at` (`target[i].release`).
pub(crate) fn release(r: &ReleaseConfig, at: &str, problems: &mut Problems) {
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
