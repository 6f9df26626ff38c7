//! What a target's loop does when the running version changes: reading
//! the release source, telling rollguard's own rollbacks (even another
//! replica's) from releases, and opening and closing bake windows.

use super::TargetLoop;
use crate::data_check;
use crate::journal::Event;
use crate::judge::Judge;
use crate::notify::NotifyEvent;
use crate::release::{ReleaseChange, ReleaseSource, SeenBy, SourceError};
use crate::watchdog::WithVersions;
use crate::watchdog::bake::{Bake, BakeKind};
use std::collections::BTreeMap;
use std::time::SystemTime;

impl TargetLoop {
    pub(super) async fn read_source(&mut self, now: SystemTime) {
        let Some(read) = self.read_version().await else {
            return;
        };
        match read {
            Ok(Some(version)) => {
                self.version_refused = false;
                if self.source_error.take().is_some() {
                    tracing::info!(target_name = %self.name(), "The release source answers again");
                }
                let last_seen = self.last_seen_at.replace(now);
                if self.rolled_back_elsewhere(&version, now).await {
                    return;
                }
                if let Some(mut change) = self.tracker.observe(&version, now) {
                    if let (ReleaseChange::Release { at, .. }, Some(last_seen)) =
                        (&mut change, last_seen)
                    {
                        *at = last_seen;
                    }
                    self.on_change(change).await;
                }
            }
            Ok(None) => {}
            Err(error) => {
                self.version_refused = matches!(error, SourceError::BadVersion { .. });
                let message = error.to_string();
                if self.source_error.as_deref() != Some(message.as_str()) {
                    if self.version_refused && self.bake.is_some() {
                        tracing::warn!(target_name = %self.name(), error = %message, "Cannot read the running version; the bake window holds (no action) until it can");
                    } else {
                        tracing::warn!(target_name = %self.name(), error = %message, "Cannot read the running version; releases are not seen until it answers");
                    }
                    self.source_error = Some(message);
                }
            }
        }
    }

    /// The version running now, read once more, when it is not `judged`
    /// (the release a tick's evidence was gathered for). None when it is
    /// the same, or when the source cannot tell (no source, a read error:
    /// the tick's evidence stands, as it would have without this check).
    pub(super) async fn version_moved(&self, judged: &str) -> Option<String> {
        match self.read_version().await? {
            Ok(Some(version)) if version != judged => Some(version),
            _ => None,
        }
    }

    /// One read of the running version; None without a source. A version
    /// read is a request to the service like a probe, and shares the
    /// probes' bound (`daemon.max_concurrent_probes`).
    async fn read_version(&self) -> Option<Result<Option<String>, SourceError>> {
        let source = self.source.as_ref()?;
        let _permit = self.setup.probe_permits.clone().acquire_owned().await.ok();
        Some(source.current_version().await)
    }

    /// The Deployment carries rollguard's rollback mark for
    /// the version running. If this replica still runs the bad release, the
    /// change to come is rollguard's own (another replica, or this one
    /// before a restart, rolled back); if it already took that change for
    /// a release (the mark arrived after the new revision), that window
    /// becomes a verification. Returns true when the tick's change was
    /// handled here.
    async fn rolled_back_elsewhere(&mut self, version: &str, now: SystemTime) -> bool {
        let Some(mark) = self
            .source
            .as_ref()
            .and_then(ReleaseSource::kubernetes)
            .and_then(|k| k.rolled_back())
        else {
            return false;
        };
        if mark.to != version {
            return false;
        }
        if self.tracker.current() == Some(mark.from.as_str())
            && self.tracker.expected_rollback(now) != Some(version)
        {
            tracing::info!(target_name = %self.name(), release_id = %mark.release_id, from = %mark.from, to = %mark.to, "The Deployment says rollguard rolled it back; not a release");
            self.tracker.expect_rollback(&mark.to, now);
            return false;
        }
        let Some(bake) = &self.bake else { return false };
        if bake.kind != BakeKind::Release
            || bake.version != mark.to
            || bake.previous_version.as_deref() != Some(mark.from.as_str())
        {
            return false;
        }
        tracing::info!(target_name = %self.name(), release_id = %mark.release_id, version = %mark.to, "The Deployment says this version is rollguard's rollback, not a release");
        let ms = now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let change = ReleaseChange::Rollback {
            id: format!("{}-{ms}", self.name()),
            from: Some(mark.from),
            to: mark.to,
            at: now,
        };
        self.on_change(change).await;
        true
    }

    /// A version change: a release opens a bake window, rollguard's own
    /// rollback opens a verification window.
    pub(super) async fn on_change(&mut self, change: ReleaseChange) {
        let name = self.name().to_owned();
        let (id, previous, version, at, kind, source) = match change {
            ReleaseChange::Initial { version, .. } => {
                tracing::info!(target_name = %name, %version, "Running version (not a release)");
                return;
            }
            ReleaseChange::Release {
                id,
                from,
                to,
                at,
                seen_by,
            } => {
                let source = match seen_by {
                    SeenBy::Announce => "announce",
                    SeenBy::Source => self.setup.target.release.kind().as_str(),
                };
                (id, from, to, at, BakeKind::Release, source)
            }
            ReleaseChange::Rollback { id, from, to, at } => {
                (id, from, to, at, BakeKind::Verification, "rollguard")
            }
        };
        if self.bake.is_some() {
            self.finish_bake().await;
        }
        let event = Event::ReleaseSeen {
            from: previous.clone(),
            to: version.clone(),
            source: source.to_owned(),
            by_rollguard: kind == BakeKind::Verification,
            release_id: id.clone(),
        };
        if let Err(error) = self.state.journal().append_async(Some(&name), event).await {
            tracing::error!(target_name = %name, %error, "Cannot journal the release");
        }
        let mut bake = Bake::new(
            id.clone(),
            version.clone(),
            previous.clone(),
            at,
            kind,
            Judge::new(&self.setup.target),
            self.setup.target.bake_window,
        );
        if kind == BakeKind::Release {
            tracing::info!(target_name = %name, release_id = %id, from = ?previous, to = %version, bake_window = ?self.setup.target.bake_window, "Release seen; watching it closely");
            bake.data_impact = self.data_impact(&bake).await;
            // Only the leader speaks; followers keep judging.
            if self.state.is_leader() {
                self.notify(
                    self.setup
                        .notification(NotifyEvent::ReleaseDetected, at)
                        .with_release_id(&id)
                        .with_versions(Some(version), previous)
                        .with_release_at(at),
                );
            }
        } else {
            tracing::info!(target_name = %name, release_id = %id, %version, "The rollback's version is running; verifying it (never rolled back again automatically)");
        }
        self.bake = Some(bake);
    }

    /// Runs the target's data checks for a release.
    async fn data_impact(&self, bake: &Bake) -> (crate::model::DataImpact, Vec<String>) {
        if self.setup.target.data_check.is_empty() {
            return (crate::model::DataImpact::None, Vec::new());
        }
        let vars = BTreeMap::from([
            ("target", self.name().to_owned()),
            ("version", bake.version.clone()),
            (
                "previous_version",
                bake.previous_version.clone().unwrap_or_default(),
            ),
            ("release_id", bake.release_id.clone()),
        ]);
        let cx = data_check::DataCheckContext {
            vars,
            link: self.setup.target.release.path().map(Into::into),
        };
        data_check::data_impact(&self.setup.target.data_check, &cx).await
    }

    /// Closes the bake window.
    pub(super) async fn finish_bake(&mut self) {
        let Some(bake) = self.bake.take() else { return };
        let decision = match &bake.last {
            _ if bake.rolled_back => crate::model::Decision::Rollback,
            Some(last) => last.decision,
            None => crate::model::Decision::Healthy,
        };
        tracing::info!(target_name = %self.name(), release_id = %bake.release_id, %decision, "Bake window closed");
        if let Some(approval) = &bake.approval {
            tracing::warn!(target_name = %self.name(), release_id = %bake.release_id, "The rollback was never approved; the request expired with the bake window");
            self.notify(
                self.setup
                    .notification(NotifyEvent::ApprovalExpired, self.now())
                    .with_release_id(&bake.release_id)
                    .with_versions(Some(bake.version.clone()), bake.previous_version.clone())
                    .with_detail(format!("asked for because {}", approval.reason)),
            );
        }
        let event = Event::BakeFinished {
            release_id: bake.release_id.clone(),
            decision,
        };
        if let Err(error) = self
            .state
            .journal()
            .append_async(Some(self.name()), event)
            .await
        {
            tracing::error!(target_name = %self.name(), %error, "Cannot journal the end of the bake window");
        }
        // A follower's journal holds decisions but not the leader's
        // rollback: it would report a rollback that never ran.
        if self.state.is_leader() {
            let (journal, metrics) = (self.state.journal(), self.state.metrics());
            crate::report::on_incident(journal, metrics, &self.setup.target, &bake.release_id)
                .await;
        }
    }
}
