//! The watchdog's wall clock, injected so that tests can drive it.
//!
//! Bake windows, cooldowns and approval deadlines are wall-clock times
//! (they are journaled and survive a restart), so the daemon reads
//! [`SystemTime`]. A test cannot move `SystemTime`, but it can pause and
//! advance tokio's clock: [`Clock::following_tokio`] is a wall clock that
//! moves with it, so that `tokio::time::advance` ends a cooldown or a bake
//! window without a real sleep.

use std::time::SystemTime;
use tokio::time::Instant;

/// Where the watchdog reads the time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// `None`: the system clock. `Some`: the wall time at an instant of
    /// tokio's clock, from which it moves as tokio's clock does.
    anchor: Option<(SystemTime, Instant)>,
}

impl Clock {
    /// The system clock: what the daemon uses.
    pub fn system() -> Clock {
        Clock { anchor: None }
    }

    /// A clock that starts at the system time and then moves with tokio's
    /// clock, paused and advanced by tests (`tokio::time::pause`). Must be
    /// made inside a tokio runtime.
    pub fn following_tokio() -> Clock {
        Clock {
            anchor: Some((SystemTime::now(), Instant::now())),
        }
    }

    /// The time of day.
    pub fn now(&self) -> SystemTime {
        match self.anchor {
            None => SystemTime::now(),
            Some((wall, instant)) => wall + instant.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_moves_only_with_tokio_time() {
        let clock = Clock::following_tokio();
        let start = clock.now();
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(clock.now(), start + Duration::from_secs(600));
        assert_eq!(clock.now(), start + Duration::from_secs(600), "paused");
    }

    #[test]
    fn the_system_clock_is_the_system_time() {
        let before = SystemTime::now();
        let now = Clock::system().now();
        assert!(now >= before && now <= SystemTime::now());
    }
}
