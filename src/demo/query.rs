//! The demo's stand-in for Prometheus: `GET /api/v1/query` answering the one
//! expression the demo configuration uses, `demo_error_ratio[<window>]` (the
//! share of failed requests over the window ending at `time`), from the
//! service's own counters. It lets `rollguard demo` run the whole metric
//! path (query, pre-release baseline, thresholds, `min_ratio`) with nothing
//! but the binary. Real deployments point `[prometheus]` at Prometheus; the
//! tests and the benchmark use a real Prometheus scraping `/metrics`.

use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How much history the stand-in keeps.
const KEEP: Duration = Duration::from_secs(15 * 60);

/// Cumulative request counts over time.
#[derive(Debug, Default)]
pub struct History {
    /// (unix seconds, requests so far, failed requests so far), oldest first.
    points: VecDeque<(f64, u64, u64)>,
}

impl History {
    /// Records the totals at `now`.
    pub fn record(&mut self, now: SystemTime, total: u64, errors: u64) {
        let t = unix(now);
        self.points.push_back((t, total, errors));
        while self
            .points
            .front()
            .is_some_and(|(oldest, _, _)| t - oldest > KEEP.as_secs_f64())
        {
            self.points.pop_front();
        }
    }

    /// The share of failed requests in `(at - window, at]`; `None` without
    /// traffic in that window (Prometheus would return NaN).
    pub fn error_ratio(&self, at: f64, window: f64) -> Option<f64> {
        let end = self.points.iter().rev().find(|(t, _, _)| *t <= at)?;
        let start = self
            .points
            .iter()
            .rev()
            .find(|(t, _, _)| *t <= at - window)
            .or_else(|| self.points.front())?;
        let requests = end.1.saturating_sub(start.1);
        let errors = end.2.saturating_sub(start.2);
        (requests > 0).then(|| errors as f64 / requests as f64)
    }
}

/// The parameters of an instant query.
#[derive(Debug, Deserialize)]
pub struct QueryParams {
    /// The expression.
    query: String,
    /// Evaluation time, unix seconds (now when absent).
    #[serde(default)]
    time: Option<String>,
}

/// Answers an instant query in Prometheus' JSON format.
pub fn answer(history: &History, params: &QueryParams) -> (u16, Value) {
    let expression = params.query.trim();
    let window = expression
        .strip_prefix("demo_error_ratio[")
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|w| humantime::parse_duration(w).ok());
    let Some(window) = window else {
        return (
            400,
            json!({
                "status": "error",
                "errorType": "bad_data",
                "error": format!("the demo answers only demo_error_ratio[<window>], not {expression:?}"),
            }),
        );
    };
    let at = params
        .time
        .as_deref()
        .and_then(|t| t.parse::<f64>().ok())
        .unwrap_or_else(|| unix(SystemTime::now()));
    let result = match history.error_ratio(at, window.as_secs_f64()) {
        Some(ratio) => vec![json!({"metric": {}, "value": [at, ratio.to_string()]})],
        None => Vec::new(),
    };
    (
        200,
        json!({"status": "success", "data": {"resultType": "vector", "result": result}}),
    )
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_over_a_window() {
        let mut h = History::default();
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        for i in 0..=20u64 {
            // 10 requests a second; errors start at 10 s: 5 a second.
            let errors = i.saturating_sub(10) * 5;
            h.record(t0 + Duration::from_secs(i), i * 10, errors);
        }
        assert_eq!(h.error_ratio(1010.0, 5.0), Some(0.0));
        assert_eq!(h.error_ratio(1020.0, 5.0), Some(0.5));
        assert_eq!(h.error_ratio(1020.0, 10.0), Some(0.5));
        assert_eq!(h.error_ratio(1020.0, 20.0), Some(0.25));
        assert_eq!(h.error_ratio(900.0, 5.0), None);
    }

    #[test]
    fn answers_prometheus_json() {
        let mut h = History::default();
        h.record(UNIX_EPOCH + Duration::from_secs(10), 0, 0);
        h.record(UNIX_EPOCH + Duration::from_secs(20), 100, 10);
        let params = QueryParams {
            query: "demo_error_ratio[10s]".into(),
            time: Some("20".into()),
        };
        let (status, body) = answer(&h, &params);
        assert_eq!(status, 200);
        assert_eq!(body["data"]["result"][0]["value"][1], "0.1");
        let bad = QueryParams {
            query: "up".into(),
            time: None,
        };
        assert_eq!(answer(&h, &bad).0, 400);
    }
}
