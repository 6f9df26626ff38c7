//! HTTP health probes, and the HTTP plumbing they share with the polling
//! release sources.
//!
//! - [`http`]: the one `reqwest::Client` of the daemon, size-limited body
//!   reads and short, human descriptions of request failures.
//! - [`health`]: one `[[target.probe]]` as a stateless check that turns a
//!   request into a [`health::ProbeOutcome`]. Counting consecutive failures
//!   is the judge's business, not the probe's.
//! - [`prometheus`]: `[[target.metric]]` PromQL queries and their baselines,
//!   each reduced to a [`crate::model::MetricSample`].

pub mod health;
pub mod http;
pub mod prometheus;

pub use health::{HealthProbe, ProbeOutcome};
pub use http::http_client;
