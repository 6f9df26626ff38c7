//! `kubectl rollout status`: whether a Deployment's rollout is done, with
//! the conditions of kubectl's `DeploymentStatusViewer`, and a wait for it
//! that polls the Deployment until it converges, fails or runs out of time.

use super::{DeploymentRef, KubeError};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use std::time::Duration;
use tokio::time::Instant;

/// The Progressing condition's reason when the rollout stalled.
const TIMED_OUT_REASON: &str = "ProgressDeadlineExceeded";

/// Where a rollout stands, in kubectl's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutState {
    /// Converged: `deployment "app" successfully rolled out`.
    Done(String),
    /// Still going: `Waiting for deployment "app" rollout to finish: ...`.
    Waiting(String),
}

/// kubectl's `DeploymentStatusViewer.Status`: once the controller has seen
/// the latest spec (`observedGeneration >= generation`), a Progressing
/// condition with reason ProgressDeadlineExceeded is a failure; otherwise
/// the rollout waits while updated < spec replicas, while replicas >
/// updated (old ones pending termination) and while available < updated.
/// (kubectl does not look at readyReplicas: available replicas are ready
/// ones that stayed ready for `minReadySeconds`.)
pub fn rollout_state(
    deployment: &Deployment,
    target: &DeploymentRef,
) -> Result<RolloutState, KubeError> {
    let name = &target.name;
    let status = deployment.status.clone().unwrap_or_default();
    let generation = deployment.metadata.generation.unwrap_or(0);
    if generation > status.observed_generation.unwrap_or(0) {
        return Ok(RolloutState::Waiting(
            "Waiting for deployment spec update to be observed...".to_owned(),
        ));
    }
    let stalled = status.conditions.iter().flatten().any(|condition| {
        condition.type_.as_deref() == Some("Progressing")
            && condition.reason.as_deref() == Some(TIMED_OUT_REASON)
    });
    if stalled {
        return Err(KubeError::ProgressDeadlineExceeded(target.clone()));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let waiting = |what: String| {
        Ok(RolloutState::Waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {what}..."
        )))
    };
    if let Some(wanted) = deployment.spec.replicas
        && updated < wanted
    {
        return waiting(format!(
            "{updated} out of {wanted} new replicas have been updated"
        ));
    }
    if replicas > updated {
        return waiting(format!(
            "{} old replicas are pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return waiting(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    Ok(RolloutState::Done(format!(
        "deployment \"{name}\" successfully rolled out"
    )))
}

/// Polls `target` every `poll` until its rollout is done (its message),
/// failed ([`KubeError::ProgressDeadlineExceeded`]) or `timeout` passed
/// ([`KubeError::RolloutTimeout`], with the last state seen). An API
/// error ends the wait at once, as it ends `kubectl rollout status`.
pub async fn wait_for_rollout(
    client: &kube::Client,
    target: &DeploymentRef,
    poll: Duration,
    timeout: Duration,
) -> Result<String, KubeError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &target.namespace);
    let deadline = crate::time::deadline(Instant::now(), timeout);
    loop {
        let deployment = tokio::time::timeout_at(deadline, deployments.get(&target.name)).await;
        let last = match deployment {
            Err(_) => "no answer from the API server".to_owned(),
            Ok(deployment) => {
                let deployment =
                    deployment.map_err(KubeError::api(format!("GET deployment {target}")))?;
                match rollout_state(&deployment, target)? {
                    RolloutState::Done(message) => return Ok(message),
                    RolloutState::Waiting(message) => message,
                }
            }
        };
        if Instant::now() + poll >= deadline {
            tokio::time::sleep_until(deadline).await;
            return Err(KubeError::RolloutTimeout {
                deployment: target.clone(),
                waited: timeout,
                last,
            });
        }
        tokio::time::sleep(poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(status: serde_json::Value) -> Deployment {
        let object = json!({
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
            "status": status,
        });
        serde_json::from_value(object).expect("a Deployment")
    }

    fn state(status: serde_json::Value) -> Result<RolloutState, String> {
        let target = DeploymentRef {
            namespace: "prod".into(),
            name: "web".into(),
        };
        rollout_state(&deployment(status), &target).map_err(|e| e.to_string())
    }

    fn waiting(text: &str) -> Result<RolloutState, String> {
        Ok(RolloutState::Waiting(text.to_owned()))
    }

    #[test]
    fn states_follow_kubectls_conditions() {
        let prefix = "Waiting for deployment \"web\" rollout to finish: ";
        assert_eq!(
            state(json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3})),
            waiting("Waiting for deployment spec update to be observed...")
        );
        assert_eq!(
            state(json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1})),
            waiting(&format!(
                "{prefix}1 out of 3 new replicas have been updated..."
            ))
        );
        assert_eq!(
            state(json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3})),
            waiting(&format!(
                "{prefix}1 old replicas are pending termination..."
            ))
        );
        assert_eq!(
            state(
                json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
                "availableReplicas": 2})
            ),
            waiting(&format!("{prefix}2 of 3 updated replicas are available..."))
        );
        assert_eq!(
            state(
                json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
                "availableReplicas": 3})
            ),
            Ok(RolloutState::Done(
                "deployment \"web\" successfully rolled out".into()
            ))
        );
        let stalled = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
            "availableReplicas": 3, "conditions": [{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded"}]});
        assert_eq!(
            state(stalled),
            Err("deployment prod/web exceeded its progress deadline".into())
        );
    }
}
