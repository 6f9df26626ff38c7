//! A real Prometheus (`/usr/bin/prometheus`, Debian package `prometheus`)
//! as a child process, scraping the test's services every second.

#![allow(dead_code)]

use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the Debian package installs the server.
const PROMETHEUS: &str = "/usr/bin/prometheus";

/// How long start-up, readiness and the first scrapes may take.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(100);

/// A running Prometheus with its own port, configuration and storage.
pub struct PrometheusHarness {
    /// The port it listens on, kept across restarts.
    port: u16,
    /// Configuration, storage and log; removed on drop.
    dir: tempfile::TempDir,
    /// The server, while it runs.
    child: Option<Child>,
    /// How many scrape targets must be up before it counts as started.
    targets: usize,
    /// For readiness polls and test queries.
    http: reqwest::Client,
    /// From spawning to `/-/ready` answering 200 (last start).
    pub ready_after: Duration,
    /// From spawning to every target being scraped as up (last start).
    pub data_after: Duration,
}

impl PrometheusHarness {
    /// Starts Prometheus scraping `scrape_targets` (job `demo`) every second
    /// and returns once every target has been scraped as up.
    pub async fn start(scrape_targets: &[SocketAddr]) -> PrometheusHarness {
        assert!(
            std::path::Path::new(PROMETHEUS).exists(),
            "{PROMETHEUS} is missing: run scripts/test, which installs the Debian package `prometheus`"
        );
        let dir = tempfile::tempdir().expect("temporary directory");
        let targets: Vec<String> = scrape_targets.iter().map(|a| format!("'{a}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write prometheus.yml");
        PrometheusHarness::launch_in(dir, scrape_targets.len()).await
    }

    /// Starts the server on a free port over `dir` (its configuration and
    /// storage), waiting for `targets` scrape targets to be up.
    async fn launch_in(dir: tempfile::TempDir, targets: usize) -> PrometheusHarness {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut harness = PrometheusHarness {
            port,
            dir,
            child: None,
            targets,
            http: reqwest::Client::new(),
            ready_after: Duration::ZERO,
            data_after: Duration::ZERO,
        };
        harness.launch().await;
        harness
    }

    /// Starts Prometheus over `history` (OpenMetrics text with timestamps,
    /// ending in `# EOF`), loaded into its storage with
    /// `promtool tsdb create-blocks-from openmetrics`: a recorded past, and
    /// nothing scraped.
    pub async fn start_with_history(history: &str) -> PrometheusHarness {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(
            dir.path().join("prometheus.yml"),
            "global:\n  scrape_interval: 1s\n",
        )
        .expect("write prometheus.yml");
        let input = dir.path().join("history.om");
        std::fs::write(&input, history).expect("write history");
        let data = dir.path().join("data");
        let out = Command::new("/usr/bin/promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(&data)
            .output()
            .expect("run promtool (Debian package prometheus)");
        assert!(
            out.status.success(),
            "promtool: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PrometheusHarness::launch_in(dir, 0).await
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server (an outage); `restart` brings it back.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and storage, and waits
    /// until every target has been scraped by the new process.
    pub async fn restart(&mut self) {
        self.stop();
        self.launch().await;
    }

    /// Runs an instant query now: `Ok(None)` for an empty result, the value
    /// of the first sample otherwise (NaN included).
    pub async fn query(&self, promql: &str) -> Result<Option<f64>, String> {
        let response = self
            .http
            .get(format!("{}/api/v1/query", self.url()))
            .query(&[("query", promql)])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(body["error"].to_string());
        }
        let result = &body["data"]["result"];
        let value = match body["data"]["resultType"].as_str() {
            Some("scalar") => &result[1],
            _ => &result[0]["value"][1],
        };
        Ok(value.as_str().and_then(|v| v.parse().ok()))
    }

    /// Polls `promql` until `predicate` holds for its result, and returns
    /// that result; panics with the last result after `timeout`.
    pub async fn wait_for(
        &self,
        promql: &str,
        predicate: impl Fn(Option<f64>) -> bool,
        timeout: Duration,
    ) -> Option<f64> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.query(promql).await;
            if let Ok(value) = last
                && predicate(value)
            {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "`{promql}` did not reach the expected value in {timeout:?}; last: {last:?}\n{}",
                self.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Spawns the server and waits for readiness and for every target to
    /// be up.
    async fn launch(&mut self) {
        let log = std::fs::File::create(self.log_path()).expect("create prometheus.log");
        let started = Instant::now();
        let child = Command::new(PROMETHEUS)
            .arg(format!(
                "--config.file={}",
                self.dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file handle"))
            .stderr(log)
            .spawn()
            .expect("spawn /usr/bin/prometheus");
        self.child = Some(child);
        let deadline = started + START_TIMEOUT;
        let ready = format!("{}/-/ready", self.url());
        loop {
            let answer = self.http.get(&ready).send().await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none(),
                "Prometheus exited: {exited:?}\n{}",
                self.log_tail()
            );
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready after {START_TIMEOUT:?}\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.ready_after = started.elapsed();
        // Scraped since this start: after a restart, the stored `up` samples
        // of the previous run must not count. (`timestamp()` gives sample
        // times only when applied to a plain selector.)
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs_f64()
            - started.elapsed().as_secs_f64();
        let expected = self.targets as f64;
        if self.targets == 0 {
            self.data_after = started.elapsed();
            return;
        }
        self.wait_for(
            &format!(
                "count(timestamp(up{{job=\"demo\"}}) > {since:.3} \
                 and on(instance) up{{job=\"demo\"}} == 1)"
            ),
            |v| v == Some(expected),
            deadline.saturating_duration_since(Instant::now()),
        )
        .await;
        self.data_after = started.elapsed();
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("prometheus.log")
    }

    /// The end of Prometheus' log, for failure messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let start = log.len().saturating_sub(2000);
        format!(
            "prometheus.log (end):\n{}",
            log.get(start..).unwrap_or(&log)
        )
    }
}

impl Drop for PrometheusHarness {
    fn drop(&mut self) {
        self.stop();
    }
}
