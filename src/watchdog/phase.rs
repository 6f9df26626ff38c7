//! When in its period each target ticks.
//!
//! Were every target to tick at the same instant, a fleet of 1,000 would
//! send its probes and queries in one burst every interval. Instead each
//! target ticks at its own **phase**: the offset, within the period, of the
//! FNV-1a hash of its name (64 bits, modulo the period in milliseconds).
//! A target named `api` with `interval = "10s"` ticks whenever the Unix
//! time in milliseconds modulo 10,000 equals that offset, on every replica
//! and after every restart; names spread a fleet evenly over the period.

use super::Clock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A ticker of `period` on `name`'s phase: its first tick is the next
/// instant of the phase by `clock`, within one period. After a tick slower
/// than the period, the one it missed comes at once and the next on the
/// phase: never a burst, and a slow tick does not move the target's phase.
pub fn ticker(name: &str, period: Duration, clock: &Clock) -> tokio::time::Interval {
    let wait = until_next(name, period, clock.now());
    let first = crate::time::deadline(tokio::time::Instant::now(), wait);
    let mut ticker = tokio::time::interval_at(first, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    ticker
}

/// FNV-1a, 64 bits: stable across Rust versions and platforms, unlike the
/// standard library's hasher.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The milliseconds of `period`, at least 1.
fn period_ms(period: Duration) -> u64 {
    u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Where in `period` the target `name` ticks.
pub fn offset(name: &str, period: Duration) -> Duration {
    Duration::from_millis(fnv1a(name) % period_ms(period))
}

/// How long from `now` until `name`'s next tick at `period`: more than
/// zero, at most one period.
pub fn until_next(name: &str, period: Duration, now: SystemTime) -> Duration {
    let period = period_ms(period);
    let now_ms = u64::try_from(
        now.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX);
    let offset =
        u64::try_from(offset(name, Duration::from_millis(period)).as_millis()).unwrap_or_default();
    let wait = (offset + period - now_ms % period) % period;
    Duration::from_millis(if wait == 0 { period } else { wait })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where in the period `clock` is now.
    fn position(clock: &Clock, period: Duration) -> u128 {
        let now = clock.now().duration_since(UNIX_EPOCH).expect("after 1970");
        now.as_millis() % period.as_millis()
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_ticks_on_its_phase_and_keeps_it_after_a_slow_tick() {
        let clock = Clock::following_tokio();
        let period = Duration::from_secs(10);
        let phase = offset("checkout", period).as_millis();
        let mut ticker = ticker("checkout", period, &clock);
        let started = tokio::time::Instant::now();
        ticker.tick().await;
        assert!(started.elapsed() <= period);
        assert_eq!(position(&clock, period), phase);
        ticker.tick().await;
        assert_eq!(position(&clock, period), phase);
        // A tick that took two and a half periods: the one it missed
        // comes at once, the next on the phase again, not a whole period
        // after it.
        tokio::time::advance(Duration::from_millis(25_000)).await;
        ticker.tick().await;
        assert_eq!(position(&clock, period), (phase + 5_000) % 10_000);
        ticker.tick().await;
        assert_eq!(position(&clock, period), phase);
        // Another target of the fleet ticks at its own phase.
        let mut other = super::ticker("payments", period, &clock);
        other.tick().await;
        assert_eq!(
            position(&clock, period),
            offset("payments", period).as_millis()
        );
        assert_ne!(offset("payments", period), offset("checkout", period));
    }

    #[test]
    fn the_phase_is_a_stable_hash_of_the_name() {
        // FNV-1a test vectors.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
        let period = Duration::from_secs(10);
        assert_eq!(offset("api", period), offset("api", period));
        assert!(offset("api", period) < period);
    }

    #[test]
    fn a_fleet_spreads_evenly_over_the_period() {
        let period = Duration::from_secs(10);
        let mut buckets = [0u32; 10];
        for i in 0..1_000 {
            let at = offset(&format!("service-{i}"), period);
            buckets[at.as_secs() as usize] += 1;
        }
        // 100 expected in each second of the period.
        for (second, count) in buckets.iter().enumerate() {
            assert!((70..=130).contains(count), "second {second}: {buckets:?}");
        }
    }

    #[test]
    fn the_next_tick_falls_on_the_phase_within_one_period() {
        let period = Duration::from_secs(10);
        let phase = offset("api", period);
        for ms in [0u64, 1, 4_999, 10_000, 1_733_000_123_456] {
            let now = UNIX_EPOCH + Duration::from_millis(ms);
            let wait = until_next("api", period, now);
            assert!(wait > Duration::ZERO && wait <= period, "{ms}: {wait:?}");
            let at = (now + wait).duration_since(UNIX_EPOCH).expect("after");
            assert_eq!(at.as_millis() % 10_000, phase.as_millis(), "{ms}");
        }
        // On the phase itself: the next one, a whole period on.
        let on = UNIX_EPOCH + Duration::from_secs(1_000_000) + phase;
        assert_eq!(until_next("api", period, on), period);
    }
}
