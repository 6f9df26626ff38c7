//! An incident as Markdown: title, summary, status message, timeline,
//! pipeline, the decision's evidence (`evidence.rs`), and what remains for
//! humans (`remains.rs`). Every value from outside goes through [`escape`].

use super::evidence;
use super::incident::{Incident, IncidentKind, StepRun};
use super::markdown::escape;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

/// What a report is written from besides the incident.
#[derive(Debug, Clone)]
pub struct ReportInput<'a> {
    /// The incident.
    pub incident: &'a Incident,
    /// Its status message, plain text.
    pub status_message: &'a str,
    /// The names of the target's guaranteed steps (restore, cleanup,
    /// `always`), from the configuration: the journal does not say which
    /// steps those are. Empty when unknown.
    pub restore_steps: &'a [String],
    /// When the report is written.
    pub generated_at: SystemTime,
}

/// A time in the report: `2026-12-04 03:12:05`, UTC; `unknown` when the
/// journal's stamp could not be read.
pub(super) fn utc(at: Option<SystemTime>) -> String {
    match at {
        Some(at) => humantime::format_rfc3339_seconds(at)
            .to_string()
            .replace('T', " ")
            .trim_end_matches('Z')
            .to_owned(),
        None => "unknown".to_owned(),
    }
}

/// `to - from`, when both are known and in that order.
fn between(from: Option<SystemTime>, to: Option<SystemTime>) -> Option<Duration> {
    to?.duration_since(from?).ok()
}

/// A duration for people: whole seconds, or milliseconds under ten seconds.
fn took(duration: Option<Duration>) -> String {
    match duration {
        Some(d) if d < Duration::from_secs(10) => {
            humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
        }
        Some(d) => humantime::format_duration(Duration::from_secs(d.as_secs())).to_string(),
        None => "unknown".to_owned(),
    }
}

/// Whether the decision acted on was taken in shadow mode.
pub(super) fn shadow(incident: &Incident) -> bool {
    incident
        .decision()
        .is_some_and(|d| d.mode == crate::model::Mode::Shadow)
}

/// What the outcome means, in a sentence.
fn meaning(incident: &Incident) -> String {
    let word = incident.outcome_word();
    let text = match word.as_str() {
        "completed" => "the previous version runs and the service was verified back to normal",
        "unverified" => {
            "the previous version runs, but the service was not verified back to normal"
        }
        "failed" => "a step failed and the pipeline stopped; only the restore steps ran after it",
        "interrupted" => {
            "rollguard stopped (or lost the leadership) during the rollback; only the restore steps ran after that"
        }
        "in_progress" => {
            "the rollback has not finished (or rollguard stopped during it and has not started again)"
        }
        "would_roll_back" => "shadow mode: rollguard would have rolled back; nothing was changed",
        _ if shadow(incident) => {
            "shadow mode: rollguard would have asked for approval to roll back; nothing was changed"
        }
        _ if incident.approval_requested.is_some() => {
            "a rollback was asked for approval and none ran"
        }
        _ => "a rollback was called for and none ran",
    };
    format!("{} ({text})", escape(&word))
}

/// Renders the whole report.
pub fn render(input: &ReportInput<'_>) -> String {
    let i = input.incident;
    let mut out = String::new();
    let previous = i.previous_version.as_deref().unwrap_or("unknown");
    let headline = match i.kind {
        IncidentKind::RolledBack => "rolled back",
        IncidentKind::WouldHaveRolledBack => "would have been rolled back (shadow mode)",
        IncidentKind::Considered => "rollback considered",
    };
    let _ = writeln!(
        out,
        "# Incident: {} {} {headline}\n",
        escape(&i.target),
        escape(&i.version)
    );
    summary(&mut out, i, previous);
    let _ = writeln!(
        out,
        "## Status message\n\n{}\n",
        escape(input.status_message)
    );
    timeline(&mut out, i);
    pipeline(&mut out, i, input.restore_steps);
    evidence::section(&mut out, i);
    super::remains::section(&mut out, i, input.restore_steps);
    let _ = writeln!(
        out,
        "---\n\n_Written by rollguard {} at {} UTC from journal records {} to {}. \
         `rollguard report {} --release {}` prints it again with what was journaled since._",
        env!("CARGO_PKG_VERSION"),
        utc(Some(input.generated_at)),
        i.seqs.0,
        i.seqs.1,
        escape(&i.target),
        escape(&i.release_id),
    );
    out
}

fn summary(out: &mut String, i: &Incident, previous: &str) {
    let _ = writeln!(out, "## Summary\n");
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "- **{label}:** {value}");
    };
    line("Target", escape(&i.target));
    line("Release id", escape(&i.release_id));
    let arrow = match i.kind {
        IncidentKind::RolledBack => "restored",
        _ => "would restore",
    };
    line(
        &format!("Bad version → {arrow}"),
        format!("{} → {}", escape(&i.version), escape(previous)),
    );
    line("Outcome", meaning(i));
    let trigger = match &i.rollback {
        Some(run) => match run.trigger.as_str() {
            "automatic" => "automatic (rollguard, on the decision matrix)".to_owned(),
            "approved" => format!("approved (by a human at {} UTC)", utc(i.approved_at)),
            other => escape(other),
        },
        None => "none: no rollback ran".to_owned(),
    };
    line("Trigger", trigger);
    if let Some(d) = i.decision() {
        line("Mode", escape(d.mode.as_str()));
        line(
            "Decision",
            format!("{}, severity {}", d.decision, d.severity),
        );
    }
    line(
        "Time to detect",
        format!(
            "{} (release seen → decision)",
            took(between(i.released_at, i.detected_at()))
        ),
    );
    if let Some(run) = &i.rollback {
        line(
            "Time to recover",
            match i.restored_at() {
                Some(at) => format!(
                    "{} (release seen → previous version back)",
                    took(between(i.released_at, Some(at)))
                ),
                None => "not recovered by rollguard".to_owned(),
            },
        );
        let ended = run.finished.as_ref().and_then(|(at, _)| *at);
        if run.finished.is_some() {
            line("Rollback took", took(between(run.started_at, ended)));
        }
    }
    out.push('\n');
}

/// One timeline row: when, what, details (already escaped).
type Row = (Option<SystemTime>, String, String);

fn timeline(out: &mut String, i: &Incident) {
    let mut rows: Vec<Row> = Vec::new();
    let from = i.previous_version.as_deref().unwrap_or("unknown");
    rows.push((
        i.released_at,
        "Release detected".into(),
        format!(
            "{} → {}, seen by {}",
            escape(from),
            escape(&i.version),
            escape(i.source.as_deref().unwrap_or("unknown"))
        ),
    ));
    if let Some((at, severity)) = i.first_failing {
        rows.push((
            at,
            "First failing tick".into(),
            format!("severity {severity}"),
        ));
    }
    for d in &i.decisions {
        let rule = d
            .rule
            .as_deref()
            .map(escape)
            .unwrap_or_else(|| "no rule".into());
        rows.push((
            d.at,
            "Decision".into(),
            format!(
                "{} (severity {}, mode {}): {rule}",
                d.decision, d.severity, d.mode
            ),
        ));
    }
    if let Some((at, expires)) = &i.approval_requested {
        let until = format!("until {}", escape(expires));
        rows.push((*at, "Approval requested".into(), until));
    }
    if i.approved_at.is_some() {
        rows.push((i.approved_at, "Approved".into(), "by a human".into()));
    }
    if let Some(run) = &i.rollback {
        let what = format!(
            "trigger {}, {} → {}",
            escape(&run.trigger),
            escape(&i.version),
            escape(from)
        );
        rows.push((run.started_at, "Rollback started".into(), what));
        for step in &run.steps {
            if step.started_at.is_some() {
                let what = format!("{} (attempt {})", escape(&step.name), step.attempt);
                rows.push((step.started_at, "Step started".into(), what));
            }
            if let Some(outcome) = step.outcome {
                let what = format!("{}: {outcome}{}", escape(&step.name), message(step));
                rows.push((step.finished_at, "Step finished".into(), what));
            }
        }
        if let Some((at, word)) = &run.finished {
            rows.push((*at, "Rollback finished".into(), escape(word)));
        }
    }
    if i.restored_seen_at.is_some() {
        rows.push((
            i.restored_seen_at,
            "Restored version running".into(),
            format!(
                "{} seen again; verified as rollguard's own release",
                escape(from)
            ),
        ));
    }
    for n in &i.notifications {
        let result = if n.ok { "delivered" } else { "not delivered" };
        let what = format!(
            "{} to {}: {result} ({} attempt(s))",
            escape(&n.event),
            escape(&n.notifier),
            n.attempts
        );
        rows.push((n.at, "Notification".into(), what));
    }
    if i.bake_finished_at.is_some() {
        rows.push((
            i.bake_finished_at,
            "Bake window closed".into(),
            String::new(),
        ));
    }
    rows.sort_by_key(|(at, _, _)| at.unwrap_or(SystemTime::UNIX_EPOCH));
    let _ = writeln!(
        out,
        "## Timeline (UTC)\n\n| Time (UTC) | Event | Details |\n|---|---|---|"
    );
    for (at, event, details) in rows {
        let _ = writeln!(out, "| {} | {event} | {details} |", utc(at));
    }
    out.push('\n');
}

/// `": message"`, escaped, or nothing.
pub(super) fn message(step: &StepRun) -> String {
    step.message
        .as_deref()
        .map(|m| format!(": {}", escape(m)))
        .unwrap_or_default()
}

fn pipeline(out: &mut String, i: &Incident, restore_steps: &[String]) {
    let Some(run) = &i.rollback else { return };
    let _ = writeln!(
        out,
        "## Pipeline\n\n| # | Step | Attempt | Started | Ended | Duration | Outcome | Message |\n|---|---|---|---|---|---|---|---|"
    );
    for (n, step) in run.steps.iter().enumerate() {
        let name = if restore_steps.contains(&step.name) {
            format!("{} (restore)", escape(&step.name))
        } else {
            escape(&step.name)
        };
        let outcome = step
            .outcome
            .map_or_else(|| "never finished".to_owned(), |o| o.as_str().to_owned());
        let ended = if step.finished_at.is_some() {
            utc(step.finished_at)
        } else {
            "—".into()
        };
        let _ = writeln!(
            out,
            "| {} | {name} | {} | {} | {ended} | {} | {outcome} | {} |",
            n + 1,
            step.attempt,
            utc(step.started_at),
            took(between(step.started_at, step.finished_at)),
            step.message.as_deref().map(escape).unwrap_or_default(),
        );
    }
    if run.steps.is_empty() {
        let _ = writeln!(out, "| | no step was journaled | | | | | | |");
    }
    out.push('\n');
}
