//! The command notifier's child process: the notification as JSON on
//! stdin, argv already rendered, never a shell.
//!
//! PRIVATE STAND-IN for `crate::exec`: [`run_command`] is to be replaced by
//! the shared child-process runner once src/exec.rs lands; [`command_env`]
//! stays.

use super::message::Notification;
use crate::probe::http::human_duration;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Most bytes of a command notifier's stderr kept for the error message.
const STDERR_LIMIT: u64 = 4096;

/// The context a command notifier gets in its environment, named as for
/// command steps.
pub(super) fn command_env(n: &Notification) -> Vec<(&'static str, String)> {
    vec![
        ("ROLLGUARD_EVENT", n.event.as_str().to_owned()),
        ("ROLLGUARD_TARGET", n.target.clone()),
        ("ROLLGUARD_FROM_VERSION", n.from.clone().unwrap_or_default()),
        ("ROLLGUARD_TO_VERSION", n.to.clone().unwrap_or_default()),
        (
            "ROLLGUARD_RELEASE_ID",
            n.release_id.clone().unwrap_or_default(),
        ),
        ("ROLLGUARD_MODE", n.mode.as_str().to_owned()),
        ("ROLLGUARD_REASON", n.reasons.join("; ")),
    ]
}

/// Runs `argv` (no shell) with `stdin` on its standard input, within
/// `timeout`; succeeds when it exits with status 0. The child is killed
/// when the time is up or the task is dropped, and does not inherit
/// systemd's notify socket or watchdog variables (a notifier must not
/// answer for the daemon).
///
/// PRIVATE STAND-IN for `crate::exec`: replace with the shared child-process
/// runner once src/exec.rs lands.
pub(super) async fn run_command(
    argv: &[String],
    stdin: Vec<u8>,
    env: &[(&str, String)],
    timeout: Duration,
) -> Result<(), String> {
    let (program, args) = argv.split_first().ok_or("argv is empty")?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID");
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command
        .spawn()
        .map_err(|error| format!("cannot start `{program}`: {error}"))?;
    let input = child.stdin.take();
    let errors = child.stderr.take();
    let run = async {
        let write = async move {
            if let Some(mut input) = input {
                // A program that does not read its input may exit first:
                // its exit status decides, not the broken pipe.
                let _ = input.write_all(&stdin).await;
            }
        };
        let read = async move {
            let mut kept = Vec::new();
            if let Some(mut errors) = errors {
                let _ = (&mut errors)
                    .take(STDERR_LIMIT)
                    .read_to_end(&mut kept)
                    .await;
                let _ = tokio::io::copy(&mut errors, &mut tokio::io::sink()).await;
            }
            kept
        };
        let ((), stderr, status) = tokio::join!(write, read, child.wait());
        (stderr, status)
    };
    let (stderr, status) = match tokio::time::timeout(timeout, run).await {
        Ok(done) => done,
        Err(_) => {
            let _ = child.start_kill();
            return Err(format!(
                "`{program}` timed out after {}",
                human_duration(timeout)
            ));
        }
    };
    let status = status.map_err(|error| format!("cannot wait for `{program}`: {error}"))?;
    if status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&stderr);
    let stderr = stderr.trim();
    let mut message = format!("`{program}` {status}");
    if !stderr.is_empty() {
        let cut: String = stderr.chars().take(300).collect();
        message.push_str(&format!(": {cut}"));
    }
    Err(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_fail_with_status_and_stderr_and_time_out() {
        let argv = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let fails = run_command(
            &argv(&["/bin/sh", "-c", "echo broken >&2; exit 3"]),
            b"{}".to_vec(),
            &[],
            Duration::from_secs(5),
        )
        .await;
        let error = fails.expect_err("exit 3 fails");
        assert!(error.contains("3") && error.contains("broken"), "{error}");
        let slow = run_command(
            &argv(&["/bin/sleep", "5"]),
            Vec::new(),
            &[],
            Duration::from_millis(100),
        )
        .await;
        assert!(slow.expect_err("times out").contains("timed out"));
        assert!(
            run_command(
                &argv(&["/bin/true"]),
                b"x".to_vec(),
                &[],
                Duration::from_secs(5)
            )
            .await
            .is_ok()
        );
        assert!(
            run_command(
                &argv(&["/nonexistent/program"]),
                Vec::new(),
                &[],
                Duration::from_secs(5)
            )
            .await
            .is_err()
        );
    }
}
