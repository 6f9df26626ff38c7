//! Structure-aware mutations of line-oriented text: what a hand edit, a
//! bad merge or a half-written file does to a real input.

use proptest::prelude::*;

/// Values an operator (or a broken template) may leave on the right of `=`.
pub fn odd_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"\"".to_owned()),
        Just("\"1ns\"".to_owned()),
        Just("\"0s\"".to_owned()),
        Just("\"-5s\"".to_owned()),
        Just("\"18446744073709551616s\"".to_owned()),
        Just("\"10000000000y\"".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("-9223372036854775808".to_owned()),
        Just("1e308".to_owned()),
        Just("nan".to_owned()),
        Just("-inf".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("[[]]".to_owned()),
        Just("true".to_owned()),
        Just("\"http://[::1\"".to_owned()),
        Just("\"{{\"".to_owned()),
        Just("\"{{version}\"".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|x| format!("{x:?}")),
        "[a-z0-9 ._/:{}-]{0,24}".prop_map(|s| format!("{s:?}")),
        any::<String>().prop_map(|s| format!("{s:?}")),
    ]
}

/// One edit of a line-oriented text.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Removes line `at` (modulo the line count).
    Delete(usize),
    /// Writes line `at` twice (a duplicated key or table).
    Duplicate(usize),
    /// Keeps the key of line `at` and replaces its value.
    Replace(usize, String),
    /// Inserts a line of anything before line `at`.
    Insert(usize, String),
    /// Cuts line `at` after `keep` characters (a file cut short).
    Cut(usize, usize),
}

/// Up to `most` edits, each a line of text (or its value) changed.
pub fn edits(most: usize) -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Duplicate),
        (any::<usize>(), odd_value()).prop_map(|(at, v)| Edit::Replace(at, v)),
        (any::<usize>(), any::<String>()).prop_map(|(at, l)| Edit::Insert(at, l)),
        (any::<usize>(), 0usize..40).prop_map(|(at, keep)| Edit::Cut(at, keep)),
    ];
    proptest::collection::vec(edit, 1..=most)
}

/// `text` with `edits` applied, line by line.
pub fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for edit in edits {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let n = lines.len();
        match edit {
            Edit::Delete(at) => {
                lines.remove(at % n);
            }
            Edit::Duplicate(at) => {
                let line = lines[at % n].clone();
                lines.insert(at % n, line);
            }
            Edit::Replace(at, value) => {
                let line = &mut lines[at % n];
                if let Some((key, _)) = line.split_once('=') {
                    *line = format!("{key}= {value}");
                }
            }
            Edit::Insert(at, line) => lines.insert(at % n, line.clone()),
            Edit::Cut(at, keep) => {
                let line = &mut lines[at % n];
                *line = line.chars().take(*keep).collect();
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}
