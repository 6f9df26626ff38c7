//! Metrics judged by the sequential test, tick by tick through the
//! [`Judge`]: what the verdicts say and when.

use super::Judge;
use super::fixtures::target;
use crate::model::{
    CheckEvidence, Counts, DataImpact, MetricSample, Observation, Severity, TimeToFix, Verdict,
};
use std::time::Duration;

const COUNT: &str =
    "[[metric]]\nname = \"error_rate\"\nerrors_query = \"e\"\ntotal_query = \"t\"\n";

/// 30 baseline minutes at `rate` with `per_block` requests each.
fn baseline(per_block: f64, rate: f64) -> Vec<Counts> {
    vec![
        Counts {
            total: per_block,
            bad: per_block * rate,
        };
        30
    ]
}

/// A judge and the cumulative counts it has been fed.
struct Run {
    judge: Judge,
    so_far: Counts,
    tick: u64,
    baseline: Vec<Counts>,
}

impl Run {
    fn new(extra: &str, baseline: Vec<Counts>) -> Run {
        Run {
            judge: Judge::new(&target(&format!("{COUNT}{extra}"))),
            so_far: Counts {
                total: 0.0,
                bad: 0.0,
            },
            tick: 0,
            baseline,
        }
    }

    /// One tick of `requests` with `errors`; the evidence of `error_rate`.
    fn tick(&mut self, requests: f64, errors: f64) -> CheckEvidence {
        self.so_far.total += requests;
        self.so_far.bad += errors;
        let sample = MetricSample {
            counts: Some(self.so_far),
            baseline_counts: self.baseline.clone(),
            ..MetricSample::named("error_rate")
        };
        self.feed(sample)
    }

    /// `count` ticks alike (at least one); the evidence of the last.
    fn ticks(&mut self, count: usize, requests: f64, errors: f64) -> CheckEvidence {
        let mut last = self.tick(requests, errors);
        for _ in 1..count {
            last = self.tick(requests, errors);
        }
        last
    }

    fn feed(&mut self, sample: MetricSample) -> CheckEvidence {
        let obs = Observation {
            tick: self.tick,
            metrics: vec![sample],
            ..Observation::default()
        };
        self.tick += 1;
        let a = self.judge.assess(
            &obs,
            DataImpact::None,
            TimeToFix::Known(Duration::from_secs(3600)),
        );
        a.evidence[0].clone()
    }
}

#[test]
fn a_clear_regression_fails_only_once_significant_and_says_why() {
    // 1% before, 6% after, 1000 requests a tick: high (at least 5x and +2
    // points is high, even for the rate's lower bound; critical is 10x).
    let mut run = Run::new("", baseline(6000.0, 0.01));
    let first = run.tick(1000.0, 60.0);
    assert!(
        matches!(first.verdict, Verdict::Pending { .. }),
        "{first:?}"
    );
    let statistic = first.statistic.expect("a statistic");
    assert!(!statistic.rejected && statistic.threshold > 100.0);
    let mut verdicts = vec![first.verdict];
    for _ in 0..5 {
        verdicts.push(run.tick(1000.0, 60.0).verdict);
    }
    let failed_at = verdicts
        .iter()
        .position(|v| matches!(v, Verdict::Fail(_)))
        .expect("fails");
    assert!(failed_at >= 2, "never before the third tick: {verdicts:?}");
    assert!(
        matches!(verdicts[failed_at], Verdict::Fail(Severity::High)),
        "{verdicts:?}"
    );
    let last = run.tick(1000.0, 60.0);
    assert!(
        last.reason.contains("significantly worse") && last.reason.contains("e-value"),
        "{}",
        last.reason
    );
}

#[test]
fn significant_but_below_every_level_passes() {
    // 1% → 2%: clearly worse than 1.25x at this traffic, but the
    // operator's mildest level is 3%.
    let mut run = Run::new("thresholds = { low = 0.03 }\n", baseline(60_000.0, 0.01));
    let last = run.ticks(20, 10_000.0, 200.0);
    assert_eq!(last.verdict, Verdict::Pass, "{last:?}");
    assert!(last.statistic.is_some_and(|s| s.rejected), "{last:?}");
    assert!(last.reason.contains("not worth acting"), "{}", last.reason);
}

#[test]
fn the_fast_path_needs_three_ticks_enough_requests_and_a_healthy_baseline() {
    let mut run = Run::new("", baseline(6000.0, 0.01));
    let verdicts: Vec<Verdict> = (0..3).map(|_| run.tick(500.0, 400.0).verdict).collect();
    assert!(!matches!(verdicts[1], Verdict::Fail(_)), "{verdicts:?}");
    assert_eq!(verdicts[2], Verdict::Fail(Severity::Critical));
    // Ten requests a tick: below min_requests, the statistics decide alone.
    let mut quiet = Run::new("", baseline(6000.0, 0.01));
    for _ in 0..3 {
        let e = quiet.tick(10.0, 9.0);
        assert!(!e.reason.contains("fast path"), "{}", e.reason);
    }
    // A baseline already above the critical level: not this release's doing.
    let mut bad_before = Run::new("thresholds = { critical = 0.2 }\n", baseline(6000.0, 0.3));
    for _ in 0..4 {
        let e = bad_before.tick(500.0, 160.0);
        assert!(!e.reason.contains("fast path"), "{}", e.reason);
    }
}

#[test]
fn missing_data_and_failed_queries_never_fail_and_never_count() {
    let mut run = Run::new("", baseline(6000.0, 0.01));
    run.tick(1000.0, 10.0);
    let e_before = run.tick(1000.0, 10.0).statistic.expect("statistic").e_value;
    let failed = run.feed(MetricSample {
        error: Some("connection refused".to_owned()),
        ..MetricSample::named("error_rate")
    });
    assert_eq!(failed.verdict, Verdict::Error);
    let empty = run.feed(MetricSample::named("error_rate"));
    assert_eq!(empty.verdict, Verdict::NoData, "{empty:?}");
    let after = run.tick(0.0, 0.0);
    assert_eq!(
        after.statistic.expect("statistic").e_value,
        e_before,
        "no events, no evidence"
    );
    // With on_no_data = "pass", no data is healthy.
    let mut lenient = Run::new("on_no_data = \"pass\"\n", baseline(6000.0, 0.01));
    assert_eq!(
        lenient.feed(MetricSample::named("error_rate")).verdict,
        Verdict::Pass
    );
    // No baseline data: the test cannot start, and says so.
    let mut blind = Run::new("", Vec::new());
    let e = blind.tick(1000.0, 500.0);
    assert_eq!(e.verdict, Verdict::NoData);
    assert!(e.reason.contains("no baseline"), "{}", e.reason);
}

#[test]
fn a_window_that_starts_again_is_counted_from_its_new_start() {
    // Counts since the window start drop (verification measures from the
    // rollback): the new counts are new events, not negative ones.
    let mut run = Run::new("", baseline(6000.0, 0.01));
    for _ in 0..3 {
        run.tick(1000.0, 10.0);
    }
    run.so_far = Counts {
        total: 0.0,
        bad: 0.0,
    };
    let e = run.tick(800.0, 8.0);
    assert_eq!(e.verdict, Verdict::Pass, "{e:?}");
    assert!(e.value.is_some_and(|v| v < 0.02), "{e:?}");
}

#[test]
fn without_a_baseline_the_mildest_threshold_is_the_null() {
    let config = "baseline = \"none\"\nthresholds = { critical = 0.2, low = 0.05 }\n";
    let mut fine = Run::new(config, Vec::new());
    for _ in 0..30 {
        assert_eq!(fine.tick(1000.0, 30.0).verdict, Verdict::Pass);
    }
    let mut bad = Run::new(config, Vec::new());
    let verdicts: Vec<Verdict> = (0..10).map(|_| bad.tick(1000.0, 120.0).verdict).collect();
    assert!(
        verdicts.contains(&Verdict::Fail(Severity::Low)),
        "{verdicts:?}"
    );
}

#[test]
fn alpha_is_split_across_the_sequential_checks() {
    let one = Run::new("", baseline(6000.0, 0.01));
    let mut two = Run {
        judge: Judge::new(&target(&format!(
            "{COUNT}[[metric]]\nname = \"p99\"\nquery = \"q\"\ntest = \"sequential\"\nthresholds = {{ high = 1.0 }}\n"
        ))),
        ..Run::new("", baseline(6000.0, 0.01))
    };
    let mut one = one;
    let threshold = |e: CheckEvidence| e.statistic.expect("statistic").threshold;
    let alone = threshold(one.tick(100.0, 1.0));
    let shared = threshold(two.tick(100.0, 1.0));
    assert!(
        (shared / alone - 2.0).abs() < 1e-9,
        "half the alpha, twice the threshold: {alone} vs {shared}"
    );
}

#[test]
fn extrapolation_dips_are_no_events_and_nothing_is_counted_twice() {
    let mut run = Run::new("", baseline(6000.0, 0.01));
    run.tick(1000.0, 10.0);
    run.tick(1000.0, 10.0);
    // increase() over a longer window with no new sample: a little less.
    run.so_far = Counts {
        total: 1999.2,
        bad: 19.9,
    };
    let dipped = run.feed(MetricSample {
        counts: Some(run.so_far),
        baseline_counts: run.baseline.clone(),
        ..MetricSample::named("error_rate")
    });
    let e = dipped.statistic.expect("statistic").e_value;
    // Back to 2000 and then 1000 more: only those 1000 are new.
    run.so_far = Counts {
        total: 2000.0,
        bad: 20.0,
    };
    let back = run.tick(1000.0, 10.0);
    assert_eq!(back.verdict, Verdict::Pass, "{back:?}");
    assert!(
        back.statistic.expect("statistic").e_value <= e * 1.01,
        "a normal tick adds no evidence: {back:?}"
    );
    assert!(
        back.reason.contains("30 of 3000 requests"),
        "{}",
        back.reason
    );
}

#[test]
fn the_severity_follows_a_climbing_rate_within_three_ticks_at_high_traffic() {
    // 1% before; medium is 2%, high 5%. 3% for twenty ticks (significant,
    // medium), then 7%: the last five ticks' own bounds see it on the third
    // tick, where the discounted rate of about ten ticks would still say
    // about 5.6% less its margin.
    let mut run = Run::new("", baseline(60_000.0, 0.01));
    for _ in 0..20 {
        let e = run.tick(10_000.0, 300.0);
        assert!(e.breached_severity <= Severity::Medium, "{e:?}");
    }
    let medium = run.tick(10_000.0, 300.0);
    assert_eq!(
        medium.verdict,
        Verdict::Fail(Severity::Medium),
        "{medium:?}"
    );
    let after: Vec<Verdict> = (0..3).map(|_| run.tick(10_000.0, 700.0).verdict).collect();
    assert_eq!(after[0], Verdict::Fail(Severity::Medium), "{after:?}");
    assert_eq!(after[2], Verdict::Fail(Severity::High), "{after:?}");
}

/// The verdicts of `ticks` ticks of 20,000 requests at 0.12% errors after
/// a baseline at 0.02%, with `extra` keys on the metric.
fn budget_run(extra: &str, ticks: usize) -> Vec<CheckEvidence> {
    let mut run = Run::new(extra, baseline(60_000.0, 0.0002));
    (0..ticks).map(|_| run.tick(20_000.0, 24.0)).collect()
}

#[test]
fn an_slo_lets_the_budget_the_increase_burns_set_the_severity() {
    // +0.1 points (×6): with a floor of 0.1 points, nothing is
    // significant without an SLO.
    let plain = budget_run("min_increase = 0.001\n", 15);
    assert!(
        plain
            .iter()
            .all(|e| !matches!(e.verdict, Verdict::Fail(_))
                && e.statistic.is_some_and(|s| !s.rejected)),
        "{:?}",
        plain.last()
    );
    // At the default floor (0.02 points) ×6 is significant and, read
    // against the default levels relative to the baseline, medium.
    let default = budget_run("", 15);
    let last = default.last().expect("ticks");
    assert_eq!(last.verdict, Verdict::Fail(Severity::Medium), "{last:?}");
    // With a budget of 0.01%, the increase burns it about 9 times as fast
    // as the SLO allows: high (6 to 14.4), and min_increase is the budget.
    let slo = budget_run("slo = 0.9999\n", 15);
    let last = slo.last().expect("ticks");
    assert_eq!(last.verdict, Verdict::Fail(Severity::High), "{last:?}");
    assert!(last.statistic.is_some_and(|s| s.rejected), "{last:?}");
    assert!(
        last.reason.contains("error budget of SLO 99.99% at")
            && last.reason.contains("(≥ high at 6×)"),
        "{}",
        last.reason
    );
    // The threshold the evidence shows is the rate at which the burn
    // reaches high: the baseline plus six budgets.
    let threshold = last.threshold.expect("a threshold");
    assert!(
        (threshold - (0.0002 + 6.0 * 0.0001)).abs() < 1e-9,
        "{threshold}"
    );
    // The operator's own burn levels: 9× is only medium under these.
    let own = budget_run(
        "slo = 0.9999\nburn_thresholds = { critical = 50.0, high = 20.0, medium = 5.0, low = 2.0 }\n",
        15,
    );
    let last = own.last().expect("ticks");
    assert_eq!(last.verdict, Verdict::Fail(Severity::Medium), "{last:?}");
}

#[test]
fn the_baselines_own_burn_does_not_count() {
    // The service already burns ten budgets before the release (0.1% at
    // SLO 99.99%); the release makes it 0.17%. Its increase burns about
    // seven budgets (high); counting the baseline's ten as well would make
    // it seventeen (critical). Below every default rate level.
    let mut run = Run::new("slo = 0.9999\n", baseline(600_000.0, 0.001));
    let last = run.ticks(30, 200_000.0, 340.0);
    assert_eq!(last.verdict, Verdict::Fail(Severity::High), "{last:?}");
}

#[test]
fn default_levels_read_an_error_rate_as_on_call_does() {
    use crate::judge::sequential::default_levels;
    let severity = |b: f64, rate: f64| {
        default_levels(b)
            .levels()
            .into_iter()
            .find(|&(_, level)| rate >= level)
            .map_or(Severity::None, |(s, _)| s)
    };
    // At 0.1%: ×2 is worth a word, ×3 worth acting on; ×5 and ×10 without
    // the absolute increase stay medium: a human decides.
    assert_eq!(severity(0.001, 0.0012), Severity::None, "x1.2");
    assert_eq!(severity(0.001, 0.002), Severity::Low, "x2");
    assert_eq!(severity(0.001, 0.0024), Severity::Low, "x2.4");
    assert_eq!(severity(0.001, 0.0025), Severity::Medium, "x2.5");
    assert_eq!(severity(0.001, 0.003), Severity::Medium, "x3");
    assert_eq!(severity(0.001, 0.005), Severity::Medium, "x5, +0.4 points");
    assert_eq!(severity(0.001, 0.021), Severity::High, "x21, +2 points");
    assert_eq!(
        severity(0.001, 0.052),
        Severity::Critical,
        "x52, +5.1 points"
    );
    // Without errors before the release, the ratio means nothing: a tenth
    // of the absolute increase is the least a level asks.
    assert_eq!(severity(0.0, 0.0), Severity::None, "no errors");
    assert_eq!(severity(0.0, 0.0004), Severity::None, "+0.04 points");
    assert_eq!(severity(0.0, 0.0005), Severity::Low, "+0.05 points");
    assert_eq!(severity(0.0, 0.0008), Severity::Medium, "+0.08 points");
    // At 2%: a point more is medium though only ×1.5; ×1.2 is nothing.
    assert_eq!(severity(0.02, 0.024), Severity::None, "x1.2");
    assert_eq!(severity(0.02, 0.025), Severity::Low, "+0.5 points");
    assert_eq!(severity(0.02, 0.027), Severity::Low, "+0.7 points");
    assert_eq!(severity(0.02, 0.028), Severity::Medium, "+0.8 points");
    assert_eq!(severity(0.02, 0.1), Severity::High, "x5, +8 points");
    assert_eq!(severity(0.02, 0.2), Severity::Critical, "x10, +18 points");
}

#[test]
fn once_significant_the_best_estimate_may_ask_a_human_but_never_roll_back() {
    // 1% before, 1.9% after at 100 requests a tick: after 90 ticks the
    // test has rejected, the rate since the release (1.9%) is at the medium
    // level (+0.8 points), its 90% lower bound (about 1.7%) only at low.
    let mut run = Run::new("", baseline(6000.0, 0.01));
    let last = run.ticks(90, 100.0, 1.9);
    assert!(last.statistic.is_some_and(|s| s.rejected), "{last:?}");
    assert_eq!(last.verdict, Verdict::Fail(Severity::Medium), "{last:?}");
    assert!(
        last.reason.contains("on the best estimate"),
        "{}",
        last.reason
    );
    // Before the test rejects, the best estimate sets nothing.
    let mut run = Run::new("", baseline(6000.0, 0.01));
    let first = run.tick(100.0, 1.9);
    assert!(!first.reason.contains("best estimate"), "{}", first.reason);
}
