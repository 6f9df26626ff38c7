//! A bake window: the close watch of one release, and what has already been
//! said and done about it, so that each notification and each action
//! happens once per release.

use super::monitoring::MonitoringWatch;
use crate::judge::Judge;
use crate::model::{DataImpact, Decision, DecisionRecord, Severity};
use crate::probe::prometheus::BaselineCache;
use serde::Serialize;
use std::time::SystemTime;

/// Why a window is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BakeKind {
    /// A new release, judged and rolled back if bad.
    Release,
    /// The version a rollback brought back: watched and reported on, never
    /// rolled back again automatically.
    Verification,
}

/// A pending request for a human's approval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    /// When it was asked for.
    #[serde(with = "humantime_serde")]
    pub requested_at: SystemTime,
    /// When it lapses: the end of the bake window.
    #[serde(with = "humantime_serde")]
    pub expires_at: SystemTime,
    /// Why it was asked for.
    pub reason: String,
}

/// One release under close watch.
#[derive(Debug)]
pub struct Bake {
    /// Journal and environment id of the release.
    pub release_id: String,
    /// The version being watched: the release, or in a verification
    /// window the version rollguard's rollback brought back.
    pub version: String,
    /// The version before it: for a release, what a rollback brings back.
    pub previous_version: Option<String>,
    /// When the release was seen (the baseline ends here).
    pub started: SystemTime,
    /// When the window closes.
    pub until: SystemTime,
    /// Release or post-rollback verification.
    pub kind: BakeKind,
    /// Streaks of the checks during this window.
    pub judge: Judge,
    /// What data checks said about rolling back, with their evidence.
    pub data_impact: (DataImpact, Vec<String>),
    /// The last decision reached.
    pub last: Option<DecisionRecord>,
    /// The worst severity already notified as `degraded`.
    pub notified_severity: Severity,
    /// Decisions already notified (forward_fix, consider_rollback, ...).
    pub notified: Vec<Decision>,
    /// Whether a rollback was started (or would have been, in shadow mode).
    pub acted: bool,
    /// Whether a rollback pipeline was started for this release (before a
    /// restart too): its window then ends as `rollback` whatever the judge
    /// says of the version brought back, so that a rolled-back release is
    /// never journaled as healthy.
    pub rolled_back: bool,
    /// A rollback waiting for approval.
    pub approval: Option<Approval>,
    /// Monitoring outages during this window, so that "monitoring is
    /// down" and "back" are said once per outage, after it has lasted
    /// `daemon.monitoring_notice_after`.
    pub monitoring: MonitoringWatch,
    /// Count metrics already said to be blind (`metric_blind`) in this
    /// window, by name: once per metric and release.
    pub blind_told: Vec<String>,
    /// The release's pre-release baselines, fetched once and dropped with
    /// the window.
    pub baselines: BaselineCache,
}

impl Bake {
    /// A fresh window.
    pub fn new(
        release_id: String,
        version: String,
        previous_version: Option<String>,
        started: SystemTime,
        kind: BakeKind,
        judge: Judge,
        bake_window: std::time::Duration,
    ) -> Bake {
        Bake {
            release_id,
            version,
            previous_version,
            started,
            until: crate::time::later(started, bake_window),
            kind,
            judge,
            data_impact: (DataImpact::None, Vec::new()),
            last: None,
            notified_severity: Severity::None,
            notified: Vec::new(),
            acted: false,
            rolled_back: false,
            approval: None,
            monitoring: MonitoringWatch::default(),
            blind_told: Vec::new(),
            baselines: BaselineCache::default(),
        }
    }

    /// Whether `decision` is said for the first time in this window
    /// (and remembers that it now has been).
    pub fn first_time(&mut self, decision: Decision) -> bool {
        if self.notified.contains(&decision) {
            return false;
        }
        self.notified.push(decision);
        true
    }

    /// What the API shows about this window.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "release_id": self.release_id,
            // The API's names: from the version before to the one watched.
            "from": self.previous_version,
            "to": self.version,
            "kind": self.kind,
            "started_at": humantime::format_rfc3339_seconds(self.started).to_string(),
            "until": humantime::format_rfc3339_seconds(self.until).to_string(),
            "data_impact": self.data_impact.0,
            "acted": self.acted,
        })
    }
}
