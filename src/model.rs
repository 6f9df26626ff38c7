//! Plain data shared by every part of rollguard: the words of the runbook
//! (severity, data impact, decision, mode) and nothing that does I/O.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad a release is, from the runbook: `none < low < medium < high < critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Nothing wrong was seen.
    None,
    /// Noticeable but harmless; a forward fix is the answer.
    Low,
    /// Users are affected; a human should consider rolling back.
    Medium,
    /// Users are clearly affected.
    High,
    /// The service is down or losing data.
    Critical,
}

impl Severity {
    /// Every severity, mildest first.
    pub const ALL: [Severity; 5] = [
        Severity::None,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lowercase name used in config files, logs and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rollback would do to data written by the new release:
/// `none < minor < major`. `major` (a schema migration, say) never rolls back
/// automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataImpact {
    /// Rolling back loses or breaks nothing.
    None,
    /// Some data needs a look after rolling back.
    Minor,
    /// Rolling back would break or lose data; prefer a forward fix.
    Major,
}

impl DataImpact {
    /// The lowercase name used in config files, logs and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            DataImpact::None => "none",
            DataImpact::Minor => "minor",
            DataImpact::Major => "major",
        }
    }
}

impl fmt::Display for DataImpact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the decision matrix says to do about a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Nothing is wrong.
    Healthy,
    /// Something is wrong, but fixing forward is better than rolling back.
    ForwardFix,
    /// A human should decide; rollguard asks for approval.
    ConsiderRollback,
    /// Roll back now.
    Rollback,
    /// rollguard cannot tell (missing data, monitoring down): never acts.
    Inconclusive,
}

impl Decision {
    /// The lowercase name used in logs, metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Healthy => "healthy",
            Decision::ForwardFix => "forward_fix",
            Decision::ConsiderRollback => "consider_rollback",
            Decision::Rollback => "rollback",
            Decision::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far rollguard may act on its own for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Rollbacks run by themselves; `consider_rollback` asks for approval.
    Enforce,
    /// Nothing runs; every notification says what would have run.
    #[default]
    Shadow,
    /// Every rollback waits for a human's approval.
    Approve,
}

impl Mode {
    /// The lowercase name used in config files, logs and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
            Mode::Approve => "approve",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_are_ordered_as_in_the_runbook() {
        let mut sorted = Severity::ALL;
        sorted.sort();
        assert_eq!(sorted, Severity::ALL);
        assert!(Severity::Critical > Severity::High);
        assert!(DataImpact::Major > DataImpact::Minor);
    }

    #[test]
    fn names_round_trip_through_serde() {
        for s in Severity::ALL {
            let json = serde_json::to_string(&s).expect("serialises");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        let d: Decision = serde_json::from_str("\"consider_rollback\"").expect("parses");
        assert_eq!(d, Decision::ConsiderRollback);
    }
}
