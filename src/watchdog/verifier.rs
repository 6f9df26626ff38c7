//! Verifying a rollback: the target's probes and metrics, judged afresh
//! from the moment the rollback began against the pre-release baseline,
//! until they are back to it with the evidence
//! [`crate::judge::verification`] asks for.

use super::Setup;
use super::bake::Bake;
use crate::judge::Judge;
use crate::judge::verification::{Round, Verification};
use crate::pipeline::{BoxFuture, Verifier, VerifyResult};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Verification: the target's probes and metrics, judged afresh, until
/// every check passes.
pub(super) struct TargetVerifier {
    setup: Arc<Setup>,
    state: crate::state::State,
    probes: Vec<crate::probe::HealthProbe>,
    version: String,
    previous: Option<String>,
    release_at: SystemTime,
    /// The bad release's baselines (the bake window's): verification
    /// compares with what was normal before it, fetched once.
    baselines: crate::probe::prometheus::BaselineCache,
    /// When verification began: the current window starts here.
    started: SystemTime,
    judge: Mutex<(Judge, Verification)>,
    interval: Duration,
}

/// Why verification did not see the target back to normal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Unverified {
    /// The daemon is stopping.
    Stopping {
        /// What the last check said.
        last: String,
    },
    /// Still not back to normal when time ran out.
    NotBack {
        /// The time given.
        within: Duration,
        /// What the last check said.
        last: String,
    },
}

impl std::fmt::Display for Unverified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unverified::Stopping { last } => {
                write!(f, "rollguard is stopping; last check: {last}")
            }
            Unverified::NotBack { within, last } => write!(
                f,
                "not back to normal within {}: {last}",
                humantime::format_duration(*within)
            ),
        }
    }
}

impl TargetVerifier {
    /// A verifier of the rollback of `bake`'s release: it judges the
    /// version before it, from now on.
    pub(super) fn new(
        setup: Arc<Setup>,
        state: crate::state::State,
        bake: &Bake,
    ) -> TargetVerifier {
        let probes = setup
            .target
            .probe
            .iter()
            .map(|p| crate::probe::HealthProbe::new(p, setup.services.http.clone()))
            .collect();
        TargetVerifier {
            state,
            probes,
            version: bake.previous_version.clone().unwrap_or_default(),
            previous: Some(bake.version.clone()),
            release_at: bake.started,
            baselines: bake.baselines.clone(),
            started: setup.services.clock.now(),
            judge: Mutex::new((
                Judge::new(&setup.target),
                Verification::new(&setup.target).with_release_rates(bake.judge.release_rates()),
            )),
            interval: setup.target.interval.min(Duration::from_secs(5)),
            setup,
        }
    }

    async fn check(&self) -> VerifyResult {
        let window = super::observe::Window {
            version: &self.version,
            previous_version: self.previous.as_deref(),
            release_at: self.release_at,
            window_start: Some(self.started),
            baselines: &self.baselines,
        };
        let observation =
            super::observe::observe(&self.state, &self.setup, &self.probes, &window, 0).await;
        let mut guard = self.judge.lock().unwrap_or_else(|e| e.into_inner());
        let (judge, verification) = &mut *guard;
        let assessment = judge.assess(
            &observation,
            crate::model::DataImpact::None,
            crate::model::TimeToFix::Known(Duration::ZERO),
        );
        match verification.round(&observation, &assessment) {
            Round::Back(evidence) => VerifyResult::Healthy(evidence),
            Round::NotYet(why) => VerifyResult::NotYet(why),
            Round::Unknown(why) => VerifyResult::Unknown(why),
        }
    }

    /// Checks until back to baseline or `timeout`: the evidence on
    /// success, the last reason on failure.
    pub(super) async fn verify_for(
        &self,
        timeout: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<String, Unverified> {
        let deadline = crate::time::deadline(tokio::time::Instant::now(), timeout);
        loop {
            let last = match self.check().await {
                VerifyResult::Healthy(evidence) => return Ok(evidence),
                VerifyResult::NotYet(why) | VerifyResult::Unknown(why) => why,
            };
            if *stop.borrow() {
                return Err(Unverified::Stopping { last });
            }
            if tokio::time::Instant::now() + self.interval > deadline {
                return Err(Unverified::NotBack {
                    within: timeout,
                    last,
                });
            }
            tokio::time::sleep(self.interval).await;
        }
    }
}

impl Verifier for TargetVerifier {
    fn verify_once(&self) -> BoxFuture<'_, VerifyResult> {
        Box::pin(self.check())
    }
}
