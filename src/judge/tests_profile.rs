//! The profiled error-rate test under simulation: false alarms under
//! continuous monitoring, also at the edge of the null; power next to the
//! union-bound test on the same data; spikes; monotonicity; degenerate
//! input. Run with `--nocapture` to see the measured rates.

use super::stats::{ErrorBaseline, ErrorRateSettings, ErrorRateTest, ProfiledTest};
use super::tests_stats::{assert_monotone, tick, tolerance};
use crate::numeric::SplitMix64;

/// One-minute baseline blocks (six ticks of `n` requests) over an hour.
fn baseline(rng: &mut SplitMix64, n: u64, p: f64, sigma: f64) -> Vec<(f64, f64)> {
    (0..60)
        .map(|_| {
            (0..6)
                .map(|_| tick(rng, n, p, sigma))
                .fold((0.0, 0.0), |(bn, bk), (tn, tk)| (bn + tn, bk + tk))
        })
        .collect()
}

/// Share of `seeds` releases whose 90 ticks at rate `post` (the baseline
/// at `p`) ever reject.
fn alarm_rate(seeds: u64, n: u64, p: f64, post: f64, sigma: f64) -> f64 {
    let settings = ErrorRateSettings::default();
    let mut alarms = 0;
    for seed in 0..seeds {
        let mut rng = SplitMix64::new(seed * 6151 + 11);
        let blocks = baseline(&mut rng, n, p, sigma);
        let mut test = ProfiledTest::new(&blocks, &settings).expect("sixty blocks");
        for _ in 0..90 {
            test.update(Some(tick(&mut rng, n, post, sigma)));
        }
        alarms += u32::from(test.rejected());
    }
    f64::from(alarms) / seeds as f64
}

#[test]
fn a_a_false_alarms_stay_below_alpha_also_at_the_edge_of_the_null() {
    let seeds = 1000;
    // (requests a tick, baseline rate, overdispersion): busy and quiet
    // services, a baseline with a handful of errors, one with none at all.
    for (n, p, sigma) in [
        (200, 0.005, 0.0),
        (200, 0.005, 0.5),
        (5000, 0.005, 0.5),
        (50, 0.02, 0.0),
        (20, 0.002, 0.0),
        (3, 0.01, 0.0),
        (100, 0.0, 0.0),
    ] {
        let same = alarm_rate(seeds, n, p, p, sigma);
        // The release exactly as much worse as the null allows: 1.25x, or
        // the baseline plus min_increase where that is more.
        let edge = (1.25 * p).max(p + 0.001);
        let at_edge = alarm_rate(seeds, n, p, edge, sigma);
        eprintln!(
            "profiled A/A n={n} p={p} sigma={sigma}: false alarms {same:.4}, \
             at the null's edge {at_edge:.4}, over {seeds} runs"
        );
        assert!(
            same <= tolerance(seeds),
            "n={n} p={p} sigma={sigma}: {same}"
        );
        assert!(
            at_edge <= tolerance(seeds),
            "n={n} p={p} sigma={sigma}: {at_edge}"
        );
    }
}

/// Of `seeds` releases at `n` requests a tick whose rate jumps from `p` to
/// `post`: how many each test catches within 90 ticks: the union-bound
/// test, the profiled one, and an e-process that knows the baseline rate
/// (a bound no test that estimates it can beat). All see the same data.
fn caught(seeds: u64, n: u64, p: f64, post: f64) -> (u32, u32, u32) {
    let settings = ErrorRateSettings::default();
    let (mut union, mut profiled, mut known) = (0, 0, 0);
    for seed in 0..seeds {
        let mut rng = SplitMix64::new(seed * 7_919 + 5);
        let blocks = baseline(&mut rng, n, p, 0.0);
        let bound = ErrorBaseline::from_ticks(&blocks, settings.alpha).expect("baseline");
        let mut old = ErrorRateTest::new(&bound, &settings);
        let mut new = ProfiledTest::new(&blocks, &settings).expect("sixty blocks");
        // The whole α for Ville, as the profiled test has (`against`
        // gives half of its α to a baseline bound it does not need here).
        let whole = ErrorRateSettings {
            alpha: 2.0 * settings.alpha,
            ..settings
        };
        let mut oracle = ErrorRateTest::against(1.25 * p, 1.0, &whole);
        for _ in 0..90 {
            let counts = tick(&mut rng, n, post, 0.0);
            old.update(Some(counts));
            new.update(Some(counts));
            oracle.update(Some(counts));
        }
        union += u32::from(old.rejected());
        profiled += u32::from(new.rejected());
        known += u32::from(oracle.rejected());
    }
    (union, profiled, known)
}

#[test]
fn the_profiled_test_catches_more_regressions_at_the_edge_of_detection() {
    // Regressions a fixed-horizon oracle catches nearly always but an
    // anytime-valid test only sometimes: where the baseline's uncertainty
    // matters most.
    let (mut all_union, mut all_profiled) = (0, 0);
    for (n, p, post) in [(10, 0.005, 0.0257), (30, 0.005, 0.0175), (10, 0.02, 0.064)] {
        let (union, profiled, known) = caught(300, n, p, post);
        eprintln!(
            "{n} req/tick, {p} -> {post}: union bound {union}/300, profiled {profiled}/300, \
             knowing the baseline rate {known}/300"
        );
        assert!(
            profiled >= union + 20 && known >= profiled,
            "{n} req/tick, {p} -> {post}: union {union}, profiled {profiled}, known {known}"
        );
        (all_union, all_profiled) = (all_union + union, all_profiled + profiled);
    }
    assert!(
        f64::from(all_profiled) >= 1.15 * f64::from(all_union),
        "union {all_union}, profiled {all_profiled}"
    );
}

#[test]
fn large_regressions_are_caught_in_a_few_ticks_and_spikes_never() {
    let settings = ErrorRateSettings::default();
    let mut delays = Vec::new();
    for seed in 0..200 {
        let mut rng = SplitMix64::new(seed);
        let blocks = baseline(&mut rng, 1000, 0.005, 0.0);
        let mut jump = ProfiledTest::new(&blocks, &settings).expect("blocks");
        let mut spike = jump.clone();
        for t in 0..90 {
            jump.update(Some(tick(&mut rng, 1000, 0.05, 0.0)));
            let p = if t == 10 || t == 11 { 0.6 } else { 0.005 };
            spike.update(Some(tick(&mut rng, 1000, p, 0.0)));
        }
        delays.push(jump.rejected_at().unwrap_or(u32::MAX));
        assert!(!spike.rejected(), "seed {seed}: e = {}", spike.e_value());
    }
    delays.sort_unstable();
    eprintln!(
        "10x at 1000 req/tick: fastest {} ticks, median {}, slowest {}",
        delays[0], delays[100], delays[199]
    );
    assert!(delays[0] >= 3, "never fewer than three ticks");
    assert!(delays[100] <= 4 && delays[199] <= 6, "{delays:?}");
}

#[test]
fn more_errors_never_give_a_smaller_e_value() {
    let settings = ErrorRateSettings::default();
    let mut rng = SplitMix64::new(7);
    for _ in 0..100 {
        let blocks = baseline(&mut rng, 200, 0.005, 0.3);
        let test = ProfiledTest::new(&blocks, &settings).expect("blocks");
        assert_monotone(
            &mut rng,
            test,
            |t, counts| t.update(Some(counts)),
            ProfiledTest::e_value,
        );
    }
}

#[test]
fn missing_data_holds_and_a_short_baseline_falls_back() {
    let settings = ErrorRateSettings::default();
    let blocks = [(1200.0, 6.0); 60];
    let mut test = ProfiledTest::new(&blocks, &settings).expect("blocks");
    let before = test.e_value();
    assert!(before <= 1.0, "the prior's cost: {before}");
    for _ in 0..90 {
        test.update(None);
        test.update(Some((0.0, 0.0)));
        test.update(Some((5.0, 9.0))); // more errors than requests
        test.update(Some((f64::NAN, 1.0)));
    }
    assert_eq!(test.e_value(), before);
    assert!(!test.rejected());
    assert!(test.cells() > 1 && test.cells() <= 64, "{}", test.cells());
    assert!((test.baseline_rate() - 0.005).abs() < 1e-12);
    // The null the evidence has to beat: at least 1.25x the baseline.
    assert!(
        test.null_rate() >= 1.25 * 0.005 - 1e-12,
        "{}",
        test.null_rate()
    );
    assert!(
        (test.threshold() - 100.0).abs() < 1e-9,
        "the whole α = 0.01"
    );

    assert!(
        ProfiledTest::new(&blocks[..3], &settings).is_none(),
        "three blocks"
    );
    assert!(ProfiledTest::new(&[(0.0, 0.0); 60], &settings).is_none());
    assert!(ProfiledTest::new(&[(f64::NAN, 0.0); 60], &settings).is_none());
}

#[test]
fn a_baseline_without_errors_still_tests_against_its_floor() {
    let settings = ErrorRateSettings::default();
    let mut test = ProfiledTest::new(&[(600.0, 0.0); 60], &settings).expect("blocks");
    // No baseline error in 36,000 requests: the null is about the floor
    // (min_increase, 0.1 points) above a rate near zero.
    assert!(test.null_rate() >= 0.001, "{}", test.null_rate());
    for _ in 0..3 {
        test.update(Some((600.0, 3.0)));
    }
    assert!(!test.rejected(), "0.5% is not yet far beyond 0.1%");
    for _ in 0..30 {
        test.update(Some((600.0, 30.0)));
    }
    assert!(test.rejected(), "5% is: e = {}", test.e_value());
}
