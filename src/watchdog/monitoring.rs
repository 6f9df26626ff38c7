//! Whether to tell that monitoring is down, or back: a debounce over the
//! ticks' failed queries (`daemon.monitoring_notice_after`).
//!
//! An outage starts at the first tick with a failed metric query and ends
//! once every query has answered for `notice_after` in a row. "Down" is
//! said on a failing tick once the outage has lasted `notice_after`;
//! "back" once it has ended, with how long it lasted, how many ticks
//! failed and how often monitoring came back only to fail again (flaps).
//! An outage that ends before "down" was said is never told. So a
//! Prometheus failing every other tick gives one "down" and one "back",
//! not a notice per tick.
//!
//! Pure: the caller passes the time (the injected clock) and the tick's
//! errors, and sends what comes back.

use std::time::{Duration, SystemTime};

/// One outage of monitoring, from its first failed tick.
#[derive(Debug, Clone, PartialEq)]
struct Outage {
    /// The first failed tick.
    started: SystemTime,
    /// The first tick of the current run of answered ones; `None` while
    /// queries fail.
    answering_since: Option<SystemTime>,
    /// Ticks with a failed query.
    failures: u32,
    /// Times monitoring answered again, then failed again.
    flaps: u32,
    /// Whether "down" was said.
    told: bool,
}

/// What to tell about monitoring after a tick.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitoringNotice {
    /// Monitoring has been failing for at least `notice_after`.
    Down {
        /// This tick's failed queries, one reason each.
        errors: Vec<String>,
        /// Since the first failed tick.
        lasted: Duration,
        /// Failed ticks so far.
        failures: u32,
        /// Returns that did not last, so far.
        flaps: u32,
    },
    /// Monitoring has answered for `notice_after` after a told outage.
    Back {
        /// From the first failed tick to the first tick of the return that
        /// lasted.
        lasted: Duration,
        /// Failed ticks during the outage.
        failures: u32,
        /// Returns that did not last.
        flaps: u32,
    },
}

impl MonitoringNotice {
    /// The outage in words, for the notification and the log:
    /// `for 1m 10s: 8 failed ticks, 3 brief returns`.
    pub fn summary(&self) -> String {
        let (lasted, failures, flaps) = match self {
            MonitoringNotice::Down {
                lasted,
                failures,
                flaps,
                ..
            }
            | MonitoringNotice::Back {
                lasted,
                failures,
                flaps,
            } => (*lasted, *failures, *flaps),
        };
        let plural =
            |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let lasted = crate::http::human_duration(Duration::from_secs(lasted.as_secs()));
        let mut text = format!(
            "for {lasted}: {}",
            plural(failures, "failed tick", "failed ticks")
        );
        if flaps > 0 {
            text.push_str(&format!(
                ", {}",
                plural(flaps, "brief return", "brief returns")
            ));
        }
        text
    }
}

/// The debounce of one bake window's monitoring notices.
#[derive(Debug, Clone, Default)]
pub struct MonitoringWatch {
    /// The outage going on, told or not.
    outage: Option<Outage>,
}

impl MonitoringWatch {
    /// Whether "monitoring is down" has been said and "back" not yet.
    pub fn told_down(&self) -> bool {
        self.outage.as_ref().is_some_and(|o| o.told)
    }

    /// Takes in one tick at `now` with its failed queries (`errors`,
    /// empty when every query answered); what to tell, if anything, of
    /// outages that last `notice_after` (`daemon.monitoring_notice_after`,
    /// read each tick so that a reload applies at once).
    pub fn tick(
        &mut self,
        now: SystemTime,
        errors: Vec<String>,
        notice_after: Duration,
    ) -> Option<MonitoringNotice> {
        let since = |t: SystemTime| now.duration_since(t).unwrap_or_default();
        if errors.is_empty() {
            let outage = self.outage.as_mut()?;
            let back_at = *outage.answering_since.get_or_insert(now);
            if since(back_at) < notice_after {
                return None;
            }
            let outage = self.outage.take()?;
            let lasted = back_at.duration_since(outage.started).unwrap_or_default();
            if !outage.told {
                tracing::debug!(failures = outage.failures, lasted = ?lasted, "Monitoring failed briefly; not told");
                return None;
            }
            return Some(MonitoringNotice::Back {
                lasted,
                failures: outage.failures,
                flaps: outage.flaps,
            });
        }
        let outage = self.outage.get_or_insert(Outage {
            started: now,
            answering_since: None,
            failures: 0,
            flaps: 0,
            told: false,
        });
        outage.failures = outage.failures.saturating_add(1);
        if outage.answering_since.take().is_some() {
            outage.flaps = outage.flaps.saturating_add(1);
        }
        if outage.told || since(outage.started) < notice_after {
            return None;
        }
        outage.told = true;
        Some(MonitoringNotice::Down {
            errors,
            lasted: since(outage.started),
            failures: outage.failures,
            flaps: outage.flaps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_secs(5);

    /// Feeds one tick per entry (`true`: a failed query), 5 s apart;
    /// returns what was told, with the tick it was told at.
    fn run(
        watch: &mut MonitoringWatch,
        notice_after: Duration,
        failing: &[bool],
    ) -> Vec<(usize, MonitoringNotice)> {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        failing
            .iter()
            .enumerate()
            .filter_map(|(i, &fails)| {
                let errors = if fails {
                    vec!["error_rate: connection refused".to_owned()]
                } else {
                    Vec::new()
                };
                let now = start + TICK * i as u32;
                watch.tick(now, errors, notice_after).map(|n| (i, n))
            })
            .collect()
    }

    #[test]
    fn a_flapping_source_is_one_down_one_back_and_a_count() {
        let mut watch = MonitoringWatch::default();
        let after = Duration::from_secs(30);
        // Failing every other tick for 45 s, then answering for good.
        let mut ticks: Vec<bool> = (0..10).map(|i| i % 2 == 0).collect();
        ticks.extend([false; 8]);
        let told = run(&mut watch, after, &ticks);
        assert_eq!(told.len(), 2, "{told:?}");
        let (at, down) = &told[0];
        assert_eq!(*at, 6, "said on the first failing tick 30 s in");
        assert!(
            matches!(
                down,
                MonitoringNotice::Down {
                    failures: 4,
                    flaps: 3,
                    ..
                }
            ),
            "{down:?}"
        );
        let (at, back) = &told[1];
        // The last failure is tick 8; answering since tick 9, 30 s later
        // is tick 15.
        assert_eq!(*at, 15);
        assert_eq!(
            back,
            &MonitoringNotice::Back {
                lasted: Duration::from_secs(45),
                failures: 5,
                flaps: 4
            }
        );
        assert_eq!(back.summary(), "for 45s: 5 failed ticks, 4 brief returns");
        assert!(!watch.told_down());
    }

    #[test]
    fn an_outage_shorter_than_the_delay_is_never_told() {
        let mut watch = MonitoringWatch::default();
        let after = Duration::from_secs(30);
        let mut ticks = vec![true; 6]; // 25 s of failures
        ticks.extend([false; 10]);
        assert_eq!(run(&mut watch, after, &ticks), []);
        // ...and the next outage counts from its own start.
        let told = run(&mut watch, after, &[true; 7]);
        assert_eq!(told.len(), 1);
        assert!(matches!(
            told[0],
            (
                6,
                MonitoringNotice::Down {
                    failures: 7,
                    flaps: 0,
                    ..
                }
            )
        ));
    }

    #[test]
    fn a_steady_outage_is_told_once_each_way() {
        let mut watch = MonitoringWatch::default();
        let after = Duration::from_secs(10);
        let mut ticks = vec![true; 20];
        ticks.extend([false; 5]);
        let told = run(&mut watch, after, &ticks);
        assert_eq!(told.len(), 2, "{told:?}");
        assert_eq!(told[0].0, 2);
        assert!(watch.outage.is_none());
        assert_eq!(
            told[1],
            (
                22,
                MonitoringNotice::Back {
                    lasted: Duration::from_secs(100),
                    failures: 20,
                    flaps: 0
                }
            )
        );
        assert_eq!(told[1].1.summary(), "for 1m 40s: 20 failed ticks");
    }

    #[test]
    fn zero_tells_every_change_at_once() {
        let mut watch = MonitoringWatch::default();
        let after = Duration::ZERO;
        let told = run(&mut watch, after, &[true, false, true, false]);
        let kinds: Vec<(usize, bool)> = told
            .iter()
            .map(|(i, n)| (*i, matches!(n, MonitoringNotice::Down { .. })))
            .collect();
        assert_eq!(kinds, [(0, true), (1, false), (2, true), (3, false)]);
    }
}
