//! Daemon lifecycle.
