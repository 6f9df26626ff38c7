//! Synthetic benchmark of the release judge: how often does rollguard roll
//! back a good release, how many real regressions does it catch, and how
//! fast, next to a Flagger-style and a Kayenta-style judge on the same
//! releases?
//!
//! `cargo bench --bench judge -- [--seed S] [--releases N] [--baselines M,M] [--format table|json] [--drift D] [--targets T] [--no-throughput] [--explain] [--dump DIR]`
//!
//! - `--seed S` (default 1): the same seed gives the same releases.
//! - `--releases N` (default 500): releases per scenario class (20 classes)
//!   and baseline length.
//! - `--baselines M,M` (default `60,30`): the baseline lengths, minutes;
//!   every class is drawn at each.
//! - `--format`: aligned tables (default) or one JSON document.
//! - `--drift D` (default 0.1): slow wander of error rate and latency
//!   (log-scale standard deviation); 0 makes every tick independent.
//! - `--targets T` (default 1000): targets in the throughput section;
//!   `--no-throughput` skips it.
//! - `--explain`: on stderr, every detectable regression rollguard missed
//!   and every good release it alarmed on, with its reasons; `--dump DIR`
//!   also writes each as a replay file, for `rollguard backtest --replay`.
//!
//! Each release is a `rollguard::backtest::Replay` at a 10 s tick (1 h or
//! 30 min of baseline, then the 15 min bake window), labelled good, minor
//! or regression, and with what should happen to it: act, report or
//! nothing (`judge/scenario.rs`; `judge/generate.rs` says how releases are
//! drawn, `judge/label.rs` what "detectable" means). rollguard judges
//! through `backtest::run` alone, with the daemon's defaults: the
//! runbook's matrix and an unknown time to fix, so critical and high roll
//! back, medium asks a human and low is reported as a forward fix; the
//! reference judges are in `judge/flagger.rs` and `judge/kayenta.rs`. The
//! throughput section times one tick of 1,000 targets' judges
//! (`judge/throughput.rs`).
//!
//! Output: one row per judge (false rollbacks, false alarms, detection,
//! time to detect) with rollguard's targets; what is reachable within
//! 150 s, next to references that know more than any judge
//! (`judge/label.rs`); one row per scenario class (`judge/report.rs`), one
//! row per traffic decade (`judge/bands.rs`); rollguard graded against
//! what should happen, per class and per traffic band and baseline length,
//! with the 150 s ratio to the better oracle (`judge/grade.rs`); and the
//! throughput.

#[path = "judge/bands.rs"]
mod bands;
#[path = "judge/classes.rs"]
mod classes;
#[path = "judge/explain.rs"]
mod explain;
#[path = "judge/flagger.rs"]
mod flagger;
#[path = "judge/generate.rs"]
mod generate;
#[path = "judge/grade.rs"]
mod grade;
#[path = "judge/kayenta.rs"]
mod kayenta;
#[path = "judge/options.rs"]
mod options;
#[path = "judge/report.rs"]
mod report;
#[path = "judge/rng.rs"]
mod rng;
#[path = "judge/scenario.rs"]
mod scenario;
#[path = "judge/throughput.rs"]
mod throughput;

use generate::{Release, Scenario, TICK_SECONDS};
use options::{Format, Options, options};
use report::{Action, Scored, Verdict};
use rng::Rng;
use rollguard::backtest::{self, Settings};
use rollguard::model::Decision;
use serde::Serialize;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The bake window: the 90 ticks after the release.
const BAKE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The seed of release `index` of class `class`: independent of the order
/// and number of the others.
fn release_seed(seed: u64, class: usize, index: usize, baseline_ticks: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ ((class as u64) << 40)
        ^ ((baseline_ticks as u64) << 24)
        ^ index as u64
}

/// rollguard's verdict through the public backtest API, with its outcome
/// (reasons included, for `--explain`).
fn rollguard_verdict(
    release: &Release,
    settings: &Settings,
) -> Result<(Verdict, backtest::Outcome), String> {
    let outcome = backtest::run(&release.replay, settings)?;
    let (action, index) = match (outcome.decision, outcome.reported_at_index) {
        (Decision::Rollback, _) => (Action::Rollback, outcome.decided_at_index),
        (Decision::ConsiderRollback, _) => (Action::ConsiderRollback, outcome.decided_at_index),
        (_, Some(reported)) => (Action::ForwardFix, Some(reported)),
        _ => return Ok((Verdict::pass(), outcome)),
    };
    let index = index.unwrap_or(release.replay.release_index);
    let ticks = index.saturating_sub(release.replay.release_index) + 1;
    let verdict = Verdict {
        action,
        seconds: ticks as f64 * TICK_SECONDS,
    };
    Ok((verdict, outcome))
}

/// rollguard's target, for the JSON document.
#[derive(Debug, Serialize)]
struct Target {
    /// What is measured.
    what: &'static str,
    /// Whether it is met.
    met: bool,
    /// The measured value.
    value: String,
    /// The goal.
    goal: &'static str,
}

/// The JSON document.
#[derive(Debug, Serialize)]
struct Document {
    /// The seed.
    seed: u64,
    /// Releases per class.
    releases_per_class: usize,
    /// The drift.
    drift: f64,
    /// Detectable error regressions the label's oracle caught on their own
    /// data (a check of the label: at least 99% of them).
    oracle_caught: usize,
    /// Detectable error regressions.
    oracle_checked: usize,
    /// The better oracle's mean chance, %, of catching within 150 s the
    /// regressions that the label calls detectable by then (a check of that
    /// oracle: it should be at least 99).
    better_oracle_check_pct: f64,
    /// One row per judge.
    summaries: Vec<report::Summary>,
    /// rollguard's targets.
    targets: Vec<Target>,
    /// One row per scenario class.
    classes: Vec<classes::ClassRow>,
    /// One row per traffic decade.
    traffic: Vec<bands::Band>,
    /// rollguard graded against what should happen, per class.
    graded_classes: Vec<grade::GradeRow>,
    /// The same per traffic band and expectation.
    graded_traffic: Vec<grade::GradeRow>,
    /// The throughput section, unless skipped.
    throughput: Option<throughput::Throughput>,
}

/// Generates, judges, prints.
fn bench(options: &Options) -> Result<(), String> {
    let started = Instant::now();
    let releases: Vec<Release> = options
        .baselines
        .iter()
        .flat_map(|&baseline| {
            Scenario::ALL
                .iter()
                .enumerate()
                .flat_map(move |(class, &scenario)| {
                    (0..options.releases).map(move |i| {
                        let mut rng = Rng::new(release_seed(options.seed, class, i, baseline));
                        let minutes = baseline * TICK_SECONDS as usize / 60;
                        let name = format!("{}#{i}@{minutes}m", scenario.name());
                        generate::release(scenario, name, options.drift, baseline, &mut rng)
                    })
                })
        })
        .collect();
    let generated = started.elapsed();

    // The daemon's defaults: the runbook's matrix and an unknown time to
    // fix, so that critical and high roll back, medium asks a human and low
    // fixes forward.
    let settings = Settings {
        bake_window: BAKE_WINDOW,
        ..Settings::default()
    };
    let started = Instant::now();
    let scored = releases
        .iter()
        .map(|release| {
            let (verdict, outcome) = rollguard_verdict(release, &settings)?;
            Ok(Scored {
                release,
                verdicts: [
                    verdict,
                    flagger::judge(&release.replay),
                    kayenta::judge(&release.replay),
                ],
                outcome,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let judged = started.elapsed();

    let throughput = if options.targets == 0 {
        None
    } else {
        // Spread over every class (repeating releases when there are fewer).
        let some: Vec<&Release> = (0..options.targets)
            .map(|i| &releases[i * releases.len() / options.targets])
            .collect();
        Some(throughput::measure(
            &some,
            &settings.rules,
            settings.time_to_fix,
        )?)
    };

    if options.explain {
        explain::explain(&scored, options.dump.as_deref())?;
    }
    let (oracle_caught, oracle_checked) = oracle_check(&releases);
    let better_oracle_check_pct = better_oracle_check(&releases);
    let summaries = report::summaries(&scored);
    let targets = report::targets(&summaries[0]);
    let classes = classes::classes(&scored);
    let traffic = bands::bands(&scored);
    let names: Vec<&'static str> = Scenario::ALL.iter().map(|s| s.name()).collect();
    let graded_classes = grade::by_class(&scored, &names);
    let graded_traffic = grade::by_band(&scored);
    if options.format == Format::Json {
        let document = Document {
            seed: options.seed,
            releases_per_class: options.releases,
            drift: options.drift,
            oracle_caught,
            oracle_checked,
            better_oracle_check_pct,
            summaries,
            targets: targets
                .into_iter()
                .map(|(what, met, value, goal)| Target {
                    what,
                    met,
                    value,
                    goal,
                })
                .collect(),
            classes,
            traffic,
            graded_classes,
            graded_traffic,
            throughput,
        };
        let text = serde_json::to_string_pretty(&document).map_err(|e| e.to_string())?;
        println!("{text}");
        return Ok(());
    }

    println!(
        "judge bench: seed {}, {} releases per class x {} classes x {} baselines = {} releases \
         ({:?} ticks baseline + 90 ticks bake at {} s, drift {}); generated in {:.1} s, judged in {:.1} s",
        options.seed,
        options.releases,
        Scenario::ALL.len(),
        options.baselines.len(),
        releases.len(),
        options.baselines,
        TICK_SECONDS,
        options.drift,
        generated.as_secs_f64(),
        judged.as_secs_f64()
    );
    println!(
        "rollguard: backtest::run, the daemon's defaults: time_to_fix {}, bake 15m, default rules \
         (critical/high -> rollback, medium -> consider_rollback, low -> forward_fix)",
        settings.time_to_fix.as_config()
    );
    println!(
        "detectable: an oracle testing once, at the end of the window, at one-sided z = {za}, would \
         catch it 99% of the time (>= {n} extra errors or >= {n} requests, and a shift of >= {za} sd \
         without the regression + {zp} sd with it); a failed health endpoint always",
        n = generate::DETECTABLE_COUNT,
        za = generate::Z_ALPHA,
        zp = generate::Z_POWER
    );
    println!(
        "label check: that oracle catches {oracle_caught} of the {oracle_checked} detectable error \
         regressions on their own data ({:.1}%)",
        100.0 * oracle_caught as f64 / oracle_checked.max(1) as f64
    );
    println!(
        "better oracle check: over the regressions detectable within 150 s, the oracle of the \
         section on reachable times\n  catches on average {better_oracle_check_pct:.1}% by then \
         (it knows more than the label's oracle: at least 99%)\n"
    );
    print!("{}", report::render_summaries(&summaries));
    println!(
        "\nFALSE_RB%: good+minor rolled back; FALSE_AL%: good flagged at all (rolled back, consider_rollback \
         or forward_fix); DET%: regressions rolled back or consider_rollback; TTD: seconds from release, detected regressions\n"
    );
    println!("rollguard targets:");
    for (what, met, value, goal) in targets {
        let mark = if met { "met" } else { "NOT MET" };
        println!("  {what:<31} {value:>9}  (target {goal:<8})  {mark}");
    }
    let r = &summaries[0];
    println!(
        "\nTime to act, what is reachable within 150 s (the target: what rollguard gets right by then \
         over what the better oracle below\n  catches by then, over every regression, at least 0.95; \
         it is {}); of the regressions it acted on, rollguard acted on {:.1}% by then:",
        r.early_ratio
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.2}")),
        r.acted_early_pct
    );
    println!(
        "  - an oracle better than any judge (knowing the true base rate and when the regression \
         started, testing once,\n    exactly) would catch on average {:.1}% of them by then;",
        r.oracle_early_pct
    );
    println!(
        "  - {:.1}% of them hold too little evidence by then for the label's oracle to catch them \
         99% of the time; over\n    the others, rollguard's p90 is {} s;",
        r.late_only_pct,
        r.ttd_p90_early_s
            .map_or_else(|| "-".to_owned(), |s| format!("{s:.0}"))
    );
    println!(
        "  - of the {} error regressions among them, on their own data, the label's oracle (the \
         baseline's estimate, knowing\n    the start, testing once at 150 s) catches {:.1}%; an \
         e-process watching every tick that knew the true base rate {:.1}%;\n    rollguard acted \
         on {:.1}% by then.",
        r.errors_acted,
        r.errors_oracle_early_pct,
        r.errors_known_rate_early_pct,
        r.errors_early_pct
    );
    println!(
        "\nPer scenario class (ACT%: rolled back or consider_rollback; DET%: of the detectable; P50s, P90s: median and 90th percentile of seconds to act;\n150s%: acted on within 150 s; ORC%: what the oracle above would catch by then, on average):\n"
    );
    print!("{}", classes::render_classes(&classes));
    println!("\nBy traffic (rg: rollguard, flag: flagger-style, kay: kayenta-style):\n");
    print!("{}", bands::render(&traffic));
    println!(
        "\nrollguard graded against what should happen (act: rollback or consider_rollback; report: \
         forward_fix or consider_rollback;\nnothing: healthy or inconclusive), regressions over the \
         detectable ones; GOT%: share that got it; RB%, ASK%, FF%:\nrolled back, consider_rollback, \
         forward_fix; 150s: got it within 150 s over the better oracle's catches by then (all of the group):\n"
    );
    print!("{}", grade::render(&graded_classes));
    println!();
    print!("{}", grade::render(&graded_traffic));
    if let Some(t) = throughput {
        let mark = |ms: f64| if ms < 10.0 { "met" } else { "NOT MET" };
        println!(
            "\nThroughput: one tick for {} targets (Judge::assess + judge::decide), {} ticks timed:",
            t.targets, t.ticks
        );
        println!(
            "  assess + decide:            median {:.3} ms, p90 {:.3} ms  (target < 10 ms: {})",
            t.assess_median_ms,
            t.assess_p90_ms,
            mark(t.assess_p90_ms)
        );
        println!(
            "  observe + assess + decide:  median {:.3} ms, p90 {:.3} ms",
            t.observe_median_ms, t.observe_p90_ms
        );
    }
    Ok(())
}

/// How many detectable error regressions the label's oracle catches on
/// their own data, of how many.
fn oracle_check(releases: &[Release]) -> (usize, usize) {
    let checked: Vec<bool> = releases.iter().filter_map(|r| r.oracle).collect();
    (checked.iter().filter(|&&c| c).count(), checked.len())
}

/// The mean chance, %, that the better oracle (`Release::early_power`)
/// catches within 150 s a regression detectable by then.
fn better_oracle_check(releases: &[Release]) -> f64 {
    let powers: Vec<f64> = releases
        .iter()
        .filter(|r| r.detectable_early)
        .filter_map(|r| r.early_power)
        .collect();
    100.0 * powers.iter().sum::<f64>() / powers.len().max(1) as f64
}

fn main() -> ExitCode {
    let result = options().and_then(|options| bench(&options));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("judge bench: {why}");
            ExitCode::FAILURE
        }
    }
}
