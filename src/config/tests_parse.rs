//! Tests of reading: syntax errors, type errors, unknown keys, several
//! errors at once, and where each one is located. Shared helpers for the
//! other test modules live here too.

use super::*;

/// A small valid file that tests extend.
pub(super) const BASE: &str = r#"[prometheus]
url = "http://127.0.0.1:9090"

[[notifier]]
name = "ops"
kind = "webhook"
url = "http://127.0.0.1:9999/hook"

[[target]]
name = "api"
release = { kind = "version_url", url = "http://127.0.0.1:8080/version" }
notify = ["ops"]
"#;

/// Every error of `text`, checked against a PATH of /usr/bin:/bin.
pub(super) fn errors(text: &str) -> Vec<ConfigError> {
    let env = MapEnvironment::with_path("/usr/bin:/bin");
    match parse_with_env(text, Path::new("test.toml"), &env) {
        Ok(_) => Vec::new(),
        Err(e) => e.errors,
    }
}

/// The 1-based line of the only line of `text` that contains `needle`.
pub(super) fn line_of(text: &str, needle: &str) -> usize {
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(lines.len(), 1, "`{needle}` must be on exactly one line");
    lines[0]
}

/// Asserts that `errors` has one at `path`, on `line`, whose message
/// contains `words`.
#[track_caller]
pub(super) fn expect(errors: &[ConfigError], path: &str, line: usize, words: &str) {
    let found = errors
        .iter()
        .any(|e| e.path == path && e.line == Some(line) && e.message.contains(words));
    assert!(
        found,
        "no error at `{path}` line {line} containing {words:?}; got:\n{errors:#?}"
    );
}

#[test]
fn the_base_file_is_valid() {
    assert_eq!(errors(BASE), Vec::new());
}

#[test]
fn prometheus_min_window_defaults_to_30s() {
    let env = MapEnvironment::with_path("/usr/bin:/bin");
    let config = parse_with_env(BASE, Path::new("test.toml"), &env).expect("valid");
    let prometheus = config.prometheus.expect("[prometheus] is in BASE");
    assert_eq!(prometheus.min_window, std::time::Duration::from_secs(30));
    let text = BASE.replace("9090\"\n", "9090\"\nmin_window = \"1m\"\n");
    let config = parse_with_env(&text, Path::new("test.toml"), &env).expect("valid");
    let prometheus = config.prometheus.expect("[prometheus] is in the file");
    assert_eq!(prometheus.min_window, std::time::Duration::from_secs(60));
}

#[test]
fn syntax_errors_have_a_line_and_column() {
    let text = "[daemon]\nlisten = \"127.0.0.1:1\"\nmode = \n";
    let errs = errors(text);
    assert!(!errs.is_empty());
    assert_eq!(errs[0].path, "");
    assert_eq!(errs[0].line, Some(3));
    assert!(errs[0].column.is_some());
}

#[test]
fn unknown_keys_point_at_the_key_itself() {
    let text = format!(
        "{BASE}[[target.probe]]\nname = \"health\"\nurl = \"http://127.0.0.1:8080/health\"\n\n[[target.probe]]\nname = \"ready\"\nurl = \"http://127.0.0.1:8080/ready\"\ntimout = \"2s\"\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].probe[1].timout",
        line_of(&text, "timout"),
        "unknown field `timout`",
    );
    assert_eq!(errs[0].column, Some(1));
    assert_eq!(errs.len(), 1, "{errs:#?}");
}

#[test]
fn unknown_top_level_keys_are_errors() {
    let text = format!("{BASE}\n[prometeus]\nurl = \"http://x\"\n");
    expect(
        &errors(&text),
        "prometeus",
        line_of(&text, "[prometeus]"),
        "unknown key",
    );
}

#[test]
fn type_errors_name_their_key() {
    let text = format!("[daemon]\nlisten = \"not an address\"\nmode = \"loud\"\n{BASE}");
    let errs = errors(&text);
    expect(&errs, "daemon.listen", 2, "invalid");
    // The wrong key is dropped and the section read again: every error at once.
    expect(&errs, "daemon.mode", 3, "unknown variant `loud`");
    assert_eq!(errs.len(), 2, "{errs:#?}");
}

#[test]
fn a_wrongly_typed_element_is_not_judged_on_defaults() {
    // `thresholds` is wrong; without it the metric would seem to have no
    // threshold at all, which would be a misleading second error.
    let text =
        format!("{BASE}\n[[target.metric]]\nname = \"m\"\nquery = \"up\"\nthresholds = 0.5\n");
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].metric[0].thresholds",
        line_of(&text, "0.5"),
        "invalid type",
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
}

#[test]
fn durations_and_enums_are_typed() {
    let text = format!("{BASE}interval = \"ten seconds\"\n");
    expect(
        &errors(&text),
        "target[0].interval",
        line_of(&text, "ten seconds"),
        "",
    );
    let text = text.replace("interval = \"ten seconds\"\n", "").replace(
        "url = \"http://127.0.0.1:8080/version\" }",
        "url = \"http://127.0.0.1:8080/version\", position = 1 }",
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].release.position",
        line_of(&text, "position"),
        "unknown field",
    );
    let text =
        format!("{BASE}[[target.metric]]\nname = \"m\"\nquery = \"up\"\ndirection = \"up\"\n");
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].metric[0].direction",
        line_of(&text, "direction"),
        "unknown variant",
    );
}

#[test]
fn errors_in_several_sections_are_all_reported_in_line_order() {
    let text = format!(
        "[daemon]\nmode = \"loud\"\n{BASE}\n[[target]]\nname = \"web\"\ncooldown = 5\n[target.release]\nkind = \"announce\"\n\n[[target]]\nname = \"db\"\n[target.release]\nkind = \"announce\"\nurl = \"http://x/v\"\n"
    );
    let errs = errors(&text);
    expect(&errs, "daemon.mode", 2, "unknown variant");
    expect(&errs, "target[1].cooldown", line_of(&text, "cooldown"), "");
    expect(
        &errs,
        "target[2].release.url",
        line_of(&text, "http://x/v"),
        "not used by release kind `announce`",
    );
    let lines: Vec<_> = errs.iter().map(|e| e.line).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
}

#[test]
fn a_missing_required_key_points_at_the_array_header() {
    let text = format!("{BASE}\n[[target]]\nnotify = []\n[target.release]\nkind = \"announce\"\n");
    let header = text
        .lines()
        .enumerate()
        .filter(|(_, l)| *l == "[[target]]")
        .map(|(i, _)| i + 1)
        .last();
    expect(
        &errors(&text),
        "target[1]",
        header.unwrap_or(0),
        "missing field `name`",
    );
}

#[test]
fn display_prints_file_line_column_path_and_message() {
    let text = format!("{BASE}bake_window = \"1s\"\n");
    let err = parse_with_env(&text, Path::new("rg.toml"), &MapEnvironment::default())
        .expect_err("bake_window shorter than interval");
    let shown = err.to_string();
    let line = line_of(&text, "bake_window");
    assert!(shown.starts_with("rg.toml: 1 error\n"), "{shown}");
    assert!(
        shown.contains(&format!(
            "rg.toml: line {line}, column 1: target[0].bake_window: is shorter"
        )),
        "{shown}"
    );
}

#[test]
fn time_to_fix_is_unknown_unless_the_file_says_a_duration() {
    use crate::model::TimeToFix;
    let env = MapEnvironment::with_path("/usr/bin:/bin");
    let time_to_fix = |text: &str| {
        parse_with_env(text, Path::new("test.toml"), &env)
            .expect("valid")
            .targets[0]
            .time_to_fix
    };
    assert_eq!(time_to_fix(BASE), TimeToFix::Unknown);
    let text = format!("{BASE}time_to_fix = \"unknown\"\n");
    assert_eq!(time_to_fix(&text), TimeToFix::Unknown);
    let text = format!("{BASE}time_to_fix = \"20m\"\n");
    assert_eq!(
        time_to_fix(&text),
        TimeToFix::Known(std::time::Duration::from_secs(20 * 60))
    );
    let text = format!("{BASE}time_to_fix = \"soon\"\n");
    expect(
        &errors(&text),
        "target[0].time_to_fix",
        line_of(&text, "soon"),
        "\"unknown\"",
    );
}

#[test]
fn a_rule_without_severity_match_keeps_meaning_or_worse() {
    let env = MapEnvironment::with_path("/usr/bin:/bin");
    let text = format!(
        "{BASE}\n[[policy.rule]]\nseverity = \"high\"\ndecision = \"rollback\"\n\n\
         [[policy.rule]]\nseverity = \"low\"\nseverity_match = \"at_most\"\ndecision = \"forward_fix\"\n"
    );
    let config = parse_with_env(&text, Path::new("test.toml"), &env).expect("valid");
    let matches: Vec<SeverityMatch> = config
        .policy
        .rule
        .iter()
        .map(|r| r.severity_match)
        .collect();
    assert_eq!(matches, [SeverityMatch::OrWorse, SeverityMatch::AtMost]);
    let text = text.replace("\"at_most\"", "\"below\"");
    expect(
        &errors(&text),
        "policy.rule[1].severity_match",
        line_of(&text, "below"),
        "unknown variant",
    );
}
