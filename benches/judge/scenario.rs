//! The bench's scenario classes, their labels and what an on-call engineer
//! expects a judge to do about each (issue #12's table).

/// What a release is, for scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// Nothing changed: any rollback is a false one.
    Good,
    /// A change too small to be worth a rollback.
    Minor,
    /// A real regression.
    Regression,
}

/// What should happen to a release, by the table: act (rollback or
/// a human asked), report (a forward fix named in a notification), or
/// nothing at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Should {
    /// Never flagged: good releases, errors ×1.2, p99 +10 %.
    Nothing,
    /// At least reported: errors ×2, p99 ×1.5.
    Report,
    /// Acted on: errors ×3 or +1 point, p99 ×2, health down, burns to ×4.
    Act,
}

impl Should {
    /// Its name in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Should::Nothing => "nothing",
            Should::Report => "report",
            Should::Act => "act",
        }
    }
}

/// The scenario classes, one row each in the per-class table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// No change.
    Steady,
    /// Isolated ticks without any data, before and after the release.
    ScrapeGaps,
    /// A 3–8 minute monitoring outage early in the bake window.
    Outage,
    /// 1–2 ticks of high errors and/or latency, then back to normal.
    Spike,
    /// Error rate ×1.1–1.3.
    MinorErrors,
    /// Latency +5–15 %.
    MinorLatency,
    /// Error rate ×2, no absolute floor: report.
    Errors2,
    /// Error rate max(×2, +0.5 pts): report, or act where that is ×3 or
    /// +1 point.
    Errors2Floor,
    /// Error rate max(×3, +1.5 pts): act.
    Errors3,
    /// Error rate ×5, no absolute floor: act.
    Errors5,
    /// Error rate max(×5, +2 pts): act.
    Errors5Floor,
    /// Error rate max(×10, +3 pts): act.
    Errors10,
    /// Error rate max(×50, +10 pts), at most 95 %: act.
    Errors50,
    /// Latency ×1.5: report.
    Latency1_5,
    /// Latency ×2: act.
    Latency2,
    /// Latency max(×3, +400 ms): act.
    Latency3,
    /// Latency max(×10, +2500 ms): act.
    Latency10,
    /// The health endpoint fails from the release on.
    HealthDown,
    /// Error rate climbing linearly over 3–10 min to ×4, no floor: act.
    SlowBurn4,
    /// Error rate climbing linearly over 3–10 min to max(×12, +6 pts): act.
    SlowBurn,
    /// A canary (10–50 % of the traffic) beside the stable version, as
    /// good as it.
    CanarySteady,
    /// A canary at max(×3, +1.5 pts) of the stable's rate: act.
    CanaryErrors3,
}

impl Scenario {
    /// Every class, in report order.
    /// The canary classes come last, so that the other classes' seeds (by
    /// their index here) stay what they were.
    pub const ALL: [Scenario; 22] = [
        Scenario::Steady,
        Scenario::ScrapeGaps,
        Scenario::Outage,
        Scenario::Spike,
        Scenario::MinorErrors,
        Scenario::MinorLatency,
        Scenario::Errors2,
        Scenario::Errors2Floor,
        Scenario::Errors3,
        Scenario::Errors5,
        Scenario::Errors5Floor,
        Scenario::Errors10,
        Scenario::Errors50,
        Scenario::Latency1_5,
        Scenario::Latency2,
        Scenario::Latency3,
        Scenario::Latency10,
        Scenario::HealthDown,
        Scenario::SlowBurn4,
        Scenario::SlowBurn,
        Scenario::CanarySteady,
        Scenario::CanaryErrors3,
    ];

    /// The class's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Steady => "good/steady",
            Scenario::ScrapeGaps => "good/scrape_gaps",
            Scenario::Outage => "good/outage",
            Scenario::Spike => "good/spike",
            Scenario::MinorErrors => "minor/errors_x1.2",
            Scenario::MinorLatency => "minor/latency_+10%",
            Scenario::Errors2 => "regr/errors_x2",
            Scenario::Errors2Floor => "regr/errors_x2_floor",
            Scenario::Errors3 => "regr/errors_x3",
            Scenario::Errors5 => "regr/errors_x5",
            Scenario::Errors5Floor => "regr/errors_x5_floor",
            Scenario::Errors10 => "regr/errors_x10",
            Scenario::Errors50 => "regr/errors_x50",
            Scenario::Latency1_5 => "regr/latency_x1.5",
            Scenario::Latency2 => "regr/latency_x2",
            Scenario::Latency3 => "regr/latency_x3",
            Scenario::Latency10 => "regr/latency_x10",
            Scenario::HealthDown => "regr/health_down",
            Scenario::SlowBurn4 => "regr/slow_burn_x4",
            Scenario::SlowBurn => "regr/slow_burn",
            Scenario::CanarySteady => "good/canary",
            Scenario::CanaryErrors3 => "regr/canary_x3",
        }
    }

    /// The class's label.
    pub fn label(self) -> Label {
        match self {
            Scenario::Steady
            | Scenario::ScrapeGaps
            | Scenario::Outage
            | Scenario::Spike
            | Scenario::CanarySteady => Label::Good,
            Scenario::MinorErrors | Scenario::MinorLatency => Label::Minor,
            _ => Label::Regression,
        }
    }
}
