//! The ranges configured durations and counts must stay in.
//!
//! Without them `bake_window = "10000y"` passed `check` and overflowed the
//! time arithmetic of the first release, and `retries` could make a step
//! back off for centuries. Each maximum is far beyond any sensible setting
//! and well inside what `Instant`/`SystemTime` arithmetic and the journal
//! can hold; each minimum rules out zero or nanosecond values that cannot
//! work. docs/configuration.md lists the same values.

use super::problems::Problems;
use super::size::ByteSize;
use std::time::Duration;

/// The smallest and largest value a duration key accepts, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Smallest value.
    pub min: Duration,
    /// Largest value.
    pub max: Duration,
}

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(60 * 60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// `target.interval` and `target.release.poll_interval`: a tick needs time
/// for its probes and queries; an hour between ticks no longer watches a
/// release. The floor is the shortest tick the whole-daemon tests run (a
/// release judged in a second); ticks that come faster than their requests
/// finish are bounded by `prometheus.max_concurrent_queries` and
/// `daemon.max_concurrent_probes`, not by this minimum.
pub const INTERVAL: Bounds = Bounds {
    min: Duration::from_millis(100),
    max: HOUR,
};

/// `target.bake_window` (also at least `interval`): a week of close watch.
pub const BAKE_WINDOW: Bounds = Bounds {
    min: Duration::ZERO,
    max: Duration::from_secs(7 * 24 * 60 * 60),
};

/// `target.cooldown`: zero is no cooldown.
pub const COOLDOWN: Bounds = Bounds {
    min: Duration::ZERO,
    max: Duration::from_secs(30 * 24 * 60 * 60),
};

/// `target.verify_timeout`: a round of checks takes seconds; a day is
/// no longer a rollback being verified.
pub const VERIFY_TIMEOUT: Bounds = Bounds {
    min: SECOND,
    max: DAY,
};

/// `target.time_to_fix` and `policy.rule.time_to_fix_over`.
pub const TIME_TO_FIX: Bounds = COOLDOWN;

/// The shortest time limit of a request or a program: below it not even
/// a connection on the same host and an answer fit (a `1ms` timeout made
/// every probe fail and every query inconclusive), and no program starts.
const SHORTEST_LIMIT: Duration = Duration::from_millis(100);

/// Time limits of one request: `prometheus.timeout`, metric, probe and
/// notifier `timeout`.
pub const REQUEST_TIMEOUT: Bounds = Bounds {
    min: SHORTEST_LIMIT,
    max: Duration::from_secs(5 * 60),
};

/// `target.data_check.timeout`.
pub const DATA_CHECK_TIMEOUT: Bounds = Bounds {
    min: SHORTEST_LIMIT,
    max: HOUR,
};

/// `target.step.timeout`, which also bounds `verify` and
/// `kubernetes_rollout_status`, and a `wait` step's `duration`.
pub const STEP_TIMEOUT: Bounds = Bounds {
    min: SHORTEST_LIMIT,
    max: DAY,
};

/// `bluegreen_switch`'s `probe_interval`, the pause between two rounds of
/// health checks of the new colour: zero asked the service as fast as it
/// answers (hundreds of requests a second).
pub const SWITCH_PROBE_INTERVAL: Bounds = Bounds {
    min: Duration::from_millis(10),
    max: HOUR,
};

/// `target.step.backoff`: the wait before a retry, doubled for each next
/// one and never longer than this maximum.
pub const STEP_BACKOFF: Bounds = Bounds {
    min: Duration::ZERO,
    max: HOUR,
};

/// `prometheus.min_window`: `rate()` needs samples, a window is a window.
pub const MIN_WINDOW: Bounds = Bounds {
    min: SECOND,
    max: HOUR,
};

/// `target.metric.baseline_window`.
pub const BASELINE_WINDOW: Bounds = Bounds {
    min: SECOND,
    max: Duration::from_secs(7 * 24 * 60 * 60),
};

/// `daemon.shutdown_grace`: zero records a running step as interrupted at
/// once; systemd's own stop timeout should be longer than the maximum.
pub const SHUTDOWN_GRACE: Bounds = Bounds {
    min: Duration::ZERO,
    max: HOUR,
};

/// `daemon.journal_retention`: at least a day, so that a report about
/// yesterday's incident is always whole; at most ten years.
pub const JOURNAL_RETENTION: Bounds = Bounds {
    min: Duration::from_secs(24 * 60 * 60),
    // humantime's "10y" (its years are 365.25 days).
    max: Duration::from_secs(315_576_000),
};

/// `daemon.monitoring_notice_after`: zero tells every change at once; an
/// hour is longer than most bake windows, beyond which a notice would
/// come too late to matter.
pub const MONITORING_NOTICE_AFTER: Bounds = Bounds {
    min: Duration::ZERO,
    max: HOUR,
};

/// `daemon.leader_election.duration` (also whole seconds).
pub const LEASE_DURATION: Bounds = Bounds {
    min: SECOND,
    max: HOUR,
};

/// `prometheus.max_concurrent_queries`: at least one query must go out;
/// more than this would come close to Prometheus' own connection limit
/// (`--web.max-connections`, 512 by default).
pub const MAX_CONCURRENT_QUERIES: usize = 256;

/// `daemon.max_concurrent_probes`: at least one; the maximum stays well
/// inside the unit's `LimitNOFILE` (systemd/rollguard.service).
pub const MAX_CONCURRENT_PROBES: usize = 1024;

/// `prometheus.max_response_bytes`: below 64 KiB a long range baseline
/// (up to Prometheus' 11,000 points) no longer fits; above 256 MiB the bound no longer protects the
/// daemon's memory (16 such answers in flight are 4 GiB).
pub const MAX_RESPONSE_BYTES: (ByteSize, ByteSize) = (ByteSize::kib(64), ByteSize::mib(256));

/// `prometheus.max_series`: at least the one series a metric needs; more
/// than this is counting for its own sake.
pub const MAX_SERIES: usize = 100_000;

/// Records a problem at `path` when `size` is outside `bounds` (both
/// included).
pub(crate) fn check_size(
    size: ByteSize,
    bounds: (ByteSize, ByteSize),
    path: &str,
    problems: &mut Problems,
) {
    let (min, max) = bounds;
    if size < min {
        problems.push(path, format!("must be at least {min}"));
    } else if size > max {
        problems.push(
            path,
            format!("must be at most {max} (rollguard's limit for this key)"),
        );
    }
}

/// Records a problem at `path` when `count` is not within `1..=max`.
pub(crate) fn check_count(count: usize, max: usize, path: &str, problems: &mut Problems) {
    if count == 0 {
        problems.push(path, "must be at least 1");
    } else if count > max {
        problems.push(
            path,
            format!("must be at most {max} (rollguard's limit for this key)"),
        );
    }
}

/// Most `retries` of a step or a notifier.
pub const MAX_RETRIES: u32 = 100;

/// Records a problem at `path` when `d` is outside `bounds`.
pub(crate) fn check(d: Duration, bounds: Bounds, path: &str, problems: &mut Problems) {
    let shown = |d: Duration| humantime::format_duration(d).to_string();
    if d < bounds.min {
        problems.push(path, format!("must be at least {}", shown(bounds.min)));
    } else if d > bounds.max {
        problems.push(
            path,
            format!(
                "must be at most {} (rollguard's limit for this key)",
                shown(bounds.max)
            ),
        );
    }
}

/// Records a problem at `path` when `retries` is above [`MAX_RETRIES`].
pub(crate) fn check_retries(retries: u32, path: &str, problems: &mut Problems) {
    if retries > MAX_RETRIES {
        problems.push(path, format!("must be at most {MAX_RETRIES}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_outside_the_bounds_are_problems() {
        let mut problems = Problems::default();
        check(HOUR, INTERVAL, "a", &mut problems);
        check(Duration::from_millis(100), INTERVAL, "a", &mut problems);
        assert!(problems.is_empty());
        check(Duration::from_millis(99), INTERVAL, "a", &mut problems);
        check(HOUR + Duration::from_secs(60), INTERVAL, "a", &mut problems);
        check(Duration::from_nanos(1), STEP_TIMEOUT, "a", &mut problems);
        check(Duration::ZERO, SWITCH_PROBE_INTERVAL, "a", &mut problems);
        check_retries(MAX_RETRIES + 1, "a", &mut problems);
        assert_eq!(problems.len(), 5);
    }
}
