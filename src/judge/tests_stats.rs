//! The error-rate e-process under simulation: false alarms under continuous
//! monitoring (A/A), detection delay, spikes, slow burns, monotonicity.
//! Run with `--nocapture` to see the measured rates.

use super::stats::{ErrorBaseline, ErrorRateSettings, ErrorRateTest};
use crate::numeric::SplitMix64;

/// Binomial(n, p) by geometric skips: O(errors) per draw.
pub(crate) fn binomial(rng: &mut SplitMix64, n: u64, p: f64) -> u64 {
    if p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    let ln_q = (1.0 - p).ln();
    let (mut k, mut i) = (0, 0u64);
    loop {
        let u = 1.0 - rng.next_f64(); // (0, 1]
        i += (u.ln() / ln_q).floor() as u64 + 1;
        if i > n {
            return k;
        }
        k += 1;
    }
}

/// A standard normal draw (Box–Muller).
pub(crate) fn normal(rng: &mut SplitMix64) -> f64 {
    let u1 = 1.0 - rng.next_f64();
    let u2 = rng.next_f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// One tick of `n` requests at mean rate `p`; with `sigma > 0` the tick's
/// own rate varies lognormally around `p` (overdispersion).
pub(crate) fn tick(rng: &mut SplitMix64, n: u64, p: f64, sigma: f64) -> (f64, f64) {
    let rate = if sigma > 0.0 {
        (p * (sigma * normal(rng) - sigma * sigma / 2.0).exp()).min(1.0)
    } else {
        p
    };
    (n as f64, binomial(rng, n, rate) as f64)
}

/// A test built from 30 baseline ticks at rate `p`.
fn start(rng: &mut SplitMix64, n: u64, p: f64, sigma: f64) -> ErrorRateTest {
    let ticks: Vec<(f64, f64)> = (0..30).map(|_| tick(rng, n, p, sigma)).collect();
    let baseline = ErrorBaseline::from_ticks(&ticks, 0.01).expect("a baseline");
    ErrorRateTest::new(&baseline, &ErrorRateSettings::default())
}

/// Share of `seeds` A/A runs (90 ticks after the release, same rate) that
/// ever reject.
fn false_alarm_rate(seeds: u64, n: u64, p: f64, sigma: f64) -> f64 {
    let mut alarms = 0;
    for seed in 0..seeds {
        let mut rng = SplitMix64::new(seed * 7919 + 1);
        let mut test = start(&mut rng, n, p, sigma);
        for _ in 0..90 {
            test.update(Some(tick(&mut rng, n, p, sigma)));
        }
        alarms += u32::from(test.rejected());
    }
    f64::from(alarms) / seeds as f64
}

/// α = 0.01 plus three Monte Carlo standard errors at `seeds` runs.
pub(crate) fn tolerance(seeds: u64) -> f64 {
    0.01 + 3.0 * (0.01 * 0.99 / seeds as f64).sqrt()
}

#[test]
fn a_a_false_alarms_stay_below_alpha_under_continuous_monitoring() {
    let seeds = 2000;
    for (n, p, sigma) in [
        (200, 0.005, 0.0),
        (200, 0.005, 0.5),
        (5000, 0.005, 0.5),
        (50, 0.02, 0.0),
        (20_000, 0.001, 0.3),
    ] {
        let rate = false_alarm_rate(seeds, n, p, sigma);
        eprintln!("A/A n={n} p={p} sigma={sigma}: false alarms {rate:.4} over {seeds} runs");
        assert!(
            rate <= tolerance(seeds),
            "n={n} p={p} sigma={sigma}: {rate}"
        );
    }
}

/// Ticks after the release until the test rejects a jump from `p` to
/// `factor · p` at `n` requests a tick (`None`: not within 90 ticks).
fn detection_delay(seed: u64, n: u64, p: f64, factor: f64) -> Option<u32> {
    let mut rng = SplitMix64::new(seed * 104_729 + 3);
    let mut test = start(&mut rng, n, p, 0.0);
    for _ in 0..90 {
        test.update(Some(tick(&mut rng, n, p * factor, 0.0)));
        if test.rejected() {
            return test.rejected_at();
        }
    }
    None
}

#[test]
fn a_five_fold_error_increase_is_detected_within_a_few_ticks() {
    let mut delays: Vec<u32> = (0..500)
        .map(|seed| detection_delay(seed, 200, 0.005, 5.0).unwrap_or(u32::MAX))
        .collect();
    delays.sort_unstable();
    let (median, p95) = (delays[250], delays[475]);
    eprintln!("5x at 200 req/tick, 0.5% → 2.5%: median delay {median} ticks, p95 {p95}");
    assert!(delays[0] >= 3, "no fewer than 3 ticks: the per-tick cap");
    assert!(median <= 7 && p95 <= 15, "median {median}, p95 {p95}");
    for (n, factor, most) in [
        (1000, 5.0, 4),
        (5000, 2.0, 8),
        (1000, 2.0, 40),
        (200, 3.0, 40),
    ] {
        let mut d: Vec<u32> = (0..500)
            .map(|seed| detection_delay(seed, n, 0.005, factor).unwrap_or(u32::MAX))
            .collect();
        d.sort_unstable();
        let (median, p95) = (d[250], d[475]);
        eprintln!("{factor}x at {n} req/tick: median delay {median} ticks, p95 {p95}");
        assert!(median <= most, "{factor}x at {n}: median {median}");
    }
}

#[test]
fn one_or_two_tick_spikes_never_reject() {
    for seed in 0..200 {
        let mut rng = SplitMix64::new(seed);
        let mut test = start(&mut rng, 200, 0.005, 0.0);
        for t in 0..90 {
            let p = if t == 10 || t == 11 { 0.6 } else { 0.005 };
            test.update(Some(tick(&mut rng, 200, p, 0.0)));
        }
        assert!(!test.rejected(), "seed {seed}: e = {}", test.e_value());
    }
}

#[test]
fn a_slow_burn_is_caught() {
    for seed in 0..100 {
        let mut rng = SplitMix64::new(seed);
        let mut test = start(&mut rng, 1000, 0.005, 0.0);
        // From 1x to 4x the baseline over 60 ticks.
        for t in 0..90 {
            let p = 0.005 * (1.0 + 3.0 * (f64::from(t) / 60.0).min(1.0));
            test.update(Some(tick(&mut rng, 1000, p, 0.0)));
        }
        assert!(test.rejected(), "seed {seed}: e = {}", test.e_value());
    }
}

#[test]
fn missing_data_and_low_traffic_hold() {
    let baseline = ErrorBaseline::from_ticks(&[(200.0, 1.0); 30], 0.01).expect("baseline");
    let mut test = ErrorRateTest::new(&baseline, &ErrorRateSettings::default());
    for _ in 0..90 {
        test.update(None);
        test.update(Some((0.0, 0.0)));
        test.update(Some((5.0, 9.0))); // nonsense: more errors than requests
    }
    assert_eq!(test.e_value(), 1.0);
    // One request a tick, every fifth one failing (20% vs 0.5%): a few
    // ticks of this are not enough to say anything.
    for t in 0..5 {
        test.update(Some((1.0, f64::from(u8::from(t % 5 == 0)))));
    }
    assert!(!test.rejected(), "e = {}", test.e_value());
    assert!(
        ErrorBaseline::from_ticks(&[(0.0, 0.0)], 0.01).is_none(),
        "no requests, no baseline"
    );
}

/// Feeds `test` up to 20 ticks of 200 requests at 1–5 times 0.5%, then
/// checks that a next tick with more errors never gives a smaller e-value.
pub(crate) fn assert_monotone<T: Clone>(
    rng: &mut SplitMix64,
    mut test: T,
    update: impl Fn(&mut T, (f64, f64)),
    e_value: impl Fn(&T) -> f64,
) {
    for _ in 0..(rng.next_u64() % 20) {
        let p = 0.005 * (1.0 + 4.0 * rng.next_f64());
        update(&mut test, tick(rng, 200, p, 0.0));
    }
    let mut previous = 0.0;
    for k in 0..=200 {
        let mut next = test.clone();
        update(&mut next, (200.0, f64::from(k)));
        assert!(e_value(&next) >= previous, "k = {k}");
        previous = e_value(&next);
    }
}

#[test]
fn more_errors_never_give_a_smaller_e_value() {
    let mut rng = SplitMix64::new(42);
    for _ in 0..200 {
        let test = start(&mut rng, 200, 0.005, 0.3);
        assert_monotone(
            &mut rng,
            test,
            |t, counts| t.update(Some(counts)),
            ErrorRateTest::e_value,
        );
    }
}

#[test]
fn the_baseline_accounts_for_noise() {
    let steady = ErrorBaseline::from_ticks(&[(1000.0, 10.0); 20], 0.01).expect("baseline");
    assert_eq!(steady.dispersion, 1.0);
    assert!((steady.rate - 0.01).abs() < 1e-12);
    assert!(steady.upper > 0.01 && steady.upper < 0.013, "{steady:?}");
    let bursty: Vec<(f64, f64)> = (0..20)
        .map(|i| (1000.0, if i % 2 == 0 { 0.0 } else { 20.0 }))
        .collect();
    let bursty = ErrorBaseline::from_ticks(&bursty, 0.01).expect("baseline");
    assert!(bursty.dispersion > 10.0, "{bursty:?}");
    assert!(
        bursty.upper > steady.upper,
        "a noisy baseline is less certain"
    );
}
