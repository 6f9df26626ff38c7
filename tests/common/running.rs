//! The real `rollguard` binary as a child process, killed when dropped: a
//! test that fails midway leaves no daemon running.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The daemon's process.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `rollguard run --config CONFIG`, warnings to `stderr`, never told it is
/// under systemd.
pub fn spawn(config: &Path, stderr: Stdio) -> Running {
    Command::new(env!("CARGO_BIN_EXE_rollguard"))
        .args(["run", "--config"])
        .arg(config)
        .env_remove("NOTIFY_SOCKET")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map(Running)
        .expect("spawn rollguard")
}
