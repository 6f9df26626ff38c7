//! Validation of the keys issue #12 added: a policy rule's
//! `severity_match` in the shadowing check, and a probe's `max_latency`.

use super::tests_parse::{BASE, errors, expect, line_of};

#[test]
fn shadowing_reads_at_most_and_exactly() {
    let text = format!(
        "{BASE}\n[[policy.rule]]\nseverity = \"medium\"\nseverity_match = \"at_most\"\ndecision = \"forward_fix\"\n\n\
         [[policy.rule]]\nseverity = \"low\"\nseverity_match = \"exactly\"   # shadowed\ndecision = \"rollback\"\n\n\
         [[policy.rule]]\nseverity = \"low\"   # not shadowed: high and critical too\ndecision = \"rollback\"\n"
    );
    let errs = errors(&text);
    // The error is on the rule's `[[policy.rule]]`, two lines above.
    let second = line_of(&text, "# shadowed") - 2;
    expect(
        &errs,
        "policy.rule[1]",
        second,
        "`policy.rule[0]` matches everything",
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
}

#[test]
fn a_probe_max_latency_is_under_its_timeout() {
    let probe = "[[target.probe]]\nname = \"h\"\nurl = \"http://127.0.0.1:1/h\"\n";
    let text = format!("{BASE}{probe}max_latency = \"500ms\"\n");
    assert_eq!(errors(&text), Vec::new());
    let text = format!("{BASE}{probe}max_latency = \"2s\"\n");
    expect(
        &errors(&text),
        "target[0].probe[0].max_latency",
        line_of(&text, "max_latency"),
        "must be under `timeout`",
    );
}
