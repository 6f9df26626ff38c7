//! `{{variable}}` templates in queries, argv, URLs and bodies.
//!
//! Rendering substitutes plain text into one string at a time; the result is
//! never handed to a shell, so a version string read from an endpoint can at
//! worst become an odd argument, never a command.

use std::collections::BTreeMap;

/// Variables a metric query may use.
pub const QUERY_VARIABLES: &[&str] = &["target", "version", "previous_version", "window"];

/// Variables a pipeline step, a data check or a notifier may use.
pub const STEP_VARIABLES: &[&str] = &[
    "target",
    "version",
    "previous_version",
    "release_id",
    "mode",
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
}

/// The names of the variables used in `text`, in order, or the first
/// syntax error.
pub fn variables(text: &str) -> Result<Vec<&str>, TemplateError> {
    let mut names = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or(TemplateError::Unclosed { at: offset + start })?;
        names.push(after[..end].trim());
        let consumed = start + 2 + end + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    Ok(names)
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

/// Replaces every `{{name}}` in `text` with its value from `vars`.
pub fn render(text: &str, vars: &BTreeMap<&str, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or(TemplateError::Unclosed { at: offset + start })?;
        let name = after[..end].trim();
        let value = vars.get(name).ok_or_else(|| TemplateError::Unknown {
            name: name.to_owned(),
            known: vars.keys().copied().collect::<Vec<_>>().join(", "),
        })?;
        out.push_str(value);
        let consumed = start + 2 + end + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    out.push_str(rest);
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
