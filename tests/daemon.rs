//! Whole-process tests: the real binary, real signals, a real sd_notify
//! socket and the real HTTP API.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rollguard");

/// A temp directory with a config file, a state dir and a notify socket.
struct Setup {
    dir: tempfile::TempDir,
    notify: UnixDatagram,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let notify = UnixDatagram::bind(dir.path().join("notify.sock")).expect("bind notify");
        notify
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        Setup { dir, notify }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("rollguard.toml")
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Writes a config with the given targets (by name) and extra daemon keys.
    fn write_config(&self, targets: &[&str], daemon_extra: &str) {
        let mut text = format!(
            "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\nshutdown_grace = \"2s\"\n{daemon_extra}\n",
            self.state_dir().display()
        );
        for name in targets {
            text.push_str(&format!(
                "\n[[target]]\nname = \"{name}\"\ninterval = \"100ms\"\nbake_window = \"1m\"\n[target.release]\nkind = \"announce\"\n"
            ));
        }
        std::fs::write(self.config_path(), text).expect("write config");
    }

    fn spawn(&self, envs: &[(&str, &str)]) -> Child {
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(self.config_path())
            .env("NOTIFY_SOCKET", self.dir.path().join("notify.sock"))
            .env_remove("RUST_LOG")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rollguard")
    }

    /// Collects sd_notify messages until `pred` matches one or `limit` passes.
    fn wait_notify(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.notify.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if pred(&msg) {
                    return Some(msg);
                }
            }
        }
        None
    }

    /// Waits for READY=1 and returns the API address from the STATUS line.
    /// Runs `rollguard check` on the configuration: its exit code and stderr.
    fn check(&self) -> (Option<i32>, String) {
        let out = Command::new(BIN)
            .args(["check", "--config"])
            .arg(self.config_path())
            .output()
            .expect("run check");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn wait_ready(&self) -> SocketAddr {
        let msg = self
            .wait_notify(Duration::from_secs(20), |m| m.contains("READY=1"))
            .expect("READY=1 within 20 s");
        let url = msg
            .lines()
            .find_map(|l| l.strip_prefix("STATUS="))
            .and_then(|s| s.split("http://").nth(1))
            .expect("STATUS names the API address");
        url.trim().parse().expect("an address")
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args(["-s", name, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -s {name} failed");
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    text
}

/// A plain HTTP/1.1 GET; returns status and body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request(addr, "GET", path, "", "")
}

/// One HTTP/1.1 request over a fresh connection (`headers` end in CRLF);
/// returns status and body.
fn request(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the API");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Polls `path` until `pred` accepts the body.
fn poll_until(addr: SocketAddr, path: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = get(addr, path);
        if pred(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never matched; last body:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the sample `series` (name and labels) in a metrics text.
fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
}

fn journal_kinds(state_dir: &Path) -> Vec<String> {
    let (journal, _) = rollguard::journal::Journal::open(state_dir).expect("reopen journal");
    journal
        .query(None, rollguard::journal::Since::All, 10_000)
        .into_iter()
        .map(|r| {
            serde_json::to_value(&r.event).expect("serialise")["kind"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[test]
fn sigterm_stops_cleanly_within_the_grace_period() {
    let setup = Setup::new();
    setup.write_config(&["api"], "");
    let mut child = setup.spawn(&[]);
    let addr = setup.wait_ready();
    assert_eq!(get(addr, "/readyz").0, 200);

    signal(&child, "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(10)).expect("exits after SIGTERM");
    let stderr = stderr_of(&mut child);
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    // Logs to a pipe (a file, the journal) carry no colour codes.
    assert!(stderr.contains("INFO"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escapes in a pipe:\n{stderr}"
    );
    assert!(
        setup
            .wait_notify(Duration::from_secs(1), |m| m.contains("STOPPING=1"))
            .is_some(),
        "STOPPING=1 was sent"
    );
    let kinds = journal_kinds(&setup.state_dir());
    assert_eq!(kinds.first().map(String::as_str), Some("daemon_started"));
    assert_eq!(kinds.last().map(String::as_str), Some("daemon_stopped"));
}

#[test]
fn sigint_stops_cleanly_too() {
    let setup = Setup::new();
    setup.write_config(&["api"], "");
    let mut child = setup.spawn(&[]);
    setup.wait_ready();
    signal(&child, "INT");
    let status = wait_exit(&mut child, Duration::from_secs(10)).expect("exits after SIGINT");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sighup_with_a_broken_file_keeps_the_old_configuration() {
    let setup = Setup::new();
    setup.write_config(&["api"], "");
    let mut child = setup.spawn(&[]);
    let addr = setup.wait_ready();

    std::fs::write(
        setup.config_path(),
        "[daemon]\nlisten = \"127.0.0.1:0\"\nbogus_key = 1\n",
    )
    .expect("break the file");
    signal(&child, "HUP");
    poll_until(addr, "/metrics", |m| {
        m.contains("rollguard_config_reloads_total{result=\"error\"} 1")
    });
    let (code, status) = get(addr, "/api/v1/status");
    assert_eq!(code, 200);
    assert!(
        status.contains("\"api\""),
        "old target still watched: {status}"
    );
    assert_eq!(get(addr, "/healthz").0, 200);
    assert_eq!(get(addr, "/readyz").0, 200);

    signal(&child, "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(0));
    assert!(journal_kinds(&setup.state_dir()).contains(&"config_reloaded".to_owned()));
}

#[test]
fn sighup_with_a_good_file_applies_it_and_keeps_target_state() {
    let setup = Setup::new();
    setup.write_config(&["api"], "");
    let mut child = setup.spawn(&[]);
    let addr = setup.wait_ready();
    // Let "api" tick a few times, then add "web".
    poll_until(addr, "/metrics", |m| {
        metric_value(m, "rollguard_ticks_total{target=\"api\"}").is_some_and(|v| v >= 3.0)
    });
    setup.write_config(&["api", "web"], "");
    signal(&child, "HUP");
    let status = poll_until(addr, "/api/v1/status", |s| s.contains("\"web\""));
    let status: serde_json::Value = serde_json::from_str(&status).expect("status is JSON");
    let api = status["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "api"))
        .expect("api still listed");
    assert!(
        api["ticks"].as_u64().unwrap_or(0) >= 3,
        "api kept its history: {api}"
    );
    let metrics = get(addr, "/metrics").1;
    assert!(metrics.contains("rollguard_config_reloads_total{result=\"ok\"} 1"));

    signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).and_then(|s| s.code()),
        Some(0)
    );
}

#[test]
fn watchdog_pings_when_systemd_asks_for_them() {
    let setup = Setup::new();
    setup.write_config(&["api"], "");
    let mut child = setup.spawn(&[("WATCHDOG_USEC", "200000")]);
    setup.wait_ready();
    let pings = (0..3)
        .filter(|_| {
            setup
                .wait_notify(Duration::from_secs(2), |m| m.contains("WATCHDOG=1"))
                .is_some()
        })
        .count();
    assert_eq!(
        pings, 3,
        "three watchdog pings within 6 s at a 100 ms period"
    );
    signal(&child, "TERM");
    wait_exit(&mut child, Duration::from_secs(10)).expect("exits");
}

#[test]
fn a_bad_config_at_start_exits_78_and_names_the_key_and_line() {
    let setup = Setup::new();
    std::fs::write(
        setup.config_path(),
        "[daemon]\nmode = \"shadow\"\nlisten = \"not an address\"\n",
    )
    .expect("write");
    let mut child = setup.spawn(&[]);
    let status = wait_exit(&mut child, Duration::from_secs(10)).expect("exits");
    let stderr = stderr_of(&mut child);
    assert_eq!(status.code(), Some(78), "stderr:\n{stderr}");
    assert!(stderr.contains("daemon.listen"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
}

#[test]
fn an_unusable_listen_address_exits_1() {
    let setup = Setup::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    std::fs::write(
        setup.config_path(),
        format!(
            "[daemon]\nlisten = \"{addr}\"\nstate_dir = \"{}\"\nallow_no_targets = true\n",
            setup.state_dir().display()
        ),
    )
    .expect("write");
    let mut child = setup.spawn(&[]);
    let status = wait_exit(&mut child, Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(1), "stderr:\n{}", stderr_of(&mut child));
}

/// `text` with its `/etc/rollguard/...` files in `dir`, each created there
/// (check reads the secret files a config names, as run would).
fn with_secret_files(text: &str, dir: &Path) -> String {
    const ETC: &str = "\"/etc/rollguard/";
    for (at, _) in text.match_indices(ETC) {
        let rest = &text[at + ETC.len()..];
        let name = &rest[..rest.find('"').expect("a closed string")];
        // A URL file holds a URL (`check` reads its form); a token, anything.
        let secret = if name.ends_with("-url") {
            "https://hooks.example.com/T0/SECRET\n"
        } else {
            "secret\n"
        };
        std::fs::write(dir.join(name), secret).expect("write secret file");
    }
    text.replace(&ETC[1..], &format!("{}/", dir.display()))
}

#[test]
fn check_accepts_every_shipped_config_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let secrets = tempfile::tempdir().expect("tempdir");
    // The example's Swarm target needs a `docker` on PATH; a machine
    // without one gets the fake in front of its own PATH.
    let docker = secrets.path().join("docker");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_docker.py"),
        &docker,
    )
    .expect("install a docker");
    let search = format!(
        "{}:{}",
        secrets.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("config/ exists") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read config");
        let copy = secrets.path().join(path.file_name().expect("a file name"));
        std::fs::write(&copy, with_secret_files(&text, secrets.path())).expect("write copy");
        let out = Command::new(BIN)
            .arg("check")
            .arg(&copy)
            .env("PATH", &search)
            .output()
            .expect("run check");
        assert!(
            out.status.success(),
            "{} failed:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 2, "config/ holds example.toml and minimal.toml");
}

#[test]
fn check_prints_every_error_and_exits_78() {
    let setup = Setup::new();
    std::fs::write(
        setup.config_path(),
        "[[target]]\nname = \"api\"\ninterval = \"1m\"\nbake_window = \"10s\"\n[target.release]\nkind = \"announce\"\n\n[[target]]\nname = \"api\"\n[target.release]\nkind = \"announce\"\n",
    )
    .expect("write");
    let (code, stderr) = setup.check();
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("target[0].bake_window"), "{stderr}");
    assert!(stderr.contains("target[1].name"), "{stderr}");
}

#[test]
fn check_refuses_durations_beyond_their_bounds_and_missing_token_files() {
    let setup = Setup::new();
    let missing = setup.state_dir().join("no-such-token");
    std::fs::write(
        setup.config_path(),
        format!(
            "[daemon]\napi_token_file = \"{}\"\n\n[[target]]\nname = \"api\"\nbake_window = \"10000y\"\ncooldown = \"18446744073709551615s\"\n[target.release]\nkind = \"announce\"\n\n[[target.step]]\nphase = \"rollback\"\nkind = \"verify\"\nretries = 1000\n",
            missing.display()
        ),
    )
    .expect("write");
    let (code, stderr) = setup.check();
    assert_eq!(code, Some(78), "{stderr}");
    for (line, key) in [
        (2, "daemon.api_token_file: cannot read"),
        (6, "target[0].bake_window: must be at most 7days"),
        (7, "target[0].cooldown: must be at most 30days"),
        (14, "target[0].step[0].retries: must be at most 100"),
    ] {
        assert!(
            stderr.contains(&format!("line {line}, column 1: {key}")),
            "{stderr}"
        );
    }
}

#[test]
fn check_refuses_what_cannot_work_with_its_key_and_line() {
    let setup = Setup::new();
    std::fs::write(
        setup.config_path(),
        "[prometheus]\nurl = \"http://[::1\"\ntimeout = \"1ms\"\n",
    )
    .expect("write");
    let (code, stderr) = setup.check();
    assert_eq!(code, Some(78), "{stderr}");
    for (line, key) in [
        (2, "prometheus.url: is not a valid URL"),
        (3, "prometheus.timeout: must be at least 100ms"),
        (4, "target: the file has no `[[target]]`"),
    ] {
        assert!(
            stderr.contains(&format!("line {line}, column 1: {key}")),
            "{stderr}"
        );
    }
    std::fs::write(setup.config_path(), "[daemon]\nallow_no_targets = true\n").expect("write");
    let (code, stderr) = setup.check();
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn status_asks_the_running_daemon() {
    let setup = Setup::new();
    setup.write_config(&["checkout"], "");
    let mut child = setup.spawn(&[]);
    let addr = setup.wait_ready();
    let out = Command::new(BIN)
        .args(["status", "--api", &format!("http://{addr}")])
        .output()
        .expect("run status");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("checkout"), "{stdout}");
    signal(&child, "TERM");
    wait_exit(&mut child, Duration::from_secs(10)).expect("exits");

    // With the daemon gone, status fails and says why.
    let out = Command::new(BIN)
        .args(["status", "--api", &format!("http://{addr}")])
        .output()
        .expect("run status");
    assert!(!out.status.success());
    assert!(!out.stderr.is_empty());
}

/// A server that answers every request with 503, until the test ends.
fn failing_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    addr
}

/// A plain HTTP/1.1 POST of JSON with a bearer token.
fn post(addr: SocketAddr, path: &str, token: &str, body: &str) -> (u16, String) {
    let headers = format!("Authorization: Bearer {token}\r\nContent-Type: application/json\r\n");
    request(addr, "POST", path, &headers, body)
}

#[test]
fn sigterm_during_a_step_records_it_as_interrupted_after_the_grace_period_and_leaves_the_rollback_to_the_next_start()
 {
    use std::os::unix::fs::PermissionsExt;
    let setup = Setup::new();
    let health = failing_server();
    let token_file = setup.dir.path().join("token");
    std::fs::write(&token_file, "t0ken\n").expect("token");
    let marker = setup.dir.path().join("step-running");
    let undrained = setup.dir.path().join("undrained");
    let script = setup.dir.path().join("slow-deploy");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\nexec sleep 30\n", marker.display()),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(
        setup.config_path(),
        format!(
            r#"[daemon]
listen = "127.0.0.1:0"
state_dir = "{state}"
mode = "enforce"
shutdown_grace = "1s"
api_token_file = "{token}"

[[target]]
name = "api"
interval = "200ms"
bake_window = "1m"
time_to_fix = "2h"
[target.release]
kind = "announce"
[[target.probe]]
name = "health"
url = "http://{health}/health"
failures = 1
severity = "critical"
[[target.step]]
phase = "rollback"
kind = "command"
argv = ["{script}", "{{{{previous_version}}}}"]
timeout = "1m"
[[target.step]]
phase = "restore"
kind = "command"
name = "undrain"
argv = ["/usr/bin/touch", "{undrained}"]
"#,
            state = setup.state_dir().display(),
            token = token_file.display(),
            script = script.display(),
            undrained = undrained.display(),
        ),
    )
    .expect("config");
    let mut child = setup.spawn(&[]);
    let addr = setup.wait_ready();
    let (code, body) = post(
        addr,
        "/api/v1/releases",
        "t0ken",
        r#"{"target": "api", "version": "v2", "previous_version": "v1"}"#,
    );
    assert_eq!(code, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the rollback step never started");
        std::thread::sleep(Duration::from_millis(50));
    }

    let stopping = Instant::now();
    signal(&child, "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(15)).expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "stderr:\n{}", stderr_of(&mut child));
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "stopped after the 1 s grace period, not after the 30 s step"
    );
    let (journal, _) = rollguard::journal::Journal::open(&setup.state_dir()).expect("reopen");
    let events: Vec<_> = journal.records().into_iter().map(|r| r.event).collect();
    use rollguard::journal::Event;
    use rollguard::model::StepOutcome;
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::StepFinished {
                outcome: StepOutcome::Interrupted,
                ..
            }
        )),
        "{events:#?}"
    );
    // Left open: the next start runs its restore steps, then closes it.
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::RollbackFinished { .. })),
        "{events:#?}"
    );
    assert!(
        matches!(events.last(), Some(Event::DaemonStopped)),
        "{events:#?}"
    );
    assert!(
        !undrained.exists(),
        "the grace period ended before the undrain"
    );
    drop(journal);

    // The next start runs the restore step the grace period cut off, then
    // closes the rollback.
    let mut child = setup.spawn(&[]);
    setup.wait_ready();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !undrained.exists() {
        assert!(Instant::now() < deadline, "the undrain never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&child, "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(15)).expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "stderr:\n{}", stderr_of(&mut child));
    let (journal, _) = rollguard::journal::Journal::open(&setup.state_dir()).expect("reopen");
    let events: Vec<_> = journal.records().into_iter().map(|r| r.event).collect();
    let undrain = events.iter().position(|e| {
        matches!(e, Event::StepFinished { step, outcome: StepOutcome::Ok, .. } if step == "undrain")
    });
    let closed = events.iter().position(
        |e| matches!(e, Event::RollbackFinished { outcome, .. } if outcome == "interrupted"),
    );
    assert!(undrain.is_some() && undrain < closed, "{events:#?}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let setup = Setup::new();
    setup.write_config(&["api"], "log_format = \"json\"\nlog_level = \"info\"");
    let mut child = setup.spawn(&[]);
    setup.wait_ready();
    signal(&child, "TERM");
    wait_exit(&mut child, Duration::from_secs(10)).expect("exits");
    let stderr = stderr_of(&mut child);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "{stderr}");
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            value["level"].is_string() && value["message"].is_string(),
            "{line}"
        );
    }
    assert!(stderr.contains("rollguard is running"), "{stderr}");
}

/// Runs the CLI against the daemon at `addr`; returns exit code and output.
fn cli(addr: SocketAddr, token_file: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .args(["--api", &format!("http://{addr}"), "--token-file"])
        .arg(token_file)
        .output()
        .expect("run the CLI");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn cli_commands_announce_pause_and_set_time_to_fix_and_the_pause_survives_a_restart() {
    let setup = Setup::new();
    let token_file = setup.dir.path().join("token");
    std::fs::write(&token_file, "s3cret\n").expect("token");
    let daemon_keys = format!("api_token_file = \"{}\"", token_file.display());
    setup.write_config(&["api"], &daemon_keys);
    let mut child = setup.spawn(&[]);
    let addr = setup.wait_ready();

    let (code, out) = cli(
        addr,
        &token_file,
        &["announce", "api", "v2", "--previous", "v1"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("announced api v2 (release api-"), "{out}");
    let (code, out) = cli(addr, &token_file, &["announce", "api", "v2"]);
    assert_eq!(code, 1, "a duplicate announcement is refused: {out}");
    assert!(out.contains("already the running version"), "{out}");

    let (code, out) = cli(addr, &token_file, &["eta", "api", "20m"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = cli(addr, &token_file, &["eta", "api", "soon"]);
    assert_eq!(code, 2, "{out}");

    let (code, out) = cli(addr, &token_file, &["approve", "api"]);
    assert_eq!(code, 1, "nothing waits for approval: {out}");
    assert!(out.contains("shadow mode"), "{out}");

    let (code, out) = cli(addr, &token_file, &["pause"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("paused for every target"), "{out}");
    let status = poll_until(addr, "/api/v1/status", |s| s.contains("\"paused\":true"));
    assert!(status.contains("\"current_version\":\"v2\""), "{status}");
    assert!(status.contains("\"time_to_fix\":\"20m\""), "{status}");

    // A wrong token is refused by the daemon, and the CLI says so.
    let wrong = setup.dir.path().join("wrong");
    std::fs::write(&wrong, "nope").expect("token");
    let (code, out) = cli(addr, &wrong, &["resume"]);
    assert_eq!(code, 1, "{out}");

    signal(&child, "TERM");
    wait_exit(&mut child, Duration::from_secs(10)).expect("exits");

    // The kill switch and the estimate survive a restart.
    let mut child = setup.spawn(&[]);
    let addr = setup.wait_ready();
    // The target's loop publishes what it recovered once it has started.
    let status = poll_until(addr, "/api/v1/status", |s| s.contains("\"time_to_fix\":\""));
    assert!(status.contains("\"paused\":true"), "{status}");
    assert!(status.contains("\"time_to_fix\":\"20m\""), "{status}");
    assert!(status.contains("\"current_version\":\"v2\""), "{status}");
    let (code, out) = cli(addr, &token_file, &["resume"]);
    assert_eq!(code, 0, "{out}");
    poll_until(addr, "/api/v1/status", |s| s.contains("\"paused\":false"));
    signal(&child, "TERM");
    wait_exit(&mut child, Duration::from_secs(10)).expect("exits");
}

#[test]
fn check_refuses_an_unknown_notifier_event_with_its_path_and_line() {
    let setup = Setup::new();
    std::fs::write(
        setup.config_path(),
        "[[notifier]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nevents = [\"rollback_failed\",\n  \"rollback_exploded\"]\n",
    )
    .expect("write");
    let (code, stderr) = setup.check();
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains(
            "line 6, column 3: notifier[0].events[1]: unknown variant `rollback_exploded`"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("`rollback_step`") && stderr.contains("`monitoring_recovered`"),
        "the valid names are listed: {stderr}"
    );
}
