//! Notifications: telling people what happened to a release, what rollguard
//! is doing about it (`from → to`) and what to expect, through `webhook`,
//! `slack` and `command` notifiers.
//!
//! - [`Notification`] is the message as data; [`headline`] and [`text`]
//!   put it in the runbook's words; [`webhook_payload`] and
//!   [`slack_payload`] are the bodies sent.
//! - [`Notifiers`] is built once from `[[notifier]]` (and rebuilt on
//!   reload). [`Notifiers::send`] only puts the message in each notifier's
//!   queue and returns at once: a slow or dead receiver never delays a
//!   rollback, the caller, or another notifier. One background task per
//!   notifier delivers its queue in order, retrying with exponential
//!   backoff, and journals every outcome as `notification_sent`.
//!
//! Each notifier receives only its events ([`NotifierConfig::receives`]:
//! its `events`, or its kind's default, where Slack gets no `rollback_step`
//! and no `release_detected`); the others are left out before its queue.
//!
//! A `command` notifier gets the webhook JSON on its standard input; its
//! argv may use `{{target}}`, `{{version}}` (the release judged or rolled
//! back from), `{{previous_version}}` (the version rolled back to),
//! `{{release_id}}` and `{{mode}}`, each substituted as one argument, never
//! through a shell. Its environment carries the same context as command
//! steps get (`ROLLGUARD_TARGET`, `ROLLGUARD_FROM_VERSION`, ...) plus
//! `ROLLGUARD_EVENT`.
//!
//! Receiver URLs and header values may be secrets: they appear in no log
//! line and no Debug output.

mod command;
mod deliver;
mod message;
mod text;

pub use message::{Notification, NotifyEvent, WEBHOOK_FIELDS, slack_payload, webhook_payload};
pub use text::{headline, text};

use crate::config::{Environment, NotifierConfig, NotifierKind};
use crate::journal::Journal;
use crate::metrics::NotificationLabels;
use deliver::{Backoff, Delivery, Receiver};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;

/// How deliveries are paced and queued; [`Default`] is what the daemon
/// uses, tests shorten the backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryOptions {
    /// Wait after the first failed attempt; it doubles after each further
    /// failure.
    pub backoff_base: Duration,
    /// Longest wait between two attempts.
    pub backoff_max: Duration,
    /// Messages waiting per notifier; when full, a new message is dropped
    /// (logged, counted, journaled) rather than held in memory without end.
    pub queue_capacity: usize,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            queue_capacity: 256,
        }
    }
}

/// One notifier's queue and the task that serves it.
struct Queue {
    /// Its kind, for Debug.
    kind: NotifierKind,
    /// Where it delivers, secrets redacted, for Debug.
    receiver: String,
    /// The events it receives (its `events`, or its kind's default).
    events: Vec<NotifyEvent>,
    /// Messages to deliver; dropping it lets the task finish the queue and end.
    sender: mpsc::Sender<Notification>,
    /// Messages queued or being delivered.
    pending: Arc<AtomicUsize>,
    /// The delivery task.
    task: JoinHandle<()>,
}

/// Every configured notifier, each with its own queue and delivery task.
///
/// Dropping it closes the queues: each task still delivers what was already
/// queued, then ends (so a reload loses nothing); [`Notifiers::shutdown`]
/// waits for that with a time limit.
pub struct Notifiers {
    /// By name.
    queues: BTreeMap<String, Queue>,
    /// Where dropped messages are recorded.
    journal: Journal,
    /// `rollguard_notifications_total`.
    counter: Family<NotificationLabels, Counter>,
    /// Where the journal write of a dropped message runs, since `send` is
    /// not async.
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Notifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (name, queue) in &self.queues {
            map.entry(name, &format_args!("{:?} {}", queue.kind, queue.receiver));
        }
        map.finish()
    }
}

impl Notifiers {
    /// Resolves every notifier (URLs from `url`, from `url_env` read through
    /// `env`, or from `url_file`, trimmed; header values through `env`) and
    /// starts one delivery task per notifier on the current tokio runtime
    /// (must be called inside one). A notifier that cannot be resolved is
    /// logged by name and reason, never with a value; each of its
    /// deliveries then fails and is journaled with 0 attempts.
    ///
    /// `counter` is [`Metrics::notifications`](crate::metrics::Metrics)
    /// (a clone shares the counts).
    pub fn new(
        configs: &[NotifierConfig],
        env: &dyn Environment,
        client: reqwest::Client,
        journal: Journal,
        counter: Family<NotificationLabels, Counter>,
        options: DeliveryOptions,
    ) -> Notifiers {
        let runtime = tokio::runtime::Handle::current();
        let mut queues = BTreeMap::new();
        for config in configs {
            let receiver = Receiver::resolve(config, env);
            if let Receiver::Unresolved { reason } = &receiver {
                tracing::error!(notifier = %config.name, reason = %reason, "Notifier is not usable; its notifications will fail");
            }
            let description = format!("{receiver:?}");
            let (sender, queue) = mpsc::channel(options.queue_capacity.max(1));
            let pending = Arc::new(AtomicUsize::new(0));
            let delivery = Delivery {
                name: config.name.clone(),
                receiver,
                timeout: config.timeout,
                retries: config.retries,
                backoff: Backoff {
                    base: options.backoff_base,
                    max: options.backoff_max,
                },
                client: client.clone(),
                journal: journal.clone(),
                counter: counter.clone(),
            };
            let task = runtime.spawn(delivery.serve(queue, pending.clone()));
            queues.insert(
                config.name.clone(),
                Queue {
                    kind: config.kind,
                    receiver: description,
                    events: NotifyEvent::ALL
                        .into_iter()
                        .filter(|event| config.receives(*event))
                        .collect(),
                    sender,
                    pending,
                    task,
                },
            );
        }
        Notifiers {
            queues,
            journal,
            counter,
            runtime,
        }
    }

    /// Queues `notification` for each notifier named in `to` and returns at
    /// once; never waits for a delivery. A name that is not configured is
    /// logged and skipped. A notifier that does not receive this event (its
    /// `events`, or its kind's default) is skipped before its queue: nothing
    /// is delivered, counted or journaled for it. A full queue drops the
    /// message for that notifier (logged, counted as `dropped`, journaled as
    /// not sent, 0 attempts).
    pub fn send(&self, to: &[String], notification: Notification) {
        for name in to {
            let Some(queue) = self.queues.get(name) else {
                tracing::warn!(notifier = %name, event = %notification.event, "Notification not sent: no such notifier");
                continue;
            };
            if !queue.events.contains(&notification.event) {
                tracing::debug!(notifier = %name, event = %notification.event, "Not an event this notifier receives");
                continue;
            }
            queue.pending.fetch_add(1, Ordering::AcqRel);
            let Err(error) = queue.sender.try_send(notification.clone()) else {
                continue;
            };
            queue.pending.fetch_sub(1, Ordering::AcqRel);
            let why = match error {
                TrySendError::Full(_) => "its queue is full",
                TrySendError::Closed(_) => "its delivery task has ended",
            };
            tracing::warn!(notifier = %name, event = %notification.event, target = %notification.target, why, "Notification dropped");
            let (journal, counter) = (self.journal.clone(), self.counter.clone());
            let (notifier, dropped) = (name.clone(), notification.clone());
            self.runtime.spawn(async move {
                deliver::record(&journal, &counter, &notifier, &dropped, "dropped", 0).await;
            });
        }
    }

    /// The configured notifiers' names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.queues.keys().map(String::as_str)
    }

    /// Messages queued or being delivered, over every notifier.
    pub fn pending(&self) -> usize {
        self.queues
            .values()
            .map(|queue| queue.pending.load(Ordering::Acquire))
            .sum()
    }

    /// Closes the queues and waits up to `grace` for what is queued to be
    /// delivered (or to fail); what is left after that is abandoned, with a
    /// warning per notifier saying how many messages were lost.
    pub async fn shutdown(self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        let tasks: Vec<(String, Arc<AtomicUsize>, JoinHandle<()>)> = self
            .queues
            .into_iter()
            .map(|(name, queue)| (name, queue.pending, queue.task))
            .collect();
        for (name, pending, mut task) in tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                tracing::warn!(notifier = %name, undelivered = pending.load(Ordering::Acquire), "Shutdown grace is over; abandoning undelivered notifications");
            }
        }
    }
}
