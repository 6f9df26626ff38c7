//! Plain data shared by every part of rollguard: the words of the runbook
//! (severity, data impact, decision, mode) and nothing that does I/O.

use serde::{Deserialize, Serialize};
use std::fmt;

mod time_to_fix;
pub use time_to_fix::TimeToFix;

/// How bad a release is, from the runbook: `none < low < medium < high < critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Nothing wrong was seen.
    None,
    /// Noticeable but harmless; a forward fix is the answer.
    Low,
    /// Users are affected; a human should consider rolling back.
    Medium,
    /// Users are clearly affected.
    High,
    /// The service is down or losing data.
    Critical,
}

impl Severity {
    /// Every severity, mildest first.
    pub const ALL: [Severity; 5] = [
        Severity::None,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lowercase name used in config files, logs and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rollback would do to data written by the new release:
/// `none < minor < major`. `major` (a schema migration, say) never rolls back
/// automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataImpact {
    /// Rolling back loses or breaks nothing.
    None,
    /// Some data needs a look after rolling back.
    Minor,
    /// Rolling back would break or lose data; prefer a forward fix.
    Major,
}

impl DataImpact {
    /// The lowercase name used in config files, logs and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            DataImpact::None => "none",
            DataImpact::Minor => "minor",
            DataImpact::Major => "major",
        }
    }
}

impl fmt::Display for DataImpact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the decision matrix says to do about a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Nothing is wrong.
    Healthy,
    /// Something is wrong, but fixing forward is better than rolling back.
    ForwardFix,
    /// A human should decide; rollguard asks for approval.
    ConsiderRollback,
    /// Roll back now.
    Rollback,
    /// rollguard cannot tell (missing data, monitoring down): never acts.
    Inconclusive,
}

impl Decision {
    /// The lowercase name used in logs, metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Healthy => "healthy",
            Decision::ForwardFix => "forward_fix",
            Decision::ConsiderRollback => "consider_rollback",
            Decision::Rollback => "rollback",
            Decision::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far rollguard may act on its own for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Rollbacks run by themselves; `consider_rollback` asks for approval.
    Enforce,
    /// Nothing runs; every notification says what would have run.
    #[default]
    Shadow,
    /// Every rollback waits for a human's approval.
    Approve,
}

impl Mode {
    /// The lowercase name used in config files, logs and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
            Mode::Approve => "approve",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_are_ordered_as_in_the_runbook() {
        let mut sorted = Severity::ALL;
        sorted.sort();
        assert_eq!(sorted, Severity::ALL);
        assert!(Severity::Critical > Severity::High);
        assert!(DataImpact::Major > DataImpact::Minor);
    }

    #[test]
    fn names_round_trip_through_serde() {
        for s in Severity::ALL {
            let json = serde_json::to_string(&s).expect("serialises");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        let d: Decision = serde_json::from_str("\"consider_rollback\"").expect("parses");
        assert_eq!(d, Decision::ConsiderRollback);
    }
}

// ---------------------------------------------------------------------------
// What one tick measured, and what the judge made of it.
// ---------------------------------------------------------------------------

/// One HTTP health probe's outcome in one tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The probe's configured name, so the judge can find its `failures` and
    /// `severity` and keep its streak of consecutive failures.
    pub name: String,
    /// Whether the probe got what it expected (status, body). A refused
    /// connection or a timeout is `false`: for a health probe that is a fact
    /// about the service, not a monitoring outage.
    pub ok: bool,
    /// The HTTP status that came back, if any; shown in the evidence.
    pub status: Option<u16>,
    /// How long the probe took, for the evidence and for slow-but-up cases.
    pub latency_ms: f64,
    /// Why the probe failed (connect error, timeout, unexpected body), in
    /// words for the evidence; `None` when it succeeded or the status says it.
    pub error: Option<String>,
}

/// One metric's value in one tick, with its baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    /// The metric's configured name, so the judge can find its thresholds,
    /// `min_ratio`, `confirm` and `on_no_data`.
    pub name: String,
    /// The post-release value; `None` means the query answered with no data
    /// (an empty vector, NaN), which `on_no_data` decides about.
    pub value: Option<f64>,
    /// The same measure for what "normal" is (before the release, or the
    /// stable version); `None` when there is no baseline or it had no data.
    pub baseline: Option<f64>,
    /// Why the query failed (Prometheus unreachable, bad query, timeout).
    /// A failed query is a monitoring problem, never a failure of the
    /// release: it makes the assessment inconclusive whatever `on_no_data` says.
    pub error: Option<String>,
    /// A count metric's events since the window start (the release, or the
    /// rollback when verifying), cumulative: the judge takes differences
    /// from tick to tick, so no tick's events are counted twice. `None` when
    /// the counts queries answered with no data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    /// With `baseline = "canary"`: the stable version's events over the
    /// same window, cumulative like `counts`. `None` when its queries
    /// answered with no data (or the metric has no canary baseline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_counts: Option<Counts>,
    /// A count metric's baseline, one entry per baseline tick, oldest first:
    /// the sequential test needs the tick-to-tick spread, not just the sum.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline_counts: Vec<Counts>,
    /// A sequential value metric's baseline values, one per baseline tick,
    /// oldest first (no-data ticks left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline_series: Vec<f64>,
    /// A count metric: `errors_query` answered with no series at all while
    /// `total_query` counted events, so `counts.bad` is a 0 nobody
    /// measured. The judge decides whether that is "no errors yet" or
    /// "cannot see the errors" (`empty_means_zero`, the baseline).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub errors_empty: bool,
}

impl MetricSample {
    /// A sample of `name` with nothing measured yet: no value, no baseline,
    /// no error.
    pub fn named(name: &str) -> MetricSample {
        MetricSample {
            name: name.to_owned(),
            value: None,
            baseline: None,
            error: None,
            counts: None,
            stable_counts: None,
            baseline_counts: Vec::new(),
            baseline_series: Vec::new(),
            errors_empty: false,
        }
    }
}

/// Events counted over a stretch of time: all of them, and the bad ones
/// (failed requests; for a latency objective, requests slower than it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Every event (request) counted.
    pub total: f64,
    /// Of those, the bad ones.
    pub bad: f64,
}

impl Counts {
    /// Counts that make sense (finite, not negative, `bad <= total`), or
    /// `None`: Prometheus' extrapolation can give a few more errors than
    /// requests over a short window, and nothing should be judged on that.
    pub fn checked(total: f64, bad: f64) -> Option<Counts> {
        let sane = total.is_finite() && bad.is_finite() && total >= 0.0 && bad >= 0.0;
        (sane && bad <= total * (1.0 + 1e-9)).then_some(Counts {
            total,
            bad: bad.min(total),
        })
    }

    /// bad / total; `None` without events.
    pub fn rate(&self) -> Option<f64> {
        (self.total > 0.0).then(|| self.bad / self.total)
    }
}

/// Everything one tick measured for a target: the judge's only input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Observation {
    /// Tick number since the release (0 = first tick of the bake window), so
    /// replays and the journal can say *when* a decision was reached.
    pub tick: u64,
    /// Wall-clock time of the tick in milliseconds since the Unix epoch; 0 in
    /// replays that have no clock.
    pub at_unix_ms: u64,
    /// Probe outcomes, one per configured probe.
    pub probes: Vec<ProbeResult>,
    /// Metric values, one per configured metric.
    pub metrics: Vec<MetricSample>,
}

/// What the judge concluded about one check in one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The check is healthy (or has no data and `on_no_data = "pass"`).
    Pass,
    /// A breach confirmed over enough consecutive ticks (`confirm` for a
    /// metric, `failures` for a probe): this severity counts.
    Fail(Severity),
    /// A breach seen but not yet confirmed: it does not count yet, so one bad
    /// scrape never rolls a release back.
    Pending {
        /// The severity that would count if the breach persists.
        severity: Severity,
        /// Consecutive breaching ticks so far.
        streak: u32,
        /// Consecutive breaching ticks needed to confirm.
        needed: u32,
    },
    /// The check had no data and `on_no_data = "hold"`: it cannot be judged.
    NoData,
    /// The measurement itself failed (Prometheus down, query error, probe not
    /// run): it cannot be judged, whatever `on_no_data` says.
    Error,
}

/// Which kind of check a piece of evidence is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// An HTTP health probe (`[[target.probe]]`).
    Probe,
    /// A Prometheus query (`[[target.metric]]`).
    Metric,
}

/// Why the judge gave a check its verdict: what an operator reads to trust
/// or overrule a decision, and what an incident report quotes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckEvidence {
    /// The check's configured name.
    pub check: String,
    /// Probe or metric, since names may repeat across the two.
    pub kind: CheckKind,
    /// The verdict this tick.
    pub verdict: Verdict,
    /// The measured value (a metric's value; a probe's HTTP status), when
    /// there was one.
    pub value: Option<f64>,
    /// The baseline it was compared with, when there was one.
    pub baseline: Option<f64>,
    /// value / baseline, when both exist and the baseline is positive.
    pub ratio: Option<f64>,
    /// The threshold that was breached or, when none was, the mildest one
    /// that was not; `None` when no absolute threshold applies.
    pub threshold: Option<f64>,
    /// Severity of this tick's breach alone, before confirmation; `none`
    /// when this tick did not breach.
    pub breached_severity: Severity,
    /// Consecutive breaching ticks, this one included.
    pub streak: u32,
    /// Consecutive breaching ticks a breach needs to count.
    pub needed: u32,
    /// The whole judgement in one sentence, naming value, baseline and
    /// threshold, e.g. `error_rate 0.082 ≥ high threshold 0.02 and 8.2x
    /// baseline 0.01 (≥ 2x), 2 of 2 ticks`.
    pub reason: String,
    /// The sequential test's state, for a check judged by one: how strong
    /// the evidence that the release is worse is, and how strong it must be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistic: Option<Statistic>,
    /// A count metric that cannot see its errors: the `errors_query` (as
    /// configured) that answers with no series while requests flow and
    /// errors were due. The target hears of it once per release
    /// (`metric_blind`), with this query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blind: Option<String>,
}

/// Where a sequential test stands after a tick.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Statistic {
    /// The e-value: evidence against "the release is no worse than the
    /// baseline"; 1 is none, and it may be looked at on every tick.
    pub e_value: f64,
    /// The e-value at which the test says "worse": 1/α of the test.
    pub threshold: f64,
    /// The null's boundary: the worst rate still counted as "no worse".
    pub null_rate: f64,
    /// Whether the e-value has reached the threshold on some tick.
    pub rejected: bool,
}

impl CheckEvidence {
    /// Evidence about `check` before anything is known: verdict `error`,
    /// no values, no streak; the judge fills it in.
    pub fn unknown(check: &str, kind: CheckKind, needed: u32) -> CheckEvidence {
        CheckEvidence {
            check: check.to_owned(),
            kind,
            verdict: Verdict::Error,
            value: None,
            baseline: None,
            ratio: None,
            threshold: None,
            breached_severity: Severity::None,
            streak: 0,
            needed,
            reason: String::new(),
            statistic: None,
            blind: None,
        }
    }
}

/// The judge's view of a release after one tick: the three inputs of the
/// decision matrix and the evidence behind them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// The worst confirmed severity over all checks; `none` when nothing is
    /// confirmed.
    pub severity: Severity,
    /// What rolling back would do to data, from the data checks (`none`
    /// when there are none).
    pub data_impact: DataImpact,
    /// Estimated time to a forward fix: the target's `time_to_fix` or an
    /// operator's run-time override; unknown until someone estimates it.
    pub time_to_fix: TimeToFix,
    /// True when some check could not be evaluated (no data under `hold`, or
    /// a measurement error) and no evaluated check has a confirmed failure:
    /// rollguard cannot tell, and never acts automatically on that.
    pub inconclusive: bool,
    /// One entry per configured check, probes first, in config order.
    pub evidence: Vec<CheckEvidence>,
}

/// A decision with everything needed to explain it later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// What to do.
    pub decision: Decision,
    /// The severity it was decided on.
    pub severity: Severity,
    /// The data impact it was decided on.
    pub data_impact: DataImpact,
    /// The time to fix it was decided on (`unknown` when nobody estimated it).
    pub time_to_fix: TimeToFix,
    /// The rule that matched, in words, e.g. `policy.rule[1]: high or worse,
    /// data minor or less, time to fix over 1h → rollback`, or the default
    /// that applied (`default: ...`); `None` when inconclusive.
    pub rule: Option<String>,
    /// Why, one sentence each: the rule first, then the evidence of every
    /// check that was not a plain pass.
    pub reasons: Vec<String>,
}

/// How a rollback step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// The step did what it should.
    Ok,
    /// The step failed.
    Failed,
    /// The step ran out of time and was stopped.
    TimedOut,
    /// The step was cut short (shutdown, or found unfinished after a crash).
    Interrupted,
}

impl StepOutcome {
    /// The name used in the journal, notifications and timelines.
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Ok => "ok",
            StepOutcome::Failed => "failed",
            StepOutcome::TimedOut => "timed_out",
            StepOutcome::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
