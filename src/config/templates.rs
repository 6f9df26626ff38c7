//! `{{variable}}` templates in queries, step arguments and data checks:
//! which variables exist where, and checking that a text only uses those.

/// Variables of a metric `query` or `stable_query`.
pub const QUERY_VARIABLES: &[&str] = &["target", "version", "previous_version", "window"];
/// Variables of a step's `argv`, `url`, `body` and `image`.
pub const STEP_VARIABLES: &[&str] = &[
    "target",
    "version",
    "previous_version",
    "release_id",
    "mode",
];
/// Variables of a data check's `argv`.
pub const DATA_CHECK_VARIABLES: &[&str] = &["target", "version", "previous_version", "release_id"];

/// The variable names used in `text`, in order (`{{ name }}` is trimmed),
/// or a message when a `{{` is never closed.
pub fn variables(text: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("a `{{` is never closed with `}}`".to_owned());
        };
        names.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    Ok(names)
}

/// Messages for every unknown variable (and an unclosed `{{`) in `text`,
/// where only `known` variables exist.
pub(crate) fn check(text: &str, known: &[&str]) -> Vec<String> {
    match variables(text) {
        Err(message) => vec![message],
        Ok(names) => names
            .into_iter()
            .filter(|name| !known.contains(name))
            .map(|name| {
                format!(
                    "unknown template variable `{{{{{name}}}}}`; known here: {}",
                    known.join(", ")
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_listed_and_checked() {
        assert_eq!(
            variables("a {{target}} b {{ version }}").ok(),
            Some(vec!["target", "version"])
        );
        assert!(check("{{window}}", QUERY_VARIABLES).is_empty());
        let messages = check("{{window}}", STEP_VARIABLES);
        assert_eq!(messages.len(), 1);
        assert!(messages[0].contains("`{{window}}`"), "{messages:?}");
        assert_eq!(check("x {{target", QUERY_VARIABLES).len(), 1);
        assert!(check("rate(x{job=\"a\"}[5m])", QUERY_VARIABLES).is_empty());
    }
}
