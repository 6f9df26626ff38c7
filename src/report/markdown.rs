//! Values from outside (versions, reasons, step messages, notifier names)
//! placed into Markdown as plain text: a version like `` v1|`x` `` must not
//! end a table cell, open a code span, or become a link, an HTML tag or a
//! mention.

/// The characters CommonMark and GitHub's extensions give a meaning to
/// inside a line: emphasis, code, links and images, HTML and entities,
/// table cells, strikethrough, math. Each is escaped with a backslash,
/// which CommonMark allows before any ASCII punctuation. What only means
/// something at the start of a line (`#`, `-`, `+`, `=`, `1.`) is escaped
/// there only: line breaks in a value become `<br>`, so its start is the
/// only line start it has.
const SPECIAL: &[char] = &[
    '\\', '`', '*', '_', '[', ']', '<', '>', '|', '~', '&', '$', '!',
];

/// `text` as inline Markdown that reads as exactly `text`: special
/// characters backslash-escaped, each line break (`\n`, `\r\n`, `\r`) a
/// `<br>` (so a multi-line step message stays inside its table cell), other
/// control characters a space.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    match text[digits..].chars().next() {
        Some('.' | ')') if digits > 0 => {
            out.push_str(&text[..digits]);
            out.push('\\');
            return out + &escape_rest(&text[digits..]);
        }
        Some('#' | '-' | '+' | '=') if digits == 0 => out.push('\\'),
        _ => {}
    }
    out.push_str(&escape_rest(text));
    out
}

/// [`escape`] without the care for the start of a line.
fn escape_rest(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("<br>");
            }
            '\n' => out.push_str("<br>"),
            c if c.is_control() => out.push(' '),
            c if SPECIAL.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_left_as_it_is() {
        for text in ["v1.3.0", "shop-1796353925000", "error rate 8.2% ≥ 2%", ""] {
            assert_eq!(escape(text), text);
        }
    }

    #[test]
    fn table_cells_code_spans_and_links_cannot_be_opened() {
        assert_eq!(escape("v1|`rm`"), r"v1\|\`rm\`");
        assert_eq!(escape("[x](http://e.com)"), r"\[x\](http://e.com)");
        assert_eq!(escape("![i](a.png)"), r"\!\[i\](a.png)");
        assert_eq!(escape("<img src=x onerror=y>"), r"\<img src=x onerror=y\>");
        assert_eq!(
            escape("**bold** _it_ ~~s~~"),
            r"\*\*bold\*\* \_it\_ \~\~s\~\~"
        );
        assert_eq!(escape("&lt; $x$"), r"\&lt; \$x\$");
        assert_eq!(escape(r"a\|b"), r"a\\\|b");
    }

    #[test]
    fn line_breaks_stay_in_the_line_and_control_characters_go() {
        assert_eq!(
            escape("one\ntwo\r\nthree\rfour"),
            "one<br>two<br>three<br>four"
        );
        assert_eq!(escape("# title\n| a | b |"), r"\# title<br>\| a \| b \|");
        assert_eq!(escape("bell\u{7}tab\tend"), "bell tab end");
        assert!(!escape("x\n\n---\n").contains('\n'));
    }

    #[test]
    fn what_only_matters_at_the_start_is_escaped_there() {
        assert_eq!(escape("# title"), r"\# title");
        assert_eq!(escape("- item"), r"\- item");
        assert_eq!(escape("1. first"), r"1\. first");
        assert_eq!(escape("2) second"), r"2\) second");
        assert_eq!(escape("1.3.0"), r"1\.3.0");
        assert_eq!(escape("v-1 #2 3."), "v-1 #2 3.");
    }

    #[test]
    fn every_special_character_is_escaped() {
        for c in SPECIAL {
            let escaped = escape(&c.to_string());
            assert_eq!(escaped, format!("\\{c}"), "{c}");
        }
    }
}
