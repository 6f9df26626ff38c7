//! `kill -9` the journal's writer again and again while it appends, reopen
//! the journal every time, and check that nothing it acknowledged (an
//! append that returned, so synced) was lost and nothing is corrupt.
//!
//! The writer is this same test binary, re-executed to run only
//! [`crash_writer`], told where the journal is by an environment variable
//! set on the child alone. It prints `ack <seq>` after each append returns;
//! the parent kills it after a varying number of acknowledgements.

use rollguard::journal::{Event, Journal, Since};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Tells the re-executed binary to act as the writer, and where.
const DIR_VAR: &str = "ROLLGUARD_JOURNAL_CRASH_DIR";
/// Tells the writer which round it is in, written into its events.
const ROUND_VAR: &str = "ROLLGUARD_JOURNAL_CRASH_ROUND";
const ROUNDS: u64 = 30;

/// The writer: a no-op in a normal test run.
#[test]
fn crash_writer() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let round = std::env::var(ROUND_VAR).unwrap_or_default();
    let (journal, _) = Journal::open(Path::new(&dir)).expect("writer opens the journal");
    let mut stdout = std::io::stdout();
    // Bounded so a writer whose parent vanished without killing it ends.
    for attempt in 1..=100_000 {
        let event = Event::StepStarted {
            release_id: format!("round-{round}"),
            step: "rollback".into(),
            attempt,
        };
        let record = journal.append(Some("web"), event).expect("writer appends");
        if writeln!(stdout, "ack {}", record.seq)
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return;
        }
    }
}

#[test]
fn kill_nine_never_loses_a_synced_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary path");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut acked = BTreeSet::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;

    for round in 0..ROUNDS {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // Round 0 kills before any append; the others after 1..=40 acks.
        let kill_after = if round == 0 { 0 } else { 1 + (seed >> 33) % 40 };

        let mut child = Command::new(&exe)
            .args(["--exact", "crash_writer", "--nocapture", "--test-threads=1"])
            .env(DIR_VAR, dir.path())
            .env(ROUND_VAR, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawns the writer");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest's "test crash_writer ... " may start the first line.
                let seq = line
                    .rsplit_once("ack ")
                    .and_then(|(_, seq)| seq.trim().parse::<u64>().ok());
                if let Some(seq) = seq
                    && tx.send(seq).is_err()
                {
                    break;
                }
            }
        });

        let mut this_round = 0;
        while this_round < kill_after {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(seq) => {
                    acked.insert(seq);
                    this_round += 1;
                }
                Err(error) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "round {round}: writer stopped acknowledging ({error}) after {this_round}"
                    );
                }
            }
        }
        // Land the kill at varying points of the next append.
        std::thread::sleep(Duration::from_micros((seed >> 20) % 3_000));
        child.kill().expect("SIGKILL the writer");
        child.wait().expect("reaps the writer");
        reader.join().expect("reader thread");
        // Acks the writer got out before it died count too.
        acked.extend(rx.try_iter());

        let (journal, recovery) = Journal::open(dir.path()).expect("reopens after kill -9");
        assert_eq!(
            recovery.skipped_unknown + recovery.skipped_corrupt,
            0,
            "round {round}: {recovery:?}"
        );
        let seqs: Vec<u64> = journal.records().iter().map(|r| r.seq).collect();
        let n = seqs.len() as u64;
        assert_eq!(
            seqs,
            (1..=n).collect::<Vec<_>>(),
            "round {round}: seqs not contiguous"
        );
        assert_eq!(recovery.last_seq, n, "round {round}");
        let last_acked = acked.last().copied().unwrap_or(0);
        assert!(
            last_acked <= n,
            "round {round}: acked {last_acked}, journal ends at {n}"
        );
        assert_eq!(journal.query(None, Since::All, usize::MAX).len() as u64, n);
        // Each writer's records are its attempts 1, 2, 3... in order: none
        // lost in the middle, none garbled.
        let mut expected_attempt = std::collections::HashMap::new();
        for record in journal.records() {
            let Event::StepStarted {
                release_id,
                attempt,
                ..
            } = record.event
            else {
                panic!("round {round}: unexpected record {record:?}");
            };
            let next = expected_attempt.entry(release_id).or_insert(1);
            assert_eq!(attempt, *next, "round {round}: seq {}", record.seq);
            *next += 1;
        }
        // At most one record per round may be on disk without its ack (killed
        // between the sync and the print): everything else was acknowledged.
        assert!(
            n - acked.len() as u64 <= round + 1,
            "round {round}: {n} records, {} acked",
            acked.len()
        );
    }
    assert!(
        acked.len() as u64 >= ROUNDS - 1,
        "the writer barely wrote: {}",
        acked.len()
    );
}

/// The journal's events as the daemon wrote them, read from the file
/// itself (the daemon holds the journal's lock).
fn journal_events(state_dir: &Path) -> Vec<(Option<String>, Event)> {
    let text = std::fs::read_to_string(state_dir.join("journal.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|line| line.get(9..))
        .filter_map(|json| serde_json::from_str::<rollguard::journal::Record>(json).ok())
        .map(|record| (record.target, record.event))
        .collect()
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        !state.starts_with('Z')
    })
}

/// Waits up to 30 s for `what`.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A health endpoint on 127.0.0.1:0 that answers 503 while `broken` holds.
fn health_server(broken: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::net::SocketAddr {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let status = if broken.load(std::sync::atomic::Ordering::SeqCst) {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    addr
}

/// `kill -9` of the real daemon while a rollback step runs, then a restart:
/// the restore step runs once, the version change is not run again, and
/// the rolled-back release is not journaled as healthy.
#[test]
fn kill_nine_mid_pipeline_runs_the_restore_steps_on_the_next_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for version in ["v1", "v2"] {
        std::fs::create_dir_all(root.join("releases").join(version)).expect("mkdir");
    }
    let link = root.join("current");
    std::os::unix::fs::symlink("releases/v1", &link).expect("link");
    let broken = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let health = health_server(broken.clone());
    let log = root.join("log");
    let pid_file = root.join("deploy.pid");
    let write_script = |name: &str, body: String| {
        let path = root.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    };
    let note = write_script("note", format!("echo \"$1\" >> '{}'", log.display()));
    let deploy = write_script(
        "deploy",
        format!(
            "echo deploy >> '{}'\necho $$ > '{}'\nexec sleep 30",
            log.display(),
            pid_file.display()
        ),
    );
    let state_dir = root.join("state");
    let config = root.join("rollguard.toml");
    std::fs::write(
        &config,
        format!(
            r#"[daemon]
listen = "127.0.0.1:0"
state_dir = "{state}"
mode = "enforce"

[[target]]
name = "api"
interval = "200ms"
bake_window = "8s"
time_to_fix = "2h"
[target.release]
kind = "symlink"
path = "{link}"
[[target.probe]]
name = "health"
url = "http://{health}/health"
failures = 1
severity = "critical"
[[target.step]]
phase = "traffic"
kind = "command"
name = "drain"
argv = ["{note}", "drain"]
[[target.step]]
phase = "rollback"
kind = "command"
name = "deploy"
argv = ["{deploy}"]
timeout = "1m"
[[target.step]]
phase = "restore"
kind = "command"
name = "undrain"
argv = ["{note}", "undrain"]
"#,
            state = state_dir.display(),
            link = link.display(),
            note = note.display(),
            deploy = deploy.display(),
        ),
    )
    .expect("config");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_rollguard"))
            .args(["run", "--config"])
            .arg(&config)
            .env_remove("NOTIFY_SOCKET")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rollguard")
    };
    let started = |n: usize| {
        let count = journal_events(&state_dir)
            .iter()
            .filter(|(_, e)| matches!(e, Event::DaemonStarted { .. }))
            .count();
        count >= n
    };
    let mut daemon = spawn();
    wait_for("the daemon to start", || started(1));
    // Let the first tick read v1, then release v2.
    std::thread::sleep(Duration::from_millis(800));
    let tmp = root.join("current.tmp");
    std::os::unix::fs::symlink("releases/v2", &tmp).expect("link");
    std::fs::rename(&tmp, &link).expect("release v2");
    wait_for("the deploy step to run", || pid_file.exists());
    let deploy_pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid")
        .trim()
        .parse()
        .expect("a pid");
    daemon.kill().expect("kill -9 the daemon");
    daemon.wait().expect("reaped");
    assert_eq!(
        std::fs::read_to_string(&log).expect("log"),
        "drain\ndeploy\n"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(deploy_pid), "the step's program outlives kill -9");

    // The rollback brought v1 back (or it did not: rollguard cannot know);
    // the service looks healthy from now on.
    broken.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut daemon = spawn();
    wait_for("the daemon to restart", || started(2));
    let closed = |events: &[(Option<String>, Event)]| {
        events.iter().any(|(_, e)| {
            matches!(e, Event::RollbackFinished { outcome, .. } if outcome == "interrupted")
        })
    };
    wait_for("the rollback to be closed", || {
        closed(&journal_events(&state_dir))
    });
    assert!(
        !alive(deploy_pid),
        "the restart stopped the program the dead daemon left running"
    );
    assert_eq!(
        std::fs::read_to_string(&log).expect("log"),
        "drain\ndeploy\nundrain\n",
        "the restore step ran once, the version change was not run again"
    );
    let events = journal_events(&state_dir);
    let release_id = events
        .iter()
        .find_map(|(_, e)| match e {
            Event::RollbackStarted { release_id, .. } => Some(release_id.clone()),
            _ => None,
        })
        .expect("a rollback started");
    let undrain = events.iter().position(|(_, e)| {
        matches!(e, Event::StepFinished { step, outcome, .. }
            if step == "undrain" && *outcome == rollguard::model::StepOutcome::Ok)
    });
    let finished = events
        .iter()
        .position(|(_, e)| matches!(e, Event::RollbackFinished { .. }));
    assert!(undrain < finished && undrain.is_some(), "{events:#?}");
    wait_for("the bad release's bake window to close", || {
        journal_events(&state_dir).iter().any(
            |(_, e)| matches!(e, Event::BakeFinished { release_id: id, .. } if *id == release_id),
        )
    });
    let decision = journal_events(&state_dir)
        .into_iter()
        .find_map(|(_, e)| match e {
            Event::BakeFinished {
                release_id: id,
                decision,
            } if id == release_id => Some(decision),
            _ => None,
        });
    assert_eq!(decision, Some(rollguard::model::Decision::Rollback));
    let rollbacks = journal_events(&state_dir)
        .iter()
        .filter(|(_, e)| matches!(e, Event::RollbackStarted { .. }))
        .count();
    assert_eq!(rollbacks, 1, "never rolled back twice");
    daemon.kill().expect("stop the daemon");
    daemon.wait().expect("reaped");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(deploy_pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}
