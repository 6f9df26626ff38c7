//! The payloads: event names as serde writes them, every webhook field,
//! Slack's escaping, and the command notifier's variables.

use super::*;
use std::time::Duration;

fn sample() -> Notification {
    Notification::new(
        NotifyEvent::RollbackStarted,
        "api",
        Mode::Enforce,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    )
    .with_release_id("r-7")
    .with_from("v1.4.0")
    .with_to("v1.3.2")
    .with_decision(Decision::Rollback)
    .with_severity(Severity::High)
    .with_reasons(["error_rate 8.2% > high threshold 2%"])
}

#[test]
fn event_names_match_serde() {
    for event in NotifyEvent::ALL {
        let json = serde_json::to_string(&event).expect("serialises");
        assert_eq!(json, format!("\"{}\"", event.as_str()));
    }
}

#[test]
fn webhook_payload_has_every_field() {
    let value = webhook_payload(&sample());
    for key in WEBHOOK_FIELDS {
        assert!(value.get(key).is_some(), "{key} missing in {value}");
    }
    assert_eq!(value["at"], "2023-11-14T22:13:20.000Z");
    assert_eq!(value["event"], "rollback_started");
    assert_eq!(value["decision"], "rollback");
    assert!(value["release_at"].is_null());
}

#[test]
fn slack_payload_escapes_and_keeps_the_headline() {
    let n = sample().with_from("<!channel> v1.4.0");
    let value = slack_payload(&n);
    let text = value["text"].as_str().expect("text");
    assert!(text.contains("&lt;!channel&gt;"), "{text}");
    assert_eq!(value["blocks"][0]["text"]["type"], "mrkdwn");
    let section = value["blocks"][0]["text"]["text"]
        .as_str()
        .expect("section");
    assert!(
        section.contains("*What happened:* severity high"),
        "{section}"
    );
    let context = value["blocks"][1]["elements"][0]["text"]
        .as_str()
        .expect("context");
    assert!(context.contains("rollback_started"), "{context}");
}

#[test]
fn template_variables_follow_the_step_meaning() {
    let vars = sample().template_variables();
    assert_eq!(vars["version"], "v1.4.0");
    assert_eq!(vars["previous_version"], "v1.3.2");
    let mut names: Vec<&str> = vars.keys().copied().collect();
    names.sort_unstable();
    let mut known = crate::template::STEP_VARIABLES.to_vec();
    known.sort_unstable();
    assert_eq!(names, known);
}

#[test]
fn the_webhook_fields_are_all_documented() {
    let docs = include_str!("../../docs/configuration.md");
    let start = docs
        .find("The webhook JSON always has these keys")
        .expect("the paragraph listing the webhook keys");
    let paragraph = &docs[start..];
    let paragraph = &paragraph[..paragraph.find("\n\n").unwrap_or(paragraph.len())];
    for key in WEBHOOK_FIELDS {
        assert!(
            paragraph.contains(&format!("`{key}`")),
            "{key} is not in docs/configuration.md's list: {paragraph}"
        );
    }
}
