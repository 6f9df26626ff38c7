//! The report's "Decision evidence": the decision acted on, its rule and
//! reasons, and each check's value, baseline, threshold, statistic and
//! reason from the assessment journaled with it.

use super::incident::Incident;
use super::markdown::escape;
use crate::model::{Assessment, CheckEvidence, Verdict};
use std::fmt::Write as _;

/// A number for people: at most four decimals, no trailing zeros.
fn number(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => {
            let text = format!("{v:.4}");
            let text = text.trim_end_matches('0').trim_end_matches('.');
            if text == "-0" {
                "0".to_owned()
            } else {
                text.to_owned()
            }
        }
        Some(v) => v.to_string(),
        None => "—".to_owned(),
    }
}

fn verdict(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Pass => "pass".to_owned(),
        Verdict::Fail(severity) => format!("fail ({severity})"),
        Verdict::Pending {
            severity,
            streak,
            needed,
        } => format!("pending ({severity}, {streak} of {needed})"),
        Verdict::NoData => "no data".to_owned(),
        Verdict::Error => "error".to_owned(),
    }
}

fn row(out: &mut String, e: &CheckEvidence) {
    let statistic = e.statistic.map_or_else(
        || "—".to_owned(),
        |s| {
            format!(
                "e-value {} of {}{} (null rate {})",
                number(Some(s.e_value)),
                number(Some(s.threshold)),
                if s.rejected { ", reached" } else { "" },
                number(Some(s.null_rate)),
            )
        },
    );
    let kind = match e.kind {
        crate::model::CheckKind::Probe => "probe",
        crate::model::CheckKind::Metric => "metric",
    };
    let _ = writeln!(
        out,
        "| {} | {kind} | {} | {} | {} | {} | {} | {statistic} | {} of {} | {} |",
        escape(&e.check),
        verdict(&e.verdict),
        number(e.value),
        number(e.baseline),
        number(e.ratio),
        number(e.threshold),
        e.streak,
        e.needed,
        escape(&e.reason),
    );
}

/// Writes the section (nothing to say without a decision).
pub(super) fn section(out: &mut String, i: &Incident) {
    let _ = writeln!(out, "## Decision evidence\n");
    let Some(d) = i.decision() else {
        let _ = writeln!(out, "The journal holds no decision about this release.\n");
        return;
    };
    let _ = writeln!(
        out,
        "- **Decision:** {} (severity {}, mode {}) at {} UTC",
        d.decision,
        d.severity,
        d.mode,
        super::render::utc(d.at)
    );
    let rule = d
        .rule
        .as_deref()
        .map_or_else(|| "none matched".to_owned(), escape);
    let _ = writeln!(out, "- **Matrix rule:** {rule}");
    let assessment = d
        .assessment
        .clone()
        .and_then(|value| serde_json::from_value::<Assessment>(value).ok());
    if let Some(a) = &assessment {
        let _ = writeln!(
            out,
            "- **Data impact:** {} · **Time to fix:** {} · **Inconclusive:** {}",
            a.data_impact,
            escape(&a.time_to_fix.as_config()),
            if a.inconclusive { "yes" } else { "no" }
        );
    }
    if !d.reasons.is_empty() {
        let _ = writeln!(out, "- **Reasons:**");
        for reason in &d.reasons {
            let _ = writeln!(out, "  - {}", escape(reason));
        }
    }
    out.push('\n');
    match assessment {
        Some(a) if !a.evidence.is_empty() => {
            let _ = writeln!(
                out,
                "| Check | Kind | Verdict | Value | Baseline | Ratio | Threshold | Statistic | Streak | Reason |\n|---|---|---|---|---|---|---|---|---|---|"
            );
            for e in &a.evidence {
                row(out, e);
            }
        }
        Some(_) => {
            let _ = writeln!(out, "The assessment names no check.");
        }
        None => {
            let _ = writeln!(
                out,
                "The journal holds no assessment this version can read for this decision."
            );
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(number(Some(0.08333333)), "0.0833");
        assert_eq!(number(Some(2.0)), "2");
        assert_eq!(number(Some(-0.00001)), "0");
        assert_eq!(number(Some(f64::INFINITY)), "inf");
        assert_eq!(number(None), "—");
    }
}
