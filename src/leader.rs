//! Several replicas, one acting: leader election on a `coordination.k8s.io`
//! Lease (`daemon.leader_election`). Without it, a single instance is
//! always the leader.
//!
//! The loop is the one client-go's `leaderelection` runs, written out
//! because it is short and because kube-lease-manager 0.13 does not fit:
//! it takes a free Lease with server-side apply (which the test cluster, like
//! some API proxies, refuses with 415) and relies on apply conflicts for
//! mutual exclusion, renews without `resourceVersion`, and counts durations
//! in whole seconds only on its side. Here every write is a `PUT` carrying
//! the `resourceVersion` that was read, so two replicas racing for the
//! Lease get one success and one 409.
//!
//! - A replica takes the Lease when it has no holder, or when its record
//!   (holder, renew time) has not changed for the Lease's duration *as this
//!   replica measured it*: clocks of different machines are never compared.
//! - The leader renews every `duration / 5` and steps down (the watch turns
//!   false) when it could not renew for `duration * 2 / 3`, before anyone
//!   else may take over.
//! - On shutdown the leader gives the Lease up, so a successor need not
//!   wait.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Why one attempt to take or renew the Lease failed (a lost race is not a
/// failure: it is "not the leader").
#[derive(Debug, thiserror::Error)]
#[error("lease {namespace}/{lease}: {reason}")]
pub struct LeaderError {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub lease: String,
    /// What went wrong.
    pub reason: String,
}

/// A leadership channel that is always `true`: a single instance.
pub fn single_instance() -> watch::Receiver<bool> {
    // The sender is dropped: the value stays `true` for ever.
    watch::channel(true).1
}

/// An identity unique to this process: the host name (the pod's name in a
/// cluster), the process id and a few bits of the start time, so that two
/// daemons in one process (tests) differ too.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "rollguard".to_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host}-{}-{nanos:08x}", std::process::id())
}

/// What was last seen of the Lease's record, and when (on this replica's
/// clock): the record is expired once it has not changed for its duration.
#[derive(Debug, Clone, PartialEq)]
struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    duration: Duration,
}

/// One replica's side of the election.
pub struct LeaseElector {
    /// The Leases of the configured namespace.
    api: Api<Lease>,
    /// The Lease's namespace (for messages).
    namespace: String,
    /// The Lease's name.
    lease: String,
    /// This replica's `holderIdentity`.
    identity: String,
    /// How long a holder that stops renewing keeps the Lease.
    duration: Duration,
    /// The record last seen and when it last changed.
    observed: Option<(Observed, Instant)>,
}

impl std::fmt::Debug for LeaseElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseElector")
            .field("lease", &format!("{}/{}", self.namespace, self.lease))
            .field("identity", &self.identity)
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

impl LeaseElector {
    /// An elector for Lease `lease` in `namespace`, as `identity`.
    /// `duration` is written to the Lease in whole seconds (at least 1).
    pub fn new(
        client: kube::Client,
        namespace: &str,
        lease: &str,
        identity: &str,
        duration: Duration,
    ) -> LeaseElector {
        LeaseElector {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            lease: lease.to_owned(),
            identity: identity.to_owned(),
            duration: duration.max(Duration::from_secs(1)),
            observed: None,
        }
    }

    /// This replica's identity in the Lease.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn error(&self, reason: impl std::fmt::Display) -> LeaderError {
        LeaderError {
            namespace: self.namespace.clone(),
            lease: self.lease.clone(),
            reason: reason.to_string(),
        }
    }

    fn seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// One round: creates the Lease, takes it when it is free or expired,
    /// or renews it when held. `Ok(true)`: this replica holds it now.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, LeaderError> {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let existing = match self.api.get_opt(&self.lease).await {
            Ok(existing) => existing,
            Err(error) => return Err(self.error(format!("cannot read it: {error}"))),
        };
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.lease.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.seconds()),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(error) => Err(self.error(format!("cannot create it: {error}"))),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let record = Observed {
            holder: holder.clone(),
            renew_time: spec.renew_time.clone(),
            duration: spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map(Duration::from_secs)
                .unwrap_or(self.duration),
        };
        let changed_at = match &self.observed {
            Some((seen, at)) if *seen == record => *at,
            _ => Instant::now(),
        };
        self.observed = Some((record.clone(), changed_at));
        let ours = holder.as_deref() == Some(self.identity.as_str());
        if let Some(holder) = &holder
            && !ours
            && changed_at.elapsed() < record.duration
        {
            tracing::trace!(%holder, "The lease is held by another replica");
            return Ok(false);
        }
        let mut new_spec = spec.clone();
        if !ours {
            new_spec.acquire_time = Some(now.clone());
            new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        new_spec.holder_identity = Some(self.identity.clone());
        new_spec.lease_duration_seconds = Some(self.seconds());
        new_spec.renew_time = Some(now);
        lease.spec = Some(new_spec);
        // `lease` carries the resourceVersion read above: a replica that
        // wrote in between makes this a 409, not a second leader.
        match self
            .api
            .replace(&self.lease, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(self.error(format!("cannot write it: {error}"))),
        }
    }

    /// Gives the Lease up if this replica holds it, so that a successor
    /// need not wait for it to expire.
    pub async fn release(&mut self) -> Result<(), LeaderError> {
        let mut lease = match self.api.get_opt(&self.lease).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return Ok(()),
            Err(error) => return Err(self.error(format!("cannot read it: {error}"))),
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        lease.spec = Some(spec);
        self.api
            .replace(&self.lease, &PostParams::default(), &lease)
            .await
            .map(|_| ())
            .map_err(|error| self.error(format!("cannot give it up: {error}")))
    }

    /// Runs the election until `stop` turns true (then gives the Lease up).
    /// The returned channel says whether this replica leads now.
    pub fn spawn(self, stop: watch::Receiver<bool>) -> (watch::Receiver<bool>, JoinHandle<()>) {
        let (leader, leading) = watch::channel(false);
        let task = tokio::spawn(self.run(leader, stop));
        (leading, task)
    }

    async fn run(mut self, leader: watch::Sender<bool>, mut stop: watch::Receiver<bool>) {
        let retry = self.duration / 5;
        let deadline = self.duration * 2 / 3;
        // When the last successful renewal was *sent*: the Lease runs from
        // no earlier than that.
        let mut renewed_at: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            let leading = *leader.borrow();
            let started = Instant::now();
            let limit = match (leading, renewed_at) {
                (true, Some(at)) => (at + deadline).saturating_duration_since(started),
                _ => retry,
            };
            let outcome = tokio::time::timeout(limit.min(retry), self.try_acquire_or_renew()).await;
            match outcome {
                Ok(Ok(true)) => {
                    renewed_at = Some(started);
                    if !leading {
                        tracing::info!(identity = %self.identity, lease = %self.lease, "Became the leader: this replica acts");
                        leader.send_replace(true);
                    }
                }
                Ok(Ok(false)) => {
                    if leading {
                        tracing::warn!(identity = %self.identity, lease = %self.lease, "Lost the lease to another replica: no new rollback step starts here");
                        leader.send_replace(false);
                    }
                    renewed_at = None;
                }
                failed => {
                    let reason = match failed {
                        Ok(Err(error)) => error.to_string(),
                        _ => format!("lease {}: no answer within {limit:?}", self.lease),
                    };
                    let expired = renewed_at.is_none_or(|at| at.elapsed() >= deadline);
                    if leading && expired {
                        tracing::error!(identity = %self.identity, error = %reason, "Cannot renew the lease: stepping down before it expires");
                        leader.send_replace(false);
                        renewed_at = None;
                    } else {
                        tracing::warn!(identity = %self.identity, error = %reason, "Cannot take or renew the lease; retrying");
                    }
                }
            }
            let mut pause = retry;
            if *leader.borrow()
                && let Some(at) = renewed_at
            {
                pause = pause.min((at + deadline).saturating_duration_since(Instant::now()));
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        if *leader.borrow() {
            leader.send_replace(false);
            if let Err(error) = self.release().await {
                tracing::warn!(%error, "Cannot give the lease up; another replica takes it once it expires");
            } else {
                tracing::info!(identity = %self.identity, "Gave the lease up");
            }
        }
    }
}

/// A stop signal for one pipeline run: true once `stop` (shutdown) is, or
/// once `leader` turns false. Dropping it ends its small helper task.
#[derive(Debug)]
pub struct PipelineStop {
    /// Give this to the pipeline.
    pub receiver: watch::Receiver<bool>,
    /// Whether leadership (not shutdown) fired it.
    lost: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl PipelineStop {
    /// Combines the shutdown signal with the leadership channel.
    pub fn new(stop: watch::Receiver<bool>, leader: watch::Receiver<bool>) -> PipelineStop {
        let (tx, receiver) = watch::channel(*stop.borrow() || !*leader.borrow());
        let (lost_tx, lost) = watch::channel(!*leader.borrow());
        let task = tokio::spawn(async move {
            let mut stop = stop;
            let mut leader = leader;
            let shutdown = async {
                // A dropped sender means "never": park.
                if stop.wait_for(|s| *s).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            let demoted = async {
                if leader.wait_for(|l| !*l).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = shutdown => {}
                _ = demoted => { lost_tx.send_replace(true); }
            }
            tx.send_replace(true);
        });
        PipelineStop {
            receiver,
            lost,
            task,
        }
    }

    /// Whether the signal fired because this replica stopped leading.
    pub fn lost_leadership(&self) -> bool {
        *self.lost.borrow()
    }
}

impl Drop for PipelineStop {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn single_instance_always_leads() {
        let leader = single_instance();
        assert!(*leader.borrow());
        let stop = PipelineStop::new(watch::channel(false).1, leader);
        tokio::task::yield_now().await;
        assert!(!*stop.receiver.borrow());
    }

    #[tokio::test]
    async fn pipeline_stop_fires_on_shutdown_or_demotion() {
        let (shutdown, stopped) = watch::channel(false);
        let (leader, leading) = watch::channel(true);
        let mut stop = PipelineStop::new(stopped.clone(), leading.clone());
        assert!(!*stop.receiver.borrow());
        leader.send_replace(false);
        stop.receiver.wait_for(|s| *s).await.expect("fires");
        assert!(stop.lost_leadership());

        leader.send_replace(true);
        let mut stop = PipelineStop::new(stopped, leading);
        shutdown.send_replace(true);
        stop.receiver.wait_for(|s| *s).await.expect("fires");
        assert!(!stop.lost_leadership());
    }

    #[test]
    fn identities_differ_between_calls() {
        let a = default_identity();
        std::thread::sleep(Duration::from_millis(2));
        assert_ne!(a, default_identity());
    }
}
