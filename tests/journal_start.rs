//! The real `rollguard` binary started on a big generated journal (1,000
//! targets): a `kill -9` while it compacts the journal loses nothing and
//! starts no rollback again; SIGTERM during start-up ends it promptly,
//! before it is ready. `start_up_bench` (ignored; run it explicitly, see
//! docs/performance.md) measures the time to `/readyz`.

use rollguard::journal::{Event, Record};
use rollguard::model::{Decision, Mode, Severity};
use std::io::{BufWriter, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const TARGETS: usize = 1_000;

/// The target with a rollback that a crash cut short long ago.
const UNFINISHED: &str = "t0007";

fn name(t: usize) -> String {
    format!("t{t:04}")
}

/// Writes a journal of `count` records about [`TARGETS`] targets, spread
/// evenly over the `days` before now: per target releases, assessments
/// with some evidence and decisions, and for [`UNFINISHED`] a rollback
/// started (with a step) and never finished, in the first record. Returns
/// the file's size.
fn write_journal(state: &Path, count: u64, days: u32) -> u64 {
    std::fs::create_dir_all(state).expect("state dir");
    let file = std::fs::File::create(state.join("journal.jsonl")).expect("journal");
    let mut out = BufWriter::new(file);
    let start = SystemTime::now() - DAY * days;
    let step = (DAY * days).as_millis() as u64 / count.max(1);
    let mut size = 0;
    let mut line = |seq: u64, target: String, event: Event| {
        let at = start + Duration::from_millis(seq * step);
        let record = Record {
            seq,
            at: humantime::format_rfc3339_millis(at).to_string(),
            target: Some(target),
            event,
        };
        let json = serde_json::to_vec(&record).expect("encodes");
        write!(out, "{:08x} ", crc32fast::hash(&json)).expect("writes");
        out.write_all(&json).expect("writes");
        out.write_all(b"\n").expect("writes");
        size += json.len() as u64 + 10;
    };
    let rollback = [
        Event::ReleaseSeen {
            from: Some("v1".into()),
            to: "v2".into(),
            source: "announce".into(),
            by_rollguard: false,
            release_id: "rb-1".into(),
        },
        Event::RollbackStarted {
            release_id: "rb-1".into(),
            from: "v2".into(),
            to: "v1".into(),
            trigger: "automatic".into(),
        },
        Event::StepStarted {
            release_id: "rb-1".into(),
            step: "deploy".into(),
            attempt: 1,
        },
    ];
    let mut seq = 0;
    for event in rollback {
        seq += 1;
        line(seq, UNFINISHED.to_owned(), event);
    }
    while seq < count {
        seq += 1;
        let t = (seq as usize * 7919) % TARGETS;
        let round = seq / TARGETS as u64;
        let release_id = format!("{}-{}", name(t), round / 20);
        let event = match round % 20 {
            0 if t.to_string() != UNFINISHED[1..] => Event::ReleaseSeen {
                from: Some(format!("v{}", round / 20)),
                to: format!("v{}", round / 20 + 1),
                source: "announce".into(),
                by_rollguard: false,
                release_id,
            },
            19 => Event::DecisionMade {
                release_id,
                decision: Decision::Healthy,
                severity: Severity::None,
                rule: None,
                reasons: vec!["every probe and metric is healthy".into()],
                mode: Mode::Shadow,
            },
            _ => Event::Assessment {
                release_id,
                severity: Severity::None,
                evidence: serde_json::json!({
                    "probes": [{"name": "health", "status": 200, "latency_ms": 3.2, "ok": true}],
                    "metrics": [{"name": "error_rate", "value": 0.001, "baseline": 0.0012,
                                 "critical": 0.05, "high": 0.02, "verdict": "healthy"}],
                }),
            },
        };
        line(seq, name(t), event);
    }
    out.flush().expect("flushes");
    size
}

/// A free port on 127.0.0.1 (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Writes a config of [`TARGETS`] shadow-mode announce targets on `port`.
fn write_config(dir: &Path, port: u16) -> PathBuf {
    let mut config = format!(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"{}/state\"\n",
        dir.display()
    );
    for t in 0..TARGETS {
        config.push_str(&format!(
            "\n[[target]]\nname = \"{}\"\ninterval = \"1m\"\n[target.release]\nkind = \"announce\"\n",
            name(t)
        ));
    }
    let path = dir.join("rollguard.toml");
    std::fs::write(&path, config).expect("config");
    path
}

fn start(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rollguard"))
        .args(["run", "--config"])
        .arg(config)
        .env_remove("NOTIFY_SOCKET")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rollguard")
}

/// Whether `/readyz` answers 200.
fn ready(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let mut response = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut response).is_ok()
        && response.starts_with("HTTP/1.1 200")
}

/// Waits until `/readyz` says 200 or the child exits; the time it took.
fn wait_ready(child: &mut Child, port: u16, limit: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < limit {
        if ready(port) {
            return started.elapsed();
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("rollguard exited before it was ready: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("not ready within {limit:?}");
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Waits for the child to exit, at most `limit`.
fn exits_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Every record in the state directory's journal.
fn journal(dir: &Path) -> Vec<Record> {
    rollguard::journal::read_only(&dir.join("state")).expect("reads the journal")
}

fn count(records: &[Record], wanted: impl Fn(&Record) -> bool) -> usize {
    records.iter().filter(|r| wanted(r)).count()
}

#[test]
fn kill_nine_during_compaction_loses_nothing_and_never_rolls_back_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Spread over 90 days: two thirds are older than the retention.
    let records = 150_000;
    write_journal(&dir.path().join("state"), records, 90);
    let port = free_port();
    let config = write_config(dir.path(), port);
    let temp = dir.path().join("state/journal.jsonl.compacting");

    let mut daemon = start(&config);
    let started = Instant::now();
    while !temp.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no compaction seen"
        );
        assert!(daemon.try_wait().expect("polls").is_none(), "exited");
        std::thread::sleep(Duration::from_millis(2));
    }
    daemon.kill().expect("kill -9 during the compaction");
    daemon.wait().expect("reaps");
    let after_kill = journal(dir.path());
    let compacted = after_kill
        .iter()
        .any(|r| matches!(r.event, Event::Compacted { .. }));
    // Killed before the rename (the old journal, whole) or after it.
    assert!(
        compacted || after_kill.len() as u64 == records,
        "{} records, compacted: {compacted}",
        after_kill.len()
    );

    let mut daemon = start(&config);
    wait_ready(&mut daemon, port, Duration::from_secs(300));
    assert!(!temp.exists(), "the cut-short compaction was cleaned up");
    sigterm(&daemon);
    assert!(
        exits_within(&mut daemon, Duration::from_secs(30)).is_some_and(|s| s.success()),
        "a clean stop"
    );

    let records = journal(dir.path());
    assert_eq!(
        count(&records, |r| matches!(r.event, Event::Compacted { .. })),
        1,
        "compacted once"
    );
    assert!(records.len() < 80_000, "{} records kept", records.len());
    let about_unfinished = |r: &Record| r.target.as_deref() == Some(UNFINISHED);
    assert_eq!(
        count(&records, |r| about_unfinished(r)
            && matches!(r.event, Event::RollbackStarted { .. })),
        1,
        "the old rollback is kept, and never started again"
    );
    assert!(
        records.iter().any(|r| about_unfinished(r)
            && matches!(&r.event, Event::StepStarted { step, .. } if step == "deploy")),
        "its step is kept"
    );
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seqs increase");
    assert!(
        seqs.last().is_some_and(|&s| s > 150_000),
        "seqs never reused"
    );
}

#[test]
fn sigterm_during_start_up_stops_promptly_without_becoming_ready() {
    let dir = tempfile::tempdir().expect("tempdir");
    // All within the retention: start-up reads it all, compacts nothing.
    let records = 200_000;
    write_journal(&dir.path().join("state"), records, 10);
    let before = std::fs::read(dir.path().join("state/journal.jsonl")).expect("reads");
    let port = free_port();
    let config = write_config(dir.path(), port);

    let mut daemon = start(&config);
    // Long enough to be reading the journal, which takes seconds.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!ready(port));
    let signalled = Instant::now();
    sigterm(&daemon);
    let status = exits_within(&mut daemon, Duration::from_secs(10)).expect("exits after SIGTERM");
    let took = signalled.elapsed();
    assert!(status.success(), "{status}");
    eprintln!("stopped {took:?} after SIGTERM");
    let after = std::fs::read(dir.path().join("state/journal.jsonl")).expect("reads");
    assert!(
        after == before,
        "nothing journaled: it never started acting"
    );
}

/// Time to `/readyz` on 1,000 targets × `ROLLGUARD_BENCH_RECORDS` records
/// (100,000 by default), spread over 90 days: the first start compacts
/// away what is older than the 30-day retention, the second reads what is
/// left. Prints the numbers; asserts nothing about time.
#[test]
#[ignore = "a benchmark: cargo test --test journal_start start_up_bench -- --ignored --nocapture"]
fn start_up_bench() {
    let records: u64 = std::env::var("ROLLGUARD_BENCH_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let size = write_journal(&dir.path().join("state"), records, 90);
    let port = free_port();
    let config = write_config(dir.path(), port);
    for run in ["first start (compacts)", "second start"] {
        let bytes = std::fs::metadata(dir.path().join("state/journal.jsonl"))
            .map(|m| m.len())
            .unwrap_or(size);
        let mut daemon = start(&config);
        let took = wait_ready(&mut daemon, port, Duration::from_secs(900));
        sigterm(&daemon);
        assert!(exits_within(&mut daemon, Duration::from_secs(60)).is_some());
        println!(
            "{records} records, {TARGETS} targets, {run}: journal {:.1} MB, ready after {:.2} s",
            bytes as f64 / 1e6,
            took.as_secs_f64()
        );
    }
}
