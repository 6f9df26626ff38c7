//! The notices about what rollguard can see: monitoring down and back
//! (debounced, `super::super::monitoring`), and a count metric blind to
//! the release's errors.

use super::Actor;
use crate::model::{Assessment, CheckKind, Verdict};
use crate::notify::NotifyEvent;
use crate::watchdog::monitoring::MonitoringNotice;

impl Actor<'_> {
    /// Says "monitoring is down" once per outage that has lasted
    /// `daemon.monitoring_notice_after`, and "back" once it has been back
    /// as long, with what the outage was (see [`super::monitoring`]).
    /// Holding does not wait for the notice: a failed query is never
    /// judged, from the first tick.
    pub(super) fn monitoring(&mut self, assessment: &Assessment) {
        let errors: Vec<String> = assessment
            .evidence
            .iter()
            .filter(|e| e.kind == CheckKind::Metric && e.verdict == Verdict::Error)
            .map(|e| e.reason.clone())
            .collect();
        let now = self.now();
        let after = self.setup.monitoring_notice_after;
        let Some(notice) = self.bake.monitoring.tick(now, errors, after) else {
            return;
        };
        let summary = notice.summary();
        match notice {
            MonitoringNotice::Down { errors, .. } => {
                tracing::warn!(target_name = %self.name(), errors = ?errors, outage = %summary, "Monitoring is down: holding, no automatic rollback until it is back");
                let n = self
                    .notification(NotifyEvent::MonitoringDown, None)
                    .with_detail(format!("{}; failing {summary}", errors.join("; ")))
                    .with_reasons(errors);
                self.notify(n);
            }
            MonitoringNotice::Back { .. } => {
                let summary = format!("down {summary}");
                tracing::info!(target_name = %self.name(), outage = %summary, "Monitoring is back");
                let n = self
                    .notification(NotifyEvent::MonitoringRecovered, None)
                    .with_detail(summary);
                self.notify(n);
            }
        }
    }

    /// Tells, once per metric and release, that a count metric cannot see
    /// the release's errors (its evidence names the query).
    pub(super) fn blind(&mut self, assessment: &Assessment) {
        for evidence in &assessment.evidence {
            let Some(query) = &evidence.blind else {
                continue;
            };
            if self.bake.blind_told.contains(&evidence.check) {
                continue;
            }
            self.bake.blind_told.push(evidence.check.clone());
            tracing::warn!(target_name = %self.name(), check = %evidence.check, errors_query = %query, "A count metric cannot see the release's errors: holding on it");
            let n = self
                .notification(NotifyEvent::MetricBlind, None)
                .with_detail(evidence.reason.clone())
                .with_reasons(vec![evidence.reason.clone()]);
            self.notify(n);
        }
    }
}
