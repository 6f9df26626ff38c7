//! The canary test (`stats/canary.rs`) under simulation, and canary count
//! metrics through the [`Judge`]: false alarms at α under the null's
//! boundary, power at ×3, ticks without data or traffic, the floor.
//! Run with `--nocapture` to see the measured rates.

use super::Judge;
use super::fixtures::target;
use super::stats::{CanaryTest, ErrorRateSettings};
use super::tests_stats::{binomial, normal, tolerance};
use crate::model::{CheckEvidence, Counts, DataImpact, MetricSample, Observation, Severity};
use crate::model::{TimeToFix, Verdict};
use crate::numeric::SplitMix64;

/// One simulated shape: requests a tick of both versions together, the
/// canary's share of them, the stable's error rate, the canary's rate as a
/// multiple of it, and the lognormal σ of a per-tick rate multiplier that
/// both versions share (a slow dependency).
#[derive(Debug, Clone, Copy)]
struct Shape {
    requests: u64,
    canary_share: f64,
    rate: f64,
    ratio: f64,
    shared_sigma: f64,
}

/// One tick of `shape`: the canary's and the stable's `(requests, errors)`.
fn draw(rng: &mut SplitMix64, s: Shape) -> ((f64, f64), (f64, f64)) {
    let shared = if s.shared_sigma > 0.0 {
        (s.shared_sigma * normal(rng) - s.shared_sigma * s.shared_sigma / 2.0).exp()
    } else {
        1.0
    };
    let r_c = binomial(rng, s.requests, s.canary_share);
    let r_s = s.requests - r_c;
    let p_s = (s.rate * shared).min(1.0);
    let p_c = (s.rate * s.ratio * shared).min(1.0);
    let e_c = binomial(rng, r_c, p_c);
    let e_s = binomial(rng, r_s, p_s);
    ((r_c as f64, e_c as f64), (r_s as f64, e_s as f64))
}

/// Over `runs` releases of 90 ticks: the share that ever reject, and the
/// median tick of rejection among those that do.
fn reject_rate(runs: u64, s: Shape) -> (f64, Option<u32>) {
    let mut at = Vec::new();
    for seed in 0..runs {
        let mut rng = SplitMix64::new(seed * 104_729 + 3);
        let mut test = CanaryTest::new(&ErrorRateSettings::default());
        for tick in 1..=90u32 {
            let (c, st) = draw(&mut rng, s);
            test.update(Some(c), Some(st));
            if test.rejected() {
                at.push(tick);
                break;
            }
        }
    }
    at.sort_unstable();
    (at.len() as f64 / runs as f64, at.get(at.len() / 2).copied())
}

#[test]
fn under_the_null_false_alarms_stay_below_alpha() {
    let runs = 2000;
    let shapes = [
        // canary 10% of 200 req/tick at 1%: as bad as the stable, and as
        // bad as the null allows (×1.25).
        (200, 0.1, 0.01, 1.0, 0.0),
        (200, 0.1, 0.01, 1.25, 0.0),
        // half the traffic each, at 0.5%, the boundary.
        (1000, 0.5, 0.005, 1.25, 0.0),
        // a shared burst factor (σ 0.8): cancels in the split.
        (500, 0.2, 0.01, 1.25, 0.8),
        // a trickle: 20 req/tick at 2%.
        (20, 0.3, 0.02, 1.25, 0.0),
        // a high rate (5%), where counts are binomial, not Poisson.
        (400, 0.25, 0.05, 1.25, 0.0),
    ];
    for (requests, canary_share, rate, ratio, shared_sigma) in shapes {
        let shape = Shape {
            requests,
            canary_share,
            rate,
            ratio,
            shared_sigma,
        };
        let (alarms, _) = reject_rate(runs, shape);
        println!("canary H0 {shape:?}: false alarms {alarms:.4} of {runs}");
        assert!(alarms <= tolerance(runs), "{shape:?}: {alarms}");
    }
}

#[test]
fn a_canary_three_times_worse_is_found_within_the_bake_window() {
    let runs = 500;
    for (requests, canary_share, rate, min_power) in [
        (500, 0.1, 0.01, 0.99),
        (200, 0.1, 0.01, 0.9),
        (1000, 0.05, 0.002, 0.5),
    ] {
        let shape = Shape {
            requests,
            canary_share,
            rate,
            ratio: 3.0,
            shared_sigma: 0.3,
        };
        let (power, median) = reject_rate(runs, shape);
        println!("canary x3 {shape:?}: power {power:.3}, median tick {median:?}");
        assert!(power >= min_power, "{shape:?}: {power}");
    }
}

#[test]
fn ticks_without_data_errors_or_traffic_change_nothing() {
    let mut test = CanaryTest::new(&ErrorRateSettings::default());
    for _ in 0..3 {
        test.update(Some((100.0, 6.0)), Some((900.0, 9.0)));
    }
    let e = test.e_value();
    assert!(e > 1.0, "six times worse for three ticks: {e}");
    test.update(None, Some((900.0, 9.0)));
    test.update(Some((100.0, 6.0)), None);
    test.update(None, None);
    assert_eq!(test.e_value(), e, "no data on a side: no factor");
    test.update(Some((0.0, 0.0)), Some((0.0, 0.0)));
    test.update(Some((0.0, 0.0)), Some((900.0, 50.0)));
    assert_eq!(test.e_value(), e, "no traffic on a side: no split");
    test.update(Some((100.0, 0.0)), Some((900.0, 0.0)));
    assert_eq!(test.e_value(), e, "no errors: no information");
    test.update(Some((100.0, 7.0)), Some((10.0, f64::NAN)));
    test.update(Some((100.0, 101.0)), Some((900.0, 9.0)));
    assert_eq!(test.e_value(), e, "nonsense is no data");
    // Two ticks however bad never reject (the cap).
    let mut spike = CanaryTest::new(&ErrorRateSettings::default());
    spike.update(Some((100.0, 100.0)), Some((900.0, 0.0)));
    spike.update(Some((100.0, 100.0)), Some((900.0, 0.0)));
    assert!(!spike.rejected(), "{}", spike.e_value());
}

const CANARY: &str = "[[metric]]\nname = \"error_rate\"\nerrors_query = \"e\"\ntotal_query = \"t\"\n\
                      baseline = \"canary\"\nstable_errors_query = \"se\"\nstable_total_query = \"st\"\n";

/// A judge of one canary count metric and the cumulative counts fed to it.
struct Run {
    judge: Judge,
    canary: Counts,
    stable: Counts,
}

impl Run {
    fn new(extra: &str) -> Run {
        let zero = Counts {
            total: 0.0,
            bad: 0.0,
        };
        Run {
            judge: Judge::new(&target(&format!("{CANARY}{extra}"))),
            canary: zero,
            stable: zero,
        }
    }

    /// One tick: the canary's and the stable's new `(requests, errors)`,
    /// `None` for a side without data.
    fn tick(&mut self, canary: (f64, f64), stable: Option<(f64, f64)>) -> CheckEvidence {
        self.canary.total += canary.0;
        self.canary.bad += canary.1;
        if let Some((n, k)) = stable {
            self.stable.total += n;
            self.stable.bad += k;
        }
        let sample = MetricSample {
            counts: Some(self.canary),
            stable_counts: stable.map(|_| self.stable),
            ..MetricSample::named("error_rate")
        };
        let obs = Observation {
            metrics: vec![sample],
            ..Observation::default()
        };
        let a = self
            .judge
            .assess(&obs, DataImpact::None, TimeToFix::Unknown);
        a.evidence.into_iter().next().expect("one check")
    }
}

#[test]
fn a_canary_three_times_the_stable_fails_with_the_stable_as_baseline() {
    let mut run = Run::new("");
    let mut last = run.tick((100.0, 3.0), Some((900.0, 9.0)));
    for _ in 0..20 {
        last = run.tick((100.0, 3.0), Some((900.0, 9.0)));
    }
    assert_eq!(last.verdict, Verdict::Fail(Severity::Medium), "{last:?}");
    assert_eq!(last.baseline, Some(0.01), "the stable's rate");
    let statistic = last.statistic.expect("statistic");
    assert!(statistic.rejected && statistic.e_value >= statistic.threshold);
    assert!(
        last.reason
            .contains("significantly worse than the stable version (e-value")
            && last.reason.contains("1.25× the stable's rate")
            && last.reason.contains("the stable version: 189 of 18900"),
        "{}",
        last.reason
    );
    // The same rates on both sides: never a failure.
    let mut same = Run::new("");
    for _ in 0..60 {
        let e = same.tick((100.0, 1.0), Some((900.0, 9.0)));
        assert_eq!(e.verdict, Verdict::Pass, "{e:?}");
    }
}

#[test]
fn below_the_floor_a_significant_canary_is_not_worth_acting_on() {
    // 0.03% against 0.01%: three times worse, significant at this
    // traffic, at a configured medium level of 0.02%, but 0.02 points
    // more, under a min_increase of 0.1 points.
    let mut run = Run::new("thresholds = { medium = 0.0002 }\nmin_increase = 0.001\n");
    let mut last = run.tick((10_000.0, 3.0), Some((90_000.0, 9.0)));
    for _ in 0..40 {
        last = run.tick((10_000.0, 3.0), Some((90_000.0, 9.0)));
    }
    assert!(last.statistic.expect("statistic").rejected, "{last:?}");
    assert_eq!(last.verdict, Verdict::Pass, "{last:?}");
    assert!(
        last.reason.contains("≥ medium threshold 0.0002")
            && last
                .reason
                .contains("less than min_increase 0.001 above the stable's")
            && last.reason.contains("but by too little"),
        "{}",
        last.reason
    );
    // With min_increase lowered under the difference, the same data fails.
    let mut run = Run::new("thresholds = { medium = 0.0002 }\nmin_increase = 0.0001\n");
    for _ in 0..40 {
        last = run.tick((10_000.0, 3.0), Some((90_000.0, 9.0)));
    }
    assert_eq!(last.verdict, Verdict::Fail(Severity::Medium), "{last:?}");
}

#[test]
fn a_canary_without_its_stable_is_no_data_never_a_failure() {
    let mut run = Run::new("");
    for _ in 0..30 {
        let e = run.tick((100.0, 50.0), None);
        assert_eq!(e.verdict, Verdict::NoData, "{e:?}");
        assert!(!e.statistic.expect("statistic").rejected);
    }
}
