//! The evidence a rollback needs to be verified: through the real judge,
//! round by round, as the daemon's verifier feeds it.

use super::*;
use crate::judge::Judge;
use crate::judge::fixtures::{probe, sample, target};
use crate::model::{Counts, DataImpact, TimeToFix};
use std::time::Duration;

const COUNT: &str =
    "[[metric]]\nname = \"error_rate\"\nerrors_query = \"e\"\ntotal_query = \"t\"\n";
const PROBE: &str = "[[probe]]\nname = \"health\"\nurl = \"http://127.0.0.1:1/health\"\n";
const P99: &str = "[[metric]]\nname = \"p99\"\nquery = \"q\"\nmin_ratio = 1.2\n";

/// A judge and a verification of one target, and the cumulative counts.
struct Rounds {
    judge: Judge,
    verification: Verification,
}

impl Rounds {
    fn new(extra: &str) -> Rounds {
        let target = target(extra);
        Rounds {
            judge: Judge::new(&target),
            verification: Verification::new(&target),
        }
    }

    fn round(&mut self, observation: &Observation) -> Round {
        let assessment = self.judge.assess(
            observation,
            DataImpact::None,
            TimeToFix::Known(Duration::ZERO),
        );
        self.verification.round(observation, &assessment)
    }
}

/// 30 baseline ticks of 1,000 requests at `rate`.
fn baseline(rate: f64) -> Vec<Counts> {
    vec![
        Counts {
            total: 1000.0,
            bad: 1000.0 * rate,
        };
        30
    ]
}

fn counts(total: f64, bad: f64, base: &[Counts]) -> Observation {
    Observation {
        tick: 0,
        at_unix_ms: 0,
        probes: Vec::new(),
        metrics: vec![MetricSample {
            counts: Some(Counts { total, bad }),
            baseline_counts: base.to_vec(),
            ..MetricSample::named("error_rate")
        }],
    }
}

fn back(round: &Round) -> bool {
    matches!(round, Round::Back(_))
}

fn text(round: &Round) -> &str {
    match round {
        Round::Back(s) | Round::NotYet(s) | Round::Unknown(s) => s,
    }
}

#[test]
fn a_handful_of_clean_requests_is_not_enough_and_the_reason_says_how_many() {
    let base = baseline(0.001);
    let mut rounds = Rounds::new(COUNT);
    // 40 requests, no error: not significantly worse, but no evidence
    // either that the rate is back within 0.2%.
    let round = rounds.round(&counts(40.0, 0.0, &base));
    assert!(matches!(round, Round::NotYet(_)), "{round:?}");
    let why = text(&round);
    assert!(why.contains("0 errors in 40 requests"), "{why}");
    assert!(why.contains("needs about"), "{why}");
    assert!(why.contains("at most 0.20% with 95% confidence"), "{why}");
}

#[test]
fn enough_requests_at_the_baseline_rate_are_back() {
    let base = baseline(0.001);
    let mut rounds = Rounds::new(COUNT);
    let round = rounds.round(&counts(6000.0, 6.0, &base));
    assert!(back(&round), "{round:?}");
    assert!(
        text(&round).contains("6 errors in 6000 requests"),
        "{round:?}"
    );
}

#[test]
fn the_bad_release_s_rate_is_not_back_however_many_requests() {
    let base = baseline(0.001);
    let mut rounds = Rounds::new(COUNT);
    // ×5 the baseline over 50,000 requests.
    let obs = counts(50_000.0, 250.0, &base);
    let round = rounds.round(&obs);
    assert!(matches!(round, Round::NotYet(_)), "{round:?}");
    // Even where the judge has not (yet) called it worse, the rate alone
    // is not back.
    let metric = &target(COUNT).metric[0];
    let Standing::NotYet(why) = count_metric(metric, None, obs.metrics.first(), Some(0.005)) else {
        panic!("a rate of 5x the baseline is not back");
    };
    assert!(why.contains("(0.50%): above 0.20%"), "{why}");
}

#[test]
fn the_requests_needed_match_the_bound() {
    // With no errors, about 3 / limit requests (ln 20 ≈ 3.0).
    let needed = requests_needed(0.0, 0.001).expect("reachable");
    assert!((2048.0..=4096.0).contains(&needed), "{needed}");
    assert!(upper_bound(0.0, needed) <= 0.001);
    assert!(upper_bound(0.0, needed / 2.0) > 0.001);
    assert_eq!(requests_needed(0.002, 0.002), None);
}

#[test]
fn the_limit_is_twice_the_baseline_or_the_floor_above_it() {
    assert!((rate_limit(Some(0.01), 0.001) - 0.02).abs() < 1e-12);
    assert!((rate_limit(Some(0.0002), 0.001) - 0.0012).abs() < 1e-12);
    assert!((rate_limit(None, 0.001) - 0.001).abs() < 1e-12);
}

#[test]
fn a_probe_must_pass_three_rounds_in_a_row() {
    let mut rounds = Rounds::new(PROBE);
    let obs = |ok| Observation {
        tick: 0,
        at_unix_ms: 0,
        probes: vec![probe("health", ok)],
        metrics: Vec::new(),
    };
    assert!(!back(&rounds.round(&obs(true))));
    assert!(!back(&rounds.round(&obs(true))));
    // A failure restarts the count.
    assert!(!back(&rounds.round(&obs(false))));
    assert!(!back(&rounds.round(&obs(true))));
    assert!(!back(&rounds.round(&obs(true))));
    let round = rounds.round(&obs(true));
    assert!(back(&round), "{round:?}");
    assert!(
        text(&round).contains("passed 3 times in a row"),
        "{round:?}"
    );
}

#[test]
fn a_latency_above_one_and_a_half_times_the_baseline_is_not_back() {
    let mut rounds = Rounds::new(P99);
    let obs = |value| Observation {
        tick: 0,
        at_unix_ms: 0,
        probes: Vec::new(),
        metrics: vec![sample("p99", Some(value), Some(100.0))],
    };
    // 1.19x: below min_ratio, so the judge sees no breach, yet 3 rounds
    // are needed.
    assert!(!back(&rounds.round(&obs(119.0))));
    assert!(!back(&rounds.round(&obs(119.0))));
    assert!(back(&rounds.round(&obs(119.0))));
    // A metric with its own thresholds is back once below them, at 1.6x
    // too: its owner said what worse is.
    let mut rounds = Rounds::new(
        "[[metric]]\nname = \"p99\"\nquery = \"q\"\n[metric.thresholds]\nhigh = 2000.0\n",
    );
    rounds.round(&obs(160.0));
    rounds.round(&obs(160.0));
    assert!(back(&rounds.round(&obs(160.0))));
    // One judged by the sequential test against the default levels alone
    // must be within 1.5x of its baseline, whatever the judge reads.
    let metric =
        &target("[[metric]]\nname = \"p99\"\nquery = \"q\"\ntest = \"sequential\"\n").metric[0];
    let evidence = CheckEvidence {
        verdict: Verdict::Pass,
        value: Some(160.0),
        baseline: Some(100.0),
        ratio: Some(1.6),
        ..CheckEvidence::unknown("p99", crate::model::CheckKind::Metric, 1)
    };
    let mut streak = 0;
    for _ in 0..5 {
        let Standing::NotYet(why) = value_metric(metric, Some(&evidence), &mut streak) else {
            panic!("1.6x the baseline is not back");
        };
        assert!(why.contains("1.6x"), "{why}");
    }
}

#[test]
fn missing_data_is_never_back() {
    let mut rounds = Rounds::new(&format!("{PROBE}{COUNT}"));
    let obs = Observation {
        tick: 0,
        at_unix_ms: 0,
        probes: vec![probe("health", true)],
        metrics: vec![MetricSample {
            error: Some("connection refused".to_owned()),
            ..MetricSample::named("error_rate")
        }],
    };
    let mut last = None;
    for _ in 0..5 {
        let round = rounds.round(&obs);
        assert!(!back(&round), "{round:?}");
        last = Some(round);
    }
    // Once the probe has passed enough, what is left is the unknown metric.
    assert!(matches!(last, Some(Round::Unknown(_))), "{last:?}");
}

#[test]
fn an_informational_metric_does_not_hold_verification_up() {
    let mut rounds = Rounds::new(&format!(
        "{PROBE}[[metric]]\nname = \"p99\"\nquery = \"q\"\n"
    ));
    let obs = Observation {
        tick: 0,
        at_unix_ms: 0,
        probes: vec![probe("health", true)],
        metrics: vec![sample("p99", Some(900.0), Some(100.0))],
    };
    rounds.round(&obs);
    rounds.round(&obs);
    assert!(back(&rounds.round(&obs)));
}

#[test]
fn after_a_severe_release_fewer_clean_requests_show_the_regression_is_gone() {
    let base = baseline(0.0);
    let target = target(COUNT);
    let metric = &target.metric[0];
    let sample = |total, bad| counts(total, bad, &base).metrics.remove(0);
    // The release failed 40% of its requests: 30 clean ones bound the rate
    // below 9.5% (95%), under a quarter of 40%; 20 (below 14%) do not.
    let severe = Some(0.4);
    assert!(matches!(
        count_metric(metric, None, Some(&sample(30.0, 0.0)), severe),
        Standing::Back(_)
    ));
    assert!(matches!(
        count_metric(metric, None, Some(&sample(20.0, 0.0)), severe),
        Standing::NotYet(_)
    ));
    // Without knowing the release's rate, 20 requests show nothing.
    assert!(matches!(
        count_metric(metric, None, Some(&sample(20.0, 0.0)), None),
        Standing::NotYet(_)
    ));
    // One error in 20 is 5%: far from the 0% baseline, whatever came before.
    let Standing::NotYet(why) = count_metric(metric, None, Some(&sample(20.0, 1.0)), severe) else {
        panic!("5% errors after a 0% baseline is not back");
    };
    assert!(why.contains("above 0.10%"), "{why}");
    assert!(why.contains("40.00% before the rollback"), "{why}");
}

#[test]
fn a_canary_metric_is_back_against_the_stable_version_s_rate() {
    let target = target(COUNT);
    let metric = &target.metric[0];
    // The stable version fails 1% of its requests; 1% since the rollback is
    // back, though far above the floor of 0.1 points alone.
    let sample = MetricSample {
        counts: Some(Counts {
            total: 20_000.0,
            bad: 200.0,
        }),
        stable_counts: Some(Counts {
            total: 20_000.0,
            bad: 200.0,
        }),
        ..MetricSample::named("error_rate")
    };
    let standing = count_metric(metric, None, Some(&sample), None);
    assert!(matches!(standing, Standing::Back(_)));
    let without = MetricSample {
        stable_counts: None,
        ..sample
    };
    assert!(matches!(
        count_metric(metric, None, Some(&without), None),
        Standing::NotYet(_)
    ));
}
