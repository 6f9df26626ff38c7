//! The third input of the decision matrix: how long a forward fix will take.
//!
//! Nobody has promised a quick fix until someone says so: the default is
//! [`TimeToFix::Unknown`], which is longer than any rule's limit. A duration
//! in the config (`time_to_fix = "20m"`) or at run time (`rollguard eta
//! TARGET 20m`) makes it [`TimeToFix::Known`].

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// An estimate of the time to a forward fix, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimeToFix {
    /// Nobody has estimated it: treated as longer than any limit, so that a
    /// rule guarded by `time_to_fix_over` still matches.
    #[default]
    Unknown,
    /// An engineer's estimate.
    Known(Duration),
}

impl TimeToFix {
    /// Whether the fix takes strictly longer than `limit` (unknown always
    /// does: nobody has promised otherwise).
    pub fn is_over(self, limit: Duration) -> bool {
        match self {
            TimeToFix::Unknown => true,
            TimeToFix::Known(d) => d > limit,
        }
    }

    /// `unknown` or a duration like `1h 30m`, as config files write it.
    pub fn as_config(self) -> String {
        match self {
            TimeToFix::Unknown => "unknown".to_owned(),
            TimeToFix::Known(d) => humantime::format_duration(d).to_string(),
        }
    }
}

impl From<Duration> for TimeToFix {
    fn from(d: Duration) -> TimeToFix {
        TimeToFix::Known(d)
    }
}

impl std::str::FromStr for TimeToFix {
    type Err = String;

    fn from_str(s: &str) -> Result<TimeToFix, String> {
        if s.trim() == "unknown" {
            return Ok(TimeToFix::Unknown);
        }
        humantime::parse_duration(s)
            .map(TimeToFix::Known)
            .map_err(|e| format!("{e}; use a duration like \"20m\" or \"unknown\""))
    }
}

/// In messages: `20m`, or `unknown (set it with `rollguard eta`)` so that
/// whoever reads the decision knows how to change it.
impl fmt::Display for TimeToFix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeToFix::Unknown => f.write_str("unknown (set it with `rollguard eta`)"),
            TimeToFix::Known(d) => write!(f, "{}", humantime::format_duration(*d)),
        }
    }
}

impl Serialize for TimeToFix {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.as_config())
    }
}

impl<'de> Deserialize<'de> for TimeToFix {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TimeToFix, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_is_over_any_limit_and_known_is_strictly_over() {
        assert!(TimeToFix::Unknown.is_over(Duration::MAX));
        let hour = TimeToFix::Known(Duration::from_secs(3600));
        assert!(hour.is_over(Duration::from_secs(3599)));
        assert!(!hour.is_over(Duration::from_secs(3600)));
    }

    #[test]
    fn reads_and_writes_as_config_files_do() {
        for (text, value) in [
            ("unknown", TimeToFix::Unknown),
            ("20m", TimeToFix::Known(Duration::from_secs(1200))),
            ("1h 30m", TimeToFix::Known(Duration::from_secs(5400))),
        ] {
            assert_eq!(text.parse::<TimeToFix>(), Ok(value));
            let json = serde_json::to_string(&value).expect("serialises");
            assert_eq!(json, format!("{text:?}"));
            assert_eq!(serde_json::from_str::<TimeToFix>(&json).ok(), Some(value));
        }
        assert!("soon".parse::<TimeToFix>().is_err());
        assert_eq!(
            TimeToFix::Unknown.to_string(),
            "unknown (set it with `rollguard eta`)"
        );
    }
}
