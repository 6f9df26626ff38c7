//! The judge over several ticks: confirmation, missing data, inconclusive
//! assessments, and decisions with their evidence.

use super::fixtures::{failed_query, probe, sample, target};
use super::*;
use crate::model::{Decision, DecisionRecord, TimeToFix};

const HOUR: TimeToFix = TimeToFix::Known(std::time::Duration::from_secs(3600));

/// The sketch's target: a critical health probe (3 failures) and an error
/// rate with thresholds, min_ratio 2 and confirm 2, with `on_no_data`.
fn sketch(on_no_data: &str) -> Judge {
    Judge::new(&target(&format!(
        r#"
[[probe]]
name = "health"
url = "http://127.0.0.1:1/health"
failures = 3
severity = "critical"

[[metric]]
name = "error_rate"
query = "up"
thresholds = {{ critical = 0.05, high = 0.02, medium = 0.01, low = 0.005 }}
min_ratio = 2.0
on_no_data = "{on_no_data}"
"#
    )))
}

fn tick(health: bool, error_rate: Option<f64>) -> Observation {
    Observation {
        probes: vec![probe("health", health)],
        metrics: vec![sample("error_rate", error_rate, Some(0.01))],
        ..Observation::default()
    }
}

fn assess(judge: &mut Judge, obs: &Observation) -> (Assessment, DecisionRecord) {
    let a = judge.assess(obs, DataImpact::None, HOUR);
    let d = decide(&default_rules(), &a);
    (a, d)
}

fn verdict_of(a: &Assessment, check: &str) -> Verdict {
    a.evidence
        .iter()
        .find(|e| e.check == check)
        .map(|e| e.verdict)
        .expect("evidence for every configured check")
}

#[test]
fn a_breach_counts_only_after_confirm_ticks() {
    let mut judge = sketch("hold");
    let (a, d) = assess(&mut judge, &tick(true, Some(0.082)));
    assert_eq!(
        verdict_of(&a, "error_rate"),
        Verdict::Pending {
            severity: Severity::Critical,
            streak: 1,
            needed: 2
        }
    );
    assert_eq!((a.severity, a.inconclusive), (Severity::None, false));
    assert_eq!(d.decision, Decision::Healthy, "one bad tick never acts");

    let (a, d) = assess(&mut judge, &tick(true, Some(0.082)));
    assert_eq!(
        verdict_of(&a, "error_rate"),
        Verdict::Fail(Severity::Critical)
    );
    assert_eq!(d.decision, Decision::Rollback);
}

#[test]
fn a_spike_that_goes_away_resets_the_streak() {
    let mut judge = sketch("hold");
    for (rate, expected) in [
        (
            0.082,
            Verdict::Pending {
                severity: Severity::Critical,
                streak: 1,
                needed: 2,
            },
        ),
        (0.001, Verdict::Pass),
        (
            0.082,
            Verdict::Pending {
                severity: Severity::Critical,
                streak: 1,
                needed: 2,
            },
        ),
    ] {
        let (a, d) = assess(&mut judge, &tick(true, Some(rate)));
        assert_eq!(verdict_of(&a, "error_rate"), expected);
        assert_eq!(d.decision, Decision::Healthy);
    }
}

#[test]
fn confirmed_severity_is_the_level_held_over_the_window() {
    let mut judge = sketch("hold");
    assess(&mut judge, &tick(true, Some(0.082)));
    let (a, _) = assess(&mut judge, &tick(true, Some(0.03)));
    assert_eq!(verdict_of(&a, "error_rate"), Verdict::Fail(Severity::High));
    let (a, _) = assess(&mut judge, &tick(true, Some(0.09)));
    assert_eq!(verdict_of(&a, "error_rate"), Verdict::Fail(Severity::High));
    let (a, _) = assess(&mut judge, &tick(true, Some(0.09)));
    assert_eq!(
        verdict_of(&a, "error_rate"),
        Verdict::Fail(Severity::Critical)
    );
    assert!(
        a.evidence[1].reason.contains("4 ticks in a row"),
        "{}",
        a.evidence[1].reason
    );
}

#[test]
fn a_probe_fails_after_its_own_failures() {
    let mut judge = sketch("hold");
    for streak in 1..=2 {
        let (a, d) = assess(&mut judge, &tick(false, Some(0.001)));
        assert_eq!(
            verdict_of(&a, "health"),
            Verdict::Pending {
                severity: Severity::Critical,
                streak,
                needed: 3
            }
        );
        assert_eq!(d.decision, Decision::Healthy);
    }
    let (a, d) = assess(&mut judge, &tick(false, Some(0.001)));
    assert_eq!(verdict_of(&a, "health"), Verdict::Fail(Severity::Critical));
    assert_eq!(d.decision, Decision::Rollback);
    assert!(
        a.evidence[0].reason.contains("HTTP 503"),
        "{}",
        a.evidence[0].reason
    );
    // One success starts over.
    let (a, _) = assess(&mut judge, &tick(true, Some(0.001)));
    assert_eq!(verdict_of(&a, "health"), Verdict::Pass);
    let (a, _) = assess(&mut judge, &tick(false, Some(0.001)));
    assert!(matches!(
        verdict_of(&a, "health"),
        Verdict::Pending { streak: 1, .. }
    ));
}

#[test]
fn no_data_under_hold_is_inconclusive_and_resets() {
    let mut judge = sketch("hold");
    assess(&mut judge, &tick(true, Some(0.082)));
    let (a, d) = assess(&mut judge, &tick(true, None));
    assert_eq!(verdict_of(&a, "error_rate"), Verdict::NoData);
    assert!(a.inconclusive);
    assert_eq!(d.decision, Decision::Inconclusive);
    assert!(
        d.reasons[0].contains("error_rate could not be evaluated"),
        "{:?}",
        d.reasons
    );
    // The streak did not survive the gap.
    let (a, _) = assess(&mut judge, &tick(true, Some(0.082)));
    assert!(matches!(
        verdict_of(&a, "error_rate"),
        Verdict::Pending { streak: 1, .. }
    ));
    // NaN (0 errors / 0 requests) is no data too.
    let (a, _) = assess(&mut judge, &tick(true, Some(f64::NAN)));
    assert_eq!(verdict_of(&a, "error_rate"), Verdict::NoData);
}

#[test]
fn no_data_under_fail_is_a_breach_at_the_worst_threshold_confirmed_like_any() {
    let mut judge = sketch("fail");
    let (a, d) = assess(&mut judge, &tick(true, None));
    assert_eq!(
        verdict_of(&a, "error_rate"),
        Verdict::Pending {
            severity: Severity::Critical,
            streak: 1,
            needed: 2
        }
    );
    assert_eq!(d.decision, Decision::Healthy);
    let (a, d) = assess(&mut judge, &tick(true, None));
    assert_eq!(
        verdict_of(&a, "error_rate"),
        Verdict::Fail(Severity::Critical)
    );
    assert!(!a.inconclusive);
    assert_eq!(d.decision, Decision::Rollback);
}

#[test]
fn no_data_under_pass_is_healthy() {
    let mut judge = sketch("pass");
    let (a, d) = assess(&mut judge, &tick(true, None));
    assert_eq!(verdict_of(&a, "error_rate"), Verdict::Pass);
    assert!(!a.inconclusive);
    assert_eq!(d.decision, Decision::Healthy);
}

#[test]
fn a_prometheus_error_is_inconclusive_whatever_on_no_data_says() {
    for on_no_data in ["hold", "fail", "pass"] {
        let mut judge = sketch(on_no_data);
        for _ in 0..3 {
            let mut obs = tick(true, None);
            obs.metrics = vec![failed_query("error_rate")];
            let (a, d) = assess(&mut judge, &obs);
            assert_eq!(verdict_of(&a, "error_rate"), Verdict::Error, "{on_no_data}");
            assert!(a.inconclusive, "{on_no_data}");
            assert_eq!(d.decision, Decision::Inconclusive, "{on_no_data}");
        }
    }
    // A metric the watchdog did not measure at all is an error too.
    let mut judge = sketch("pass");
    let mut obs = tick(true, None);
    obs.metrics.clear();
    let (a, _) = assess(&mut judge, &obs);
    assert_eq!(verdict_of(&a, "error_rate"), Verdict::Error);
    assert!(a.inconclusive);
}

#[test]
fn a_critical_probe_failure_counts_while_prometheus_is_down() {
    let mut judge = sketch("hold");
    let mut last = None;
    for _ in 0..3 {
        let mut obs = tick(false, None);
        obs.metrics = vec![failed_query("error_rate")];
        last = Some(assess(&mut judge, &obs));
    }
    let (a, d) = last.expect("three ticks");
    assert_eq!(a.severity, Severity::Critical);
    assert!(!a.inconclusive, "the probe is a hard fact");
    assert_eq!(d.decision, Decision::Rollback);
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("judged on what is known: error_rate")),
        "{:?}",
        d.reasons
    );
}

#[test]
fn min_ratio_through_the_judge() {
    // As bad as before the release: never a breach.
    let mut judge = sketch("hold");
    for _ in 0..3 {
        let mut obs = tick(true, None);
        obs.metrics = vec![sample("error_rate", Some(0.03), Some(0.02))];
        let (a, d) = assess(&mut judge, &obs);
        assert_eq!(verdict_of(&a, "error_rate"), Verdict::Pass);
        assert_eq!(d.decision, Decision::Healthy);
    }
    // Without a baseline the absolute thresholds decide.
    let mut judge = sketch("hold");
    let mut a = None;
    for _ in 0..2 {
        let mut obs = tick(true, None);
        obs.metrics = vec![sample("error_rate", Some(0.03), None)];
        a = Some(assess(&mut judge, &obs).0);
    }
    let a = a.expect("two ticks");
    assert_eq!(verdict_of(&a, "error_rate"), Verdict::Fail(Severity::High));
    assert!(a.evidence[1].reason.contains("absolute thresholds only"));
}

#[test]
fn decrease_direction_through_the_judge() {
    let mut judge = Judge::new(&target(
        r#"
[[metric]]
name = "throughput"
query = "up"
direction = "decrease"
thresholds = { high = 50.0, low = 80.0 }
min_ratio = 1.5
confirm = 1
"#,
    ));
    let obs = |value| Observation {
        metrics: vec![sample("throughput", Some(value), Some(100.0))],
        ..Observation::default()
    };
    let mut verdict = |value| {
        verdict_of(
            &judge.assess(&obs(value), DataImpact::None, HOUR),
            "throughput",
        )
    };
    assert_eq!(verdict(95.0), Verdict::Pass);
    // Under the low threshold, but not 1.5x below the baseline (66.7).
    assert_eq!(verdict(70.0), Verdict::Pass);
    assert_eq!(verdict(60.0), Verdict::Fail(Severity::Low));
    assert_eq!(verdict(40.0), Verdict::Fail(Severity::High));
}

#[test]
fn a_worse_value_never_confirms_a_milder_severity() {
    let mut previous = Severity::None;
    for i in 0..=200 {
        let value = f64::from(i) * 0.0005;
        let mut judge = sketch("hold");
        assess(&mut judge, &tick(true, Some(value)));
        let (a, _) = assess(&mut judge, &tick(true, Some(value)));
        assert!(
            a.severity >= previous,
            "{value} gave {} after {previous}",
            a.severity
        );
        previous = a.severity;
    }
    assert_eq!(previous, Severity::Critical);
}

#[test]
fn the_decision_names_value_baseline_threshold_and_rule() {
    let mut judge = sketch("hold");
    assess(&mut judge, &tick(true, Some(0.082)));
    let (a, d) = assess(&mut judge, &tick(true, Some(0.082)));
    let e = &a.evidence[1];
    assert_eq!(
        (
            e.value,
            e.baseline,
            e.threshold,
            e.breached_severity,
            e.streak,
            e.needed
        ),
        (
            Some(0.082),
            Some(0.01),
            Some(0.05),
            Severity::Critical,
            2,
            2
        )
    );
    assert_eq!(
        e.reason,
        "error_rate 0.082 ≥ critical threshold 0.05 and 8.2x baseline 0.01 (≥ 2x), \
         2 of 2 ticks → critical"
    );
    let rule = d.rule.as_deref().expect("a rule matched");
    assert_eq!(
        rule,
        "policy.rule[0] (runbook default): critical, data none, time to fix over 30m → rollback"
    );
    assert!(d.reasons[0].contains(rule));
    assert!(d.reasons.contains(&e.reason), "{:?}", d.reasons);

    // Plain data: serialises with readable durations.
    let json = serde_json::to_value(&d).expect("serialises");
    assert_eq!(json["time_to_fix"], "1h");
    assert_eq!(json["decision"], "rollback");
    let json = serde_json::to_string(&a).expect("serialises");
    let back: Assessment = serde_json::from_str(&json).expect("parses");
    assert_eq!(back, a);
}

#[test]
fn a_target_without_checks_is_healthy_and_reset_forgets() {
    let mut judge = Judge::new(&target(""));
    assert_eq!(judge.default_time_to_fix(), TimeToFix::Unknown);
    let (a, d) = assess(&mut judge, &Observation::default());
    assert_eq!(
        (a.severity, a.inconclusive, d.decision),
        (Severity::None, false, Decision::Healthy)
    );

    let mut judge = sketch("hold");
    assess(&mut judge, &tick(true, Some(0.082)));
    judge.reset();
    let (a, _) = assess(&mut judge, &tick(true, Some(0.082)));
    assert!(matches!(
        verdict_of(&a, "error_rate"),
        Verdict::Pending { streak: 1, .. }
    ));
}

#[test]
fn a_probe_slower_than_max_latency_fails_and_shows_its_latency() {
    let mut judge = Judge::new(&target(
        "[[probe]]\nname = \"health\"\nurl = \"http://127.0.0.1:1/h\"\nfailures = 2\nmax_latency = \"200ms\"\n",
    ));
    let at = |ms: f64| Observation {
        probes: vec![ProbeResult {
            latency_ms: ms,
            ..probe("health", true)
        }],
        ..Observation::default()
    };
    let (a, _) = assess(&mut judge, &at(150.0));
    assert_eq!(verdict_of(&a, "health"), Verdict::Pass);
    assert!(
        a.evidence[0].reason.contains("150 ms"),
        "{}",
        a.evidence[0].reason
    );
    let (a, _) = assess(&mut judge, &at(350.0));
    assert!(
        matches!(verdict_of(&a, "health"), Verdict::Pending { .. }),
        "{:?}",
        a.evidence
    );
    let (a, d) = assess(&mut judge, &at(350.0));
    assert_eq!(verdict_of(&a, "health"), Verdict::Fail(Severity::Critical));
    assert!(
        a.evidence[0]
            .reason
            .contains("HTTP 200 but 350 ms, over max_latency 200ms"),
        "{}",
        a.evidence[0].reason
    );
    assert_eq!(d.decision, Decision::Rollback);
    // Without max_latency, a slow answer is still a healthy one.
    let mut judge = Judge::new(&target(
        "[[probe]]\nname = \"health\"\nurl = \"http://127.0.0.1:1/h\"\nfailures = 1\n",
    ));
    let (a, _) = assess(&mut judge, &at(5000.0));
    assert_eq!(verdict_of(&a, "health"), Verdict::Pass);
}
