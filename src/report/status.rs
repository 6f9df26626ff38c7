//! The short plain-text message for a status page: a target's
//! `status_message` template, or a built-in one per outcome.

use super::incident::Incident;
use crate::template;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// What every built-in message opens with.
const FOUND: &str = "We identified a problem with the latest release of {{target}} ({{version}}) at {{detected_at}}";

/// The built-in message for an incident with the outcome `word` (see
/// [`Incident::outcome_word`]).
fn default_template(word: &str) -> String {
    let rest = match word {
        "completed" => {
            " and rolled it back to {{previous_version}} at {{restored_at}}. The service is back to normal."
        }
        "unverified" => {
            " and rolled it back to {{previous_version}} at {{restored_at}}. We are still confirming that the service is back to normal."
        }
        "failed" => {
            ". Rolling it back to {{previous_version}} did not complete; our engineers are working on it."
        }
        "interrupted" => {
            ". Rolling it back to {{previous_version}} was interrupted; our engineers are working on it."
        }
        "in_progress" => " and are rolling it back to {{previous_version}}.",
        _ => ". Our engineers are looking into it.",
    };
    format!("{FOUND}{rest}")
}

/// A time as a status page says it: `03:12 UTC`; empty when unknown.
fn clock(at: Option<SystemTime>) -> String {
    at.map(|at| {
        let stamp = humantime::format_rfc3339_seconds(at).to_string();
        format!("{} UTC", stamp.get(11..16).unwrap_or("??:??"))
    })
    .unwrap_or_default()
}

/// The values of [`template::STATUS_VARIABLES`] for `incident`.
pub fn variables(incident: &Incident) -> BTreeMap<&'static str, String> {
    let detected = incident.detected_at().or(incident.released_at);
    let date = detected
        .map(|at| humantime::format_rfc3339_seconds(at).to_string()[..10].to_owned())
        .unwrap_or_default();
    BTreeMap::from([
        ("target", incident.target.clone()),
        ("version", incident.version.clone()),
        (
            "previous_version",
            incident
                .previous_version
                .clone()
                .unwrap_or_else(|| "the previous version".to_owned()),
        ),
        ("release_id", incident.release_id.clone()),
        ("outcome", incident.outcome_word()),
        ("detected_at", clock(detected)),
        ("restored_at", clock(incident.restored_at())),
        ("date", date),
    ])
}

/// The status message of `incident`: `template` (a target's
/// `status_message`, checked by `rollguard check`) rendered, or the
/// built-in message for its outcome. A template that cannot be rendered
/// (a variable this build does not know) gives the built-in message, with
/// a warning.
pub fn status_message(incident: &Incident, template: Option<&str>) -> String {
    let vars = variables(incident);
    if let Some(text) = template {
        match template::render(text, &vars) {
            Ok(message) => return message,
            Err(error) => {
                tracing::warn!(target_name = %incident.target, %error, "Cannot render the target's status_message; using the built-in one");
            }
        }
    }
    let text = default_template(&incident.outcome_word());
    template::render(&text, &vars).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_use_only_known_variables() {
        for word in [
            "completed",
            "unverified",
            "failed",
            "interrupted",
            "in_progress",
            "would_roll_back",
            "considered",
        ] {
            let text = default_template(word);
            assert_eq!(
                template::check(&text, template::STATUS_VARIABLES),
                Vec::new(),
                "{word}"
            );
        }
    }

    #[test]
    fn clock_is_hours_and_minutes_in_utc() {
        let at = humantime::parse_rfc3339("2026-12-04T03:12:59Z").expect("time");
        assert_eq!(clock(Some(at)), "03:12 UTC");
        assert_eq!(clock(None), "");
    }
}
