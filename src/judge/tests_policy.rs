//! The decision matrix, row by row at its boundaries, and the unknown time
//! to fix.

use super::policy::*;
use crate::config::{PolicyConfig, PolicyRule, RuleDecision, SeverityMatch};
use crate::judge::fixtures::{assessment, minutes};
use crate::model::DataImpact::{Major, Minor};
use crate::model::TimeToFix::{self, Unknown};
use crate::model::{DataImpact, Decision, Severity};

fn decision(severity: Severity, data: DataImpact, time: TimeToFix) -> Decision {
    decide(&default_rules(), &assessment(severity, data, time)).decision
}

/// The rule that decided, as `decide` names it.
fn rule_of(severity: Severity, data: DataImpact, time: TimeToFix) -> String {
    decide(&default_rules(), &assessment(severity, data, time))
        .rule
        .unwrap_or_default()
}

const NONE: DataImpact = DataImpact::None;

#[test]
fn row_0_critical_over_30_minutes_rolls_back() {
    assert_eq!(
        decision(Severity::Critical, NONE, minutes(31)),
        Decision::Rollback
    );
    assert!(rule_of(Severity::Critical, NONE, minutes(31)).starts_with("policy.rule[0]"));
    // Exactly 30 min: not over; no other row matches a critical with a quick fix.
    assert_eq!(
        decision(Severity::Critical, NONE, minutes(30)),
        Decision::ConsiderRollback
    );
    assert!(rule_of(Severity::Critical, NONE, minutes(30)).starts_with("default:"));
    assert_eq!(
        decision(Severity::High, NONE, minutes(31)),
        Decision::ConsiderRollback
    );
}

#[test]
fn row_1_high_or_worse_minor_data_over_an_hour_rolls_back() {
    for severity in [Severity::High, Severity::Critical] {
        for data in [NONE, Minor] {
            assert_eq!(decision(severity, data, minutes(61)), Decision::Rollback);
        }
    }
    assert!(rule_of(Severity::High, Minor, minutes(61)).starts_with("policy.rule[1]"));
    assert_eq!(
        decision(Severity::High, Minor, minutes(60)),
        Decision::ConsiderRollback
    );
    assert_eq!(
        decision(Severity::High, Major, Unknown),
        Decision::ConsiderRollback
    );
}

#[test]
fn row_2_medium_or_worse_over_two_hours_asks_a_human() {
    assert_eq!(
        decision(Severity::Medium, NONE, minutes(121)),
        Decision::ConsiderRollback
    );
    assert!(rule_of(Severity::Medium, NONE, minutes(121)).starts_with("policy.rule[2]"));
    // Exactly 2 h: row 2 does not match, and nothing else does: still a human.
    assert!(rule_of(Severity::Medium, NONE, minutes(120)).starts_with("default:"));
    assert_eq!(
        decision(Severity::Medium, NONE, minutes(120)),
        Decision::ConsiderRollback
    );
}

#[test]
fn row_3_forward_fix_is_for_low_and_nothing_worse() {
    for time in [minutes(0), minutes(600), Unknown] {
        assert_eq!(decision(Severity::Low, NONE, time), Decision::ForwardFix);
        assert!(rule_of(Severity::Low, NONE, time).starts_with("policy.rule[3]"));
    }
    assert_eq!(
        decision(Severity::Low, Minor, minutes(5)),
        Decision::ConsiderRollback
    );
    // The defect of issue #12: a quick fix for a medium, high or critical
    // regression is no reason to say nothing to a human.
    for (severity, quick) in [
        (Severity::Medium, 120),
        (Severity::High, 60),
        (Severity::Critical, 30),
    ] {
        for m in [0, 5, quick] {
            assert_eq!(
                decision(severity, NONE, minutes(m)),
                Decision::ConsiderRollback,
                "{severity} {m}m"
            );
        }
    }
    assert_eq!(
        rule_of(Severity::Low, NONE, Unknown),
        "policy.rule[3] (runbook default): at most low, data none, any time to fix → forward_fix"
    );
}

#[test]
fn an_unknown_time_to_fix_is_over_every_limit() {
    assert_eq!(
        decision(Severity::Critical, NONE, Unknown),
        Decision::Rollback
    );
    assert_eq!(decision(Severity::High, NONE, Unknown), Decision::Rollback);
    assert_eq!(decision(Severity::High, Minor, Unknown), Decision::Rollback);
    assert_eq!(
        decision(Severity::Medium, NONE, Unknown),
        Decision::ConsiderRollback
    );
    assert_eq!(decision(Severity::Low, NONE, Unknown), Decision::ForwardFix);
    let record = decide(&default_rules(), &assessment(Severity::High, NONE, Unknown));
    assert!(
        record.reasons[0].contains("time to fix unknown (set it with `rollguard eta`)"),
        "{:?}",
        record.reasons
    );
    assert_eq!(record.time_to_fix, Unknown);
}

#[test]
fn severity_match_or_worse_at_most_and_exactly() {
    let rule = |severity_match| PolicyRule {
        severity: Severity::Medium,
        severity_match,
        data_impact: NONE,
        time_to_fix_over: None,
        decision: RuleDecision::Rollback,
    };
    let matched = |m, s| rule_matches(&rule(m), &assessment(s, NONE, Unknown));
    use SeverityMatch::{AtMost, Exactly, OrWorse};
    let expect = [
        (Severity::Low, [false, true, false]),
        (Severity::Medium, [true, true, true]),
        (Severity::High, [true, false, false]),
        (Severity::Critical, [true, false, false]),
    ];
    for (severity, [or_worse, at_most, exactly]) in expect {
        assert_eq!(matched(OrWorse, severity), or_worse, "or_worse {severity}");
        assert_eq!(matched(AtMost, severity), at_most, "at_most {severity}");
        assert_eq!(matched(Exactly, severity), exactly, "exactly {severity}");
    }
    assert!(describe_rule(&rule(Exactly)).starts_with("medium, data none"));
    assert!(describe_rule(&rule(OrWorse)).starts_with("medium or worse,"));
}

#[test]
fn first_match_wins() {
    let mut rules = default_rules();
    rules.insert(
        0,
        PolicyRule {
            severity: Severity::Low,
            severity_match: SeverityMatch::OrWorse,
            data_impact: NONE,
            time_to_fix_over: None,
            decision: RuleDecision::ForwardFix,
        },
    );
    let record = decide(&rules, &assessment(Severity::Critical, NONE, minutes(90)));
    assert_eq!(record.decision, Decision::ForwardFix);
    assert_eq!(
        record.rule.as_deref(),
        Some("policy.rule[0]: low or worse, data none, any time to fix → forward_fix")
    );
}

#[test]
fn unmatched_is_consider_rollback_and_none_is_healthy() {
    let record = decide(
        &default_rules(),
        &assessment(Severity::Medium, Minor, minutes(10)),
    );
    assert_eq!(record.decision, Decision::ConsiderRollback);
    assert!(
        record
            .rule
            .as_deref()
            .is_some_and(|r| r.starts_with("default:"))
    );
    let record = decide(
        &default_rules(),
        &assessment(Severity::None, Major, Unknown),
    );
    assert_eq!(record.decision, Decision::Healthy);
    assert_eq!(
        decide(&[], &assessment(Severity::Critical, NONE, Unknown)).decision,
        Decision::ConsiderRollback
    );
}

#[test]
fn major_data_impact_never_rolls_back() {
    let reckless = PolicyRule {
        severity: Severity::Low,
        severity_match: SeverityMatch::OrWorse,
        data_impact: Major,
        time_to_fix_over: None,
        decision: RuleDecision::Rollback,
    };
    for rules in [default_rules(), vec![reckless]] {
        for severity in Severity::ALL {
            for time in [minutes(0), minutes(31), minutes(61), minutes(121), Unknown] {
                let record = decide(&rules, &assessment(severity, Major, time));
                assert_ne!(record.decision, Decision::Rollback, "{severity} {time}");
                if severity > Severity::None {
                    assert_eq!(record.decision, Decision::ConsiderRollback);
                }
            }
        }
    }
}

#[test]
fn a_worse_severity_never_gives_a_milder_decision_under_the_defaults() {
    let rank = |d: Decision| match d {
        Decision::Healthy | Decision::Inconclusive => 0,
        Decision::ForwardFix => 1,
        Decision::ConsiderRollback => 2,
        Decision::Rollback => 3,
    };
    for data in [NONE, Minor, Major] {
        for time in [0, 30, 31, 60, 61, 120, 121]
            .map(minutes)
            .into_iter()
            .chain([Unknown])
        {
            let mut previous = 0;
            for severity in Severity::ALL {
                let now = rank(decision(severity, data, time));
                assert!(now >= previous, "{severity} {data} {time}");
                previous = now;
            }
        }
    }
}

#[test]
fn inconclusive_never_acts() {
    let mut a = assessment(Severity::None, NONE, Unknown);
    a.inconclusive = true;
    let record = decide(&default_rules(), &a);
    assert_eq!(record.decision, Decision::Inconclusive);
    assert_eq!(record.rule, None);
}

#[test]
fn effective_rules_fall_back_to_the_runbook() {
    assert_eq!(effective_rules(&PolicyConfig::default()), default_rules());
    let policy = PolicyConfig {
        rule: default_rules()[..1].to_vec(),
    };
    assert_eq!(effective_rules(&policy).len(), 1);
    assert_eq!(
        rule_of(Severity::High, NONE, minutes(90)),
        "policy.rule[1] (runbook default): high or worse, data minor or less, \
         time to fix over 1h → rollback"
    );
}

#[test]
fn a_healthy_decision_names_what_is_not_yet_proven() {
    use crate::model::{CheckEvidence, CheckKind, Verdict};
    let mut a = assessment(Severity::None, NONE, Unknown);
    let record = decide(&default_rules(), &a);
    assert!(record.reasons[0].ends_with("nothing confirmed wrong → healthy"));
    let mut pending = CheckEvidence::unknown("error_rate", CheckKind::Metric, 2);
    pending.verdict = Verdict::Pending {
        severity: Severity::Medium,
        streak: 4,
        needed: 2,
    };
    pending.reason = "error_rate ...; not yet significant".to_owned();
    a.evidence.push(pending);
    let record = decide(&default_rules(), &a);
    assert_eq!(record.decision, Decision::Healthy);
    assert!(
        record.reasons[0].contains("but error_rate reads medium, without enough evidence yet"),
        "{:?}",
        record.reasons
    );
    assert!(
        record
            .reasons
            .iter()
            .any(|r| r.contains("not yet significant"))
    );
}
