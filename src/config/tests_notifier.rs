//! Tests of who hears what: a notifier's `events` (names checked with their
//! key path and line, each kind's default) and a target's `status_channel`
//! and `status_message`.

use super::tests_parse::{BASE, errors, expect, line_of};
use super::*;
use crate::notify::NotifyEvent;

/// BASE with `events` in its notifier.
fn with_events(events: &str) -> String {
    BASE.replace(
        "url = \"http://127.0.0.1:9999/hook\"\n",
        &format!("url = \"http://127.0.0.1:9999/hook\"\nevents = {events}\n"),
    )
}

#[test]
fn an_unknown_event_is_refused_with_its_path_line_and_the_valid_names() {
    let text = with_events(r#"["rollback_failed", "rollback_exploded"]"#);
    let errors = errors(&text);
    let line = line_of(&text, "rollback_exploded");
    expect(
        &errors,
        "notifier[0].events[1]",
        line,
        "`rollback_exploded`",
    );
    for event in NotifyEvent::ALL {
        expect(&errors, "notifier[0].events[1]", line, event.as_str());
    }
}

#[test]
fn an_empty_list_is_refused() {
    let text = with_events("[]");
    expect(
        &errors(&text),
        "notifier[0].events",
        line_of(&text, "events"),
        "sends this notifier nothing",
    );
}

#[test]
fn listed_events_are_the_only_ones_received() {
    let text = with_events(r#"["rollback_failed", "degraded"]"#);
    assert_eq!(errors(&text), Vec::new());
    let config: Config = toml::from_str(&text).expect("parses");
    let notifier = &config.notifiers[0];
    let received: Vec<NotifyEvent> = NotifyEvent::ALL
        .into_iter()
        .filter(|e| notifier.receives(*e))
        .collect();
    assert_eq!(
        received,
        [NotifyEvent::Degraded, NotifyEvent::RollbackFailed]
    );
}

#[test]
fn slack_by_default_hears_no_step_and_no_healthy_release_and_the_others_hear_all() {
    for event in NotifyEvent::ALL {
        assert!(NotifierKind::Webhook.receives_by_default(event), "{event}");
        assert!(NotifierKind::Command.receives_by_default(event), "{event}");
        let quiet = matches!(
            event,
            NotifyEvent::RollbackStep | NotifyEvent::ReleaseDetected
        );
        assert_eq!(
            NotifierKind::Slack.receives_by_default(event),
            !quiet,
            "{event}"
        );
    }
}

#[test]
fn a_target_names_its_status_channel_and_an_empty_one_is_refused() {
    let text = BASE.replace(
        "notify = [\"ops\"]\n",
        "notify = [\"ops\"]\nstatus_channel = \"#status-shop\"\n",
    );
    assert_eq!(errors(&text), Vec::new());
    let config: Config = toml::from_str(&text).expect("parses");
    assert_eq!(
        config.targets[0].status_channel.as_deref(),
        Some("#status-shop")
    );
    let empty = BASE.replace(
        "notify = [\"ops\"]\n",
        "notify = [\"ops\"]\nstatus_channel = \" \"\n",
    );
    expect(
        &errors(&empty),
        "target[0].status_channel",
        line_of(&empty, "status_channel"),
        "must not be empty",
    );
}

#[test]
fn a_status_message_template_is_checked_with_its_path_and_line() {
    let with = |message: &str| {
        BASE.replace(
            "notify = [\"ops\"]\n",
            &format!("notify = [\"ops\"]\nstatus_message = {message:?}\n"),
        )
    };
    let good =
        with("{{target}} {{version}} rolled back to {{previous_version}} at {{restored_at}}");
    assert_eq!(errors(&good), Vec::new());
    let config: Config = toml::from_str(&good).expect("parses");
    assert!(config.targets[0].status_message.is_some());

    let unknown = with("{{target}} is {{mood}}");
    expect(
        &errors(&unknown),
        "target[0].status_message",
        line_of(&unknown, "status_message"),
        "unknown template variable `{{mood}}`",
    );
    expect(
        &errors(&unknown),
        "target[0].status_message",
        line_of(&unknown, "status_message"),
        "detected_at",
    );
    let unclosed = with("back at {{restored_at");
    expect(
        &errors(&unclosed),
        "target[0].status_message",
        line_of(&unclosed, "status_message"),
        "never closed",
    );
    let empty = with(" ");
    expect(
        &errors(&empty),
        "target[0].status_message",
        line_of(&empty, "status_message"),
        "must not be empty",
    );
}
