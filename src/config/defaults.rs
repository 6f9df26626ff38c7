//! Default values, one function each so that docs and code agree
//! (docs/configuration.md lists the same values).

use super::size::ByteSize;
use crate::model::{DataImpact, Severity, TimeToFix};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Default of `daemon.listen`: loopback only, so nothing is exposed by accident.
pub fn listen() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 9187))
}

/// Default of `daemon.state_dir`: systemd's StateDirectory.
pub fn state_dir() -> PathBuf {
    PathBuf::from("/var/lib/rollguard")
}

/// Default of `daemon.log_level`.
pub fn log_level() -> String {
    "info".to_owned()
}

/// Default of `daemon.shutdown_grace`.
pub fn shutdown_grace() -> Duration {
    Duration::from_secs(30)
}

/// Default of `daemon.journal_retention`: a month of incidents to report on.
pub fn journal_retention() -> Duration {
    Duration::from_secs(30 * 24 * 60 * 60)
}

/// Default of `daemon.monitoring_notice_after`: longer than a Prometheus
/// restart or one slow evaluation (a few ticks at the usual 5-10 s
/// interval), short against a bake window, so that a real outage is told
/// while the release is still being watched.
pub fn monitoring_notice_after() -> Duration {
    Duration::from_secs(30)
}

/// Default of `daemon.leader_election.lease`.
pub fn lease_name() -> String {
    "rollguard".to_owned()
}

/// Default of `daemon.leader_election.duration`: Kubernetes' own
/// controllers use 15 s.
pub fn lease_duration() -> Duration {
    Duration::from_secs(15)
}

/// Default of `prometheus.timeout`.
pub fn query_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Default of `prometheus.min_window`: a few scrape intervals, so that
/// `rate()` over a young release still has samples to work with.
pub fn min_window() -> Duration {
    Duration::from_secs(30)
}

/// Default of `prometheus.max_concurrent_queries`: far below Prometheus'
/// default `--web.max-connections` (512), enough for a few hundred targets
/// baking at once with queries of a few tens of milliseconds.
pub fn max_concurrent_queries() -> usize {
    16
}

/// Default of `prometheus.max_response_bytes`: an aggregated query
/// answers with a few hundred bytes, a range query for a baseline with at
/// most about 300 KiB (Prometheus answers at most 11,000 points a series);
/// 16 queries in flight at this size hold 64 MiB at most.
pub fn max_response_bytes() -> ByteSize {
    ByteSize::mib(4)
}

/// Default of `prometheus.max_series`: a metric needs one series; this is
/// how many are counted before reading stops.
pub fn max_series() -> usize {
    500
}

/// Default of `daemon.max_concurrent_probes`: far below the unit's
/// `LimitNOFILE` and any service's connection limit.
pub fn max_concurrent_probes() -> usize {
    64
}

/// Default of `notifier.timeout`.
pub fn notify_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Default of `notifier.retries`.
pub fn notify_retries() -> u32 {
    3
}

/// Default of `policy.rule.data_impact`: the rule matches only assessments without data impact.
pub fn data_impact() -> DataImpact {
    DataImpact::None
}

/// Default of `target.interval`.
pub fn interval() -> Duration {
    Duration::from_secs(10)
}

/// Default of `target.bake_window`.
pub fn bake_window() -> Duration {
    Duration::from_secs(15 * 60)
}

/// Default of `target.time_to_fix`: unknown, because nobody has promised a
/// quick fix; it is longer than any rule's limit, so by default critical and
/// high roll back and medium asks a human.
pub fn time_to_fix() -> TimeToFix {
    TimeToFix::Unknown
}

/// Default of `target.cooldown`.
pub fn cooldown() -> Duration {
    Duration::from_secs(30 * 60)
}

/// Default of `target.probe.method`.
pub fn method() -> String {
    "GET".to_owned()
}

/// Default of `target.probe.expect_status`.
pub fn expect_status() -> Vec<u16> {
    vec![200]
}

/// Default of `target.probe.timeout`.
pub fn probe_timeout() -> Duration {
    Duration::from_secs(2)
}

/// Default of `target.probe.failures`.
pub fn failures() -> u32 {
    3
}

/// Default of `target.probe.severity`: a health endpoint that is down is critical.
pub fn probe_severity() -> Severity {
    Severity::Critical
}

/// Default of `target.metric.baseline_window`.
pub fn baseline_window() -> Duration {
    Duration::from_secs(30 * 60)
}

/// Default of `target.metric.tolerance`: "worse" means more than 1.25
/// times the baseline.
pub fn tolerance() -> f64 {
    0.25
}

/// Default of `target.metric.min_requests`.
pub fn min_requests() -> f64 {
    20.0
}

/// Default of `target.alpha`.
pub fn alpha() -> f64 {
    0.01
}

/// Default of `target.metric.confirm`.
pub fn confirm() -> u32 {
    2
}

/// Default of `target.data_check.timeout`.
pub fn data_check_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Default of `target.step.timeout`.
pub fn step_timeout() -> Duration {
    Duration::from_secs(5 * 60)
}

/// Default of `target.step.backoff`.
pub fn backoff() -> Duration {
    Duration::from_secs(2)
}
