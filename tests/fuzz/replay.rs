//! The replay reader of `rollguard backtest --replay`, and the backtest it
//! feeds: any file is a replay or an error, and any replay that parses is
//! judged to an outcome or an error, whatever its numbers.

use super::mutate::{apply, edits};
use proptest::prelude::*;
use rollguard::backtest::{self, Replay, Settings};

/// A number as a replay file may hold one: ordinary, huge, negative, or
/// not a number at all (`null`, a string).
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u32..100_000).prop_map(|n| n.to_string()),
        2 => any::<f64>().prop_filter("JSON has no NaN", |x| x.is_finite()).prop_map(|x| format!("{x:?}")),
        1 => Just("1e308".to_owned()),
        1 => Just("-1".to_owned()),
        1 => Just("18446744073709551616".to_owned()),
        1 => Just("null".to_owned()),
        1 => Just("\"12\"".to_owned()),
    ]
}

/// One sample line: some fields, each a [`number`].
fn sample() -> impl Strategy<Value = String> {
    let fields = [
        "requests",
        "errors",
        "p50_ms",
        "p99_ms",
        "health",
        "stable_requests",
        "stable_errors",
    ];
    proptest::collection::vec((0..fields.len(), number()), 0..8).prop_map(move |pairs| {
        let body: Vec<String> = pairs
            .iter()
            .map(|(f, v)| format!("\"{}\": {v}", fields[*f]))
            .collect();
        format!("{{{}}}", body.join(", "))
    })
}

/// A replay file, one sample a line so that line edits cut samples.
fn replay_text() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(sample(), 0..60),
        number(),
        number(),
    )
        .prop_map(|(samples, interval, release)| {
            format!(
                "{{\n\"name\": \"fuzz\",\n\"interval_seconds\": {interval},\n\"release_index\": {release},\n\"samples\": [\n{}\n]\n}}\n",
                samples.join(",\n")
            )
        })
}

/// Parses `text` and, when it is a replay, backtests it.
fn read_and_judge(text: &str) {
    if let Ok(replay) = Replay::parse(text, "fuzz.json") {
        // The release index is checked against the samples on parse.
        assert!(replay.release_index <= replay.samples.len());
        let _ = backtest::run(&replay, &Settings::default());
    }
}

#[test]
fn a_huge_bake_window_at_a_tiny_interval_is_judged() {
    let text = "{\"name\": \"n\", \"interval_seconds\": 5e-324, \"release_index\": 0, \"samples\": [{\"requests\": 1e308, \"errors\": 1e308}]}";
    read_and_judge(text);
}

proptest! {
    #[test]
    fn any_text_is_a_replay_or_an_error(text in any::<String>()) {
        read_and_judge(&text);
    }

    #[test]
    fn any_replay_shaped_file_is_judged_or_refused(text in replay_text()) {
        read_and_judge(&text);
    }

    #[test]
    fn an_edited_replay_is_judged_or_refused(text in replay_text(), edits in edits(4)) {
        read_and_judge(&apply(&text, &edits));
    }
}
