//! The replay file of `rollguard backtest --replay`: one recorded release,
//! sample by sample, as DESIGN.md specifies it.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// One recorded release: samples before it (the baseline) and after it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Replay {
    /// The release's name, echoed in the output so results can be matched
    /// to files.
    pub name: String,
    /// Seconds between samples: how many samples the bake window spans.
    /// 10 s (the daemon's default interval) when absent.
    #[serde(default)]
    pub interval_seconds: Option<f64>,
    /// Index of the first sample after the release; the samples before it
    /// are the baseline.
    pub release_index: usize,
    /// One sample per tick, oldest first.
    pub samples: Vec<Sample>,
}

/// What one tick measured. Every field may be absent or null: no data (a
/// scrape gap or a monitoring outage), never a failure by itself.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize, Serialize)]
pub struct Sample {
    /// Requests served during the tick.
    #[serde(default)]
    pub requests: Option<f64>,
    /// Of those, requests that failed.
    #[serde(default)]
    pub errors: Option<f64>,
    /// Median latency over the tick, milliseconds.
    #[serde(default)]
    pub p50_ms: Option<f64>,
    /// 99th percentile latency over the tick, milliseconds.
    #[serde(default)]
    pub p99_ms: Option<f64>,
    /// The health endpoint's answer: 1 healthy, anything below is a failed
    /// probe.
    #[serde(default)]
    pub health: Option<f64>,
    /// A canary release: the stable version's requests during the tick,
    /// served beside the canary's `requests`. With them anywhere, the
    /// error rate is judged against the stable's, tick by tick, and the
    /// samples before `release_index` are not its baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_requests: Option<f64>,
    /// Of the stable's requests, those that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_errors: Option<f64>,
}

impl Sample {
    /// `(requests, errors)` when both are present, finite, non-negative and
    /// `errors <= requests`; anything else is no data.
    pub fn counts(&self) -> Option<(f64, f64)> {
        let (n, k) = (self.requests?, self.errors?);
        let sane = n.is_finite() && k.is_finite() && n >= 0.0 && k >= 0.0 && k <= n;
        sane.then_some((n, k))
    }

    /// The stable version's `(requests, errors)`, as [`Sample::counts`].
    pub fn stable_counts(&self) -> Option<(f64, f64)> {
        Sample {
            requests: self.stable_requests,
            errors: self.stable_errors,
            ..Sample::default()
        }
        .counts()
    }

    /// The p99 latency when it is a usable number.
    pub fn p99(&self) -> Option<f64> {
        self.p99_ms.filter(|v| v.is_finite() && *v >= 0.0)
    }

    /// The health value when it is a usable number.
    pub fn health(&self) -> Option<f64> {
        self.health.filter(|v| v.is_finite())
    }
}

/// Why a replay file cannot be judged.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file cannot be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a replay (bad JSON, a missing or mistyped field).
    #[error("{file}: not a replay file: {message}")]
    Parse {
        /// The file.
        file: String,
        /// serde's message, with the JSON path of the offending field.
        message: String,
    },
    /// The file parses but makes no sense.
    #[error("{file}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
}

impl Replay {
    /// Parses and checks a replay; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Replay, ReplayError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let replay: Replay =
            serde_path_to_error::deserialize(&mut de).map_err(|e| ReplayError::Parse {
                file: origin.to_owned(),
                message: e.to_string(),
            })?;
        let invalid = |message: String| ReplayError::Invalid {
            file: origin.to_owned(),
            message,
        };
        if replay.release_index > replay.samples.len() {
            return Err(invalid(format!(
                "release_index {} is past the last sample ({} samples)",
                replay.release_index,
                replay.samples.len()
            )));
        }
        if let Some(s) = replay.interval_seconds
            && !(s.is_finite() && s > 0.0)
        {
            return Err(invalid(format!(
                "interval_seconds must be a positive number, not {s}"
            )));
        }
        Ok(replay)
    }

    /// Reads and parses the replay file at `path`.
    pub fn load(path: &Path) -> Result<Replay, ReplayError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Read {
            file: file.clone(),
            source,
        })?;
        Replay::parse(&text, &file)
    }

    /// The samples before the release.
    pub fn baseline(&self) -> &[Sample] {
        &self.samples[..self.release_index.min(self.samples.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_and_absent_fields_are_no_data() {
        let r = Replay::parse(
            r#"{"name":"r","release_index":1,"samples":[{"requests":10,"errors":null},{}]}"#,
            "t",
        )
        .expect("parses");
        assert_eq!(r.interval_seconds, None);
        assert_eq!(r.samples[0].counts(), None);
        assert_eq!(r.samples[1], Sample::default());
        assert_eq!(r.baseline().len(), 1);
    }

    #[test]
    fn nonsense_is_refused_with_the_place() {
        let e = Replay::parse(r#"{"name":"r","release_index":3,"samples":[]}"#, "f.json")
            .expect_err("index past the end");
        assert!(e.to_string().contains("past the last sample"), "{e}");
        let e = Replay::parse(
            r#"{"name":"r","release_index":0,"samples":[{"errors":"x"}]}"#,
            "f.json",
        )
        .expect_err("bad type");
        assert!(e.to_string().contains("samples[0].errors"), "{e}");
        let bad = Sample {
            requests: Some(5.0),
            errors: Some(6.0),
            ..Sample::default()
        };
        assert_eq!(bad.counts(), None, "more errors than requests is no data");
    }
}
