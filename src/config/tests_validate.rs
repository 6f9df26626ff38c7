//! One test per class of cross-field mistake; each asserts the key path and
//! the line of the error.

use super::tests_parse::{BASE, errors, expect, line_of};

#[test]
fn duplicate_target_and_notifier_names_point_at_the_second() {
    let text = format!(
        "{BASE}\n[[notifier]]\nname = \"ops\"   # again\nkind = \"webhook\"\nurl_env = \"HOOK\"\n\n[[target]]\nname = \"api\"   # again\nrelease = {{ kind = \"announce\" }}\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "notifier[1].name",
        line_of(&text, "\"ops\"   # again"),
        "duplicate name `ops`",
    );
    expect(
        &errs,
        "target[1].name",
        line_of(&text, "\"api\"   # again"),
        "`target[0]` has it already",
    );
}

#[test]
fn unknown_notifier_references_are_errors() {
    let text = BASE.replace("notify = [\"ops\"]", "notify = [\"ops\", \"pager\"]");
    expect(
        &errors(&text),
        "target[0].notify[1]",
        line_of(&text, "pager"),
        "unknown notifier `pager`",
    );
}

#[test]
fn bake_window_shorter_than_interval() {
    let text = format!("{BASE}interval = \"30s\"\nbake_window = \"10s\"\n");
    expect(
        &errors(&text),
        "target[0].bake_window",
        line_of(&text, "bake_window"),
        "shorter than `interval`",
    );
}

#[test]
fn thresholds_must_be_ordered_by_severity() {
    let text = format!(
        "{BASE}\n[[target.metric]]\nname = \"errors\"\nquery = \"x\"\nthresholds = {{ critical = 0.01, high = 0.02 }}\n\n[[target.metric]]\nname = \"throughput\"\nquery = \"y\"\ndirection = \"decrease\"\nthresholds = {{ critical = 10.0, low = 5.0 }}  # wrong way\n\n[[target.metric]]\nname = \"fine\"\nquery = \"z\"\ndirection = \"decrease\"\nthresholds = {{ critical = 1.0, low = 5.0 }}\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].metric[0].thresholds",
        line_of(&text, "critical = 0.01"),
        "not ordered by severity",
    );
    expect(
        &errs,
        "target[0].metric[1].thresholds",
        line_of(&text, "wrong way"),
        "strictly below",
    );
    assert_eq!(errs.len(), 2, "{errs:#?}");
}

#[test]
fn command_programs_must_exist() {
    let text = format!(
        "{BASE}\n[[target.step]]\nphase = \"rollback\"\nkind = \"command\"\nargv = []\n\n[[target.step]]\nphase = \"rollback\"\nkind = \"command\"\nargv = [\"/nonexistent/deploy\", \"{{{{previous_version}}}}\"]\n\n[[target.step]]\nphase = \"verify\"\nkind = \"command\"\nargv = [\"no-such-program-anywhere\"]\n\n[[target.step]]\nphase = \"verify\"\nkind = \"command\"\nargv = [\"true\"]\n\n[[target.data_check]]\nname = \"migrations\"\nargv = [\"/bin/no-check\"]\n\n[[notifier]]\nname = \"pager\"\nkind = \"command\"\nargv = [\"/bin/no-pager\"]\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].step[0].argv",
        line_of(&text, "argv = []"),
        "must not be empty",
    );
    expect(
        &errs,
        "target[0].step[1].argv[0]",
        line_of(&text, "/nonexistent/deploy"),
        "does not exist",
    );
    expect(
        &errs,
        "target[0].step[2].argv[0]",
        line_of(&text, "no-such-program"),
        "not found on PATH",
    );
    expect(
        &errs,
        "target[0].data_check[0].argv[0]",
        line_of(&text, "/bin/no-check"),
        "does not exist",
    );
    expect(
        &errs,
        "notifier[1].argv[0]",
        line_of(&text, "/bin/no-pager"),
        "does not exist",
    );
    assert_eq!(errs.len(), 5, "{errs:#?}");
}

#[test]
fn unknown_template_variables_are_errors() {
    let text = format!(
        "{BASE}\n[[target.metric]]\nname = \"errors\"\nquery = 'rate(x{{job=\"{{{{service}}}}\"}}[{{{{window}}}}])'\nthresholds = {{ critical = 1.0 }}\n\n[[target.step]]\nphase = \"rollback\"\nkind = \"http\"\nurl = \"http://deploy/{{{{target}}}}\"\nbody = '{{\"to\": \"{{{{previous_version}}}}\", \"w\": \"{{{{window}}}}\"}}'\n\n[[target.data_check]]\nname = \"migrations\"\nargv = [\"/bin/true\", \"{{{{version\"]\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].metric[0].query",
        line_of(&text, "{{service}}"),
        "unknown template variable `{{service}}`",
    );
    expect(
        &errs,
        "target[0].step[0].body",
        line_of(&text, "body ="),
        "`{{window}}`",
    );
    expect(
        &errs,
        "target[0].data_check[0].argv[1]",
        line_of(&text, "{{version\""),
        "never closed",
    );
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn unknown_template_variables_in_a_command_notifier() {
    let text = format!(
        "{BASE}\n[[notifier]]\nname = \"pager\"\nkind = \"command\"\nargv = [\"/bin/true\", \"{{{{window}}}}\"]\n"
    );
    expect(
        &errors(&text),
        "notifier[1].argv[1]",
        line_of(&text, "{{window}}"),
        "unknown template variable `{{window}}`",
    );
}

#[test]
fn policy_rules_that_never_match() {
    let text = format!(
        "{BASE}\n[[policy.rule]]\nseverity = \"high\"\ndata_impact = \"minor\"\ntime_to_fix_over = \"1h\"\ndecision = \"rollback\"\n\n[[policy.rule]]\nseverity = \"critical\"   # shadowed\ndata_impact = \"none\"\ntime_to_fix_over = \"2h\"\ndecision = \"rollback\"\n\n[[policy.rule]]\nseverity = \"critical\"   # not shadowed: any time to fix\ndecision = \"consider_rollback\"\n\n[[policy.rule]]\nseverity = \"none\"\ndecision = \"forward_fix\"\n"
    );
    let errs = errors(&text);
    // The error is on the rule's `[[policy.rule]]`, one line above.
    let second = line_of(&text, "# shadowed") - 1;
    expect(
        &errs,
        "policy.rule[1]",
        second,
        "`policy.rule[0]` matches everything",
    );
    expect(
        &errs,
        "policy.rule[3].severity",
        line_of(&text, "severity = \"none\""),
        "never matches",
    );
    assert_eq!(errs.len(), 2, "{errs:#?}");
}

#[test]
fn metric_baselines_and_thresholds_are_consistent() {
    let text = format!(
        "{BASE}\n[[target.metric]]\nname = \"a\"\nquery = \"x\"\nbaseline = \"canary\"\nmin_ratio = 2.0\n\n[[target.metric]]\nname = \"b\"  # nothing to breach\nquery = \"y\"\nstable_query = \"z\"\nconfirm = 0\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].metric[0].baseline",
        line_of(&text, "canary"),
        "needs `stable_query`",
    );
    expect(
        &errs,
        "target[0].metric[1]",
        line_of(&text, "name = \"b\"") - 1,
        "needs `thresholds` or `min_ratio`",
    );
    expect(
        &errs,
        "target[0].metric[1].stable_query",
        line_of(&text, "stable_query"),
        "only used with baseline `canary`",
    );
    expect(
        &errs,
        "target[0].metric[1].confirm",
        line_of(&text, "confirm"),
        "at least 1",
    );
    assert_eq!(errs.len(), 4, "{errs:#?}");
}

#[test]
fn metrics_need_a_prometheus_section() {
    let text = format!(
        "{}\n[[target.metric]]\nname = \"a\"\nquery = \"x\"\nthresholds = {{ high = 1.0 }}\n",
        BASE.replace("[prometheus]\nurl = \"http://127.0.0.1:9090\"\n", "")
    );
    let header = line_of(&text, "[[target.metric]]");
    expect(
        &errors(&text),
        "target[0].metric[0]",
        header,
        "no `[prometheus]` section",
    );
}

#[test]
fn notifier_kinds_and_secrets() {
    let text = format!(
        "{BASE}\n[[notifier]]\nname = \"slack\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T0/B0/SECRET\"\n\n[[notifier]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"ftp://example.com/SECRET2\"\nurl_env = \"HOOK_URL\"\nheaders_env = {{ Authorization = \"not a var\" }}\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "notifier[1].url",
        line_of(&text, "hooks.slack.com"),
        "is a secret",
    );
    expect(
        &errs,
        "notifier[2].url",
        line_of(&text, "ftp://"),
        "http:// or https://",
    );
    expect(
        &errs,
        "notifier[2].url_env",
        line_of(&text, "HOOK_URL"),
        "exactly one of",
    );
    expect(
        &errs,
        "notifier[2].headers_env.Authorization",
        line_of(&text, "Authorization"),
        "not a valid environment variable name",
    );
    for e in &errs {
        assert!(!e.message.contains("SECRET"), "a secret was printed: {e}");
    }
}

#[test]
fn probes_statuses_counts_and_urls() {
    let text = format!(
        "{BASE}\n[[target.probe]]\nname = \"health\"\nurl = \"127.0.0.1:8080/health\"\nexpect_status = [200, 999]\nfailures = 0\n\n[[target.probe]]\nname = \"health\"\nurl = \"http:///health\"\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].probe[0].url",
        line_of(&text, "\"127.0.0.1:8080/health\""),
        "http:// or https://",
    );
    expect(
        &errs,
        "target[0].probe[0].expect_status[1]",
        line_of(&text, "200, 999"),
        "not an HTTP status",
    );
    expect(
        &errs,
        "target[0].probe[0].failures",
        line_of(&text, "failures"),
        "at least 1",
    );
    expect(
        &errs,
        "target[0].probe[1].name",
        line_of(&text, "http:///health") - 1,
        "duplicate name `health`",
    );
    expect(
        &errs,
        "target[0].probe[1].url",
        line_of(&text, "http:///health"),
        "without a host",
    );
    assert_eq!(errs.len(), 5, "{errs:#?}");
}

#[test]
fn log_level_must_be_a_filter() {
    let text = format!("[daemon]\nlog_level = \"info,rollguard=loud\"\n{BASE}");
    expect(
        &errors(&text),
        "daemon.log_level",
        2,
        "not a valid log filter",
    );
}

#[test]
fn count_and_sequential_metrics_are_checked() {
    let text = format!(
        "{BASE}\n[[target.metric]]\nname = \"half\"\nerrors_query = \"e\"   # alone\n\n\
         [[target.metric]]\nname = \"both\"\nquery = \"q\"   # as well\nerrors_query = \"e\"\ntotal_query = \"t\"\n\n\
         [[target.metric]]\nname = \"canary\"\nerrors_query = \"e\"\ntotal_query = \"t\"\nbaseline = \"canary\"   # counts\nstable_query = \"s\"\nstable_errors_query = 'e{{{{nope}}}}'\n\n\
         [[target.metric]]\nname = \"fails\"\nerrors_query = \"e\"\ntotal_query = \"t\"\non_no_data = \"fail\"   # counts\ntolerance = -1.0   # negative\n\n\
         [[target.metric]]\nname = \"latency\"\nquery = \"q\"\ntest = \"sequential\"   # no baseline\nbaseline = \"none\"\nthresholds = {{ high = 1.0 }}\n\n\
         [[target.metric]]\nname = \"fine\"\nerrors_query = 'x{{{{window}}}}'\ntotal_query = 'y{{{{window}}}}'\n"
    );
    let text = text.replace("[[target]]\n", "[[target]]\nalpha = 0.9   # too big\n");
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].alpha",
        line_of(&text, "# too big"),
        "at most 0.5",
    );
    expect(
        &errs,
        "target[0].metric[0].errors_query",
        line_of(&text, "# alone"),
        "needs `total_query` too",
    );
    expect(
        &errs,
        "target[0].metric[1].query",
        line_of(&text, "# as well"),
        "remove `query`",
    );
    // A canary count metric: the stable's counts, not `stable_query`;
    // each missing query named, each template checked.
    expect(
        &errs,
        "target[0].metric[2].baseline",
        line_of(&text, "\"canary\"   # counts"),
        "needs `stable_total_query`",
    );
    expect(
        &errs,
        "target[0].metric[2].stable_query",
        line_of(&text, "stable_query = \"s\""),
        "not `stable_query`",
    );
    expect(
        &errs,
        "target[0].metric[2].stable_errors_query",
        line_of(&text, "stable_errors_query"),
        "nope",
    );
    expect(
        &errs,
        "target[0].metric[3].on_no_data",
        line_of(&text, "\"fail\"   # counts"),
        "`hold` or `pass`",
    );
    expect(
        &errs,
        "target[0].metric[3].tolerance",
        line_of(&text, "# negative"),
        "at least 0",
    );
    expect(
        &errs,
        "target[0].metric[4].test",
        line_of(&text, "# no baseline"),
        "needs baseline `pre_release`",
    );
    assert!(
        !errs.iter().any(|e| e.to_string().contains("metric[5]")),
        "a count metric needs no thresholds: {errs:#?}"
    );
}

#[test]
fn an_error_budget_needs_a_count_metric_and_ordered_burn_rates() {
    let text = format!(
        "{BASE}\n[[target.metric]]\nname = \"latency\"\nquery = \"q\"\nthresholds = {{ high = 1.0 }}\nslo = 0.999   # on a value\n\n\
         [[target.metric]]\nname = \"whole\"\nerrors_query = \"e\"\ntotal_query = \"t\"\nslo = 99.9   # a percentage\n\n\
         [[target.metric]]\nname = \"alone\"\nerrors_query = \"e\"\ntotal_query = \"t\"\nburn_thresholds = {{ high = 6.0 }}   # no slo\n\n\
         [[target.metric]]\nname = \"upside\"\nerrors_query = \"e\"\ntotal_query = \"t\"\nslo = 0.999\nburn_thresholds = {{ high = 20.0 }}   # above critical\n\n\
         [[target.metric]]\nname = \"fine\"\nerrors_query = \"e\"\ntotal_query = \"t\"\nslo = 0.9995\nburn_thresholds = {{ critical = 30.0, high = 10.0 }}\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].metric[0].slo",
        line_of(&text, "# on a value"),
        "needs a count metric",
    );
    expect(
        &errs,
        "target[0].metric[1].slo",
        line_of(&text, "# a percentage"),
        "above 0 and below 1",
    );
    expect(
        &errs,
        "target[0].metric[2].burn_thresholds",
        line_of(&text, "# no slo"),
        "set `slo` too",
    );
    expect(
        &errs,
        "target[0].metric[3].burn_thresholds",
        line_of(&text, "# above critical"),
        "`critical` (14.4) must be strictly above `high` (20)",
    );
    assert!(
        !errs.iter().any(|e| e.to_string().contains("metric[4]")),
        "defaults fill the levels left out: {errs:#?}"
    );
}
