//! The commands the API sends a target's loop: announce a release, approve
//! the pending rollback, roll back by hand (`manual.rs`), set the time to fix. Each answers the API with a
//! line for the person who asked.

use super::TargetLoop;
use crate::config::ReleaseKind;
use crate::journal::Event;
use crate::model::DecisionRecord;
use crate::release::ReleaseChange;
use crate::state::{CommandError, TargetCommand};
use crate::watchdog::act::{ApproveError, approve_input};
use crate::watchdog::gate::{self, Refusal};

impl TargetLoop {
    /// A command from the API.
    pub(super) async fn command(&mut self, command: TargetCommand) {
        match command {
            TargetCommand::Announce {
                version,
                previous,
                reply,
            } => {
                let outcome = if self.setup.target.release.kind() != ReleaseKind::Announce {
                    Err(CommandError::Refused(format!(
                        "target {} detects its releases from its {} source; announcements are for release kind \"announce\"",
                        self.name(),
                        self.setup.target.release.kind().as_str()
                    )))
                } else {
                    let now = self.now();
                    match self.tracker.announce(&version, previous, now) {
                        Some(change) => {
                            let id = match &change {
                                ReleaseChange::Release { id, .. }
                                | ReleaseChange::Rollback { id, .. } => id.clone(),
                                ReleaseChange::Initial { .. } => String::new(),
                            };
                            self.on_change(change).await;
                            Ok(id)
                        }
                        None => Err(CommandError::Refused(format!(
                            "{version} is already the running version"
                        ))),
                    }
                };
                let _ = reply.send(outcome);
            }
            TargetCommand::Approve { reply } => match self.approve().await {
                Ok(record) => {
                    let (bad, restore) = self
                        .bake
                        .as_ref()
                        .map(|b| {
                            (
                                b.version.clone(),
                                b.previous_version.clone().unwrap_or_default(),
                            )
                        })
                        .unwrap_or_default();
                    let _ = reply.send(Ok(format!(
                        "approved: rolling back {} from {bad} to {restore}",
                        self.name()
                    )));
                    let restored = match self.actor() {
                        Some(mut actor) => actor.rollback_approved(record).await,
                        None => None,
                    };
                    if let Some(change) = restored {
                        self.on_change(change).await;
                    }
                }
                Err(error) => {
                    let _ = reply.send(Err(error.command_error(self.name())));
                }
            },
            TargetCommand::Rollback { request, reply } => {
                self.manual_rollback(request, reply).await;
            }
            TargetCommand::SetTimeToFix { time_to_fix, reply } => {
                let text = time_to_fix.map(|d| humantime::format_duration(d).to_string());
                let event = Event::TimeToFixSet {
                    time_to_fix: text.clone(),
                };
                let outcome = match self
                    .state
                    .journal()
                    .append_async(Some(self.name()), event)
                    .await
                {
                    // In force only once journaled, so that a restart
                    // keeps what the API answered.
                    Ok(_) => {
                        self.time_to_fix = time_to_fix;
                        Ok(format!(
                            "time to fix for {} is now {}",
                            self.name(),
                            text.unwrap_or_else(|| format!(
                                "the configured {}",
                                self.setup.target.time_to_fix
                            ))
                        ))
                    }
                    Err(error) => Err(CommandError::Failed(format!(
                        "cannot journal the change: {error}"
                    ))),
                };
                let _ = reply.send(outcome);
            }
        }
        self.publish();
    }

    /// A human's approval: refused by the gate, or journaled by the actor.
    async fn approve(&mut self) -> Result<DecisionRecord, ApproveError> {
        let Some(mut actor) = self.actor() else {
            let input = approve_input(&self.state, &self.setup, None);
            let refusal = gate::check_approval(input, self.now()).err();
            return Err(ApproveError::Refused(refusal.unwrap_or(Refusal::NoRelease)));
        };
        actor.approve().await
    }
}
