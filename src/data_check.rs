//! Data checks: what a rollback would do to the data the new release wrote.
//!
//! Each `[[target.data_check]]` is a program (argv rendered with
//! [`DATA_CHECK_VARIABLES`](crate::template::DATA_CHECK_VARIABLES), never a
//! shell) that prints `none`, `minor` or `major`. The worst answer wins.
//! A check that cannot answer (it fails to start, exits non-zero, times out
//! or prints anything else) counts as `major`: rollguard never rolls back by
//! itself when it cannot tell what a rollback does to data.

use crate::config::DataCheckConfig;
use crate::exec::{self, CommandSpec, ExecError};
use crate::model::DataImpact;
use crate::template;
use std::collections::BTreeMap;

/// Most characters of a check's stderr or odd stdout quoted in evidence.
const QUOTE_LIMIT: usize = 200;

/// Runs every check (concurrently) and returns the worst impact with one
/// evidence line per check, in the order of `checks`. No checks: `None`.
pub async fn data_impact(
    checks: &[DataCheckConfig],
    vars: &BTreeMap<&str, String>,
) -> (DataImpact, Vec<String>) {
    let results =
        futures_util::future::join_all(checks.iter().map(|check| run_check(check, vars))).await;
    let impact = results
        .iter()
        .map(|(impact, _)| *impact)
        .max()
        .unwrap_or(DataImpact::None);
    let evidence = results.into_iter().map(|(_, line)| line).collect();
    (impact, evidence)
}

/// One check: its impact and its evidence line.
async fn run_check(check: &DataCheckConfig, vars: &BTreeMap<&str, String>) -> (DataImpact, String) {
    let name = &check.name;
    let unknown = |why: String| {
        (
            DataImpact::Major,
            format!(
                "data check `{name}`: {why}; counted as major, since the effect of a rollback on data is unknown"
            ),
        )
    };
    let argv: Result<Vec<String>, _> = check
        .argv
        .iter()
        .map(|arg| template::render(arg, vars))
        .collect();
    let argv = match argv {
        Ok(argv) => argv,
        Err(error) => return unknown(format!("cannot render its argv: {error}")),
    };
    let output = match exec::run(CommandSpec::new(argv, check.timeout)).await {
        Ok(output) => output,
        Err(ExecError::TimedOut { after, .. }) => {
            return unknown(format!(
                "timed out after {}",
                humantime::format_duration(after)
            ));
        }
        Err(error) => return unknown(error.to_string()),
    };
    if !output.success() {
        let stderr = output.stderr_tail(QUOTE_LIMIT);
        let why = if stderr.is_empty() {
            format!("failed ({})", output.status_text())
        } else {
            format!("failed ({}): {stderr}", output.status_text())
        };
        return unknown(why);
    }
    match output.stdout.trim() {
        "none" => (DataImpact::None, format!("data check `{name}`: none")),
        "minor" => (DataImpact::Minor, format!("data check `{name}`: minor")),
        "major" => (DataImpact::Major, format!("data check `{name}`: major")),
        other => unknown(format!(
            "printed {:?} instead of none, minor or major",
            exec::tail(other, QUOTE_LIMIT)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn check(name: &str, script: &str) -> DataCheckConfig {
        DataCheckConfig {
            name: name.to_owned(),
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                script.into(),
                "sh".into(),
                "{{version}}".into(),
            ],
            timeout: Duration::from_secs(10),
        }
    }

    fn vars() -> BTreeMap<&'static str, String> {
        BTreeMap::from([("version", "v2; touch /tmp/x".to_owned())])
    }

    #[tokio::test]
    async fn no_checks_mean_no_impact() {
        assert_eq!(data_impact(&[], &vars()).await, (DataImpact::None, vec![]));
    }

    #[tokio::test]
    async fn the_worst_answer_wins() {
        let checks = [check("a", "echo none"), check("b", "echo '  minor  '")];
        let (impact, evidence) = data_impact(&checks, &vars()).await;
        assert_eq!(impact, DataImpact::Minor);
        assert_eq!(
            evidence,
            vec!["data check `a`: none", "data check `b`: minor"]
        );
    }

    #[tokio::test]
    async fn arguments_arrive_verbatim() {
        let checks = [check("v", r#"[ "$1" = 'v2; touch /tmp/x' ] && echo none"#)];
        assert_eq!(data_impact(&checks, &vars()).await.0, DataImpact::None);
    }
}
