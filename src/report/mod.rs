//! Incident reports, written from the journal: one Markdown file per
//! incident under `<state_dir>/reports/`, and the short status message for
//! a status page.
//!
//! - [`incidents`] finds them in journal records (pure): a release whose
//!   rollback started, or that a decision said to roll back in shadow mode
//!   ("would have rolled back"), or to consider rolling back while no
//!   rollback ran. rollguard's own releases never are.
//! - [`render()`] writes one as Markdown (pure), [`status_message`] its
//!   status page text.
//! - [`write_for_release`] writes the file (temporary file, then rename),
//!   named `<target>-<YYYYMMDDTHHMMSSZ>-<release id>.md` after the
//!   release's target, time and id: the same incident always gets the same
//!   name, so a later write replaces it with a fuller report, and a
//!   different incident never does.
//!
//! The daemon writes a report when a rollback ends (any outcome, recovery
//! after a crash included), when shadow mode would have rolled back, and
//! again when the release's bake window closes (then with the
//! notifications delivered since, and for a release whose rollback was
//! only considered). A report that cannot be written is logged and counted
//! (`rollguard_reports_total{result="error"}`), never more:
//! [`on_incident`] returns nothing that could stop a rollback.

mod collect;
mod evidence;
mod incident;
mod markdown;
mod remains;
mod render;
mod select;
mod status;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_incidents;

pub use collect::incidents;
pub use incident::{
    DecisionEntry, Incident, IncidentKind, NotificationEntry, RollbackRun, StepRun,
};
pub use markdown::escape;
pub use render::{ReportInput, render};
pub use select::{Query, SelectError, select};
pub use status::{status_message, variables as status_variables};

use crate::config::TargetConfig;
use crate::journal::{Event, Journal, Record};
use crate::metrics::{Metrics, ResultLabels};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct ReportError {
    /// What was being done, with the path.
    context: String,
    /// Why it failed.
    #[source]
    source: std::io::Error,
}

/// The names of a target's guaranteed steps (restore, cleanup, `always`),
/// which the report marks: the journal does not say.
pub fn restore_steps(target: &TargetConfig) -> Vec<String> {
    target
        .step
        .iter()
        .filter(|step| step.common.guaranteed())
        .map(crate::pipeline::step_name)
        .collect()
}

/// A report's file name: target, the release's UTC time, release id; only
/// letters, digits, `-`, `_` and `.`.
pub fn file_name(incident: &Incident) -> String {
    let time = incident
        .released_at
        .map(crate::time::compact_utc)
        .unwrap_or_else(|| "unknown-time".to_owned());
    let name = format!("{}-{time}-{}", incident.target, incident.release_id);
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}.md", safe.trim_start_matches('.'))
}

/// The report of `incident` as `rollguard report` and the daemon write it,
/// with `target`'s settings when the configuration still has it.
pub fn report_text(incident: &Incident, target: Option<&TargetConfig>, now: SystemTime) -> String {
    let template = target.and_then(|t| t.status_message.as_deref());
    let message = status_message(incident, template);
    let restore = target.map(restore_steps).unwrap_or_default();
    render(&ReportInput {
        incident,
        status_message: &message,
        restore_steps: &restore,
        generated_at: now,
    })
}

/// What writing a report did.
#[derive(Debug)]
pub struct Written {
    /// The incident's status message (known even when the file is not).
    pub status_message: String,
    /// The file, or why it could not be written.
    pub file: Result<PathBuf, ReportError>,
}

/// Writes the report of `release_id` of `target` into
/// `<state_dir>/reports/`, from `records` (the target's), when that release
/// is an incident; `None` when it is not.
pub fn write_for_release(
    state_dir: &Path,
    records: &[Record],
    target: &TargetConfig,
    release_id: &str,
    now: SystemTime,
) -> Option<Written> {
    let incident = incidents(since_release(records, release_id))
        .into_iter()
        .find(|i| i.target == target.name && i.release_id == release_id)?;
    let dir = state_dir.join("reports");
    let path = dir.join(file_name(&incident));
    let text = report_text(&incident, Some(target), now);
    Some(Written {
        status_message: status_message(&incident, target.status_message.as_deref()),
        file: write_atomically(&dir, &path, text.as_bytes()).map(|()| path),
    })
}

/// Whether `record` is the sighting of release `release_id`.
fn is_release_seen(record: &Record, release_id: &str) -> bool {
    matches!(&record.event, Event::ReleaseSeen { release_id: id, .. } if id == release_id)
}

/// The records from the sighting of `release_id` on (all of them when it
/// is not among them): everything about a release comes after it, so that
/// a report reads only its own part of years of journal.
fn since_release<'a>(records: &'a [Record], release_id: &str) -> &'a [Record] {
    match records.iter().rposition(|r| is_release_seen(r, release_id)) {
        Some(start) => &records[start..],
        None => records,
    }
}

/// How many of a target's latest records in memory the daemon's hook reads
/// first; a release whose sighting is older than those (or than what
/// memory holds) reads them all.
const RECENT_RECORDS: usize = 10_000;

/// Writes `bytes` to a temporary file in `dir`, syncs it and renames it to
/// `path`, so a reader sees the old report or the new one, never half.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let fail = |context: String| move |source| ReportError { context, source };
    std::fs::create_dir_all(dir).map_err(fail(format!("creating {}", dir.display())))?;
    let tmp = path.with_extension(format!("md.tmp-{}", std::process::id()));
    std::fs::File::create(&tmp)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .map_err(fail(format!("writing {}", tmp.display())))?;
    if let Err(error) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(format!(
            "renaming {} to {}",
            tmp.display(),
            path.display()
        ))(error));
    }
    // A report lost to a power cut is written again from the journal.
    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    Ok(())
}

/// The daemon's hook: writes the report of `release_id` if it is an
/// incident, beside `journal`, off the async threads; logs and counts the
/// result. Returns the status message, for the notification.
pub async fn on_incident(
    journal: &Journal,
    metrics: &Metrics,
    target: &TargetConfig,
    release_id: &str,
) -> Option<String> {
    let state_dir = journal.path().parent()?.to_owned();
    let (journal, target, id) = (journal.clone(), target.clone(), release_id.to_owned());
    let name = target.name.clone();
    let written = tokio::task::spawn_blocking(move || {
        let mut records = journal.recent_in_memory(Some(&target.name), RECENT_RECORDS);
        if !records.iter().any(|r| is_release_seen(r, &id)) {
            records = journal.query(Some(&target.name), crate::journal::Since::All, usize::MAX);
        }
        write_for_release(&state_dir, &records, &target, &id, SystemTime::now())
    })
    .await;
    let (result, message) = match written {
        Ok(None) => return None,
        Ok(Some(Written {
            status_message,
            file: Ok(path),
        })) => {
            tracing::info!(target_name = %name, %release_id, path = %path.display(), "Incident report written");
            ("ok", Some(status_message))
        }
        Ok(Some(Written {
            status_message,
            file: Err(error),
        })) => {
            tracing::error!(target_name = %name, %release_id, %error, "Cannot write the incident report");
            ("error", Some(status_message))
        }
        Err(error) => {
            tracing::error!(target_name = %name, %release_id, %error, "The incident report task did not finish");
            ("error", None)
        }
    };
    metrics
        .reports
        .get_or_create(&ResultLabels {
            result: result.to_owned(),
        })
        .inc();
    message
}
