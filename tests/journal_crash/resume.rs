//! A restart goes on with a rollback cut short inside a step that is safe
//! to repeat: the step runs again, the steps after it run, the version
//! change before it does not, and the rollback ends as any rollback
//! (verified), not as interrupted.

use super::{Host, kill_nine, wait_for};
use rollguard::journal::Event;
use std::sync::atomic::Ordering;

#[test]
fn kill_nine_inside_a_step_with_retries_resumes_the_pipeline_after_it() {
    let host = Host::new();
    let root = host.dir.path().display().to_string();
    // drain, the version change (a real symlink switch back to v1), a
    // warm-up that declares itself repeatable (retries), the undrain, a
    // report.
    let steps = |round: u32| {
        let gate = |phase: &str, name: &str, extra: &str| {
            format!(
                "[[target.step]]\nphase = \"{phase}\"\nkind = \"command\"\nname = \"{name}\"\n\
                 argv = [\"{root}/gate\", \"{name}\", \"{round}\"]\ntimeout = \"1m\"\n{extra}"
            )
        };
        [
            gate("traffic", "drain", ""),
            format!(
                "[[target.step]]\nphase = \"rollback\"\nkind = \"symlink_switch\"\nname = \"switch\"\n\
                 link = \"{root}/current\"\nreleases_dir = \"{root}/releases\"\n"
            ),
            gate("verify", "warm", "retries = 1\n"),
            gate("restore", "undrain", ""),
            gate("report", "report", ""),
        ]
        .concat()
    };
    let daemon = host.launch(&steps(1));
    host.release();
    host.running("drain");
    host.go("drain", 1);
    let warm = host.running("warm");
    assert_eq!(
        std::fs::read_link(host.path("current")).expect("link"),
        std::path::PathBuf::from("releases/v1"),
        "the switch ran before the warm-up"
    );
    kill_nine(daemon);
    host.broken.store(false, Ordering::SeqCst);
    for name in ["drain", "warm", "undrain", "report"] {
        host.go(name, 2);
    }
    let daemon = host.launch(&steps(2));
    wait_for("the resumed rollback to end", || {
        host.count(|e| matches!(e, Event::RollbackFinished { .. })) == 1
    });
    wait_for("the orphaned warm-up to be stopped", || !super::alive(warm));
    let events = host.events();
    let outcome = events.iter().find_map(|e| match e {
        Event::RollbackFinished { outcome, .. } => Some(outcome.clone()),
        _ => None,
    });
    assert_eq!(outcome.as_deref(), Some("completed"), "{events:#?}");
    assert_eq!(host.logged("start warm"), 2, "the warm-up ran again");
    assert_eq!(host.logged("done warm"), 1);
    assert_eq!(host.logged("done report"), 1, "the steps after it ran");
    assert_eq!(host.logged("done undrain"), 1, "the restore step ran once");
    assert_eq!(
        (host.logged("start drain"), host.logged("done drain")),
        (1, 1),
        "the drain, done before the crash, was not run again"
    );
    let switches = host.count(|e| matches!(e, Event::StepStarted { step, .. } if step == "switch"));
    assert_eq!(switches, 1, "the version change ran once");
    assert_eq!(
        host.count(|e| matches!(e, Event::RollbackStarted { .. })),
        1,
        "never rolled back twice"
    );
    // Sent after the end is journaled and the report written: wait for it.
    let read_notifications =
        || std::fs::read_to_string(host.path("notifications")).unwrap_or_default();
    wait_for("the rollback_completed notification", || {
        read_notifications().contains(r#""event":"rollback_completed""#)
    });
    let notifications = read_notifications();
    assert!(
        notifications.contains("resumed after a restart (step warm was cut short; it is safe to repeat (it has retries), so it runs again)"),
        "{notifications}"
    );
    let completed = notifications
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|n| n["event"] == "rollback_completed")
        .expect("a rollback_completed notification");
    assert!(
        completed["status_message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{completed}"
    );
    let reports: Vec<_> = std::fs::read_dir(host.path("state/reports"))
        .map(|dir| dir.flatten().collect())
        .unwrap_or_default();
    assert_eq!(reports.len(), 1, "the resumed rollback's incident report");
    kill_nine(daemon);
}
