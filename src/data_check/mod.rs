//! Data checks: what a rollback would do to the data the new release wrote.
//!
//! Each `[[target.data_check]]` answers `none`, `minor` or `major`, and the
//! worst answer wins. A `command` check is a program that
//! prints its answer; a `migrations` check compares the
//! schema migrations of the two releases. A check that cannot answer (its
//! program fails to start, exits non-zero, times out or prints anything
//! else; a release's migrations cannot be read) counts as `major`:
//! rollguard never rolls back by itself when it cannot tell what a rollback
//! does to data.
//!
//! Programs get their argv rendered with
//! [`DATA_CHECK_VARIABLES`](crate::template::DATA_CHECK_VARIABLES) and never
//! run through a shell.

mod command;
mod migrations;

use crate::config::{DataCheckConfig, DataCheckKind};
use crate::exec::{self, CommandSpec, ExecError};
use crate::model::DataImpact;
use crate::template;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Most characters of a check's stderr or odd stdout quoted in evidence.
const QUOTE_LIMIT: usize = 200;

/// What the checks are about: one release of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataCheckContext {
    /// The template variables: `target`, `version` (the new release),
    /// `previous_version` (the one a rollback brings back; empty when
    /// unknown) and `release_id`.
    pub vars: BTreeMap<&'static str, String>,
    /// The `current` link of a symlink release source: where a
    /// `migrations_dir` check finds the release directories.
    pub link: Option<PathBuf>,
}

impl DataCheckContext {
    /// The value of one variable, empty when it is not set.
    fn var(&self, name: &str) -> &str {
        self.vars.get(name).map_or("", String::as_str)
    }
}

/// Runs every check (concurrently) and returns the worst impact with one
/// evidence line per check, in the order of `checks`. No checks: `None`.
pub async fn data_impact(
    checks: &[DataCheckConfig],
    cx: &DataCheckContext,
) -> (DataImpact, Vec<String>) {
    let results =
        futures_util::future::join_all(checks.iter().map(|check| run_check(check, cx))).await;
    let impact = results
        .iter()
        .map(|(impact, _)| *impact)
        .max()
        .unwrap_or(DataImpact::None);
    let evidence = results.into_iter().map(|(_, line)| line).collect();
    (impact, evidence)
}

/// One check: its impact and its evidence line.
async fn run_check(check: &DataCheckConfig, cx: &DataCheckContext) -> (DataImpact, String) {
    let answer = match check.kind {
        DataCheckKind::Command => command::answer(check, &cx.vars).await,
        DataCheckKind::Migrations => migrations::answer(check, cx).await,
    };
    let name = &check.name;
    match answer {
        Ok((impact, what)) => (impact, format!("data check `{name}`: {what}")),
        Err(why) => (
            DataImpact::Major,
            format!(
                "data check `{name}`: {why}; counted as major, since the effect of a rollback on data is unknown"
            ),
        ),
    }
}

/// Runs `argv` rendered with `vars` within `timeout`: its standard output,
/// or why there is none worth reading (it could not be rendered or
/// started, timed out, or exited non-zero).
async fn stdout_of(
    argv: &[String],
    vars: &BTreeMap<&'static str, String>,
    timeout: Duration,
) -> Result<String, String> {
    let argv = argv
        .iter()
        .map(|arg| template::render(arg, vars))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("cannot render its argv: {error}"))?;
    let output = match exec::run(CommandSpec::new(argv, timeout)).await {
        Ok(output) => output,
        Err(ExecError::TimedOut { after, .. }) => {
            return Err(format!(
                "timed out after {}",
                humantime::format_duration(after)
            ));
        }
        Err(error) => return Err(error.to_string()),
    };
    if output.success() {
        return Ok(output.stdout);
    }
    let stderr = output.stderr_tail(QUOTE_LIMIT);
    Err(if stderr.is_empty() {
        format!("failed ({})", output.status_text())
    } else {
        format!("failed ({}): {stderr}", output.status_text())
    })
}

#[cfg(test)]
mod tests;
