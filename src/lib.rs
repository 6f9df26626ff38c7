//! rollguard watches every release of a service and, when the release breaks
//! the service, rolls it back by itself, or, in shadow mode, says exactly
//! when and why it would have.
//!
//! # Layout
//!
//! - [`config`]: the TOML file as typed structs, validated as a whole, every
//!   error with its key path and line.
//! - [`model`]: plain data in the runbook's words (severity, data impact,
//!   decision, mode).
//! - [`judge`]: pure, no I/O: turns each tick's observation into an
//!   assessment (severity, data impact, time to fix, evidence) and the
//!   decision matrix into a decision.
//! - [`journal`]: the durable, append-only record of every event; what makes
//!   a crash harmless.
//! - [`metrics`]: rollguard's own Prometheus metrics.
//! - [`state`]: what the running daemon knows, shared with the HTTP API.
//! - [`leader`]: leader election on a Kubernetes Lease across replicas;
//!   only the leader acts.
//! - [`release`]: release sources (version URL, symlink, Kubernetes) and the tracker
//!   that turns versions seen over time into releases and rollbacks.
//! - [`notify`]: notifications (webhook, Slack, command) in the runbook's
//!   words, delivered in the background with retries, never delaying a
//!   rollback.
//! - [`probe`]: HTTP health probes and the shared HTTP client.
//! - [`exec`]: child processes: never a shell, own process group, time
//!   limits that stop the whole group, bounded output.
//! - [`data_check`]: what a rollback would do to data (`none`, `minor`,
//!   `major`); a check that cannot tell counts as `major`.
//! - [`pipeline`]: the rollback steps (one file per kind), the runner that
//!   journals each step before it acts, and shadow-mode descriptions.
//! - [`kubernetes`]: Deployments changed as `kubectl` 1.32 changes them
//!   (`rollout undo`, `set image`, `scale`, `rollout status`) and the
//!   shared, lazily built client. Named so as not to clash with the `kube`
//!   crate.
//! - [`watchdog`]: one task per target; the only place that spawns
//!   long-lived tasks.
//! - [`api`]: HTTP: health, readiness, metrics, status, events, control.
//! - [`daemon`]: start-up, signals (reload, shutdown), sd_notify, shutdown.
//! - [`telemetry`]: logs via tracing, text or JSON.
//! - [`template`]: `{{variable}}` rendering, never through a shell.
//! - [`client`]: the CLI's side of the HTTP API (`rollguard status`).
//! - [`backtest`]: `rollguard backtest --replay`: the judge and the matrix
//!   over recorded releases, tick by tick.
//! - [`demo`]: a steerable service (version, health, error ratio, latency,
//!   `/metrics`) for the demo, the end-to-end tests and the benchmark.
//!
//! Dependencies point one way: `daemon -> {watchdog, api} -> {journal,
//! metrics, state} -> {config, model}`.

#![forbid(unsafe_code)]

pub mod api;
pub mod backtest;
pub mod client;
pub mod config;
pub mod daemon;
pub mod data_check;
pub mod demo;
pub mod exec;
pub mod journal;
pub mod judge;
pub mod kubernetes;
pub mod leader;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod pipeline;
pub mod probe;
pub mod release;
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
