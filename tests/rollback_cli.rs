//! `rollguard rollback`, the real binary, at a real pseudo-terminal
//! (`tests/pty_run.py`, Python's `pty`) or with piped stdin, against a
//! whole daemon in this process (`rollback/harness.rs`): the plan it shows,
//! the prompt that only an exact `yes` passes, the refusal without a
//! terminal, and the timeline it follows to the end, which Ctrl-C stops
//! without stopping the rollback.

#[path = "rollback/harness.rs"]
mod harness;

use harness::{Options, Rig};
use std::process::Stdio;

const BIN: &str = env!("CARGO_BIN_EXE_rollguard");

/// What a run of the command showed.
struct Ran {
    code: Option<i32>,
    /// stdout and stderr (at a terminal they are one), `\r\n` as `\n`.
    out: String,
}

impl Ran {
    fn shows(&self, text: &str) -> bool {
        self.out.contains(text)
    }
}

/// `rollguard rollback shop ARGS` at a terminal, answering the prompt with
/// `answer` (`-`: never) and typing Ctrl-C once `interrupt_after` shows.
async fn at_terminal(rig: &Rig, answer: &str, interrupt_after: Option<&str>, args: &[&str]) -> Ran {
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pty_run.py");
    let mut command = tokio::process::Command::new("python3");
    command.arg(driver).arg(answer);
    if let Some(text) = interrupt_after {
        command.arg(text);
    }
    command
        .arg("--")
        .arg(BIN)
        .args(["rollback", harness::TARGET, "--config"])
        .arg(rig.config_path())
        .args(args)
        .env_remove("ROLLGUARD_API_TOKEN_FILE")
        .stdin(Stdio::null());
    let output = command
        .output()
        .await
        .expect("run python3 tests/pty_run.py");
    // The transcript, shown when a test fails (or with --nocapture).
    println!("{}", String::from_utf8_lossy(&output.stdout));
    Ran {
        code: output.status.code(),
        out: String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n")
            + &String::from_utf8_lossy(&output.stderr),
    }
}

/// `rollguard rollback shop ARGS` with `stdin` piped in (not a terminal).
async fn piped(rig: &Rig, stdin: &str, args: &[&str]) -> Ran {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(BIN)
        .args(["rollback", harness::TARGET, "--config"])
        .arg(rig.config_path())
        .args(args)
        .env_remove("ROLLGUARD_API_TOKEN_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rollguard");
    if let Some(mut input) = child.stdin.take() {
        // The command may exit without reading: a broken pipe is fine.
        let _ = input.write_all(stdin.as_bytes()).await;
    }
    let output = child.wait_with_output().await.expect("rollguard runs");
    Ran {
        code: output.status.code(),
        out: String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    }
}

/// The plan's lines, as every run that asks the daemon shows them.
fn shows_the_plan(ran: &Ran) {
    for line in [
        "Rollback of shop: v2 -> v1 (mode enforce, release shop-",
        "Steps, in order:\n  1. record: command: ",
        "\n  2. symlink_switch: /",
        "\n  3. verify: until probes and metrics are back to baseline",
    ] {
        assert!(ran.shows(line), "{line:?} in:\n{}", ran.out);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answering_yes_rolls_back_and_follows_it_to_the_end() {
    let rig = Rig::start(Options::default()).await;
    rig.deploy("v2").await;
    let ran = at_terminal(&rig, "yes", None, &[]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.out);
    shows_the_plan(&ran);
    assert!(
        ran.shows("Proceed with rollback? (yes/no) yes\n"),
        "{}",
        ran.out
    );
    assert!(
        ran.shows("Ctrl-C stops following it here, not the rollback"),
        "{}",
        ran.out
    );
    // The timeline, in order: each step started, then ended with its time.
    let order = [
        "step record started",
        "step record ok after",
        "step symlink_switch started",
        "step symlink_switch ok after",
        "step verify started",
        "step verify ok after",
        "rollback completed",
        "Rollback completed: shop is verified back to normal.",
    ];
    let mut from = 0;
    for text in order {
        let at = ran.out[from..]
            .find(text)
            .unwrap_or_else(|| panic!("{text:?} after byte {from} in:\n{}", ran.out));
        from += at + text.len();
    }
    assert_eq!(rig.running(), "v1");
    let rollbacks = rig.rollbacks();
    assert_eq!(rollbacks.len(), 1, "{}", rig.timeline());
    assert_eq!(rollbacks[0].3, "manual");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answering_no_or_y_cancels_and_changes_nothing() {
    let rig = Rig::start(Options::default()).await;
    rig.deploy("v2").await;
    for (answer, says) in [
        ("no", "Rollback cancelled.\n"),
        ("y", "Rollback cancelled: type `yes` in full to roll back."),
        ("", "Rollback cancelled.\n"),
    ] {
        let ran = at_terminal(&rig, answer, None, &[]).await;
        assert_eq!(ran.code, Some(1), "{answer:?}: {}", ran.out);
        shows_the_plan(&ran);
        assert!(ran.shows(says), "{answer:?}: {}", ran.out);
        assert!(!ran.shows("started"), "{answer:?}: {}", ran.out);
    }
    assert_eq!(rig.running(), "v2");
    assert!(rig.rollbacks().is_empty(), "{}", rig.timeline());
    assert!(rig.runs().is_empty());
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_it_refuses_unless_told_yes() {
    let rig = Rig::start(Options::default()).await;
    rig.deploy("v2").await;
    let before = rig.records().len();
    let ran = piped(&rig, "yes\n", &[]).await;
    assert_eq!(ran.code, Some(2), "{}", ran.out);
    assert_eq!(
        ran.out,
        "rollguard rollback: stdin is not a terminal; pass --yes to roll back without asking\n"
    );
    assert_eq!(rig.running(), "v2");
    assert!(rig.rollbacks().is_empty());
    assert_eq!(rig.records().len(), before, "nothing reached the daemon");

    let ran = piped(&rig, "", &["--yes"]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.out);
    shows_the_plan(&ran);
    assert!(!ran.shows("Proceed with rollback?"), "{}", ran.out);
    assert!(
        ran.shows("Rollback completed: shop is verified back to normal."),
        "{}",
        ran.out
    );
    assert_eq!(rig.running(), "v1");
    assert_eq!(rig.rollbacks().len(), 1);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_prints_the_steps_and_changes_nothing() {
    let rig = Rig::start(Options::default()).await;
    rig.deploy("v2").await;
    let ran = at_terminal(&rig, "-", None, &["--dry-run"]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.out);
    shows_the_plan(&ran);
    assert!(ran.shows("releases/v1"), "{}", ran.out);
    assert!(ran.shows("Dry run: nothing was changed.\n"), "{}", ran.out);
    assert!(!ran.shows("Proceed with rollback?"), "{}", ran.out);
    // Without a terminal too: a dry run asks nothing.
    let ran = piped(&rig, "", &["--dry-run"]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.out);
    assert_eq!(rig.running(), "v2");
    assert!(rig.rollbacks().is_empty());
    assert!(rig.runs().is_empty());
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_said_before_asking() {
    let rig = Rig::start(Options {
        mode: "shadow",
        ..Options::default()
    })
    .await;
    rig.deploy("v2").await;
    let ran = at_terminal(&rig, "yes", None, &[]).await;
    assert_eq!(ran.code, Some(1), "{}", ran.out);
    assert!(
        ran.shows("rollguard would refuse this rollback: shop is in shadow mode"),
        "{}",
        ran.out
    );
    assert!(!ran.shows("Proceed with rollback?"), "{}", ran.out);
    let ran = at_terminal(&rig, "-", None, &["--to", "v2"]).await;
    assert_eq!(ran.code, Some(1), "{}", ran.out);
    assert!(
        ran.shows("rollguard refused (409): v2 is already the running version"),
        "{}",
        ran.out
    );
    assert!(rig.rollbacks().is_empty());
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_following_not_the_rollback() {
    let rig = Rig::start(Options {
        gated: true,
        ..Options::default()
    })
    .await;
    rig.deploy("v2").await;
    let ran = at_terminal(&rig, "yes", Some("step gate started"), &[]).await;
    assert_eq!(ran.code, Some(1), "{}", ran.out);
    assert!(
        ran.shows("Stopped following. The rollback goes on in the daemon"),
        "{}",
        ran.out
    );
    assert_eq!(rig.running(), "v2", "still held at the gate");
    rig.open_gate();
    rig.wait_finished(1).await;
    assert_eq!(rig.outcomes(), ["completed"], "{}", rig.timeline());
    assert_eq!(rig.running(), "v1");
    rig.stop().await;
}
