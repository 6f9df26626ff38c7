//! The `swarm` release source, and the one read of a Swarm service that the
//! source and the `swarm_*` steps share: `docker service inspect --format
//! '{{json .}}' SERVICE`, through [`crate::exec`] (argv, never a shell),
//! parsed into the few fields rollguard reads ([`ServiceView`]). The whole
//! contract with `docker` is written at the top of `src/pipeline/swarm.rs`.
//!
//! The version is the image tag of `Spec.TaskTemplate.ContainerSpec.Image`
//! (`registry/app:v2@sha256:…` is `v2`: the CLI pins a digest to the tag
//! it resolved, which must not make every deploy look like a new version),
//! or a `version_label` of the service, else of its container spec.

use super::kubernetes::image_version;
use super::{SourceError, validate_version};
use crate::exec::{self, CommandSpec, ExecError, OUTPUT_LIMIT};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Most characters of `docker`'s stderr quoted in a message.
const QUOTE_LIMIT: usize = 300;

/// Time limit of one `docker service inspect` of the release source.
pub const INSPECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What rollguard reads of `docker service inspect`: the rest of the
/// document is ignored, so that newer engines' fields change nothing.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceView {
    /// The spec the manager converges to now.
    pub spec: ServiceSpec,
    /// The spec before the last update: what `--rollback` goes back to.
    pub previous_spec: Option<ServiceSpec>,
    /// How the last update (or rollback) is going; absent on a service
    /// never updated.
    pub update_status: Option<UpdateStatus>,
}

/// The parts of a service spec rollguard reads.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceSpec {
    /// The service's labels.
    pub labels: BTreeMap<String, String>,
    /// What each task runs.
    pub task_template: TaskTemplate,
}

/// `Spec.TaskTemplate`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskTemplate {
    /// The container of each task.
    pub container_spec: ContainerSpec,
}

/// `Spec.TaskTemplate.ContainerSpec`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerSpec {
    /// The image reference, often with the digest the CLI resolved.
    pub image: String,
    /// The container's labels.
    pub labels: BTreeMap<String, String>,
}

/// `UpdateStatus`: the state of the last update or rollback.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateStatus {
    /// `updating`, `paused`, `completed`, `rollback_started`,
    /// `rollback_paused` or `rollback_completed`.
    pub state: String,
    /// When this update started: tells a new update from the last one.
    pub started_at: Option<String>,
    /// Why it paused, or what it finished with.
    pub message: Option<String>,
}

impl ServiceSpec {
    /// The spec's image reference.
    pub fn image(&self) -> &str {
        &self.task_template.container_spec.image
    }

    /// The version this spec runs: `label` of the service, else of its
    /// container spec; without a label, the image tag.
    pub fn version(&self, label: Option<&str>) -> Result<String, String> {
        match label {
            Some(label) => self
                .labels
                .get(label)
                .or_else(|| self.task_template.container_spec.labels.get(label))
                .cloned()
                .ok_or_else(|| format!("has no label `{label}`")),
            None if self.image().is_empty() => Err("its spec names no image".to_owned()),
            None => Ok(image_version(self.image())),
        }
    }
}

/// Runs `docker service inspect --format '{{json .}}' SERVICE` within
/// `timeout` and parses its document. `Err` says why not, for a message
/// that already names the service.
pub async fn inspect(
    docker: &str,
    service: &str,
    timeout: Duration,
) -> Result<ServiceView, InspectError> {
    let argv = [
        docker,
        "service",
        "inspect",
        "--format",
        "{{json .}}",
        service,
    ];
    let spec = CommandSpec::new(argv.map(str::to_owned).to_vec(), timeout);
    let output = match exec::run(spec).await {
        Ok(output) => output,
        Err(ExecError::TimedOut { .. }) => {
            return Err(InspectError::TimedOut(format!(
                "`docker service inspect` had no answer within {}",
                humantime::format_duration(timeout)
            )));
        }
        Err(error) => return Err(InspectError::Failed(error.to_string())),
    };
    if !output.success() {
        let stderr = output.stderr_tail(QUOTE_LIMIT);
        return Err(InspectError::Failed(format!(
            "`docker service inspect` failed ({}){}{stderr}",
            output.status_text(),
            if stderr.is_empty() { "" } else { ": " }
        )));
    }
    if output.stdout.len() >= OUTPUT_LIMIT {
        return Err(InspectError::Failed(format!(
            "`docker service inspect` printed more than {OUTPUT_LIMIT} bytes"
        )));
    }
    parse(&output.stdout).map_err(InspectError::Failed)
}

/// Why a service could not be inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InspectError {
    /// `docker` did not answer in time.
    TimedOut(String),
    /// `docker` failed, or printed something that is not a service.
    Failed(String),
}

impl std::fmt::Display for InspectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InspectError::TimedOut(why) | InspectError::Failed(why) => f.write_str(why),
        }
    }
}

/// One service document: the object `{{json .}}` prints, or the first
/// element of the array plain `inspect` prints.
pub fn parse(text: &str) -> Result<ServiceView, String> {
    let value: serde_json::Value = serde_json::from_str(text.trim())
        .map_err(|e| format!("`docker service inspect` printed no JSON document: {e}"))?;
    let document = match value {
        serde_json::Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        serde_json::Value::Object(_) => value,
        _ => return Err("`docker service inspect` printed no service".to_owned()),
    };
    serde_json::from_value(document)
        .map_err(|e| format!("`docker service inspect` printed an unexpected document: {e}"))
}

/// A service polled for its version.
#[derive(Debug, Clone)]
pub struct SwarmSource {
    /// The `docker` program.
    docker: String,
    /// The service's name or id.
    service: String,
    /// The label holding the version; `None`: the image tag.
    version_label: Option<String>,
}

impl SwarmSource {
    /// A source for `service`, read with `docker`, its version from
    /// `version_label` or the image tag.
    pub fn new(docker: &str, service: &str, version_label: Option<&str>) -> SwarmSource {
        SwarmSource {
            docker: docker.to_owned(),
            service: service.to_owned(),
            version_label: version_label.map(str::to_owned),
        }
    }

    /// The version the service's spec runs now (one `docker service
    /// inspect`, at most [`INSPECT_TIMEOUT`]).
    pub async fn current_version(&self) -> Result<String, SourceError> {
        let error = |reason: String| SourceError::Swarm {
            service: self.service.clone(),
            reason,
        };
        let view = inspect(&self.docker, &self.service, INSPECT_TIMEOUT)
            .await
            .map_err(|e| error(e.to_string()))?;
        let version = view
            .spec
            .version(self.version_label.as_deref())
            .map_err(error)?;
        validate_version(&version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENT: &str = r#"{"ID":"x1","Spec":{"Name":"api","Labels":{"version":"2024.1"},
        "TaskTemplate":{"ContainerSpec":{"Image":"reg:5000/app:v2@sha256:0123456789abcdef0123","Labels":{"build":"b7"}}}},
        "PreviousSpec":{"TaskTemplate":{"ContainerSpec":{"Image":"reg:5000/app:v1"}}},
        "UpdateStatus":{"State":"paused","StartedAt":"2026-01-01T00:00:00Z","Message":"update paused"}}"#;

    #[test]
    fn versions_come_from_the_tag_or_a_label() {
        let view = parse(DOCUMENT).expect("a service");
        assert_eq!(view.spec.version(None).as_deref(), Ok("v2"));
        assert_eq!(view.spec.version(Some("version")).as_deref(), Ok("2024.1"));
        assert_eq!(view.spec.version(Some("build")).as_deref(), Ok("b7"));
        assert_eq!(
            view.spec.version(Some("nope")),
            Err("has no label `nope`".to_owned())
        );
        let previous = view.previous_spec.expect("a previous spec");
        assert_eq!(previous.version(None).as_deref(), Ok("v1"));
        let status = view.update_status.expect("a status");
        assert_eq!(status.state, "paused");
        assert_eq!(status.message.as_deref(), Some("update paused"));
    }

    #[test]
    fn an_array_is_read_and_garbage_is_refused() {
        let array = format!("[{DOCUMENT}]\n");
        assert_eq!(parse(&array), parse(DOCUMENT));
        assert!(parse("[]").is_err());
        assert!(parse("Error: no such service").is_err());
        let never_updated = parse(r#"{"Spec":{"TaskTemplate":{"ContainerSpec":{"Image":"app"}}}}"#)
            .expect("a service");
        assert_eq!(never_updated.update_status, None);
        assert_eq!(never_updated.spec.version(None).as_deref(), Ok("latest"));
        assert!(ServiceSpec::default().version(None).is_err());
    }
}
