//! What `rollguard report` prints: one incident's report, or the list of
//! incidents, picked from journal records by target and release id.

use super::collect::incidents;
use super::incident::Incident;
use super::render::utc;
use crate::config::TargetConfig;
use crate::journal::Record;
use std::fmt::Write as _;
use std::time::SystemTime;

/// What was asked for.
#[derive(Debug, Clone, Default)]
pub struct Query<'a> {
    /// Only this target's incidents.
    pub target: Option<&'a str>,
    /// Only the incident of this release.
    pub release: Option<&'a str>,
    /// The list instead of a report.
    pub list: bool,
}

/// Why nothing can be printed for the query (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// Neither the configuration nor the journal knows the target.
    #[error("no target {0:?} in the configuration or the journal")]
    UnknownTarget(String),
    /// No incident has this release id.
    #[error("no incident with release id {0:?} in the journal{1}")]
    UnknownRelease(String, String),
}

/// The text to print: a Markdown report, the list, or a sentence saying
/// there is nothing.
pub fn select(
    records: &[Record],
    targets: &[TargetConfig],
    query: &Query<'_>,
    now: SystemTime,
) -> Result<String, SelectError> {
    if let Some(name) = query.target {
        let configured = targets.iter().any(|t| t.name == name);
        let journaled = records.iter().any(|r| r.target.as_deref() == Some(name));
        if !configured && !journaled {
            return Err(SelectError::UnknownTarget(name.to_owned()));
        }
    }
    let found: Vec<Incident> = incidents(records)
        .into_iter()
        .filter(|i| query.target.is_none_or(|t| i.target == t))
        .filter(|i| query.release.is_none_or(|id| i.release_id == id))
        .collect();
    if let (Some(id), true) = (query.release, found.is_empty()) {
        let known = records.iter().any(|r| {
            serde_json::to_value(&r.event)
                .ok()
                .and_then(|v| {
                    v.get("release_id")
                        .and_then(|v| v.as_str())
                        .map(|v| v == id)
                })
                .unwrap_or(false)
        });
        let why = if known {
            ": that release was not rolled back, and no decision called for it"
        } else {
            ""
        };
        return Err(SelectError::UnknownRelease(id.to_owned(), why.to_owned()));
    }
    let whose = query
        .target
        .map_or_else(|| "any target".to_owned(), str::to_owned);
    if query.list {
        if found.is_empty() {
            return Ok(format!("No incidents of {whose} in the journal.\n"));
        }
        return Ok(list(&found));
    }
    let Some(latest) = found.last() else {
        return Ok(format!(
            "No incident of {whose} in the journal: no rollback ran, and no decision called for one.\n"
        ));
    };
    let target = targets.iter().find(|t| t.name == latest.target);
    Ok(super::report_text(latest, target, now))
}

/// One line per incident, oldest first: when the release was seen (UTC),
/// target, release id, outcome, versions, report file.
fn list(found: &[Incident]) -> String {
    let mut out = String::new();
    for i in found {
        let _ = writeln!(
            out,
            "{}  {}  {}  {}  {} → {}  reports/{}",
            utc(i.released_at),
            i.target,
            i.release_id,
            i.outcome_word(),
            i.version.escape_debug(),
            i.previous_version
                .as_deref()
                .unwrap_or("unknown")
                .escape_debug(),
            super::file_name(i),
        );
    }
    out
}
