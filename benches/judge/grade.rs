//! Grading rollguard against what should happen (issue #12): each release
//! should be acted on, at least reported, or left alone (`Should`, from its
//! true rates), and a grade is the share that got it, per class and per
//! traffic band, for each baseline length; and, per class, how much of what
//! the better oracle catches within 150 s rollguard got by then.
//!
//! - `act`: rolled back or a human asked (`consider_rollback`);
//! - `report`: a forward fix named in a notification, or a human asked (a
//!   rollback without asking is more than it deserves, and does not count);
//! - `nothing`: no decision but `healthy` or `inconclusive`.
//!
//! Regressions are graded over the detectable ones (the label's oracle
//! catches them 99% of the time over the bake window); good and minor
//! releases over all.

use crate::generate::{EARLY_TICKS, Should, TICK_SECONDS};
use crate::report::{Action, Scored, Verdict};
use serde::Serialize;
use std::fmt::Write as _;

/// The first 150 s of the bake window, seconds.
const EARLY_SECONDS: f64 = EARLY_TICKS as f64 * TICK_SECONDS;

/// Traffic bands, requests per second: [low, high).
pub const BANDS: [(f64, f64); 4] = [(0.02, 0.2), (0.2, 2.0), (2.0, 20.0), (20.0, 200.0)];

/// Whether `verdict` is what `should` asks for.
pub fn got(should: Should, verdict: Verdict) -> bool {
    match should {
        Should::Act => verdict.acted(),
        Should::Report => matches!(
            verdict.action,
            Action::ForwardFix | Action::ConsiderRollback
        ),
        Should::Nothing => !verdict.flagged(),
    }
}

/// Whether judge `judge` got what `s` should get within 150 s.
fn got_early(s: &Scored, judge: usize) -> bool {
    let v = s.verdicts[judge];
    got(s.release.should, v) && v.seconds <= EARLY_SECONDS
}

/// Whether a release counts towards its grade: a regression only when
/// detectable.
fn graded(s: &Scored) -> bool {
    s.release.should == Should::Nothing || s.release.detectable
}

/// One grade: a group of releases at one baseline length.
#[derive(Debug, Serialize)]
pub struct Grade {
    /// Baseline, minutes.
    pub baseline_min: usize,
    /// Releases graded.
    pub graded: usize,
    /// % of them that got what they should.
    pub got_pct: f64,
    /// % rolled back.
    pub rollback_pct: f64,
    /// % sent to a human.
    pub consider_pct: f64,
    /// % reported as a forward fix.
    pub forward_fix_pct: f64,
    /// For regressions: the releases that got what they should within
    /// 150 s, over the better oracle's expected catches by then (all the
    /// group's releases, detectable or not).
    pub early_ratio: Option<f64>,
}

/// A row of grades: a class, or a traffic band and an expectation.
#[derive(Debug, Serialize)]
pub struct GradeRow {
    /// The class, or the band.
    pub group: String,
    /// What should happen, e.g. `act` or `report/act`.
    pub should: String,
    /// One grade per baseline length.
    pub grades: Vec<Grade>,
}

/// The grade of `rows` at `baseline_ticks`.
fn grade(rows: &[&Scored], baseline_ticks: usize) -> Grade {
    let at: Vec<&Scored> = rows
        .iter()
        .copied()
        .filter(|s| s.release.baseline_ticks == baseline_ticks)
        .collect();
    let counted: Vec<&Scored> = at.iter().copied().filter(|s| graded(s)).collect();
    let share = |f: &dyn Fn(&Scored) -> bool| {
        100.0 * counted.iter().filter(|s| f(s)).count() as f64 / counted.len().max(1) as f64
    };
    let action = |a: Action| move |s: &Scored| s.verdicts[0].action == a;
    let power: f64 = at.iter().filter_map(|s| s.release.early_power).sum();
    let early = at.iter().filter(|s| got_early(s, 0)).count();
    let regressions = at.iter().any(|s| s.release.should != Should::Nothing);
    Grade {
        baseline_min: baseline_ticks * TICK_SECONDS as usize / 60,
        graded: counted.len(),
        got_pct: share(&|s| got(s.release.should, s.verdicts[0])),
        rollback_pct: share(&action(Action::Rollback)),
        consider_pct: share(&action(Action::ConsiderRollback)),
        forward_fix_pct: share(&action(Action::ForwardFix)),
        early_ratio: (regressions && power > 0.0).then(|| early as f64 / power),
    }
}

/// The expectations of `rows`, e.g. `report/act`.
fn expectations(rows: &[&Scored]) -> String {
    let mut all: Vec<Should> = rows.iter().map(|s| s.release.should).collect();
    all.sort();
    all.dedup();
    all.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("/")
}

/// The baseline lengths present, in ticks, longest first.
fn baselines(scored: &[Scored]) -> Vec<usize> {
    let mut all: Vec<usize> = scored.iter().map(|s| s.release.baseline_ticks).collect();
    all.sort_unstable_by(|a, b| b.cmp(a));
    all.dedup();
    all
}

/// One row per class, in the order of `classes`.
pub fn by_class(scored: &[Scored], classes: &[&'static str]) -> Vec<GradeRow> {
    let baselines = baselines(scored);
    classes
        .iter()
        .map(|&class| {
            let rows: Vec<&Scored> = scored
                .iter()
                .filter(|s| s.release.scenario.name() == class)
                .collect();
            GradeRow {
                group: class.to_owned(),
                should: expectations(&rows),
                grades: baselines.iter().map(|&b| grade(&rows, b)).collect(),
            }
        })
        .collect()
}

/// One row per traffic band and expectation.
pub fn by_band(scored: &[Scored]) -> Vec<GradeRow> {
    let baselines = baselines(scored);
    let mut out = Vec::new();
    for (from, to) in BANDS {
        for should in [Should::Act, Should::Report, Should::Nothing] {
            let rows: Vec<&Scored> = scored
                .iter()
                .filter(|s| (from..to).contains(&s.release.rps) && s.release.should == should)
                .collect();
            out.push(GradeRow {
                group: format!("{from}-{to} rps"),
                should: should.as_str().to_owned(),
                grades: baselines.iter().map(|&b| grade(&rows, b)).collect(),
            });
        }
    }
    out
}

/// The overall ratio of what judge `judge` (in `JUDGES` order) got within
/// 150 s to what the better oracle catches by then, over every regression.
pub fn early_ratio(scored: &[Scored], judge: usize) -> Option<f64> {
    let regressions: Vec<&Scored> = scored
        .iter()
        .filter(|s| s.release.should != Should::Nothing)
        .collect();
    let power: f64 = regressions
        .iter()
        .filter_map(|s| s.release.early_power)
        .sum();
    let early = regressions.iter().filter(|s| got_early(s, judge)).count();
    (power > 0.0).then(|| early as f64 / power)
}

/// The rows as a table: per baseline, releases graded, % that got what
/// they should, % rolled back, asked, reported, and the 150 s ratio.
pub fn render(rows: &[GradeRow]) -> String {
    let mut out = String::new();
    let Some(first) = rows.first() else {
        return out;
    };
    let _ = write!(out, "{:<21} {:<14}", "", "");
    for g in &first.grades {
        let _ = write!(out, " | {:>38}", format!("baseline {} min", g.baseline_min));
    }
    out.push('\n');
    let _ = write!(out, "{:<21} {:<14}", "GROUP", "SHOULD");
    for _ in &first.grades {
        let _ = write!(
            out,
            " | {:>4} {:>6} {:>5} {:>5} {:>5} {:>6}",
            "N", "GOT%", "RB%", "ASK%", "FF%", "150s"
        );
    }
    out.push('\n');
    for r in rows {
        let _ = write!(out, "{:<21} {:<14}", r.group, r.should);
        for g in &r.grades {
            let ratio = g
                .early_ratio
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
            let _ = write!(
                out,
                " | {:>4} {:>6.1} {:>5.1} {:>5.1} {:>5.1} {:>6}",
                g.graded, g.got_pct, g.rollback_pct, g.consider_pct, g.forward_fix_pct, ratio
            );
        }
        out.push('\n');
    }
    out
}
