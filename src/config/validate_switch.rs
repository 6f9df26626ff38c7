//! Rules of the `bluegreen_switch` and `config_restore` steps beyond what
//! serde checks: two colours that each have probes, one way to tell the
//! live colour and one way to flip, and a configuration source with what it
//! needs.

use super::env::Environment;
use super::problems::Problems;
use super::validate::{check_argv, check_url_template};
use super::validate_step::http_step;
use super::validate_target::{check_pointer, probe};
use super::{BlueGreenSwitchStep, ConfigRestoreStep, ConfigSource, FLIP_VARIABLES};
use crate::template::{self, STEP_VARIABLES};
use std::path::{Component, Path};

/// Most rounds of probes `healthy_probes` may ask for.
const MOST_ROUNDS: u32 = 100;

/// A `bluegreen_switch` step at `at`.
pub(crate) fn bluegreen(
    s: &BlueGreenSwitchStep,
    at: &str,
    env: &dyn Environment,
    problems: &mut Problems,
) {
    let key = |k: &str| format!("{at}.{k}");
    let flip_known: Vec<&str> = STEP_VARIABLES
        .iter()
        .chain(FLIP_VARIABLES)
        .copied()
        .collect();
    let templated = |field: &str, text: &str, known: &[&str], problems: &mut Problems| {
        for message in template::check(text, known) {
            problems.push(key(field), message.to_string());
        }
    };
    if s.colors.len() != 2 {
        problems.push(
            key("colors"),
            format!(
                "needs exactly two colours, such as `blue` and `green`; found {}",
                s.colors.len()
            ),
        );
    }
    for (name, color) in &s.colors {
        let at_color = key(&format!("colors.{name}"));
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !plain {
            problems.push(
                &at_color,
                "a colour's name is letters, digits, `-` and `_`, such as `blue`",
            );
        }
        if color.probe.is_empty() {
            problems.push(
                format!("{at_color}.probe"),
                "needs at least one probe: a colour is flipped to only once it answers them",
            );
        }
        for (p, config) in color.probe.iter().enumerate() {
            probe(config, &format!("{at_color}.probe[{p}]"), problems);
        }
        match (&s.link, &color.path) {
            (Some(_), None) => problems.push(
                format!("{at_color}.path"),
                "with `link`, each colour needs `path`: the directory the link points to when it is live",
            ),
            (None, Some(_)) => problems.push(
                format!("{at_color}.path"),
                "`path` is only for a switch by `link`",
            ),
            _ => {}
        }
    }
    let live_sources = [
        s.link.is_some(),
        s.live_url.is_some(),
        s.live_argv.is_some(),
    ];
    if live_sources.iter().filter(|given| **given).count() != 1 {
        problems.push(
            key("kind"),
            "step kind `bluegreen_switch` needs exactly one of `link`, `live_url` and `live_argv`: how to tell the live colour",
        );
    }
    if let Some(url) = &s.live_url {
        templated("live_url", url, STEP_VARIABLES, problems);
        check_url_template(url, &key("live_url"), problems);
    }
    match (&s.live_pointer, &s.live_url) {
        (Some(pointer), Some(_)) => check_pointer(pointer, &key("live_pointer"), problems),
        (Some(_), None) => problems.push(key("live_pointer"), "needs `live_url`"),
        _ => {}
    }
    if let Some(argv) = &s.live_argv {
        check_argv(argv, &key("live_argv"), env, problems);
        for (a, arg) in argv.iter().enumerate() {
            templated(&format!("live_argv[{a}]"), arg, STEP_VARIABLES, problems);
        }
    }
    let flips = [s.flip_http.is_some(), s.flip_argv.is_some()];
    let flip_count = flips.iter().filter(|given| **given).count();
    if s.link.is_some() && flip_count > 0 {
        let which = if s.flip_http.is_some() {
            "flip_http"
        } else {
            "flip_argv"
        };
        problems.push(
            key(which),
            "`link` flips by repointing the link; give no other flip",
        );
    } else if s.link.is_none() && flip_count != 1 {
        problems.push(
            key("kind"),
            "step kind `bluegreen_switch` without `link` needs exactly one of `flip_http` and `flip_argv`: how to flip",
        );
    }
    if let Some(http) = &s.flip_http {
        http_step(http, &key("flip_http"), &flip_known, env, problems);
    }
    if let Some(argv) = &s.flip_argv {
        check_argv(argv, &key("flip_argv"), env, problems);
        for (a, arg) in argv.iter().enumerate() {
            templated(&format!("flip_argv[{a}]"), arg, &flip_known, problems);
        }
    }
    if !(1..=MOST_ROUNDS).contains(&s.healthy_probes) {
        problems.push(
            key("healthy_probes"),
            format!("must be between 1 and {MOST_ROUNDS}"),
        );
    }
    super::bounds::check(
        s.probe_interval,
        super::bounds::SWITCH_PROBE_INTERVAL,
        &key("probe_interval"),
        problems,
    );
}

/// A `config_restore` step at `at`.
pub(crate) fn config_restore(s: &ConfigRestoreStep, at: &str, problems: &mut Problems) {
    let key = |k: &str| format!("{at}.{k}");
    for message in template::check(s.tag_template(), STEP_VARIABLES) {
        problems.push(key("tag"), message.to_string());
    }
    if s.tag_template().starts_with('-') {
        problems.push(key("tag"), "must not start with `-`");
    }
    if !inside(&s.path) {
        problems.push(
            key("path"),
            "must be a relative path inside the repository or release directory, such as `config` (no `/` at the start, no `..`)",
        );
    }
    let wanted = |k: &str, given: bool, owner: ConfigSource, problems: &mut Problems| match (
        given,
        s.from == owner,
    ) {
        (false, true) => problems.push(
            key("from"),
            format!("`from = \"{}\"` needs `{k}`", owner.as_str()),
        ),
        (true, false) => problems.push(
            key(k),
            format!("`{k}` is only for `from = \"{}\"`", owner.as_str()),
        ),
        _ => {}
    };
    wanted("repo", s.repo.is_some(), ConfigSource::GitTag, problems);
    wanted(
        "releases_dir",
        s.releases_dir.is_some(),
        ConfigSource::ReleaseDir,
        problems,
    );
    wanted("dir", s.dir.is_some(), ConfigSource::ReleaseDir, problems);
}

/// Whether `path` is a non-empty relative path that stays inside its base.
fn inside(path: &Path) -> bool {
    !path.as_os_str().is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}
