//! Baselines already fetched for one release: what was normal before a
//! release does not change, so each baseline query runs once per release,
//! not once per tick.
//!
//! The cache belongs to the bake window that watches the release
//! (`watchdog::Bake`, shared with the verifier of its rollback) and is
//! dropped with it, so it holds a handful of entries whatever the size of
//! the fleet; it never needs emptying to stay small.

use super::QueryContext;
use crate::config::MetricConfig;
use crate::model::Counts;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

/// One metric's baseline for one release.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Baseline {
    /// A count metric's counts per step.
    Counts(Vec<Counts>),
    /// A sequential value metric's values per step.
    Series(Vec<f64>),
    /// A threshold metric's one pre-release value.
    Value(f64),
}

/// Which baseline: target, metric, release time in ms, and the metric's
/// queries (a reload may change them under the same name).
pub(super) type Key = (String, String, u128, String);

/// The baselines of one release, by metric; cheap to clone (clones share
/// the entries).
#[derive(Debug, Clone, Default)]
pub struct BaselineCache(Arc<Mutex<HashMap<Key, Baseline>>>);

impl BaselineCache {
    /// The baseline under `key`, if fetched before.
    pub(super) fn get(&self, key: &Key) -> Option<Baseline> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Remembers a baseline for the rest of the release's window.
    pub(super) fn put(&self, key: Key, baseline: Baseline) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, baseline);
    }

    /// How many baselines are kept.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether none is kept yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The key of `metric`'s baseline for the release `ctx` measures.
pub(super) fn key(metric: &MetricConfig, ctx: &QueryContext) -> Key {
    let release_ms = ctx
        .release_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let queries = [
        Some(&metric.query),
        metric.errors_query.as_ref(),
        metric.total_query.as_ref(),
    ]
    .map(|q| q.map_or("", String::as_str))
    .join("\n");
    (ctx.target.clone(), metric.name.clone(), release_ms, queries)
}
