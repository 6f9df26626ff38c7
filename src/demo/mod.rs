//! A small service whose health, version and traffic can be steered: what
//! the demo deploys, what the end-to-end tests and the benchmark watch.
//!
//! - [`service`]: [`DemoService`], an HTTP server with `/version`,
//!   `/health` and `/metrics`, and a synthetic traffic generator behind
//!   its counters.
//! - [`traffic`]: the counters and the deterministic generator that feeds
//!   them.
//!
//! # Releases as directories
//!
//! In symlink mode ([`DemoService::follow_symlink`]) the running version is
//! the name of the directory that the `current` link points at, and the
//! release directory decides how the service behaves:
//!
//! - a file named `broken` makes the release bad: `/health` answers 503 and
//!   half of the requests fail;
//! - a `behaviour.toml` sets any of `healthy` (bool), `error_ratio` (0..1),
//!   `latency_ms`, `rate` and `error_code` (the status its failures are
//!   counted under, 500 by default: another one plays a release that
//!   relabels its errors) for that release.
//!
//! Anything not set by the release comes from the handle's controls. So
//! repointing the link to a previous, good release (which is what a
//! rollback does) really restores health, with nothing else to undo.

pub mod query;
pub mod run;
pub mod service;
pub mod traffic;

pub use service::DemoService;
