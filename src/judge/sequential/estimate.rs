//! A count metric's severity on its best estimate, once its test has
//! rejected (docs/judge.md, "Default severities").

use super::SequentialCheck;
use crate::config::MetricConfig;
use crate::judge::severity::{Reading, num, read_metric};
use crate::model::Severity;

/// The most severe level a count metric's best estimate may set: a human
/// is asked on the rate since the release; rolling back without asking
/// needs the level proven by the lower bound.
const BEST_ESTIMATE_CAP: Severity = Severity::Medium;

/// Once the test has shown a count metric worse than its baseline: when
/// the rate since the release (the best estimate, not its lower bound)
/// reaches a level the lower bound does not, up to
/// [`BEST_ESTIMATE_CAP`], that level is the severity, and the reason says
/// that more requests are needed to prove it. Without this a significant
/// ×3 at a few requests a second reads as `none` (its lower bound below
/// every level) and passes in silence.
pub(super) fn best_estimate(config: &MetricConfig, check: &SequentialCheck, reading: &mut Reading) {
    let Some(rate) = check.last.and_then(|c| c.rate()) else {
        return;
    };
    let Ok(best) = read_metric(config, rate, check.baseline) else {
        return;
    };
    let severity = best.severity.min(BEST_ESTIMATE_CAP);
    if severity > reading.severity {
        reading.severity = severity;
        reading.threshold = best.threshold;
        reading.text = format!(
            "{}; the rate since the release, {}, reaches the {severity} level, though too few \
             requests yet prove it at 90%: {severity} on the best estimate (a rollback without \
             asking needs the level proven)",
            reading.text,
            num(rate)
        );
    }
}
