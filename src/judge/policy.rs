//! The decision matrix: rules are data (`[[policy.rule]]`), evaluated top to
//! bottom, first match wins.
//!
//! A rule matches when the assessment's severity is the rule's or worse, its
//! data impact is the rule's or less, and its time to fix is strictly over
//! `time_to_fix_over` (any, when absent). Around the rules:
//!
//! - an inconclusive assessment is `inconclusive`, whatever the rules say;
//! - severity `none` is `healthy` (rules are not consulted);
//! - an unmatched assessment is `consider_rollback`: a human decides;
//! - data impact `major` never gives `rollback`: a rule that would is turned
//!   into `consider_rollback`, and the reasons say so.

use crate::config::{PolicyConfig, PolicyRule, RuleDecision};
use crate::model::{Assessment, DataImpact, Decision, DecisionRecord, Severity, Verdict};
use std::time::Duration;

/// The runbook's matrix, used when the config has no `[[policy.rule]]`.
///
/// | severity | data impact | time to fix | decision |
/// |---|---|---|---|
/// | critical | none | > 30 min | rollback |
/// | high or worse | minor or less | > 60 min | rollback |
/// | medium or worse | none | > 2 h | consider_rollback |
/// | low | none | any | forward_fix |
pub fn default_rules() -> Vec<PolicyRule> {
    let rule = |severity, data_impact, minutes: Option<u64>, decision| PolicyRule {
        severity,
        data_impact,
        time_to_fix_over: minutes.map(|m| Duration::from_secs(m * 60)),
        decision,
    };
    vec![
        rule(
            Severity::Critical,
            DataImpact::None,
            Some(30),
            RuleDecision::Rollback,
        ),
        rule(
            Severity::High,
            DataImpact::Minor,
            Some(60),
            RuleDecision::Rollback,
        ),
        rule(
            Severity::Medium,
            DataImpact::None,
            Some(120),
            RuleDecision::ConsiderRollback,
        ),
        rule(
            Severity::Low,
            DataImpact::None,
            None,
            RuleDecision::ForwardFix,
        ),
    ]
}

/// The rules in force: the config's, or the runbook's defaults when it has
/// none.
pub fn effective_rules(policy: &PolicyConfig) -> Vec<PolicyRule> {
    if policy.rule.is_empty() {
        default_rules()
    } else {
        policy.rule.clone()
    }
}

/// Whether `rule` matches `assessment` (ignoring `inconclusive`).
pub fn rule_matches(rule: &PolicyRule, assessment: &Assessment) -> bool {
    assessment.severity >= rule.severity
        && assessment.data_impact <= rule.data_impact
        && rule
            .time_to_fix_over
            .is_none_or(|over| assessment.time_to_fix > over)
}

/// A rule in words: `high or worse, data minor or less, time to fix over 1h
/// → rollback`.
pub fn describe_rule(rule: &PolicyRule) -> String {
    let severity = match rule.severity {
        Severity::Critical => "critical".to_owned(),
        s => format!("{s} or worse"),
    };
    let data = match rule.data_impact {
        DataImpact::None => "data none".to_owned(),
        DataImpact::Major => "any data impact".to_owned(),
        d => format!("data {d} or less"),
    };
    let time = match rule.time_to_fix_over {
        Some(over) => format!("time to fix over {}", humantime::format_duration(over)),
        None => "any time to fix".to_owned(),
    };
    format!(
        "{severity}, {data}, {time} → {}",
        to_decision(rule.decision)
    )
}

/// What a rule's decision means as a [`Decision`].
pub fn to_decision(decision: RuleDecision) -> Decision {
    match decision {
        RuleDecision::Rollback => Decision::Rollback,
        RuleDecision::ConsiderRollback => Decision::ConsiderRollback,
        RuleDecision::ForwardFix => Decision::ForwardFix,
    }
}

/// Decides what to do about `assessment` under `rules` (first match wins),
/// with the rule and the evidence that led there.
pub fn decide(rules: &[PolicyRule], assessment: &Assessment) -> DecisionRecord {
    let inputs = format!(
        "severity {}, data impact {}, time to fix {}",
        assessment.severity,
        assessment.data_impact,
        humantime::format_duration(assessment.time_to_fix)
    );
    let mut record = DecisionRecord {
        decision: Decision::Inconclusive,
        severity: assessment.severity,
        data_impact: assessment.data_impact,
        time_to_fix: assessment.time_to_fix,
        rule: None,
        reasons: Vec::new(),
    };
    let unevaluated: Vec<&str> = assessment
        .evidence
        .iter()
        .filter(|e| matches!(e.verdict, Verdict::NoData | Verdict::Error))
        .map(|e| e.check.as_str())
        .collect();

    if assessment.inconclusive {
        record.reasons.push(format!(
            "inconclusive: {} could not be evaluated and no check has a confirmed failure; \
             rollguard never acts on missing data",
            if unevaluated.is_empty() {
                "some check".to_owned()
            } else {
                unevaluated.join(", ")
            }
        ));
    } else if assessment.severity == Severity::None {
        record.decision = Decision::Healthy;
        record.rule = Some("default: severity none → healthy".to_owned());
        record
            .reasons
            .push(format!("{inputs}: nothing confirmed wrong → healthy"));
    } else {
        let defaults = rules == default_rules().as_slice();
        let matched = rules
            .iter()
            .enumerate()
            .find(|(_, rule)| rule_matches(rule, assessment));
        match matched {
            Some((index, rule)) => {
                let label = format!(
                    "policy.rule[{index}]{}: {}",
                    if defaults { " (runbook default)" } else { "" },
                    describe_rule(rule)
                );
                record.decision = to_decision(rule.decision);
                record.reasons.push(format!("{inputs}: matched {label}"));
                record.rule = Some(label);
            }
            None => {
                let label = format!(
                    "default: severity {} matched no rule → consider_rollback (a human decides)",
                    assessment.severity
                );
                record.decision = Decision::ConsiderRollback;
                record.reasons.push(format!("{inputs}: {label}"));
                record.rule = Some(label);
            }
        }
        if record.decision == Decision::Rollback && assessment.data_impact == DataImpact::Major {
            record.decision = Decision::ConsiderRollback;
            record.reasons.push(
                "data impact major: never rolled back automatically (prefer a forward fix \
                 when migrations are involved) → consider_rollback"
                    .to_owned(),
            );
        }
        if !unevaluated.is_empty() {
            record.reasons.push(format!(
                "judged on what is known: {} could not be evaluated",
                unevaluated.join(", ")
            ));
        }
    }
    record.reasons.extend(
        assessment
            .evidence
            .iter()
            .filter(|e| e.verdict != Verdict::Pass)
            .map(|e| e.reason.clone()),
    );
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::fixtures::assessment;
    use crate::model::DataImpact::{Major, Minor};

    fn decision(severity: Severity, data: DataImpact, minutes: u64) -> Decision {
        decide(&default_rules(), &assessment(severity, data, minutes)).decision
    }

    #[test]
    fn each_row_of_the_runbook_matrix() {
        assert_eq!(
            decision(Severity::Critical, DataImpact::None, 31),
            Decision::Rollback
        );
        assert_eq!(decision(Severity::High, Minor, 61), Decision::Rollback);
        assert_eq!(decision(Severity::Critical, Minor, 61), Decision::Rollback);
        assert_eq!(
            decision(Severity::Medium, DataImpact::None, 121),
            Decision::ConsiderRollback
        );
        assert_eq!(
            decision(Severity::Low, DataImpact::None, 5),
            Decision::ForwardFix
        );
        assert_eq!(
            decision(Severity::Low, DataImpact::None, 600),
            Decision::ForwardFix
        );
    }

    #[test]
    fn time_to_fix_is_strictly_over() {
        // Exactly 30 min: row 0 does not match; row 3 (low or worse, any) does.
        assert_eq!(
            decision(Severity::Critical, DataImpact::None, 30),
            Decision::ForwardFix
        );
        // Exactly 60 min with minor data: nothing matches.
        assert_eq!(
            decision(Severity::High, Minor, 60),
            Decision::ConsiderRollback
        );
    }

    #[test]
    fn first_match_wins() {
        let mut rules = default_rules();
        rules.insert(
            0,
            PolicyRule {
                severity: Severity::Low,
                data_impact: DataImpact::None,
                time_to_fix_over: None,
                decision: RuleDecision::ForwardFix,
            },
        );
        let record = decide(
            &rules,
            &assessment(Severity::Critical, DataImpact::None, 90),
        );
        assert_eq!(record.decision, Decision::ForwardFix);
        assert_eq!(
            record.rule.as_deref(),
            Some("policy.rule[0]: low or worse, data none, any time to fix → forward_fix")
        );
    }

    #[test]
    fn unmatched_is_consider_rollback_and_none_is_healthy() {
        let record = decide(&default_rules(), &assessment(Severity::Medium, Minor, 10));
        assert_eq!(record.decision, Decision::ConsiderRollback);
        assert!(
            record
                .rule
                .as_deref()
                .is_some_and(|r| r.starts_with("default:"))
        );
        let record = decide(&default_rules(), &assessment(Severity::None, Major, 999));
        assert_eq!(record.decision, Decision::Healthy);
        assert_eq!(
            decide(&[], &assessment(Severity::Critical, DataImpact::None, 999)).decision,
            Decision::ConsiderRollback
        );
    }

    #[test]
    fn major_data_impact_never_rolls_back() {
        let reckless = PolicyRule {
            severity: Severity::Low,
            data_impact: Major,
            time_to_fix_over: None,
            decision: RuleDecision::Rollback,
        };
        for rules in [default_rules(), vec![reckless]] {
            for severity in Severity::ALL {
                for minutes in [0, 31, 61, 121, 10_000] {
                    let record = decide(&rules, &assessment(severity, Major, minutes));
                    assert_ne!(record.decision, Decision::Rollback, "{severity} {minutes}m");
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
        for data in [DataImpact::None, Minor, Major] {
            for minutes in [0, 30, 31, 60, 61, 120, 121, 10_000] {
                let mut previous = 0;
                for severity in Severity::ALL {
                    let now = rank(decision(severity, data, minutes));
                    assert!(now >= previous, "{severity} {data} {minutes}m");
                    previous = now;
                }
            }
        }
    }

    #[test]
    fn inconclusive_never_acts() {
        let mut a = assessment(Severity::None, DataImpact::None, 999);
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
        let record = decide(
            &default_rules(),
            &assessment(Severity::High, DataImpact::None, 90),
        );
        assert_eq!(
            record.rule.as_deref(),
            Some(
                "policy.rule[1] (runbook default): high or worse, data minor or less, \
                 time to fix over 1h → rollback"
            )
        );
    }
}
