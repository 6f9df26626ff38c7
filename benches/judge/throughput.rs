//! Judging one tick for 1,000 targets: the daemon's per-tick work, timed.
//!
//! One [`Judge`] per target, built from the default checks of one
//! generated release (`ReplayChecks::for_replay(..).target`). Each tick,
//! every target's sample becomes an [`Observation`] and is assessed and
//! decided on. Generation, the checks and the observations are built
//! before the clock starts; two timings per tick: `assess + decide` over
//! ready observations, and `observe + assess + decide`.

use crate::generate::{BAKE_TICKS, Release};
use rollguard::backtest::checks::{ReplayChecks, SoFar};
use rollguard::config::PolicyRule;
use rollguard::judge::{self, Judge};
use rollguard::model::{DataImpact, Observation, TimeToFix};
use serde::Serialize;
use std::hint::black_box;
use std::time::Instant;

/// Passes over the bake window (judges reset between passes).
const PASSES: usize = 5;

/// Milliseconds per tick for all targets.
#[derive(Debug, Serialize)]
pub struct Throughput {
    /// Targets judged each tick.
    pub targets: usize,
    /// Ticks timed.
    pub ticks: usize,
    /// `assess + decide`: median ms per tick.
    pub assess_median_ms: f64,
    /// `assess + decide`: 90th percentile ms per tick.
    pub assess_p90_ms: f64,
    /// `observe + assess + decide`: median ms per tick.
    pub observe_median_ms: f64,
    /// `observe + assess + decide`: 90th percentile ms per tick.
    pub observe_p90_ms: f64,
}

/// Times `releases.len()` targets tick by tick over their bake windows.
pub fn measure(
    releases: &[&Release],
    rules: &[PolicyRule],
    time_to_fix: TimeToFix,
) -> Result<Throughput, String> {
    let checks = releases
        .iter()
        .map(|r| ReplayChecks::for_replay(&r.replay, time_to_fix))
        .collect::<Result<Vec<_>, _>>()?;
    let mut judges: Vec<Judge> = checks.iter().map(|c| Judge::new(&c.target)).collect();
    // observations[tick][target]; `so_far`: each target's counts since
    // its release, as the daemon's queries return them.
    let mut so_far = vec![SoFar::default(); releases.len()];
    let observations: Vec<Vec<Observation>> = (0..BAKE_TICKS)
        .map(|tick| {
            releases
                .iter()
                .zip(&checks)
                .zip(so_far.iter_mut())
                .map(|((r, c), counts)| {
                    let sample = &r.replay.samples[r.replay.release_index + tick];
                    c.observe(sample, tick as u64, counts)
                })
                .collect()
        })
        .collect();

    let mut assess = Vec::with_capacity(PASSES * BAKE_TICKS);
    let mut observe = Vec::with_capacity(PASSES * BAKE_TICKS);
    for _ in 0..PASSES {
        judges.iter_mut().for_each(Judge::reset);
        for obs in &observations {
            let start = Instant::now();
            for (judge, o) in judges.iter_mut().zip(obs) {
                let assessment = judge.assess(o, DataImpact::None, time_to_fix);
                black_box(judge::decide(rules, &assessment));
            }
            assess.push(start.elapsed().as_secs_f64() * 1e3);
        }
        judges.iter_mut().for_each(Judge::reset);
        let mut so_far = vec![SoFar::default(); releases.len()];
        for tick in 0..BAKE_TICKS {
            let start = Instant::now();
            let targets = judges.iter_mut().zip(releases).zip(&checks);
            for (((judge, r), c), counts) in targets.zip(so_far.iter_mut()) {
                let sample = &r.replay.samples[r.replay.release_index + tick];
                let o = c.observe(sample, tick as u64, counts);
                let assessment = judge.assess(&o, DataImpact::None, time_to_fix);
                black_box(judge::decide(rules, &assessment));
            }
            observe.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let q = |v: &[f64], p| crate::report::quantile(v, p).unwrap_or(f64::NAN);
    Ok(Throughput {
        targets: releases.len(),
        ticks: assess.len(),
        assess_median_ms: q(&assess, 0.5),
        assess_p90_ms: q(&assess, 0.9),
        observe_median_ms: q(&observe, 0.5),
        observe_p90_ms: q(&observe, 0.9),
    })
}
