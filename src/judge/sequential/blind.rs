//! A count metric that cannot see its errors.
//!
//! `errors_query` answering with no series at all is how a selector such
//! as `code=~"5.."` says "no errors yet", and also how a release that
//! renamed or relabelled its error metric looks. The two are told apart
//! by what was due: the judge takes the empty answer for blindness when
//!
//! - the errors query had counted errors earlier in this release (its
//!   series went away), or
//! - the requests counted since the release would, at the baseline's
//!   error rate, have had at least [`DUE_ERRORS`] errors (none at all is
//!   then too unlikely to be luck: below 1% at the baseline's rate).
//!
//! A service with no errors before the release is never called blind by
//! an empty answer, so a truly error-free service does not turn into a
//! stream of `no_data`. `empty_means_zero = true` turns the rule off.

use super::SequentialCheck;
use super::num;
use crate::config::MetricConfig;
use crate::model::MetricSample;

/// Errors that must have been due, at the baseline's rate, before an
/// empty errors answer is taken for blindness rather than luck: the chance
/// of seeing none when about five are due is e^-5, under 1%.
pub(super) const DUE_ERRORS: f64 = 5.0;

/// Why `sample` of `metric` cannot be judged as "no errors", or `None`
/// when it can.
pub(super) fn blind(
    metric: &MetricConfig,
    sample: &MetricSample,
    check: &SequentialCheck,
) -> Option<String> {
    if !metric.is_count() || metric.empty_means_zero || !sample.errors_empty {
        return None;
    }
    let counts = sample.counts.filter(|c| c.total > 0.0)?;
    let query = metric.errors_query.as_deref().unwrap_or_default();
    let name = &metric.name;
    let blind = format!(
        "{name}: errors_query `{query}` answers with no series while {} requests were counted since the release",
        num(counts.total)
    );
    let consequence = "the release may have renamed or relabelled its error metric, so rollguard cannot see its errors (`empty_means_zero = true` says an empty answer is zero errors)";
    if let Some(earlier) = check.last.filter(|c| c.bad > 0.0) {
        return Some(format!(
            "{blind}, after counting {} errors earlier in this release: {consequence}",
            num(earlier.bad)
        ));
    }
    let rate = sample.baseline.or(check.baseline).filter(|r| *r > 0.0)?;
    let due = counts.total * rate;
    (due >= DUE_ERRORS).then(|| {
        format!(
            "{blind}; at the baseline's error rate {} about {} errors were due: {consequence}",
            num(rate),
            num(due)
        )
    })
}
