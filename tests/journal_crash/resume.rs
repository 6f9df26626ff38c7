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
    // Its process group is journaled just after the spawn.
    wait_for("the warm-up's process group in the journal", || {
        host.count(|e| matches!(e, Event::StepProcess { step, .. } if step == "warm")) >= 1
    });
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
    // Notifications are delivered from a queue, after the journal's record.
    let said = "resumed after a restart (step warm was cut short; it is safe to repeat (it has retries), so it runs again)";
    let read = || std::fs::read_to_string(host.path("notifications")).unwrap_or_default();
    wait_for("the resumed rollback's notification", || {
        read().contains(said)
    });
    let notifications = read();
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

/// The daemon killed at each step boundary in turn (just after a step's
/// end is journaled; the next may have started, then it is cut short in
/// it): whatever the restart does, the version change ran at most once,
/// the undrain ran to its end exactly once, the rollback was closed, and
/// no second rollback started.
#[test]
fn kill_nine_at_every_step_boundary_keeps_the_guarantees() {
    for (boundary, (_, after)) in super::STEPS.iter().enumerate() {
        let host = Host::new();
        let daemon = host.start(1);
        host.release();
        for (_, name) in &super::STEPS[..=boundary] {
            host.running(name);
            host.go(name, 1);
        }
        wait_for(&format!("{after}: its end in the journal"), || {
            host.count(|e| matches!(e, Event::StepFinished { step, .. } if step == after)) >= 1
        });
        kill_nine(daemon);
        host.broken.store(false, Ordering::SeqCst);
        for (_, name) in super::STEPS {
            host.go(name, 2);
        }
        let daemon = host.start(2);
        wait_for(&format!("after {after}: the rollback to be closed"), || {
            host.count(|e| matches!(e, Event::RollbackFinished { .. })) == 1
        });
        assert!(
            host.logged("done deploy") <= 1 && host.logged("start deploy") <= 1,
            "after {after}: the version change ran at most once"
        );
        assert_eq!(
            host.logged("done undrain"),
            1,
            "after {after}: the undrain ran once"
        );
        assert_eq!(
            host.count(|e| matches!(e, Event::RollbackStarted { .. })),
            1,
            "after {after}: never rolled back twice"
        );
        // A step the first daemon had just spawned, before its process
        // group was journaled, is not found by the restart: let it end.
        for (_, name) in super::STEPS {
            host.go(name, 1);
        }
        kill_nine(daemon);
    }
}
