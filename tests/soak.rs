//! The soak (issue #14, item 13): the real `rollguard` binary watching 100
//! targets for ten minutes, with a release of every target every minute,
//! against a real Prometheus scraping a demo service. Every 10 s it samples
//! the daemon's resident memory, threads and open files from /proc, and at
//! the end it asserts that none of them grew: the last two minutes' RSS
//! peak and median threads and open files are within a small margin of the
//! second minute's (the first is start-up).
//!
//! Ignored in the suite (it takes the whole ten minutes); run it with
//! `cargo test --test soak -- --ignored --nocapture`, and
//! `ROLLGUARD_SOAK_MINUTES` to change the length. docs/reliability.md has
//! the latest figures.

#[allow(dead_code)]
mod common;

use common::e2e::{ERRORS, REQUESTS};
use common::prometheus::PrometheusHarness;
use common::running::spawn;
use rollguard::demo::DemoService;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::time::{Duration, Instant};

const TARGETS: usize = 100;

/// How often the daemon is sampled.
const SAMPLE: Duration = Duration::from_secs(10);

/// How much a figure may grow between the second minute and the end.
const RSS_MARGIN_KIB: u64 = 8 * 1024;
const THREAD_MARGIN: u64 = 2;
const FD_MARGIN: u64 = 8;

/// One sample of the daemon's footprint.
#[derive(Debug, Clone, Copy, Default)]
struct Footprint {
    rss_kib: u64,
    threads: u64,
    open_files: u64,
}

fn footprint(pid: u32) -> Footprint {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let open_files = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    Footprint {
        rss_kib: field("VmRSS:"),
        threads: field("Threads:"),
        open_files,
    }
}

/// A health endpoint that always answers 200.
fn health_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    addr
}

fn minutes() -> u64 {
    std::env::var("ROLLGUARD_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak of ten minutes: cargo test --test soak -- --ignored --nocapture"]
async fn a_release_a_minute_on_100_targets_leaves_the_footprint_flat() {
    let minutes = minutes().max(4);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let (service, service_addr) = DemoService::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("demo service");
    service.set_rate(50.0);
    let prometheus = PrometheusHarness::start(&[service_addr]).await;
    let health = health_server();

    let mut config = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}/state\"\nmode = \"enforce\"\n\n\
         [prometheus]\nurl = \"{}\"\ntimeout = \"5s\"\n\n",
        root.display(),
        prometheus.url()
    );
    for t in 0..TARGETS {
        let target = root.join(format!("t{t}"));
        std::fs::create_dir_all(target.join("releases/r0")).expect("mkdir");
        std::os::unix::fs::symlink("releases/r0", target.join("current")).expect("link");
        config.push_str(&format!(
            "[[target]]\nname = \"t{t}\"\ninterval = \"10s\"\nbake_window = \"2m\"\n\
             [target.release]\nkind = \"symlink\"\npath = \"{}/current\"\n\
             [[target.probe]]\nname = \"health\"\nurl = \"http://{health}/health\"\n\
             [[target.metric]]\nname = \"errors\"\nerrors_query = '{ERRORS}'\ntotal_query = '{REQUESTS}'\n\
             [[target.step]]\nphase = \"rollback\"\nkind = \"symlink_switch\"\nlink = \"{}/current\"\n\n",
            target.display(),
            target.display()
        ));
    }
    let path = root.join("rollguard.toml");
    std::fs::write(&path, config).expect("config");
    let daemon = spawn(&path, Stdio::null());
    let pid = daemon.0.id();

    let started = Instant::now();
    let mut samples: Vec<(u64, Footprint)> = Vec::new();
    let mut release = 0;
    while started.elapsed() < Duration::from_secs(60 * minutes) {
        let minute = started.elapsed().as_secs() / 60;
        if minute + 1 > release {
            release += 1;
            for t in 0..TARGETS {
                let target = root.join(format!("t{t}"));
                let version = format!("r{release}");
                std::fs::create_dir_all(target.join("releases").join(&version)).expect("mkdir");
                let tmp = target.join("current.tmp");
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(format!("releases/{version}"), &tmp).expect("link");
                std::fs::rename(&tmp, target.join("current")).expect("release");
            }
        }
        let now = footprint(pid);
        assert!(now.rss_kib > 0, "the daemon is gone");
        eprintln!(
            "{:>4} s  RSS {:>6} KiB  threads {:>3}  open files {:>4}",
            started.elapsed().as_secs(),
            now.rss_kib,
            now.threads,
            now.open_files
        );
        samples.push((started.elapsed().as_secs(), now));
        tokio::time::sleep(SAMPLE).await;
    }
    drop(daemon);

    // RSS: the peaks; threads (tokio's blocking pool grows and shrinks
    // with fsyncs) and open files (connections come and go): the medians.
    let window = |from: u64, to: u64| -> Vec<Footprint> {
        samples
            .iter()
            .filter(|(at, _)| (from..to).contains(at))
            .map(|(_, f)| *f)
            .collect()
    };
    let median = |mut values: Vec<u64>| {
        values.sort_unstable();
        values.get(values.len() / 2).copied().unwrap_or(0)
    };
    let summary = |samples: Vec<Footprint>| Footprint {
        rss_kib: samples.iter().map(|f| f.rss_kib).max().unwrap_or(0),
        threads: median(samples.iter().map(|f| f.threads).collect()),
        open_files: median(samples.iter().map(|f| f.open_files).collect()),
    };
    let early = summary(window(60, 120));
    let late = summary(window(60 * (minutes - 2), 60 * minutes));
    eprintln!(
        "second minute: {early:?}; last two minutes: {late:?} (RSS peak, median threads and open files)"
    );
    assert!(
        late.rss_kib <= early.rss_kib + RSS_MARGIN_KIB,
        "RSS grew: {early:?} → {late:?}"
    );
    assert!(
        late.threads <= early.threads + THREAD_MARGIN,
        "threads grew: {early:?} → {late:?}"
    );
    assert!(
        late.open_files <= early.open_files + FD_MARGIN,
        "open files grew: {early:?} → {late:?}"
    );
}
