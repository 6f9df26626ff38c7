//! Durations and retries outside their bounds (`bounds.rs`): each an error
//! at its key path and line.

use super::tests_parse::{BASE, errors, expect, line_of};
use super::{ByteSize, MapEnvironment, parse_with_env};
use std::path::Path;

#[test]
fn durations_and_retries_beyond_their_bounds_are_errors() {
    let text = format!(
        "[daemon]\nshutdown_grace = \"2h\"\n\n{BASE}interval = \"10ms\"\nbake_window = \"10000y\"\ncooldown = \"18446744073709551615s\"\ntime_to_fix = \"400d\"\nverify_timeout = \"500ms\"\n\n[[target.probe]]\nname = \"health\"\nurl = \"http://127.0.0.1:8080/health\"\ntimeout = \"1ns\"\n\n[[target.step]]\nphase = \"rollback\"\nkind = \"wait\"\nduration = \"2d\"\ntimeout = \"25h\"\nretries = 101\nbackoff = \"3h\"\n\n[[notifier]]\nname = \"pager\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9\"\nretries = 4294967295\n\n[[policy.rule]]\nseverity = \"high\"\ntime_to_fix_over = \"1000y\"\ndecision = \"rollback\"\n"
    );
    let errs = errors(&text);
    let cases = [
        ("daemon.shutdown_grace", "\"2h\"", "at most 1h"),
        ("target[0].interval", "10ms", "at least 100ms"),
        ("target[0].bake_window", "10000y", "at most 7days"),
        (
            "target[0].cooldown",
            "18446744073709551615s",
            "at most 30days",
        ),
        ("target[0].time_to_fix", "400d", "at most 30days"),
        ("target[0].verify_timeout", "500ms", "at least 1s"),
        ("target[0].probe[0].timeout", "1ns", "at least 100ms"),
        ("target[0].step[0].duration", "\"2d\"", "at most 1day"),
        ("target[0].step[0].timeout", "25h", "at most 1day"),
        ("target[0].step[0].retries", "101", "at most 100"),
        ("target[0].step[0].backoff", "3h", "at most 1h"),
        ("notifier[1].retries", "4294967295", "at most 100"),
        ("policy.rule[0].time_to_fix_over", "1000y", "at most 30days"),
    ];
    for (path, needle, words) in cases {
        expect(&errs, path, line_of(&text, needle), words);
    }
    assert_eq!(errs.len(), cases.len(), "{errs:#?}");
}

#[test]
fn the_largest_allowed_values_pass() {
    let text = format!(
        "{BASE}interval = \"1h\"\nbake_window = \"7d\"\ncooldown = \"30d\"\nverify_timeout = \"24h\"\n\n[[target.step]]\nphase = \"verify\"\nkind = \"verify\"\ntimeout = \"24h\"\nretries = 100\nbackoff = \"1h\"\n"
    );
    assert_eq!(errors(&text), Vec::new());
}

#[test]
fn concurrency_limits_are_at_least_one_and_at_most_their_maximum() {
    let text = format!(
        "[daemon]\nmax_concurrent_probes = 0\n\n{}",
        BASE.replace(
            "url = \"http://127.0.0.1:9090\"\n",
            "url = \"http://127.0.0.1:9090\"\nmax_concurrent_queries = 257\n"
        )
    );
    let errs = errors(&text);
    expect(
        &errs,
        "daemon.max_concurrent_probes",
        line_of(&text, "max_concurrent_probes = 0"),
        "at least 1",
    );
    expect(
        &errs,
        "prometheus.max_concurrent_queries",
        line_of(&text, "257"),
        "at most 256",
    );
    assert_eq!(errs.len(), 2, "{errs:#?}");
    let text = format!(
        "[daemon]\nmax_concurrent_probes = 1024\n\n{}",
        BASE.replace(
            "url = \"http://127.0.0.1:9090\"\n",
            "url = \"http://127.0.0.1:9090\"\nmax_concurrent_queries = 256\n"
        )
    );
    assert_eq!(errors(&text), Vec::new());
}

#[test]
fn prometheus_answers_are_bounded_in_bytes_and_series() {
    let with = |keys: &str| {
        BASE.replace(
            "url = \"http://127.0.0.1:9090\"\n",
            &format!("url = \"http://127.0.0.1:9090\"\n{keys}"),
        )
    };
    let env = MapEnvironment::with_path("/usr/bin:/bin");
    let config = parse_with_env(&with(""), Path::new("test.toml"), &env).expect("valid");
    let prometheus = config.prometheus.expect("[prometheus]");
    assert_eq!(prometheus.max_response_bytes, ByteSize::mib(4));
    assert_eq!(prometheus.max_series, 500);
    let text = with("max_response_bytes = \"256MiB\"\nmax_series = 100000\n");
    let config = parse_with_env(&text, Path::new("test.toml"), &env).expect("valid");
    let prometheus = config.prometheus.expect("[prometheus]");
    assert_eq!(prometheus.max_response_bytes, ByteSize::mib(256));
    assert_eq!(errors(&with("max_response_bytes = 65536\n")), Vec::new());

    let text = with("max_response_bytes = \"32KiB\"\nmax_series = 0\n");
    let errs = errors(&text);
    expect(
        &errs,
        "prometheus.max_response_bytes",
        line_of(&text, "32KiB"),
        "at least 64 KiB",
    );
    expect(
        &errs,
        "prometheus.max_series",
        line_of(&text, "max_series"),
        "at least 1",
    );
    assert_eq!(errs.len(), 2, "{errs:#?}");
    let text = with("max_response_bytes = \"257MiB\"\nmax_series = 100001\n");
    let errs = errors(&text);
    expect(
        &errs,
        "prometheus.max_response_bytes",
        line_of(&text, "257MiB"),
        "at most 256 MiB",
    );
    expect(
        &errs,
        "prometheus.max_series",
        line_of(&text, "100001"),
        "at most 100000",
    );
    let text = with("max_response_bytes = \"lots\"\n");
    expect(
        &errors(&text),
        "prometheus.max_response_bytes",
        line_of(&text, "lots"),
        "\"4MiB\"",
    );
}

#[test]
fn the_journal_retention_is_a_day_to_ten_years() {
    for (value, words) in [("\"12h\"", "at least 1day"), ("\"11y\"", "at most 10years")] {
        let text = format!("[daemon]\njournal_retention = {value}\n\n{BASE}");
        let errs = errors(&text);
        expect(&errs, "daemon.journal_retention", 2, words);
        assert_eq!(errs.len(), 1, "{errs:#?}");
    }
    for value in ["\"1d\"", "\"10y\"", "\"90days\""] {
        let text = format!("[daemon]\njournal_retention = {value}\n\n{BASE}");
        assert_eq!(errors(&text), Vec::new(), "{value}");
    }
}

#[test]
fn the_monitoring_notice_delay_is_zero_to_an_hour_and_thirty_seconds_by_default() {
    let config = crate::config::parse_with_env(
        BASE,
        std::path::Path::new("test.toml"),
        &crate::config::MapEnvironment::with_path("/usr/bin:/bin"),
    )
    .expect("valid");
    assert_eq!(
        config.daemon.monitoring_notice_after,
        std::time::Duration::from_secs(30)
    );
    let text = format!("[daemon]\nmonitoring_notice_after = \"2h\"\n\n{BASE}");
    let errs = errors(&text);
    expect(&errs, "daemon.monitoring_notice_after", 2, "at most 1h");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    for value in ["\"0s\"", "\"1h\"", "\"45s\""] {
        let text = format!("[daemon]\nmonitoring_notice_after = {value}\n\n{BASE}");
        assert_eq!(errors(&text), Vec::new(), "{value}");
    }
}

#[test]
fn empty_means_zero_belongs_to_a_count_metric() {
    let count = "[[target.metric]]\nname = \"errors\"\nerrors_query = \"e\"\ntotal_query = \"t\"\nempty_means_zero = true\n";
    assert_eq!(errors(&format!("{BASE}{count}")), Vec::new());
    let text = format!(
        "{BASE}[[target.metric]]\nname = \"p99\"\nquery = \"q\"\nthresholds = {{ high = 1.0 }}\nempty_means_zero = true\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].metric[0].empty_means_zero",
        line_of(&text, "empty_means_zero"),
        "on_no_data",
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
}
