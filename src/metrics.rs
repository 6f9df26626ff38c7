//! rollguard's own metrics, served at `/metrics` in the Prometheus text
//! format. One struct holds every family so that a component records with a
//! plain method call and never touches the registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-target counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// Target name.
    pub target: String,
}

/// Labels of per-check histograms (a probe or a metric query).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    /// Target name.
    pub target: String,
    /// Probe or metric name.
    pub check: String,
}

/// Labels of decision counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// Target name.
    pub target: String,
    /// `healthy`, `rollback`, ...
    pub decision: String,
}

/// Labels of rollback counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RollbackLabels {
    /// Target name.
    pub target: String,
    /// `completed`, `failed`, `interrupted`, `shadowed`.
    pub outcome: String,
}

/// Labels of a result counter (`ok` / `error`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `error`.
    pub result: String,
}

/// Labels of notification counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    /// The notifier's name in the config.
    pub notifier: String,
    /// `ok` (delivered), `failed` (every attempt failed) or `dropped` (its
    /// queue was full).
    pub result: String,
}

/// Labels of build info.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// rollguard's version.
    pub version: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~16 s: health probes and PromQL queries.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// Every metric rollguard exports.
pub struct Metrics {
    registry: Registry,
    /// Ticks run, per target.
    pub ticks: Family<TargetLabels, Counter>,
    /// Health probe latency, per target and probe.
    pub probe_duration: Family<CheckLabels, Histogram, fn() -> Histogram>,
    /// Prometheus query latency, per target and metric.
    pub query_duration: Family<CheckLabels, Histogram, fn() -> Histogram>,
    /// Decisions reached, per target and kind.
    pub decisions: Family<DecisionLabels, Counter>,
    /// Rollbacks, per target and outcome.
    pub rollbacks: Family<RollbackLabels, Counter>,
    /// Configuration reloads, by result.
    pub config_reloads: Family<ResultLabels, Counter>,
    /// Journal records written, by result.
    pub journal_writes: Family<ResultLabels, Counter>,
    /// Notifications, per notifier and result (`ok`, `failed`, `dropped`).
    pub notifications: Family<NotificationLabels, Counter>,
    /// Target watchers that ended unexpectedly and were started again.
    pub watcher_failures: Family<TargetLabels, Counter>,
    /// `rollguard_reports_total`: incident reports written, by result.
    pub reports: Family<ResultLabels, Counter>,
    /// Targets currently watched.
    pub targets: Gauge,
    /// 1 while this replica leads (and so acts), 0 otherwise.
    pub leader: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rollguard");
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        registry.register("build_info", "rollguard's version", build_info);

        let ticks = Family::default();
        registry.register("ticks", "Ticks run, per target", ticks.clone());
        let probe_duration: Family<CheckLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "probe_duration_seconds",
            "Health probe latency",
            probe_duration.clone(),
        );
        let query_duration: Family<CheckLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "query_duration_seconds",
            "Prometheus query latency",
            query_duration.clone(),
        );
        let decisions = Family::default();
        registry.register("decisions", "Decisions reached", decisions.clone());
        let rollbacks = Family::default();
        registry.register("rollbacks", "Rollbacks by outcome", rollbacks.clone());
        let config_reloads = Family::default();
        registry.register(
            "config_reloads",
            "Configuration reloads by result",
            config_reloads.clone(),
        );
        let journal_writes = Family::default();
        registry.register(
            "journal_writes",
            "Journal records written, by result",
            journal_writes.clone(),
        );
        let notifications = Family::default();
        registry.register(
            "notifications",
            "Notifications, per notifier and result",
            notifications.clone(),
        );
        let watcher_failures = Family::default();
        registry.register(
            "watcher_failures",
            "Target watchers that ended unexpectedly (a panic) and were started again",
            watcher_failures.clone(),
        );
        let reports = Family::default();
        registry.register(
            "reports",
            "Incident reports written under state_dir/reports, by result",
            reports.clone(),
        );
        let targets = Gauge::default();
        registry.register("targets", "Targets currently watched", targets.clone());
        let leader = Gauge::default();
        leader.set(1);
        registry.register(
            "leader",
            "1 while this replica leads and so acts, 0 otherwise",
            leader.clone(),
        );
        Metrics {
            registry,
            ticks,
            probe_duration,
            query_duration,
            decisions,
            rollbacks,
            config_reloads,
            journal_writes,
            notifications,
            watcher_failures,
            reports,
            targets,
            leader,
        }
    }

    /// Counts a configuration reload.
    pub fn reload(&self, ok: bool) {
        self.config_reloads
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "error" }.to_owned(),
            })
            .inc();
    }

    /// Counts a journal write.
    pub fn journal_write(&self, ok: bool) {
        self.journal_writes
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "error" }.to_owned(),
            })
            .inc();
    }

    /// Counts a watcher of `target` that ended unexpectedly.
    pub fn watcher_failed(&self, target: &str) {
        self.watcher_failures
            .get_or_create(&TargetLabels {
                target: target.to_owned(),
            })
            .inc();
    }

    /// Counts a tick of `target`.
    pub fn tick(&self, target: &str) {
        self.ticks
            .get_or_create(&TargetLabels {
                target: target.to_owned(),
            })
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_build_info_and_counts() {
        let m = Metrics::new();
        m.reload(true);
        m.reload(false);
        m.tick("api");
        let text = m.encode();
        assert!(text.contains("rollguard_build_info{version=\""), "{text}");
        assert!(
            text.contains("rollguard_config_reloads_total{result=\"error\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("rollguard_ticks_total{target=\"api\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
