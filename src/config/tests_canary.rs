//! `baseline = "canary"` for count metrics: the stable version's two count
//! queries, each named with its line when it is missing or misplaced.

use super::tests_parse::{BASE, errors, expect, line_of};

/// A canary count metric with `extra` keys.
fn canary(extra: &str) -> String {
    format!(
        "{BASE}\n[[target.metric]]\nname = \"errors\"\n\
         errors_query = 'sum(increase(http_requests_total{{version=\"{{{{version}}}}\",code=~\"5..\"}}[{{{{window}}}}]))'\n\
         total_query = 'sum(increase(http_requests_total{{version=\"{{{{version}}}}\"}}[{{{{window}}}}]))'\n\
         baseline = \"canary\"   # here\n{extra}"
    )
}

#[test]
fn a_canary_count_metric_with_both_stable_queries_is_accepted() {
    let text = canary(
        "stable_errors_query = 'sum(increase(http_requests_total{version=\"{{previous_version}}\",code=~\"5..\"}[{{window}}]))'\n\
         stable_total_query = 'sum(increase(http_requests_total{version=\"{{previous_version}}\"}[{{window}}]))'\n",
    );
    let errs = errors(&text);
    assert!(errs.is_empty(), "{errs:#?}");
}

#[test]
fn each_missing_stable_query_is_named_at_the_baseline() {
    let text = canary("stable_errors_query = 'e'\n");
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].metric[0].baseline",
        line_of(&text, "# here"),
        "needs `stable_total_query`",
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let errs = errors(&canary(""));
    assert_eq!(errs.len(), 2, "both missing, both named: {errs:#?}");
}

#[test]
fn stable_count_queries_belong_to_a_canary_count_metric() {
    let text = format!(
        "{BASE}\n[[target.metric]]\nname = \"before\"\nerrors_query = \"e\"\ntotal_query = \"t\"\n\
         stable_total_query = \"s\"   # pre_release\n\n\
         [[target.metric]]\nname = \"value\"\nquery = \"q\"\nbaseline = \"canary\"\nstable_query = \"s\"\n\
         thresholds = {{ high = 1.0 }}\nstable_errors_query = \"s\"   # a value metric\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].metric[0].stable_total_query",
        line_of(&text, "# pre_release"),
        "only used with baseline `canary`",
    );
    expect(
        &errs,
        "target[0].metric[1].stable_errors_query",
        line_of(&text, "# a value metric"),
        "for count metrics",
    );
    assert_eq!(errs.len(), 2, "{errs:#?}");
}
