//! The levels of a count metric without thresholds, relative to its
//! baseline rate (docs/judge.md, "Default severities").

use crate::config::Thresholds;
use crate::model::Severity;

/// One default level of a count metric without thresholds, relative to
/// the baseline rate `b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLevel {
    /// The severity reached at the level.
    pub severity: Severity,
    /// The ratio to the baseline rate.
    pub ratio: f64,
    /// The absolute increase over the baseline rate (0.01: one point).
    pub increase: f64,
    /// Whether either of ratio and increase reaches the level (`min`), or
    /// both are needed (`max`).
    pub either: bool,
}

/// For an `either` level, the ratio alone counts only from this share of
/// the absolute increase on: a baseline with no errors at all (or almost
/// none) must not make every error a regression.
const EITHER_FLOOR_SHARE: f64 = 0.1;

impl RateLevel {
    /// The level's rate for baseline rate `b`, at most 1.
    pub fn at(self, b: f64) -> f64 {
        let increase = b + self.increase;
        let level = if self.either {
            (self.ratio * b)
                .max(b + EITHER_FLOOR_SHARE * self.increase)
                .min(increase)
        } else {
            (self.ratio * b).max(increase)
        };
        level.min(1.0)
    }
}

/// Levels of a count metric without thresholds, as an on-call engineer
/// reads an error rate: ×2 or half a point more is worth a word (low: a
/// forward fix, named in a notification); ×3 or a point more is worth
/// acting on (medium: a human is asked; read from ×2.5 or +0.8 points, so
/// that a regression at ×3 or +1 point reaches it through the noise of
/// its estimate); ×5 *and* two points more, or ×10 *and* five points more,
/// fail enough users to roll back without asking (high, critical).
pub const DEFAULT_RATE_LEVELS: [RateLevel; 4] = [
    RateLevel {
        severity: Severity::Critical,
        ratio: 10.0,
        increase: 0.05,
        either: false,
    },
    RateLevel {
        severity: Severity::High,
        ratio: 5.0,
        increase: 0.02,
        either: false,
    },
    RateLevel {
        severity: Severity::Medium,
        ratio: 2.5,
        increase: 0.008,
        either: true,
    },
    RateLevel {
        severity: Severity::Low,
        ratio: 2.0,
        increase: 0.005,
        either: true,
    },
];

/// [`DEFAULT_RATE_LEVELS`] made absolute for a baseline rate, at most 1.
pub fn default_levels(baseline: f64) -> Thresholds {
    let level = |i: usize| Some(DEFAULT_RATE_LEVELS[i].at(baseline));
    Thresholds {
        critical: level(0),
        high: level(1),
        medium: level(2),
        low: level(3),
    }
}
