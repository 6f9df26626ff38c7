//! Rules for one `[[target.metric]]`: its queries, baseline, thresholds and,
//! for sequential tests, their tolerances.

use super::bounds::{self, check as bounded};
use super::problems::Problems;
use super::{BaselineKind, Direction, MetricConfig, MetricTest, OnNoData};
use crate::template::{self, QUERY_VARIABLES};

/// Every rule for one metric at `at` (`target[i].metric[k]`).
pub(crate) fn metric(m: &MetricConfig, at: &str, problems: &mut Problems) {
    let key = |k: &str| format!("{at}.{k}");
    queries(m, at, problems);
    stable(m, at, problems);
    sequential(m, at, problems);
    budget(m, at, problems);
    let levels = m.thresholds.levels();
    // A count metric without thresholds gets levels relative to its
    // baseline (docs/judge.md); any other metric needs something to breach.
    if levels.is_empty() && m.min_ratio.is_none() && !m.is_count() {
        problems.push(
            at,
            "a metric needs `thresholds` or `min_ratio`: otherwise nothing can breach",
        );
    }
    if levels.iter().any(|(_, v)| !v.is_finite()) {
        problems.push(key("thresholds"), "thresholds must be finite numbers");
    }
    for pair in levels.windows(2) {
        let ((worse, w), (milder, v)) = (pair[0], pair[1]);
        let (ordered, relation) = match m.direction {
            Direction::Increase => (w > v, "above"),
            Direction::Decrease => (w < v, "below"),
        };
        if !ordered {
            problems.push(
                key("thresholds"),
                format!(
                    "not ordered by severity: with direction `{}`, `{worse}` ({w}) must be strictly {relation} `{milder}` ({v})",
                    match m.direction {
                        Direction::Increase => "increase",
                        Direction::Decrease => "decrease",
                    }
                ),
            );
        }
    }
    if let Some(ratio) = m.min_ratio {
        if !ratio.is_finite() || ratio < 1.0 {
            problems.push(key("min_ratio"), "must be a number of at least 1");
        }
        if m.baseline == BaselineKind::None {
            problems.push(
                key("min_ratio"),
                "compares with a baseline, but `baseline` is `none`",
            );
        }
    }
    if m.confirm < 1 {
        problems.push(key("confirm"), "must be at least 1");
    }
    let window = m.baseline_window;
    bounded(
        window,
        bounds::BASELINE_WINDOW,
        &key("baseline_window"),
        problems,
    );
    if let Some(timeout) = m.timeout {
        bounded(timeout, bounds::REQUEST_TIMEOUT, &key("timeout"), problems);
    }
}

/// `query`, or `errors_query` with `total_query`: exactly one of the two
/// ways, every template well-formed.
fn queries(m: &MetricConfig, at: &str, problems: &mut Problems) {
    let key = |k: &str| format!("{at}.{k}");
    let templates = [
        ("query", Some(&m.query).filter(|q| !q.is_empty())),
        ("errors_query", m.errors_query.as_ref()),
        ("total_query", m.total_query.as_ref()),
    ];
    for (name, text) in templates {
        for message in text
            .map(|t| template::check(t, QUERY_VARIABLES))
            .unwrap_or_default()
        {
            problems.push(key(name), message.to_string());
        }
    }
    match (&m.errors_query, &m.total_query) {
        (Some(_), None) => problems.push(
            key("errors_query"),
            "a count metric needs `total_query` too (errors are judged as a share of it)",
        ),
        (None, Some(_)) => problems.push(
            key("total_query"),
            "a count metric needs `errors_query` too (errors are judged as a share of it)",
        ),
        (Some(_), Some(_)) if !m.query.is_empty() => problems.push(
            key("query"),
            "a count metric's value is errors_query / total_query: remove `query`, or the two count queries",
        ),
        (None, None) if m.query.is_empty() => problems.push(
            at,
            "a metric needs `query`, or `errors_query` and `total_query`",
        ),
        _ => {}
    }
}

/// The stable version's queries of `baseline = "canary"`: `stable_query`
/// for a value metric, `stable_errors_query` and `stable_total_query` for a
/// count metric; none of them with another baseline.
fn stable(m: &MetricConfig, at: &str, problems: &mut Problems) {
    let key = |k: &str| format!("{at}.{k}");
    let stable = [
        ("stable_query", m.stable_query.as_ref()),
        ("stable_errors_query", m.stable_errors_query.as_ref()),
        ("stable_total_query", m.stable_total_query.as_ref()),
    ];
    for (name, text) in stable {
        for message in text
            .map(|t| template::check(t, QUERY_VARIABLES))
            .unwrap_or_default()
        {
            problems.push(key(name), message.to_string());
        }
    }
    if m.baseline != BaselineKind::Canary {
        for (name, _) in stable.iter().filter(|(_, text)| text.is_some()) {
            problems.push(
                key(name),
                format!("`{name}` is only used with baseline `canary`"),
            );
        }
        return;
    }
    if !m.is_count() {
        if m.stable_query.is_none() {
            problems.push(key("baseline"), "baseline `canary` needs `stable_query`");
        }
        for name in ["stable_errors_query", "stable_total_query"] {
            if stable.iter().any(|(n, text)| *n == name && text.is_some()) {
                problems.push(
                    key(name),
                    format!("`{name}` is for count metrics (`errors_query` and `total_query`); a value metric's stable version is `stable_query`"),
                );
            }
        }
        return;
    }
    if m.stable_query.is_some() {
        problems.push(
            key("stable_query"),
            "a count metric's stable version is counted by `stable_errors_query` and `stable_total_query`, not `stable_query`",
        );
    }
    for (name, text) in &stable[1..] {
        if text.is_none() {
            problems.push(
                key("baseline"),
                format!("baseline `canary` of a count metric needs `{name}` (the stable version's counts, as `errors_query` and `total_query` count the canary's)"),
            );
        }
    }
}

/// `slo` and `burn_thresholds`: a count metric's error budget.
fn budget(m: &MetricConfig, at: &str, problems: &mut Problems) {
    let key = |k: &str| format!("{at}.{k}");
    let burn = m.burn_thresholds.levels();
    let Some(slo) = m.slo else {
        if !burn.is_empty() {
            problems.push(
                key("burn_thresholds"),
                "burn rates are multiples of an error budget: set `slo` too (such as 0.999)",
            );
        }
        return;
    };
    if !m.is_count() {
        problems.push(
            key("slo"),
            "an error budget is a share of bad events: `slo` needs a count metric (`errors_query` and `total_query`)",
        );
    }
    if !(slo.is_finite() && slo > 0.0 && slo < 1.0) {
        problems.push(
            key("slo"),
            "must be the share of good events the objective promises, above 0 and below 1, such as 0.999",
        );
    }
    if burn.iter().any(|&(_, v)| !(v.is_finite() && v > 0.0)) {
        problems.push(key("burn_thresholds"), "burn rates must be numbers above 0");
    }
    // The levels as the judge reads them, defaults filled in.
    for pair in m.burn_levels().windows(2) {
        let ((worse, w), (milder, v)) = (pair[0], pair[1]);
        if w.is_finite() && v.is_finite() && w <= v {
            problems.push(
                key("burn_thresholds"),
                format!(
                    "not ordered by severity: `{worse}` ({w}) must be strictly above `{milder}` ({v}) (levels left out take 14.4, 6, 3 and 1)"
                ),
            );
        }
    }
}

/// The sequential test's keys.
fn sequential(m: &MetricConfig, at: &str, problems: &mut Problems) {
    let key = |k: &str| format!("{at}.{k}");
    if m.is_count() {
        if m.test == Some(MetricTest::Threshold) {
            problems.push(
                key("test"),
                "count metrics are always judged by the sequential test; remove `test`",
            );
        }
        if m.direction == Direction::Decrease {
            problems.push(
                key("direction"),
                "a count metric counts bad events: more of them is worse (`increase`)",
            );
        }
        if m.baseline == BaselineKind::None && m.thresholds.levels().is_empty() {
            problems.push(
                key("thresholds"),
                "a count metric with baseline `none` needs thresholds: the test compares with the mildest",
            );
        }
    } else if m.test == Some(MetricTest::Sequential) && m.baseline != BaselineKind::PreRelease {
        problems.push(
            key("test"),
            "the sequential test of a value metric compares with the time before the release: it needs baseline `pre_release`",
        );
    }
    if m.empty_means_zero && !m.is_count() {
        problems.push(
            key("empty_means_zero"),
            "applies to a count metric's `errors_query`; what an empty `query` means is `on_no_data`",
        );
    }
    if m.is_sequential() && m.on_no_data == OnNoData::Fail {
        problems.push(
            key("on_no_data"),
            "a sequential test takes missing data as no evidence, never as a failure: use `hold` or `pass`",
        );
    }
    if !(m.tolerance.is_finite() && m.tolerance >= 0.0) {
        problems.push(
            key("tolerance"),
            "must be a number of at least 0, such as 0.25",
        );
    }
    if m.min_increase.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
        problems.push(key("min_increase"), "must be a number of at least 0");
    }
    if !(m.min_requests.is_finite() && m.min_requests >= 0.0) {
        problems.push(key("min_requests"), "must be a number of at least 0");
    }
}
