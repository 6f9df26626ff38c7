//! `rollguard backtest` as a user runs it: the real binary over the example
//! replay in `examples/` and over replay files written here.

use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// Runs `rollguard backtest` with `args`; returns (exit ok, stdout, stderr).
fn backtest(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rollguard"))
        .arg("backtest")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("rollguard runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One parsed output line per release.
fn verdicts(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// Writes a replay: 30 baseline ticks of 200 requests / 1 error, then `after`.
fn write_replay(dir: &Path, name: &str, after: Vec<Value>) -> String {
    let normal =
        json!({"requests": 200, "errors": 1, "p50_ms": 40.0, "p99_ms": 180.0, "health": 1.0});
    let mut samples = vec![normal; 30];
    samples.extend(after);
    let replay =
        json!({"name": name, "interval_seconds": 10, "release_index": 30, "samples": samples});
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, replay.to_string()).expect("written");
    path.display().to_string()
}

fn tick(requests: Value, errors: Value, health: Value) -> Value {
    json!({"requests": requests, "errors": errors, "p50_ms": 40.0, "p99_ms": 180.0, "health": health})
}

#[test]
fn the_example_bad_release_rolls_back_right_after_the_release() {
    let (ok, stdout, stderr) = backtest(&["--replay", "examples/replay-bad-release.json"]);
    assert!(ok, "{stderr}");
    let v = verdicts(&stdout);
    assert_eq!(v.len(), 1);
    let v = &v[0];
    assert_eq!(v["name"], "example-bad-release");
    assert_eq!(v["decision"], "rollback");
    assert_eq!(v["severity"], "critical");
    let at = v["decided_at_index"].as_u64().expect("an index");
    assert!((12..=15).contains(&at), "decided at {at}, released at 12");
    assert!(v["reasons"].as_array().is_some_and(|r| !r.is_empty()));
}

#[test]
fn written_replays_good_outage_and_spike_never_roll_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write_replay(
        dir.path(),
        "good",
        vec![tick(json!(200), json!(1), json!(1.0)); 40],
    );
    let outage = write_replay(
        dir.path(),
        "outage",
        vec![tick(Value::Null, Value::Null, Value::Null); 40],
    );
    let mut spike = vec![tick(json!(200), json!(1), json!(1.0)); 40];
    spike[5] = tick(json!(200), json!(80), json!(1.0));
    let spike = write_replay(dir.path(), "spike", spike);
    let (ok, stdout, stderr) = backtest(&["--replay", &good, &outage, &spike]);
    assert!(ok, "{stderr}");
    let v = verdicts(&stdout);
    let names: Vec<&str> = v.iter().filter_map(|v| v["name"].as_str()).collect();
    assert_eq!(names, ["good", "outage", "spike"]);
    assert_eq!(v[0]["decision"], "healthy", "{}", v[0]);
    assert_eq!(v[0]["decided_at_index"], 30);
    assert_eq!(v[1]["decision"], "inconclusive", "{}", v[1]);
    assert_eq!(v[2]["decision"], "healthy", "{}", v[2]);
}

#[test]
fn the_table_is_for_people_and_bad_files_are_named() {
    let (ok, stdout, stderr) = backtest(&[
        "--replay",
        "examples/replay-bad-release.json",
        "--format",
        "table",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("NAME"), "{stdout}");
    assert!(stdout.contains("example-bad-release  rollback"), "{stdout}");

    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, r#"{"name": "x", "samples": []}"#).expect("written");
    let broken = broken.display().to_string();
    let (ok, stdout, stderr) = backtest(&["--replay", &broken, "examples/replay-bad-release.json"]);
    assert!(!ok, "a bad file fails the run");
    assert!(
        stderr.contains("broken.json") && stderr.contains("release_index"),
        "{stderr}"
    );
    assert_eq!(verdicts(&stdout).len(), 1, "the good file is still judged");
}
