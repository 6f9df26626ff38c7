//! Synthetic traffic: the counters a real service would keep, and their
//! rendering in Prometheus' text format. The random source is
//! [`crate::numeric::SplitMix64`].

use crate::numeric::SplitMix64;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Upper bounds (seconds) of the latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How the synthetic requests of one moment look.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrafficShape {
    /// Requests per second.
    pub rate: f64,
    /// Share of the requests that fail with a 500, 0..1.
    pub error_ratio: f64,
    /// Typical latency; each request takes 0.5 to 1.5 times this.
    pub latency_ms: f64,
    /// The status code failed requests are counted under: 500, or
    /// another one to play a release that relabels its errors.
    pub error_code: u16,
}

/// Latency histogram of one version.
#[derive(Debug, Clone, Default, PartialEq)]
struct Histogram {
    /// Cumulative counts per bucket of [`LATENCY_BUCKETS`].
    buckets: [u64; LATENCY_BUCKETS.len()],
    /// Sum of all latencies, seconds.
    sum: f64,
    /// Number of requests.
    count: u64,
}

/// The counters a real service exports, per version: what Prometheus
/// scrapes from `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Requests per (version, status code): 200, or the shape's
    /// `error_code`.
    requests: BTreeMap<(String, u16), u64>,
    /// Latency per version.
    latency: BTreeMap<String, Histogram>,
    /// Fractional requests carried to the next step, so that a rate of 5/s
    /// in 100 ms steps adds 5 a second and not 0.
    carry: f64,
}

impl Counters {
    /// Adds the requests of `step_seconds` of traffic shaped like `shape`
    /// to `version`'s counters.
    pub fn add_traffic(
        &mut self,
        version: &str,
        shape: TrafficShape,
        step_seconds: f64,
        rng: &mut SplitMix64,
    ) {
        let wanted = shape.rate.max(0.0) * step_seconds + self.carry;
        let n = wanted.floor();
        self.carry = wanted - n;
        let error_ratio = shape.error_ratio.clamp(0.0, 1.0);
        let histogram = self.latency.entry(version.to_owned()).or_default();
        let (mut ok, mut failed) = (0u64, 0u64);
        for _ in 0..n as u64 {
            if rng.next_f64() < error_ratio {
                failed += 1;
            } else {
                ok += 1;
            }
            let seconds = shape.latency_ms.max(0.0) * (0.5 + rng.next_f64()) / 1000.0;
            for (bucket, le) in histogram.buckets.iter_mut().zip(LATENCY_BUCKETS) {
                if seconds <= le {
                    *bucket += 1;
                }
            }
            histogram.sum += seconds;
            histogram.count += 1;
        }
        // Both codes exist from the first step on, so that a ratio of
        // errors is 0 rather than "no data" while nothing fails.
        *self.requests.entry((version.to_owned(), 200)).or_default() += ok;
        *self
            .requests
            .entry((version.to_owned(), shape.error_code))
            .or_default() += failed;
    }

    /// All requests and all failed (5xx) requests so far, every version.
    pub fn totals(&self) -> (u64, u64) {
        self.requests
            .iter()
            .fold((0, 0), |(total, errors), ((_, code), n)| {
                (total + n, if *code >= 500 { errors + n } else { errors })
            })
    }

    /// Requests counted for `version` with status `code`.
    pub fn requests(&self, version: &str, code: u16) -> u64 {
        self.requests
            .get(&(version.to_owned(), code))
            .copied()
            .unwrap_or(0)
    }

    /// The counters in Prometheus' text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP demo_http_requests_total Requests served, by version and status code.\n",
        );
        out.push_str("# TYPE demo_http_requests_total counter\n");
        for ((version, code), count) in &self.requests {
            let version = escape(version);
            let _ = writeln!(
                out,
                "demo_http_requests_total{{version=\"{version}\",code=\"{code}\"}} {count}"
            );
        }
        out.push_str("# HELP demo_http_request_duration_seconds Request latency, by version.\n");
        out.push_str("# TYPE demo_http_request_duration_seconds histogram\n");
        for (version, histogram) in &self.latency {
            let version = escape(version);
            let name = "demo_http_request_duration_seconds";
            for (le, count) in LATENCY_BUCKETS.iter().zip(histogram.buckets) {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{version=\"{version}\",le=\"{le}\"}} {count}"
                );
            }
            let count = histogram.count;
            let _ = writeln!(
                out,
                "{name}_bucket{{version=\"{version}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(out, "{name}_sum{{version=\"{version}\"}} {}", histogram.sum);
            let _ = writeln!(out, "{name}_count{{version=\"{version}\"}} {count}");
        }
        out
    }
}

/// A label value escaped as the text format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_follows_the_shape() {
        let mut counters = Counters::default();
        let mut rng = SplitMix64::new(7);
        let shape = TrafficShape {
            rate: 1000.0,
            error_ratio: 0.1,
            latency_ms: 40.0,
            error_code: 500,
        };
        for _ in 0..100 {
            counters.add_traffic("v1", shape, 0.1, &mut rng);
        }
        let (ok, failed) = (counters.requests("v1", 200), counters.requests("v1", 500));
        assert_eq!(ok + failed, 10_000);
        assert!((900..1100).contains(&failed), "{failed} failures");
        let text = counters.render();
        assert!(text.contains("demo_http_requests_total{version=\"v1\",code=\"500\"}"));
        assert!(text.contains("le=\"0.01\"} 0\n"), "20..60 ms only:\n{text}");
        assert!(text.contains("le=\"0.1\"} 10000\n"), "{text}");
        assert!(text.contains("demo_http_request_duration_seconds_count{version=\"v1\"} 10000"));
    }

    #[test]
    fn slow_rates_carry_fractions_and_labels_are_escaped() {
        let mut counters = Counters::default();
        let mut rng = SplitMix64::new(1);
        let shape = TrafficShape {
            rate: 5.0,
            error_ratio: 0.0,
            latency_ms: 10.0,
            error_code: 500,
        };
        for _ in 0..10 {
            counters.add_traffic("v\"2", shape, 0.1, &mut rng);
        }
        assert_eq!(counters.requests("v\"2", 200), 5);
        assert!(
            counters
                .render()
                .contains("version=\"v\\\"2\",code=\"500\"} 0")
        );
    }
}
