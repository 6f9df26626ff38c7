//! Keeps a target's watcher running: a loop that ends while nobody asked it
//! to stop (a panic on something unforeseen) is logged, counted, shown in
//! the target's status and on `/readyz`, and started again from what the
//! journal says, after a short backoff.
//!
//! Starting again from the journal is what keeps "never act twice": a
//! rollback that was under way when the loop died is found open there and
//! closed as interrupted, not run again.

use crate::state::{State, WatcherFailure};
use std::future::Future;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The first wait before a failed loop starts again; doubled after each
/// failure in a row, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The longest wait before a failed loop starts again.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A loop that ran this long before failing starts again after the first
/// backoff, not a doubled one: it was not failing in a row.
const STEADY: Duration = Duration::from_secs(600);

/// Aborts the task it holds when dropped, so that aborting the supervisor
/// (at the end of the shutdown grace) aborts the loop it runs.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `start(run)` (run 0, then 1, ... after each failure) as its own
/// task until `stop` turns true. `start` makes the loop's future for one
/// run: the first from what the daemon recovered at start, later ones from
/// the journal again.
pub(super) async fn supervise<F, Fut>(
    state: State,
    name: String,
    mut stop: watch::Receiver<bool>,
    mut start: F,
) where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut failures: u64 = 0;
    let mut in_a_row: u32 = 0;
    loop {
        let started = tokio::time::Instant::now();
        let mut task = AbortOnDrop(tokio::spawn(start(failures)));
        let ended = (&mut task.0).await;
        if *stop.borrow() {
            return;
        }
        let reason = match ended {
            Ok(()) => "its loop ended".to_owned(),
            Err(error) if error.is_panic() => format!("panic: {}", panic_text(error.into_panic())),
            Err(_) => "its loop was cancelled".to_owned(),
        };
        failures += 1;
        in_a_row = if started.elapsed() >= STEADY {
            1
        } else {
            in_a_row + 1
        };
        let backoff = FIRST_BACKOFF
            .saturating_mul(1 << in_a_row.saturating_sub(1).min(6))
            .min(MAX_BACKOFF);
        tracing::error!(
            target_name = %name,
            reason = %reason,
            failures,
            backoff = %humantime::format_duration(backoff),
            "A target's watcher stopped unexpectedly; it starts again from the journal"
        );
        state.metrics().watcher_failed(&name);
        let failure = WatcherFailure {
            failures,
            last_failure: reason,
            last_failure_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            down: true,
        };
        state.update_target(&name, |s| s.watcher_failure = Some(failure));
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(backoff) => {}
        }
        state.update_target(&name, |s| {
            if let Some(failure) = &mut s.watcher_failure {
                failure.down = false;
            }
        });
    }
}

/// What a panic said, when it said it with a string.
fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    let text = match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map_or_else(|| "(no message)".to_owned(), |s| (*s).to_owned()),
    };
    text.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Journal;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn state(dir: &std::path::Path) -> State {
        let text = "[[target]]\nname = \"api\"\n[target.release]\nkind = \"announce\"\n";
        let config = crate::config::parse(text, std::path::Path::new("t.toml")).expect("config");
        let (journal, _) = Journal::open(dir).expect("journal");
        let (control, _) = tokio::sync::mpsc::channel(1);
        State::new(Arc::new(config), None, journal, control)
    }

    #[tokio::test(start_paused = true)]
    async fn a_loop_that_panics_is_reported_and_started_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = state(dir.path());
        let (stop_tx, stop) = watch::channel(false);
        let runs = Arc::new(AtomicU64::new(0));
        let counted = runs.clone();
        let loop_stop = stop.clone();
        let supervisor = tokio::spawn(supervise(
            state.clone(),
            "api".to_owned(),
            stop,
            move |run| {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut loop_stop = loop_stop.clone();
                async move {
                    if run < 2 {
                        panic!("bake window overflow in run {run}");
                    }
                    let _ = loop_stop.wait_for(|s| *s).await;
                }
            },
        ));
        // Run 0 panics at once; run 1 starts after 1 s and panics; run 2
        // starts after 2 s more and keeps running.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status = &state.targets()[0];
        let failure = status.watcher_failure.clone().expect("reported");
        assert_eq!((failure.failures, failure.down), (1, true));
        assert!(
            failure
                .last_failure
                .contains("bake window overflow in run 0"),
            "{failure:?}"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "started again twice");
        let failure = state.targets()[0].watcher_failure.clone().expect("kept");
        assert_eq!((failure.failures, failure.down), (2, false));
        assert!(
            state
                .metrics()
                .encode()
                .contains("rollguard_watcher_failures_total{target=\"api\"} 2")
        );
        stop_tx.send(true).expect("supervisor listens");
        supervisor.await.expect("supervisor ends");
    }

    #[tokio::test(start_paused = true)]
    async fn a_loop_asked_to_stop_is_not_started_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = state(dir.path());
        let (stop_tx, stop) = watch::channel(false);
        let loop_stop = stop.clone();
        let supervisor = tokio::spawn(supervise(
            state.clone(),
            "api".to_owned(),
            stop,
            move |_| {
                let mut loop_stop = loop_stop.clone();
                async move {
                    let _ = loop_stop.wait_for(|s| *s).await;
                }
            },
        ));
        tokio::time::sleep(Duration::from_secs(5)).await;
        stop_tx.send(true).expect("listening");
        supervisor.await.expect("supervisor ends");
        assert!(state.targets().iter().all(|t| t.watcher_failure.is_none()));
    }
}
