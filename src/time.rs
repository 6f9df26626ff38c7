//! Time arithmetic that saturates instead of panicking.
//!
//! Durations come from the configuration and from the HTTP API; validation
//! bounds them, but a clock plus a duration must never be able to panic a
//! target's loop whatever slips through: a time past what the platform can
//! hold is "never", far in the future.

use std::time::{Duration, SystemTime};

/// A wall-clock time that no deadline reaches: the year 10000 or so.
fn far_future() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_800)
}

/// `at + after`, or far in the future when that cannot be held.
pub fn later(at: SystemTime, after: Duration) -> SystemTime {
    at.checked_add(after)
        .map_or_else(far_future, |t| t.min(far_future()))
}

/// `at + after` on tokio's monotonic clock, or thirty years on when that
/// cannot be held.
pub fn deadline(at: tokio::time::Instant, after: Duration) -> tokio::time::Instant {
    const THIRTY_YEARS: Duration = Duration::from_secs(30 * 365 * 86_400);
    at.checked_add(after.min(THIRTY_YEARS))
        .or_else(|| at.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(at)
}

/// `at` in UTC as `YYYYMMDDTHHMMSSZ` (ISO 8601 basic format): one word
/// that sorts by time and fits in a file name, as `{{timestamp}}` gives it
/// to a backup's argv. A time before 1970 or past 9999 (which humantime's
/// formatter refuses with a panic) is clamped to the nearest it can show.
pub fn compact_utc(at: SystemTime) -> String {
    let shown = at
        .max(SystemTime::UNIX_EPOCH)
        .min(far_future() - Duration::from_secs(1));
    humantime::format_rfc3339_seconds(shown)
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_utc_is_one_sortable_word() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_705_320_000);
        assert_eq!(compact_utc(at), "20240115T120000Z");
        assert_eq!(compact_utc(SystemTime::UNIX_EPOCH), "19700101T000000Z");
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(compact_utc(before), "19700101T000000Z");
        assert_eq!(compact_utc(later(at, Duration::MAX)), "99991231T235959Z");
    }

    #[test]
    fn huge_durations_saturate_instead_of_panicking() {
        let now = SystemTime::now();
        assert_eq!(
            later(now, Duration::from_secs(60)),
            now + Duration::from_secs(60)
        );
        let never = later(now, Duration::from_secs(u64::MAX));
        assert!(never > now + Duration::from_secs(1_000 * 365 * 86_400));
        assert_eq!(never, later(now, Duration::MAX));
        let start = tokio::time::Instant::now();
        assert_eq!(
            deadline(start, Duration::from_secs(5)),
            start + Duration::from_secs(5)
        );
        assert!(deadline(start, Duration::MAX) > start + Duration::from_secs(365 * 86_400));
    }
}
