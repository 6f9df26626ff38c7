//! `kubectl set image` and `kubectl scale`, with the patches kubectl 1.32
//! sends: a strategic merge patch of one container's image (with the
//! `$setElementOrder/containers` directive that keeps the containers'
//! order), and a merge patch of the `scale` subresource.

use super::{DeploymentRef, KubeError};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// The field manager of rollguard's image changes (kubectl's is
/// `kubectl-set`), so that `managedFields` say who changed the image.
const FIELD_MANAGER: &str = "rollguard";

/// Sets `container`'s image to `image`, as `kubectl set image
/// deployment/NAME CONTAINER=IMAGE` does: GET the Deployment, then PATCH
/// (`application/strategic-merge-patch+json`)
/// `{"spec":{"template":{"spec":{"$setElementOrder/containers":[every
/// container's name, in order],"containers":[{"image":IMAGE,"name":CONTAINER}]}}}}`.
/// An image already set sends nothing. Returns what was done.
pub async fn set_image(
    client: &kube::Client,
    target: &DeploymentRef,
    container: &str,
    image: &str,
) -> Result<String, KubeError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &target.namespace);
    let deployment = deployments
        .get(&target.name)
        .await
        .map_err(KubeError::api(format!("GET deployment {target}")))?;
    let containers = deployment
        .spec
        .template
        .spec
        .map(|spec| spec.containers)
        .unwrap_or_default();
    let Some(current) = containers.iter().find(|c| c.name == container) else {
        return Err(KubeError::UnknownContainer {
            deployment: target.clone(),
            container: container.to_owned(),
            existing: containers.iter().map(|c| c.name.clone()).collect(),
        });
    };
    if current.image.as_deref() == Some(image) {
        return Ok(format!(
            "deployment {target}: container {container} already runs {image}; nothing sent"
        ));
    }
    let previous = current.image.clone().unwrap_or_default();
    let order: Vec<_> = containers.iter().map(|c| json!({"name": c.name})).collect();
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": order,
        "containers": [{"image": image, "name": container}],
    }}}});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    deployments
        .patch(&target.name, &params, &Patch::Strategic(patch))
        .await
        .map_err(KubeError::api(format!("PATCH deployment {target}")))?;
    Ok(format!(
        "deployment {target}: container {container} set to {image} (was {previous})"
    ))
}

/// Scales `target` to `replicas`, as `kubectl scale deployment/NAME
/// --replicas=N` does: GET the Deployment, then PATCH its `scale`
/// subresource (`application/merge-patch+json`, `{"spec":{"replicas":N}}`).
pub async fn scale(
    client: &kube::Client,
    target: &DeploymentRef,
    replicas: i32,
) -> Result<String, KubeError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &target.namespace);
    let deployment = deployments
        .get(&target.name)
        .await
        .map_err(KubeError::api(format!("GET deployment {target}")))?;
    let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
    deployments
        .patch_scale(&target.name, &PatchParams::default(), &patch)
        .await
        .map_err(KubeError::api(format!("PATCH deployment {target}/scale")))?;
    let before = deployment.spec.replicas.unwrap_or(1);
    Ok(format!(
        "deployment {target} scaled to {replicas} replicas (was {before})"
    ))
}
