//! Backtests of small synthetic replays.

use super::*;
use std::path::Path;

fn ok(requests: f64, errors: f64) -> Sample {
    Sample {
        requests: Some(requests),
        errors: Some(errors),
        p50_ms: Some(40.0),
        p99_ms: Some(180.0),
        health: Some(1.0),
        ..Sample::default()
    }
}

/// 30 baseline ticks at 200 requests and 1 error, then `after`.
fn replay(after: Vec<Sample>) -> Replay {
    let mut samples = vec![ok(200.0, 1.0); 30];
    samples.extend(after);
    Replay {
        name: "r".to_owned(),
        interval_seconds: Some(10.0),
        release_index: 30,
        samples,
    }
}

fn backtest(r: &Replay) -> Outcome {
    run(r, &Settings::default()).expect("judged")
}

#[test]
fn a_good_release_is_healthy_from_the_release_on() {
    let o = backtest(&replay(vec![ok(200.0, 1.0); 20]));
    assert_eq!(o.decision, Decision::Healthy, "{o:?}");
    assert_eq!(o.decided_at_index, Some(30));
    assert_eq!(o.severity, Severity::None);
}

#[test]
fn a_failing_release_rolls_back_on_the_third_tick() {
    let o = backtest(&replay(vec![ok(200.0, 24.0); 10]));
    assert_eq!(o.decision, Decision::Rollback, "{o:?}");
    assert_eq!(o.severity, Severity::Critical);
    assert_eq!(o.decided_at_index, Some(32), "never on two ticks alone");
    assert!(
        o.reasons.iter().any(|r| r.contains("error_rate 0.12")),
        "{:?}",
        o.reasons
    );
}

#[test]
fn a_dead_health_endpoint_rolls_back_after_three_probes() {
    let mut down = ok(200.0, 1.0);
    down.health = Some(0.0);
    let o = backtest(&replay(vec![down; 5]));
    assert_eq!(
        (o.decision, o.decided_at_index),
        (Decision::Rollback, Some(32))
    );
}

#[test]
fn a_monitoring_outage_is_inconclusive_never_a_rollback() {
    let o = backtest(&replay(vec![Sample::default(); 20]));
    assert_eq!(o.decision, Decision::Inconclusive, "{o:?}");
    assert_eq!(o.decided_at_index, Some(30));
}

#[test]
fn a_one_sample_spike_does_not_roll_back() {
    let mut after = vec![ok(200.0, 1.0); 20];
    after[3] = ok(200.0, 60.0);
    let o = backtest(&replay(after));
    assert_eq!(o.decision, Decision::Healthy, "{o:?}");
}

#[test]
fn low_traffic_holds() {
    // One request a tick, two of them failed: too little to say anything.
    let mut after = vec![ok(1.0, 0.0); 20];
    after[2] = ok(1.0, 1.0);
    after[3] = ok(1.0, 1.0);
    let o = backtest(&replay(after));
    assert_eq!(o.decision, Decision::Healthy, "{o:?}");
    // Five requests a tick, three failed, tick after tick: slow to prove,
    // but proven, and never on the first ticks.
    let o = backtest(&replay(vec![ok(5.0, 3.0); 20]));
    assert_eq!(o.decision, Decision::Rollback, "{o:?}");
    assert!(o.decided_at_index >= Some(32), "{o:?}");
}

#[test]
fn only_the_bake_window_is_judged() {
    let mut after = vec![ok(200.0, 1.0); 90];
    after.extend(vec![ok(200.0, 50.0); 10]);
    let o = backtest(&replay(after));
    assert_eq!(o.decision, Decision::Healthy, "{o:?}");
    let nothing = Replay {
        release_index: 30,
        ..replay(Vec::new())
    };
    let o = backtest(&nothing);
    assert_eq!(
        (o.decision, o.decided_at_index),
        (Decision::Inconclusive, None)
    );
}

#[test]
fn the_table_has_one_row_per_release() {
    let table = render_table(&[backtest(&replay(vec![ok(200.0, 24.0); 3]))]);
    let first = table.lines().nth(1).expect("a row");
    assert!(first.starts_with("r     rollback"), "{table}");
}

/// The error-rate e-process alone (not the backtest's whole policy) on the
/// example replay rejects a few samples after the
/// release, and never on the baseline replayed as if it were the release.
#[test]
fn the_error_rate_e_process_on_the_example_replay() {
    use crate::judge::stats::{ErrorBaseline, ErrorRateSettings, ErrorRateTest};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/replay-bad-release.json");
    let replay = Replay::load(&path).expect("the example replay");
    let ticks: Vec<(f64, f64)> = replay
        .baseline()
        .iter()
        .filter_map(Sample::counts)
        .collect();
    let baseline = ErrorBaseline::from_ticks(&ticks, 0.01).expect("a baseline");
    let mut test = ErrorRateTest::new(&baseline, &ErrorRateSettings::default());
    let mut rejected_at = None;
    for (index, sample) in replay.samples.iter().enumerate().skip(replay.release_index) {
        test.update(sample.counts());
        if test.rejected() && rejected_at.is_none() {
            rejected_at = Some(index);
        }
    }
    let at = rejected_at.expect("rejects");
    assert!(
        (14..=16).contains(&at),
        "rejected at sample {at}, released at 12"
    );
    // A/A: the baseline against itself.
    let mut same = ErrorRateTest::new(&baseline, &ErrorRateSettings::default());
    for (n, k) in ticks.iter().cycle().take(90) {
        same.update(Some((*n, *k)));
    }
    assert!(!same.rejected(), "e = {}", same.e_value());
}
