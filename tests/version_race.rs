//! A release deployed between a tick's version read and its probes: the
//! probes' failures belong to the new release, not to the one the tick
//! read. The real daemon, a version URL that answers `v2` exactly once and
//! then `v3`, and a health endpoint failing from `v2` on: the tick that
//! read `v2` must not roll `v2` back; the next one sees `v3` and rolls
//! that back. Without the re-read before acting, `v2` (possibly a good
//! release) would be rolled back to `v1` for `v3`'s failures.

#[path = "common/running.rs"]
mod running;

use rollguard::journal::{Event, Record};
use running::spawn;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// What the version URL answers: `v1` (reads counted) before the
/// release, `v2` for one read, then `v3`.
struct Versions {
    phase: AtomicU32,
    reads_before: AtomicU32,
}

fn serve(versions: Arc<Versions>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 2048];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = if request.starts_with("GET /version") {
                let version = match versions.phase.load(Ordering::SeqCst) {
                    0 => {
                        versions.reads_before.fetch_add(1, Ordering::SeqCst);
                        "v1"
                    }
                    1 => {
                        versions.phase.store(2, Ordering::SeqCst);
                        "v2"
                    }
                    _ => "v3",
                };
                ("200 OK", format!("{{\"version\":\"{version}\"}}"))
            } else if versions.phase.load(Ordering::SeqCst) == 0 {
                ("200 OK", String::new())
            } else {
                ("503 Service Unavailable", String::new())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

fn records(state: &std::path::Path) -> Vec<Record> {
    let text = std::fs::read_to_string(state.join("journal.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|line| line.get(9..))
        .filter_map(|json| serde_json::from_str::<Record>(json).ok())
        .collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_release_deployed_mid_tick_is_not_blamed_on_the_one_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let versions = Arc::new(Versions {
        phase: AtomicU32::new(0),
        reads_before: AtomicU32::new(0),
    });
    let service = serve(versions.clone());
    let root = dir.path().display();
    let config = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{root}/state\"\nmode = \"enforce\"\n\n\
         [[target]]\nname = \"api\"\ninterval = \"200ms\"\nbake_window = \"30s\"\ntime_to_fix = \"2h\"\ncooldown = \"0s\"\n\
         [target.release]\nkind = \"version_url\"\nurl = \"http://{service}/version\"\n\
         json_pointer = \"/version\"\npoll_interval = \"200ms\"\n\
         [[target.probe]]\nname = \"health\"\nurl = \"http://{service}/health\"\nfailures = 1\nseverity = \"critical\"\n\
         [[target.step]]\nphase = \"rollback\"\nkind = \"command\"\nname = \"deploy\"\nargv = [\"/bin/true\"]\n"
    );
    let path = dir.path().join("rollguard.toml");
    std::fs::write(&path, config).expect("config");
    let daemon = spawn(&path, Stdio::null());
    // Two reads of v1: the second is a tick after the one that took v1 in.
    wait_for("v1 read twice", || {
        versions.reads_before.load(Ordering::SeqCst) >= 2
    });
    versions.phase.store(1, Ordering::SeqCst);

    let state = dir.path().join("state");
    let rollbacks = || -> Vec<(String, String)> {
        records(&state)
            .into_iter()
            .filter_map(|r| match r.event {
                Event::RollbackStarted { from, to, .. } => Some((from, to)),
                _ => None,
            })
            .collect()
    };
    wait_for("a rollback", || !rollbacks().is_empty());
    let seen: Vec<String> = records(&state)
        .into_iter()
        .filter_map(|r| match r.event {
            Event::ReleaseSeen {
                to,
                by_rollguard: false,
                ..
            } => Some(to),
            _ => None,
        })
        .collect();
    drop(daemon);
    assert_eq!(seen, ["v2", "v3"], "both releases were seen");
    assert_eq!(
        rollbacks(),
        [("v3".to_owned(), "v2".to_owned())],
        "v3's failures rolled back v3, not v2"
    );
}
