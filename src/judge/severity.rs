//! What one value of one metric says on its own, before confirmation: the
//! worst threshold it breaches, gated by `min_ratio` against the baseline.
//!
//! The rules, for `direction = "increase"` (mirror them for `decrease`):
//!
//! - A threshold is breached when `value >= threshold` (`<=` for decrease);
//!   the severity is the worst threshold breached.
//! - With `min_ratio` set and a positive baseline, the value must also be at
//!   least `min_ratio × baseline` (at most `baseline / min_ratio` for
//!   decrease), or nothing is breached: a high error rate that was just as
//!   high before the release is not this release's fault.
//! - With `min_ratio` set and no usable baseline (absent, zero, negative,
//!   not a number), the absolute thresholds alone decide, and the reason
//!   says so.
//! - A metric with `min_ratio` and no thresholds breaches as
//!   [`RATIO_ONLY_SEVERITY`]; without a positive baseline it cannot be
//!   judged at all, and is treated like missing data (`on_no_data`).
//! - A metric with neither is informational: it never breaches.

use crate::config::{Direction, MetricConfig};
use crate::model::Severity;

/// Severity of a breach of a metric that has `min_ratio` but no absolute
/// thresholds. `high`: "several times worse than before the release" is a
/// clear user-facing regression, yet not proof the service is down, which is
/// what `critical` means.
pub const RATIO_ONLY_SEVERITY: Severity = Severity::High;

/// One value of one metric, judged on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The worst level breached this tick; `none` when nothing is.
    pub severity: Severity,
    /// The threshold breached or, when none is, the mildest one not reached.
    pub threshold: Option<f64>,
    /// value / baseline, when the baseline is positive.
    pub ratio: Option<f64>,
    /// The judgement in one sentence, naming value, baseline and threshold.
    pub text: String,
}

/// The severity a metric's missing data counts as under
/// `on_no_data = "fail"`: its worst configured threshold, or
/// [`RATIO_ONLY_SEVERITY`] for a ratio-only metric, or `none` when it has
/// nothing to breach.
pub fn worst_configured(metric: &MetricConfig) -> Severity {
    match metric.thresholds.levels().first() {
        Some((severity, _)) => *severity,
        None if metric.min_ratio.is_some() => RATIO_ONLY_SEVERITY,
        None => Severity::None,
    }
}

/// Judges one finite `value` of `metric` against its thresholds and, with
/// `min_ratio`, its `baseline`.
///
/// `Err` carries the reason when the value cannot be judged: a ratio-only
/// metric without a positive baseline. The caller treats that like no data.
pub fn read_metric(
    metric: &MetricConfig,
    value: f64,
    baseline: Option<f64>,
) -> Result<Reading, String> {
    let name = &metric.name;
    let dir = metric.direction;
    let usable = baseline.filter(|b| b.is_finite() && *b > 0.0);
    let ratio = usable.map(|b| value / b);
    let levels = metric.thresholds.levels();
    let v = num(value);

    let Some(&(mildest, mildest_level)) = levels.last() else {
        // No absolute thresholds.
        let Some(min_ratio) = metric.min_ratio else {
            return Ok(Reading {
                severity: Severity::None,
                threshold: None,
                ratio,
                text: format!(
                    "{name} {v}{}: no thresholds or min_ratio, informational only",
                    baseline_note(baseline)
                ),
            });
        };
        let (Some(b), Some(r)) = (usable, ratio) else {
            return Err(format!(
                "{name} {v}: min_ratio {}x needs a positive baseline and the baseline is {}",
                num(min_ratio),
                baseline_word(baseline)
            ));
        };
        let ok = ratio_breached(dir, value, b, min_ratio);
        let severity = if ok {
            RATIO_ONLY_SEVERITY
        } else {
            Severity::None
        };
        let text = if ok {
            format!(
                "{name} {v} is {}x baseline {} ({} {}x, no absolute thresholds: counts as {})",
                num(r),
                num(b),
                ratio_sym(dir, true),
                num(ratio_bound(dir, min_ratio)),
                RATIO_ONLY_SEVERITY
            )
        } else {
            format!(
                "{name} {v} is {}x baseline {} (not {} {}x)",
                num(r),
                num(b),
                ratio_sym(dir, true),
                num(ratio_bound(dir, min_ratio))
            )
        };
        return Ok(Reading {
            severity,
            threshold: None,
            ratio,
            text,
        });
    };

    let Some(&(severity, level)) = levels.iter().find(|(_, t)| breaches(dir, value, *t)) else {
        return Ok(Reading {
            severity: Severity::None,
            threshold: Some(mildest_level),
            ratio,
            text: format!(
                "{name} {v} {} {mildest} threshold {}{}",
                level_sym(dir, false),
                num(mildest_level),
                baseline_note(baseline)
            ),
        });
    };
    let head = format!(
        "{name} {v} {} {severity} threshold {}",
        level_sym(dir, true),
        num(level)
    );
    let reading = |severity, text| Reading {
        severity,
        threshold: Some(level),
        ratio,
        text,
    };
    match (metric.min_ratio, usable, ratio) {
        (Some(min_ratio), Some(b), Some(r)) => {
            let bound = format!(
                "{} {}x",
                ratio_sym(dir, true),
                num(ratio_bound(dir, min_ratio))
            );
            if ratio_breached(dir, value, b, min_ratio) {
                Ok(reading(
                    severity,
                    format!("{head} and {}x baseline {} ({bound})", num(r), num(b)),
                ))
            } else {
                Ok(reading(
                    Severity::None,
                    format!(
                        "{head} but only {}x baseline {} (needs {bound}): not a breach",
                        num(r),
                        num(b)
                    ),
                ))
            }
        }
        (Some(min_ratio), _, _) => Ok(reading(
            severity,
            format!(
                "{head}; baseline {}, so min_ratio {}x not applied: absolute thresholds only",
                baseline_word(baseline),
                num(min_ratio)
            ),
        )),
        (None, _, _) => Ok(reading(
            severity,
            format!("{head}{}", baseline_note(baseline)),
        )),
    }
}

/// Whether `value` reaches `level` in the bad direction.
fn breaches(dir: Direction, value: f64, level: f64) -> bool {
    match dir {
        Direction::Increase => value >= level,
        Direction::Decrease => value <= level,
    }
}

/// Whether `value` is at least `min_ratio` times worse than `baseline`.
fn ratio_breached(dir: Direction, value: f64, baseline: f64, min_ratio: f64) -> bool {
    match dir {
        Direction::Increase => value >= min_ratio * baseline,
        Direction::Decrease => value <= baseline / min_ratio,
    }
}

/// The ratio value / baseline must reach to count, in the bad direction.
fn ratio_bound(dir: Direction, min_ratio: f64) -> f64 {
    match dir {
        Direction::Increase => min_ratio,
        Direction::Decrease => 1.0 / min_ratio,
    }
}

fn level_sym(dir: Direction, breached: bool) -> &'static str {
    match (dir, breached) {
        (Direction::Increase, true) => "≥",
        (Direction::Increase, false) => "<",
        (Direction::Decrease, true) => "≤",
        (Direction::Decrease, false) => ">",
    }
}

fn ratio_sym(dir: Direction, breached: bool) -> &'static str {
    level_sym(dir, breached)
}

fn baseline_word(baseline: Option<f64>) -> String {
    match baseline {
        None => "absent".to_owned(),
        Some(b) => num(b),
    }
}

fn baseline_note(baseline: Option<f64>) -> String {
    match baseline {
        None => " (no baseline)".to_owned(),
        Some(b) => format!(" (baseline {})", num(b)),
    }
}

/// A number for people: four significant digits, no trailing zeros.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == 0.0 {
        return "0".to_owned();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).clamp(0, 12) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::fixtures::metric;

    const SKETCH: &str =
        "thresholds = { critical = 0.05, high = 0.02, medium = 0.01, low = 0.005 }";

    fn read(m: &MetricConfig, v: f64, b: Option<f64>) -> Reading {
        read_metric(m, v, b).expect("judgeable")
    }

    #[test]
    fn worst_threshold_breached_wins() {
        let m = metric(SKETCH);
        assert_eq!(read(&m, 0.004, None).severity, Severity::None);
        assert_eq!(read(&m, 0.005, None).severity, Severity::Low);
        assert_eq!(read(&m, 0.015, None).severity, Severity::Medium);
        assert_eq!(read(&m, 0.02, None).severity, Severity::High);
        let r = read(&m, 0.9, None);
        assert_eq!((r.severity, r.threshold), (Severity::Critical, Some(0.05)));
        let r = read(&m, 0.001, Some(0.001));
        assert_eq!(r.threshold, Some(0.005), "the mildest level not reached");
        assert_eq!(
            r.text,
            "error_rate 0.001 < low threshold 0.005 (baseline 0.001)"
        );
    }

    #[test]
    fn min_ratio_gates_thresholds_when_a_baseline_exists() {
        let m = metric(&format!("{SKETCH}\nmin_ratio = 2.0"));
        let r = read(&m, 0.082, Some(0.01));
        assert_eq!(r.severity, Severity::Critical);
        assert_eq!(
            r.text,
            "error_rate 0.082 ≥ critical threshold 0.05 and 8.2x baseline 0.01 (≥ 2x)"
        );
        // As bad as before the release: not this release's doing.
        let r = read(&m, 0.03, Some(0.02));
        assert_eq!(r.severity, Severity::None);
        assert!(r.text.contains("only 1.5x baseline 0.02"), "{}", r.text);
        assert_eq!(r.threshold, Some(0.02));
    }

    #[test]
    fn min_ratio_without_baseline_uses_absolute_thresholds_and_says_so() {
        let m = metric(&format!("{SKETCH}\nmin_ratio = 2.0"));
        for baseline in [None, Some(0.0), Some(f64::NAN)] {
            let r = read(&m, 0.03, baseline);
            assert_eq!(r.severity, Severity::High);
            assert!(r.text.contains("absolute thresholds only"), "{}", r.text);
            assert_eq!(r.ratio, None);
        }
    }

    #[test]
    fn ratio_only_metrics_breach_as_high_and_need_a_baseline() {
        let m = metric("min_ratio = 2.0");
        assert_eq!(read(&m, 300.0, Some(100.0)).severity, RATIO_ONLY_SEVERITY);
        assert_eq!(read(&m, 150.0, Some(100.0)).severity, Severity::None);
        let err = read_metric(&m, 300.0, Some(0.0)).expect_err("no baseline");
        assert!(err.contains("needs a positive baseline"), "{err}");
        assert!(read_metric(&m, 300.0, None).is_err());
        assert_eq!(worst_configured(&m), RATIO_ONLY_SEVERITY);
        assert_eq!(worst_configured(&metric(SKETCH)), Severity::Critical);
        assert_eq!(worst_configured(&metric("")), Severity::None);
        assert_eq!(read(&metric(""), 5.0, None).severity, Severity::None);
    }

    #[test]
    fn decrease_direction_mirrors_everything() {
        let m = metric(
            "direction = \"decrease\"\nmin_ratio = 2.0\n\
             thresholds = { critical = 0.5, high = 0.9, low = 0.99 }",
        );
        assert_eq!(read(&m, 0.995, None).severity, Severity::None);
        assert_eq!(read(&m, 0.95, None).severity, Severity::Low);
        assert_eq!(read(&m, 0.4, None).severity, Severity::Critical);
        // With a baseline the value must also be at most half of it.
        assert_eq!(read(&m, 0.6, Some(1.0)).severity, Severity::None);
        let r = read(&m, 0.4, Some(1.0));
        assert_eq!(r.severity, Severity::Critical);
        assert_eq!(
            r.text,
            "error_rate 0.4 ≤ critical threshold 0.5 and 0.4x baseline 1 (≤ 0.5x)"
        );
    }

    #[test]
    fn a_worse_value_never_gives_a_milder_severity() {
        let increase = "thresholds = { critical = 0.05, high = 0.02, medium = 0.01, low = 0.005 }";
        let decrease = "direction = \"decrease\"\n\
                        thresholds = { critical = 0.01, high = 0.02, medium = 0.05, low = 0.08 }";
        let cases = [
            (increase, "min_ratio = 2.0", 1.0),
            (decrease, "direction = \"decrease\"\nmin_ratio = 2.0", -1.0),
        ];
        for (shape, ratio_only, worse) in cases {
            for ratio in ["", "min_ratio = 2.0", "min_ratio = 1.5"] {
                for baseline in [None, Some(0.0), Some(0.004), Some(0.03), Some(0.2)] {
                    let m = metric(&format!("{shape}\n{ratio}"));
                    let only_ratio = metric(ratio_only);
                    let mut previous = (Severity::None, Severity::None);
                    // Values from best to worst for this direction.
                    for i in 0..=1000 {
                        let step = f64::from(i) * 0.0001;
                        let value = if worse > 0.0 { step } else { 0.1 - step };
                        let s = read(&m, value, baseline).severity;
                        let r = read_metric(&only_ratio, value, baseline)
                            .map(|r| r.severity)
                            .unwrap_or(Severity::None);
                        assert!(
                            s >= previous.0 && r >= previous.1,
                            "{shape} {ratio} baseline {baseline:?}: {value} gave {s}/{r} \
                             after {previous:?}"
                        );
                        previous = (s, r);
                    }
                }
            }
        }
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(0.082), "0.082");
        assert_eq!(num(0.0820000001), "0.082");
        assert_eq!(num(0.082 / 0.01), "8.2");
        assert_eq!(num(1234.56), "1235");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(-0.25), "-0.25");
    }
}
