//! A count metric whose errors query answers with no series: "no errors
//! yet" or "cannot see" (`sequential/blind.rs`), tick by tick through the
//! [`Judge`].

use super::Judge;
use super::fixtures::target;
use crate::model::{Assessment, Counts, DataImpact, MetricSample, Observation, Verdict};
use crate::model::{Severity, TimeToFix};
use std::time::Duration;

const ERRORS: &str = r#"sum(increase(http_requests_total{code=~"5.."}[{{window}}]))"#;

/// A judge of one count metric (with `extra` keys) fed cumulative counts
/// against a 30-block baseline.
struct Run {
    judge: Judge,
    so_far: Counts,
    baseline: Vec<Counts>,
}

impl Run {
    fn new(extra: &str, baseline_rate: f64) -> Run {
        let metric = format!(
            "[[metric]]\nname = \"error_rate\"\nerrors_query = '{ERRORS}'\ntotal_query = \"t\"\n{extra}"
        );
        Run {
            judge: Judge::new(&target(&metric)),
            so_far: Counts {
                total: 0.0,
                bad: 0.0,
            },
            baseline: vec![
                Counts {
                    total: 6000.0,
                    bad: 6000.0 * baseline_rate,
                };
                30
            ],
        }
    }

    /// One tick of `requests`; `errors: None` is an errors query that
    /// answered with no series.
    fn tick(&mut self, requests: f64, errors: Option<f64>) -> Assessment {
        self.so_far.total += requests;
        self.so_far.bad = match errors {
            Some(errors) => self.so_far.bad + errors,
            None => 0.0,
        };
        let sample = MetricSample {
            counts: Some(self.so_far),
            baseline_counts: self.baseline.clone(),
            errors_empty: errors.is_none(),
            ..MetricSample::named("error_rate")
        };
        let obs = Observation {
            metrics: vec![sample],
            ..Observation::default()
        };
        self.judge.assess(
            &obs,
            DataImpact::None,
            TimeToFix::Known(Duration::from_secs(3600)),
        )
    }
}

#[test]
fn no_error_series_when_errors_were_due_is_no_data_naming_the_query() {
    // 1% errors before; 100 requests a tick after, and no error series:
    // one error is due per tick, so the fifth tick makes five.
    let mut run = Run::new("", 0.01);
    for tick in 1..5 {
        let a = run.tick(100.0, None);
        let e = &a.evidence[0];
        assert_ne!(e.verdict, Verdict::NoData, "tick {tick}: {e:?}");
        assert_eq!(e.blind, None, "tick {tick}");
    }
    let a = run.tick(100.0, None);
    let e = &a.evidence[0];
    assert_eq!(e.verdict, Verdict::NoData, "{e:?}");
    assert_eq!(e.blind.as_deref(), Some(ERRORS));
    for words in [
        ERRORS,
        "no series",
        "500 requests",
        "renamed",
        "empty_means_zero",
    ] {
        assert!(e.reason.contains(words), "{words:?} not in {}", e.reason);
    }
    assert!(a.inconclusive, "never healthy on a zero nobody measured");
    assert_eq!(a.severity, Severity::None);
    // It stays so while the series is missing.
    for _ in 0..20 {
        assert_eq!(run.tick(100.0, None).evidence[0].verdict, Verdict::NoData);
    }
    // The first error brings the series back: judged again.
    let back = run.tick(100.0, Some(1.0));
    assert_ne!(back.evidence[0].verdict, Verdict::NoData, "{back:?}");
    assert_eq!(back.evidence[0].blind, None);
}

#[test]
fn empty_means_zero_counts_an_empty_answer_as_no_errors() {
    let mut run = Run::new("empty_means_zero = true\n", 0.01);
    for _ in 0..30 {
        let a = run.tick(100.0, None);
        assert_eq!(a.evidence[0].verdict, Verdict::Pass, "{a:?}");
        assert_eq!(a.evidence[0].blind, None);
        assert!(!a.inconclusive);
    }
}

#[test]
fn a_service_without_errors_before_the_release_is_never_called_blind() {
    let mut run = Run::new("", 0.0);
    for _ in 0..100 {
        let a = run.tick(1000.0, None);
        assert_ne!(a.evidence[0].verdict, Verdict::NoData, "{a:?}");
        assert!(!a.inconclusive);
    }
}

#[test]
fn a_measured_zero_is_zero_errors() {
    // The series exists and says 0: that was measured.
    let mut run = Run::new("", 0.01);
    for _ in 0..30 {
        let a = run.tick(100.0, Some(0.0));
        assert_ne!(a.evidence[0].verdict, Verdict::NoData, "{a:?}");
    }
}

#[test]
fn error_series_that_go_away_during_the_release_are_no_data_at_once() {
    // No baseline errors, so only the disappearance can tell.
    let mut run = Run::new("", 0.0);
    run.tick(100.0, Some(2.0));
    let a = run.tick(100.0, None);
    let e = &a.evidence[0];
    assert_eq!(e.verdict, Verdict::NoData, "{e:?}");
    assert!(e.reason.contains("after counting 2 errors"), "{}", e.reason);
    assert!(a.inconclusive);
}

#[test]
fn on_no_data_pass_does_not_make_blindness_healthy() {
    let mut run = Run::new("on_no_data = \"pass\"\n", 0.05);
    let a = run.tick(200.0, None);
    assert_eq!(a.evidence[0].verdict, Verdict::NoData, "{a:?}");
    assert!(a.inconclusive);
}
