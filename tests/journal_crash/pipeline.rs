//! `kill -9` of the real `rollguard` binary while a rollback step runs, then
//! a restart: what the dead daemon left running is stopped, the restore
//! steps run, the version change is never run twice, and the rolled-back
//! release is not journaled as healthy.
//!
//! Each step is `gate NAME ROUND`: it logs `start NAME`, writes its pid,
//! waits until the file `go-NAME-ROUND` exists, then logs `done NAME`. The
//! round is the daemon's start (the config is rewritten before each one),
//! so a step the first daemon left running never sees its go file: only
//! the restart can end it.

mod resume;

use rollguard::journal::{Event, Record};
use rollguard::model::{Decision, StepOutcome};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The pipeline: a drain, the version change, the undrain, a report.
const STEPS: [(&str, &str); 4] = [
    ("traffic", "drain"),
    ("rollback", "deploy"),
    ("restore", "undrain"),
    ("report", "report"),
];

/// A symlink host watched by a real daemon, with a health endpoint that
/// fails until told otherwise.
struct Host {
    dir: tempfile::TempDir,
    broken: Arc<AtomicBool>,
    health: std::net::SocketAddr,
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::tempdir().expect("tempdir");
        for version in ["v1", "v2"] {
            std::fs::create_dir_all(dir.path().join("releases").join(version)).expect("mkdir");
        }
        std::os::unix::fs::symlink("releases/v1", dir.path().join("current")).expect("link");
        let gate = dir.path().join("gate");
        let body = format!(
            "#!/bin/sh\ncd '{}'\necho \"start $1\" >> log\necho $$ > \"$1.pid\"\n\
             while [ ! -e \"go-$1-$2\" ]; do sleep 0.02; done\necho \"done $1\" >> log\n",
            dir.path().display()
        );
        std::fs::write(&gate, body).expect("gate");
        std::fs::set_permissions(&gate, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let notifier = dir.path().join("notifier");
        let body = format!(
            "#!/bin/sh\ncat >> '{}/notifications'\necho >> '{0}/notifications'\n",
            dir.path().display()
        );
        std::fs::write(&notifier, body).expect("notifier");
        std::fs::set_permissions(&notifier, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let broken = Arc::new(AtomicBool::new(true));
        let health = health_server(broken.clone());
        Host {
            dir,
            broken,
            health,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the config of daemon start `round` and starts it.
    fn start(&self, round: u32) -> Child {
        let root = self.dir.path().display();
        let steps: String = STEPS
            .iter()
            .map(|(phase, name)| {
                format!(
                    "[[target.step]]\nphase = \"{phase}\"\nkind = \"command\"\nname = \"{name}\"\n\
                     argv = [\"{root}/gate\", \"{name}\", \"{round}\"]\ntimeout = \"1m\"\n"
                )
            })
            .collect();
        self.launch(&steps)
    }

    /// Writes a config with `steps` (and a `command` notifier that appends
    /// each notification to `notifications`) and starts a daemon on it.
    fn launch(&self, steps: &str) -> Child {
        let root = self.dir.path().display();
        let config = format!(
            "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{root}/state\"\nmode = \"enforce\"\n\n\
             [[notifier]]\nname = \"log\"\nkind = \"command\"\nargv = [\"{root}/notifier\"]\n\n\
             [[target]]\nname = \"api\"\ninterval = \"200ms\"\nbake_window = \"8s\"\ntime_to_fix = \"2h\"\nnotify = [\"log\"]\n\
             [target.release]\nkind = \"symlink\"\npath = \"{root}/current\"\n\
             [[target.probe]]\nname = \"health\"\nurl = \"http://{}/health\"\nfailures = 1\nseverity = \"critical\"\n{steps}",
            self.health
        );
        let path = self.path("rollguard.toml");
        std::fs::write(&path, config).expect("config");
        let starts = self.count(|e| matches!(e, Event::DaemonStarted { .. }));
        let child = Command::new(env!("CARGO_BIN_EXE_rollguard"))
            .args(["run", "--config"])
            .arg(&path)
            .env_remove("NOTIFY_SOCKET")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rollguard");
        wait_for("the daemon to start", || {
            self.count(|e| matches!(e, Event::DaemonStarted { .. })) > starts
        });
        child
    }

    /// Lets step `name` of daemon start `round` finish.
    fn go(&self, name: &str, round: u32) {
        std::fs::write(self.path(&format!("go-{name}-{round}")), "").expect("go file");
    }

    /// Waits until step `name` runs; returns its pid.
    fn running(&self, name: &str) -> i32 {
        let pid_file = self.path(&format!("{name}.pid"));
        wait_for(&format!("step {name} to run"), || {
            std::fs::read_to_string(&pid_file).is_ok_and(|pid| pid.ends_with('\n'))
        });
        let pid = std::fs::read_to_string(&pid_file).expect("pid");
        std::fs::remove_file(&pid_file).expect("pid file");
        pid.trim().parse().expect("a pid")
    }

    /// Releases v2, after the first tick read v1.
    fn release(&self) {
        std::thread::sleep(Duration::from_millis(800));
        let tmp = self.path("current.tmp");
        std::os::unix::fs::symlink("releases/v2", &tmp).expect("link");
        std::fs::rename(&tmp, self.path("current")).expect("release v2");
    }

    /// How many times the log holds `line`.
    fn logged(&self, line: &str) -> usize {
        let log = std::fs::read_to_string(self.path("log")).unwrap_or_default();
        log.lines().filter(|l| *l == line).count()
    }

    /// The journal's events, read from the file (the daemon holds its lock).
    fn events(&self) -> Vec<Event> {
        let text = std::fs::read_to_string(self.path("state/journal.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|line| line.get(9..))
            .filter_map(|json| serde_json::from_str::<Record>(json).ok())
            .map(|record| record.event)
            .collect()
    }

    fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.events().iter().filter(|e| pred(e)).count()
    }

    /// Waits until the rollback is closed as interrupted.
    fn wait_closed(&self) {
        wait_for("the rollback to be closed", || {
            self.count(
                |e| matches!(e, Event::RollbackFinished { outcome, .. } if outcome == "interrupted"),
            ) == 1
        });
    }
}

fn kill_nine(mut daemon: Child) {
    daemon.kill().expect("kill -9 the daemon");
    daemon.wait().expect("reaped");
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
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A health endpoint on 127.0.0.1:0 that answers 503 while `broken` holds.
fn health_server(broken: Arc<AtomicBool>) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let status = if broken.load(Ordering::SeqCst) {
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

#[test]
fn kill_nine_mid_pipeline_runs_the_restore_steps_on_the_next_start() {
    let host = Host::new();
    let daemon = host.start(1);
    host.release();
    host.running("drain");
    host.go("drain", 1);
    let deploy = host.running("deploy");
    kill_nine(daemon);
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(deploy), "the step's program outlives kill -9");

    // The service looks healthy from now on, as after a rollback.
    host.broken.store(false, Ordering::SeqCst);
    host.go("undrain", 2);
    let daemon = host.start(2);
    host.wait_closed();
    wait_for(
        "the restart to stop the program the dead daemon left running",
        || !alive(deploy),
    );
    assert_eq!(
        (host.logged("start deploy"), host.logged("done deploy")),
        (1, 0),
        "the version change was not run again"
    );
    assert_eq!(host.logged("done undrain"), 1, "the restore step ran");
    let events = host.events();
    let undrain = events.iter().position(|e| {
        matches!(e, Event::StepFinished { step, outcome: StepOutcome::Ok, .. } if step == "undrain")
    });
    let closed = events
        .iter()
        .position(|e| matches!(e, Event::RollbackFinished { .. }));
    assert!(undrain.is_some() && undrain < closed, "{events:#?}");
    let release_id = events
        .iter()
        .find_map(|e| match e {
            Event::RollbackStarted { release_id, .. } => Some(release_id.clone()),
            _ => None,
        })
        .expect("a rollback started");
    let bake_end = || {
        host.events().into_iter().find_map(|e| match e {
            Event::BakeFinished {
                release_id: id,
                decision,
            } if id == release_id => Some(decision),
            _ => None,
        })
    };
    wait_for("the bad release's bake window to close", || {
        bake_end().is_some()
    });
    assert_eq!(bake_end(), Some(Decision::Rollback), "never healthy");
    assert_eq!(
        host.count(|e| matches!(e, Event::RollbackStarted { .. })),
        1,
        "never rolled back twice"
    );
    kill_nine(daemon);
}

/// The daemon killed inside each step in turn, the undrain included: each
/// time the version change ran at most once and never again after the
/// restart, the undrain ran to its end exactly once (and was not run again
/// when it had), and no ordinary step ran after the restart, except when
/// the rollback was cut short inside the undrain (which a restart runs
/// again anyway): then it goes on with the report.
#[test]
fn kill_nine_inside_every_step_never_repeats_the_version_change() {
    for (killed_in, (_, killed)) in STEPS.iter().enumerate() {
        let host = Host::new();
        let daemon = host.start(1);
        host.release();
        for (_, name) in &STEPS[..killed_in] {
            host.running(name);
            host.go(name, 1);
        }
        let orphan = host.running(killed);
        // The daemon journals the step's process group just after it
        // spawns it; a kill before that record leaves nothing to find.
        wait_for(
            &format!("{killed}: its process group in the journal"),
            || host.count(|e| matches!(e, Event::StepProcess { step, .. } if step == killed)) >= 1,
        );
        kill_nine(daemon);
        for (_, name) in STEPS {
            host.go(name, 2);
        }
        let goes_on = *killed == "undrain";
        // A rollback that goes on is verified: the service is healthy now.
        host.broken.store(!goes_on, Ordering::SeqCst);
        let daemon = host.start(2);
        // Cut short inside the undrain (a restore step, run again whatever
        // happened), the rollback goes on: the report after it runs and
        // the rollback ends as any rollback. Inside a command step without
        // retries it does not go on: only restore steps run.
        if goes_on {
            wait_for("the resumed rollback to end", || {
                host.count(|e| matches!(e, Event::RollbackFinished { .. })) == 1
            });
            assert_eq!(
                host.count(|e| matches!(e, Event::RollbackFinished { outcome, .. } if outcome == "interrupted")),
                0,
                "{killed}: the rollback went on"
            );
        } else {
            host.wait_closed();
        }
        // SIGKILL takes effect asynchronously; the daemon waits for it,
        // but give a loaded machine a moment.
        wait_for(&format!("{killed}: the orphan to be stopped"), || {
            !alive(orphan)
        });
        // Started once if the daemon got that far, finished only when the
        // first daemon let it.
        let expected = (usize::from(killed_in >= 1), usize::from(killed_in >= 2));
        assert_eq!(
            (host.logged("start deploy"), host.logged("done deploy")),
            expected,
            "{killed}: the version change ran once at most, never after the restart"
        );
        assert_eq!(host.logged("done undrain"), 1, "{killed}: the undrain ran");
        assert_eq!(
            host.logged("done report"),
            usize::from(goes_on),
            "{killed}: only restore steps run, unless it went on"
        );
        assert_eq!(
            host.logged("start undrain"),
            1 + usize::from(*killed == "undrain"),
            "{killed}: a finished restore step is not run again"
        );
        kill_nine(daemon);
    }
}

/// The rollback step fails (`abort`) and so does the undrain: the undrain
/// still ran, the outcome names the rollback step, and the failed undrain
/// is escalated in a notification of its own.
#[test]
fn a_failing_restore_step_is_escalated_and_the_outcome_names_the_first_failure() {
    let host = Host::new();
    let root = host.dir.path().display().to_string();
    let fail = host.path("fail");
    std::fs::write(&fail, "#!/bin/sh\necho \"$1 broke\" >&2\nexit 1\n").expect("script");
    std::fs::set_permissions(&fail, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let step = |phase: &str, name: &str, program: &str| {
        format!(
            "[[target.step]]\nphase = \"{phase}\"\nkind = \"command\"\nname = \"{name}\"\n\
             argv = [\"{program}\", \"{name}\"]\n"
        )
    };
    let steps = [
        step("rollback", "deploy", &fail.display().to_string()),
        step("restore", "undrain", &fail.display().to_string()),
        step("cleanup", "tidy", "/usr/bin/touch"),
    ]
    .concat()
    .replace("\"tidy\"]", &format!("\"{root}/tidied\"]"));
    let daemon = host.launch(&steps);
    host.release();
    wait_for("the rollback to end", || {
        host.count(|e| matches!(e, Event::RollbackFinished { .. })) == 1
    });
    assert!(host.path("tidied").exists(), "the cleanup step ran");
    let events = host.events();
    let undrain = events.iter().any(|e| {
        matches!(e, Event::StepFinished { step, outcome: StepOutcome::Failed, .. } if step == "undrain")
    });
    assert!(undrain, "the undrain ran and failed: {events:#?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::RollbackFinished { outcome, .. } if outcome == "failed")),
        "{events:#?}"
    );
    let notifications = || std::fs::read_to_string(host.path("notifications")).unwrap_or_default();
    wait_for("the escalation", || {
        notifications().contains("restore step `undrain` failed")
    });
    let text = notifications();
    let escalation = text
        .lines()
        .find(|l| l.contains("restore step `undrain` failed"))
        .expect("the escalation");
    let escalation: serde_json::Value = serde_json::from_str(escalation).expect("JSON");
    assert_eq!(escalation["event"], "rollback_failed", "{escalation}");
    let detail = escalation["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("undrain broke")
            && detail
                .contains("The rollback itself: step deploy failed: exit code 1: deploy broke"),
        "{detail}"
    );
    kill_nine(daemon);
}
