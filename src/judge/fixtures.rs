//! Test objects built from TOML, the way operators write them, so that the
//! tests keep compiling when the config grows new keys with defaults.

use crate::config::{MetricConfig, TargetConfig};
use crate::model::{Assessment, DataImpact, MetricSample, ProbeResult, Severity, TimeToFix};
use std::time::Duration;

/// A metric named `error_rate` with the given extra keys.
pub fn metric(extra: &str) -> MetricConfig {
    let text = format!("name = \"error_rate\"\nquery = \"up\"\n{extra}");
    toml::from_str(&text).expect("metric fixture parses")
}

/// A target named `api` (version_url releases) with the given extra
/// sections (`[[probe]]`, `[[metric]]`, ...).
pub fn target(extra: &str) -> TargetConfig {
    let text = format!(
        "name = \"api\"\n[release]\nkind = \"version_url\"\nurl = \"http://127.0.0.1:1/version\"\n{extra}"
    );
    toml::from_str(&text).expect("target fixture parses")
}

/// A probe result: healthy with 200, or failed with 503.
pub fn probe(name: &str, ok: bool) -> ProbeResult {
    ProbeResult {
        name: name.to_owned(),
        ok,
        status: Some(if ok { 200 } else { 503 }),
        latency_ms: 12.0,
        error: None,
    }
}

/// A metric sample with a value and a baseline.
pub fn sample(name: &str, value: Option<f64>, baseline: Option<f64>) -> MetricSample {
    MetricSample {
        value,
        baseline,
        ..MetricSample::named(name)
    }
}

/// A metric sample whose query failed.
pub fn failed_query(name: &str) -> MetricSample {
    MetricSample {
        error: Some("connection refused".to_owned()),
        ..MetricSample::named(name)
    }
}

/// A known time to fix of `minutes`.
pub fn minutes(minutes: u64) -> TimeToFix {
    TimeToFix::Known(Duration::from_secs(minutes * 60))
}

/// An assessment with no evidence, for policy tests.
pub fn assessment(
    severity: Severity,
    data_impact: DataImpact,
    time_to_fix: TimeToFix,
) -> Assessment {
    Assessment {
        severity,
        data_impact,
        time_to_fix,
        inconclusive: false,
        evidence: Vec::new(),
    }
}
