//! The `[[target]]` part of the configuration's shape: timing, probes,
//! metrics and data checks, as inert serde structs. The release source is
//! in `schema_release.rs`, rollback steps in `schema_step.rs`.

use super::defaults;
use super::{ReleaseConfig, StepConfig};
use crate::model::{Mode, Severity, TimeToFix};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[[target]]`: one watched service.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Unique name; `{{target}}` in templates.
    pub name: String,
    /// Overrides `daemon.mode` for this target.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// One tick: probes, queries and a judgement.
    #[serde(default = "defaults::interval", with = "humantime_serde")]
    pub interval: Duration,
    /// How long after a release it is watched closely.
    #[serde(default = "defaults::bake_window", with = "humantime_serde")]
    pub bake_window: Duration,
    /// Default estimate of a forward fix (`"unknown"` or a duration);
    /// overridable at run time with `rollguard eta`.
    #[serde(default = "defaults::time_to_fix")]
    pub time_to_fix: TimeToFix,
    /// At most one automatic rollback per target in this time.
    #[serde(default = "defaults::cooldown", with = "humantime_serde")]
    pub cooldown: Duration,
    /// How long rollguard's own verification of a rollback (the pipeline
    /// has no `verify` step) waits for the target to be back to its
    /// baseline; absent: ten ticks, between 30 s and 5 min.
    #[serde(default, with = "humantime_serde")]
    pub verify_timeout: Option<Duration>,
    /// False-alarm budget of one release's sequential tests, split evenly
    /// across them: the chance that a release no worse than its baseline is
    /// ever found worse, however long it is watched.
    #[serde(default = "defaults::alpha")]
    pub alpha: f64,
    /// Notifiers (by name) that hear about this target.
    #[serde(default)]
    pub notify: Vec<String>,
    /// Where people follow this target's incidents (`"#status-shop"`, a
    /// status page URL): said in every notification ("Status: ...") and in
    /// the webhook JSON. Absent: not mentioned.
    #[serde(default)]
    pub status_channel: Option<String>,
    /// The short plain-text message for a status page about an incident
    /// of this target, in the incident report and in the webhook JSON of
    /// `rollback_completed`, `rollback_failed` and `rollback_interrupted`
    /// (`status_message`). A template over
    /// [`STATUS_VARIABLES`](crate::template::STATUS_VARIABLES); absent: a
    /// built-in message for each outcome.
    #[serde(default)]
    pub status_message: Option<String>,
    /// How a new release is seen.
    pub release: ReleaseConfig,
    /// HTTP health probes.
    #[serde(default)]
    pub probe: Vec<ProbeConfig>,
    /// Prometheus checks.
    #[serde(default)]
    pub metric: Vec<MetricConfig>,
    /// Checks that report the data impact of rolling back: programs, or
    /// the schema migrations between the releases.
    #[serde(default)]
    pub data_check: Vec<DataCheckConfig>,
    /// The rollback pipeline, run in phase order.
    #[serde(default)]
    pub step: Vec<StepConfig>,
}

/// `[[target.probe]]`: one HTTP health check.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Name in evidence and notifications.
    pub name: String,
    /// URL to request.
    pub url: String,
    /// HTTP method.
    #[serde(default = "defaults::method")]
    pub method: String,
    /// Statuses that count as healthy.
    #[serde(default = "defaults::expect_status")]
    pub expect_status: Vec<u16>,
    /// JSON pointer into the body whose value is checked.
    #[serde(default)]
    pub json_pointer: Option<String>,
    /// Expected value at `json_pointer`.
    #[serde(default)]
    pub expect_value: Option<toml::Value>,
    /// Time limit of one probe.
    #[serde(default = "defaults::probe_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Consecutive failures before the probe's severity counts.
    #[serde(default = "defaults::failures")]
    pub failures: u32,
    /// Severity of a confirmed failure.
    #[serde(default = "defaults::probe_severity")]
    pub severity: Severity,
    /// A probe that answers as expected but slower than this is a failed
    /// probe: a health endpoint that takes seconds is not healthy. Absent:
    /// only `timeout` bounds it. Under `timeout`, above zero.
    #[serde(default, with = "humantime_serde")]
    pub max_latency: Option<Duration>,
}

/// A count metric's default `min_increase`: 0.02 points of error rate, the
/// floor `rollguard backtest` and the benchmark are measured with. At 0.1
/// points (the default before), a baseline of 0.05% put the null at ×3, so
/// an errors ×3 or ×4 at a low baseline could never be significant.
pub const DEFAULT_MIN_INCREASE: f64 = 0.0002;

/// `[[target.metric]]`: one Prometheus check.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricConfig {
    /// Name in evidence and notifications.
    pub name: String,
    /// PromQL giving one number, with `{{target}}`, `{{version}}`,
    /// `{{previous_version}}` and `{{window}}` filled in. Not used by a count
    /// metric (`errors_query` and `total_query`), whose value is their ratio.
    #[serde(default)]
    pub query: String,
    /// A count metric's bad events over `{{window}}`, e.g.
    /// `sum(increase(http_requests_total{code=~"5.."}[{{window}}]))`; for a
    /// latency objective, the requests slower than it (total minus a
    /// histogram bucket). With `total_query`, the metric is judged by the
    /// sequential error-rate test (docs/judge.md).
    #[serde(default)]
    pub errors_query: Option<String>,
    /// A count metric's events over `{{window}}`, e.g.
    /// `sum(increase(http_requests_total[{{window}}]))`.
    #[serde(default)]
    pub total_query: Option<String>,
    /// How the metric is judged: `threshold` (a breach of the thresholds for
    /// `confirm` ticks in a row) or `sequential` (an anytime-valid test
    /// against the pre-release baseline that says whether it got worse, and
    /// thresholds that say how much). Count metrics are always sequential.
    #[serde(default)]
    pub test: Option<MetricTest>,
    /// Sequential tests: how much worse than the baseline is still "no
    /// worse". 0.25 tests "more than 1.25 times the baseline".
    #[serde(default = "defaults::tolerance")]
    pub tolerance: f64,
    /// Sequential tests: the smallest absolute increase worth detecting, in
    /// the metric's unit (0.001 = 0.1 points of error rate for a count
    /// metric), so that 0.01% → 0.02% errors is not a regression.
    #[serde(default)]
    pub min_increase: Option<f64>,
    /// Count metrics: events a tick needs before its rate alone can take the
    /// fast path (a rate at the critical level rolls back without waiting
    /// for the statistics).
    #[serde(default = "defaults::min_requests")]
    pub min_requests: f64,
    /// What "normal" is.
    #[serde(default)]
    pub baseline: BaselineKind,
    /// baseline = "canary": the same measure for the stable version running
    /// beside the new one.
    #[serde(default)]
    pub stable_query: Option<String>,
    /// baseline = "canary", count metrics: the stable version's bad events
    /// over `{{window}}`, as `errors_query` counts the canary's. Each
    /// tick's errors are split between the two by their requests
    /// (docs/judge.md, "Canary against stable").
    #[serde(default)]
    pub stable_errors_query: Option<String>,
    /// baseline = "canary", count metrics: the stable version's events over
    /// `{{window}}`, as `total_query` counts the canary's.
    #[serde(default)]
    pub stable_total_query: Option<String>,
    /// baseline = "pre_release": how much time before the release is normal.
    #[serde(default = "defaults::baseline_window", with = "humantime_serde")]
    pub baseline_window: Duration,
    /// Which way is worse.
    #[serde(default)]
    pub direction: Direction,
    /// Absolute levels per severity.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Count metrics: the service level objective, as the share of good
    /// events (0.999 allows 0.1% errors). With it, the error budget burn of
    /// the increase over the baseline sets the severity too
    /// (`burn_thresholds`), and `min_increase` defaults to at most the
    /// budget.
    #[serde(default)]
    pub slo: Option<f64>,
    /// With `slo`: levels per severity of the burn rate the increase over
    /// the baseline adds, in multiples of the budget (1 spends it exactly
    /// over the SLO's period). Levels left out take
    /// [`DEFAULT_BURN_THRESHOLDS`].
    #[serde(default)]
    pub burn_thresholds: Thresholds,
    /// And at least this many times the baseline (for `increase`; at most
    /// 1/min_ratio of it for `decrease`).
    #[serde(default)]
    pub min_ratio: Option<f64>,
    /// What a query that returns nothing means.
    #[serde(default)]
    pub on_no_data: OnNoData,
    /// Count metrics: whether `errors_query` answering with no series at
    /// all always means zero errors. `false` (the default) lets the judge
    /// notice a release that renamed or relabelled its error metric: no
    /// error series while requests flow, when the baseline says errors
    /// were due, is `no_data`, not health (docs/watching.md, "When the
    /// error series is empty"). `true` is for a query whose emptiness can
    /// only mean zero.
    #[serde(default)]
    pub empty_means_zero: bool,
    /// Consecutive ticks a breach must last before it counts.
    #[serde(default = "defaults::confirm")]
    pub confirm: u32,
    /// Time limit of this query; `prometheus.timeout` when absent.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

impl MetricConfig {
    /// Whether this is a count metric (`errors_query` and `total_query`).
    pub fn is_count(&self) -> bool {
        self.errors_query.is_some() && self.total_query.is_some()
    }

    /// Whether the sequential test judges it: every count metric, and a
    /// value metric with `test = "sequential"`.
    pub fn is_sequential(&self) -> bool {
        self.is_count() || self.test == Some(MetricTest::Sequential)
    }

    /// `min_increase`, or its default: [`DEFAULT_MIN_INCREASE`] for a
    /// count metric (0.02 points of error rate), or its error budget
    /// `1 − slo` where that is less; 0 for a value metric.
    pub fn min_increase(&self) -> f64 {
        self.min_increase.unwrap_or(if self.is_count() {
            self.slo.map_or(DEFAULT_MIN_INCREASE, |slo| {
                (1.0 - slo).clamp(0.0, DEFAULT_MIN_INCREASE)
            })
        } else {
            0.0
        })
    }

    /// With `slo`: the burn rate levels, worst severity first, each
    /// configured one or its default.
    pub fn burn_levels(&self) -> Vec<(Severity, f64)> {
        if self.slo.is_none() {
            return Vec::new();
        }
        let t = &self.burn_thresholds;
        let d = &DEFAULT_BURN_THRESHOLDS;
        Thresholds {
            critical: t.critical.or(d.critical),
            high: t.high.or(d.high),
            medium: t.medium.or(d.medium),
            low: t.low.or(d.low),
        }
        .levels()
    }
}

/// Burn rate levels of an SLO's error budget, after the Google SRE
/// workbook's multiwindow alerts: 14.4 spends 2% of a 30-day budget in an
/// hour and 6 spends 5% in six hours (both page there); 3 and 1 are this
/// project's medium and low (1 spends the budget exactly over the period).
pub const DEFAULT_BURN_THRESHOLDS: Thresholds = Thresholds {
    critical: Some(14.4),
    high: Some(6.0),
    medium: Some(3.0),
    low: Some(1.0),
};

/// How a metric is judged.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MetricTest {
    /// Thresholds, confirmed over `confirm` consecutive ticks.
    Threshold,
    /// An anytime-valid sequential test against the baseline, with the
    /// thresholds setting the severity.
    Sequential,
}

/// Baselines.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum BaselineKind {
    /// The same query over the time before the release.
    #[default]
    PreRelease,
    /// A stable version running beside the new one (`stable_query`).
    Canary,
    /// Absolute thresholds only.
    None,
}

/// Which way a metric gets worse.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher is worse (error rate, latency).
    #[default]
    Increase,
    /// Lower is worse (throughput, success rate).
    Decrease,
}

/// Absolute thresholds per severity.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Level at which the breach is critical.
    #[serde(default)]
    pub critical: Option<f64>,
    /// Level at which the breach is high.
    #[serde(default)]
    pub high: Option<f64>,
    /// Level at which the breach is medium.
    #[serde(default)]
    pub medium: Option<f64>,
    /// Level at which the breach is low.
    #[serde(default)]
    pub low: Option<f64>,
}

impl Thresholds {
    /// The configured levels, worst severity first.
    pub fn levels(&self) -> Vec<(Severity, f64)> {
        [
            (Severity::Critical, self.critical),
            (Severity::High, self.high),
            (Severity::Medium, self.medium),
            (Severity::Low, self.low),
        ]
        .into_iter()
        .filter_map(|(s, v)| v.map(|v| (s, v)))
        .collect()
    }
}

/// What missing data means for a metric.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnNoData {
    /// The assessment is inconclusive: never act on missing data.
    #[default]
    Hold,
    /// Missing data counts as the metric's worst threshold.
    Fail,
    /// Missing data counts as healthy.
    Pass,
}

/// `[[target.data_check]]`: what rolling back would do to the data the new
/// release wrote. A `command` check (the default, so that files written
/// before there were kinds keep their meaning) runs a program that prints
/// `none`, `minor` or `major`; a `migrations` check compares the schema
/// migrations of the two releases, from a `migrations_dir` in each release
/// directory of a symlink source or from `list_argv` run once per version.
/// The keys of one kind are refused on the other by validation.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataCheckConfig {
    /// Name in evidence.
    pub name: String,
    /// How the check finds its answer.
    #[serde(default)]
    pub kind: DataCheckKind,
    /// `command`: program and arguments; templates allowed, never a shell.
    #[serde(default)]
    pub argv: Vec<String>,
    /// `migrations`: the directory of migration files inside each release
    /// directory (relative to it), for a symlink source: each entry's name
    /// without its extension is a migration id.
    #[serde(default)]
    pub migrations_dir: Option<PathBuf>,
    /// `migrations`: a program that prints the migration ids of
    /// `{{version}}`, one a line, run for the new and the previous version
    /// (templates allowed, never a shell): for releases that are not
    /// directories on this host.
    #[serde(default)]
    pub list_argv: Option<Vec<String>>,
    /// Time limit of the command (of each run, for `list_argv`).
    #[serde(default = "defaults::data_check_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

/// Kinds of data check.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum DataCheckKind {
    /// A program prints `none`, `minor` or `major`.
    #[default]
    Command,
    /// Migrations in the new release that the previous one lacks make the
    /// impact `major`: rolling back would run old code on a newer schema.
    Migrations,
}
