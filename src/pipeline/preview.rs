//! What a rollback would do, said before it runs (the `rollback_started`
//! notification) or instead of running it (shadow mode's
//! `would_rollback`). This is where a mode's meaning for each step lives:
//! every mode describes the steps; shadow mode also sends each step that
//! has one its server-side dry run, which changes nothing.

use super::{
    PipelineDeps, RollbackContext, bluegreen, config_restore, describe, kubernetes, ordered,
    precheck, swarm,
};
use crate::config::{StepConfig, StepKind};
use crate::model::Mode;

/// What the pipeline would do for a rollback.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preview {
    /// One line per step, in the order they run ([`describe()`]).
    pub steps: Vec<String>,
    /// Shadow mode: what the servers said of each dry run ("the API server
    /// accepted a rollback of prod/app to revision 4 (dry run)"), or why
    /// there was no answer. Empty in other modes.
    pub dry_runs: Vec<String>,
}

impl Preview {
    /// The steps and dry runs in one line, for a notification.
    pub fn summary(&self) -> String {
        let steps = if self.steps.is_empty() {
            "no steps are configured".to_owned()
        } else {
            self.steps.join("; ")
        };
        std::iter::once(steps)
            .chain(self.dry_runs.iter().cloned())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Whether shadow mode checks `step` against its backend: `kubernetes_undo`,
/// whose PATCH the API server checks with `?dryRun=All`, and the `swarm_*`
/// steps, whose service is inspected (Docker has no dry run of an update;
/// `swarm_precheck` only reads, so it runs as it would), and `precheck`,
/// which only reads (its Kubernetes check is a dry run) and runs too, and
/// `bluegreen_switch`, whose live-colour lookup and probe rounds only read
/// and run, without the flip, and `config_restore`, whose tag is resolved
/// (or whose previous release directory is looked at) without a change.
pub fn has_dry_run(step: &StepConfig) -> bool {
    matches!(
        step.kind(),
        StepKind::KubernetesUndo
            | StepKind::Precheck
            | StepKind::SwarmPrecheck
            | StepKind::SwarmRollback
            | StepKind::SwarmSetImage
            | StepKind::BluegreenSwitch
            | StepKind::ConfigRestore
    )
}

/// What `steps` would do for `ctx` in `ctx.mode`: described in every mode;
/// in shadow mode, dry runs too. Never changes anything; a dry run may
/// take up to 30 s per step.
pub async fn preview(steps: &[StepConfig], ctx: &RollbackContext, deps: &PipelineDeps) -> Preview {
    let steps_in_order = ordered(steps);
    let mut dry_runs = Vec::new();
    if ctx.mode == Mode::Shadow {
        for step in steps_in_order.iter().filter(|step| has_dry_run(step)) {
            let answer = match step.kind() {
                StepKind::SwarmPrecheck | StepKind::SwarmRollback | StepKind::SwarmSetImage => {
                    swarm::dry_run(step, ctx, kubernetes::DRY_RUN_LIMIT).await
                }
                StepKind::Precheck => {
                    precheck::dry_run(step, ctx, deps, kubernetes::DRY_RUN_LIMIT).await
                }
                StepKind::BluegreenSwitch => {
                    bluegreen::dry_run(step, ctx, deps, kubernetes::DRY_RUN_LIMIT).await
                }
                StepKind::ConfigRestore => {
                    config_restore::dry_run(step, ctx, kubernetes::DRY_RUN_LIMIT).await
                }
                _ => kubernetes::dry_run(step, ctx, deps).await,
            };
            dry_runs.push(answer.unwrap_or_else(|error| error));
        }
    }
    Preview {
        steps: steps_in_order
            .into_iter()
            .map(|step| describe(step, ctx))
            .collect(),
        dry_runs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn step(toml_text: &str) -> StepConfig {
        toml::from_str(toml_text).expect("a valid step")
    }

    fn ctx(mode: Mode) -> RollbackContext {
        RollbackContext::fixture(mode)
    }

    fn deps() -> PipelineDeps {
        // The undo step names no Deployment: its dry run fails before any
        // request, so no cluster is needed.
        let env = crate::config::MapEnvironment::default();
        PipelineDeps::new(reqwest::Client::new(), Arc::new(env))
    }

    fn steps() -> Vec<StepConfig> {
        vec![
            step("phase = 'verify'\nkind = 'wait'\nduration = '30s'"),
            step("phase = 'rollback'\nkind = 'kubernetes_undo'"),
        ]
    }

    #[tokio::test]
    async fn every_mode_describes_the_steps_in_order() {
        for mode in [Mode::Enforce, Mode::Approve, Mode::Shadow] {
            let preview = preview(&steps(), &ctx(mode), &deps()).await;
            assert_eq!(
                preview.steps,
                [
                    "kubernetes_undo: <no deployment> to the previous revision (v1)",
                    "wait: 30s"
                ],
                "{mode}"
            );
        }
    }

    #[tokio::test]
    async fn only_shadow_mode_sends_dry_runs_and_only_for_undo_steps() {
        let enforce = preview(&steps(), &ctx(Mode::Enforce), &deps()).await;
        assert!(enforce.dry_runs.is_empty());
        let shadow = preview(&steps(), &ctx(Mode::Shadow), &deps()).await;
        assert_eq!(shadow.dry_runs.len(), 1, "{:?}", shadow.dry_runs);
        assert!(
            shadow.dry_runs[0].contains("needs `namespace` and `deployment`"),
            "{:?}",
            shadow.dry_runs
        );
        assert!(shadow.summary().ends_with(&shadow.dry_runs[0]));
    }

    #[test]
    fn a_summary_says_when_there_is_nothing_to_run() {
        let empty = Preview {
            steps: Vec::new(),
            dry_runs: Vec::new(),
        };
        assert_eq!(empty.summary(), "no steps are configured");
    }
}
