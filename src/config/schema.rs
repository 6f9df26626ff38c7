//! The configuration file's shape as inert serde structs. Nothing here checks
//! more than types and key names; cross-field rules live in `validate.rs`.
//!
//! Target-level structs are in `schema_target.rs`.
//!
//! Every struct rejects unknown keys, so a typo is an error and not a
//! silently ignored setting. `config/example.toml` shows every key.

use super::defaults;
use super::schema_target::TargetConfig;
use super::size::ByteSize;
use crate::model::{DataImpact, Mode, Severity};
use crate::notify::NotifyEvent;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The whole file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How the daemon itself runs.
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// Where metrics are queried. Required as soon as a target has a metric.
    #[serde(default)]
    pub prometheus: Option<PrometheusConfig>,
    /// Where notifications go; targets refer to them by name.
    #[serde(default, rename = "notifier")]
    pub notifiers: Vec<NotifierConfig>,
    /// The decision matrix.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// The watched services.
    #[serde(default, rename = "target")]
    pub targets: Vec<TargetConfig>,
}

/// `[daemon]`: process-wide settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Address of the HTTP API, /metrics and /healthz. Loopback by default so
    /// that nothing is exposed without a deliberate choice.
    #[serde(default = "defaults::listen")]
    pub listen: SocketAddr,
    /// Where the journal lives; systemd's StateDirectory by default.
    #[serde(default = "defaults::state_dir")]
    pub state_dir: PathBuf,
    /// Mode of every target that does not set its own. Shadow by default:
    /// a new install watches and reports before it is trusted to act.
    #[serde(default)]
    pub mode: Mode,
    /// `text` for people, `json` for log pipelines.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Log filter (tracing `EnvFilter` syntax) used when RUST_LOG is unset.
    #[serde(default = "defaults::log_level")]
    pub log_level: String,
    /// File holding the bearer token for mutating API calls. Absent: those
    /// calls are refused (403), never open.
    #[serde(default)]
    pub api_token_file: Option<PathBuf>,
    /// How long a running pipeline step may go on after SIGTERM before it
    /// is recorded as interrupted.
    #[serde(default = "defaults::shutdown_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// How long journal records are kept whole: older ones that neither a
    /// restart nor a report about a more recent incident needs are
    /// compacted away (docs/operations.md, "The journal").
    #[serde(default = "defaults::journal_retention", with = "humantime_serde")]
    pub journal_retention: Duration,
    /// kubeconfig file of `kubernetes` release sources and leader election.
    /// Absent: kube's defaults (`KUBECONFIG`, `~/.kube/config`, then the
    /// in-cluster service account).
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Several replicas, one acting: leader election on a Kubernetes Lease.
    /// Absent: a single instance, always the leader.
    #[serde(default)]
    pub leader_election: Option<LeaderElectionConfig>,
    /// Most health probes and version reads in flight at once, over every
    /// target: a burst of releases then opens at most this many
    /// connections to the services (and file descriptors), whatever the
    /// size of the fleet.
    #[serde(default = "defaults::max_concurrent_probes")]
    pub max_concurrent_probes: usize,
    /// Whether a file without any `[[target]]` is accepted. Off: such a
    /// file watches nothing, which is almost always a mistake (a wrong
    /// file, a template never filled in), so `check` and the daemon refuse
    /// it. On for a daemon started empty on purpose, whose targets come
    /// with a later reload.
    #[serde(default)]
    pub allow_no_targets: bool,
    /// How long a monitoring outage must last before "monitoring is down"
    /// is said, and how long monitoring must then be back before "back"
    /// is: a Prometheus failing every other tick makes one outage with
    /// one notice each way, not one per tick. Zero tells every change at
    /// once. rollguard holds during any failed query whatever this says.
    #[serde(
        default = "defaults::monitoring_notice_after",
        with = "humantime_serde"
    )]
    pub monitoring_notice_after: Duration,
}

/// `daemon.leader_election`: which Lease the replicas compete for.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LeaderElectionConfig {
    /// Name of the `coordination.k8s.io` Lease.
    #[serde(default = "defaults::lease_name")]
    pub lease: String,
    /// Namespace of the Lease. Absent: the client's default namespace (the
    /// kubeconfig context's, or the pod's own in a cluster).
    #[serde(default)]
    pub namespace: Option<String>,
    /// How long a leader that stops renewing keeps the Lease: the longest
    /// time without a leader after a crash. Whole seconds, at least 1 s
    /// (the Lease stores seconds).
    #[serde(default = "defaults::lease_duration", with = "humantime_serde")]
    pub duration: Duration,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            listen: defaults::listen(),
            state_dir: defaults::state_dir(),
            mode: Mode::default(),
            log_format: LogFormat::default(),
            log_level: defaults::log_level(),
            api_token_file: None,
            shutdown_grace: defaults::shutdown_grace(),
            journal_retention: defaults::journal_retention(),
            kubeconfig: None,
            leader_election: None,
            max_concurrent_probes: defaults::max_concurrent_probes(),
            allow_no_targets: false,
            monitoring_notice_after: defaults::monitoring_notice_after(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[prometheus]`: the metrics source.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Base URL of the Prometheus HTTP API.
    pub url: String,
    /// Time limit of one query; a query that takes longer is an error, which
    /// makes the assessment inconclusive rather than failed.
    #[serde(default = "defaults::query_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// File holding a bearer token for Prometheus, if it needs one.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// Shortest `{{window}}` a post-release query is given. Right after a
    /// release the time since it is a few seconds, too short for `rate()` to
    /// find two samples; the window grows with the release's age from this.
    #[serde(default = "defaults::min_window", with = "humantime_serde")]
    pub min_window: Duration,
    /// Most queries in flight to Prometheus at once, over every target. The
    /// HTTP client has no hard per-host connection cap: this bound on
    /// requests in flight is what bounds the connections to Prometheus
    /// (its `--web.max-connections` is 512 by default).
    #[serde(default = "defaults::max_concurrent_queries")]
    pub max_concurrent_queries: usize,
    /// Most bytes of one Prometheus answer that rollguard reads. A query
    /// that forgot its `sum()` can answer with tens of megabytes of series,
    /// which would all be held in memory at once; past this the query is an
    /// error that says to aggregate it, and the rest is never read.
    #[serde(default = "defaults::max_response_bytes")]
    pub max_response_bytes: ByteSize,
    /// Most series counted in one Prometheus answer before rollguard stops
    /// reading it. A metric needs one series; only the first is kept
    /// whatever this says, and past it the query is an error that says to
    /// aggregate it.
    #[serde(default = "defaults::max_series")]
    pub max_series: usize,
}

/// `[[notifier]]`: one place notifications go.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotifierConfig {
    /// Name that targets use in `notify = [...]`.
    pub name: String,
    /// What kind of receiver this is.
    pub kind: NotifierKind,
    /// Receiver URL written in the file (webhook only: a Slack URL is a secret).
    #[serde(default)]
    pub url: Option<String>,
    /// Environment variable holding the URL, for URLs that are secrets.
    #[serde(default)]
    pub url_env: Option<String>,
    /// File holding the URL, for URLs that are secrets.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// Program and arguments of a `command` notifier; the message arrives as
    /// JSON on its standard input.
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    /// HTTP headers whose values come from environment variables
    /// (header name -> variable name), for tokens.
    #[serde(default)]
    pub headers_env: BTreeMap<String, String>,
    /// Time limit of one delivery attempt.
    #[serde(default = "defaults::notify_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Further attempts after a failed delivery.
    #[serde(default = "defaults::notify_retries")]
    pub retries: u32,
    /// The events this notifier receives, by their journal names
    /// (`rollback_started`, ...). Absent: its kind's default, see
    /// [`NotifierKind::receives_by_default`].
    #[serde(default)]
    pub events: Option<Vec<NotifyEvent>>,
}

impl NotifierConfig {
    /// Whether this notifier receives `event`: listed in `events`, or, when
    /// `events` is absent, sent to its kind by default.
    pub fn receives(&self, event: NotifyEvent) -> bool {
        match &self.events {
            Some(events) => events.contains(&event),
            None => self.kind.receives_by_default(event),
        }
    }
}

/// Kinds of notifier.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NotifierKind {
    /// A JSON POST of the whole event.
    Webhook,
    /// A Slack incoming webhook (or anything compatible with it).
    Slack,
    /// A local program, given the event as JSON on stdin.
    Command,
}

impl NotifierKind {
    /// Whether a notifier of this kind without `events` receives `event`.
    /// Webhooks and commands (machines, the journal's mirror) get every
    /// event. A Slack channel is read by people: it gets everything but
    /// `rollback_step` (one message per step; the rollback's start and end
    /// already carry the timeline) and `release_detected` (one message per
    /// deploy, healthy or not; the channel hears when one looks degraded).
    pub fn receives_by_default(self, event: NotifyEvent) -> bool {
        match self {
            NotifierKind::Webhook | NotifierKind::Command => true,
            NotifierKind::Slack => !matches!(
                event,
                NotifyEvent::RollbackStep | NotifyEvent::ReleaseDetected
            ),
        }
    }
}

/// `[policy]`: the decision matrix.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Rules, first match wins. Empty: the runbook's defaults.
    #[serde(default)]
    pub rule: Vec<PolicyRule>,
}

/// One row of the decision matrix.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// The severity the rule is about; `severity_match` says whether it
    /// matches this one or worse (the default), at most this one, or exactly
    /// this one.
    pub severity: Severity,
    /// How `severity` matches: `or_worse` (default, what every rule written
    /// before this field meant), `at_most` or `exactly`, so that a
    /// forward-fix row can say "low, and nothing worse".
    #[serde(default)]
    pub severity_match: SeverityMatch,
    /// Matches this data impact or less.
    #[serde(default = "defaults::data_impact")]
    pub data_impact: DataImpact,
    /// Matches when the estimated forward fix takes longer than this.
    /// Absent: any time to fix.
    #[serde(default, with = "humantime_serde")]
    pub time_to_fix_over: Option<Duration>,
    /// What to do when the rule matches.
    pub decision: RuleDecision,
}

/// Decisions a policy rule may give.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RuleDecision {
    /// Roll back (subject to the target's mode).
    Rollback,
    /// Ask a human.
    ConsiderRollback,
    /// Leave the release in place and fix forward.
    ForwardFix,
}

/// How a rule's `severity` matches an assessment's.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SeverityMatch {
    /// The rule's severity or worse.
    #[default]
    OrWorse,
    /// The rule's severity or milder (never `none`: rules are not consulted
    /// for a healthy assessment).
    AtMost,
    /// The rule's severity only.
    Exactly,
}

impl SeverityMatch {
    /// Whether an assessment at `actual` matches a rule about `rule`.
    pub fn matches(self, rule: Severity, actual: Severity) -> bool {
        match self {
            SeverityMatch::OrWorse => actual >= rule,
            SeverityMatch::AtMost => actual <= rule,
            SeverityMatch::Exactly => actual == rule,
        }
    }
}
