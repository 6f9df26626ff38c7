//! Pure logic, no I/O: turns the versions a source reports over time into
//! release events, and tells rollguard's own rollbacks apart from releases.
//!
//! The first version seen after start is reported as
//! [`ReleaseChange::Initial`]: it is what was running, not a release to
//! judge. A daemon that restarts seeds the tracker from its journal with
//! [`ReleaseTracker::with_current`] so the running version is not even that.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a rollback is expected by default: long enough for a rolling
/// restart, short enough that a later deploy of the same version by a
/// human is judged like any release.
pub const DEFAULT_ROLLBACK_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// How a release came to rollguard's attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenBy {
    /// The target's release source reported a new version.
    Source,
    /// Somebody (CI, usually) announced it over the HTTP API.
    Announce,
}

/// What a newly seen version means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseChange {
    /// The first version seen after start, with nothing to compare it to:
    /// what is running, not a release. Worth recording, not judging.
    Initial {
        /// The running version.
        version: String,
        /// When it was first seen.
        at: SystemTime,
    },
    /// A new release: opens a bake window.
    Release {
        /// Unique id, `<target>-<unix ms>`; goes to the journal and to
        /// `ROLLGUARD_RELEASE_ID`.
        id: String,
        /// The version before, if known.
        from: Option<String>,
        /// The new version.
        to: String,
        /// When it was seen (or announced).
        at: SystemTime,
        /// Whether the source saw it or it was announced.
        seen_by: SeenBy,
    },
    /// rollguard's own rollback arriving: recorded, never judged, and so
    /// never rolled back again automatically.
    Rollback {
        /// Unique id, like a release's.
        id: String,
        /// The version rolled back from.
        from: Option<String>,
        /// The version rolled back to.
        to: String,
        /// When it was seen.
        at: SystemTime,
    },
}

impl ReleaseChange {
    /// Whether this change opens a bake window (is a release to judge).
    pub fn is_release(&self) -> bool {
        matches!(self, ReleaseChange::Release { .. })
    }

    /// The version running after this change.
    pub fn version(&self) -> &str {
        match self {
            ReleaseChange::Initial { version, .. } => version,
            ReleaseChange::Release { to, .. } | ReleaseChange::Rollback { to, .. } => to,
        }
    }
}

/// A rollback rollguard has started and whose arrival it is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ExpectedRollback {
    /// The version being rolled back to.
    to: String,
    /// After this, a change to `to` is no longer taken as rollguard's own.
    until: SystemTime,
}

/// The release that brought the running version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentRelease {
    /// Its id.
    pub id: String,
    /// The version it replaced, if known.
    pub previous: Option<String>,
}

/// One target's view of its versions over time.
#[derive(Debug, Clone)]
pub struct ReleaseTracker {
    /// The target's name, the prefix of release ids.
    target: String,
    /// The version running as last seen; `None` until the first sighting.
    current: Option<String>,
    /// The release that brought `current`, when it was a release (not the
    /// version running at start, nor rollguard's own rollback): its id and
    /// the version before it, what a manual rollback brings back.
    release: Option<CurrentRelease>,
    /// The rollback in flight, if any.
    expected_rollback: Option<ExpectedRollback>,
    /// How long an expected rollback stays expected.
    rollback_expiry: Duration,
    /// Milliseconds of the last id handed out, so two changes in the same
    /// millisecond (or after the clock stepped back) still get unique ids.
    last_id_ms: u128,
}

impl ReleaseTracker {
    /// A tracker that has seen nothing yet: its first sighting is
    /// [`ReleaseChange::Initial`].
    pub fn new(target: &str) -> ReleaseTracker {
        ReleaseTracker {
            target: target.to_owned(),
            current: None,
            release: None,
            expected_rollback: None,
            rollback_expiry: DEFAULT_ROLLBACK_EXPIRY,
            last_id_ms: 0,
        }
    }

    /// Seeds the running version (from the journal, after a restart), so
    /// that seeing it again is nothing and seeing another is a release.
    pub fn with_current(mut self, version: &str) -> ReleaseTracker {
        self.current = Some(version.to_owned());
        self
    }

    /// Seeds the release that brought the running version (from the
    /// journal, after a restart).
    pub fn with_release(mut self, release: Option<CurrentRelease>) -> ReleaseTracker {
        self.release = release;
        self
    }

    /// The release that brought the running version, when the tracker saw
    /// one (`None` for the version running at start and for a version
    /// rollguard's own rollback brought back: going back from it is a
    /// choice a person makes, not "the previous version").
    pub fn release(&self) -> Option<&CurrentRelease> {
        self.release.as_ref()
    }

    /// A fresh id, `<target>-<unix ms>`, for a rollback of a version that
    /// no release brought (it was running at start).
    pub fn new_id(&mut self, now: SystemTime) -> String {
        self.next_id(now)
    }

    /// Sets how long an expected rollback stays expected.
    pub fn with_rollback_expiry(mut self, expiry: Duration) -> ReleaseTracker {
        self.rollback_expiry = expiry;
        self
    }

    /// The version running as last seen.
    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// The version a rollback is expected to bring, if one is in flight
    /// and not expired at `now`.
    pub fn expected_rollback(&self, now: SystemTime) -> Option<&str> {
        self.expected_rollback
            .as_ref()
            .filter(|expected| now <= expected.until)
            .map(|expected| expected.to.as_str())
    }

    /// rollguard is about to roll back to `to`: when the version next
    /// changes to `to` (before `now` + the expiry, and before any other
    /// version shows up), it is reported as a [`ReleaseChange::Rollback`].
    pub fn expect_rollback(&mut self, to: &str, now: SystemTime) {
        self.expected_rollback = Some(ExpectedRollback {
            to: to.to_owned(),
            until: crate::time::later(now, self.rollback_expiry),
        });
    }

    /// Records a version reported by the release source. `None` when it is
    /// the version already running.
    pub fn observe(&mut self, version: &str, now: SystemTime) -> Option<ReleaseChange> {
        if self.current.is_none() && self.expected_rollback(now).is_none() {
            self.current = Some(version.to_owned());
            self.release = None;
            return Some(ReleaseChange::Initial {
                version: version.to_owned(),
                at: now,
            });
        }
        if self.current.as_deref() == Some(version) {
            return None;
        }
        let from = self.current.clone();
        Some(self.change(version, from, now, SeenBy::Source))
    }

    /// Records a release announced over the HTTP API. `previous` is the
    /// version the announcer says it replaced; the tracker's own current
    /// version is used when it is absent. An announcement of the version
    /// already running is a duplicate and returns `None`.
    pub fn announce(
        &mut self,
        version: &str,
        previous: Option<String>,
        now: SystemTime,
    ) -> Option<ReleaseChange> {
        if self.current.as_deref() == Some(version) {
            return None;
        }
        let from = previous.or_else(|| self.current.clone());
        Some(self.change(version, from, now, SeenBy::Announce))
    }

    /// A change to `version`: rollguard's rollback if one is expected for
    /// it, otherwise a release. Either way the expectation is settled.
    fn change(
        &mut self,
        version: &str,
        from: Option<String>,
        now: SystemTime,
        seen_by: SeenBy,
    ) -> ReleaseChange {
        let is_rollback = self.expected_rollback(now) == Some(version);
        // A different version, or an expired expectation, ends the wait.
        self.expected_rollback = None;
        self.current = Some(version.to_owned());
        let id = self.next_id(now);
        self.release = (!is_rollback).then(|| CurrentRelease {
            id: id.clone(),
            previous: from.clone(),
        });
        if is_rollback {
            ReleaseChange::Rollback {
                id,
                from,
                to: version.to_owned(),
                at: now,
            }
        } else {
            ReleaseChange::Release {
                id,
                from,
                to: version.to_owned(),
                at: now,
                seen_by,
            }
        }
    }

    /// `<target>-<unix ms>`, strictly increasing within this tracker.
    fn next_id(&mut self, now: SystemTime) -> String {
        let ms = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let ms = ms.max(self.last_id_ms + 1);
        self.last_id_ms = ms;
        format!("{}-{ms}", self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    #[test]
    fn first_version_is_initial_then_changes_are_releases() {
        let mut tracker = ReleaseTracker::new("api");
        let first = tracker.observe("v1", at(0));
        assert!(
            matches!(first, Some(ReleaseChange::Initial { ref version, .. }) if version == "v1")
        );
        assert_eq!(tracker.observe("v1", at(10)), None);
        match tracker.observe("v2", at(20)) {
            Some(ReleaseChange::Release {
                id,
                from,
                to,
                seen_by,
                ..
            }) => {
                assert_eq!(id, "api-1700000020000");
                assert_eq!(from.as_deref(), Some("v1"));
                assert_eq!(to, "v2");
                assert_eq!(seen_by, SeenBy::Source);
            }
            other => panic!("expected a release, got {other:?}"),
        }
        assert_eq!(tracker.current(), Some("v2"));
    }

    #[test]
    fn seeded_tracker_does_not_report_the_running_version() {
        let mut tracker = ReleaseTracker::new("api").with_current("v1");
        assert_eq!(tracker.observe("v1", at(0)), None);
        assert!(tracker.observe("v2", at(1)).is_some_and(|c| c.is_release()));
    }

    #[test]
    fn expected_rollback_is_recognised_once() {
        let mut tracker = ReleaseTracker::new("api").with_current("v2");
        tracker.expect_rollback("v1", at(0));
        assert_eq!(tracker.observe("v2", at(5)), None);
        assert!(matches!(
            tracker.observe("v1", at(10)),
            Some(ReleaseChange::Rollback { ref from, ref to, .. })
                if from.as_deref() == Some("v2") && to == "v1"
        ));
        assert_eq!(tracker.expected_rollback(at(11)), None);
        // The next change is an ordinary release again.
        assert!(
            tracker
                .observe("v2", at(20))
                .is_some_and(|c| c.is_release())
        );
    }

    #[test]
    fn expected_rollback_expires() {
        let mut tracker = ReleaseTracker::new("api")
            .with_current("v2")
            .with_rollback_expiry(Duration::from_secs(60));
        tracker.expect_rollback("v1", at(0));
        assert_eq!(tracker.expected_rollback(at(60)), Some("v1"));
        assert_eq!(tracker.expected_rollback(at(61)), None);
        assert!(
            tracker
                .observe("v1", at(61))
                .is_some_and(|c| c.is_release())
        );
    }

    #[test]
    fn another_version_cancels_the_expectation() {
        let mut tracker = ReleaseTracker::new("api").with_current("v2");
        tracker.expect_rollback("v1", at(0));
        assert!(tracker.observe("v3", at(1)).is_some_and(|c| c.is_release()));
        assert!(tracker.observe("v1", at(2)).is_some_and(|c| c.is_release()));
    }

    #[test]
    fn rollback_seen_before_any_version_is_still_a_rollback() {
        let mut tracker = ReleaseTracker::new("api");
        tracker.expect_rollback("v1", at(0));
        assert!(matches!(
            tracker.observe("v1", at(1)),
            Some(ReleaseChange::Rollback { from: None, .. })
        ));
    }

    #[test]
    fn announcements_are_releases_and_duplicates_are_ignored() {
        let mut tracker = ReleaseTracker::new("web");
        match tracker.announce("v7", Some("v6".into()), at(0)) {
            Some(ReleaseChange::Release {
                from, to, seen_by, ..
            }) => {
                assert_eq!(from.as_deref(), Some("v6"));
                assert_eq!(to, "v7");
                assert_eq!(seen_by, SeenBy::Announce);
            }
            other => panic!("expected a release, got {other:?}"),
        }
        assert_eq!(tracker.announce("v7", None, at(1)), None);
        match tracker.announce("v8", None, at(2)) {
            Some(ReleaseChange::Release { from, .. }) => assert_eq!(from.as_deref(), Some("v7")),
            other => panic!("expected a release, got {other:?}"),
        }
    }

    #[test]
    fn ids_are_unique_within_a_millisecond() {
        let mut tracker = ReleaseTracker::new("api").with_current("v0");
        let ids: Vec<String> = ["v1", "v2", "v3"]
            .iter()
            .filter_map(|v| match tracker.observe(v, at(0)) {
                Some(ReleaseChange::Release { id, .. }) => Some(id),
                _ => None,
            })
            .collect();
        assert_eq!(ids.len(), 3);
        assert!(ids[0] < ids[1] && ids[1] < ids[2], "{ids:?}");
    }

    #[test]
    fn remembers_the_release_that_brought_the_running_version() {
        let mut tracker = ReleaseTracker::new("api");
        tracker.observe("v1", at(0));
        assert_eq!(tracker.release(), None, "the version running at start");
        tracker.observe("v2", at(10));
        let release = tracker.release().cloned().expect("a release");
        assert_eq!(release.previous.as_deref(), Some("v1"));
        tracker.expect_rollback("v1", at(20));
        tracker.observe("v1", at(30));
        assert_eq!(tracker.release(), None, "rollguard's own rollback");
    }
}
