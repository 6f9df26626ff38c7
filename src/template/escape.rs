//! Values filled into a template escaped for where they stand: a PromQL
//! query (inside a quoted label value, a regex matcher, or bare), a URL,
//! a JSON body.
//!
//! A version string read from an endpoint is outside input: pasted as it
//! is into `version="{{version}}"`, a value like
//! `x"}[1m]))*0 or vector(1e9) or sum(rate(x{a="` would rewrite the query.
//! Each renderer here lexes the template just enough to know, for every
//! `{{variable}}`, whether it stands inside a string (and which quote) or
//! outside one, and escapes the value for that place, or refuses it.

use super::{TemplateError, lookup, placeholder_at};
use std::collections::BTreeMap;

/// Where a `{{variable}}` stands in the text being rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Outside any string literal.
    Bare,
    /// Inside a string literal opened by `quote`; `regex` when the string
    /// is the operand of a PromQL `=~` or `!~` matcher.
    Quoted { quote: char, regex: bool },
    /// Inside a `#` comment (PromQL).
    Comment,
}

/// The lexical rules of one kind of template text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Language {
    /// PromQL: `"…"` and `'…'` with backslash escapes, raw `` `…` ``,
    /// `#` comments, regex matchers `=~` and `!~`.
    Promql,
    /// JSON: `"…"` with backslash escapes.
    Json,
}

/// Renders a PromQL query: values inside a quoted string are escaped for
/// that string (and for RE2 when the string is a `=~`/`!~` operand), values
/// outside strings must be a PromQL name fragment (letters, digits, `_`,
/// `:`), otherwise the query is refused. `trusted` variables (values that
/// rollguard itself makes, like `window`) are pasted as they are.
pub fn render_promql(
    query: &str,
    vars: &BTreeMap<&str, String>,
    trusted: &[&str],
) -> Result<String, TemplateError> {
    render_lexed(query, vars, Language::Promql, |name, value, place| {
        if trusted.contains(&name) {
            return Ok(value.to_owned());
        }
        match place {
            Place::Quoted { quote, regex } => {
                let value = if regex {
                    regex_escape(value)
                } else {
                    value.to_owned()
                };
                quote_escape(&value, quote)
                    .ok_or("it contains a backtick, which a raw string cannot hold")
            }
            Place::Bare => {
                let name_fragment = !value.is_empty()
                    && value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
                if name_fragment {
                    Ok(value.to_owned())
                } else {
                    Err(
                        "outside a quoted label value it may only hold letters, digits, `_` and `:` (quote it: label=\"{{...}}\")",
                    )
                }
            }
            Place::Comment => {
                if value.contains(['\n', '\r']) {
                    Err("it would end the comment it stands in")
                } else {
                    Ok(value.to_owned())
                }
            }
        }
    })
}

/// Renders a JSON text (an http step's body): values inside a JSON string
/// are escaped for it; values outside strings must be a JSON number, or the
/// body is refused.
pub fn render_json(text: &str, vars: &BTreeMap<&str, String>) -> Result<String, TemplateError> {
    render_lexed(text, vars, Language::Json, |_, value, place| match place {
        Place::Quoted { .. } => {
            let quoted = serde_json::Value::String(value.to_owned()).to_string();
            Ok(quoted[1..quoted.len() - 1].to_owned())
        }
        _ => {
            if serde_json::from_str::<serde_json::Number>(value).is_ok() {
                Ok(value.to_owned())
            } else {
                Err("outside a JSON string it may only be a number (put it in quotes)")
            }
        }
    })
}

/// Renders a URL: every value is percent-encoded, so that it stays one path
/// segment or one query value whatever it holds (`/`, `?`, `#`, `&`, `%`).
pub fn render_url(text: &str, vars: &BTreeMap<&str, String>) -> Result<String, TemplateError> {
    super::render_each(text, vars, |_, value| Ok(percent_encode(value)))
}

/// `value` with every byte but RFC 3986's unreserved characters encoded.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Escapes RE2's metacharacters, so that the value matches only itself.
fn regex_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `value` escaped for a PromQL string literal opened by `quote`, or `None`
/// when it cannot be (a backtick in a raw string).
fn quote_escape(value: &str, quote: char) -> Option<String> {
    if quote == '`' {
        return (!value.contains('`')).then(|| value.to_owned());
    }
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    Some(out)
}

/// The template's lexer: walks `text` keeping track of strings and
/// comments, and asks `escape` for each variable's text at its place.
fn render_lexed(
    text: &str,
    vars: &BTreeMap<&str, String>,
    language: Language,
    escape: impl Fn(&str, &str, Place) -> Result<String, &'static str>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut place = Place::Bare;
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        if let Some(found) = placeholder_at(text, i)? {
            let value = lookup(vars, found.name)?;
            let escaped =
                escape(found.name, value, place).map_err(|reason| TemplateError::Unsafe {
                    name: found.name.to_owned(),
                    reason,
                })?;
            out.push_str(&escaped);
            i += found.len;
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        let mut len = c.len_utf8();
        match place {
            Place::Bare => match c {
                '#' if language == Language::Promql => place = Place::Comment,
                '"' => {
                    place = Place::Quoted {
                        quote: c,
                        regex: language == Language::Promql && after_regex_operator(&out),
                    }
                }
                '\'' | '`' if language == Language::Promql => {
                    place = Place::Quoted {
                        quote: c,
                        regex: after_regex_operator(&out),
                    }
                }
                _ => {}
            },
            Place::Quoted { quote, .. } => {
                if c == '\\' && quote != '`' {
                    // The escaped character is part of the string, whatever
                    // it is (`\"` does not close it).
                    len += rest[1..].chars().next().map_or(0, char::len_utf8);
                } else if c == quote {
                    place = Place::Bare;
                }
            }
            Place::Comment => {
                if c == '\n' {
                    place = Place::Bare;
                }
            }
        }
        out.push_str(&rest[..len]);
        i += len;
    }
    Ok(out)
}

/// Whether the text so far ends with a regex matcher (`=~` or `!~`, then
/// optional white space): the string that opens next is a regex.
fn after_regex_operator(so_far: &str) -> bool {
    let trimmed = so_far.trim_end();
    trimmed.ends_with("=~") || trimmed.ends_with("!~")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str = "x\"}[1m]))*0 or vector(1e9) or sum(rate(x{a=\"";

    fn vars(version: &str) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("target", "api".to_owned()),
            ("version", version.to_owned()),
            ("window", "5m".to_owned()),
        ])
    }

    fn promql(query: &str, version: &str) -> Result<String, TemplateError> {
        render_promql(query, &vars(version), &["window"])
    }

    #[test]
    fn a_version_inside_a_label_value_stays_one_label_value() {
        let query =
            r#"sum(rate(http_errors_total{job="{{target}}",version="{{version}}"}[{{window}}]))"#;
        let out = promql(query, PAYLOAD).expect("renders");
        assert_eq!(
            out,
            r#"sum(rate(http_errors_total{job="api",version="x\"}[1m]))*0 or vector(1e9) or sum(rate(x{a=\""}[5m]))"#
        );
        let single = promql("x{version='{{version}}'}", "it's \\ 'odd'").expect("renders");
        assert_eq!(single, r"x{version='it\'s \\ \'odd\''}");
        // A quote escaped in the template does not end the string.
        let escaped = promql(r#"x{a="b\"{{version}}"}"#, "\"").expect("renders");
        assert_eq!(escaped, r#"x{a="b\"\""}"#);
    }

    #[test]
    fn a_regex_matcher_matches_the_version_only() {
        let out = promql(r#"x{version=~"{{version}}"}"#, "1.2.*|.*").expect("renders");
        assert_eq!(out, r#"x{version=~"1\\.2\\.\\*\\|\\.\\*"}"#);
        let negated = promql("x{version !~ `{{version}}`}", "a.b").expect("renders");
        assert_eq!(negated, r"x{version !~ `a\.b`}");
        // An equality matcher is not a regex: dots stay dots.
        assert_eq!(
            promql(r#"x{version="{{version}}"}"#, "1.2.3").expect("renders"),
            r#"x{version="1.2.3"}"#
        );
    }

    #[test]
    fn values_that_cannot_be_escaped_where_they_stand_are_refused() {
        for (query, version) in [
            ("x{{version}}", PAYLOAD),
            ("x_{{version}}_total", "1.2"),
            ("rate(x[{{version}}])", "5m]) or vector(1"),
            ("x{v=`{{version}}`}", "a`b"),
            ("x # {{version}}", "a\nvector(1)"),
        ] {
            let error = promql(query, version).expect_err(query);
            assert!(
                matches!(&error, TemplateError::Unsafe { name, .. } if name == "version"),
                "{query}: {error}"
            );
            assert!(error.to_string().contains("{{version}}"), "{error}");
        }
        assert_eq!(
            promql("{{target}}_requests_total", PAYLOAD).expect("a name"),
            "api_requests_total"
        );
        // rollguard's own window is trusted where it stands.
        assert_eq!(promql("x[{{window}}]", "v").expect("renders"), "x[5m]");
    }

    #[test]
    fn json_bodies_and_urls_keep_a_value_in_its_place() {
        let body = render_json(
            r#"{"version": "{{version}}", "n": 1}"#,
            &vars("a\"}, \"x\": \"\\"),
        )
        .expect("renders");
        let parsed: serde_json::Value = serde_json::from_str(&body).expect("still JSON");
        assert_eq!(parsed["version"], "a\"}, \"x\": \"\\");
        assert_eq!(parsed.as_object().map(|o| o.len()), Some(2));
        assert!(render_json(r#"{"v": {{version}}}"#, &vars("1, \"x\": 2")).is_err());
        assert_eq!(
            render_json(r#"{"v": {{version}}}"#, &vars("12")).expect("a number"),
            r#"{"v": 12}"#
        );
        let url = render_url(
            "http://flags/api/{{target}}?v={{version}}",
            &vars("1.0/../x?&#%"),
        )
        .expect("renders");
        assert_eq!(url, "http://flags/api/api?v=1.0%2F..%2Fx%3F%26%23%25");
    }
}
