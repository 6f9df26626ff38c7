//! `{{variable}}` templates in queries, argv, URLs and bodies.
//!
//! Rendering substitutes plain text into one string at a time; the result is
//! never handed to a shell, so a version string read from an endpoint can at
//! worst become an odd argument, never a command. Where the text has a
//! syntax of its own (a PromQL query, a URL, a JSON body), `escape`
//! renders each value escaped for the place it stands in.

mod escape;

pub use escape::{percent_encode, render_json, render_promql, render_url};

use std::collections::BTreeMap;

/// Variables a metric query may use.
pub const QUERY_VARIABLES: &[&str] = &["target", "version", "previous_version", "window"];

/// Variables a pipeline step or a notifier may use. `timestamp` is the
/// rollback's start (a notification's time for a notifier) in UTC as
/// `YYYYMMDDTHHMMSSZ`, so that a backup names its file once for the whole
/// rollback, however often its step is retried.
pub const STEP_VARIABLES: &[&str] = &[
    "target",
    "version",
    "previous_version",
    "release_id",
    "mode",
    "timestamp",
];

/// Variables a target's `status_message` may use: `outcome` is how the
/// incident ended (`completed`, `unverified`, `failed`, `interrupted`,
/// `in_progress`, `would_roll_back`, `considered`); `detected_at` and
/// `restored_at` are times like `03:12 UTC` (`restored_at` is empty when
/// the previous version was not brought back); `date` is the day of the
/// detection, `2026-12-04`.
pub const STATUS_VARIABLES: &[&str] = &[
    "target",
    "version",
    "previous_version",
    "release_id",
    "outcome",
    "detected_at",
    "restored_at",
    "date",
];

/// Variables a data check's argv may use.
pub const DATA_CHECK_VARIABLES: &[&str] = &["target", "version", "previous_version", "release_id"];

/// Why a template cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{name}}` names no known variable.
    #[error("unknown template variable `{{{{{name}}}}}`; known here: {known}")]
    Unknown {
        /// The variable's name.
        name: String,
        /// The variables that exist here, comma-separated.
        known: String,
    },
    /// A `{{` without its `}}`.
    #[error("a `{{{{` at byte {at} is never closed with `}}}}`")]
    Unclosed {
        /// Byte offset of the `{{`.
        at: usize,
    },
    /// The value of `{{name}}` cannot be placed where it stands without
    /// changing the text's meaning (a PromQL query, a JSON body).
    #[error("the value of `{{{{{name}}}}}` is refused: {reason}")]
    Unsafe {
        /// The variable's name.
        name: String,
        /// Why, and how to write the template instead.
        reason: &'static str,
    },
}

/// A `{{name}}` found in a template.
struct Placeholder<'a> {
    /// The variable's name, trimmed.
    name: &'a str,
    /// Bytes from `{{` to `}}` inclusive.
    len: usize,
}

/// The placeholder starting at byte `at` of `text`, if one starts there.
fn placeholder_at(text: &str, at: usize) -> Result<Option<Placeholder<'_>>, TemplateError> {
    let Some(after) = text[at..].strip_prefix("{{") else {
        return Ok(None);
    };
    let end = after.find("}}").ok_or(TemplateError::Unclosed { at })?;
    Ok(Some(Placeholder {
        name: after[..end].trim(),
        len: end + 4,
    }))
}

/// The names of the variables used in `text`, in order, or the first
/// syntax error.
pub fn variables(text: &str) -> Result<Vec<&str>, TemplateError> {
    let mut names = Vec::new();
    let mut rest = 0;
    while let Some(start) = text[rest..].find("{{").map(|s| s + rest) {
        let Some(found) = placeholder_at(text, start)? else {
            break;
        };
        names.push(found.name);
        rest = start + found.len;
    }
    Ok(names)
}

/// The value of `name`, or the error that lists the variables there are.
fn lookup<'v>(vars: &'v BTreeMap<&str, String>, name: &str) -> Result<&'v str, TemplateError> {
    vars.get(name)
        .map(String::as_str)
        .ok_or_else(|| TemplateError::Unknown {
            name: name.to_owned(),
            known: vars.keys().copied().collect::<Vec<_>>().join(", "),
        })
}

/// Every problem in `text` where only the `known` variables exist: each
/// unknown variable, or the unclosed `{{`. Empty when the text is fine.
pub fn check(text: &str, known: &[&str]) -> Vec<TemplateError> {
    match variables(text) {
        Err(error) => vec![error],
        Ok(names) => names
            .into_iter()
            .filter(|name| !known.contains(name))
            .map(|name| TemplateError::Unknown {
                name: name.to_owned(),
                known: known.join(", "),
            })
            .collect(),
    }
}

/// Replaces every `{{name}}` in `text` with its value from `vars`, as it
/// is (argv, environment values, messages: text that no parser reads).
pub fn render(text: &str, vars: &BTreeMap<&str, String>) -> Result<String, TemplateError> {
    render_each(text, vars, |_, value| Ok(value.to_owned()))
}

/// Replaces every `{{name}}` in `text` with `fill(name, value)`.
fn render_each(
    text: &str,
    vars: &BTreeMap<&str, String>,
    fill: impl Fn(&str, &str) -> Result<String, TemplateError>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    while let Some(start) = text[rest..].find("{{").map(|s| s + rest) {
        out.push_str(&text[rest..start]);
        let Some(found) = placeholder_at(text, start)? else {
            break;
        };
        out.push_str(&fill(found.name, lookup(vars, found.name)?)?);
        rest = start + found.len;
    }
    out.push_str(&text[rest..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("target", "api".to_owned()),
            ("version", "v2; rm -rf /".to_owned()),
        ])
    }

    #[test]
    fn renders_values_verbatim() {
        let out = render("deploy {{ version }} of {{target}}!", &vars()).expect("renders");
        assert_eq!(out, "deploy v2; rm -rf / of api!");
        assert_eq!(
            render("no variables", &vars()).as_deref(),
            Ok("no variables")
        );
    }

    #[test]
    fn unknown_and_unclosed_are_errors() {
        assert!(matches!(
            render("{{nope}}", &vars()),
            Err(TemplateError::Unknown { name, .. }) if name == "nope"
        ));
        assert_eq!(
            render("a {{version", &vars()),
            Err(TemplateError::Unclosed { at: 2 })
        );
        assert!(check("{{window}}", QUERY_VARIABLES).is_empty());
        assert!(check("rate(x{job=\"a\"}[5m])", QUERY_VARIABLES).is_empty());
        let errors = check("{{window}} {{nope}}", STEP_VARIABLES);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].to_string().contains("`{{window}}`"), "{errors:?}");
        assert_eq!(check("x {{target", QUERY_VARIABLES).len(), 1);
    }

    #[test]
    fn lists_variables_in_order() {
        assert_eq!(variables("{{a}}-{{ b }}").expect("parses"), vec!["a", "b"]);
    }
}
