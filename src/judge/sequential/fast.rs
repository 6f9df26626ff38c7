//! The fast path of a count metric: one tick's errors alone prove the
//! critical level, `max(confirm, 3)` ticks in a row.

use super::{FAST_PATH_TICKS, SequentialCheck, TickData};
use crate::config::MetricConfig;
use crate::judge::Streak;
use crate::judge::severity::num;
use crate::model::{CheckEvidence, Severity, Verdict};

/// The fast path of a count metric: this tick's errors alone prove the
/// critical level, `confirm` ticks in a row.
pub(super) fn fast_path(
    metric: &MetricConfig,
    check: &mut SequentialCheck,
    tick: &TickData,
    evidence: &mut CheckEvidence,
) -> Option<CheckEvidence> {
    let critical = check
        .reading
        .as_ref()
        .and_then(|r| r.thresholds.critical)
        .or(metric.thresholds.critical)?;
    let baseline_below = check.baseline.is_none_or(|b| b < critical);
    let Some((rate, lower, total)) = tick
        .proven
        .filter(|(_, lower, _)| *lower >= critical && baseline_below)
    else {
        check.fast = Streak::default();
        return None;
    };
    let needed = metric.confirm.max(FAST_PATH_TICKS);
    check.fast.push(Severity::Critical, needed);
    if check.fast.count < needed {
        return None;
    }
    let mut out = evidence.clone();
    out.verdict = Verdict::Fail(Severity::Critical);
    out.breached_severity = Severity::Critical;
    out.threshold = Some(critical);
    out.streak = check.fast.count;
    out.reason = format!(
        "{} {} over {} requests this tick, at least {} with 99% confidence ≥ critical {}, {} ticks in a row: the fast path → critical",
        metric.name,
        num(rate),
        num(total),
        num(lower),
        num(critical),
        check.fast.count
    );
    Some(out)
}
