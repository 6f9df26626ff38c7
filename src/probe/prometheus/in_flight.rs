//! Identical queries in flight at once are sent once.
//!
//! Two metrics of a target may share a query: two count metrics over the
//! same traffic (`total_query`) send the same rendered query, evaluated at
//! the same tick time. The first to ask sends it; the others await its
//! answer. So a rendered query is never sent more than once per tick
//! (docs/performance.md, "Queries per tick, and batching"). An entry lives
//! only while its query is in flight: nothing is cached across ticks.

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The queries in flight, by what makes them identical (endpoint, query,
/// evaluation time, step, time limit).
pub(super) struct InFlight<T: Clone>(Arc<Mutex<HashMap<String, Shared<BoxFuture<'static, T>>>>>);

impl<T: Clone> Clone for InFlight<T> {
    fn clone(&self) -> Self {
        InFlight(self.0.clone())
    }
}

impl<T: Clone> Default for InFlight<T> {
    fn default() -> Self {
        InFlight(Arc::default())
    }
}

/// Removes its entry when the caller that sent the query is done with it,
/// answered or cancelled; the others still hold the shared future.
struct Entry<'a, T: Clone> {
    map: &'a Mutex<HashMap<String, Shared<BoxFuture<'static, T>>>>,
    key: String,
}

impl<T: Clone> Drop for Entry<'_, T> {
    fn drop(&mut self) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

impl<T: Clone + Send + Sync + 'static> InFlight<T> {
    /// The answer to the query `key`: awaited from the identical one in
    /// flight, or sent now by `send`.
    pub(super) async fn run(&self, key: String, send: impl FnOnce() -> BoxFuture<'static, T>) -> T {
        let (future, entry) = {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(&key) {
                Some(future) => (future.clone(), None),
                None => {
                    let future = send().shared();
                    map.insert(key.clone(), future.clone());
                    let entry = Entry { map: &self.0, key };
                    (future, Some(entry))
                }
            }
        };
        let answer = future.await;
        drop(entry);
        answer
    }

    /// How many queries are in flight.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn identical_queries_in_flight_are_sent_once_and_forgotten_after() {
        let in_flight = InFlight::<u32>::default();
        let sent = Arc::new(AtomicUsize::new(0));
        let ask = |key: &str| {
            let sent = sent.clone();
            in_flight.run(key.to_owned(), move || {
                async move {
                    sent.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    7
                }
                .boxed()
            })
        };
        let answers = tokio::join!(ask("a"), ask("a"), ask("b"));
        assert_eq!(answers, (7, 7, 7));
        assert_eq!(sent.load(Ordering::SeqCst), 2, "`a` once, `b` once");
        assert_eq!(in_flight.len(), 0, "nothing kept once answered");
        ask("a").await;
        assert_eq!(sent.load(Ordering::SeqCst), 3, "a later `a` is sent again");
        // A caller that gives up removes its entry.
        let cancelled = tokio::time::timeout(Duration::from_millis(1), ask("c")).await;
        assert!(cancelled.is_err());
        assert_eq!(in_flight.len(), 0);
    }
}
