//! `[target.release]`: how a target's releases are seen. `kind` chooses the
//! source, each kind a struct with only its own keys.
//!
//! Adding a release source: its struct here and one line in
//! [`ReleaseConfig`]'s list, the source in `src/release/`, one arm in
//! `ReleaseSource::with_kube`, and its keys in docs/configuration.md.

use super::tagged::{self, tagged_kinds};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

tagged_kinds! {
    /// `[target.release]`: the release source, with its kind's keys.
    pub enum ReleaseConfig;
    /// Release sources, without their keys.
    pub enum ReleaseKind;
    what = "release";
    not_yet = [];
    /// Poll a URL for the running version.
    VersionUrl(VersionUrlRelease) = "version_url",
    /// A symlinked release directory.
    Symlink(SymlinkRelease) = "symlink",
    /// A Kubernetes Deployment's revisions.
    Kubernetes(KubernetesRelease) = "kubernetes",
    /// Announced by CI over the HTTP API.
    Announce(AnnounceRelease) = "announce",
    /// A Docker Swarm service's image tag or label.
    Swarm(super::SwarmRelease) = "swarm",
}

impl<'de> Deserialize<'de> for ReleaseConfig {
    /// Reads a whole release table (for tests and fixtures); the
    /// configuration loader reads it key by key instead, to locate every
    /// error.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = toml::Table::deserialize(deserializer)?;
        tagged::from_table::<ReleaseConfig, ()>(table, &[], |_| Ok(()))
            .map(|((), release)| release)
            .map_err(serde::de::Error::custom)
    }
}

impl ReleaseConfig {
    /// The `current` link of a symlink source: what a `symlink_switch`
    /// step without its own `link` repoints.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ReleaseConfig::Symlink(s) => Some(&s.path),
            _ => None,
        }
    }

    /// The Deployment's namespace of a kubernetes source: what a
    /// `kubernetes_*` step without its own `namespace` acts in.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            ReleaseConfig::Kubernetes(k) => Some(&k.namespace),
            _ => None,
        }
    }

    /// How often a polling source is read while no bake window is open
    /// (`poll_interval`); `None`: every tick.
    pub fn poll_interval(&self) -> Option<Duration> {
        match self {
            ReleaseConfig::VersionUrl(v) => v.poll_interval,
            ReleaseConfig::Symlink(s) => s.poll_interval,
            ReleaseConfig::Swarm(s) => s.poll_interval,
            _ => None,
        }
    }

    /// The Deployment of a kubernetes source: what a `kubernetes_*` step
    /// without its own `deployment` acts on.
    pub fn deployment(&self) -> Option<&str> {
        match self {
            ReleaseConfig::Kubernetes(k) => Some(&k.deployment),
            _ => None,
        }
    }
}

/// `kind = "version_url"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VersionUrlRelease {
    /// The URL that answers with the running version.
    pub url: String,
    /// JSON pointer to the version in the body; absent: the whole body,
    /// trimmed.
    #[serde(default)]
    pub json_pointer: Option<String>,
    /// How often the source is read while no bake window is open (a
    /// release is seen at most this late); during a bake window every
    /// tick (`interval`) reads it. Absent: every tick.
    #[serde(default, with = "humantime_serde")]
    pub poll_interval: Option<Duration>,
}

/// `kind = "symlink"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SymlinkRelease {
    /// The `current` link whose target directory is the release.
    pub path: PathBuf,
    /// How often the source is read while no bake window is open (a
    /// release is seen at most this late); during a bake window every
    /// tick (`interval`) reads it. Absent: every tick.
    #[serde(default, with = "humantime_serde")]
    pub poll_interval: Option<Duration>,
}

/// `kind = "kubernetes"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesRelease {
    /// Namespace of the Deployment.
    pub namespace: String,
    /// Name of the Deployment.
    pub deployment: String,
    /// Container whose image tag is the version; the first when absent.
    #[serde(default)]
    pub container: Option<String>,
    /// The version is this label of the pod template (or of the
    /// Deployment) instead of an image tag.
    #[serde(default)]
    pub version_label: Option<String>,
    /// The version is this annotation of the pod template (or of the
    /// Deployment) instead of an image tag.
    #[serde(default)]
    pub version_annotation: Option<String>,
}

/// `kind = "announce"`: no keys of its own; CI announces releases over the
/// HTTP API.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnnounceRelease {}
