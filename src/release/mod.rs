//! Release sources: how rollguard sees that a target's version changed.
//!
//! - [`version_url`]: poll a URL that answers with the running version.
//! - [`symlink`]: read a `current -> releases/v1.3.0` link.
//! - [`kubernetes`]: watch a Deployment's revisions.
//! - [`swarm`]: inspect a Docker Swarm service's image tag or label.
//! - [`tracker`]: pure logic that turns the versions seen over time into
//!   release events, and recognises rollguard's own rollbacks.
//!
//! Announced releases arrive over the HTTP API and go straight to the
//! tracker.

pub mod kubernetes;
pub mod swarm;
pub mod symlink;
pub mod tracker;
mod version;
pub mod version_url;

pub use tracker::{CurrentRelease, ReleaseChange, ReleaseTracker, SeenBy};
pub use version::{MAX_VERSION_LEN, validate_version};

use crate::config::ReleaseConfig;
use std::path::PathBuf;
use std::time::Duration;

/// Time limit of one version URL request when the caller sets none.
pub const DEFAULT_VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the running version could not be read. Messages are written for an
/// operator reading a log line or a notification.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The configured URL cannot be used.
    #[error("invalid version URL {url:?}: {reason}")]
    InvalidUrl {
        /// The configured URL.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The configured JSON pointer is not a pointer.
    #[error("invalid json_pointer {pointer:?}: it must be empty or start with '/'")]
    InvalidPointer {
        /// The configured pointer.
        pointer: String,
    },
    /// The request failed before an answer arrived.
    #[error("GET {url}: {reason}")]
    Request {
        /// The version URL.
        url: String,
        /// What went wrong ("connection refused", "timed out after 5s").
        reason: String,
    },
    /// The endpoint answered, but not with success.
    #[error("GET {url}: status {status}, expected 2xx")]
    Status {
        /// The version URL.
        url: String,
        /// The status it answered with.
        status: u16,
    },
    /// The body is larger than rollguard reads.
    #[error("GET {url}: body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The version URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// A pointer is configured but the body is not JSON.
    #[error("GET {url}: body is not JSON, so json_pointer {pointer} cannot be read")]
    NotJson {
        /// The version URL.
        url: String,
        /// The configured pointer.
        pointer: String,
    },
    /// The body is JSON, but nothing is at the pointer.
    #[error("GET {url}: nothing at json_pointer {pointer}")]
    PointerMissing {
        /// The version URL.
        url: String,
        /// The configured pointer.
        pointer: String,
    },
    /// The value at the pointer is not a string or a number.
    #[error("GET {url}: value at json_pointer {pointer} is {found}, not a version")]
    NotAVersion {
        /// The version URL.
        url: String,
        /// The configured pointer.
        pointer: String,
        /// What was found instead ("an object", "null").
        found: &'static str,
    },
    /// The version read is unfit for logs, environment variables and
    /// notifications.
    #[error("rejected version {shown}: {reason}")]
    BadVersion {
        /// The version, escaped and shortened so it is safe to print.
        shown: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The release path is not a symbolic link.
    #[error(
        "{path} is not a symbolic link; a symlink release source needs `current -> releases/<version>`"
    )]
    NotASymlink {
        /// The configured path.
        path: PathBuf,
    },
    /// The link points at nothing.
    #[error("{path} points to {target}, which does not exist")]
    Dangling {
        /// The configured path.
        path: PathBuf,
        /// Where it points, resolved.
        target: PathBuf,
    },
    /// The link target has no usable final component.
    #[error("{path} points to {target}, whose last component is not a version")]
    NoVersionInTarget {
        /// The configured path.
        path: PathBuf,
        /// The link's target, as written in the link.
        target: PathBuf,
    },
    /// The Kubernetes API or the Deployment cannot be read.
    #[error("deployment {namespace}/{deployment}: {reason}")]
    Kubernetes {
        /// The Deployment's namespace.
        namespace: String,
        /// The Deployment's name.
        deployment: String,
        /// What went wrong ("does not exist", "cannot watch it: ...").
        reason: String,
    },
    /// The Swarm service cannot be inspected, or names no version.
    #[error("swarm service {service}: {reason}")]
    Swarm {
        /// The service's name.
        service: String,
        /// What went wrong ("`docker service inspect` failed ...").
        reason: String,
    },
    /// No Kubernetes client could be made (no kubeconfig, not in a cluster).
    #[error("no Kubernetes client: {reason}")]
    NoKubeClient {
        /// Why.
        reason: String,
    },
    /// The filesystem refused.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path being read.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl SourceError {
    /// A short, stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            SourceError::InvalidUrl { .. } | SourceError::InvalidPointer { .. } => "config",
            SourceError::Request { .. } => "request",
            SourceError::Status { .. } => "status",
            SourceError::BodyTooLarge { .. }
            | SourceError::NotJson { .. }
            | SourceError::PointerMissing { .. }
            | SourceError::NotAVersion { .. } => "body",
            SourceError::BadVersion { .. } => "bad_version",
            SourceError::NotASymlink { .. }
            | SourceError::Dangling { .. }
            | SourceError::NoVersionInTarget { .. }
            | SourceError::Io { .. } => "symlink",
            SourceError::Kubernetes { .. } | SourceError::NoKubeClient { .. } => "kubernetes",
            SourceError::Swarm { .. } => "swarm",
        }
    }
}

/// A polling release source, ready to ask for the running version.
#[derive(Debug, Clone)]
pub enum ReleaseSource {
    /// Poll a URL that answers with the version.
    VersionUrl {
        /// The shared HTTP client.
        client: reqwest::Client,
        /// The version URL.
        url: String,
        /// JSON pointer to the version; `None`: the whole body, trimmed.
        json_pointer: Option<String>,
        /// Time limit of one request.
        timeout: Duration,
    },
    /// Read the `current` symlink of a release directory layout.
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Versions arrive over the HTTP API; nothing to poll.
    Announce,
    /// A Deployment watched in the background.
    Kubernetes(Box<kubernetes::KubernetesSource>),
    /// A Swarm service, inspected at each read.
    Swarm(swarm::SwarmSource),
}

impl ReleaseSource {
    /// Builds the source of `[target.release]`, checking what its kind
    /// needs, without a Kubernetes client (so `kubernetes` is
    /// [`SourceError::NoKubeClient`]).
    pub fn from_config(
        config: &ReleaseConfig,
        client: reqwest::Client,
    ) -> Result<ReleaseSource, SourceError> {
        ReleaseSource::with_kube(config, client, Err("none was given".to_owned()))
    }

    /// Builds the source of `[target.release]`; a `kubernetes` source starts
    /// watching its Deployment with `kube` (which says why there is no
    /// client when there is none).
    pub fn with_kube(
        config: &ReleaseConfig,
        client: reqwest::Client,
        kube: Result<kube::Client, String>,
    ) -> Result<ReleaseSource, SourceError> {
        match config {
            ReleaseConfig::VersionUrl(v) => {
                check_url(&v.url)?;
                if let Some(pointer) = &v.json_pointer
                    && !pointer.is_empty()
                    && !pointer.starts_with('/')
                {
                    return Err(SourceError::InvalidPointer {
                        pointer: pointer.clone(),
                    });
                }
                Ok(ReleaseSource::VersionUrl {
                    client,
                    url: v.url.clone(),
                    json_pointer: v.json_pointer.clone(),
                    timeout: DEFAULT_VERSION_TIMEOUT,
                })
            }
            ReleaseConfig::Symlink(s) => Ok(ReleaseSource::Symlink {
                path: s.path.clone(),
            }),
            ReleaseConfig::Announce(_) => Ok(ReleaseSource::Announce),
            ReleaseConfig::Swarm(s) => Ok(ReleaseSource::Swarm(swarm::SwarmSource::new(
                s.docker(),
                &s.service,
                s.version_label.as_deref(),
            ))),
            ReleaseConfig::Kubernetes(k) => {
                let from = match (&k.version_label, &k.version_annotation) {
                    (Some(label), _) => kubernetes::VersionFrom::Label(label.clone()),
                    (None, Some(annotation)) => {
                        kubernetes::VersionFrom::Annotation(annotation.clone())
                    }
                    (None, None) => kubernetes::VersionFrom::Image(k.container.clone()),
                };
                let kube = kube.map_err(|reason| SourceError::NoKubeClient { reason })?;
                kubernetes::KubernetesSource::start(kube, &k.namespace, &k.deployment, from)
                    .map(|source| ReleaseSource::Kubernetes(Box::new(source)))
            }
        }
    }

    /// The version running now; `Ok(None)` for announced releases, whose
    /// versions arrive over the HTTP API instead.
    pub async fn current_version(&self) -> Result<Option<String>, SourceError> {
        match self {
            ReleaseSource::VersionUrl {
                client,
                url,
                json_pointer,
                timeout,
            } => version_url::read_version(client, url, json_pointer.as_deref(), *timeout)
                .await
                .map(Some),
            // A readlink and a stat: quick enough not to need a blocking
            // thread, even on the daemon's runtime.
            ReleaseSource::Symlink { path } => symlink::read_version(path).map(Some),
            ReleaseSource::Announce => Ok(None),
            ReleaseSource::Kubernetes(source) => source.current_version().await.map(Some),
            ReleaseSource::Swarm(source) => source.current_version().await.map(Some),
        }
    }

    /// The Kubernetes source, if this is one (for its rollback mark).
    pub fn kubernetes(&self) -> Option<&kubernetes::KubernetesSource> {
        match self {
            ReleaseSource::Kubernetes(source) => Some(source),
            _ => None,
        }
    }
}

/// Checks that a version URL is an absolute http(s) URL.
fn check_url(url: &str) -> Result<(), SourceError> {
    let invalid = |reason: String| SourceError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    match parsed.scheme() {
        "http" | "https" => Ok(()),
        other => Err(invalid(format!("scheme {other:?} is not http or https"))),
    }
}
