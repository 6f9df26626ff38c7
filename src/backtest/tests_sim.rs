//! The default policy under simulation, through the whole judge and the
//! decision matrix: false alarms under continuous watching (A/A), one test
//! per scenario class, and monotonicity. Run with `--nocapture` for the
//! measured rates. The benchmark (`cargo bench --bench judge`) measures the
//! same on a richer generator; these are the guarantees that must hold.

use super::*;
use crate::judge::tests_stats::{binomial, normal};
use crate::numeric::SplitMix64;

/// What happens after the release, tick by tick.
#[derive(Clone, Copy)]
struct Scenario {
    /// Requests per tick.
    requests: f64,
    /// Baseline error rate.
    rate: f64,
    /// Baseline p99, ms.
    p99: f64,
    /// Error-rate factor at tick `t` after the release.
    errors: fn(u32) -> f64,
    /// p99 factor at tick `t` after the release.
    latency: fn(u32) -> f64,
    /// Whether tick `t` after the release has data.
    data: fn(u32) -> bool,
}

fn same(_: u32) -> f64 {
    1.0
}

fn always(_: u32) -> bool {
    true
}

impl Scenario {
    fn good(requests: f64, rate: f64) -> Scenario {
        Scenario {
            requests,
            rate,
            p99: 250.0,
            errors: same,
            latency: same,
            data: always,
        }
    }
}

/// One tick: overdispersed errors (the tick's own rate varies lognormally,
/// σ = 0.4), p99 with noise that grows at low traffic and lasts a few
/// ticks (AR(1), ρ = 0.5). Every tick has its own generator, so runs that
/// differ only in their factors see the same randomness (common random
/// numbers, for the monotonicity test).
fn sample(seed: u64, index: usize, s: &Scenario, err: f64, lat: f64, ar: &mut f64) -> Sample {
    let mut rng = SplitMix64::new(seed.wrapping_mul(1_000_003) ^ (index as u64 * 7919 + 17));
    let n = s.requests.round().max(0.0) as u64;
    let p = (s.rate * err * (0.4 * normal(&mut rng) - 0.08).exp()).min(1.0);
    let k = binomial(&mut rng, n, p);
    *ar = 0.5 * *ar + normal(&mut rng);
    let sigma = 0.05 + 0.4 / (s.requests.max(1.0)).sqrt();
    Sample {
        requests: Some(n as f64),
        errors: Some(k as f64),
        p50_ms: Some(s.p99 / 4.0 * lat),
        p99_ms: Some(s.p99 * lat * (sigma * *ar * 0.87).exp()),
        health: Some(1.0),
        ..Sample::default()
    }
}

/// 360 baseline ticks (1 h at 10 s) and 90 after the release.
fn replay(seed: u64, s: &Scenario) -> Replay {
    let mut ar = 0.0;
    let mut samples: Vec<Sample> = (0..360)
        .map(|i| sample(seed, i, s, 1.0, 1.0, &mut ar))
        .collect();
    for t in 0..90u32 {
        let tick = sample(
            seed,
            360 + t as usize,
            s,
            (s.errors)(t),
            (s.latency)(t),
            &mut ar,
        );
        samples.push(if (s.data)(t) { tick } else { Sample::default() });
    }
    Replay {
        name: format!("sim-{seed}"),
        interval_seconds: Some(10.0),
        release_index: 360,
        samples,
    }
}

/// Time to fix 4h: critical and high roll back, medium asks.
fn settings() -> Settings {
    Settings {
        time_to_fix: crate::model::TimeToFix::Known(Duration::from_secs(4 * 3600)),
        ..Settings::default()
    }
}

fn judged(seed: u64, s: &Scenario) -> Outcome {
    run(&replay(seed, s), &settings()).expect("judged")
}

fn alarm(o: &Outcome) -> bool {
    matches!(o.decision, Decision::Rollback | Decision::ConsiderRollback)
}

#[test]
fn a_a_false_alarms_stay_below_alpha_under_continuous_watching() {
    let runs = 300;
    let mut alarms = 0;
    for seed in 0..runs {
        let rps = [0.05, 0.5, 5.0, 50.0, 200.0][seed as usize % 5];
        let rate = [0.0005, 0.005, 0.02][seed as usize % 3];
        let o = judged(seed, &Scenario::good(rps * 10.0, rate));
        if alarm(&o) {
            alarms += 1;
            eprintln!("false alarm at {rps} rps, rate {rate}: {:?}", o.reasons);
        }
    }
    let share = f64::from(alarms) / runs as f64;
    eprintln!("A/A through the judge: {alarms} false alarms in {runs} releases");
    assert!(
        share <= 0.01 + 3.0 * (0.01f64 * 0.99 / runs as f64).sqrt(),
        "{share}"
    );
}

#[test]
fn spikes_and_minor_regressions_are_not_rolled_back() {
    fn spike(t: u32) -> f64 {
        if t == 12 || t == 13 { 40.0 } else { 1.0 }
    }
    fn lat_spike(t: u32) -> f64 {
        if t == 20 { 8.0 } else { 1.0 }
    }
    fn minor(_: u32) -> f64 {
        1.2
    }
    for seed in 0..40 {
        let spiky = Scenario {
            errors: spike,
            latency: lat_spike,
            ..Scenario::good(1000.0, 0.005)
        };
        let o = judged(seed, &spiky);
        assert_ne!(o.decision, Decision::Rollback, "spike: {o:?}");
        let slightly_worse = Scenario {
            errors: minor,
            latency: minor,
            ..Scenario::good(2000.0, 0.01)
        };
        let o = judged(seed, &slightly_worse);
        assert!(!alarm(&o), "minor: {o:?}");
    }
}

#[test]
fn real_regressions_are_caught_within_minutes() {
    fn step(_: u32) -> f64 {
        10.0
    }
    fn burn(t: u32) -> f64 {
        1.0 + 19.0 * (f64::from(t) / 36.0).min(1.0)
    }
    fn slow(_: u32) -> f64 {
        4.0
    }
    let cases: [(&str, Scenario, u32); 3] = [
        (
            "10x errors",
            Scenario {
                errors: step,
                ..Scenario::good(500.0, 0.01)
            },
            9,
        ),
        (
            "slow burn to 20x over 6 min",
            Scenario {
                errors: burn,
                ..Scenario::good(500.0, 0.005)
            },
            45,
        ),
        (
            "4x p99",
            Scenario {
                latency: slow,
                ..Scenario::good(300.0, 0.005)
            },
            18,
        ),
    ];
    for (what, scenario, most) in cases {
        let mut ticks = Vec::new();
        for seed in 0..30 {
            let o = judged(seed, &scenario);
            assert!(alarm(&o), "{what}, seed {seed}: {o:?}");
            ticks.push(o.decided_at_index.expect("decided") as u32 - 360 + 1);
        }
        ticks.sort_unstable();
        eprintln!("{what}: median {} ticks, max {}", ticks[15], ticks[29]);
        assert!(ticks[15] <= most, "{what}: median {} ticks", ticks[15]);
        assert!(ticks[0] >= 2, "{what}: never on one tick alone");
    }
}

#[test]
fn outages_and_low_traffic_hold() {
    fn outage(t: u32) -> bool {
        !(3..40).contains(&t)
    }
    fn gappy(t: u32) -> bool {
        !t.is_multiple_of(3)
    }
    for seed in 0..30 {
        let out = Scenario {
            data: outage,
            ..Scenario::good(500.0, 0.005)
        };
        assert!(!alarm(&judged(seed, &out)), "outage");
        let trickle = Scenario {
            data: gappy,
            ..Scenario::good(0.2, 0.01)
        };
        let o = judged(seed, &trickle);
        assert!(!alarm(&o), "0.02 rps with gaps: {o:?}");
    }
    // A whole bake window without data is inconclusive, never a rollback.
    fn never(_: u32) -> bool {
        false
    }
    let o = judged(
        1,
        &Scenario {
            data: never,
            ..Scenario::good(500.0, 0.005)
        },
    );
    assert_eq!(o.decision, Decision::Inconclusive, "{o:?}");
}

/// Rank of a decision by how strongly it acts.
fn rank(d: Decision) -> u8 {
    match d {
        Decision::Healthy | Decision::Inconclusive => 0,
        Decision::ForwardFix => 1,
        Decision::ConsiderRollback => 2,
        Decision::Rollback => 3,
    }
}

/// Every tick's decision on `replay`, as the daemon would take them.
fn decisions(replay: &Replay) -> Vec<(Decision, Severity)> {
    let settings = settings();
    let checks = ReplayChecks::for_replay(replay, settings.time_to_fix).expect("checks");
    let mut judge = Judge::new(&checks.target);
    let mut so_far = crate::backtest::checks::SoFar::default();
    replay.samples[replay.release_index..]
        .iter()
        .enumerate()
        .map(|(t, sample)| {
            let obs = checks.observe(sample, t as u64, &mut so_far);
            let assessment = judge.assess(&obs, DataImpact::None, settings.time_to_fix);
            let record = judge::decide(&settings.rules, &assessment);
            (record.decision, record.severity)
        })
        .collect()
}

#[test]
fn worse_data_never_gives_a_milder_decision() {
    // The same randomness, error and latency factors from 1x to 30x: on
    // every tick, the worse release's decision is no milder and its
    // severity no lower.
    const FACTORS: [fn(u32) -> f64; 6] = [|_| 1.0, |_| 1.5, |_| 2.5, |_| 5.0, |_| 12.0, |_| 30.0];
    for seed in 0..30 {
        for requests in [30.0, 300.0, 3000.0] {
            let mut before: Option<Vec<(Decision, Severity)>> = None;
            for (i, factor) in FACTORS.into_iter().enumerate() {
                let worse = Scenario {
                    errors: factor,
                    latency: if seed % 2 == 0 { factor } else { same },
                    ..Scenario::good(requests, 0.005)
                };
                let now = decisions(&replay(seed, &worse));
                if let Some(before) = &before {
                    for (t, (b, n)) in before.iter().zip(&now).enumerate() {
                        assert!(
                            rank(n.0) >= rank(b.0) && n.1 >= b.1,
                            "seed {seed}, {requests} requests, factor #{i}, tick {t}: {b:?} then {n:?}"
                        );
                    }
                }
                before = Some(now);
            }
        }
    }
}
