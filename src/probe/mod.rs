//! HTTP health probes and Prometheus queries. The HTTP plumbing they share
//! with release sources, steps and notifiers is [`crate::http`].
//!
//! - [`health`]: one `[[target.probe]]` as a stateless check that turns a
//!   request into a [`health::ProbeOutcome`]. Counting consecutive failures
//!   is the judge's business, not the probe's.
//! - [`prometheus`]: `[[target.metric]]` PromQL queries and their baselines,
//!   each reduced to a [`crate::model::MetricSample`].

pub mod health;
pub mod prometheus;

pub use health::{HealthProbe, ProbeOutcome};
