//! The Docker Swarm kinds: the `swarm` release source and the
//! `swarm_precheck`, `swarm_rollback` and `swarm_set_image` steps. Each talks to the manager
//! through the `docker` CLI (argv, never a shell); the command contract is
//! in `src/pipeline/swarm.rs`.

use serde::Deserialize;

/// The `docker` program when a Swarm kind names none: looked up on `PATH`
/// (by `check`, and by the daemon when it runs it).
pub const DEFAULT_DOCKER: &str = "docker";

/// `kind = "swarm"`: a Swarm service whose image tag (or label) is the
/// running version, read with `docker service inspect`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SwarmRelease {
    /// The service's name or id, as `docker service inspect` takes it.
    pub service: String,
    /// The version is this label of the service (else of its container
    /// spec) instead of the image tag, for images tagged `latest` or by
    /// digest only.
    #[serde(default)]
    pub version_label: Option<String>,
    /// The `docker` program, so that a host without it on `PATH` (or with
    /// a wrapper) can say where it is; [`DEFAULT_DOCKER`] when absent.
    #[serde(default)]
    pub docker: Option<String>,
    /// How often the service is inspected while no bake window is open (a
    /// release is seen at most this late); during a bake window every tick
    /// (`interval`) reads it. Absent: every tick.
    #[serde(default, with = "humantime_serde")]
    pub poll_interval: Option<std::time::Duration>,
}

/// `kind = "swarm_rollback"`: `docker service update --rollback`, then a
/// wait until the service's `UpdateStatus` says the rollback converged.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SwarmRollbackStep {
    /// The service to roll back to its previous spec. Required, even with a
    /// `swarm` release source: the step says what it changes.
    pub service: String,
    /// The `docker` program; [`DEFAULT_DOCKER`] when absent.
    #[serde(default)]
    pub docker: Option<String>,
}

/// `kind = "swarm_set_image"`: `docker service update --image`, then a wait
/// until the update completed; for a service whose previous spec is not the
/// release to go back to.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SwarmSetImageStep {
    /// The service whose image is set. Required: the step says what it
    /// changes.
    pub service: String,
    /// The image (a template: `registry/app:{{previous_version}}`).
    pub image: String,
    /// The `docker` program; [`DEFAULT_DOCKER`] when absent.
    #[serde(default)]
    pub docker: Option<String>,
}

/// `kind = "swarm_precheck"`: before anything changes, the service still
/// runs the release being rolled back (else someone else already acted),
/// and its previous spec is the version to go back to (else `--rollback`
/// would bring back something else). Only reads.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SwarmPrecheckStep {
    /// The service to check. Required: the step says what it reads.
    pub service: String,
    /// Read the versions from this label, as the release source's
    /// `version_label` does; absent: the image tags.
    #[serde(default)]
    pub version_label: Option<String>,
    /// The `docker` program; [`DEFAULT_DOCKER`] when absent.
    #[serde(default)]
    pub docker: Option<String>,
}

impl SwarmPrecheckStep {
    /// The `docker` program to run.
    pub fn docker(&self) -> &str {
        self.docker.as_deref().unwrap_or(DEFAULT_DOCKER)
    }
}

impl SwarmRelease {
    /// The `docker` program to run.
    pub fn docker(&self) -> &str {
        self.docker.as_deref().unwrap_or(DEFAULT_DOCKER)
    }
}

impl SwarmRollbackStep {
    /// The `docker` program to run.
    pub fn docker(&self) -> &str {
        self.docker.as_deref().unwrap_or(DEFAULT_DOCKER)
    }
}

impl SwarmSetImageStep {
    /// The `docker` program to run.
    pub fn docker(&self) -> &str {
        self.docker.as_deref().unwrap_or(DEFAULT_DOCKER)
    }
}
