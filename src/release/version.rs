//! What rollguard accepts as a version read from the outside world (a
//! version URL, a symlink's directory, a Deployment's image or label, an
//! announcement): a string that can go into logs, argv, environment
//! variables and messages without changing what they say.

use super::SourceError;

/// Longest version string accepted from the outside world.
pub const MAX_VERSION_LEN: usize = 200;

/// Checks that a version read from the outside world is safe to put in
/// logs, environment variables, argv and notifications: not empty, at most
/// [`MAX_VERSION_LEN`] characters, no control characters, no invisible or
/// bidirectional-text format characters and no line separators (which can
/// make a log line lie), and not starting with `-` (a step's argv would
/// read it as an option, `--help` or worse).
pub fn validate_version(version: &str) -> Result<String, SourceError> {
    let reject = |reason| {
        Err(SourceError::BadVersion {
            shown: shown(version),
            reason,
        })
    };
    if version.trim().is_empty() {
        return reject("it is empty");
    }
    if version.chars().count() > MAX_VERSION_LEN {
        return reject("it is longer than 200 characters");
    }
    if version.chars().any(char::is_control) {
        return reject("it contains control characters");
    }
    if version.chars().any(is_bidi_control) {
        return reject("it contains bidirectional text controls");
    }
    if version.chars().any(is_invisible) {
        return reject("it contains invisible format characters or line separators");
    }
    if version.starts_with('-') {
        return reject("it starts with `-`, which a command would read as an option");
    }
    Ok(version.to_owned())
}

/// Unicode characters that reorder how text is displayed.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Unicode's line and paragraph separators and its format characters
/// (category Cf: zero-width spaces and joiners, the soft hyphen, tags),
/// which print as nothing or break a line where no `\n` is seen.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// A rejected version, escaped and cut so that printing it is harmless.
fn shown(version: &str) -> String {
    let mut shown = String::from("\"");
    for c in version.chars().take(40) {
        if c.is_control() || is_bidi_control(c) || is_invisible(c) || c == '"' || c == '\\' {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown.push('"');
    if version.chars().count() > 40 {
        shown.push_str("...");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_versions_pass() {
        for v in [
            "v1.3.0",
            "1.2.3-rc.1+build.5",
            "2024-05-01_abcdef0",
            "release 7",
            "1.0-beta-2",
            "été-2024",
        ] {
            assert_eq!(validate_version(v).ok().as_deref(), Some(v));
        }
    }

    #[test]
    fn unsafe_versions_are_rejected() {
        for v in [
            "",
            "   ",
            "v1\n",
            "v1\u{1b}[31m",
            "v1\u{202E}",
            "a\u{7f}",
            "--help",
            "-rf",
            "v1\u{2028}FAKE",
            "v1\u{2029}",
            "v\u{200B}1",
            "v1\u{061C}",
            "\u{FEFF}v1",
            "v1\u{E0041}",
        ] {
            assert!(
                matches!(validate_version(v), Err(SourceError::BadVersion { .. })),
                "{v:?} should be rejected"
            );
        }
        assert!(validate_version(&"x".repeat(MAX_VERSION_LEN)).is_ok());
        assert!(validate_version(&"x".repeat(MAX_VERSION_LEN + 1)).is_err());
    }

    #[test]
    fn rejected_versions_print_escaped() {
        let message = validate_version("v1\nFAKE LOG LINE")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!message.contains('\n'), "{message}");
        assert!(message.contains("control characters"), "{message}");
        let message = validate_version("v1\u{2028}FAKE LOG LINE")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!message.contains('\u{2028}'), "{message}");
        assert!(message.contains("\\u{2028}"), "{message}");
    }
}
