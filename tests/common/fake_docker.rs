//! `tests/fake_docker.py` installed as `docker` in a temporary directory of
//! its own, with the inspect documents it plays (see the script for its
//! contract). Included with `#[path]` by the tests that need it.

#![allow(dead_code)]

use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// One fake `docker`, its states and the calls it got.
pub struct FakeDocker {
    dir: tempfile::TempDir,
}

impl FakeDocker {
    /// A fake that answers inspects with `states`, in order, the last one
    /// repeated.
    pub fn new(states: &[Value]) -> FakeDocker {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_docker.py");
        let docker = dir.path().join("docker");
        std::fs::copy(&script, &docker).expect("install the fake docker");
        let fake = FakeDocker { dir };
        fake.play(states);
        fake
    }

    /// The program to configure as `docker`.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("docker")
    }

    /// The program's path as TOML text, quoted.
    pub fn toml_path(&self) -> String {
        format!("{:?}", self.path().to_str().expect("utf-8 temp path"))
    }

    /// Replaces the documents still to be played with `states`.
    pub fn play(&self, states: &[Value]) {
        let text = serde_json::to_string(states).expect("states as JSON");
        std::fs::write(self.dir.path().join("states.json"), text).expect("write states");
        let _ = std::fs::remove_file(self.dir.path().join("inspected"));
    }

    /// Makes `docker service update` fail with `stderr`.
    pub fn fail_updates(&self, stderr: &str) {
        std::fs::write(self.dir.path().join("update_fails"), stderr).expect("write failure");
    }

    /// Every call so far, argv without the program, one line each.
    pub fn calls(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.path().join("calls.jsonl")).unwrap_or_default();
        text.lines()
            .map(|line| {
                let argv: Vec<String> = serde_json::from_str(line).expect("a recorded argv");
                argv.join(" ")
            })
            .collect()
    }

    /// The calls that were not inspects.
    pub fn updates(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|call| !call.starts_with("service inspect"))
            .collect()
    }
}

/// A service document as `docker service inspect --format '{{json .}}'`
/// prints it, trimmed to what matters: `image` running, `previous` (the
/// previous spec's image), and the update status (`state`, `started`,
/// `message`), absent when `state` is empty.
pub fn service(
    image: &str,
    previous: Option<&str>,
    state: &str,
    started: &str,
    message: &str,
) -> Value {
    let spec = |image: &str| {
        json!({
            "Name": "api",
            "Labels": {"com.example.version": format!("label-{}", image.rsplit(':').next().unwrap_or(""))},
            "TaskTemplate": {"ContainerSpec": {"Image": image, "Labels": {}}},
        })
    };
    let mut document = json!({
        "ID": "q8x3kz1",
        "Version": {"Index": 42},
        "Spec": spec(image),
    });
    if let Some(previous) = previous {
        document["PreviousSpec"] = spec(previous);
    }
    if !state.is_empty() {
        document["UpdateStatus"] = json!({
            "State": state,
            "StartedAt": started,
            "CompletedAt": started,
            "Message": message,
        });
    }
    document
}
