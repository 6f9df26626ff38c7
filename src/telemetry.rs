//! Logs via tracing: text for people, JSON for pipelines. The level comes
//! from RUST_LOG when set, otherwise from `daemon.log_level`.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Call once, before the runtime does work.
/// `rust_log` is RUST_LOG's value, passed in so tests never read the process
/// environment.
pub fn init(format: LogFormat, level: &str, rust_log: Option<&str>) {
    let filter = rust_log
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
