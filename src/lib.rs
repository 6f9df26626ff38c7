//! rollguard watches every release of a service and, when the release breaks
//! the service, rolls it back by itself, or, in shadow mode, says exactly
//! when and why it would have.
//!
//! # Layout
//!
//! From the bottom up; each module imports only modules above it in this
//! list (and the judge only `model`, `config` and `numeric`):
//!
//! - Leaves, no rollguard imports: [`model`] (plain data in the runbook's
//!   words: severity, data impact, decision, mode, a step's outcome),
//!   [`numeric`] (median, a repeatable random source), [`time`] (time
//!   arithmetic that saturates instead of panicking), [`template`]
//!   (`{{variable}}` rendering, values escaped for a PromQL query, a URL or
//!   a JSON body), [`http`] (the one HTTP client, size-limited body reads,
//!   readable failures), [`exec`] (child processes: never a shell, own
//!   process group, time limits that stop the whole group, bounded output),
//!   [`metrics`] (rollguard's own Prometheus metrics), [`leader`] (a
//!   Kubernetes Lease across replicas; only the leader acts).
//! - [`config`]: the TOML file as typed structs (each release source and
//!   step kind its own struct), validated as a whole, every error with its
//!   key path and line.
//! - [`journal`]: the durable, append-only record of every event; what makes
//!   a crash harmless. Compacted to `daemon.journal_retention`.
//! - [`judge`]: pure, no I/O: turns each tick's observation into an
//!   assessment (severity, data impact, time to fix, evidence) and the
//!   decision matrix into a decision.
//! - Inputs and outputs: [`probe`] (HTTP health probes, Prometheus queries and baselines),
//!   [`release`] (release sources and the tracker that turns versions seen
//!   over time into releases and rollbacks), [`data_check`] (what a
//!   rollback would do to data; a check that cannot tell counts as
//!   `major`), [`kubernetes`] (Deployments changed as `kubectl` 1.32 changes
//!   them, and the shared client), [`notify`] (webhook, Slack, command;
//!   delivered in the background with retries, never delaying a rollback),
//!   [`pipeline`] (the rollback steps, one file per kind, on top of
//!   `release`'s symlink reading and `kubernetes`; the runner that asks its
//!   hooks to journal a step before it acts; what each step would do in
//!   shadow mode: the only place that knows what a mode means for a step).
//!   `probe` never imports `pipeline`; the pipeline uses only probe's
//!   stateless `HealthProbe`, with which a `bluegreen_switch` probes a
//!   colour before it flips to it.
//! - [`report`]: incident reports and status messages, pure over journal
//!   records (and their files under `<state_dir>/reports/`).
//! - [`state`]: what the running daemon knows, shared with the HTTP API.
//! - [`watchdog`]: one supervised loop per target (release source, bake
//!   window, judge, the pure mode gate, the pipeline), restarted from the
//!   journal if it ever ends unexpectedly.
//! - [`api`]: HTTP: health, readiness, metrics, status, events, control.
//! - [`daemon`]: start-up, signals (reload, shutdown), sd_notify, shutdown.
//! - [`telemetry`], [`client`] (the CLI's side of the HTTP API),
//!   [`backtest`] (the judge and the matrix over recorded releases), and
//!   [`demo`] (a steerable service for the demo, the tests and the
//!   benchmarks).
//!
//! Long-lived tasks are spawned in four places, each stopped by the one
//! that owns it: [`daemon`] (the HTTP API, the leader election of
//! [`leader`] and its gauge),
//! [`watchdog`] (one supervisor per target, which runs the target's loop),
//! [`notify`] (one delivery queue per notifier) and the Kubernetes release
//! source (a watch of its Deployment). Everything else is awaited where it
//! starts.

#![forbid(unsafe_code)]

pub mod api;
pub mod backtest;
pub mod client;
pub mod config;
pub mod daemon;
pub mod data_check;
pub mod demo;
pub mod exec;
pub mod http;
pub mod journal;
pub mod judge;
pub mod kubernetes;
pub mod leader;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod numeric;
pub mod pipeline;
pub mod probe;
pub mod release;
pub mod report;
pub mod state;
pub mod telemetry;
pub mod template;
pub mod time;
pub mod watchdog;

/// Exit code of a bad configuration (sysexits' EX_CONFIG); systemd's unit
/// lists it in RestartPreventExitStatus so a broken file is not retried.
pub const EXIT_BAD_CONFIG: i32 = 78;

/// Exit code of a command line that cannot be carried out as written (a
/// value that is not a duration or a time, a target the file does not
/// have), as clap exits on a usage error.
pub const EXIT_USAGE: u8 = 2;

/// Everything that can stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file is wrong.
    #[error("{0}")]
    Config(#[from] config::ConfigErrors),
    /// The journal cannot be opened or written.
    #[error("journal: {0}")]
    Journal(#[from] journal::JournalError),
    /// The HTTP API cannot listen.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The configured address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Any other I/O failure, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What rollguard was doing.
        context: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A short, stable label for metrics and exit-code mapping.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Journal(_) => "journal",
            Error::Listen { .. } => "listen",
            Error::Io { .. } => "io",
        }
    }

    /// The process exit code this error ends with.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) => EXIT_BAD_CONFIG,
            _ => 1,
        }
    }
}
