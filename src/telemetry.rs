//! Logs via tracing: text for people, JSON for pipelines. The level comes
//! from RUST_LOG when set, otherwise from `daemon.log_level`. Text logs are
//! coloured only on a terminal: in a file or the systemd journal, ANSI
//! escape codes would be noise.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Call once, before the runtime does work.
/// `rust_log` is RUST_LOG's value and `colour` the answer of [`colour`],
/// passed in so tests never read the process environment.
pub fn init(format: LogFormat, level: &str, rust_log: Option<&str>, colour: bool) {
    let filter = rust_log
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Whether text logs are coloured: only when stderr is a terminal, and
/// never when `NO_COLOR` is set to anything but the empty string
/// (no-color.org).
pub fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
        assert!(!colour(false, Some(OsStr::new("1"))));
    }
}
