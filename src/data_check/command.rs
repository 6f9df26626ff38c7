//! `kind = "command"` data checks: a program prints `none`, `minor` or
//! `major` (surrounding blanks ignored); anything else is no answer.

use super::{QUOTE_LIMIT, stdout_of};
use crate::config::DataCheckConfig;
use crate::exec;
use crate::model::DataImpact;
use std::collections::BTreeMap;

/// The program's answer and the word it printed, or why it gave none.
pub(super) async fn answer(
    check: &DataCheckConfig,
    vars: &BTreeMap<&'static str, String>,
) -> Result<(DataImpact, String), String> {
    let stdout = stdout_of(&check.argv, vars, check.timeout).await?;
    let impact = match stdout.trim() {
        "none" => DataImpact::None,
        "minor" => DataImpact::Minor,
        "major" => DataImpact::Major,
        other => {
            return Err(format!(
                "printed {:?} instead of none, minor or major",
                exec::tail(other, QUOTE_LIMIT)
            ));
        }
    };
    Ok((impact, stdout.trim().to_owned()))
}
