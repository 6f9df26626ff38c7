//! A step's process group, as the journal records it when the step starts
//! its program, so that a restart after `kill -9` finds a program the dead
//! daemon left running and stops it instead of leaving an orphan that may
//! go on changing the service behind the restarted daemon's back.
//!
//! Why not `PR_SET_PDEATHSIG`: it must be set in the child between `fork`
//! and `exec` (`pre_exec`, which is unsafe, and the crate forbids unsafe
//! code). The journal's record works across a crash of any kind instead.
//!
//! A recorded group is ours only if it is the same one: its leader's start
//! time (`/proc/PID/stat`, in clock ticks since boot) and the boot's id must
//! match, so a pid reused by an unrelated program is never signalled. A
//! group whose leader exited but whose members live on still counts:
//! Linux never gives a new process the id of a group that still exists.

use super::KILL_GRACE;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Where Linux says which boot this is.
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// A child's process group and what identifies its leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessGroup {
    /// The group's id: its leader's pid.
    pub pgid: i32,
    /// The leader's start time in clock ticks since boot, when `/proc`
    /// could tell it.
    #[serde(default)]
    pub started: Option<u64>,
    /// The boot the leader started in, when Linux could tell it.
    #[serde(default)]
    pub boot_id: Option<String>,
}

/// What [`ProcessGroup::stop_leftover`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftover {
    /// Nothing of the group is left.
    Gone,
    /// The pid now belongs to another program (or another boot): left alone.
    NotOurs,
    /// The group was still running and has been stopped.
    Stopped,
}

impl ProcessGroup {
    /// The group led by `pid`, identified as `/proc` shows it now.
    pub fn of(pid: i32) -> ProcessGroup {
        ProcessGroup {
            pgid: pid,
            started: stat(pid).map(|(started, _)| started),
            boot_id: boot_id(),
        }
    }

    /// Stops what is left of the group, if it is still the one recorded:
    /// SIGTERM to the whole group, then SIGKILL after [`KILL_GRACE`].
    pub async fn stop_leftover(&self) -> Leftover {
        if self.pgid <= 1 || (self.boot_id.is_some() && self.boot_id != boot_id()) {
            return Leftover::NotOurs;
        }
        let group = Pid::from_raw(self.pgid);
        match start_time(self.pgid) {
            Some(now) if Some(now) != self.started => return Leftover::NotOurs,
            // The leader is gone: the group may live on in its members.
            _ if killpg(group, None).is_err() => return Leftover::Gone,
            _ => {}
        }
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = tokio::time::Instant::now() + KILL_GRACE;
        while killpg(group, None).is_ok() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = killpg(group, Signal::SIGKILL);
        // SIGKILL is delivered asynchronously: wait (briefly) until the
        // group is gone, so that "stopped" means stopped when the restore
        // steps run.
        let deadline = tokio::time::Instant::now() + KILL_GRACE;
        while group_alive(self.pgid) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Leftover::Stopped
    }
}

/// Field 22 of `/proc/PID/stat` (after the parenthesised command, which
/// may hold spaces and parentheses), and whether the process is a zombie
/// (which holds nothing worth stopping); `None` when it is gone.
fn stat(pid: i32) -> Option<(u64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    // The state is field 3; the start time is field 22.
    let zombie = fields.next()? == "Z";
    Some((fields.nth(18)?.parse().ok()?, zombie))
}

/// Whether the group's leader is still a live (not zombie) process.
fn group_alive(pgid: i32) -> bool {
    start_time(pgid).is_some()
}

/// The start time of a live (not zombie) process.
fn start_time(pid: i32) -> Option<u64> {
    stat(pid).and_then(|(started, zombie)| (!zombie).then_some(started))
}

/// This boot's id.
fn boot_id() -> Option<String> {
    std::fs::read_to_string(BOOT_ID)
        .ok()
        .map(|id| id.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    fn alive(pid: i32) -> bool {
        start_time(pid).is_some()
    }

    #[tokio::test]
    async fn a_recorded_group_is_stopped_and_a_reused_pid_is_left_alone() {
        let child = std::process::Command::new("/bin/sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        let pid = i32::try_from(child.id()).expect("a pid");
        let recorded = ProcessGroup::of(pid);
        assert!(recorded.started.is_some(), "{recorded:?}");
        let other = ProcessGroup {
            started: recorded.started.map(|t| t + 1),
            ..recorded.clone()
        };
        assert_eq!(other.stop_leftover().await, Leftover::NotOurs);
        assert!(alive(pid));
        let rebooted = ProcessGroup {
            boot_id: Some("another boot".into()),
            ..recorded.clone()
        };
        assert_eq!(rebooted.stop_leftover().await, Leftover::NotOurs);
        assert_eq!(recorded.stop_leftover().await, Leftover::Stopped);
        let mut child = child;
        let status = child.wait().expect("reaped");
        assert!(status.code().is_none(), "killed by a signal: {status:?}");
        assert_eq!(recorded.stop_leftover().await, Leftover::Gone);
    }
}
