//! `kill -9` the journal's writer again and again while it appends, reopen
//! the journal every time, and check that nothing it acknowledged (an
//! append that returned, so synced) was lost and nothing is corrupt.
//!
//! The writer is this same test binary, re-executed to run only
//! [`crash_writer`], told where the journal is by an environment variable
//! set on the child alone. It prints `ack <seq>` after each append returns;
//! the parent kills it after a varying number of acknowledgements.
//!
//! `journal_crash/pipeline.rs` does the same to the real daemon in the middle of a rollback
//! pipeline, and checks what the next start does.

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

/// The real daemon killed mid-pipeline and started again.
#[path = "journal_crash/pipeline.rs"]
mod pipeline;
