//! `rollguard demo`, run as a user runs it: the real binary, its own demo
//! service, symlinked releases and an embedded daemon.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rollguard");

fn demo(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .arg("demo")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run rollguard demo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn demo_rolls_the_broken_release_back_and_verifies_it() {
    let (code, out) = demo(&[]);
    assert_eq!(code, 0, "{out}");
    for expected in [
        "Release seen: v1.0.0 -> v1.1.0",
        "-> rollback",
        "Rolling back v1.1.0 -> v1.0.0",
        "step symlink_switch: ok",
        "step verify: ok",
        "Rollback completed",
        "v1.1.0 was rolled back to v1.0.0 and verified healthy",
        "now running      v1.0.0",
        "notify [rollback_completed]",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn shadow_demo_changes_nothing_and_says_what_it_would_have_done() {
    let (code, out) = demo(&["--mode", "shadow"]);
    assert_eq!(code, 0, "{out}");
    for expected in [
        "notify [would_rollback]",
        "WOULD roll back v1.1.0 → v1.0.0",
        "symlink_switch:",
        "changed nothing (v1.1.0 still runs)",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(!out.contains("Rolling back"), "{out}");
    assert!(!out.contains("step symlink_switch"), "{out}");
}
