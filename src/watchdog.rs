//! Per-target loops.
