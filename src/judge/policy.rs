//! The decision matrix: rules are data (`[[policy.rule]]`), evaluated top to
//! bottom, first match wins.
//!
//! A rule matches when the assessment's severity matches the rule's (this one
//! or worse by default; `severity_match = "at_most"` or `"exactly"` say
//! otherwise), its data impact is the rule's or less, and its time to fix is
//! strictly over `time_to_fix_over` (any, when absent; an unknown time to fix
//! is over every limit). Around the rules:
//!
//! - an inconclusive assessment is `inconclusive`, whatever the rules say;
//! - severity `none` is `healthy` (rules are not consulted);
//! - an unmatched assessment is `consider_rollback`: a human decides;
//! - data impact `major` never gives `rollback`: a rule that would is turned
//!   into `consider_rollback`, and the reasons say so.

use crate::config::{PolicyConfig, PolicyRule, RuleDecision, SeverityMatch};
use crate::model::{Assessment, DataImpact, Decision, DecisionRecord, Severity, Verdict};
use std::time::Duration;

/// The runbook's matrix, used when the config has no `[[policy.rule]]`.
///
/// | severity | data impact | time to fix | decision |
/// |---|---|---|---|
/// | critical | none | > 30 min | rollback |
/// | high or worse | minor or less | > 60 min | rollback |
/// | medium or worse | none | > 2 h | consider_rollback |
/// | at most low | none | any | forward_fix |
///
/// With the default time to fix (unknown, over every limit): critical and
/// high roll back, medium asks a human, low fixes forward.
pub fn default_rules() -> Vec<PolicyRule> {
    let rule = |severity, severity_match, data_impact, minutes: Option<u64>, decision| PolicyRule {
        severity,
        severity_match,
        data_impact,
        time_to_fix_over: minutes.map(|m| Duration::from_secs(m * 60)),
        decision,
    };
    use SeverityMatch::{AtMost, OrWorse};
    vec![
        rule(
            Severity::Critical,
            OrWorse,
            DataImpact::None,
            Some(30),
            RuleDecision::Rollback,
        ),
        rule(
            Severity::High,
            OrWorse,
            DataImpact::Minor,
            Some(60),
            RuleDecision::Rollback,
        ),
        rule(
            Severity::Medium,
            OrWorse,
            DataImpact::None,
            Some(120),
            RuleDecision::ConsiderRollback,
        ),
        rule(
            Severity::Low,
            AtMost,
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
    rule.severity_match
        .matches(rule.severity, assessment.severity)
        && assessment.data_impact <= rule.data_impact
        && rule
            .time_to_fix_over
            .is_none_or(|over| assessment.time_to_fix.is_over(over))
}

/// A rule in words: `high or worse, data minor or less, time to fix over 1h
/// → rollback`.
pub fn describe_rule(rule: &PolicyRule) -> String {
    let severity = match (rule.severity_match, rule.severity) {
        (SeverityMatch::OrWorse, Severity::Critical) | (SeverityMatch::Exactly, _) => {
            rule.severity.to_string()
        }
        (SeverityMatch::OrWorse, s) => format!("{s} or worse"),
        (SeverityMatch::AtMost, Severity::Critical) => "any severity".to_owned(),
        (SeverityMatch::AtMost, s) => format!("at most {s}"),
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

/// The checks whose reading is above `none` but not yet confirmed, in
/// words (`error_rate reads medium`), so that a healthy decision never
/// hides a regression that the evidence cannot prove yet.
fn unconfirmed(assessment: &Assessment) -> Option<String> {
    let which: Vec<String> = assessment
        .evidence
        .iter()
        .filter_map(|e| match e.verdict {
            Verdict::Pending { severity, .. } if severity > Severity::None => {
                Some(format!("{} reads {severity}", e.check))
            }
            _ => None,
        })
        .collect();
    (!which.is_empty()).then(|| which.join(", "))
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
        assessment.severity, assessment.data_impact, assessment.time_to_fix
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
        record.reasons.push(match unconfirmed(assessment) {
            None => format!("{inputs}: nothing confirmed wrong → healthy"),
            Some(which) => format!(
                "{inputs}: nothing confirmed wrong yet → healthy for now; but {which}, without \
                 enough evidence yet to be sure: the bake window may be too short at this traffic \
                 to tell (see the evidence below)"
            ),
        });
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
