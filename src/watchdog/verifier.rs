//! Verifying a rollback: the target's probes and metrics, judged afresh
//! from the moment the rollback began against the pre-release baseline,
//! until every check passes.

use super::target::TargetLoop;
use crate::judge::Judge;
use crate::model::Verdict;
use crate::pipeline::{BoxFuture, Verifier, VerifyResult};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Verification: the target's probes and metrics, judged afresh, until
/// every check passes.
pub(super) struct TargetVerifier {
    setup: Arc<super::Setup>,
    state: crate::state::State,
    probes: Vec<crate::probe::HealthProbe>,
    version: String,
    previous: Option<String>,
    release_at: SystemTime,
    /// When verification began: the current window starts here.
    started: SystemTime,
    judge: Mutex<Judge>,
    interval: Duration,
}

impl TargetVerifier {
    pub(super) fn new(target: &TargetLoop) -> TargetVerifier {
        let bake = target.bake.as_ref();
        TargetVerifier {
            setup: target.setup.clone(),
            state: target.state.clone(),
            probes: target
                .setup
                .target
                .probe
                .iter()
                .map(|p| crate::probe::HealthProbe::new(p, target.setup.services.http.clone()))
                .collect(),
            version: bake
                .and_then(|b| b.previous_version.clone())
                .unwrap_or_default(),
            previous: bake.map(|b| b.version.clone()),
            release_at: bake.map(|b| b.started).unwrap_or_else(SystemTime::now),
            started: SystemTime::now(),
            judge: Mutex::new(Judge::new(&target.setup.target)),
            interval: target.setup.target.interval.min(Duration::from_secs(5)),
        }
    }

    async fn check(&self) -> VerifyResult {
        let window = super::observe::Window {
            version: &self.version,
            previous_version: self.previous.as_deref(),
            release_at: self.release_at,
            window_start: Some(self.started),
        };
        let observation =
            super::observe::observe(&self.state, &self.setup, &self.probes, &window, 0).await;
        let assessment = self.judge.lock().unwrap_or_else(|e| e.into_inner()).assess(
            &observation,
            crate::model::DataImpact::None,
            Duration::ZERO,
        );
        let unknown: Vec<&str> = assessment
            .evidence
            .iter()
            .filter(|e| matches!(e.verdict, Verdict::NoData | Verdict::Error))
            .map(|e| e.reason.as_str())
            .collect();
        let failing: Vec<&str> = assessment
            .evidence
            .iter()
            .filter(|e| matches!(e.verdict, Verdict::Fail(_) | Verdict::Pending { .. }))
            .map(|e| e.reason.as_str())
            .collect();
        if !failing.is_empty() {
            VerifyResult::NotYet(failing.join("; "))
        } else if !unknown.is_empty() {
            VerifyResult::Unknown(unknown.join("; "))
        } else {
            VerifyResult::Healthy
        }
    }

    /// Checks until healthy or `timeout`; the last reason on failure.
    pub(super) async fn verify_for(
        &self,
        timeout: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let last = match self.check().await {
                VerifyResult::Healthy => return Ok(()),
                VerifyResult::NotYet(why) | VerifyResult::Unknown(why) => why,
            };
            if *stop.borrow() {
                return Err(format!("rollguard is stopping; last check: {last}"));
            }
            if tokio::time::Instant::now() + self.interval > deadline {
                return Err(format!(
                    "not back to normal within {}: {last}",
                    humantime::format_duration(timeout)
                ));
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
