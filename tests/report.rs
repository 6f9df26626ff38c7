//! Incident reports end to end: a real daemon rolls a bad release back
//! with a real symlink switch (the harness of `e2e.rs`: real Prometheus,
//! real webhook receiver), writes the report under `state_dir/reports`,
//! puts the target's status message in the webhook JSON, and the built
//! `rollguard report` prints the report from the journal while the daemon
//! still runs. Then `rollguard report` on journals with no rollback and
//! with no journal at all.

#[allow(dead_code)]
mod common;

use common::e2e::{BAD, GOOD, TARGET, TargetSetup, World};
use rollguard::journal::{Event, Journal};
use rollguard::model::{Decision, Mode, Severity};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rollguard");

fn rollguard(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("ROLLGUARD_CONFIG")
        .output()
        .expect("rollguard runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The report files in `dir`, if any.
fn reports(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    found.sort();
    found
}

/// Waits until the report of `release_id` exists and holds `needle`.
async fn wait_report(dir: &Path, release_id: &str, needle: &str) -> (PathBuf, String) {
    let deadline = Instant::now() + common::e2e::PATIENCE;
    loop {
        let file = reports(dir)
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(&format!("-{release_id}.md")));
        if let Some(path) = file
            && let Ok(text) = std::fs::read_to_string(&path)
            && text.contains(needle)
        {
            return (path, text);
        }
        assert!(
            Instant::now() < deadline,
            "no report of {release_id} holding {needle:?} in {}: {:?}",
            dir.display(),
            reports(dir)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_writes_its_report_and_rollguard_report_prints_it() {
    let world = World::start().await;
    let config = world
        .config(&TargetSetup::enforce(world.steps()))
        .replace(
            "status_channel = \"#status-shop\"\n",
            "status_channel = \"#status-shop\"\nstatus_message = \"{{target}} {{version}} → {{previous_version}}: {{outcome}}\"\n",
        );
    assert!(config.contains("status_message"), "{config}");
    let daemon = world.start_daemon(&config).await;
    let reports_dir = world.root().join("state/reports");
    assert!(reports(&reports_dir).is_empty());

    world.deploy(BAD);
    let release_id = daemon.wait_release(BAD).await;
    let (path, text) = wait_report(
        &reports_dir,
        &release_id,
        "| Rollback finished | completed |",
    )
    .await;
    assert_eq!(world.running(), GOOD);
    let name = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with("shop-20"), "{name}");
    assert!(name.ends_with(&format!("Z-{release_id}.md")), "{name}");

    for line in [
        format!("# Incident: {TARGET} {BAD} rolled back"),
        format!("- **Release id:** {release_id}"),
        format!("- **Bad version → restored:** {BAD} → {GOOD}"),
        "- **Outcome:** completed (the previous version runs and the service was verified back to normal)".to_owned(),
        "- **Trigger:** automatic (rollguard, on the decision matrix)".to_owned(),
        "## Status message\n\nshop v2 → v1: completed\n".to_owned(),
        format!("| Release detected | {GOOD} → {BAD}, seen by symlink |"),
        "| First failing tick | severity ".to_owned(),
        "| Decision | rollback (severity ".to_owned(),
        format!("| Rollback started | trigger automatic, {BAD} → {GOOD} |"),
        "| Step started | record (attempt 1) |".to_owned(),
        "| Step finished | record: ok".to_owned(),
        "| Step finished | symlink\\_switch: ok".to_owned(),
        "| Step finished | verify: ok".to_owned(),
        "- **Matrix rule:** ".to_owned(),
        "| health | probe | ".to_owned(),
        "- **Time to recover:** ".to_owned(),
    ] {
        assert!(text.contains(&line), "no {line:?} in {}:\n{text}", path.display());
    }
    // The pipeline table: each step once, in the order they ran.
    let steps: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| 1 |") || l.starts_with("| 2 |") || l.starts_with("| 3 |"))
        .collect();
    assert_eq!(steps.len(), 3, "{text}");
    for (row, step) in steps.iter().zip(["record", "symlink\\_switch", "verify"]) {
        assert!(row.contains(&format!("| {step} | 1 |")), "{row}");
        assert!(row.contains("| ok |"), "{row}");
    }
    // Timeline rows are in time order.
    let times: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| 20"))
        .filter_map(|l| l.get(2..21))
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "{text}");

    // The webhook's rollback_completed carries the same status message.
    let completed = world.hooks.wait("rollback_completed", |_| true).await;
    assert_eq!(
        completed["status_message"], "shop v2 → v1: completed",
        "{completed}"
    );

    // The CLI, offline, beside the running daemon (no journal lock taken).
    let config_path = world.root().join("rollguard.toml");
    let config_arg = config_path.to_str().expect("utf-8 path");
    daemon
        .wait_for("v1 seen again", |e| {
            matches!(
                e,
                Event::ReleaseSeen {
                    by_rollguard: true,
                    ..
                }
            )
        })
        .await;
    daemon
        .wait_for("rollback_completed journaled as delivered", |e| {
            matches!(e, Event::NotificationSent { event, notifier, ok: true, .. } if event == "rollback_completed" && notifier == "on-call")
        })
        .await;
    let lock_before = std::fs::read(world.root().join("state/journal.lock")).expect("lock");
    let out = rollguard(&["report", TARGET, "--config", config_arg]);
    assert!(out.status.success(), "{out:?}");
    let printed = stdout(&out);
    assert!(
        printed.starts_with(&format!("# Incident: {TARGET} {BAD} rolled back")),
        "{printed}"
    );
    for row in &steps {
        assert!(printed.contains(row), "the CLI lacks {row:?}:\n{printed}");
    }
    assert!(
        printed.contains("| Restored version running | v1 seen again"),
        "{printed}"
    );
    assert!(
        printed.contains("| Notification | rollback\\_completed to on-call: delivered"),
        "{printed}"
    );
    let by_id = stdout(&rollguard(&[
        "report",
        "--release",
        &release_id,
        "--config",
        config_arg,
    ]));
    assert_eq!(by_id.lines().next(), printed.lines().next());
    let listed = stdout(&rollguard(&["report", "--list", "--config", config_arg]));
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(
        listed.contains(&format!(
            "  {TARGET}  {release_id}  completed  {BAD} → {GOOD}  reports/{name}"
        )),
        "{listed}"
    );
    for args in [
        vec!["report", "cart", "--config", config_arg],
        vec!["report", "--release", "shop-0", "--config", config_arg],
    ] {
        let out = rollguard(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
    assert_eq!(
        std::fs::read(world.root().join("state/journal.lock")).expect("lock"),
        lock_before,
        "the CLI left the daemon's lock alone"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_reports_what_it_would_have_rolled_back_when_it_would() {
    let world = World::start().await;
    let setup = TargetSetup {
        mode: "shadow",
        ..TargetSetup::enforce(world.steps())
    };
    let daemon = world.start_daemon(&world.config(&setup)).await;
    world.deploy(BAD);
    let release_id = daemon.wait_release(BAD).await;
    let reports_dir = world.root().join("state/reports");
    // Written when shadow mode would roll back, long before the 60 s bake
    // window closes.
    let (path, text) = wait_report(&reports_dir, &release_id, "# Incident").await;
    assert!(
        daemon
            .find(|e| matches!(e, Event::BakeFinished { .. }))
            .is_empty()
    );
    for line in [
        format!("# Incident: {TARGET} {BAD} would have been rolled back (shadow mode)"),
        "- **Outcome:** would\\_roll\\_back (shadow mode: rollguard would have rolled back; nothing was changed)".to_owned(),
        "- **Trigger:** none: no rollback ran".to_owned(),
        "- **Mode:** shadow".to_owned(),
        format!("We identified a problem with the latest release of {TARGET} ({BAD}) at "),
        format!("- Nothing was changed (shadow mode): {BAD} still runs"),
        "| Decision | rollback (severity ".to_owned(),
    ] {
        assert!(text.contains(&line), "no {line:?} in {}:\n{text}", path.display());
    }
    assert!(!text.contains("## Pipeline"), "{text}");
    assert_eq!(world.running(), BAD, "shadow mode changed nothing");
    assert_eq!(daemon.rollbacks_started(), 0);
    daemon.stop().await;
}

#[test]
fn rollguard_report_says_when_the_journal_holds_no_incident() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let (journal, _) = Journal::open(&state).expect("opens");
    let id = "shop-1";
    for event in [
        Event::ReleaseSeen {
            from: Some("v1".into()),
            to: "v2".into(),
            source: "symlink".into(),
            by_rollguard: false,
            release_id: id.into(),
        },
        Event::DecisionMade {
            release_id: id.into(),
            decision: Decision::Healthy,
            severity: Severity::None,
            rule: None,
            reasons: Vec::new(),
            mode: Mode::Enforce,
        },
    ] {
        journal.append(Some(TARGET), event).expect("appends");
    }
    let bytes = std::fs::read(state.join("journal.jsonl")).expect("reads");
    let state_arg = state.to_str().expect("utf-8");
    // While the journal is open (and locked) by this process, as a daemon's.
    let out = rollguard(&[
        "report",
        TARGET,
        "--state-dir",
        state_arg,
        "--config",
        "/nonexistent.toml",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout(&out),
        "No incident of shop in the journal: no rollback ran, and no decision called for one.\n"
    );
    let out = rollguard(&["report", "--list", "--state-dir", state_arg]);
    assert_eq!(stdout(&out), "No incidents of any target in the journal.\n");
    assert_eq!(
        std::fs::read(state.join("journal.jsonl")).expect("reads"),
        bytes
    );
    assert!(!state.join("reports").exists(), "the CLI writes nothing");
    let out = rollguard(&["report", "cart", "--state-dir", state_arg]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    drop(journal);

    // No journal at all: exit 1, saying why.
    let empty = dir.path().join("empty");
    let out = rollguard(&["report", "--state-dir", empty.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read the journal"),
        "{out:?}"
    );
    assert!(!empty.exists(), "nothing created");
}
