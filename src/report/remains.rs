//! The report's "What remains for humans": steps that did not end well
//! (restore steps first among the risks), a service not verified, a
//! version that may still run, notifications not delivered, and the forward
//! fix that every incident needs.

use super::incident::{Incident, IncidentKind, StepRun};
use super::markdown::escape;
use super::render::{message, shadow};
use std::fmt::Write as _;

/// Writes the section: what rollguard did not or could not finish.
pub(super) fn section(out: &mut String, i: &Incident, restore_steps: &[String]) {
    let mut todo: Vec<String> = Vec::new();
    let version = escape(&i.version);
    let previous = escape(
        i.previous_version
            .as_deref()
            .unwrap_or("the previous version"),
    );
    if let Some(run) = &i.rollback {
        // Each step's last attempt: an earlier one that failed was retried.
        let mut last: Vec<&StepRun> = Vec::new();
        for step in &run.steps {
            last.retain(|s| s.name != step.name);
            last.push(step);
        }
        for step in last {
            let restore = restore_steps.contains(&step.name);
            let kind = if restore { "Restore step" } else { "Step" };
            match step.outcome {
                Some(crate::model::StepOutcome::Ok) => {}
                Some(outcome) => todo.push(format!(
                    "{kind} {} ended {outcome}{}: {}",
                    escape(&step.name),
                    message(step),
                    if restore {
                        "the service may be left as the rollback left it (drained, paused); put it back by hand"
                    } else {
                        "check what it did and finish its work by hand"
                    }
                )),
                None => todo.push(format!(
                    "{kind} {} started and was never journaled as finished: check what it did",
                    escape(&step.name)
                )),
            }
        }
        match run.outcome() {
            Some("completed") => {}
            Some("unverified") => todo.push(format!(
                "{previous} runs but rollguard could not verify the service back to normal: check it by hand"
            )),
            Some(_) => todo.push(format!(
                "The rollback did not finish: check which version runs; {version} may still be running, roll back by hand if it is"
            )),
            None => todo.push(
                "The rollback has not finished: watch it (`rollguard status`) and read this report again".to_owned(),
            ),
        }
    } else if i.kind == IncidentKind::WouldHaveRolledBack || shadow(i) {
        todo.push(format!(
            "Nothing was changed (shadow mode): {version} still runs. Roll back by hand, or fix forward"
        ));
    } else {
        todo.push(format!(
            "No rollback ran: {version} still runs. Approve it (`rollguard approve {}`) while the bake window lasts, roll back by hand, or fix forward",
            escape(&i.target)
        ));
    }
    for n in i.notifications.iter().filter(|n| !n.ok) {
        todo.push(format!(
            "Notification {} to {} was not delivered: tell people another way",
            escape(&n.event),
            escape(&n.notifier)
        ));
    }
    todo.push(format!(
        "Fix forward: find and fix the cause in {version} before releasing it again; the post-mortem starts from the evidence above"
    ));
    let _ = writeln!(out, "## What remains for humans\n");
    for item in todo {
        let _ = writeln!(out, "- {item}");
    }
    out.push('\n');
}
