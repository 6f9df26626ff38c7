//! A whole daemon (`daemon::run_until`, in-process) on a free port of
//! 127.0.0.1 with an API token, watching one target, `shop`, through a
//! `current` symlink into real release directories. Its pipeline records
//! what it was given, can be held at a gate the test opens, switches the
//! link and verifies (no checks are configured, so verification passes at
//! once).

#![allow(dead_code)]

use rollguard::journal::{Event, Record, Since};
use rollguard::state::State;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The target.
pub const TARGET: &str = "shop";
/// The API token.
pub const TOKEN: &str = "t0ken-for-rollbacks";
/// How long any wait may take.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A daemon and its world.
pub struct Rig {
    /// Releases, link, scripts, state; removed on drop.
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The daemon's state.
    pub state: State,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), rollguard::Error>>>,
}

/// What differs between the tests' daemons.
pub struct Options {
    /// The target's mode.
    pub mode: &'static str,
    /// Whether the pipeline waits for the `gate` file before its switch.
    pub gated: bool,
    /// Whether the pipeline starts with a `precheck` step (the bad release
    /// still runs, the release directory to bring back exists), which has
    /// a dry run.
    pub precheck: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mode: "enforce",
            gated: false,
            precheck: false,
        }
    }
}

impl Rig {
    /// Releases v1, v2, v3; `current` -> v1; the daemon started, having
    /// read v1.
    pub async fn start(options: Options) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        for version in ["v1", "v2", "v3"] {
            std::fs::create_dir_all(root.join("releases").join(version)).expect("mkdir");
        }
        std::os::unix::fs::symlink("releases/v1", root.join("current")).expect("symlink");
        std::fs::write(root.join("token"), format!("{TOKEN}\n")).expect("token");
        let record = script(
            root,
            "record",
            &format!(
                "echo \"$ROLLGUARD_FROM_VERSION $ROLLGUARD_TO_VERSION $ROLLGUARD_RELEASE_ID\" >> '{}'\n",
                root.join("runs").display()
            ),
        );
        let gate = script(
            root,
            "gate",
            &format!(
                "while [ ! -e '{}' ]; do sleep 0.05; done\n",
                root.join("gate-open").display()
            ),
        );
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let mut config = format!(
            r#"[daemon]
listen = "127.0.0.1:{port}"
state_dir = "{root}/state"
mode = "{mode}"
api_token_file = "{root}/token"
shutdown_grace = "2s"

[[target]]
name = "{TARGET}"
interval = "100ms"
bake_window = "1h"
cooldown = "1h"

[target.release]
kind = "symlink"
path = "{root}/current"

[[target.step]]
phase = "notify"
kind = "command"
name = "record"
argv = ["{record}"]
timeout = "10s"
"#,
            root = root.display(),
            mode = options.mode,
            record = record.display(),
        );
        if options.precheck {
            config.push_str(
                "\n[[target.step]]\nphase = \"precheck\"\nkind = \"precheck\"\ntarget = \"symlink_dir\"\ntimeout = \"5s\"\n",
            );
        }
        if options.gated {
            config.push_str(&format!(
                "\n[[target.step]]\nphase = \"precheck\"\nkind = \"command\"\nname = \"gate\"\nargv = [\"{}\"]\ntimeout = \"30s\"\n",
                gate.display()
            ));
        }
        config.push_str(
            "\n[[target.step]]\nphase = \"rollback\"\nkind = \"symlink_switch\"\ntimeout = \"10s\"\n\n[[target.step]]\nphase = \"verify\"\nkind = \"verify\"\ntimeout = \"10s\"\n",
        );
        let path = root.join("rollguard.toml");
        std::fs::write(&path, &config).expect("write config");
        let loaded = rollguard::config::load(&path).unwrap_or_else(|e| panic!("{e}\n{config}"));
        let (stop, stopped) = oneshot::channel::<()>();
        let (started_tx, started) = oneshot::channel();
        let task = tokio::spawn(rollguard::daemon::run_until(
            path,
            loaded,
            async move {
                let _ = stopped.await;
            },
            started_tx,
        ));
        let state = match started.await {
            Ok(state) => state,
            Err(_) => panic!("the daemon did not start: {:?}", task.await),
        };
        let rig = Rig {
            dir,
            base: format!("http://127.0.0.1:{port}"),
            state,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        };
        rig.wait_until("the first tick reads v1", |r| {
            r.current().as_deref() == Some("v1")
        })
        .await;
        rig
    }

    /// The root of the temporary directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The config file (for the CLI's `--config`).
    pub fn config_path(&self) -> PathBuf {
        self.root().join("rollguard.toml")
    }

    /// Deploys `version` (repoints `current` atomically) and waits until
    /// the daemon has seen it as a release.
    pub async fn deploy(&self, version: &str) {
        let tmp = self.root().join("current.tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(format!("releases/{version}"), &tmp).expect("symlink");
        std::fs::rename(&tmp, self.root().join("current")).expect("rename");
        self.wait_until(&format!("{version} is seen"), |r| {
            r.current().as_deref() == Some(version)
        })
        .await;
    }

    /// The version `current` points at.
    pub fn running(&self) -> String {
        std::fs::read_link(self.root().join("current"))
            .expect("a link")
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// What the recording step was given, one line per run.
    pub fn runs(&self) -> Vec<String> {
        std::fs::read_to_string(self.root().join("runs"))
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Lets a gated pipeline go on.
    pub fn open_gate(&self) {
        std::fs::write(self.root().join("gate-open"), "").expect("open the gate");
    }

    /// The version the daemon says runs.
    pub fn current(&self) -> Option<String> {
        self.status().and_then(|s| s.current_version)
    }

    /// The target's status.
    pub fn status(&self) -> Option<rollguard::state::TargetStatus> {
        self.state.targets().into_iter().find(|t| t.name == TARGET)
    }

    /// The target's journal records.
    pub fn records(&self) -> Vec<Record> {
        self.state
            .journal()
            .query(Some(TARGET), Since::All, 100_000)
    }

    /// The `rollback_started` events: (release_id, from, to, trigger).
    pub fn rollbacks(&self) -> Vec<(String, String, String, String)> {
        self.records()
            .into_iter()
            .filter_map(|r| match r.event {
                Event::RollbackStarted {
                    release_id,
                    from,
                    to,
                    trigger,
                } => Some((release_id, from, to, trigger)),
                _ => None,
            })
            .collect()
    }

    /// The outcomes of `rollback_finished`, in order.
    pub fn outcomes(&self) -> Vec<String> {
        self.records()
            .into_iter()
            .filter_map(|r| match r.event {
                Event::RollbackFinished { outcome, .. } => Some(outcome),
                _ => None,
            })
            .collect()
    }

    /// The journal, one line per record, for failure messages.
    pub fn timeline(&self) -> String {
        self.records()
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r.seq,
                    serde_json::to_value(&r.event).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Polls until `done` holds.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&Rig) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: not within {PATIENCE:?}; journal:\n{}",
                self.timeline()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until a rollback has finished and `current` is seen again.
    pub async fn wait_finished(&self, count: usize) {
        self.wait_until("the rollback finishes", |r| r.outcomes().len() >= count)
            .await;
    }

    /// `POST /api/v1/targets/shop/rollback` with `body`, with the token
    /// (or `authorization` as given).
    pub async fn rollback(&self, body: Value) -> (u16, Value) {
        self.rollback_as(Some(&format!("Bearer {TOKEN}")), body)
            .await
    }

    /// The same with any `Authorization` header.
    pub async fn rollback_as(&self, authorization: Option<&str>, body: Value) -> (u16, Value) {
        self.post(
            &format!("/api/v1/targets/{TARGET}/rollback"),
            authorization,
            body,
        )
        .await
    }

    /// `POST path` with `body`.
    pub async fn post(&self, path: &str, authorization: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }

    /// Stops the daemon and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("the daemon stops");
            result.expect("no panic").expect("a clean stop");
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Writes an executable `#!/bin/sh` program.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}
