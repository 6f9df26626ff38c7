//! The command notifier's child process: the notification as JSON on
//! stdin, argv already rendered, never a shell.

use super::message::Notification;
use crate::exec;
use std::time::Duration;

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

/// Runs `argv` (no shell, through [`crate::exec`]) with `stdin` on its
/// standard input, within `timeout`; succeeds when it exits with status 0.
/// Like every child of rollguard it runs in its own process group, is
/// stopped with that group when the time is up, and does not inherit
/// systemd's notify socket or watchdog variables.
pub(super) async fn run_command(
    argv: &[String],
    stdin: Vec<u8>,
    env: &[(&str, String)],
    timeout: Duration,
) -> Result<(), String> {
    let program = argv.first().cloned().unwrap_or_default();
    let mut spec = exec::CommandSpec::new(argv.to_vec(), timeout);
    spec.stdin = Some(stdin);
    spec.env = env
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect();
    let output = exec::run(spec)
        .await
        .map_err(|error| format!("`{program}` {error}"))?;
    if output.success() {
        return Ok(());
    }
    let mut message = format!("`{program}` {}", output.status_text());
    let stderr = output.stderr_tail(300);
    if !stderr.is_empty() {
        message.push_str(&format!(": {stderr}"));
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
