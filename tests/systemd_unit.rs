//! The shipped systemd unit, `systemd/rollguard.service`, checked with
//! systemd's own tools.
//!
//! - The lifecycle settings the daemon relies on (Type=notify, the watchdog,
//!   reload by SIGHUP, no restart on exit code 78, the state directory) are
//!   asserted from the file's text, on every machine.
//! - `systemd-analyze verify` must accept the unit without one warning about
//!   it. verify refuses a unit whose ExecStart binary is missing, and
//!   /usr/bin/rollguard is not installed where tests run, so the test verifies
//!   a copy in a temporary directory in which `/usr/bin/rollguard` is replaced
//!   by an executable stub (`#!/bin/sh`, `exit 0`). Nothing else is changed,
//!   except `/bin/kill` if the machine has none (procps not installed).
//! - `systemd-analyze security --offline=yes` on the unit file itself must
//!   rate the overall exposure at 2.0 or lower (docs/security.md; 1.2 today).
//!
//! The last two are `needs_systemd_analyze::` tests: without
//! `systemd-analyze` (or with one older than systemd 250, which has neither
//! `--offline` nor `--recursive-errors`) they fail, saying why, and
//! `scripts/test` leaves them out on such a machine, saying so.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The unit's file name, which is also its name for systemd.
const UNIT_NAME: &str = "rollguard.service";

/// Where packages install the daemon; what the unit's Exec lines run.
const INSTALLED_BINARY: &str = "/usr/bin/rollguard";

/// The highest overall exposure (`systemd-analyze security`) we accept.
const MAX_EXPOSURE: f64 = 2.0;

/// The daemon's default `daemon.shutdown_grace`, in seconds: the unit must
/// wait longer than this before it SIGKILLs.
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;

fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("systemd")
        .join(UNIT_NAME)
}

fn unit_text() -> String {
    let path = unit_path();
    fs::read_to_string(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

/// Every `Key=value` assignment of `section`, in order (a key may repeat).
fn assignments(text: &str, section: &str) -> Vec<(String, String)> {
    let mut current = String::new();
    let mut found = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_string();
            continue;
        }
        if current == section
            && let Some((key, value)) = line.split_once('=')
        {
            found.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    found
}

/// The values given to `key` in `[Service]`.
fn service_values(text: &str, key: &str) -> Vec<String> {
    assignments(text, "Service")
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .collect()
}

/// The one value of `key` in `[Service]`.
fn service_value(text: &str, key: &str) -> String {
    let values = service_values(text, key);
    assert_eq!(
        values.len(),
        1,
        "{key}= should be set exactly once, found {values:?}"
    );
    values[0].clone()
}

/// Seconds in a systemd time span of the simple forms this unit uses
/// ("45s", "2min", "90").
fn seconds(span: &str) -> u64 {
    let (number, unit) = span
        .find(|c: char| !c.is_ascii_digit())
        .map_or((span, ""), |at| span.split_at(at));
    let number: u64 = number
        .parse()
        .unwrap_or_else(|_| panic!("cannot read time span {span:?}"));
    match unit.trim() {
        "" | "s" | "sec" => number,
        "min" | "m" => number * 60,
        other => panic!("unexpected time unit {other:?} in {span:?}"),
    }
}

#[test]
fn unit_declares_the_lifecycle_the_daemon_relies_on() {
    let text = unit_text();

    assert_eq!(service_value(&text, "Type"), "notify");
    assert_eq!(service_value(&text, "NotifyAccess"), "main");
    assert_eq!(
        service_value(&text, "ExecStart"),
        "/usr/bin/rollguard run --config /etc/rollguard/rollguard.toml"
    );

    let reloads = service_values(&text, "ExecReload");
    assert!(
        reloads.iter().any(|line| line.contains("kill")
            && line.contains("-HUP")
            && line.contains("$MAINPID")),
        "ExecReload= should send SIGHUP to $MAINPID, found {reloads:?}"
    );

    let watchdog = service_value(&text, "WatchdogSec");
    assert!(
        seconds(&watchdog) > 0,
        "WatchdogSec= should enable the watchdog"
    );

    assert_eq!(service_value(&text, "Restart"), "on-failure");
    let no_restart = service_value(&text, "RestartPreventExitStatus");
    assert!(
        no_restart.split_whitespace().any(|status| status == "78"),
        "exit code 78 (bad config) must not be restarted, found {no_restart:?}"
    );

    assert_eq!(service_value(&text, "KillMode"), "mixed");
    let stop = seconds(&service_value(&text, "TimeoutStopSec"));
    assert!(
        stop > DEFAULT_SHUTDOWN_GRACE_SECS,
        "TimeoutStopSec= ({stop}s) must leave room for the default shutdown grace \
         ({DEFAULT_SHUTDOWN_GRACE_SECS}s)"
    );

    assert_eq!(service_value(&text, "StateDirectory"), "rollguard");
    assert_eq!(service_value(&text, "ConfigurationDirectory"), "rollguard");

    // The daemon cannot raise its own limit (~@resources): the unit must
    // leave room for the most connections its configuration allows in
    // flight, an idle connection per host of a large fleet, and the rest.
    let nofile: u64 = service_value(&text, "LimitNOFILE")
        .parse()
        .expect("LimitNOFILE= is one number (soft and hard)");
    let in_flight = rollguard::config::bounds::MAX_CONCURRENT_QUERIES
        + rollguard::config::bounds::MAX_CONCURRENT_PROBES;
    let fleet_hosts = 10_000;
    assert!(
        nofile >= (in_flight + fleet_hosts + 1024) as u64,
        "LimitNOFILE={nofile} is too low for {in_flight} connections in flight and \
         {fleet_hosts} hosts"
    );

    let families = service_value(&text, "RestrictAddressFamilies");
    for family in ["AF_UNIX", "AF_INET", "AF_INET6"] {
        assert!(
            families.split_whitespace().any(|f| f == family),
            "the daemon needs {family}, RestrictAddressFamilies= is {families:?}"
        );
    }
}

/// What a `needs_systemd_analyze::` test says when it cannot run.
const NEEDS: &str = "this test needs systemd-analyze of systemd 250 or later (Debian package \
     `systemd`); scripts/test installs it, and leaves out the needs_systemd_analyze:: tests \
     when it cannot";

/// The `systemd-analyze` to use; panics, saying why, when this machine has
/// none recent enough.
fn systemd_analyze() -> Command {
    let output = Command::new("systemd-analyze").arg("--version").output();
    let output = output.unwrap_or_else(|error| panic!("{NEEDS}: {error}"));
    let version = String::from_utf8_lossy(&output.stdout);
    // "systemd 252 (252.38-1~deb12u1)"
    let major = version
        .split_whitespace()
        .nth(1)
        .and_then(|word| word.parse::<u32>().ok());
    if major.is_none_or(|major| major < 250) {
        let first = version.lines().next().unwrap_or("");
        panic!("{NEEDS}: this one is {first:?} (no --offline, no --recursive-errors)");
    }
    let mut command = Command::new("systemd-analyze");
    command
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .env("LC_ALL", "C")
        .arg("--no-pager");
    command
}

/// Runs `systemd-analyze verify` on a copy of `unit_text` in which the
/// installed binary is replaced by a stub; the copy keeps the unit's name.
fn verify(mut analyze: Command, unit_text: &str) -> Output {
    let dir = tempfile::tempdir().expect("temporary directory");
    let stub = dir.path().join("rollguard");
    fs::write(&stub, "#!/bin/sh\nexit 0\n").expect("writing the stub binary");
    fs::set_permissions(&stub, fs::Permissions::from_mode(0o755)).expect("chmod the stub");

    // Quoted, so that a temporary directory with spaces still parses.
    let quoted_stub = format!("\"{}\"", stub.display());
    let mut copy = unit_text.replace(INSTALLED_BINARY, &quoted_stub);
    if !Path::new("/bin/kill").exists() {
        eprintln!("note: this machine has no /bin/kill (procps); verifying with a stub instead");
        copy = copy.replace("/bin/kill", &quoted_stub);
    }
    let copy_path = dir.path().join(UNIT_NAME);
    fs::write(&copy_path, copy).expect("writing the unit copy");

    analyze
        .arg("verify")
        // Do not look up man pages (a drop-in may add Documentation=man:...).
        .arg("--man=no")
        // Fail on warnings about this unit, not about unrelated units that
        // happen to be installed on the test machine.
        .arg("--recursive-errors=no")
        .arg(&copy_path)
        .output()
        .expect("running systemd-analyze verify")
}

/// Lines of verify's stderr that are about our unit.
fn warnings_about_unit(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| line.contains(UNIT_NAME))
        .map(str::to_string)
        .collect()
}

/// The number in "→ Overall exposure level for rollguard.service: 1.2 OK 🙂".
fn overall_exposure(stdout: &str) -> Option<f64> {
    let marker = format!("Overall exposure level for {UNIT_NAME}:");
    let line = stdout.lines().find(|line| line.contains(&marker))?;
    let (_, rest) = line.split_once(&marker)?;
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn exposure_line_is_parsed() {
    assert_eq!(
        overall_exposure("→ Overall exposure level for rollguard.service: 1.2 OK 🙂\n"),
        Some(1.2)
    );
    assert_eq!(
        overall_exposure("→ Overall exposure level for rollguard.service: 9.6 UNSAFE :-{\n"),
        Some(9.6)
    );
    assert_eq!(overall_exposure("nothing here"), None);
}

/// Each test runs systemd-analyze: without it (of systemd 250 or later)
/// they fail, and `scripts/test` leaves them out.
mod needs_systemd_analyze {
    use super::*;

    #[test]
    fn unit_passes_systemd_analyze_verify() {
        let analyze = systemd_analyze();
        let output = verify(analyze, &unit_text());
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !stderr.trim().is_empty() {
            eprintln!("systemd-analyze verify stderr:\n{stderr}");
        }
        assert!(
            output.status.success(),
            "systemd-analyze verify failed ({}):\n{stderr}",
            output.status
        );
        let warnings = warnings_about_unit(&output);
        assert!(
            warnings.is_empty(),
            "warnings about {UNIT_NAME}:\n{}",
            warnings.join("\n")
        );
    }

    /// Guards the test above against passing vacuously: the same harness must
    /// notice a unit with a mistake in it.
    #[test]
    fn verify_harness_catches_a_broken_unit() {
        let analyze = systemd_analyze();
        let broken = unit_text().replacen("[Service]\n", "[Service]\nNotAKey=yes\n", 1);
        let output = verify(analyze, &broken);
        assert!(
            !output.status.success() && !warnings_about_unit(&output).is_empty(),
            "systemd-analyze verify accepted a unit with an unknown key:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    #[test]
    fn unit_exposure_is_at_most_2_0() {
        let mut analyze = systemd_analyze();
        // --offline=yes reads the unit file directly, so it needs neither a
        // running systemd nor the binary. --threshold is on systemd's internal
        // 0..100 scale (20 = 2.0): a second, independent check of the same limit.
        let output = analyze
            .arg("security")
            .arg("--offline=yes")
            .arg(format!(
                "--threshold={}",
                (MAX_EXPOSURE * 10.0).round() as u32
            ))
            .arg(unit_path())
            .output()
            .expect("running systemd-analyze security");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);

        let exposure = overall_exposure(&stdout).unwrap_or_else(|| {
            panic!("no overall exposure in systemd-analyze security output:\n{stdout}\n{stderr}")
        });
        eprintln!("systemd-analyze security --offline=yes: overall exposure {exposure}");
        assert!(
            exposure <= MAX_EXPOSURE,
            "overall exposure {exposure} is above {MAX_EXPOSURE}:\n{stdout}"
        );
        assert!(
            output.status.success(),
            "systemd-analyze security failed ({}):\n{stdout}\n{stderr}",
            output.status
        );
    }
}
