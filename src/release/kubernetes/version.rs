//! Pure, no I/O: what version a Deployment runs, whether a new state of it
//! is a release, and rollguard's own `rollguard.io/rolled-back` mark.

use k8s_openapi::api::apps::v1::Deployment;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The annotation rollguard writes on a Deployment it rolled back.
pub const ROLLED_BACK_ANNOTATION: &str = "rollguard.io/rolled-back";

/// The Deployment controller's revision annotation.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// Where a Deployment's version is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionFrom {
    /// The image tag of this container (`None`: the first container).
    Image(Option<String>),
    /// A label of the pod template, else of the Deployment.
    Label(String),
    /// An annotation of the pod template, else of the Deployment.
    Annotation(String),
}

/// The value of [`ROLLED_BACK_ANNOTATION`]: which release rollguard rolled
/// back, from and to which version, when, and at which revision of the
/// Deployment the rolled-back version was running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolledBack {
    /// The release id of the replica that rolled back.
    pub release_id: String,
    /// The version rolled back from (the bad release).
    pub from: String,
    /// The version rolled back to.
    pub to: String,
    /// When the rollback finished, RFC 3339.
    pub at: String,
    /// The Deployment's revision once rolled back; the mark means nothing
    /// for any later revision. Absent in marks written by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// The version of an image reference: its tag (`repo/app:1.4.2` ->
/// `1.4.2`), else its digest in short form (`app@sha256:abc…` ->
/// `sha256:` and 12 hex digits), else `latest`.
pub fn image_version(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    // A ':' before the last '/' is a registry port, not a tag.
    let last_part = name.rsplit('/').next().unwrap_or(name);
    if let Some((_, tag)) = last_part.rsplit_once(':')
        && !tag.is_empty()
    {
        return tag.to_owned();
    }
    match digest {
        Some(digest) => match digest.split_once(':') {
            Some((algorithm, hex)) => format!("{algorithm}:{}", &hex[..hex.len().min(12)]),
            None => digest.chars().take(19).collect(),
        },
        None => "latest".to_owned(),
    }
}

/// The Deployment's revision annotation.
pub fn revision(deployment: &Deployment) -> Option<String> {
    deployment
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .cloned()
}

/// The pod template as text, to tell a template change from a scale.
pub fn template_text(deployment: &Deployment) -> String {
    serde_json::to_string(&deployment.spec.template).unwrap_or_default()
}

/// The version `deployment` runs, read as `from` says; `Err` says why not.
pub fn version_of(deployment: &Deployment, from: &VersionFrom) -> Result<String, String> {
    let template = &deployment.spec.template;
    let template_meta = template.metadata.as_ref();
    let lookup = |pick: fn(
        &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    ) -> Option<&BTreeMap<String, String>>,
                  key: &str| {
        template_meta
            .and_then(|m| pick(m))
            .and_then(|m| m.get(key))
            .or_else(|| pick(&deployment.metadata).and_then(|m| m.get(key)))
            .cloned()
    };
    match from {
        VersionFrom::Label(key) => lookup(|m| m.labels.as_ref(), key)
            .ok_or_else(|| format!("neither its pod template nor it has the label {key:?}")),
        VersionFrom::Annotation(key) => lookup(|m| m.annotations.as_ref(), key)
            .ok_or_else(|| format!("neither its pod template nor it has the annotation {key:?}")),
        VersionFrom::Image(container) => {
            let containers = template
                .spec
                .as_ref()
                .map(|s| s.containers.as_slice())
                .unwrap_or_default();
            let found = match container {
                Some(name) => containers.iter().find(|c| &c.name == name),
                None => containers.first(),
            };
            let Some(found) = found else {
                let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
                return Err(match container {
                    Some(name) => format!(
                        "it has no container {name:?} (its containers: {})",
                        names.join(", ")
                    ),
                    None => "it has no containers".to_owned(),
                });
            };
            match found.image.as_deref() {
                Some(image) if !image.is_empty() => Ok(image_version(image)),
                _ => Err(format!("container {:?} has no image", found.name)),
            }
        }
    }
}

/// rollguard's mark on `deployment`, if it has one that parses.
pub fn rolled_back(deployment: &Deployment) -> Option<RolledBack> {
    let text = deployment
        .metadata
        .annotations
        .as_ref()?
        .get(ROLLED_BACK_ANNOTATION)?;
    serde_json::from_str(text).ok()
}

/// Versions seen over time, reporting a new one only when the pod template
/// changed and the controller gave it a new revision: a scale, a label on
/// the Deployment or a status update is not a release.
#[derive(Debug, Clone, Default)]
pub struct RevisionFilter {
    /// (revision, template, version) of the version last reported.
    accepted: Option<(Option<String>, String, String)>,
}

impl RevisionFilter {
    /// The version to report for this state of the Deployment.
    pub fn accept(&mut self, deployment: &Deployment, version: String) -> String {
        let revision = revision(deployment);
        let template = template_text(deployment);
        match &self.accepted {
            Some((seen_revision, seen_template, seen_version))
                if *seen_revision == revision || *seen_template == template =>
            {
                seen_version.clone()
            }
            _ => {
                self.accepted = Some((revision, template, version.clone()));
                version
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_versions() {
        for (image, version) in [
            ("repo/app:1.4.2", "1.4.2"),
            ("registry.example:5000/team/app:v2", "v2"),
            ("registry.example:5000/team/app", "latest"),
            ("app", "latest"),
            ("app:1.2@sha256:0123456789abcdef0123", "1.2"),
            ("app@sha256:0123456789abcdef0123", "sha256:0123456789ab"),
        ] {
            assert_eq!(image_version(image), version, "{image}");
        }
    }

    #[test]
    fn marks_round_trip() {
        let mark = RolledBack {
            release_id: "api-1".into(),
            from: "2".into(),
            to: "1".into(),
            at: "2025-01-01T00:00:00Z".into(),
            revision: Some("3".into()),
        };
        let text = serde_json::to_string(&mark).expect("serialises");
        let back: RolledBack = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, mark);
        let by_hand: RolledBack =
            serde_json::from_str(r#"{"release_id":"x","from":"2","to":"1","at":"t"}"#)
                .expect("parses without a revision");
        assert_eq!(by_hand.revision, None);
    }
}
